from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import Phase, settings

# make mutation: the same examples on every run, and no shrinking (one failure kills a mutant)
settings.register_profile("mutation", derandomize=True, database=None,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate])

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sample() -> dict:
    return yaml.safe_load((ROOT / "manifests/samples/web.yaml").read_text())
