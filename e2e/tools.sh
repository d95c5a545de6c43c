#!/usr/bin/env bash
# The manifest tools, built from Go modules with the ordinary `go` client and cached by version
# (the same way e2e/cluster.sh builds the local cluster): helm, kustomize (the version kubectl
# v1.35 embeds, so `make lint` renders manifests/ without a cluster's kubectl), kubeconform,
# kube-score, krew and its manifest validator.
#
#   e2e/tools.sh build NAME   build NAME unless it is cached; print the binary's path (idempotent)
#   e2e/tools.sh path NAME    print the path NAME is (or would be) built to
#   e2e/tools.sh versions     print each tool's pinned version
#
# None of these modules carries replace directives, so `go install module/cmd@version` builds
# each one directly; a tool whose go.mod gains them would need the throw-away wrapper module
# e2e/cluster.sh uses for Kubernetes and etcd.
set -euo pipefail

HELM_VERSION=${HELM_VERSION:-v3.22.0}
KUSTOMIZE_VERSION=${KUSTOMIZE_VERSION:-v5.7.1}
KUBECONFORM_VERSION=${KUBECONFORM_VERSION:-v0.8.0}
KUBE_SCORE_VERSION=${KUBE_SCORE_VERSION:-v1.20.0}
KREW_VERSION=${KREW_VERSION:-v0.4.3}

CACHE=${RESILIENT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/resilient-operator}
TOOLS=$CACHE/tools

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false

log() { printf '[tools] %s\n' "$*" >&2; }

# name -> "version package binary ldflags"
spec() {
  case $1 in
    helm)
      # the Kubernetes version helm assumes without a cluster (helm template, helm lint): its
      # Makefile sets it from the client-go of its go.mod (v0.37 for v3.22.0), else it is 1.20
      local k="-X helm.sh/helm/v3/pkg/chartutil.k8sVersion"
      local l="-X helm.sh/helm/v3/pkg/lint/rules.k8sVersion"
      echo "$HELM_VERSION helm.sh/helm/v3/cmd/helm helm" \
        "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
        "${k}Major=1 ${k}Minor=37 ${l}Major=1 ${l}Minor=37" ;;
    kustomize)
      echo "$KUSTOMIZE_VERSION sigs.k8s.io/kustomize/kustomize/v5 kustomize" \
        "-X sigs.k8s.io/kustomize/api/provenance.version=kustomize/$KUSTOMIZE_VERSION" ;;
    kubeconform)
      echo "$KUBECONFORM_VERSION github.com/yannh/kubeconform/cmd/kubeconform kubeconform" \
        "-X main.version=$KUBECONFORM_VERSION" ;;
    kube-score)
      echo "$KUBE_SCORE_VERSION github.com/zegl/kube-score/cmd/kube-score kube-score" \
        "-X main.version=$KUBE_SCORE_VERSION" ;;
    validate-krew-manifest)
      echo "$KREW_VERSION sigs.k8s.io/krew/cmd/validate-krew-manifest validate-krew-manifest" \
        "-X sigs.k8s.io/krew/internal/version.gitTag=$KREW_VERSION" ;;
    krew)
      echo "$KREW_VERSION sigs.k8s.io/krew/cmd/krew krew" \
        "-X sigs.k8s.io/krew/internal/version.gitTag=$KREW_VERSION" ;;
    *) log "unknown tool: $1 (see: $0 versions)"; exit 2 ;;
  esac
}

path_of() {
  local version pkg bin ldflags
  spec "$1" >/dev/null || exit 2
  read -r version pkg bin ldflags <<<"$(spec "$1")"
  echo "$TOOLS/$1/$version/$bin"
}

build_tool() {
  local version pkg bin ldflags
  spec "$1" >/dev/null || exit 2
  read -r version pkg bin ldflags <<<"$(spec "$1")"
  local dir=$TOOLS/$1/$version
  if [ ! -x "$dir/$bin" ]; then
    if ! command -v go >/dev/null 2>&1; then
      log "\`go\` is not installed; $1 is built from Go modules (Go 1.26 or newer)"
      exit 1
    fi
    log "building $1 $version into $dir (go install $pkg@$version)"
    mkdir -p "$dir"
    # built aside, then renamed: a concurrent build or an interrupted one leaves no half binary
    local tmp; tmp=$(mktemp -d "$dir/.build.XXXXXX")
    GOBIN=$tmp go install -trimpath -ldflags="-s -w $ldflags" "$pkg@$version"
    mv "$tmp/$bin" "$dir/$bin"
    rmdir "$tmp"
  fi
  echo "$dir/$bin"
}

case ${1:-} in
  build) [ $# -eq 2 ] || { log "usage: $0 build NAME"; exit 2; }; build_tool "$2" ;;
  path) [ $# -eq 2 ] || { log "usage: $0 path NAME"; exit 2; }; path_of "$2" ;;
  versions)
    for t in helm kustomize kubeconform kube-score validate-krew-manifest krew; do
      echo "$t $(spec "$t" | cut -d' ' -f1)"
    done ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
