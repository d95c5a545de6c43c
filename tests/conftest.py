from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sample() -> dict:
    return yaml.safe_load((ROOT / "manifests/samples/web.yaml").read_text())
