# Shared by the integration tests written in bash (sourced, not a test itself): real
# PostgreSQL clusters from tests/lib/pgcluster.sh, the real pgcutover-proxy binary, a client TLS
# certificate made at test time, a config written per test, bounded waits only.
set -euo pipefail

top=${PGCUTOVER_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PROXY_BIN=${PGCUTOVER_PROXY_BIN:-$top/build/proxy/pgcutover-proxy}
[ -x "$PROXY_BIN" ] || { echo "pgcutover-proxy not built: $PROXY_BIN" >&2; exit 1; }
# shellcheck source=../lib/pgcluster.sh
. "$top/tests/lib/pgcluster.sh"

PROXY_DIR=$(mktemp -d /tmp/pgcutover-proxy-test.XXXXXX)
chmod 755 "$PROXY_DIR"
PROXY_PID=""
PROXY_USER_PASSWORD="proxy-pw-$$"

# What a test leaves for the harness to clean up at exit, whatever the exit:
#  - PROXY_PIDS: more proxies it starts (kill -KILL);
#  - PROXY_PID_VARS: names of variables holding the pids of other background processes
#    (pgbench, an apply loop); a test empties the variable once it has waited for the process,
#    so that a pid the system reused is never killed;
#  - PROXY_FAILURE_LOGS: files whose last lines a failed test shows (globs in $PROXY_DIR;
#    proxy.log always).
PROXY_PIDS=()
PROXY_PID_VARS=()
PROXY_FAILURE_LOGS=()
proxy_cleanup() {
  local rc=$? p f v
  for v in "${PROXY_PID_VARS[@]}"; do PROXY_PIDS+=("${!v:-}"); done
  for p in "$PROXY_PID" "${PROXY_PIDS[@]}"; do
    [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true
  done
  if [ $rc -ne 0 ]; then
    for f in "$PROXY_DIR/proxy.log" ${PROXY_FAILURE_LOGS[@]/#/$PROXY_DIR/}; do
      [ -f "$f" ] && { echo "---- last lines of $f ----" >&2; tail -n 30 "$f" >&2; }
    done
  fi
  pgc_stop_all || true
  rm -rf "$PROXY_DIR"
  exit $rc
}
trap proxy_cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
# Each passed check says when it passed (seconds since the test started): where a test's time
# goes is then in every CI log, without rerunning it under a profiler.
PROXY_STARTED_US=${EPOCHREALTIME/./}
pass() { echo "ok - $* [$(pgc_seconds_since "$PROXY_STARTED_US") s]"; }

# The proxy's own server certificate for client TLS (CA in $PROXY_DIR/tls/ca.crt).
pgc_make_tls "$PROXY_DIR/tls" proxy >/dev/null

PROXY_PORT=$(pgc_free_port)

# proxy_write_config <file> <pool_mode> <pool_size> <client_tls> [extra toml appended]
proxy_write_config() {
  local file=$1 mode=$2 size=$3 tls=$4 extra=${5:-}
  cat >"$file" <<EOT
[proxy]
listen_addr = "127.0.0.1"
listen_port = $PROXY_PORT
threads = ${PROXY_THREADS:-2}
unix_socket_dir = "${PROXY_UNIX_DIR:-}"
pool_mode = "$mode"
default_pool_size = $size
max_client_conn = 2000
query_wait_timeout = 30
client_login_timeout = 5
server_connect_timeout = 5
shutdown_timeout = 5
state_file = "$PROXY_DIR/state.json"
log_level = "info"

[proxy.tls]
client_tls = "$tls"
cert_file = "$PROXY_DIR/tls/server.crt"
key_file = "$PROXY_DIR/tls/server.key"

[users.app]
password = "\${PROXY_TEST_PASSWORD}"

[backends.source]
url = "\${PROXY_TEST_SOURCE_URL}"

[backends.target]
url = "\${PROXY_TEST_TARGET_URL}"
$extra
EOT
}

# proxy_write_fleet_config <n> <member name> [reconnect_interval] [extra toml] [pool_size]:
# $PROXY_DIR/p<n>.toml for a fleet member (docs/fleet.md): transaction mode, client TLS
# required, [fleet] after the extra toml, its own state file, listening on PORTS[n] (a free
# port, set here unless PORTS[n] is set already).
proxy_write_fleet_config() {
  local n=$1 name=$2 reconnect=${3:-0.5} extra=${4:-} size=${5:-10}
  [ -n "${PORTS[$n]:-}" ] || PORTS[$n]=$(pgc_free_port)
  PROXY_PORT=${PORTS[$n]} proxy_write_config "$PROXY_DIR/p$n.toml" transaction "$size" require "$extra
[fleet]
enabled = true
name = \"$name\"
reconnect_interval = $reconnect
"
  sed -i "s|state_file = .*|state_file = \"$PROXY_DIR/state$n.json\"|" "$PROXY_DIR/p$n.toml"
}

# proxy_controlled_toml <admin port> <journal>: the TOML that gives a proxy an admin API on
# 127.0.0.1:<port> (token ${PGCUTOVER_TEST_TOKEN}) and makes the same file pgcutoverctl's
# config, commanding that one proxy ([control] journal, [[control.proxies]]).
proxy_controlled_toml() {
  cat <<EOT
[admin]
listen_addr = "127.0.0.1"
listen_port = $1
token = "\${PGCUTOVER_TEST_TOKEN}"

[control]
journal = "$2"

[[control.proxies]]
admin_url = "http://127.0.0.1:$1"
token = "\${PGCUTOVER_TEST_TOKEN}"
EOT
}

proxy_ready() { pg_isready -q -h 127.0.0.1 -p "$PROXY_PORT" -t 1; }

# proxy_start <config>: starts the binary and waits (bounded) until it accepts.
proxy_start() {
  PROXY_TEST_PASSWORD=$PROXY_USER_PASSWORD "$PROXY_BIN" -c "$1" >>"$PROXY_DIR/proxy.log" 2>&1 &
  PROXY_PID=$!
  pgc_wait_until 15 proxy_ready || fail "proxy did not start accepting on $PROXY_PORT"
}

# proxy_stop: SIGTERM, bounded wait for exit.
proxy_stop() {
  [ -n "$PROXY_PID" ] || return 0
  kill -TERM "$PROXY_PID" 2>/dev/null || true
  pgc_wait_until 15 bash -c "! kill -0 $PROXY_PID 2>/dev/null" || fail "proxy did not exit after SIGTERM"
  wait "$PROXY_PID" 2>/dev/null || true
  PROXY_PID=""
}

# Connection string to the proxy; $1 = sslmode (default verify-full against the proxy's CA).
proxy_dsn() {
  local sslmode=${1:-verify-full}
  echo "host=127.0.0.1 port=$PROXY_PORT user=app dbname=app password=$PROXY_USER_PASSWORD sslmode=$sslmode sslrootcert=$PROXY_DIR/tls/ca.crt"
}

# psql through the proxy, unaligned, tuples only.
proxy_psql() {
  local dsn=$1
  shift
  timeout 60 psql -X -q -v ON_ERROR_STOP=1 -At "$dsn" "$@"
}

# The starting point of the cutover drills, on clusters started as src (Heroku-shaped, with
# --logical) and tgt (RDS-shaped): pgbench's tables and a ledger on the source, the schema
# copied to the target, logical replication streaming, a clean validation. Needs $CTL_BIN.
pgc_logical_fixture() {
  export PGPASSWORD=$SRC_APP_PASSWORD
  timeout 120 pgbench -i -q -s 1 "$SRC_URL" >/dev/null 2>&1 || fail "pgbench -i"
  pgc_psql src -qc "CREATE TABLE ledger (id bigserial PRIMARY KEY, client int NOT NULL, at timestamptz DEFAULT now())"
  pgc_admin_psql tgt -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
  "$CTL_BIN" schema copy --source-url "$SRC_URL" --target-url "$TGT_URL" >/dev/null || fail "schema copy"
  "$CTL_BIN" replicate start --method logical --source-url "$SRC_URL" --target-url "$TGT_URL" \
    --subscriber-url "$TGT_ADMIN_URL" --wait-timeout 120 >/dev/null || fail "replicate start"
  "$CTL_BIN" validate --source-url "$SRC_URL" --target-url "$TGT_URL" --jobs 2 >/dev/null || fail "validate"
}

# When a pgbench_history count disagrees with what pgbench acknowledged: the rows that look like
# one tpcb-like transaction run twice (same teller, branch, account and delta; a transaction run
# again has a later mtime, so whole-row duplicates would not show it), on each named cluster.
history_repeats_report() { # <cluster>...
  local side
  for side in "$@"; do
    echo "pgbench_history on $side: $(pgc_admin_psql "$side" -XAtc "select count(*) from pgbench_history") rows; same (tid, bid, aid, delta) more than once:"
    pgc_admin_psql "$side" -XAtc "select tid, bid, aid, delta, count(*), string_agg(mtime::text, ', ' order by mtime)
      from pgbench_history group by 1, 2, 3, 4 having count(*) > 1 limit 20" || true
  done
}

# What pgbench acknowledged per script, from its summary: the ledger insert (ledger.sql) and
# the built-in tpcb-like. Exact only with -j 1: pgbench adds the per-script counts up across its
# threads without a lock ("XXX could use a mutex here, but we choose not to", pgbench.c), so two
# threads can lose an increment, and a test that compares rows with them would see one row "too
# many" about once in 30 runs (its total, kept per thread, stays exact). Every pgbench whose
# log is read here runs with -j 1.
acked() { grep -A3 "ledger.sql" "$1" | grep -oE '[0-9]+ transactions' | head -1 | cut -d' ' -f1; }
tpcb() { grep -A3 "TPC-B" "$1" | grep -oE '[0-9]+ transactions' | head -1 | cut -d' ' -f1; }

# The cutover drills' load through one proxy: pgbench tpcb-like (weight 9) and a ledger insert
# (ledger.sql, weight 1), -j 1 (see acked), in the background ($! is pgbench's timeout).
# The load is paced (25 transactions a second per client, an application's steady writes):
# flat out, it took all the CPU it could for a minute, and the test beside it in the suite
# waited; what the drills check (every acknowledged row once, nothing failed, the pause held
# the clients) needs writes all the time, not as many as possible.
ledger_load() { # <log> <proxy port> <clients> <seconds> [more pgbench options, e.g. -C]
  local log=$1 port=$2 clients=$3 seconds=$4
  shift 4
  [ -f "$PROXY_DIR/ledger.sql" ] || echo "INSERT INTO ledger (client) VALUES (:client_id);" >"$PROXY_DIR/ledger.sql"
  PGPASSWORD=$PROXY_USER_PASSWORD PGSSLMODE=require timeout 240 pgbench -n -c "$clients" -j 1 \
    -T "$seconds" -R $((clients * 25)) "$@" \
    -b tpcb-like@9 -f "$PROXY_DIR/ledger.sql@1" -h 127.0.0.1 -p "$port" -U app app >"$log" 2>&1 &
}

# A proxy the controller commands over its admin API ($PROXY_DIR/p1.toml, transaction mode,
# client TLS, max_pause 60, journal flip.journal): sets CFG, A1_PORT, TOKEN, conn and ctl.
controlled_proxy_setup() {
  export PROXY_TEST_SOURCE_URL=$SRC_URL PROXY_TEST_TARGET_URL=$TGT_URL
  TOKEN="tok-$$-$RANDOM"
  export PGCUTOVER_TEST_TOKEN=$TOKEN PROXY_TEST_PASSWORD=$PROXY_USER_PASSWORD
  A1_PORT=$(pgc_free_port)
  proxy_write_config "$PROXY_DIR/p1.toml" transaction 10 require "
[cutover]
max_pause = 60

$(proxy_controlled_toml "$A1_PORT" "$PROXY_DIR/flip.journal")
"
  CFG=$PROXY_DIR/p1.toml
  conn=(--source-url "$SRC_URL" --target-url "$TGT_URL")
  ctl() { timeout 120 "$CTL_BIN" "$@" "${conn[@]}"; }
}

# Rows in a table on a cluster; whether the ledger has grown past a count there; whether `ctl
# lag` (flag "" or --reverse) is within 3 s (its output in $PROXY_DIR/lag<flag>.out).
table_rows() { pgc_admin_psql "$1" -XAtc "select count(*) from $2"; } # <cluster> <table>
grows() { [ "$(table_rows "$1" ledger)" -gt "$2" ]; }                # <cluster> <rows>
lag_ok() { ctl lag $1 --max-lag 3 >"$PROXY_DIR/lag$1.out" 2>&1; }
