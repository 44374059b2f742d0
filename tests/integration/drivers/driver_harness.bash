# Shared by the driver tests in this directory (sourced, not a test itself): one Heroku-shaped
# PostgreSQL, the real pgcutover-proxy in front of it with a pool 8x smaller than the number of
# clients, and one workload per driver run twice, in transaction mode then in session mode.
#
# Every workload (psycopg_workload.py, asyncpg_workload.py, JdbcWorkload.java, ...) does the
# same work, so this file can check the totals in the database directly afterwards. Worker w
# (1..CLIENTS), round r (0..ROUNDS-1), on its connection:
#   1. prepared SELECT balance FROM drv_accounts WHERE id = w        -> expects r * w
#   2. a transaction: prepared UPDATE drv_accounts SET balance = balance + w,
#      prepared INSERT INTO drv_ledger (w, r, w, 'ok'); COMMIT
#   3. a transaction that fails: INSERT (w, r, 1000, 'rolled back'), then a prepared
#      SELECT 1 / 0 (SQLSTATE 22012 expected), ROLLBACK; then, on the same connection, the
#      rolled-back row must not be visible
#   4. COPY 5 rows (w, r, i, 'w-r-i') FROM STDIN into drv_copied, COPY them back TO STDOUT and
#      compare
#   plus whatever the driver has of its own (pipelines, batches, executemany, statement
#   caches), checked inside the workload; it may use drv_scratch freely.
# Every result is checked where it comes back; a workload exits non-zero on the first wrong
# one. Session mode has the same pool of 2: each worker then opens a new connection per round,
# so 16 workers share 2 server connections through DISCARD ALL resets (every new client
# reuses a server connection where another client's statements of the same names existed).
#
# Workload environment: DRV_HOST, DRV_PORT, DRV_USER, DRV_PASSWORD, DRV_DBNAME, DRV_CLIENTS,
# DRV_ROUNDS, DRV_MODE (transaction|session), DRV_RECONNECT (1: a new connection per round).
#
#   . "$(dirname "$0")/driver_harness.bash"
#   drivers_run <label> <command...>
# shellcheck source=../../lib/proxy_harness.bash
. "$(dirname "${BASH_SOURCE[0]}")/../../lib/proxy_harness.bash"

DRV_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export DRV_CLIENTS=${DRV_CLIENTS:-16}
DRV_POOL=$((DRV_CLIENTS / 8))
[ "$DRV_POOL" -ge 1 ] || DRV_POOL=1
# One shard: with two, each would get one server connection of the pool and a client would
# always come back to the same one, so no statement would ever be needed on a server
# connection that had not seen its Parse.
export PROXY_THREADS=1

pgc_start db heroku --max-connections 40 >/dev/null

drivers_sql() { timeout 60 psql -X -q -v ON_ERROR_STOP=1 -At "$DB_URL" "$@"; }

