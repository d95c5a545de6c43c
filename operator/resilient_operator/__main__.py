"""``resilient-operator``: start the operator (equivalent to ``kopf run -m resilient_operator``)."""

from __future__ import annotations

import argparse
import logging
import sys

import kopf


def main(argv: list[str] | None = None) -> int:
    from . import handlers  # noqa: F401 - registers the handlers with kopf
    from .runtime.logs import quiet_api_retries
    from .settings import SETTINGS

    parser = argparse.ArgumentParser(
        prog="resilient-operator",
        description="Keep ResilientServices reliable, scalable and safely deployable.")
    parser.add_argument("-n", "--namespace", action="append", default=[],
                        help="watch only this namespace (repeatable); default: all namespaces")
    parser.add_argument("--metrics-port", type=int, default=SETTINGS.metrics_port,
                        help="port of the Prometheus /metrics endpoint (0 disables it)")
    parser.add_argument("--metrics-address", default=SETTINGS.metrics_address)
    parser.add_argument("--liveness", default="",
                        help="liveness endpoint, e.g. http://0.0.0.0:8081/healthz")
    parser.add_argument("--leader-elect", action="store_true",
                        default=SETTINGS.leader_elect,
                        help="act only while holding the Lease (for more than one replica)")
    parser.add_argument("--lease-namespace", default=SETTINGS.lease_namespace)
    parser.add_argument("--workers", type=int, default=SETTINGS.workers)
    parser.add_argument("--log-format", choices=["plain", "json"], default=SETTINGS.log_format,
                        help="json: one JSON object a line, with namespace, service, pod and "
                             "reason fields on every action (for log pipelines)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    cfg = SETTINGS
    cfg.metrics_port = args.metrics_port
    cfg.metrics_address = args.metrics_address
    cfg.leader_elect = args.leader_elect
    cfg.lease_namespace = args.lease_namespace
    cfg.workers = args.workers
    cfg.namespaces = args.namespace
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.JSON
                   if args.log_format == "json" else kopf.LogFormat.PLAIN)
    for noisy in ("kopf.objects", "kopf._core.reactor.observation", "kopf.activities.startup"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    quiet_api_retries()
    # the kubernetes client's pool logs each of its own retries; Api reports the failure once
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    kopf.run(
        standalone=True,  # no kopf peering: one Lease decides who acts (see leader.py)
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        liveness_endpoint=args.liveness or None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
