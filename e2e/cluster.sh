#!/usr/bin/env bash
# The embedded local Kubernetes: a real kube-apiserver, kube-controller-manager,
# kube-scheduler, etcd and metrics-server, started by KWOK's kwokctl with
# --runtime=binary, every binary built from Go modules with the ordinary `go`
# client and cached by version.
#
#   e2e/cluster.sh build    build (or reuse) the binaries
#   e2e/cluster.sh up       build if needed, start the cluster and its supervisor, create nodes
#                           (idempotent: on a running cluster it only starts what is missing)
#   e2e/cluster.sh down     stop and delete the cluster, leaving no process behind
#   e2e/cluster.sh status   say whether the cluster is running; per component: running or not, and
#                           how often the supervisor restarted it
#   e2e/cluster.sh env      print `export KUBECONFIG=...` (and PATH for kubectl)
#   e2e/cluster.sh stop-component NAME    stop one component (an outage); the supervisor leaves it
#   e2e/cluster.sh start-component NAME   ... alone until this starts it again
#   e2e/cluster.sh up --with-prometheus   also start a real Prometheus (127.0.0.1, a port of its
#                           own per cluster) that scrapes, every second, the targets listed in
#                           <cluster dir>/prometheus/targets/*.json and evaluates the shipped rules
#   e2e/cluster.sh prometheus [up|down|status]   the same for a running cluster (up by default);
#                           `down` stops it too. Run by e2e/prometheus.py (see there)
#   e2e/cluster.sh build-prometheus   build (or reuse) prometheus and promtool; print their directory
#   e2e/cluster.sh prometheus-bin     print that directory, building nothing
#
# Supervision: kube-controller-manager and kube-scheduler exit by design when they lose their
# leader lease (an API server outage does that), metrics-server may exit when it starts before
# the API server answers, and kwokctl restarts nothing. So `up` starts e2e/supervise.py (system
# python3, standard library), which restarts any component that exits, the way a kubelet restarts
# a static pod: with backoff (1 s, doubling to 30 s, back to 1 s once it stayed up 60 s), from the
# command line kwokctl started it with, each exit and restart logged in
# <cluster dir>/logs/supervisor.log. `down` stops the supervisor before the cluster.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.35.4}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
METRICS_SERVER_VERSION=${METRICS_SERVER_VERSION:-v0.9.0}
# Prometheus 3.x is published as the Go module version v0.3YY.Z (3.16.0 is v0.316.0)
PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-v3.16.0}
CLUSTER_NAME=${CLUSTER_NAME:-resilient}
NODES_PER_ZONE=${NODES_PER_ZONE:-2}
ZONES=(zone-a zone-b zone-c)

CACHE=${RESILIENT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/resilient-operator}
BIN=$CACHE/k8s/$K8S_VERSION
ETCD_BIN=$CACHE/etcd/$ETCD_VERSION
KWOK_BIN=$CACHE/kwok/$KWOK_VERSION
MS_BIN=$CACHE/metrics-server/$METRICS_SERVER_VERSION
PROM_BIN=$CACHE/prometheus/$PROMETHEUS_VERSION
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KWOK_WORKDIR=${KWOK_WORKDIR:-$CACHE/kwok-home}
CLUSTER_DIR=$KWOK_WORKDIR/clusters/$CLUSTER_NAME
PROM_HOME=$CLUSTER_DIR/prometheus
KUBECONFIG_PATH=$CLUSTER_DIR/kubeconfig.yaml
# the supervisor needs nothing but the standard library: prefer the system's python3
PYTHON3=${PYTHON3:-$(command -v /usr/bin/python3 || command -v python3 || echo python3)}

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
export KWOK_WORKDIR

log() { printf '[cluster] %s\n' "$*" >&2; }

