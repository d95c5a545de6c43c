#!/usr/bin/env bash
# Back up and restore the local cluster's etcd: the disaster-recovery drill of the README on
# the embedded cluster (e2e/cluster.sh). On a real cluster the same steps use etcdctl and
# etcdutl against its etcd members (see README, "Backup and restore").
#
#   e2e/etcd-backup.sh save FILE              a snapshot of the live etcd (its v3 API over HTTP)
#   e2e/etcd-backup.sh restore FILE [--bump]  stop the API server and etcd, restore FILE into a
#                                             fresh data dir (the old one is kept beside it),
#                                             start both again. --bump: move revisions forward
#                                             by 1e9 and mark them compacted, so that every
#                                             client's watch gets 410 Gone and relists (what
#                                             etcd's docs advise for Kubernetes); without it,
#                                             resourceVersions go back in time.
#   e2e/etcd-backup.sh build                  build etcdutl (a wrapper module, as for etcd)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
CLUSTER_NAME=${CLUSTER_NAME:-resilient}
CACHE=${RESILIENT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/resilient-operator}
KWOK_WORKDIR=${KWOK_WORKDIR:-$CACHE/kwok-home}
CLUSTER_DIR=$KWOK_WORKDIR/clusters/$CLUSTER_NAME
ETCDUTL=$CACHE/etcd/$ETCD_VERSION/etcdutl
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false

log() { printf '[etcd-backup] %s\n' "$*" >&2; }

# etcdutl's module has replace directives: build it from a wrapper whose main mounts its
# snapshot commands
build() {
  [ -x "$ETCDUTL" ] && return 0
  log "building etcdutl $ETCD_VERSION into $ETCDUTL"
  local work; work=$(mktemp -d)
  (
    cd "$work"
    go mod init resilient-operator.local/etcdutl-build >/dev/null 2>&1
    cat > main.go <<'GO'
package main

import (
	"os"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/etcdutl/v3/etcdutl"
)

func main() {
	root := &cobra.Command{Use: "etcdutl"}
	root.PersistentFlags().StringVarP(&etcdutl.OutputFormat, "write-out", "w", "simple", "output format")
	root.AddCommand(etcdutl.NewSnapshotCommand())
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}
GO
    go mod edit -require="go.etcd.io/etcd/etcdutl/v3@$ETCD_VERSION"
    go mod tidy >/dev/null
    go build -trimpath -ldflags="-s -w" -o etcdutl .
    mkdir -p "$(dirname "$ETCDUTL")"; mv etcdutl "$ETCDUTL"
  )
  rm -rf "$work"
}

arg() {  # the value of an etcd flag as kwokctl started it
  grep -o -- "--$1=[^ ]*" "$CLUSTER_DIR/kwok.yaml" | head -1 | cut -d= -f2-
}

save() {
  local file=$1 url; url=$(arg advertise-client-urls)
  # the gateway streams the snapshot as JSON objects, each with a base64 blob
  curl -sf -X POST "$url/v3/maintenance/snapshot" -d '{}' | python3 -c '
import base64, json, sys
raw, dec, i, out = sys.stdin.read(), json.JSONDecoder(), 0, bytearray()
while True:
    while i < len(raw) and raw[i].isspace():
        i += 1
    if i >= len(raw):
        break
    obj, i = dec.raw_decode(raw, i)
    if "error" in obj:
        sys.exit("snapshot failed: " + json.dumps(obj["error"]))
    out += base64.b64decode(obj["result"].get("blob", ""))
open(sys.argv[1], "wb").write(out)' "$file"
  build
  "$ETCDUTL" snapshot status "$file" -w table >&2
  log "saved $file"
}

restore() {
  local file=$1 bump=${2:-}
  build
  local data; data=$(arg data-dir)
  local extra=()
  [ "$bump" = --bump ] && extra=(--bump-revision 1000000000 --mark-compacted)
  rm -rf "$data.restored"
  "$ETCDUTL" snapshot restore "$file" --skip-hash-check --name "$(arg name)" \
    --initial-cluster "$(arg initial-cluster)" \
    --initial-advertise-peer-urls "$(arg initial-advertise-peer-urls)" \
    --data-dir "$data.restored" "${extra[@]}" >&2
  bash "$HERE/cluster.sh" stop-component kube-apiserver
  bash "$HERE/cluster.sh" stop-component etcd
  rm -rf "$data.before-restore"
  mv "$data" "$data.before-restore"
  mv "$data.restored" "$data"
  bash "$HERE/cluster.sh" start-component etcd
  bash "$HERE/cluster.sh" start-component kube-apiserver
  # as Kubernetes' own restore procedure says: restart the components that cache the API (a
  # watch resumed at a resourceVersion the restore undid waits, silent, until etcd's revision
  # passes it again). The operator is left alone: it notices by itself.
  local c
  for c in kube-controller-manager kube-scheduler kwok-controller metrics-server; do
    bash "$HERE/cluster.sh" stop-component "$c" >/dev/null 2>&1 || true
    bash "$HERE/cluster.sh" start-component "$c" >/dev/null 2>&1 || true
  done
  log "restored $file${bump:+ (revisions bumped, compacted)}; the previous data is in $data.before-restore"
}

case "${1:-}" in
  build) build; echo "$ETCDUTL" ;;
  save) [ $# = 2 ] || { echo "usage: $0 save FILE" >&2; exit 2; }; save "$2" ;;
  restore) [ $# -ge 2 ] || { echo "usage: $0 restore FILE [--bump]" >&2; exit 2; }
           restore "$2" "${3:-}" ;;
  *) sed -n '2,17p' "$0" >&2; exit 2 ;;
esac
