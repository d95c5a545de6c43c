"""The pydantic models enforce the same rules as the CRD."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from resilient_operator.resource.models import parse_duration, parse_spec, resolve_int_or_percent


def test_sample_parses_with_every_section(sample):
    spec = parse_spec(sample["spec"])
    assert spec.service and spec.availability and spec.autoscaling
    assert spec.availability.zone_spread is not None
    assert spec.healing.mode == "Enabled"


def test_defaults():
    spec = parse_spec({"template": {"spec": {"containers": [{"name": "a", "image": "b"}]}}})
    assert spec.replicas == 1
    assert spec.healing.not_ready_timeout == "60s"
    assert spec.healing.max_concurrent == 1
    assert spec.healing.storm_threshold == "50%"


@pytest.mark.parametrize("mutate, field", [
    (lambda s: s["autoscaling"].update(minReplicas=11), "minReplicas"),
    (lambda s: s["availability"].update(maxUnavailable=1), "minAvailable"),
    (lambda s: s["availability"].update(minAvailable="150%"), "percentage"),
    (lambda s: s["healing"].update(notReadyTimeout="soon"), "duration"),
    (lambda s: s["template"]["metadata"]["labels"].update(
        {"app.kubernetes.io/name": "x"}), "app.kubernetes.io/name"),
    (lambda s: s.update(replicas=-1), "replicas"),
    (lambda s: s["healing"].update(mode="Sometimes"), "mode"),
    (lambda s: s["template"]["spec"].update(containers=[]), "containers"),
    (lambda s: s["service"]["ports"].append({"port": 81}), "name"),
])
def test_invalid_specs_are_rejected(sample, mutate, field):
    spec = copy.deepcopy(sample["spec"])
    mutate(spec)
    with pytest.raises(ValidationError) as err:
        parse_spec(spec)
    assert field.lower() in str(err.value).lower()


@pytest.mark.parametrize("text, seconds", [
    ("60s", 60), ("10m", 600), ("1h30m", 5400), ("250ms", 0.25), ("1.5s", 1.5)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@given(st.integers(0, 100), st.integers(0, 1000))
def test_percent_rounding(pct, total):
    up = resolve_int_or_percent(f"{pct}%", total, round_up=True)
    down = resolve_int_or_percent(f"{pct}%", total, round_up=False)
    assert down <= pct * total / 100 <= up
    assert up - down <= 1


def test_desired_replicas_are_clamped_by_autoscaling(sample):
    spec = copy.deepcopy(sample["spec"])
    spec["replicas"] = 50
    assert parse_spec(spec).desired_replicas() == 10
    spec["replicas"] = 1
    assert parse_spec(spec).desired_replicas() == 3
    del spec["autoscaling"]
    assert parse_spec(spec).desired_replicas() == 1


@pytest.mark.parametrize("key", [
    "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by"])
def test_a_template_that_sets_a_label_the_operator_owns_is_rejected(sample, key):
    # the selector is derived from these three labels: a template setting one would break it
    spec = copy.deepcopy(sample["spec"])
    spec["template"]["metadata"]["labels"][key] = "mine"
    with pytest.raises(ValidationError) as err:
        parse_spec(spec)
    assert key in str(err.value)
