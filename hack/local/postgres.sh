#!/usr/bin/env bash
# A local PostgreSQL 15 for development, in .run/postgres, run as the
# `postgres` OS user (the server refuses to run as root).
#
# Usage: hack/local/postgres.sh up|stop|down|status|env|psql [psql args...]
#
#   up    initialise (first time) and start the server, create the databases
#         events_eu and events_us; nothing changes when it is already up
#   stop  stop the server and keep its data, password and certificates
#         (`up` starts it again as it was); the e2e suite stops it so to see
#         the operator notice a region's database going away
#   down  stop the server and delete .run/postgres
#   status exit 0 when the server is running, 1 when not
#   env   print shell exports: LOCAL_PG_HOST, LOCAL_PG_PORT, LOCAL_PG_USER,
#         LOCAL_PG_PASSWORD_FILE, LOCAL_PG_CA_FILE
#   psql  run psql as the superuser (e.g. `postgres.sh psql -d events_eu`)
#
# The server listens on 127.0.0.1:${PGPORT_LOCAL:-55432} and on a unix socket in
# .run/postgres; every login (TCP and socket) is scram-sha-256. The superuser
# is millimetric_admin; its password is generated once into
# .run/postgres/admin-password (root, mode 600). TLS is on with a local CA
# (.run/postgres/tls/ca.crt) and a server certificate for 127.0.0.1 and
# localhost, so sslmode disable, require, verify-ca and verify-full all work.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUN_DIR="${ROOT}/.run"
# .run/postgres holds everything; when the server's user cannot reach the
# checkout (a clone in a private directory) it is a symlink to a directory
# under /tmp instead, and the server is only ever given that real path.
PG_LINK="${RUN_DIR}/postgres"
set_paths() {
  PG_DIR="${PG_LINK}"
  [[ -L "${PG_LINK}" ]] && PG_DIR="$(readlink -f "${PG_LINK}")"
  DATA_DIR="${PG_DIR}/data"
  TLS_DIR="${PG_DIR}/tls"
  PASSWORD_FILE="${PG_DIR}/admin-password"
  LOG_FILE="${PG_DIR}/postgres.log"
}
set_paths
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_OS_USER="${PG_OS_USER:-postgres}"
PG_HOST=127.0.0.1
PG_PORT="${PGPORT_LOCAL:-55432}"
PG_SUPERUSER=millimetric_admin
DATABASES=(events_eu events_us)

log() { printf '>> postgres: %s\n' "$*" >&2; }
die() { printf '!! postgres: %s\n' "$*" >&2; exit 1; }

# From / so that a checkout the server's user cannot enter is no bother.
as_pg() { (cd / && runuser -u "${PG_OS_USER}" -- "$@"); }
pg_ctl() { as_pg "${PG_BIN}/pg_ctl" -D "${DATA_DIR}" "$@"; }

# psql as the superuser over TCP (the password never appears in argv).
admin_psql() {
  PGPASSWORD="$(cat "${PASSWORD_FILE}")" PGSSLMODE=require PGCONNECT_TIMEOUT=5 \
    "${PG_BIN}/psql" -h "${PG_HOST}" -p "${PG_PORT}" -U "${PG_SUPERUSER}" -X -v ON_ERROR_STOP=1 "$@"
}

running() {
  [[ -f "${DATA_DIR}/postmaster.pid" ]] && pg_ctl status >/dev/null 2>&1
}

check_prerequisites() {
  [[ -x "${PG_BIN}/postgres" ]] || die "no PostgreSQL server in ${PG_BIN} (Debian: apt-get install postgresql-15)"
  id -u "${PG_OS_USER}" >/dev/null 2>&1 || die "no OS user '${PG_OS_USER}' to run the server as"
  [[ ${EUID} -eq 0 ]] || die "run as root (the server runs as '${PG_OS_USER}' through runuser)"
  command -v openssl >/dev/null || die "openssl is needed for the TLS certificates"
}

