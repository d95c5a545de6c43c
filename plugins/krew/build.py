"""The krew archive of `kubectl rsvc` and its manifest.

    python plugins/krew/build.py DIST_DIR URL_BASE   (make krew)

writes DIST_DIR/kubectl-rsvc-v<version>.tar.gz (the launcher ``kubectl-rsvc`` and the wheel of
resilient-operator) and plugins/krew/rsvc.yaml with its sha256 and its address,
URL_BASE/v<version>/kubectl-rsvc-v<version>.tar.gz. Install it without publishing it:

    kubectl krew install --manifest=plugins/krew/rsvc.yaml \\
        --archive=DIST_DIR/kubectl-rsvc-v<version>.tar.gz
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MANIFEST = HERE / "rsvc.yaml"


def version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def manifest(v: str, uri: str, sha256: str) -> dict:
    """The krew Plugin manifest: one archive for Linux and macOS (the launcher is sh, the
    plugin Python)."""
    return {
        "apiVersion": "krew.googlecontainertools.github.com/v1alpha2",
        "kind": "Plugin",
        "metadata": {"name": "rsvc"},
        "spec": {
            "version": f"v{v}",
            "shortDescription": "Follow and steer rollouts of ResilientServices",
            "description": (
                "Shows the canary steps, weights, pods and conditions of a ResilientService\n"
                "(resilience.dev) rollout, follows it to completion or abort, and sends the\n"
                "operator promote, abort and retry commands; pause and resume hold a rollout.\n"
                "`kubectl rsvc version` prints the plugin, CRD and operator versions.\n"),
            "caveats": (
                "The plugin is written in Python: it needs python3 (3.11 or newer). Its first\n"
                "run makes a virtualenv in ~/.local/share/kubectl-rsvc (KUBECTL_RSVC_HOME)\n"
                "and installs its dependencies there from PyPI.\n"),
            "platforms": [{
                "selector": {"matchExpressions": [
                    {"key": "os", "operator": "In", "values": ["linux", "darwin"]}]},
                "uri": uri,
                "sha256": sha256,
                "bin": "kubectl-rsvc",
                "files": [{"from": "kubectl-rsvc", "to": "."},
                          {"from": "*.whl", "to": "."}],
            }],
        },
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks."""


_Dumper.add_representer(str, lambda d, s: d.represent_scalar(
    "tag:yaml.org,2002:str", s, style="|" if "\n" in s else None))


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def build(dist: Path, url_base: str, manifest_path: Path = MANIFEST) -> Path:
    """The archive in ``dist``, and its manifest written to ``manifest_path``."""
    v = version()
    dist.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                        "--wheel-dir", tmp, str(ROOT)], check=True)
        wheel = next(Path(tmp).glob("resilient_operator-*.whl"))
        archive = dist / f"kubectl-rsvc-v{v}.tar.gz"
        launcher = (HERE / "kubectl-rsvc").read_text().replace("@VERSION@", v)
        with tarfile.open(archive, "w:gz") as tar:
            _add(tar, "kubectl-rsvc", launcher.encode(), 0o755)
            _add(tar, wheel.name, wheel.read_bytes(), 0o644)
    sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
    uri = f"{url_base.rstrip('/')}/v{v}/{archive.name}"
    head = ("# The krew manifest of kubectl rsvc, written by `make krew` (plugins/krew/build.py)\n"
            "# with the sha256 of the archive it built.\n")
    body = yaml.dump(manifest(v, uri, sha256), Dumper=_Dumper, sort_keys=False, width=100)
    manifest_path.write_text(head + body)
    return archive


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(build(Path(sys.argv[1]), sys.argv[2]))
