#!/usr/bin/env bash
# The platform's edge on the local control plane: the Gateway API CRDs, a
# GatewayClass for Traefik, the Gateway the tenants' HTTPRoutes attach to,
# and Traefik (bin/traefik, hack/tools/traefik) running as a plain process
# against the local API server with its Kubernetes Gateway provider.
#
# Usage: hack/local/gateway.sh up|down|status|env
#
#   up      install the Gateway API CRDs (the standard channel of the Go module
#           sigs.k8s.io/gateway-api in go.mod), apply GatewayClass traefik and
#           Gateway millimetric-edge/ingest (one HTTP listener, "http", on
#           GATEWAY_PORT), start Traefik (or leave a running one alone) and
#           wait until it has programmed the Gateway
#   down    stop Traefik and remove .run/gateway/<cluster>
#   status  show Traefik's process and the Gateway
#   env     print GATEWAY_URL and GATEWAY (namespace/name/section) for eval
#
# Environment: CLUSTER_NAME (default millimetric; the cluster of
# hack/local/cluster.sh), GATEWAY_PORT (default 18000; the port Traefik
# listens on, 127.0.0.1 only, and the listener's port: Traefik serves a
# listener from the entry point of the same port).
#
# kwok's pods run nothing and the API server refuses loopback addresses in
# EndpointSlices, so Traefik sends to a Service's ClusterIP and port
# (nativeLBByDefault): hack/local/cluster.sh puts ClusterIPs on loopback and
# the local ingest process of a tenant listens on its Service's (hack/local/
# ingest, internal/e2e). Traefik trusts no forwarded headers from clients
# (its default): it sets X-Forwarded-For to the address a request came from.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${ROOT}/bin"
CLUSTER_NAME="${CLUSTER_NAME:-millimetric}"
GATEWAY_PORT="${GATEWAY_PORT:-18000}"
GATEWAY_NAMESPACE=millimetric-edge
GATEWAY_NAME=ingest
GATEWAY_SECTION=http
GATEWAY_CLASS=traefik
# Traefik's Kubernetes Gateway provider serves the GatewayClasses naming it.
TRAEFIK_CONTROLLER=traefik.io/gateway-controller
RUN_DIR="${ROOT}/.run/gateway/${CLUSTER_NAME}"
PID_FILE="${RUN_DIR}/traefik.pid"

log() { printf '>> gateway: %s\n' "$*" >&2; }
die() { printf '!! gateway: %s\n' "$*" >&2; exit 1; }

KUBECONFIG="$(CLUSTER_NAME="${CLUSTER_NAME}" "${ROOT}/hack/local/cluster.sh" kubeconfig)"
export KUBECONFIG
# kubectl's discovery cache (default ~/.kube/cache) goes with the cluster.
export KUBECACHEDIR="${KUBECACHEDIR:-${ROOT}/.run/kwok/kube-cache}"
kubectl() { "${BIN}/kubectl" "$@"; }
ssa() { kubectl apply --server-side --field-manager=hack-local "$@"; }

[[ "${GATEWAY_PORT}" =~ ^[0-9]+$ && "${GATEWAY_PORT}" -ge 1 && "${GATEWAY_PORT}" -le 65535 ]] ||
  die "GATEWAY_PORT must be a TCP port, not '${GATEWAY_PORT}'"

# alive: the process the pid file names runs (and is no zombie).
alive() {
  local pid state
  pid="$(cat "${PID_FILE}" 2>/dev/null)" || return 1
  [[ -n "${pid}" && -r "/proc/${pid}/stat" ]] || return 1
  state="$(sed 's/^.*) //' "/proc/${pid}/stat" | cut -d' ' -f1)"
  [[ "${state}" != Z && "${state}" != X ]]
}

install_crds() {
  local dir
  dir="$(cd "${ROOT}" && go mod download sigs.k8s.io/gateway-api && go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)/config/crd/standard"
  [[ -d "${dir}" ]] || die "no Gateway API CRDs in ${dir}"
  log "installing the Gateway API CRDs (standard channel, $(cd "${ROOT}" && go list -m -f '{{.Version}}' sigs.k8s.io/gateway-api))"
  ssa -f "${dir}" >/dev/null
  kubectl wait --for=condition=Established --timeout=60s \
    crd/gatewayclasses.gateway.networking.k8s.io crd/gateways.gateway.networking.k8s.io \
    crd/httproutes.gateway.networking.k8s.io crd/grpcroutes.gateway.networking.k8s.io \
    crd/referencegrants.gateway.networking.k8s.io crd/backendtlspolicies.gateway.networking.k8s.io >/dev/null
}

