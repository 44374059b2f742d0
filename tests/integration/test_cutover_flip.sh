#!/usr/bin/env bash
# The cutover engine under load (issue 5): pgbench tpcb-like, 16 clients through the proxy in
# transaction mode, while the proxy pauses, the test waits for logical replication to reach a
# fixed source position, and the proxy flips to the target and resumes. Proves: zero failed
# pgbench transactions, every acknowledged transaction's history row is on the target exactly
# once, the longest transaction during the flip (the write pause) is reported, a held client's
# query runs on the new backend, the flip was persisted (a restart stays on the target), and
# the admin API refuses calls without the token (401) and stale epochs (409).
. "$(dirname "$0")/../lib/proxy_harness.bash"

pgc_start src heroku --logical >/dev/null
pgc_start tgt rds >/dev/null
export PROXY_TEST_SOURCE_URL=$SRC_URL PROXY_TEST_TARGET_URL=$TGT_URL
export PROXY_TEST_ADMIN_TOKEN="admin-token-$$-$RANDOM"
ADMIN_PORT=$(pgc_free_port)
ADMIN="http://127.0.0.1:$ADMIN_PORT"
cfg=$PROXY_DIR/proxy.toml
dsn=$(proxy_dsn require)

admin() { # admin <METHOD> <path> [json body] -> prints "<http code> <body>"
  local method=$1 path=$2 body=${3:-}
  curl -sS -m 30 -o "$PROXY_DIR/admin.out" -w '%{http_code}' -X "$method" \
    -H "Authorization: Bearer $PROXY_TEST_ADMIN_TOKEN" -H 'Content-Type: application/json' \
    ${body:+--data "$body"} "$ADMIN$path"
  echo " $(cat "$PROXY_DIR/admin.out")"
}
json_field() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1].split(" ",1)[1])[sys.argv[2]])' "$1" "$2"; }

# ---- source data, schema on the target, logical replication source -> target ----
timeout 120 pgbench -i -s 1 -q "$SRC_URL" >/dev/null 2>&1 || fail "pgbench -i on the source"
timeout 60 pg_dump --schema-only --no-owner --no-acl -t 'pgbench_*' "$SRC_URL" | timeout 60 psql -X -q -v ON_ERROR_STOP=1 "$TGT_URL" >/dev/null
pgc_psql src -c "create publication cutover_pub for table pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history" >/dev/null
src_conninfo="host=127.0.0.1 port=$SRC_PORT user=$SRC_APP_USER password=$SRC_APP_PASSWORD dbname=app sslmode=require"
# synchronous_commit = on: the apply worker's commits are flushed at once, so the slot's
# confirmed_flush_lsn (the catch-up barrier) advances per commit instead of once per
# wal_writer_delay (200 ms), which would otherwise dominate the write pause.
pgc_admin_psql tgt -q -c "create subscription cutover_sub connection '$src_conninfo' publication cutover_pub with (synchronous_commit = 'on')" >/dev/null
synced() { [ "$(pgc_admin_psql tgt -At -c "select count(*) from pg_subscription_rel where srsubstate <> 'r'")" = 0 ]; }
pgc_wait_until 120 synced || fail "initial copy did not finish"
pass "logical replication source -> target streaming"

proxy_write_config "$cfg" transaction 8 allow "[cutover]
initial_backend = \"source\"
drain_timeout = 5
max_pause = 20
prewarm = true
[admin]
listen_addr = \"127.0.0.1\"
listen_port = $ADMIN_PORT
token = \"\${PROXY_TEST_ADMIN_TOKEN}\""
proxy_start "$cfg"
pgc_wait_until 10 curl -sf -m 2 "$ADMIN/healthz" -o /dev/null || fail "admin API not up"

# ---- admin API security ----
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$ADMIN/v1/status")
[ "$code" = 401 ] || fail "status without token: HTTP $code, want 401"
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrong" -X POST "$ADMIN/v1/pause")
[ "$code" = 401 ] || fail "pause with a wrong token: HTTP $code, want 401"
out=$(admin GET /v1/status)
[ "${out%% *}" = 200 ] || fail "status with token: $out"
[ "$(json_field "$out" backend)" = source ] || fail "not on the source at start: $out"
epoch=$(json_field "$out" epoch)
out=$(admin POST /v1/flip "{\"backend\":\"target\",\"epoch\":$((epoch + 7))}")
[ "${out%% *}" = 409 ] || fail "stale epoch accepted: $out"
# Read the whole body first: `curl | grep -q` under pipefail fails whenever grep stops
# reading before curl has written everything (curl then dies of SIGPIPE).
metrics=$(curl -sS -m 10 -H "Authorization: Bearer $PROXY_TEST_ADMIN_TOKEN" "$ADMIN/metrics") || fail "GET /metrics"
grep -q '^pgcutover_transactions_total' <<<"$metrics" || fail "/metrics lacks pgcutover_transactions_total"
pass "admin API: 401 without or with a wrong token, 409 on a stale epoch, /metrics served"

