#!/usr/bin/env bash
# 500 concurrent pgbench clients over client TLS on a pool of 10 server connections in
# transaction mode complete a tpcb-like run with zero errors, and the source never sees more
# than 10 connections from the proxy.
. "$(dirname "$0")/../lib/proxy_harness.bash"

pgc_start src heroku --max-connections 60 >/dev/null
export PROXY_TEST_SOURCE_URL=$SRC_URL PROXY_TEST_TARGET_URL=$SRC_URL
cfg=$PROXY_DIR/proxy.toml
proxy_write_config "$cfg" transaction 10 require
proxy_start "$cfg"

export PGPASSWORD=$PROXY_USER_PASSWORD PGSSLMODE=require
timeout 120 pgbench -i -s 2 -q -h 127.0.0.1 -p "$PROXY_PORT" -U app app >/dev/null 2>&1 || fail "pgbench -i"

# Sample the source's connections from the app role while the run goes on.
count_app() { pgc_admin_psql src -XAtc "select count(*) from pg_stat_activity where usename = 'app'"; }
(
  while :; do
    count_app >>"$PROXY_DIR/samples" 2>/dev/null || true
    sleep 0.2
  done
) &
sampler=$!

timeout 300 pgbench -n -c 500 -j 2 -t 20 -h 127.0.0.1 -p "$PROXY_PORT" -U app app >"$PROXY_DIR/pgbench.log" 2>&1 ||
  { kill "$sampler"; tail -20 "$PROXY_DIR/pgbench.log"; fail "pgbench -c 500 failed"; }
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
grep -E "number of (transactions actually processed|failed)|tps" "$PROXY_DIR/pgbench.log"
grep -q "number of transactions actually processed: 10000/10000" "$PROXY_DIR/pgbench.log" || fail "not all transactions processed"
grep -q "number of failed transactions: 0 " "$PROXY_DIR/pgbench.log" || fail "pgbench reported failed transactions"
max=$(sort -n "$PROXY_DIR/samples" | tail -1)
[ -n "$max" ] && [ "$max" -le 10 ] || fail "the source saw $max connections from the proxy (pool is 10)"
pass "500 clients on a pool of 10 (transaction mode): 10000/10000 transactions, 0 failed, at most $max server connections"
proxy_stop
