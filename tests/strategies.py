"""Hypothesis strategies for ResilientService specs (shared by unit and e2e tests)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

int_or_percent = st.one_of(st.integers(0, 20), st.integers(0, 100).map(lambda p: f"{p}%"))
durations = st.builds(lambda n, u: f"{n}{u}", st.integers(1, 600), st.sampled_from(["s", "m"]))
label_keys = st.sampled_from(["tier", "team", "example.com/owner", "version"])
label_values = st.from_regex(r"\A[a-z][a-z0-9]{0,8}\Z")


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    """Specs the models accept (the validation of each part is drawn to pass)."""
    spec: dict[str, Any] = {
        "replicas": draw(st.integers(0, 12)),
        "template": {
            "metadata": {"labels": draw(st.dictionaries(label_keys, label_values, max_size=3))},
            "spec": {"containers": [{
                "name": "app", "image": "registry.example/app:1",
                "resources": {"requests": {"cpu": draw(st.sampled_from(["50m", "0.1", "1"])),
                                           "memory": "32Mi"}},
            }]},
        },
    }
    if draw(st.booleans()):
        n = draw(st.integers(1, 3))
        spec["service"] = {
            "type": draw(st.sampled_from(["ClusterIP", "NodePort"])),
            "ports": [{"name": f"p{i}", "port": 80 + i, "targetPort": 8080 + i}
                      for i in range(n)],
        }
    if draw(st.booleans()):
        avail: dict[str, Any] = {}
        which = draw(st.sampled_from(["min", "max", "none"]))
        if which == "min":
            avail["minAvailable"] = draw(int_or_percent)
        elif which == "max":
            avail["maxUnavailable"] = draw(int_or_percent)
        if draw(st.booleans()):
            avail["zoneSpread"] = {"maxSkew": draw(st.integers(1, 3)),
                                   "whenUnsatisfiable": draw(st.sampled_from(
                                       ["ScheduleAnyway", "DoNotSchedule"]))}
        spec["availability"] = avail
    if draw(st.booleans()):
        low = draw(st.integers(1, 5))
        spec["autoscaling"] = {"minReplicas": low, "maxReplicas": draw(st.integers(low, 20))}
        if draw(st.booleans()):
            spec["autoscaling"]["targetCPUUtilizationPercentage"] = draw(st.integers(10, 90))
        if draw(st.booleans()):
            spec["autoscaling"]["targetMemoryUtilizationPercentage"] = draw(st.integers(10, 90))
    if draw(st.booleans()):
        spec["healing"] = {
            "mode": draw(st.sampled_from(["Enabled", "ObserveOnly", "Disabled"])),
            "notReadyTimeout": draw(durations),
            "maxConcurrent": draw(int_or_percent),
            "stormThreshold": draw(int_or_percent),
        }
    return spec