# ---- pgbench through the proxy, flip in the middle ----
before=$(pgc_psql src -At -c "select count(*) from pgbench_history")
(cd "$PROXY_DIR" && PGPASSWORD=$PROXY_USER_PASSWORD PGSSLMODE=require timeout 120 pgbench -n -c 16 -j 2 -T 12 \
  -l --log-prefix=flip -h 127.0.0.1 -p "$PROXY_PORT" -U app app >"$PROXY_DIR/pgbench.out" 2>&1) &
bench_pid=$!
running() { [ "$(pgc_psql src -At -c "select count(*) from pgbench_history")" -gt $((before + 200)) ]; }
pgc_wait_until 30 running || fail "pgbench is not running through the proxy"

# The controller's part, as pgcutoverctl flip does it, from one process with connections
# already open (so the pause is not measuring psql start-up): pause; read the source's WAL
# position once (a fixed point, never a moving "lag = 0"); wait until the subscription's slot
# has confirmed it; flip (persist, retarget, resume).
cat >"$PROXY_DIR/flip.py" <<'PY'
import json, os, sys, time, urllib.request
import psycopg
admin, token, epoch = os.environ["ADMIN"], os.environ["PROXY_TEST_ADMIN_TOKEN"], int(sys.argv[1])
src = psycopg.connect(os.environ["SRC_ADMIN_URL"], autocommit=True)
def call(path, body):
    req = urllib.request.Request(admin + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
t0 = time.time()
code, paused = call("/v1/pause", {})
assert code == 200, (code, paused)
lsn = src.execute("select pg_current_wal_lsn()").fetchone()[0]
deadline = time.time() + 15
while not src.execute("select coalesce(bool_and(confirmed_flush_lsn >= %s::pg_lsn), false) "
                      "from pg_replication_slots where slot_name = 'cutover_sub'", (lsn,)).fetchone()[0]:
    assert time.time() < deadline, "target did not reach " + str(lsn)
    time.sleep(0.002)
t_caught = time.time()
code, flipped = call("/v1/flip", {"backend": "target", "epoch": epoch})
t1 = time.time()
print(json.dumps({"code": code, "flip": flipped, "t0_us": int(t0 * 1e6), "t1_us": int(t1 * 1e6),
                  "pause_ms": round((t1 - t0) * 1000), "catch_up_ms": round((t_caught - t0) * 1000)}))
PY
out=$(ADMIN=$ADMIN SRC_ADMIN_URL=$SRC_ADMIN_URL /usr/bin/python3 "$PROXY_DIR/flip.py" "$epoch") || fail "flip controller: $out"
field() { /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); 
for k in sys.argv[2].split("."): d=d[k]
print(d)' "$out" "$1"; }
[ "$(field code)" = 200 ] || fail "flip: $out"
[ "$(field flip.backend)" = target ] || fail "flip answered another backend: $out"
[ "$(field flip.epoch)" = $((epoch + 1)) ] || fail "flip did not advance the epoch: $out"
t0=$(field t0_us)
t1=$(field t1_us)
pause_ms=$(field pause_ms)

wait "$bench_pid" || { cat "$PROXY_DIR/pgbench.out"; fail "pgbench exited non-zero across the flip"; }
grep -q "number of failed transactions: 0 " "$PROXY_DIR/pgbench.out" || { cat "$PROXY_DIR/pgbench.out"; fail "pgbench had failed transactions across the flip"; }
processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$PROXY_DIR/pgbench.out")
# The longest transaction while the flip ran, from pgbench's per-transaction log (microseconds).
max_us=$(cat "$PROXY_DIR"/flip.[0-9]* | awk -v a="$t0" -v b="$t1" \
  '{end=$5*1000000+$6; start=end-$3; if (end >= a && start <= b && $3 > m) m=$3} END {print m+0}')
pass "pgbench tpcb-like, 16 clients: $processed transactions, 0 failed; pause->resume ${pause_ms} ms by the controller's clock; longest transaction across the flip $((max_us / 1000)) ms"

# ---- no acknowledged write lost or duplicated: one history row per pgbench transaction ----
on_target=$(pgc_psql tgt -At -c "select count(*) from pgbench_history")
[ "$on_target" = $((before + processed)) ] || fail "target has $on_target history rows, want $before + $processed"
pass "every acknowledged transaction is on the target exactly once ($on_target history rows)"

# ---- /metrics counts what the shards counted (each shard thread keeps its own counters) ----
metrics=$(curl -sS -m 10 -H "Authorization: Bearer $PROXY_TEST_ADMIN_TOKEN" "$ADMIN/metrics") || fail "GET /metrics"
counted=$(awk '/^pgcutover_transactions_total / {printf "%d", $2}' <<<"$metrics")
[ "${counted:-0}" -ge "$processed" ] ||
  fail "/metrics counts ${counted:-no} transactions, pgbench made $processed through the proxy"
pass "/metrics: pgcutover_transactions_total $counted >= the $processed pgbench transactions"

# ---- the next query runs on the new backend; the state survived a restart ----
[ "$(proxy_psql "$dsn" -c "select inet_server_port()")" = "$TGT_PORT" ] || fail "query after the flip did not run on the target"
grep -q '"target"' "$PROXY_DIR/state.json" || fail "state file does not name the target: $(cat "$PROXY_DIR/state.json")"
proxy_stop
proxy_start "$cfg"
[ "$(proxy_psql "$dsn" -c "select inet_server_port()")" = "$TGT_PORT" ] || fail "restarted proxy went back to the source"
pass "after the flip: queries run on the target, and a restarted proxy stays there"

# ---- a client held by the pause runs on the new backend once the proxy flips back ----
out=$(admin POST /v1/pause '{}')
[ "${out%% *}" = 200 ] || fail "second pause: $out"
proxy_psql "$dsn" -c "select inet_server_port()" >"$PROXY_DIR/held.out" &
held_pid=$!
held() { [ "$(json_field "$(admin GET /v1/status)" held_clients)" -ge 1 ]; }
pgc_wait_until 10 held || fail "the client was not held by the pause"
out=$(admin POST /v1/revert '{}')
[ "${out%% *}" = 200 ] || fail "revert: $out"
wait "$held_pid" || fail "held client failed"
[ "$(cat "$PROXY_DIR/held.out")" = "$SRC_PORT" ] || fail "held client ran on $(cat "$PROXY_DIR/held.out"), want the source $SRC_PORT"
pass "a client held during the pause ran on the new backend after the flip (revert to source)"

# ---- read-only mode: writes get 25006, reads continue ----
out=$(admin POST /v1/readonly '{"enabled":true}')
[ "${out%% *}" = 200 ] || fail "readonly on: $out"
out=$(timeout 30 psql -X -At "$dsn" -c "insert into pgbench_history(tid, bid, aid, delta) values (1, 1, 1, 0)" 2>&1 || true)
grep -q "read-only transaction" <<<"$out" || fail "write in read-only mode was not refused: $out"
[ "$(proxy_psql "$dsn" -c "select 1")" = 1 ] || fail "read in read-only mode failed"
out=$(admin POST /v1/readonly '{"enabled":false}')
[ "${out%% *}" = 200 ] || fail "readonly off: $out"
proxy_psql "$dsn" -c "insert into pgbench_history(tid, bid, aid, delta) values (1, 1, 1, 0)" >/dev/null || fail "write after read-only mode ended"
pass "read-only mode refuses writes (25006) and keeps reads; turning it off restores writes"

# ---- a prewarm asked "writable" logs in writable while the backend's role is still fenced ----
# (pgcutoverctl asks for it when the destination carries the fence of an earlier revert: the
# fence is lifted inside the pause, and read-only warm connections would be thrown away.)
# One shard: its pools' connections are the ones warmed (a second shard with no pool
# connections warms none, and its client would open a fresh, read-only one).
sed -i 's/^threads = .*/threads = 1/' "$cfg"
proxy_stop
proxy_start "$cfg"
pgc_wait_until 10 curl -sf -m 2 "$ADMIN/healthz" -o /dev/null || fail "admin API not up after the restart"
pgc_admin_psql tgt -q -c "alter role app set default_transaction_read_only = on" >/dev/null
flip_to() { # <backend>: pause, then flip from PAUSED (which opens the gate and never prewarms)
  local e
  # A pool connection before the switch: a prewarm warms as many as the pools have open.
  [ "$(proxy_psql "$dsn" -c "select 1")" = 1 ] || fail "query before flipping to $1"
  e=$(json_field "$(admin GET /v1/status)" epoch)
  out=$(admin POST /v1/pause '{}')
  [ "${out%% *}" = 200 ] || fail "pause before flipping to $1: $out"
  out=$(admin POST /v1/flip "{\"backend\":\"$1\",\"epoch\":$e}")
  [ "${out%% *}" = 200 ] || fail "flip to $1: $out"
}
insert_sql="insert into pgbench_history(tid, bid, aid, delta) values (1, 1, 1, 0)"
out=$(admin POST /v1/prewarm '{"backend":"target"}')
[ "${out%% *}" = 200 ] || fail "prewarm: $out"
flip_to target
out=$(timeout 30 psql -X -At "$dsn" -c "$insert_sql" 2>&1 || true)
grep -q "read-only transaction" <<<"$out" || fail "a write on the fenced target went through a plain prewarm: $out"
flip_to source
out=$(admin POST /v1/prewarm '{"backend":"target","writable":true}')
[ "${out%% *}" = 200 ] || fail "writable prewarm: $out"
flip_to target
proxy_psql "$dsn" -c "$insert_sql" >/dev/null || fail "the writable prewarm's connection refused a write"
[ "$(proxy_psql "$dsn" -c "show default_transaction_read_only")" = off ] || fail "the warm connection is not writable"
out=$(admin POST /v1/prewarm '{"backend":"target","writable":"yes"}')
[ "${out%% *}" = 400 ] || fail "writable must be a boolean: $out"
pgc_admin_psql tgt -q -c "alter role app reset default_transaction_read_only" >/dev/null
pass "prewarm: plain warm connections to a fenced role stay read-only (25006); writable ones take writes"
