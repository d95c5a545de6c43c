#!/usr/bin/env bash
# The operator's image, built from the Dockerfile with whichever engine works here.
#
#   e2e/image.sh build    build resilient-operator:<version of pyproject.toml> (or $IMAGE),
#                         print its name on stdout, its size and the build time on stderr
#   e2e/image.sh name     print the name only
#
# The engine: e2e/container-setup.sh engine (Docker when a daemon answers, else podman once
# `e2e/container-setup.sh setup` has run). The base (ARG PYTHON_IMAGE of the Dockerfile) is used
# when the engine has it, else pulled, and when no registry answers, built from Debian's packages
# by e2e/offline-base.sh under the same name. The host's CA bundle is passed to pip as a build
# secret (a TLS-intercepting proxy), never stored in the image. Layers are cached by the engine:
# a rebuild with no change to pyproject.toml, README.md or operator/ takes seconds.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -n1)
IMAGE=${IMAGE:-resilient-operator:$version}

log() { printf '[image] %s\n' "$*" >&2; }

ca_bundle() {
  local f
  for f in "${BUILD_CA_BUNDLE:-}" "${PIP_CERT:-}" "${SSL_CERT_FILE:-}" \
           /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
    if [ -n "$f" ] && [ -s "$f" ]; then echo "$f"; return 0; fi
  done
}

build() {
  local engine base start ca args=()
  engine=$(bash "$HERE/container-setup.sh" engine)
  base=$(sed -n 's/^ARG PYTHON_IMAGE=//p' "$ROOT/Dockerfile" | head -n1)
  if ! "$engine" image inspect "$base" >/dev/null 2>&1; then
    if timeout 120 "$engine" pull -q "$base" >/dev/null 2>&1; then
      log "pulled $base"
    else
      log "cannot pull $base (no registry reachable): building it from Debian's packages"
      bash "$HERE/offline-base.sh" "$engine" >/dev/null
    fi
  fi
  ca=$(ca_bundle || true)
  [ -z "$ca" ] || args+=(--secret "id=ca,src=$ca")
  # podman: the build's RUN steps use the host's network (no bridge or DNS set-up needed)
  [ "$engine" != podman ] || args+=(--network=host)
  [ "$engine" != docker ] || export DOCKER_BUILDKIT=1
  start=$(date +%s)
  log "building $IMAGE with $engine"
  "$engine" build "${args[@]}" -t "$IMAGE" -f "$ROOT/Dockerfile" "$ROOT" >&2
  local size
  size=$("$engine" image inspect --format '{{.Size}}' "$IMAGE")
  log "built $IMAGE in $(( $(date +%s) - start )) s: $(( (size + 500000) / 1000000 )) MB"
  echo "$IMAGE"
}

case "${1:-}" in
  build) build ;;
  name) echo "$IMAGE" ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
