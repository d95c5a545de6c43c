#!/usr/bin/env bash
# A container engine that builds and runs the operator's image: Docker where an engine answers,
# else rootful podman (Debian's podman, buildah, runc), set up here.
#
#   e2e/container-setup.sh engine   print the engine that works now (docker or podman); exit 1
#                                   when none does (nothing is installed or changed)
#   e2e/container-setup.sh setup    make one work: Docker if it answers; else install podman,
#                                   buildah, runc and mmdebstrap with apt-get (only those missing)
#                                   and write /etc/containers/containers.conf and storage.conf;
#                                   then print the engine. Idempotent: run twice, changes nothing.
#
# Why the configuration: podman's default OCI runtime (crun) is not usable on machines like
# these, and its default ulimits (nofile=1048576, nproc) exceed the hard limits a sandbox may
# impose, so every container would fail to start; runc and limits within the host's work. The storage
# driver is overlay when a test mount of it succeeds here, else vfs (slower, always works).
# `make image` and `make test-image` call `engine`; `.ci/run` calls `setup`. Nothing is installed
# unless `setup` is asked for.
set -euo pipefail

CONF_DIR=${CONTAINERS_CONF_DIR:-/etc/containers}
PACKAGES=(podman buildah runc mmdebstrap)
MARK="# written by resilient-operator e2e/container-setup.sh"

log() { printf '[container-setup] %s\n' "$*" >&2; }

docker_answers() {
  command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1
}

podman_runs() {
  # `podman info` succeeds even where no container can start; this checks the configuration
  # this script writes (runc, ulimits) is in place, not just that the binary exists
  command -v podman >/dev/null 2>&1 && [ -f "$CONF_DIR/containers.conf" ] &&
    grep -qF "$MARK" "$CONF_DIR/containers.conf" && timeout 30 podman info >/dev/null 2>&1
}

engine() {
  if docker_answers; then echo docker; return 0; fi
  if podman_runs; then echo podman; return 0; fi
  return 1
}

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  if [ "$(id -u)" != 0 ]; then
    log "needs root to install ${missing[*]} (rootful podman); run it as root or with sudo"
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    log "no apt-get here: install ${missing[*]} with your package manager, or a Docker engine"
    exit 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    containernetworking-plugins catatonit uidmap fuse-overlayfs >/dev/null
}

# overlay when the kernel lets us mount it on the disk that holds container storage, else vfs
storage_driver() {
  local probe; probe=$(mktemp -d /var/tmp/overlay-probe.XXXXXX)
  mkdir -p "$probe"/{lower,upper,work,merged}
  local driver=vfs
  if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
      "$probe/merged" 2>/dev/null; then
    umount "$probe/merged"
    driver=overlay
  fi
  rm -rf "$probe"
  echo "$driver"
}

write_if_changed() {  # path, content: rewrite only when it differs
  local path=$1 content=$2
  if [ -f "$path" ] && [ "$(cat "$path")" == "$content" ]; then return 0; fi
  if [ -f "$path" ] && ! grep -qF "$MARK" "$path"; then
    cp "$path" "$path.before-resilient-operator"
    log "kept the previous $path as $path.before-resilient-operator"
  fi
  printf '%s\n' "$content" > "$path"
  log "wrote $path"
}

configure_podman() {
  mkdir -p "$CONF_DIR"
  local nofile nproc driver pid_max
  # no more than the host's hard limits (without CAP_SYS_RESOURCE they cannot be raised), and
  # no more processes than pid_max: podman's conmon runs with nproc lowered to it
  nofile=$(ulimit -Hn); nproc=$(ulimit -Hu); pid_max=$(cat /proc/sys/kernel/pid_max)
  [ "$nofile" = unlimited ] && nofile=1048576
  [ "$nofile" -le 1048576 ] || nofile=1048576
  [ "$nproc" = unlimited ] && nproc=$pid_max
  [ "$nproc" -le "$pid_max" ] || nproc=$pid_max
  write_if_changed "$CONF_DIR/containers.conf" "$MARK
[containers]
# within the host's hard limits: podman's defaults exceed them, and then no container starts
default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]
[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\""
  if [ -f "$CONF_DIR/storage.conf" ] && grep -qF "$MARK" "$CONF_DIR/storage.conf"; then
    return 0  # the driver is chosen once: changing it would orphan every stored image
  fi
  driver=$(storage_driver)
  write_if_changed "$CONF_DIR/storage.conf" "$MARK
[storage]
driver = \"$driver\"
runroot = \"/run/containers/storage\"
graphroot = \"/var/lib/containers/storage\""
}

smoke_test() {
  # a container from nothing but an empty rootfs would need an image; `podman info` and a
  # scratch build are enough to know the runtime and storage answer
  timeout 60 podman info --format '{{.Host.OCIRuntime.Name}} {{.Store.GraphDriverName}}' >&2
}

case "${1:-}" in
  engine)
    engine || { log "no container engine answers (no Docker daemon; podman not set up:" \
                    "e2e/container-setup.sh setup)"; exit 1; }
    ;;
  setup)
    if docker_answers; then echo docker; exit 0; fi
    install_packages
    configure_podman
    smoke_test
    echo podman
    ;;
  *)
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
