#!/usr/bin/env bash
# Followers and read replicas flip with the primary (issue 10). Two routes through one proxy:
# `app` -> source primary / target primary (logical replication between them) and the
# read-only `app_reports` -> a streaming replica of the source (the Heroku follower) / a
# streaming replica of the target (the RDS read replica), both made with pg_basebackup.
#  - preflight lists the route with both sides in recovery and warns about a session reading
#    the follower directly;
#  - one `pgcutoverctl flip` under pgbench writes on `app` and pgbench reads on `app_reports`:
#    zero failed transactions on both;
#  - afterwards `app_reports` answers from the target's replica, /v1/status lists both routes
#    on the target side, and a write on `app_reports` fails with 25006 naming the route.
. "$(dirname "$0")/../lib/proxy_harness.bash"

CTL_BIN=${PGCUTOVER_CTL_BIN:-$(dirname "$PROXY_BIN")/../control/pgcutoverctl}
[ -x "$CTL_BIN" ] || fail "pgcutoverctl not built: $CTL_BIN"
SLEEPER=""
PROXY_PID_VARS=(SLEEPER)
PROXY_FAILURE_LOGS=("ctl.*" "*.bench")

pgc_start src heroku --logical >/dev/null
pgc_start tgt rds >/dev/null

# ---- data on the source, schema and logical replication to the target ----
export PGPASSWORD=$SRC_APP_PASSWORD
timeout 120 pgbench -i -q -s 1 "$SRC_URL" >/dev/null 2>&1 || fail "pgbench -i"
unset PGPASSWORD
pgc_admin_psql tgt -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
"$CTL_BIN" schema copy --source-url "$SRC_URL" --target-url "$TGT_URL" >/dev/null || fail "schema copy"
"$CTL_BIN" replicate start --method logical --source-url "$SRC_URL" --target-url "$TGT_URL" \
  --subscriber-url "$TGT_ADMIN_URL" --wait-timeout 120 >/dev/null || fail "replicate start"
# The follower and the read replica: streaming replicas of each primary.
pgc_start_replica follower src >/dev/null
pgc_start_replica replica tgt >/dev/null
pass "source + follower, target + read replica, logical replication source -> target"

TOKEN="tok-$$-$RANDOM"
ADMIN_PORT=$(pgc_free_port)
export PROXY_TEST_SOURCE_URL=$SRC_URL PROXY_TEST_TARGET_URL=$TGT_URL PGCUTOVER_TEST_TOKEN=$TOKEN
export PROXY_TEST_PASSWORD=$PROXY_USER_PASSWORD PROXY_TEST_FOLLOWER_URL=$FOLLOWER_URL
export PROXY_TEST_REPLICA_URL=$REPLICA_URL
CFG=$PROXY_DIR/proxy.toml
proxy_write_config "$CFG" transaction 8 require "
[backends.source_follower]
url = \"\${PROXY_TEST_FOLLOWER_URL}\"

[backends.target_replica]
url = \"\${PROXY_TEST_REPLICA_URL}\"