# place_data_dir makes .run/postgres a directory the server's user can reach:
# in the checkout when every parent of .run is searchable by it, else under
# /tmp behind a symlink.
place_data_dir() {
  mkdir -p "${RUN_DIR}"
  chmod 755 "${RUN_DIR}"
  if [[ ! -e "${PG_LINK}" ]] && ! as_pg test -x "${RUN_DIR}"; then
    local real
    real="$(mktemp -d "${TMPDIR:-/tmp}/millimetric-postgres.XXXXXX")"
    log "'${PG_OS_USER}' cannot reach ${RUN_DIR}; keeping the server in ${real} (linked from .run/postgres)"
    ln -s "${real}" "${PG_LINK}"
  fi
  set_paths
  as_pg test -x "$(dirname "${PG_DIR}")" || die "'${PG_OS_USER}' cannot reach $(dirname "${PG_DIR}") (make every parent searchable, or run '$0 down' and retry)"
  # The socket lives in .run/postgres, so the server owns it.
  install -d -m 755 -o "${PG_OS_USER}" -g "${PG_OS_USER}" "${PG_DIR}"
}

generate_password() {
  [[ -s "${PASSWORD_FILE}" ]] && return
  log "generating the superuser password into ${PASSWORD_FILE#"${ROOT}/"}"
  (umask 077 && openssl rand -base64 48 | tr -dc 'A-Za-z0-9' | head -c 32 >"${PASSWORD_FILE}")
  chown root:root "${PASSWORD_FILE}"
  chmod 600 "${PASSWORD_FILE}"
}

generate_tls() {
  [[ -s "${TLS_DIR}/server.crt" && -s "${TLS_DIR}/server.key" && -s "${TLS_DIR}/ca.crt" ]] && return
  log "generating a local CA and a server certificate for 127.0.0.1/localhost in ${TLS_DIR#"${ROOT}/"}"
  rm -rf "${TLS_DIR}"
  mkdir -p "${TLS_DIR}"
  local tmp
  tmp="$(mktemp -d)"
  (
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=millimetric local PostgreSQL CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "${TLS_DIR}/ca.key" -out "${TLS_DIR}/ca.crt" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/CN=127.0.0.1" -keyout "${TLS_DIR}/server.key" -out "${tmp}/server.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >"${tmp}/ext"
    openssl x509 -req -in "${tmp}/server.csr" -CA "${TLS_DIR}/ca.crt" -CAkey "${TLS_DIR}/ca.key" \
      -CAcreateserial -days 3650 -extfile "${tmp}/ext" -out "${TLS_DIR}/server.crt" 2>/dev/null
  )
  rm -rf "${tmp}" "${TLS_DIR}/ca.srl"
  chmod 644 "${TLS_DIR}/ca.crt" "${TLS_DIR}/server.crt"
  chmod 600 "${TLS_DIR}/ca.key" "${TLS_DIR}/server.key"
  chown "${PG_OS_USER}:" "${TLS_DIR}/server.crt" "${TLS_DIR}/server.key"
  chmod 755 "${TLS_DIR}"
}

initialise() {
  [[ -f "${DATA_DIR}/PG_VERSION" ]] && return
  log "initialising a PostgreSQL $("${PG_BIN}/postgres" --version | awk '{print $3}') cluster in ${DATA_DIR#"${ROOT}/"}"
  rm -rf "${DATA_DIR}"
  install -d -m 700 -o "${PG_OS_USER}" -g "${PG_OS_USER}" "${DATA_DIR}"
  # initdb reads the password from a file its user can read; it lives only
  # for the call.
  local pwfile="${PG_DIR}/.initdb-pwfile"
  install -m 600 -o "${PG_OS_USER}" -g "${PG_OS_USER}" "${PASSWORD_FILE}" "${pwfile}"
  if ! as_pg "${PG_BIN}/initdb" -D "${DATA_DIR}" -U "${PG_SUPERUSER}" --pwfile="${pwfile}" \
    --auth-host=scram-sha-256 --auth-local=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 \
    >"${PG_DIR}/initdb.log" 2>&1; then
    rm -f "${pwfile}"
    cat "${PG_DIR}/initdb.log" >&2
    die "initdb failed"
  fi
  rm -f "${pwfile}"
  # Settings that do not depend on the port (the port is given at start).
  cat >>"${DATA_DIR}/postgresql.conf" <<EOF

# --- hack/local/postgres.sh ---
listen_addresses = '${PG_HOST}'
unix_socket_directories = '${PG_DIR}'
unix_socket_permissions = 0700
password_encryption = scram-sha-256
ssl = on
ssl_cert_file = '${TLS_DIR}/server.crt'
ssl_key_file = '${TLS_DIR}/server.key'
ssl_ca_file = '${TLS_DIR}/ca.crt'
max_connections = 200
log_destination = 'stderr'
log_line_prefix = '%m [%p] %q%u@%d '
log_connections = off
EOF
}

