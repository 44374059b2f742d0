#!/usr/bin/env bash
# The cutover engine's bounds, against a real proxy and a real source (issue 5): a transaction
# that outlives drain_timeout makes a pause either give up and resume (policy abort, the
# blocker named) or cancel it and stay paused (policy cancel, the client gets 57014); a pause
# left alone ends by itself at max_pause (dead-man timer); two commands at once never both run
# (one gets 409 busy) and a pause does not stop a held client from finishing afterwards.
. "$(dirname "$0")/../lib/proxy_harness.bash"

pgc_start src heroku >/dev/null
pgc_start tgt rds >/dev/null
export PROXY_TEST_SOURCE_URL=$SRC_URL PROXY_TEST_TARGET_URL=$TGT_URL
export PROXY_TEST_ADMIN_TOKEN="admin-token-$$-$RANDOM"
ADMIN_PORT=$(pgc_free_port)
ADMIN="http://127.0.0.1:$ADMIN_PORT"
cfg=$PROXY_DIR/proxy.toml
dsn=$(proxy_dsn require)

admin() { # admin <METHOD> <path> [json body] -> "<http code> <body>"
  local method=$1 path=$2 body=${3:-} out="$PROXY_DIR/admin.$BASHPID" # one file per caller
  curl -sS -m 30 -o "$out" -w '%{http_code}' -X "$method" \
    -H "Authorization: Bearer $PROXY_TEST_ADMIN_TOKEN" ${body:+--data "$body"} "$ADMIN$path"
  echo " $(cat "$out")"
}
field() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1].split(" ",1)[1])[sys.argv[2]])' "$1" "$2"; }
state() { field "$(admin GET /v1/status)" state; }
in_flight() { local s; s=$(admin GET /v1/status); echo "$s" >>"$PROXY_DIR/status.log"; [ "$(field "$s" transactions_in_flight)" -ge 1 ]; }

proxy_write_config "$cfg" transaction 4 allow "[cutover]
drain_timeout = 5
max_pause = 20
[admin]
listen_addr = \"127.0.0.1\"
listen_port = $ADMIN_PORT
token = \"\${PROXY_TEST_ADMIN_TOKEN}\""
proxy_start "$cfg"
pgc_wait_until 10 curl -sf -m 2 "$ADMIN/healthz" -o /dev/null || fail "admin API not up"

# ---- drain timeout, policy abort: the pause gives up, resumes, names the blocker ----
timeout 60 psql -X -At "$dsn" -c "begin" -c "select pg_sleep(4)" -c "commit" >"$PROXY_DIR/slow1.out" 2>&1 &
slow=$!
pgc_wait_until 10 in_flight || fail "the slow transaction is not in flight: $(tail -2 "$PROXY_DIR/status.log") $(cat "$PROXY_DIR"/slow*.out 2>/dev/null)"
out=$(admin POST /v1/pause '{"drain_timeout_ms": 300, "drain_policy": "abort"}')
[ "${out%% *}" = 409 ] || fail "abort policy: want 409, got $out"
[ "$(field "$out" result)" = drain_timeout ] || fail "abort policy: result $out"
grep -q '"blockers":\[{' <<<"$out" || fail "abort policy: no blocker named: $out"
[ "$(state)" = running ] || fail "abort policy: not running afterwards"
wait "$slow" || { cat "$PROXY_DIR/slow1.out"; fail "the blocking transaction itself failed under policy abort"; }
pass "drain timeout, policy abort: 409 drain_timeout naming the blocker, resumed, its transaction committed"

