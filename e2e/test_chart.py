"""Installing with Helm: `helm install` of charts/resilient-operator into a namespace that
enforces the restricted Pod Security Standard, as the README's install section says."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from .conftest import ROOT, get, kubectl, wait_for

CHART = ROOT / "charts/resilient-operator"
RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted"
              for mode in ("enforce", "warn", "audit")}


@pytest.fixture(scope="module")
def helm_bin() -> str:
    done = subprocess.run(["bash", str(ROOT / "e2e/tools.sh"), "build", "helm"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"helm could not be built from Go modules: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


def helm(helm_bin: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([helm_bin, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"helm {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def restricted_ns(ns: str) -> str:
    """The test's namespace, labelled as the README tells a Helm user to label it."""
    kubectl("label", "namespace", ns, *(f"{k}={v}" for k, v in RESTRICTED.items()))
    return ns


@pytest.fixture
def release(helm_bin: str, restricted_ns: str) -> Iterator[tuple[str, str]]:
    # a name of its own, so its cluster-wide RBAC never meets another install's (the CRD exists
    # already: Helm leaves it alone)
    name = f"rsvc-{restricted_ns[-5:]}"
    yield name, restricted_ns
    subprocess.run([helm_bin, "uninstall", name, "-n", restricted_ns, "--wait=false"],
                   capture_output=True, text=True, timeout=120)


def test_helm_install_is_admitted_under_the_restricted_pod_security_standard(
        helm_bin: str, release: tuple[str, str]) -> None:
    name, ns = release
    # when the chart is installed with its defaults (two replicas)
    done = helm(helm_bin, "install", name, str(CHART), "-n", ns,
                "--set", f"fullnameOverride={name}")
    assert "kubectl -n " + ns + " rollout status deployment/" + name in done.stdout  # NOTES
    # then both operator pods pass the API server's Pod Security admission (whether they are
    # scheduled is up to the nodes: KWOK's fake nodes have no ephemeral storage to offer)
    pods = wait_for("2 operator pods admitted", lambda: len(p := get(
        "pods", namespace=ns, selector=f"app.kubernetes.io/name={name}") or []) == 2 and p,
        timeout=90)
    spec = pods[0]["spec"]
    assert [c["topologyKey"] for c in spec["topologySpreadConstraints"]] == [
        "kubernetes.io/hostname", "topology.kubernetes.io/zone"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["containers"][0]["args"] == ["--leader-elect", f"--lease-namespace={ns}"]
    # and the release made what the chart promises, RBAC included
    assert get("networkpolicy", name, ns) and get("poddisruptionbudget", name, ns)
    assert get("clusterrole", f"{name}-reconcile") and get("role", f"{name}-leader-election", ns)
    sa = f"system:serviceaccount:{ns}:{name}"
    assert kubectl("auth", "can-i", "create", "pods", "--subresource=eviction", f"--as={sa}",
                   "-n", "default", check=False).stdout.strip() == "yes"
    assert kubectl("auth", "can-i", "get", "secrets", f"--as={sa}", "-n", ns,
                   check=False).stdout.strip() == "no"
    # and the same pod without its securityContext is refused there: the enforcement is real
    template = get("deployment", name, ns)["spec"]["template"]["spec"]
    template["containers"][0].pop("securityContext")
    template.pop("securityContext")
    bad = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "not-restricted", "namespace": ns}, "spec": template}
    refused = kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(bad), check=False)
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr, refused.stderr
