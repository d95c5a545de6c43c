#!/usr/bin/env bash
# Run a command against a cluster: the one KUBECONFIG names when it answers, otherwise the
# local KWOK cluster (started here; with --stop, stopped again when the command ends).
#   e2e/with-cluster.sh [--stop] -- command args...
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
stop=0
while [ $# -gt 0 ]; do
  case "$1" in
    --stop) stop=1; shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done

reachable() {
  [ -n "${KUBECONFIG:-}" ] || return 1
  command -v kubectl >/dev/null 2>&1 || return 1
  kubectl --request-timeout=5s get --raw /readyz >/dev/null 2>&1
}

if reachable; then
  echo "[cluster] using the cluster of KUBECONFIG=$KUBECONFIG" >&2
  exec "$@"
fi
eval "$(bash "$HERE/cluster.sh" up)"
if [ $stop = 1 ]; then
  trap 'bash "$HERE/cluster.sh" down' EXIT
  "$@"
else
  exec "$@"
fi
