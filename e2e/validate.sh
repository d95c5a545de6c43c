#!/usr/bin/env bash
# The manifest checks of `make lint`: offline, no cluster, nothing downloaded but Go modules
# (the tools are built by e2e/tools.sh on first use).
#
#   helm lint --strict     the chart, with its default values and with every option (ci/)
#   kubeconform -strict    manifests/, every overlay, manifests/samples/ and the chart's rendered
#                          output, against schemas/ (from the API server's own OpenAPI, `make
#                          schemas`) and the schema of our CRD (made here from crds/)
#   kube-score             the same objects; every finding fails, except those ignored with a
#                          reason (the kube-score/ignore annotation in manifests/base/deployment.yaml,
#                          and --ignore-container-cpu-limit: see the comment on its resources)
#   validate-krew-manifest plugins/krew/rsvc.yaml, krew's own check
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-.venv/bin/python}
CHART=charts/resilient-operator
KUBE_VERSION=v1.35.4  # the local cluster's, which schemas/ was generated from

tool() { bash e2e/tools.sh build "$1"; }
HELM=$(tool helm)
KUSTOMIZE=$(tool kustomize)
KUBECONFORM=$(tool kubeconform)
KUBE_SCORE=$(tool kube-score)
KREW_VALIDATE=$(tool validate-krew-manifest)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step() { printf '[validate] %s\n' "$*"; }

step "helm lint --strict $CHART"
"$HELM" lint --strict --quiet "$CHART" --namespace resilient-system
for values in "$CHART"/ci/*-values.yaml; do
  "$HELM" lint --strict --quiet "$CHART" --namespace resilient-system -f "$values"
done

step "render: kustomize manifests/ and overlays, helm template $CHART"
mkdir -p "$work/rendered"
"$KUSTOMIZE" build manifests > "$work/rendered/manifests.yaml"
for overlay in manifests/overlays/*/; do
  "$KUSTOMIZE" build "$overlay" > "$work/rendered/overlay-$(basename "$overlay").yaml"
done
render() {  # $1: output name, then helm flags
  local name=$1; shift
  "$HELM" template resilient-operator "$CHART" --namespace resilient-system --include-crds \
    --kube-version "$KUBE_VERSION" "$@" > "$work/rendered/$name.yaml"
}
render chart-default
for values in "$CHART"/ci/*-values.yaml; do
  render "chart-$(basename "$values" .yaml)" -f "$values"
done

step "kubeconform -strict (schemas/ of Kubernetes $KUBE_VERSION, and crds/)"
"$PYTHON" e2e/kube_schemas.py crd "$work/schemas" crds/*.yaml > /dev/null
# The Prometheus Operator's kinds are skipped: neither this repository nor the local cluster
# has their CRDs to make a schema from (the chart's are compared with the overlay's instead,
# tests/test_chart.py).
"$KUBECONFORM" -strict -summary -skip ServiceMonitor,PodMonitor,PrometheusRule \
  -schema-location 'schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json' \
  -schema-location "$work/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
  "$work/rendered" manifests/samples

step "kube-score"
set +e
"$KUBE_SCORE" score --kubernetes-version "${KUBE_VERSION%.*}" --output-format ci \
  --exit-one-on-warning --ignore-container-cpu-limit \
  --enable-optional-test container-seccomp-profile \
  --enable-optional-test container-ports-check \
  "$work"/rendered/*.yaml > "$work/kube-score.txt"
status=$?
set -e
grep -vE '^\[(OK|SKIPPED)\]' "$work/kube-score.txt" || true
printf '[validate] kube-score: %s OK, %s skipped or ignored, %s findings\n' \
  "$(grep -c '^\[OK\]' "$work/kube-score.txt")" \
  "$(grep -c '^\[SKIPPED\]' "$work/kube-score.txt")" \
  "$(grep -cvE '^\[(OK|SKIPPED)\]' "$work/kube-score.txt")"
[ "$status" = 0 ] || exit "$status"

step "validate-krew-manifest plugins/krew/rsvc.yaml"
# -skip-install: installing would download the archive from its uri, published only at a release
"$KREW_VALIDATE" -manifest plugins/krew/rsvc.yaml -skip-install > "$work/krew.txt" 2>&1 \
  || { cat "$work/krew.txt"; exit 1; }
step "all manifests valid"
