#!/usr/bin/env bash
# The Dockerfile's base image, built from Debian's packages, for machines that reach Debian's
# package mirror but no container registry.
#
#   e2e/offline-base.sh [ENGINE]    ENGINE: podman (default) or docker
#
# Reads the base name from the Dockerfile (ARG PYTHON_IMAGE, e.g. python:3.11-slim), builds a
# minimal Debian root filesystem with mmdebstrap holding python3 of the same minor version (3.11
# is Debian 12 "bookworm", 3.13 Debian 13 "trixie"), plus python3-venv (pip, through ensurepip)
# and CA certificates, and imports it under the name the registry would give it
# (docker.io/library/python:3.11-slim), so the Dockerfile builds unchanged. The root filesystem is
# cached as a tarball in ~/.cache/resilient-operator/image-base/ (rebuilt after 30 days, or when
# deleted), so a new engine store needs only the import. It is the same Python, not the same
# image: Debian's python3 lives in /usr/bin, the official image's in /usr/local/bin; the Dockerfile
# only relies on `python3 -m venv`, which both have. A label on it says it was built here.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
ENGINE=${1:-podman}
CACHE=${RESILIENT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/resilient-operator}/image-base
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
MAX_AGE_DAYS=30

log() { printf '[offline-base] %s\n' "$*" >&2; }

base=$(sed -n 's/^ARG PYTHON_IMAGE=//p' "$ROOT/Dockerfile" | head -n1)
[ -n "$base" ] || { log "no 'ARG PYTHON_IMAGE=' in the Dockerfile"; exit 1; }
minor=$(sed -n 's/^python:\(3\.[0-9]*\).*/\1/p' <<<"$base")
case "$minor" in
  3.11) suite=bookworm ;;
  3.13) suite=trixie ;;
  *) log "no Debian release ships Python '${minor:-?}' (from $base); use 3.11 or 3.13"; exit 1 ;;
esac
# what `docker pull python:3.11-slim` would store it as
case "$base" in
  */*/*) ref=$base ;;
  */*)   ref=docker.io/$base ;;
  *)     ref=docker.io/library/$base ;;
esac

mkdir -p "$CACHE"
tarball=$CACHE/$suite-python$minor.tar
if [ -s "$tarball" ] && [ -z "$(find "$tarball" -mtime +$MAX_AGE_DAYS)" ]; then
  log "reusing $tarball"
else
  command -v mmdebstrap >/dev/null 2>&1 ||
    { log "mmdebstrap is missing (e2e/container-setup.sh setup installs it)"; exit 1; }
  log "building a Debian $suite root filesystem with python$minor into $tarball"
  # no documentation, manuals or translations: the official slim image has none either
  # merged /usr set up by mmdebstrap's hook, not by the usrmerge package (which drags in perl)
  mmdebstrap --variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --format=tar --include=python3,python3-venv,ca-certificates,netbase,tzdata \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*' \
    --customize-hook='find "$1"/usr/lib/python3* -name __pycache__ -prune -exec rm -rf {} +' \
    "$suite" "$tarball.partial" \
    "deb $MIRROR $suite main" "deb $MIRROR $suite-updates main" \
    "deb $SECURITY_MIRROR $suite-security main" >"$CACHE/mmdebstrap.log" 2>&1 ||
    { tail -n 30 "$CACHE/mmdebstrap.log" >&2; log "mmdebstrap failed ($CACHE/mmdebstrap.log)"
      rm -f "$tarball.partial"; exit 1; }
  mv "$tarball.partial" "$tarball"
fi

version=$(tar -xOf "$tarball" ./var/lib/dpkg/status |
  awk '/^Package: python'"$minor"'-minimal$/{p=1} p&&/^Version:/{print $2; exit}')
log "importing it as $ref (Debian python$minor $version)"
"$ENGINE" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --change "LABEL dev.resilience.offline-base=\"Debian $suite python$minor $version, e2e/offline-base.sh\"" \
  "$tarball" "$ref" >/dev/null
echo "$ref"