need_go() {
  if ! command -v go >/dev/null 2>&1; then
    cat >&2 <<'MSG'
[cluster] `go` is not installed, and the local cluster is built from Go modules.
[cluster] Either install Go (https://go.dev/doc/install; 1.26 or newer) and run this again,
[cluster] or use kind instead, if you have Docker:
[cluster]     kind create cluster --config e2e/kind-config.yaml
[cluster]     export KUBECONFIG=$HOME/.kube/config   # kind writes it there
[cluster] Every make target uses the cluster KUBECONFIG names when it is reachable.
MSG
    exit 1
  fi
}

# Builds kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from
# k8s.io/kubernetes. Its go.mod replaces each k8s.io/* staging module with a
# local ./staging path, which a dependency cannot use, so a throw-away wrapper
# module requires k8s.io/kubernetes and replaces each staging module with its
# published v0.Y.Z, the list read from the go.mod the module proxy serves.
build_kubernetes() {
  local want=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  local missing=0 b
  for b in "${want[@]}"; do [ -x "$BIN/$b" ] || missing=1; done
  [ $missing = 1 ] || return 0
  need_go
  log "building Kubernetes $K8S_VERSION (${want[*]}) into $BIN; a cold build takes a while"
  local work; work=$(mktemp -d)
  local staging_version="v0.${K8S_VERSION#v1.}"
  (
    cd "$work"
    go mod init resilient-operator.local/k8s-build >/dev/null 2>&1
    go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
    # every `k8s.io/x => ./staging/...` line becomes `k8s.io/x => k8s.io/x v0.Y.Z`
    awk '/=> \.\/staging\// {print $1}' "$gomod" | sort -u | while read -r mod; do
      go mod edit -replace="$mod=$mod@$staging_version"
    done
    local pkg=k8s.io/component-base/version
    local ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1"
    ldflags+=" -X $pkg.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2) -X $pkg.gitTreeState=clean"
    ldflags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
    ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
    mkdir -p "$BIN.tmp"
    for b in "${want[@]}"; do
      local path=k8s.io/kubernetes/cmd/$b
      log "  go build $path"
      go build -mod=mod -trimpath -ldflags="$ldflags" -o "$BIN.tmp/$b" "$path"
    done
  )
  mkdir -p "$(dirname "$BIN")"
  mkdir -p "$BIN"; mv "$BIN.tmp"/* "$BIN"/; rmdir "$BIN.tmp"
  rm -rf "$work"
}

# etcd's server module also carries replace directives (to ../api and so on), so
# it is built from its own wrapper module whose main calls etcdmain.Main.
build_etcd() {
  [ -x "$ETCD_BIN/etcd" ] && return 0
  need_go
  log "building etcd $ETCD_VERSION into $ETCD_BIN"
  local work; work=$(mktemp -d)
  (
    cd "$work"
    go mod init resilient-operator.local/etcd-build >/dev/null 2>&1
    cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    go build -mod=mod -trimpath \
      -ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" \
      -o "$work/etcd" .
    mkdir -p "$ETCD_BIN"; mv "$work/etcd" "$ETCD_BIN/etcd"
  )
  rm -rf "$work"
}

build_kwok() {
  [ -x "$KWOK_BIN/kwokctl" ] && [ -x "$KWOK_BIN/kwok" ] && return 0
  need_go
  log "building kwok and kwokctl $KWOK_VERSION into $KWOK_BIN"
  mkdir -p "$KWOK_BIN"
  local v=sigs.k8s.io/kwok/pkg/consts
  GOBIN=$KWOK_BIN go install -trimpath \
    -ldflags="-s -w -X $v.Version=${KWOK_VERSION} -X $v.KubeVersion=${K8S_VERSION}" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
}

build_metrics_server() {
  [ -x "$MS_BIN/metrics-server" ] && return 0
  need_go
  log "building metrics-server $METRICS_SERVER_VERSION into $MS_BIN"
  mkdir -p "$MS_BIN"
  GOBIN=$MS_BIN go install -trimpath -ldflags="-s -w" \
    "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION"
}

# prometheus and promtool, without the web UI's assets (the API is all the tests use) and
# without the cloud service discoveries (remove_all_sd: static and file discovery remain; the
# Kubernetes one is put back for the pod relabelling of the PodMonitor), which halves the build.
# The Go module's go.mod has no replace directives: a plain `go install`. The build tags are
# recorded beside the binaries: a change of tags builds again.
PROM_TAGS=remove_all_sd,enable_kubernetes_sd
build_prometheus() {
  [ -x "$PROM_BIN/prometheus" ] && [ -x "$PROM_BIN/promtool" ] &&
    [ "$(cat "$PROM_BIN/tags" 2>/dev/null)" = "$PROM_TAGS" ] && return 0
  need_go
  local mod_version
  mod_version="v0.$(echo "${PROMETHEUS_VERSION#v}" | awk -F. '{printf "%d%02d.%d", $1, $2, $3}')"
  log "building prometheus and promtool $PROMETHEUS_VERSION ($mod_version) into $PROM_BIN; a cold build takes several minutes"
  local v=github.com/prometheus/common/version start=$SECONDS
  rm -rf "$PROM_BIN.tmp"; mkdir -p "$PROM_BIN.tmp"
  GOBIN=$PROM_BIN.tmp go install -trimpath -tags "$PROM_TAGS" \
    -ldflags="-s -w -X $v.Version=${PROMETHEUS_VERSION#v} -X $v.Revision=$mod_version -X $v.Branch=$PROMETHEUS_VERSION -X $v.BuildUser=resilient-operator -X $v.BuildDate=19700101-00:00:00" \
    "github.com/prometheus/prometheus/cmd/prometheus@$mod_version" \
    "github.com/prometheus/prometheus/cmd/promtool@$mod_version"
  echo "$PROM_TAGS" > "$PROM_BIN.tmp/tags"
  mkdir -p "$PROM_BIN"; mv -f "$PROM_BIN.tmp"/* "$PROM_BIN"/; rmdir "$PROM_BIN.tmp"
  log "built prometheus and promtool in $((SECONDS - start)) s"
}

build() {
  build_kwok
  build_etcd
  build_metrics_server
  build_kubernetes
}

kwokctl() { "$KWOK_BIN/kwokctl" --name "$CLUSTER_NAME" "$@"; }
kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
supervise() { "$PYTHON3" -I -S "$HERE/supervise.py" "$1" "$CLUSTER_DIR" "${@:2}"; }
# The supervisor holds an flock on supervisor.lock while it runs (checked without python: fast).
supervisor_running() {
  local lock=$CLUSTER_DIR/supervisor/supervisor.lock
  if command -v flock >/dev/null 2>&1; then
    [ -f "$lock" ] && ! flock -n "$lock" true
  else
    supervise running
  fi
}

write_config() {
  local conf=$KWOK_WORKDIR/$CLUSTER_NAME-kwokctl.yaml
  mkdir -p "$KWOK_WORKDIR"
  cat > "$conf" <<YAML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  kubeVersion: $K8S_VERSION
  bindAddress: 127.0.0.1
  heartbeatFactor: 1
  # no client-side QPS limits in the controllers: benchmarks measure the operator, not the
  # controller-manager's default 20 requests/s
  disableQPSLimits: true
  nodeLeaseDurationSeconds: 10
  enableMetricsServer: true
  enableCRDs: [Stage]
  kubeAuditPolicy: $HERE/audit-policy.yaml
  kubeApiserverBinary: $BIN/kube-apiserver
  kubeControllerManagerBinary: $BIN/kube-controller-manager
  kubeSchedulerBinary: $BIN/kube-scheduler
  kubectlBinary: $BIN/kubectl
  etcdBinary: $ETCD_BIN/etcd
  kwokControllerBinary: $KWOK_BIN/kwok
  metricsServerBinary: $MS_BIN/metrics-server
  metricsServerManifests: [$HERE/metrics-server]
componentsPatches:
- name: kube-apiserver
  extraArgs:
  - key: service-cluster-ip-range
    value: 10.96.0.0/16
- name: kube-controller-manager
  extraArgs:
  - key: service-cluster-ip-range
    value: 10.96.0.0/16
  - key: node-monitor-grace-period
    value: 20s
YAML
  echo "$conf"
}

create_args() {
  echo --runtime=binary --config "$(write_config)" --kubeconfig "$KUBECONFIG_PATH" \
    --heartbeat-factor=1 --wait=2m
}

running() {
  [ -f "$KUBECONFIG_PATH" ] && kubectl get --raw /readyz >/dev/null 2>&1
}

nodes_manifest() {
  local zone i
  for zone in "${ZONES[@]}"; do
    for i in $(seq 1 "$NODES_PER_ZONE"); do
      cat <<YAML
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-$zone-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
    # metrics-server scrapes KWOK's per-node resource metrics here (pod usage comes from
    # the kwok.x-k8s.io/usage-cpu and usage-memory annotations of the pods)
    metrics.k8s.io/resource-metrics-path: /metrics/nodes/kwok-$zone-$i/metrics/resource
  labels:
    type: kwok
    kubernetes.io/hostname: kwok-$zone-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/zone: $zone
    topology.kubernetes.io/region: local
status:
  allocatable: {cpu: "32", memory: 128Gi, ephemeral-storage: 100Gi, pods: "1000"}
  capacity: {cpu: "32", memory: 128Gi, ephemeral-storage: 100Gi, pods: "1000"}
YAML
    done
  done
}

# Start every component stopped with stop-component: `up` means the whole cluster.
start_stopped() {
  local marker name
  for marker in "$CLUSTER_DIR"/supervisor/*.stopped; do
    [ -e "$marker" ] || continue
    name=$(basename "$marker" .stopped)
    log "starting $name (it was stopped with stop-component)"
    supervise start "$name"
  done
}

# A cluster whose supervisor runs but whose API server does not answer is in an outage (a
# stop-component, or a component the supervisor is restarting): bring it back, don't recreate it.
revive() {
  [ -f "$CLUSTER_DIR/kwok.yaml" ] && supervisor_running || return 1
  log "cluster $CLUSTER_NAME is supervised but its API server does not answer; waiting for it"
  start_stopped
  local i
  for i in $(seq 1 120); do
    running && return 0
    sleep 0.5
  done
  return 1
}

# Record the components' command lines and start the supervisor, unless it runs already. A
# component that does not run (metrics-server may have exited at start) is started first, with
# kwokctl's own `start cluster` (it starts what is not running), so that its command line is known.
supervise_cluster() {
  start_stopped
  supervisor_running && return 0
  local names missing
  names=$(kwokctl get components)
  # shellcheck disable=SC2086
  if ! missing=$(supervise record $names); then
    log "starting $missing (kwokctl start cluster)"
    kwokctl start cluster --timeout=60s >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    missing=$(supervise record $names) ||
      log "warning: $missing not running; the supervisor cannot restart what it never saw run"
  fi
  supervise daemon
  log "supervisor started: it restarts any component that exits ($CLUSTER_DIR/logs/supervisor.log)"
}

# Stop the supervisor first (or it restarts what kwokctl stops), then the cluster; then anything
# still running from the cluster directory.
teardown() {
  prometheus_ down
  if [ -d "$CLUSTER_DIR" ]; then
    supervise shutdown || true
    kwokctl delete cluster --kubeconfig "$KUBECONFIG_PATH" >&2 || true
  fi
  pkill -f "$CLUSTER_DIR/" 2>/dev/null || true
  local i
  for i in $(seq 1 50); do
    pgrep -f "$CLUSTER_DIR/" >/dev/null || return 0
    sleep 0.1
  done
  pkill -KILL -f "$CLUSTER_DIR/" 2>/dev/null || true
}

up() {
  build
  export PATH=$BIN:$PATH
  if running; then
    log "cluster $CLUSTER_NAME is already running"
  elif revive; then
    log "cluster $CLUSTER_NAME answers again"
  else
    if [ -d "$CLUSTER_DIR" ]; then
      log "removing a stopped cluster $CLUSTER_NAME"
      teardown 2>/dev/null
    fi
    log "starting Kubernetes $K8S_VERSION (kwokctl --runtime=binary, 127.0.0.1 only)"
    # shellcheck disable=SC2046
    kwokctl create cluster $(create_args) >&2
  fi
  supervise_cluster
  kubectl apply -f "$HERE/stages/base.yaml" -f "$HERE/stages/faults.yaml" >/dev/null
  nodes_manifest | kubectl apply -f - >/dev/null
  kubectl wait --for=condition=Ready node -l type=kwok --timeout=120s >/dev/null
  log "ready: $(kubectl get nodes -l type=kwok --no-headers | wc -l) nodes in ${#ZONES[@]} zones"
  [ "$with_prometheus" = 0 ] || prometheus_ up >/dev/null
  env_
}

# prometheus up|down|status|env: the cluster's Prometheus (e2e/prometheus.py runs it)
prometheus_() {
  local verb=${1:-up}
  case "$verb" in
    up)
      running || { echo "[cluster] cluster $CLUSTER_NAME is not running" >&2; return 1; }
      build_prometheus
      "$PYTHON3" -I -S "$HERE/prometheus.py" up "$PROM_HOME" "$PROM_BIN" "$KUBECONFIG_PATH" ;;
    down|status|env)
      [ -d "$PROM_HOME" ] || { [ "$verb" != status ] || echo "prometheus: not running"; return 0; }
      "$PYTHON3" -I -S "$HERE/prometheus.py" "$verb" "$PROM_HOME" ;;
    *) echo "usage: $0 prometheus [up|down|status|env]" >&2; return 2 ;;
  esac
}

down() {
  # nothing may outlive the cluster
  teardown
  log "cluster $CLUSTER_NAME is down"
}

status() {
  local rc=0
  if running; then
    echo "running: $(kubectl version -o json | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' \
      | tail -1), $(kubectl get nodes --no-headers 2>/dev/null | wc -l) nodes; KUBECONFIG=$KUBECONFIG_PATH"
  else
    echo "not running"
    rc=1
  fi
  if [ -f "$CLUSTER_DIR/kwok.yaml" ]; then
    supervise status
  fi
  [ ! -d "$PROM_HOME" ] || prometheus_ status || true
  return $rc
}

# stop-component NAME / start-component NAME
component() {
  local verb=$1; shift
  if [ $# != 1 ]; then
    echo "usage: $0 $verb-component NAME" >&2; exit 2
  fi
  if [ ! -f "$CLUSTER_DIR/kwok.yaml" ]; then
    echo "[cluster] no cluster $CLUSTER_NAME" >&2; exit 1
  fi
  supervise "$verb" "$1"
  if [ "$verb" = stop ]; then
    log "$1 stopped; the supervisor leaves it alone until start-component $1"
  else
    log "$1 started"
  fi
}

env_() {
  echo "export KUBECONFIG=$KUBECONFIG_PATH"
  echo "export PATH=$BIN:\$PATH"
  prometheus_ env
}

dry_run() {
  build
  # shellcheck disable=SC2046
  kwokctl --dry-run create cluster $(create_args)
}

with_prometheus=0
case "${1:-}" in
  build) build ;;
  build-prometheus) build_prometheus; echo "$PROM_BIN" ;;
  prometheus-bin) echo "$PROM_BIN" ;;  # where they are (or will be) built; builds nothing
  up) [ "${2:-}" != --with-prometheus ] || with_prometheus=1; up ;;
  prometheus) shift; prometheus_ "$@" ;;
  down) down ;;
  status) status ;;
  env) env_ ;;
  dry-run) dry_run ;;
  stop-component) shift; component stop "$@" ;;
  start-component) shift; component start "$@" ;;
  *) echo "usage: $0 build|build-prometheus|up [--with-prometheus]|down|status|env|dry-run|prometheus [up|down|status]|stop-component NAME|start-component NAME" >&2
     exit 2 ;;
esac
