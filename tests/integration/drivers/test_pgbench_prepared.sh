#!/usr/bin/env bash
# pgbench -M prepared (libpq named prepared statements, one Parse per statement per client) with
# 16 clients on a pool of 2 server connections completes with 0 failed transactions in
# transaction mode (each transaction may land on a server connection that never saw the
# client's Parse) and in session mode; prints tps next to a direct run. Each client runs a fixed
# count of transactions: the Parse of every statement happens in a client's first transaction,
# and a timed run spent its remaining seconds (4 runs of 5 s, all the CPU there was) repeating
# Binds the other tests take. Transaction mode runs
# twice: one pgbench thread per client (-j 16), and 2 threads of 8 clients each (-j 2). With
# -j 2 a thread blocks in PQprepare (Parse + Sync) for one client while another of its clients
# holds a pooled server connection in the middle of a transaction; the proxy answers a
# Parse/Sync-only batch without a server connection (answer_without_server in
# proxy/session/prepared_statements.h), so that thread is not left waiting for query_wait_timeout.
. "$(dirname "$0")/../../lib/proxy_harness.bash"

pgc_start src heroku --max-connections 60 >/dev/null
export PROXY_TEST_SOURCE_URL=$SRC_URL PROXY_TEST_TARGET_URL=$SRC_URL
export PGPASSWORD=$PROXY_USER_PASSWORD PGSSLMODE=disable

run_bench() { # <label> <connection string> [threads]
  local label=$1 log=$PROXY_DIR/pgbench-$1.log threads=${3:-16}
  local start=$SECONDS
  timeout 300 pgbench -n -M prepared -c 16 -j "$threads" -t 100 "$2" >"$log" 2>&1 || { tail -20 "$log"; fail "$label: pgbench -M prepared failed"; }
  # 1,600 transactions take about a second; against query_wait_timeout = 30, a client stalled
  # on the pool makes the run last past 30 s even when it ends without an error.
  [ $((SECONDS - start)) -lt 25 ] || fail "$label: pgbench -t 100 took $((SECONDS - start)) s (a stalled client)"
  grep -q "number of failed transactions: 0 " "$log" || { tail -20 "$log"; fail "$label: failed transactions"; }
  local processed tps
  processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log")
  [ "${processed:-0}" = 1600 ] || fail "$label: $processed of 1600 transactions processed"
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$log")
  pass "$label: pgbench -M prepared -c 16 -j $threads -t 100: $processed transactions, 0 failed, tps $tps"
}

for mode in transaction session; do
  cfg=$PROXY_DIR/proxy-$mode.toml
  # session mode needs one server connection per client
  size=2
  [ "$mode" = session ] && size=16
  proxy_write_config "$cfg" "$mode" "$size" allow
  proxy_start "$cfg"
  if [ "$mode" = transaction ]; then
    timeout 120 pgbench -i -s 1 -q -h 127.0.0.1 -p "$PROXY_PORT" -U app app >/dev/null 2>&1 || fail "pgbench -i"
  fi
  run_bench "$mode-pool-$size" "$(proxy_dsn disable)"
  if [ "$mode" = transaction ]; then
    run_bench "$mode-pool-$size-2-threads" "$(proxy_dsn disable)" 2
  fi
  proxy_stop
done

# The same run straight to PostgreSQL, for comparison.
run_bench direct "$SRC_URL"
