"""kubeconform with the schemas make lint uses (schemas/ and the one made from crds/) refuses what
the API server would refuse or silently prune, and admits int-or-string values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT

SAMPLE = yaml.safe_load((ROOT / "manifests/samples/web.yaml").read_text())


def kubeconform(tmp_path: Path, *docs: dict) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["bash", str(ROOT / "e2e/tools.sh"), "build", "kubeconform"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"kubeconform could not be built from Go modules: {done.stderr[-300:]}")
    schemas = tmp_path / "schemas"
    subprocess.run([sys.executable, str(ROOT / "e2e/kube_schemas.py"), "crd", str(schemas),
                    str(ROOT / "crds/resilientservices.resilience.dev.yaml")], check=True,
                   capture_output=True)
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump_all(docs))
    template = "{{ .ResourceKind }}{{ .KindSuffix }}.json"
    return subprocess.run([done.stdout.strip(), "-strict", "-schema-location",
                           f"{ROOT}/schemas/{template}", "-schema-location",
                           f"{schemas}/{template}", str(manifest)],
                          capture_output=True, text=True)


def with_spec(**changes: object) -> dict:
    doc = yaml.safe_load(yaml.safe_dump(SAMPLE))
    doc["spec"].update(changes)
    return doc


def test_the_sample_is_valid_and_int_or_string_takes_both(tmp_path: Path) -> None:
    as_percent = with_spec(availability={"minAvailable": "50%"})
    assert kubeconform(tmp_path, SAMPLE, as_percent).returncode == 0


def test_a_misspelt_field_is_refused(tmp_path: Path) -> None:
    done = kubeconform(tmp_path, with_spec(replicaz=3))
    assert done.returncode != 0 and "replicaz" in done.stdout, done.stdout
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "x"}, "spec": {"replica": 2}}
    done = kubeconform(tmp_path, deployment)
    assert done.returncode != 0 and "replica" in done.stdout, done.stdout


def test_a_value_of_the_wrong_type_is_refused(tmp_path: Path) -> None:
    done = kubeconform(tmp_path, with_spec(availability={"minAvailable": {"pods": 2}}))
    assert done.returncode != 0 and "minAvailable" in done.stdout, done.stdout