# ---- drain timeout, policy cancel: the blocker's query is cancelled, the pause completes ----
timeout 60 psql -X -At "$dsn" -c "begin" -c "select pg_sleep(30)" -c "commit" >"$PROXY_DIR/slow2.out" 2>&1 &
slow=$!
pgc_wait_until 10 in_flight || fail "the slow transaction is not in flight: $(tail -2 "$PROXY_DIR/status.log") $(cat "$PROXY_DIR"/slow*.out 2>/dev/null)"
t0=$(date +%s)
out=$(admin POST /v1/pause '{"drain_timeout_ms": 300, "drain_policy": "cancel"}')
[ "${out%% *}" = 200 ] || fail "cancel policy: want 200, got $out"
[ "$(state)" = paused ] || fail "cancel policy: not paused"
wait "$slow" || true
grep -q "canceling statement due to user request" "$PROXY_DIR/slow2.out" || fail "cancel policy: the client did not get 57014: $(cat "$PROXY_DIR/slow2.out")"
[ $(($(date +%s) - t0)) -lt 20 ] || fail "cancel policy took too long"
out=$(admin POST /v1/resume '{}')
[ "${out%% *}" = 200 ] || fail "resume: $out"
[ "$(proxy_psql "$dsn" -c "select 1")" = 1 ] || fail "proxy unusable after the cancel policy"
pass "drain timeout, policy cancel: the blocking query got 57014, the pause completed, resume serves again"

# ---- dead-man timer: a pause nobody ends resumes by itself, and the held client runs ----
out=$(admin POST /v1/pause '{"max_pause_ms": 1000}')
[ "${out%% *}" = 200 ] || fail "pause for the dead-man timer: $out"
proxy_psql "$dsn" -c "select 'held then released'" >"$PROXY_DIR/held.out" &
held=$!
is_running() { [ "$(state)" = running ]; }
pgc_wait_until 10 is_running || fail "the dead-man timer did not resume the proxy"
wait "$held" || fail "the held client failed after the dead-man resume"
[ "$(cat "$PROXY_DIR/held.out")" = "held then released" ] || fail "held client: $(cat "$PROXY_DIR/held.out")"
grep -q "dead_man" "$PROXY_DIR/proxy.log" || fail "no log line says the dead-man timer resumed"
pass "dead-man timer: an abandoned pause resumed by itself after max_pause, held client served, logged"

# ---- two commands at once: one runs, the other is refused with 409 busy ----
# The transaction the pause waits for blocks on a lock the test holds: it is still running when
# the flip arrives, however slow the machine (a fixed sleep lost that race under ASan), and it
# ends when the test lets it.
pgc_admin_psql src -X -At -c "select pg_advisory_lock(4242)" -c "select pg_sleep(60)" >/dev/null 2>&1 &
holder=$!
lock_held() { [ "$(pgc_admin_psql src -XAtc "select count(*) from pg_locks where locktype = 'advisory' and objid = 4242 and granted")" = 1 ]; }
pgc_wait_until 10 lock_held || fail "the test could not take its lock"
timeout 60 psql -X -At "$dsn" -c "begin" -c "select pg_advisory_xact_lock(4242)" -c "commit" >/dev/null 2>&1 &
slow=$!
pgc_wait_until 10 in_flight || fail "the slow transaction is not in flight: $(tail -2 "$PROXY_DIR/status.log") $(cat "$PROXY_DIR"/slow*.out 2>/dev/null)"
admin POST /v1/pause '{"drain_timeout_ms": 30000}' >"$PROXY_DIR/cmd1.out" &
c1=$!
draining() { [ "$(state)" = pausing ]; }
pgc_wait_until 10 draining || fail "first pause is not draining"
out=$(admin POST /v1/flip '{"backend": "target", "epoch": 0}')
[ "${out%% *}" = 409 ] || fail "a flip during a pause's drain: want 409, got $out"
[ "$(field "$out" result)" = busy ] || fail "concurrent flip: result $out"
pgc_admin_psql src -XAtc "select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory' and objid = 4242 and granted" >/dev/null
wait "$holder" 2>/dev/null || true
wait "$c1"
[ "$(cut -d' ' -f1 "$PROXY_DIR/cmd1.out")" = 200 ] || fail "the first pause: $(cat "$PROXY_DIR/cmd1.out")"
wait "$slow" || fail "the transaction the pause waited for failed"
out=$(admin POST /v1/resume '{}')
[ "${out%% *}" = 200 ] || fail "resume after the concurrent commands: $out"
out=$(admin POST /v1/resume '{}')
[ "${out%% *}" = 200 ] && [ "$(field "$out" changed)" = False ] || fail "a second resume is not idempotent: $out"
[ "$(proxy_psql "$dsn" -c "select inet_server_port()")" = "$SRC_PORT" ] || fail "not on the source after the refused flip"
pass "concurrent commands: the flip during a drain got 409 busy, the pause completed, resume is idempotent"