[routes.reports]
database = \"app_reports\"
read_only = true
backends = { source = \"source_follower\", target = \"target_replica\" }

[cutover]
max_pause = 30

$(proxy_controlled_toml "$ADMIN_PORT" "$PROXY_DIR/flip.journal")
"
proxy_start "$CFG"
status() { curl -s -m 3 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/v1/status"; }
pgc_wait_until 10 status >/dev/null || fail "admin API not up"
reports_dsn=$(proxy_dsn require | sed 's/dbname=app /dbname=app_reports /')
app_dsn=$(proxy_dsn require)
[ "$(proxy_psql "$reports_dsn" -c "select inet_server_port() || ' ' || pg_is_in_recovery()")" = "$FOLLOWER_PORT true" ] ||
  fail "app_reports does not answer from the source's follower"
[ "$(proxy_psql "$app_dsn" -c "select inet_server_port()")" = "$SRC_PORT" ] || fail "app does not answer from the source"
pass "route app -> source primary ($SRC_PORT), route app_reports -> follower ($FOLLOWER_PORT)"

# ---- writes on the read-only route: refused, naming the route ----
out=$(timeout 30 psql -X -At -v VERBOSITY=verbose "$reports_dsn" -c "insert into pgbench_history (tid, bid, aid, delta) values (1, 1, 1, 0)" 2>&1) &&
  fail "a write on the read-only route succeeded"
grep -q '25006' <<<"$out" || fail "write on app_reports: no SQLSTATE 25006: $out"
grep -q 'database "app_reports" is a read-only route' <<<"$out" || fail "write on app_reports: error does not name the route: $out"
pass "write on app_reports refused: ${out%%$'\n'*}"

# ---- preflight: the route, both sides' lag, a reader bypassing the proxy ----
psql -X -q -d "$(pgc_get follower admin_url)" -c "select pg_sleep(60)" >/dev/null 2>&1 &
SLEEPER=$!
bypass() { [ "$(PGPASSWORD= psql -XAtd "$(pgc_get follower admin_url)" -c "select count(*) from pg_stat_activity where query like 'select pg_sleep%'")" -ge 1 ]; }
pgc_wait_until 10 bypass || fail "the direct follower session did not start"
timeout 60 "$CTL_BIN" preflight -c "$CFG" --proxy-addr 127.0.0.1 --json >"$PROXY_DIR/ctl.preflight" 2>&1 || true
/usr/bin/python3 - "$PROXY_DIR/ctl.preflight" <<'PY' || fail "preflight route check: $(cat "$PROXY_DIR/ctl.preflight")"
import json, sys
checks = {c["id"]: c for c in json.load(open(sys.argv[1]))["checks"]}
r = checks["route_reports"]
assert r["status"] == "warn", r
assert r["data"]["source"][0]["in_recovery"] and r["data"]["target"][0]["in_recovery"], r
assert "unreplayed_bytes" in r["data"]["target"][0], r
assert r["data"]["follower_sessions_bypassing"] >= 1, r
assert "app_reports" in r["fix"], r
print("   " + r["found"])
PY
kill "$SLEEPER" 2>/dev/null
SLEEPER=""
pass "preflight lists route_reports with both sides' replica state and warns about the direct follower reader"

# ---- one flip under writes on app and reads on app_reports ----
cat >"$PROXY_DIR/reads.sql" <<'SQL'
\set aid random(1, 100000)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
SELECT inet_server_port(), pg_is_in_recovery();
SQL
export PGPASSWORD=$PROXY_USER_PASSWORD PGSSLMODE=require
# Both loads paced (25 transactions a second per client, as ledger_load and for the same reason).
timeout 120 pgbench -n -c 8 -j 1 -T 8 -R 200 -h 127.0.0.1 -p "$PROXY_PORT" -U app app >"$PROXY_DIR/writes.bench" 2>&1 &
writes=$!
(cd "$PROXY_DIR" && timeout 120 pgbench -n -c 4 -j 1 -T 8 -R 100 -l --log-prefix=reads -f "$PROXY_DIR/reads.sql" \
  -h 127.0.0.1 -p "$PROXY_PORT" -U app app_reports >"$PROXY_DIR/reads.bench" 2>&1) &
reads=$!
hist() { PGPASSWORD= psql -XAtd "$SRC_ADMIN_URL" -c "select count(*) from pgbench_history"; }
pgc_wait_until 10 bash -c "[ \$(PGPASSWORD= psql -XAtd '$SRC_ADMIN_URL' -c 'select count(*) from pgbench_history') -gt 100 ]" ||
  fail "pgbench does not write through the proxy"
timeout 120 "$CTL_BIN" flip -c "$CFG" --json --subscriber-url "$TGT_ADMIN_URL" \
  --source-subscriber-url "$SRC_ADMIN_URL" --reverse-publisher-url "$TGT_ADMIN_URL" \
  --smoke-url "$app_dsn" --max-validation-age 0 >"$PROXY_DIR/ctl.flip" 2>"$PROXY_DIR/ctl.err" || fail "pgcutoverctl flip: $(cat "$PROXY_DIR/ctl.flip")"
pause_ms=$(/usr/bin/python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["write_pause_ms"]))' "$PROXY_DIR/ctl.flip")
wait $writes || fail "pgbench writes failed"
wait $reads || fail "pgbench reads failed"
for l in writes reads; do
  grep -q "number of failed transactions: 0 " "$PROXY_DIR/$l.bench" || { cat "$PROXY_DIR/$l.bench"; fail "failed transactions in $l"; }
done
nw=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$PROXY_DIR/writes.bench")
nr=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$PROXY_DIR/reads.bench")
# The longest read on the replica route (per-transaction log, microseconds): read-only routes
# pass the closed gate, so reads are not held for the write pause.
max_read_ms=$(cat "$PROXY_DIR"/reads.[0-9]* | awk '$3 > m {m = $3} END {print int(m / 1000)}')
pass "one pgcutoverctl flip under load: $nw write transactions on app, $nr read transactions on app_reports, 0 failed; write pause $pause_ms ms, longest read $max_read_ms ms"

# ---- after the flip ----
[ "$(proxy_psql "$reports_dsn" -c "select inet_server_port() || ' ' || pg_is_in_recovery()")" = "$REPLICA_PORT true" ] ||
  fail "app_reports does not answer from the target's replica after the flip"
[ "$(proxy_psql "$app_dsn" -c "select inet_server_port()")" = "$TGT_PORT" ] || fail "app does not answer from the target"
/usr/bin/python3 - "$(status)" <<'PY' || fail "/v1/status routes: $(status)"
import json, sys
s = json.loads(sys.argv[1])
assert s["backend"] == "target", s
routes = {r["database"]: r for r in s["routes"]}
assert routes["*"]["backend"] == "target", routes
assert routes["app_reports"]["backend"] == "target_replica" and routes["app_reports"]["read_only"], routes
assert routes["app_reports"]["backends"] == {"source": ["source_follower"], "target": ["target_replica"]}, routes
PY
out=$(timeout 30 psql -X -At "$reports_dsn" -c "insert into pgbench_history (tid, bid, aid, delta) values (1, 1, 1, 0)" 2>&1) &&
  fail "a write on the read-only route succeeded after the flip"
grep -q 'database "app_reports" is a read-only route' <<<"$out" || fail "write after the flip: $out"
pass "after the flip: app_reports on the target's replica ($REPLICA_PORT), app on the target ($TGT_PORT), /v1/status lists both routes, writes on app_reports still refused"