apply_gateway() {
  log "GatewayClass ${GATEWAY_CLASS} (${TRAEFIK_CONTROLLER}), Gateway ${GATEWAY_NAMESPACE}/${GATEWAY_NAME} (listener ${GATEWAY_SECTION}, HTTP, port ${GATEWAY_PORT})"
  ssa -f - >/dev/null <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: ${GATEWAY_CLASS}
spec:
  controllerName: ${TRAEFIK_CONTROLLER}
---
apiVersion: v1
kind: Namespace
metadata:
  name: ${GATEWAY_NAMESPACE}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: ${GATEWAY_NAME}
  namespace: ${GATEWAY_NAMESPACE}
spec:
  gatewayClassName: ${GATEWAY_CLASS}
  listeners:
  - name: ${GATEWAY_SECTION}
    protocol: HTTP
    port: ${GATEWAY_PORT}
    # The tenants' routes live in their own namespaces.
    allowedRoutes:
      namespaces:
        from: All
EOF
}

start_traefik() {
  [[ -x "${BIN}/traefik" ]] || die "no ${BIN}/traefik: run 'make tools'"
  mkdir -p "${RUN_DIR}"
  if alive; then
    if [[ "$(cat "${RUN_DIR}/port" 2>/dev/null)" == "${GATEWAY_PORT}" ]]; then
      log "Traefik runs (pid $(cat "${PID_FILE}"))"
      return
    fi
    stop_traefik
  fi
  log "starting Traefik on 127.0.0.1:${GATEWAY_PORT} (log ${RUN_DIR#"${ROOT}/"}/traefik.log, access log access.log)"
  # setsid: it outlives the shell that started it, until `down`; fd 9 (a
  # caller's lock) is not inherited.
  KUBECONFIG="${KUBECONFIG}" setsid "${BIN}/traefik" \
    --global.checkNewVersion=false --global.sendAnonymousUsage=false \
    --entryPoints.web.address="127.0.0.1:${GATEWAY_PORT}" \
    --providers.kubernetesGateway=true \
    --providers.kubernetesGateway.nativeLBByDefault=true \
    --providers.kubernetesGateway.statusAddress.ip=127.0.0.1 \
    --log.level=INFO \
    --accessLog=true --accessLog.filePath="${RUN_DIR}/access.log" \
    >"${RUN_DIR}/traefik.log" 2>&1 </dev/null 9>&- &
  echo $! >"${PID_FILE}"
  echo "${GATEWAY_PORT}" >"${RUN_DIR}/port"
}

stop_traefik() {
  alive || return 0
  local pid
  pid="$(cat "${PID_FILE}")"
  log "stopping Traefik (pid ${pid})"
  kill -TERM "${pid}" 2>/dev/null || true
  for _ in $(seq 1 50); do
    alive || return 0
    sleep 0.2
  done
  kill -KILL "${pid}" 2>/dev/null || true
}

up() {
  local start=${SECONDS}
  kubectl get --raw /readyz >/dev/null 2>&1 || die "the cluster '${CLUSTER_NAME}' does not answer: hack/local/cluster.sh up"
  install_crds
  apply_gateway
  start_traefik
  local deadline=$((SECONDS + 60))
  until kubectl -n "${GATEWAY_NAMESPACE}" wait --for=condition=Programmed "gateway/${GATEWAY_NAME}" --timeout=5s >/dev/null 2>&1; do
    alive || { tail -20 "${RUN_DIR}/traefik.log" >&2; die "Traefik exited"; }
    ((SECONDS < deadline)) || { tail -20 "${RUN_DIR}/traefik.log" >&2; die "Traefik did not program Gateway ${GATEWAY_NAMESPACE}/${GATEWAY_NAME} within 60s"; }
  done
  log "Gateway ${GATEWAY_NAMESPACE}/${GATEWAY_NAME} programmed: http://127.0.0.1:${GATEWAY_PORT} (ready in $((SECONDS - start))s)"
}

down() {
  stop_traefik
  rm -rf "${RUN_DIR}"
  rmdir "${ROOT}/.run/gateway" 2>/dev/null || true
}

status() {
  if alive; then
    echo "traefik running (pid $(cat "${PID_FILE}")) on 127.0.0.1:$(cat "${RUN_DIR}/port")"
  else
    echo "traefik stopped"
  fi
  kubectl -n "${GATEWAY_NAMESPACE}" get gateway "${GATEWAY_NAME}" 2>/dev/null || true
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env)
    echo "GATEWAY_URL=http://127.0.0.1:${GATEWAY_PORT}"
    echo "GATEWAY=${GATEWAY_NAMESPACE}/${GATEWAY_NAME}/${GATEWAY_SECTION}"
    ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
