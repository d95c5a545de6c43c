"""kubectl rsvc installed the krew way: the archive `make krew` builds, installed by krew itself
from its manifest (no index, nothing published), runs. Needs no cluster; its first run installs
the plugin's dependencies from PyPI into a virtualenv, so it takes a minute or more."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT


def test_krew_installs_the_archive_and_the_plugin_runs(tmp_path: Path) -> None:
    done = subprocess.run(["bash", str(ROOT / "e2e/tools.sh"), "build", "krew"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"krew could not be built from Go modules: {done.stderr.strip()[-300:]}")
    krew = done.stdout.strip()
    spec = importlib.util.spec_from_file_location("krew_build", ROOT / "plugins/krew/build.py")
    assert spec and spec.loader
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    # given the archive and its manifest, as make krew writes them
    manifest = tmp_path / "rsvc.yaml"
    archive = build.build(tmp_path / "dist", "https://releases.example", manifest)
    # when krew installs them (its --archive: the manifest's uri is not fetched)
    env = {**os.environ, "KREW_ROOT": str(tmp_path / "krew"),
           "KUBECTL_RSVC_HOME": str(tmp_path / "home")}
    done = subprocess.run([krew, "install", f"--manifest={manifest}", f"--archive={archive}"],
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    # then the plugin on krew's PATH runs (its first run makes its virtualenv)
    plugin = tmp_path / "krew/bin/kubectl-rsvc"
    done = subprocess.run([str(plugin), "version", "--client"], capture_output=True, text=True,
                          env=env, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == f"kubectl-rsvc {build.version()}\n"
    assert "first run, installing" in done.stderr
    done = subprocess.run([str(plugin), "status", "--help"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("usage: kubectl rsvc status")
