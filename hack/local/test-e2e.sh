#!/usr/bin/env bash
# Runs the end-to-end suite (internal/e2e) against a local control plane of
# its own (cluster millimetric-e2e, apart from `make run`'s), its gateway
# (Traefik, hack/local/gateway.sh, on a free port from 18100 or
# E2E_GATEWAY_PORT) and the local PostgreSQL, with the manager built from
# this tree. They are started if they are not up and removed afterwards
# (PostgreSQL only if this script started it); E2E_KEEP=1 leaves them
# running.
#
# The operators run as the Helm chart's ServiceAccount with only the chart's
# RBAC (internal/e2e renders it with bin/helm). E2E_CHART=<dir> takes the
# chart from a copy instead of dist/chart: a copy with a rule removed shows
# which scenario needs it. E2E_CAPTURE_HEALTH=1 makes the health walk write
# the objects it meets into internal/health/testdata.
#
# Usage: hack/local/test-e2e.sh [go test flags...]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${ROOT}/bin"
export CLUSTER_NAME="${E2E_CLUSTER_NAME:-millimetric-e2e}"
LOG_DIR="${ROOT}/.run/e2e-logs"

log() { printf '>> e2e: %s\n' "$*" >&2; }

[[ -x "${BIN}/helm" ]] || { echo "!! e2e: no ${BIN}/helm: run 'make tools' (or make test-e2e)" >&2; exit 1; }

started=${SECONDS}
pg_was_up=0
"${ROOT}/hack/local/postgres.sh" status && pg_was_up=1

# On the way out, whatever happened: no operator process outlives the suite,
# and unless E2E_KEEP=1 the cluster goes, and PostgreSQL too when this
# script started it (a `make run` one is left alone).
cleanup() {
  # The Lease name is internal/e2e's leaseName.
  pkill -KILL -f -- "--leader-election-id=tenant-operator-e2e" 2>/dev/null || true
  [[ "${E2E_KEEP:-0}" == 1 ]] && return
  "${ROOT}/hack/local/gateway.sh" down
  "${ROOT}/hack/local/cluster.sh" down
  if [[ ${pg_was_up} == 0 ]]; then
    "${ROOT}/hack/local/postgres.sh" down
  fi
}
trap cleanup EXIT

"${ROOT}/hack/local/cluster.sh" up
"${ROOT}/hack/local/postgres.sh" up
eval "$("${ROOT}/hack/local/postgres.sh" env)"
KUBECONFIG="$("${ROOT}/hack/local/cluster.sh" kubeconfig)"
export KUBECONFIG

log "installing the CRDs"
"${BIN}/kustomize" build "${ROOT}/config/crd" | "${BIN}/kubectl" apply --server-side --field-manager=hack-local -f - >/dev/null
"${BIN}/kubectl" wait --for=condition=Established crd --all --timeout=60s >/dev/null

# free_port FROM: the first port from FROM on that nothing on 127.0.0.1
# accepts connections on.
free_port() {
  local p
  for ((p = $1; p < $1 + 100; p++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/${p}") 2>/dev/null || { echo "${p}"; return; }
  done
  echo "!! e2e: no free port in $1-$(($1 + 99))" >&2
  return 1
}
GATEWAY_PORT="${E2E_GATEWAY_PORT:-$(free_port 18100)}"
export GATEWAY_PORT
"${ROOT}/hack/local/gateway.sh" up
eval "$("${ROOT}/hack/local/gateway.sh" env)"

log "building the manager"
(cd "${ROOT}" && go build -o "${BIN}/manager" ./cmd && go build -o "${BIN}/ingest" ./cmd/ingest)

rm -rf "${LOG_DIR}" && mkdir -p "${LOG_DIR}"
log "running the suite (operator logs in ${LOG_DIR#"${ROOT}/"}); setup took $((SECONDS - started))s"
cd "${ROOT}"
E2E_MANAGER="${BIN}/manager" \
  E2E_INGEST="${BIN}/ingest" \
  E2E_HELM="${BIN}/helm" \
  E2E_GATEWAY_URL="${GATEWAY_URL}" E2E_GATEWAY="${GATEWAY}" \
  E2E_PG_HOST="${LOCAL_PG_HOST}" E2E_PG_PORT="${LOCAL_PG_PORT}" \
  E2E_PG_USER="${LOCAL_PG_USER}" E2E_PG_PASSWORD_FILE="${LOCAL_PG_PASSWORD_FILE}" \
  E2E_LOG_DIR="${LOG_DIR}" \
  go test -tags e2e -count=1 -timeout 30m "$@" ./internal/e2e/ ./internal/ingest/sdk/
log "done in $((SECONDS - started))s"
