"""The krew manifest of kubectl rsvc is the one plugins/krew/build.py writes, for this version."""

from __future__ import annotations

import importlib.util
import re
import tomllib

import yaml

from .conftest import ROOT

KREW = ROOT / "plugins/krew"


def _build_module():
    spec = importlib.util.spec_from_file_location("krew_build", KREW / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_manifest_is_the_generated_one_for_this_version():
    committed = yaml.safe_load((KREW / "rsvc.yaml").read_text())
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    platform = committed["spec"]["platforms"][0]
    # only the archive's address and checksum come from a build (`make krew`)
    assert committed == _build_module().manifest(version, platform["uri"], platform["sha256"]), \
        "run `make krew` to regenerate plugins/krew/rsvc.yaml"
    assert committed["metadata"]["name"] == "rsvc"  # krew requires the file's name
    assert committed["spec"]["version"] == f"v{version}"
    assert re.fullmatch(r"[0-9a-f]{64}", platform["sha256"])
    assert platform["uri"].startswith("https://")
    assert platform["uri"].endswith(f"/v{version}/kubectl-rsvc-v{version}.tar.gz")


def test_the_launcher_runs_the_console_script_the_wheel_installs():
    launcher = (KREW / "kubectl-rsvc").read_text()
    assert launcher.startswith("#!/bin/sh\n")
    assert 'exec "$venv/bin/kubectl-rsvc" "$@"' in launcher
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-rsvc"] == "resilient_operator.cli.kubectl_rsvc:main"
