"""The embedded local cluster: built from Go modules only, and reporting the pinned version."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT, kubectl

SCRIPT = ROOT / "e2e/cluster.sh"


def pinned(name: str) -> str:
    match = re.search(rf'^{name}=\$\{{{name}:-(v[0-9.]+)\}}', SCRIPT.read_text(), re.M)
    assert match, name
    return match.group(1)


def local_cluster() -> bool:
    return "resilient-operator/kwok-home" in os.environ.get("KUBECONFIG", "")


@pytest.mark.skipif(not local_cluster(), reason="KUBECONFIG is not the embedded local cluster")
def test_every_binary_is_local_and_nothing_is_downloaded() -> None:
    dry = subprocess.run(["bash", str(SCRIPT), "dry-run"], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "CLUSTER_NAME": "dry-run-check"})
    assert dry.returncode == 0, dry.stderr
    fetched = [line for line in dry.stdout.splitlines() if line.startswith("# Download")]
    assert fetched, dry.stdout[:2000]
    assert all(" /" in line and "http" not in line for line in fetched), fetched
    assert "--bind-address=127.0.0.1" in dry.stdout


@pytest.mark.skipif(not local_cluster(), reason="KUBECONFIG is not the embedded local cluster")
def test_the_api_server_reports_the_pinned_version_and_three_zones() -> None:
    version = json.loads(kubectl("get", "--raw", "/version").stdout)
    assert version["gitVersion"] == pinned("K8S_VERSION")
    nodes = json.loads(kubectl("get", "nodes", "-l", "type=kwok", "-o", "json").stdout)["items"]
    zones = [n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes]
    assert sorted(set(zones)) == ["zone-a", "zone-b", "zone-c"] and len(zones) == 6
    assert all(n["status"]["allocatable"]["cpu"] == "32" for n in nodes)
    assert Path(os.environ["KUBECONFIG"]).exists()