drivers_reset_schema() {
  drivers_sql <<'SQL' || fail "creating the driver test tables"
DROP TABLE IF EXISTS drv_accounts, drv_ledger, drv_copied, drv_scratch;
CREATE TABLE drv_accounts (id int PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE drv_ledger (worker int NOT NULL, round int NOT NULL, amount int NOT NULL, note text NOT NULL);
CREATE TABLE drv_copied (worker int NOT NULL, round int NOT NULL, i int NOT NULL, payload text NOT NULL);
CREATE TABLE drv_scratch (worker int NOT NULL, round int NOT NULL, n int NOT NULL, note text);
SQL
  drivers_sql -c "INSERT INTO drv_accounts SELECT g, 0 FROM generate_series(1, $DRV_CLIENTS) g" ||
    fail "seeding drv_accounts"
}

# drivers_check_totals <label> <rounds>: what the workloads must have left, read directly from
# PostgreSQL (not through the proxy).
drivers_check_totals() {
  local label=$1 rounds=$2 c=$DRV_CLIENTS got want
  got=$(drivers_sql -c "SELECT count(*) FILTER (WHERE balance <> $rounds * id), count(*) FROM drv_accounts")
  [ "$got" = "0|$c" ] || fail "$label: drv_accounts balances wrong (bad|rows = $got)"
  want="$((c * rounds))|$((rounds * c * (c + 1) / 2))|0"
  got=$(drivers_sql -c "SELECT count(*) FILTER (WHERE note = 'ok'), coalesce(sum(amount) FILTER (WHERE note = 'ok'), 0),
                               count(*) FILTER (WHERE note <> 'ok') FROM drv_ledger")
  [ "$got" = "$want" ] || fail "$label: drv_ledger totals $got, want $want (ok rows|ok amount|other rows)"
  want="$((c * rounds * 5))|$((c * rounds))"
  got=$(drivers_sql -c "SELECT count(*), count(DISTINCT (worker, round)) FROM drv_copied")
  [ "$got" = "$want" ] || fail "$label: drv_copied totals $got, want $want (rows|worker-rounds)"
  got=$(drivers_sql -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'app' AND state LIKE 'idle in transaction%'")
  [ "$got" = 0 ] || fail "$label: $got server connections left idle in transaction"
}

# drivers_run <label> <command...>: the workload in transaction mode (long-lived connections)
# and in session mode (a connection per round), each against fresh tables, then the totals.
drivers_run() {
  local label=$1
  shift
  export PROXY_TEST_SOURCE_URL=$DB_URL PROXY_TEST_TARGET_URL=$DB_URL
  export DRV_HOST=127.0.0.1 DRV_PORT=$PROXY_PORT DRV_USER=app DRV_DBNAME=app DRV_PASSWORD=$PROXY_USER_PASSWORD
  local mode rounds start elapsed cfg
  for mode in transaction session; do
    cfg=$PROXY_DIR/proxy-$mode.toml
    # A small statement cache in transaction mode makes the proxy evict and re-prepare on
    # every driver's hot path, not only on the first use of each statement.
    proxy_write_config "$cfg" "$mode" "$DRV_POOL" allow
    sed -i "s/^query_wait_timeout = .*/query_wait_timeout = 20\nmax_prepared_statements = ${DRV_MAX_PREPARED:-8}/" "$cfg"
    proxy_start "$cfg"
    drivers_reset_schema
    if [ "$mode" = transaction ]; then
      rounds=${DRV_ROUNDS_TRANSACTION:-10}
      export DRV_RECONNECT=0
    else
      rounds=${DRV_ROUNDS_SESSION:-3}
      export DRV_RECONNECT=1
    fi
    export DRV_MODE=$mode DRV_ROUNDS=$rounds
    start=$(date +%s.%N)
    timeout 180 "$@" >"$PROXY_DIR/workload-$mode.log" 2>&1 || {
      tail -30 "$PROXY_DIR/workload-$mode.log" >&2
      fail "$label, $mode mode: the workload failed"
    }
    elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    drivers_check_totals "$label, $mode mode" "$rounds"
    if [ "$mode" = transaction ]; then
      # Named statements really are prepared server-side, under the proxy's names: one prepared
      # and the catalog read in one transaction, which pins the server connection. (Read from a
      # later connection instead, the answer depended on which pooled server connection it
      # got: the workload's DEALLOCATE ALL after a ROLLBACK empties the one it runs on.)
      local shared
      shared=$(/usr/bin/python3 - <<'PY'
import os
import psycopg
conn = psycopg.connect(host=os.environ["DRV_HOST"], port=os.environ["DRV_PORT"],
                       user=os.environ["DRV_USER"], dbname=os.environ["DRV_DBNAME"],
                       password=os.environ["DRV_PASSWORD"], sslmode="disable",
                       prepare_threshold=0, autocommit=True)
with conn.transaction():
    conn.execute("SELECT %s::int", (1,))
    print(conn.execute("SELECT count(*) FROM pg_prepared_statements "
                       "WHERE name LIKE 'pgc\\_%%'").fetchone()[0])
PY
      )
      [ "${shared:-0}" -gt 0 ] || fail "$label: no proxy-prepared statement on the server connection"
    fi
    # The proxy's own consistency checks: responses out of the order it expected, or more
    # ReadyForQuery than it counted requests for.
    if grep -Eq 'event=(bug_|unexpected_ready_for_query)' "$PROXY_DIR/proxy.log"; then
      grep -E 'event=(bug_|unexpected_ready_for_query)' "$PROXY_DIR/proxy.log" | head -5 >&2
      fail "$label, $mode mode: the proxy lost track of the protocol"
    fi
    pass "$label, $mode mode: $DRV_CLIENTS clients x $rounds rounds through a pool of $DRV_POOL, totals right ($(tail -1 "$PROXY_DIR/workload-$mode.log"); ${elapsed}s)"
    proxy_stop
  done
}
