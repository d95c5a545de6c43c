"""What the API server makes of the CRD's schema: int-or-string fields, defaults it fills in, and
what `kubectl explain` shows of them."""

from __future__ import annotations

import json

from .conftest import apply, get, kubectl, rsvc

INT_OR_STRING = {"availability": ["minAvailable", "maxUnavailable"],
                 "healing": ["maxConcurrent", "stormThreshold"], "rollout": ["maxSurge"]}


def test_int_or_percent_fields_are_int_or_string_and_explain_says_so(cluster: None) -> None:
    # the API server publishes them as int-or-string (anyOf integer, string)
    doc = json.loads(kubectl("get", "--raw", "/openapi/v3/apis/resilience.dev/v1alpha1").stdout)
    schema = next(s for n, s in doc["components"]["schemas"].items()
                  if n.endswith(".ResilientService"))
    spec = schema["properties"]["spec"]["properties"]
    fields = {f"{section}.{f}": spec[section]["properties"][f]
              for section, names in INT_OR_STRING.items() for f in names}
    fields["service.ports.targetPort"] = spec["service"]["properties"]["ports"]["items"][
        "properties"]["targetPort"]
    for dotted, field in fields.items():
        assert field.get("x-kubernetes-int-or-string") is True, dotted
        assert field.get("anyOf") == [{"type": "integer"}, {"type": "string"}], dotted
    # and kubectl explain, which prints <Object> for a CRD field without a type, reads it in the
    # description, with the default
    text = kubectl("explain", "rsvc.spec.healing.maxConcurrent").stdout
    assert "Type: <int-or-string>. Default: 1." in text, text
    text = kubectl("explain", "rsvc.spec.rollout").stdout
    assert "maxSurge\t<Object>" in text and "Type: <int-or-string>. Default: 25%." in text, text


def test_the_api_server_fills_in_the_defaults(ns: str) -> None:
    # given a resource with no healing or rollout section
    apply(rsvc("web", 1), ns)
    # then the API server stores every default of the schema
    spec = get("rsvc", "web", ns)["spec"]
    assert spec["healing"]["maxConcurrent"] == 1
    assert spec["healing"]["stormThreshold"] == "50%"
    assert spec["rollout"]["maxSurge"] == "25%"
    assert spec["rollout"]["strategy"] == "Rolling"
    assert spec["rollout"]["health"]["startTimeout"] == "5m"
    assert "availability" not in spec and "autoscaling" not in spec