up() {
  check_prerequisites
  local start=${SECONDS}
  place_data_dir
  generate_password
  generate_tls
  initialise
  if running; then
    log "already running (pid $(head -1 "${DATA_DIR}/postmaster.pid"))"
  else
    if [[ -f "${DATA_DIR}/postmaster.pid" ]]; then
      log "removing the stale postmaster.pid of a server that is not running"
      rm -f "${DATA_DIR}/postmaster.pid"
    fi
    log "starting on ${PG_HOST}:${PG_PORT} (log: ${LOG_FILE#"${ROOT}/"})"
    touch "${LOG_FILE}" && chown "${PG_OS_USER}:" "${LOG_FILE}"
    if ! pg_ctl start -w -t 60 -l "${LOG_FILE}" -o "-p ${PG_PORT}" >/dev/null; then
      tail -20 "${LOG_FILE}" >&2
      die "the server did not start"
    fi
  fi
  # The running server's port (it may have been started with another one).
  local running_port
  running_port="$(sed -n 4p "${DATA_DIR}/postmaster.pid")"
  [[ "${running_port}" == "${PG_PORT}" ]] ||
    die "the server runs on port ${running_port}, not ${PG_PORT}: run '$0 down' first to change it"
  local db
  for db in "${DATABASES[@]}"; do
    if [[ -z "$(admin_psql -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '${db}'")" ]]; then
      log "creating database ${db}"
      admin_psql -d postgres -qc "CREATE DATABASE ${db}"
    fi
  done
  log "ready in $((SECONDS - start))s: ${PG_SUPERUSER}@${PG_HOST}:${PG_PORT}, databases ${DATABASES[*]}, TLS on"
}

stop() {
  if ! running; then
    log "not running"
    return 0
  fi
  log "stopping the server (data kept in ${DATA_DIR#"${ROOT}/"}; '$0 up' starts it again)"
  # fast: connected clients are disconnected, as when a database goes away.
  pg_ctl stop -m fast -w -t 60 >/dev/null || die "pg_ctl stop failed (log: ${LOG_FILE#"${ROOT}/"})"
}

down() {
  local start=${SECONDS}
  if [[ -f "${DATA_DIR}/postmaster.pid" ]]; then
    log "stopping the server"
    pg_ctl stop -m fast -w -t 60 >/dev/null 2>&1 || log "pg_ctl stop failed (not running?)"
  fi
  if [[ -d "${PG_DIR}" ]]; then
    log "deleting ${PG_DIR#"${ROOT}/"}"
    rm -rf "${PG_DIR}"
  fi
  rm -f "${PG_LINK}" 2>/dev/null || true
  log "down in $((SECONDS - start))s"
}

env_exports() {
  cat <<EOF
export LOCAL_PG_HOST=${PG_HOST}
export LOCAL_PG_PORT=${PG_PORT}
export LOCAL_PG_USER=${PG_SUPERUSER}
export LOCAL_PG_PASSWORD_FILE=${PASSWORD_FILE}
export LOCAL_PG_CA_FILE=${TLS_DIR}/ca.crt
EOF
}

case "${1:-}" in
  up) up ;;
  stop) stop ;;
  down) down ;;
  status) running ;;
  env) env_exports ;;
  psql) shift; running || die "not running: $0 up"; admin_psql -d postgres "$@" ;;
  *) echo "usage: $0 up|stop|down|status|env|psql [psql args...]" >&2; exit 2 ;;
esac
