#!/usr/bin/env bash
# make bench-scale and make bench-scale-pg: brings up what the bench needs,
# runs hack/bench-scale, and tears down what it brought up, whatever
# happened. The figures go to stdout (one Markdown table), the progress and
# the operator's log to stderr and .run/bench-scale.
#
# Usage: hack/bench-scale/run.sh operator|pg [bench-scale flags...]
#
#   operator  a local control plane of its own (cluster millimetric-bench)
#             sized for N tenants: a Service range of 65,534 addresses,
#             ceil(1.25 * N * REPLICAS / 110) + 1 fake nodes of 110 pods, no
#             client rate limits in the controller-manager and scheduler;
#             the local PostgreSQL; the CRDs; the manager built from this
#             tree; then the bench (floor, operator, table)
#   pg        the local PostgreSQL only; then the bench's PostgreSQL part
#
# Environment: N (default 100), REPLICAS (default 2), WORKERS (default 4,
# the operator's --max-concurrent-reconciles), BENCH_CLUSTER_NAME (default
# millimetric-bench), BENCH_PGPORT (default 55442: apart from make run's
# 55432), BENCH_NO_QPS_LIMITS (default 1; 0 keeps the components' default
# client rate limits).
#
# The local PostgreSQL is this checkout's (hack/local/postgres.sh, in .run):
# when it is already up, on BENCH_PGPORT, it is used and left up; else it is
# started and deleted afterwards. On a machine shared with other local
# clusters, hold the lock they use around the whole run, e.g.
# flock /tmp/millimetric-e2e.lock make bench-scale N=1000.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${ROOT}/bin"
MODE="${1:-}"
shift || true
case "${MODE}" in
  operator | pg) ;;
  *) echo "usage: $0 operator|pg [bench-scale flags...]" >&2; exit 2 ;;
esac

N="${N:-100}"
REPLICAS="${REPLICAS:-2}"
WORKERS="${WORKERS:-4}"
[[ "${N}" =~ ^[1-9][0-9]*$ && "${REPLICAS}" =~ ^[1-9][0-9]*$ && "${WORKERS}" =~ ^[1-9][0-9]*$ ]] ||
  { echo "N, REPLICAS and WORKERS must be positive numbers" >&2; exit 2; }
export CLUSTER_NAME="${BENCH_CLUSTER_NAME:-millimetric-bench}"
export PGPORT_LOCAL="${BENCH_PGPORT:-55442}"
LOG_DIR="${ROOT}/.run/bench-scale"

log() { printf '>> bench-scale: %s\n' "$*" >&2; }

pg_was_up=0
"${ROOT}/hack/local/postgres.sh" status && pg_was_up=1

cleanup() {
  local rc=$?
  log "tearing down"
  if [[ "${MODE}" == operator ]]; then
    "${ROOT}/hack/local/cluster.sh" down || true
  fi
  if [[ ${pg_was_up} == 0 ]]; then
    "${ROOT}/hack/local/postgres.sh" down || true
  fi
  exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "${LOG_DIR}"
commit="$(git -C "${ROOT}" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "${ROOT}" status --porcelain --untracked-files=no -- cmd controllers api internal 2>/dev/null)" ]]; then
  commit+="+changes"
fi
log "building the bench and the manager (${commit})"
(cd "${ROOT}" && go build -o "${LOG_DIR}/bench-scale" ./hack/bench-scale)

"${ROOT}/hack/local/postgres.sh" up
eval "$("${ROOT}/hack/local/postgres.sh" env)"
export LOCAL_PG_HOST LOCAL_PG_PORT LOCAL_PG_USER LOCAL_PG_PASSWORD_FILE

if [[ "${MODE}" == pg ]]; then
  "${LOG_DIR}/bench-scale" pg -n "${N}" -workers "${WORKERS}" -commit "${commit}" -pg-drop="$((pg_was_up == 1))" "$@"
  exit 0
fi

(cd "${ROOT}" && go build -o "${LOG_DIR}/manager" ./cmd)
pods=$((N * REPLICAS))
nodes=$(((pods * 5 / 4 + 109) / 110 + 1))
export CLUSTER_NODES=$((nodes < 3 ? 3 : nodes))
export CLUSTER_SERVICE_CIDR="${BENCH_SERVICE_CIDR:-10.96.0.0/16}"
export CLUSTER_NO_QPS_LIMITS="${BENCH_NO_QPS_LIMITS:-1}"
export KUBECACHEDIR="${ROOT}/.run/kwok/kube-cache"
log "cluster ${CLUSTER_NAME}: ${CLUSTER_NODES} fake nodes for ${pods} ingest pods, Service range ${CLUSTER_SERVICE_CIDR}, no client rate limits: ${CLUSTER_NO_QPS_LIMITS}"
"${ROOT}/hack/local/cluster.sh" up
KUBECONFIG="$("${ROOT}/hack/local/cluster.sh" kubeconfig)"
export KUBECONFIG
log "installing the CRDs"
"${BIN}/kustomize" build "${ROOT}/config/crd" | "${BIN}/kubectl" apply --server-side --field-manager=hack-local -f - >/dev/null
"${BIN}/kubectl" wait --for=condition=Established crd --all --timeout=60s >/dev/null

"${LOG_DIR}/bench-scale" operator -n "${N}" -replicas "${REPLICAS}" -workers "${WORKERS}" \
  -manager "${LOG_DIR}/manager" -log-dir "${LOG_DIR}" -commit "${commit}" "$@"
