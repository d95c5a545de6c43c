"""The operator's settings: one object, from the command line or the environment."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field


@dataclass
class Settings:
    """Operator settings, from the command line or the environment."""

    metrics_port: int = int(os.environ.get("RESILIENT_METRICS_PORT", "8080"))
    metrics_address: str = os.environ.get("RESILIENT_METRICS_ADDRESS", "0.0.0.0")
    workers: int = int(os.environ.get("RESILIENT_WORKERS", "16"))
    log_format: str = os.environ.get("RESILIENT_LOG_FORMAT", "plain")
    resync_seconds: float = float(os.environ.get("RESILIENT_RESYNC_SECONDS", "300"))
    # how often the API server's resourceVersion is compared with the highest seen (a restore
    # of etcd from a backup shows as a drop); one LIST of one object
    restore_probe_seconds: float = float(os.environ.get("RESILIENT_RESTORE_PROBE_SECONDS", "10"))
    leader_elect: bool = os.environ.get("RESILIENT_LEADER_ELECT", "") in ("1", "true", "yes")
    lease_namespace: str = os.environ.get("RESILIENT_LEASE_NAMESPACE", "resilient-system")
    lease_name: str = os.environ.get("RESILIENT_LEASE_NAME", "resilient-operator")
    lease_seconds: int = int(os.environ.get("RESILIENT_LEASE_SECONDS", "10"))
    identity: str = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    namespaces: list[str] = field(default_factory=list)


SETTINGS = Settings()
