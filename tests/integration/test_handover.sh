#!/usr/bin/env bash
# A planned hand-over: `pgcutover-proxy --handover` replaces a running proxy (a new binary, the
# same configuration) without sharing the port and without refusing a single connection. The
# running proxy passes its listening sockets (client TCP and Unix, admin API), stops accepting
# and exits once its clients are done; a transaction it was running commits. Until it has
# exited the successor refuses cutover commands (409 handover_in_progress: a flip then would
# split writes). Refused, with the reason and the running proxy untouched: another
# configuration file, a copied config with its own state file, a paused gate.
. "$(dirname "$0")/../lib/proxy_harness.bash"

pgc_start src plain >/dev/null
pgc_start dst plain >/dev/null
export PROXY_TEST_SOURCE_URL=$SRC_URL PROXY_TEST_TARGET_URL=$DST_URL
ADMIN_PORT=$(pgc_free_port)
export PROXY_TEST_ADMIN_TOKEN="admin-token-$$-$RANDOM"
PROXY_UNIX_DIR=$PROXY_DIR/sock
mkdir -p "$PROXY_UNIX_DIR"
proxy_write_config "$PROXY_DIR/a.toml" transaction 4 disable "[admin]
listen_addr = \"127.0.0.1\"
listen_port = $ADMIN_PORT
token = \"\${PROXY_TEST_ADMIN_TOKEN}\""
A_PID="" B_PID="" C_PID=""
PROXY_PID_VARS=(A_PID B_PID C_PID)

admin() { # METHOD PATH [BODY]: prints "<http code> <body>"
  local code
  code=$(curl -sS -m 30 -o "$PROXY_DIR/admin.out" -w '%{http_code}' -X "$1" \
    -H "Authorization: Bearer $PROXY_TEST_ADMIN_TOKEN" -H 'Content-Type: application/json' \
    ${3:+-d "$3"} "http://127.0.0.1:$ADMIN_PORT$2")
  echo "$code $(cat "$PROXY_DIR/admin.out")"
}
successor() { # CONFIG LOG: starts `--handover` in the background, sets SUCC_PID
  PROXY_TEST_PASSWORD=$PROXY_USER_PASSWORD "$PROXY_BIN" --handover -c "$1" >>"$2" 2>&1 &
  SUCC_PID=$!
}
refused() { # CONFIG OUT: runs --handover to completion, prints its exit code
  set +e
  PROXY_TEST_PASSWORD=$PROXY_USER_PASSWORD timeout 20 "$PROXY_BIN" --handover -c "$1" >"$2" 2>&1
  echo $?
  set -e
}
port_of() { proxy_psql "$(proxy_dsn disable)" -c 'select inet_server_port()'; }

proxy_start "$PROXY_DIR/a.toml"
A_PID=$PROXY_PID
pgc_wait_until 10 curl -sf -m 2 "http://127.0.0.1:$ADMIN_PORT/healthz" -o /dev/null || fail "admin API not up"
[ "$(port_of)" = "$SRC_PORT" ] || fail "the first proxy does not serve the source"

# ---- refusals: the running proxy keeps serving ----
sed 's/^log_level = "info"/log_level = "debug"/' "$PROXY_DIR/a.toml" >"$PROXY_DIR/edited.toml"
rc=$(refused "$PROXY_DIR/edited.toml" "$PROXY_DIR/edited.out")
[ "$rc" = 1 ] || fail "a hand-over with another config file exited $rc: $(cat "$PROXY_DIR/edited.out")"
grep -q "running proxy (pid $A_PID) refused the hand-over: its configuration file differs" \
  "$PROXY_DIR/edited.out" || fail "the refusal does not say why: $(cat "$PROXY_DIR/edited.out")"
pass "another configuration file is refused (exit 1), naming pid $A_PID and the reason"

sed "s|$PROXY_DIR/state.json|$PROXY_DIR/copy-state.json|" "$PROXY_DIR/a.toml" >"$PROXY_DIR/copy.toml"
echo '{"backend":"target","epoch":1}' >"$PROXY_DIR/copy-state.json"
rc=$(refused "$PROXY_DIR/copy.toml" "$PROXY_DIR/copy.out")
[ "$rc" = 1 ] || fail "a copied config with its own state file exited $rc: $(cat "$PROXY_DIR/copy.out")"
grep -q "no running proxy offers a hand-over" "$PROXY_DIR/copy.out" ||
  fail "the refusal does not say why: $(cat "$PROXY_DIR/copy.out")"
pass "a copied config with another state file (another backend) finds nothing to take over"

out=$(admin POST /v1/pause '{}')
[ "${out%% *}" = 200 ] || fail "pause: $out"
rc=$(refused "$PROXY_DIR/a.toml" "$PROXY_DIR/paused.out")
[ "$rc" = 1 ] && grep -q "refused the hand-over: the gate is closed" "$PROXY_DIR/paused.out" ||
  fail "a hand-over during a pause was not refused (exit $rc): $(cat "$PROXY_DIR/paused.out")"
out=$(admin POST /v1/resume '{}')
[ "${out%% *}" = 200 ] || fail "resume: $out"
pass "a hand-over while the gate is closed is refused"
kill -0 "$A_PID" || fail "a refused hand-over stopped the running proxy"
[ "$(port_of)" = "$SRC_PORT" ] || fail "the running proxy no longer serves after the refusals"

# ---- the hand-over, under a stream of new connections and one open transaction ----
rm -f "$PROXY_DIR/stop" "$PROXY_DIR/connects"
# New connections as fast as one client makes them (psycopg, a login and a query each), until
# told to stop: one line per attempt.
/usr/bin/python3 - "$(proxy_dsn disable)" "$PROXY_DIR" <<'PY' &
import os, sys, time, psycopg
dsn, d = sys.argv[1], sys.argv[2]
with open(d + "/connects", "a", buffering=1) as out:
    for _ in range(20000):
        if os.path.exists(d + "/stop"):
            break
        try:
            with psycopg.connect(dsn, connect_timeout=10) as c:
                c.execute("select 1").fetchone()
            out.write("ok\n")
        except Exception as e:
            out.write("failed %s\n" % str(e).replace("\n", " "))
PY
LOOP_PID=$!
pgc_wait_until 20 bash -c "[ -s '$PROXY_DIR/connects' ]" || fail "no connection through the proxy"
proxy_psql "$(proxy_dsn disable)" -c 'create table if not exists handover_t(x int)' >/dev/null
# A transaction running on the predecessor when the hand-over happens: it must commit there.
/usr/bin/python3 - "$(proxy_dsn disable)" >"$PROXY_DIR/txn.out" 2>&1 <<'PY' &
import subprocess, sys
script = "begin; insert into handover_t values (1); select pg_sleep(2); commit;"
r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", sys.argv[1], "-c", script])
sys.exit(r.returncode)
PY
TXN_PID=$!
pgc_wait_until 10 bash -c "[ \"\$(psql -X -At '$SRC_URL' -c \"select count(*) from pg_stat_activity where query like '%pg_sleep(2)%' and pid <> pg_backend_pid()\")\" -ge 1 ]" ||
  fail "the long transaction did not start"

successor "$PROXY_DIR/a.toml" "$PROXY_DIR/b.log"
B_PID=$SUCC_PID
pgc_wait_until 10 grep -q "event=handover_taken" "$PROXY_DIR/b.log" ||
  fail "the successor did not take over: $(tail -5 "$PROXY_DIR/b.log")"
grep -q "event=handover_given.*to_pid=$B_PID" "$PROXY_DIR/proxy.log" ||
  fail "the predecessor did not log the hand-over"
# The predecessor still runs the 2 s transaction: commands are held.
kill -0 "$A_PID" || fail "the predecessor exited before its transaction ended"
out=$(admin POST /v1/pause '{}')
[ "${out%% *}" = 409 ] && [[ "$out" == *handover_in_progress* ]] ||
  fail "a pause while the predecessor serves was not refused: $out"
pass "while the predecessor serves its clients, cutover commands answer 409 handover_in_progress"

wait "$TXN_PID" || fail "the transaction open during the hand-over failed: $(cat "$PROXY_DIR/txn.out")"
pgc_wait_until 15 bash -c "! kill -0 $A_PID 2>/dev/null" || fail "the predecessor did not exit"
set +e
wait "$A_PID"
a_rc=$?
set -e
[ "$a_rc" = 0 ] || fail "the predecessor exited $a_rc"
A_PID=""
pass "the transaction running during the hand-over committed; the predecessor exited 0"

pgc_wait_until 10 grep -q "event=handover_complete" "$PROXY_DIR/b.log" ||
  fail "the successor did not see the predecessor go"
n=$(wc -l <"$PROXY_DIR/connects")
pgc_wait_until 10 bash -c "[ \$(wc -l <'$PROXY_DIR/connects') -ge $((n + 20)) ]" ||
  fail "no connection through the successor after the hand-over"
touch "$PROXY_DIR/stop"
wait "$LOOP_PID"
total=$(wc -l <"$PROXY_DIR/connects")
failed=$(grep -c failed "$PROXY_DIR/connects" || true)
[ "$failed" = 0 ] || fail "$failed of $total connections failed during the hand-over: $(grep failed "$PROXY_DIR/connects" | sort -u | head -3)"
[ "$(psql -X -At "$SRC_URL" -c 'select count(*) from handover_t')" = 1 ] || fail "the insert is lost"
pass "$total connections during the hand-over, none refused or failed"

# The successor serves TCP and the Unix socket, and its commands work.
PROXY_PID=$B_PID
[ "$(port_of)" = "$SRC_PORT" ] || fail "the successor does not serve the source"
[ "$(PGPASSWORD=$PROXY_USER_PASSWORD psql -X -At "host=$PROXY_UNIX_DIR port=$PROXY_PORT user=app dbname=app" -c "select 1" 2>&1)" = 1 ] ||
  fail "the successor does not serve the Unix socket"
out=$(admin GET /v1/status)
[[ "$out" == *'"hold":null'* ]] || fail "the successor still holds commands: $out"
out=$(admin POST /v1/flip '{"backend":"target","epoch":0}')
[ "${out%% *}" = 200 ] || fail "flip on the successor: $out"
[ "$(port_of)" = "$DST_PORT" ] || fail "the successor did not flip"
pass "the successor serves TCP and Unix and flips once the predecessor is gone"

# And it can hand over in turn (its own offer at the same path), at the new epoch.
successor "$PROXY_DIR/a.toml" "$PROXY_DIR/c.log"
C_PID=$SUCC_PID
pgc_wait_until 10 grep -q "event=handover_taken" "$PROXY_DIR/c.log" ||
  fail "the second hand-over failed: $(tail -5 "$PROXY_DIR/c.log")"
pgc_wait_until 15 bash -c "! kill -0 $B_PID 2>/dev/null" || fail "the first successor did not exit"
B_PID=""
PROXY_PID=$C_PID
[ "$(port_of)" = "$DST_PORT" ] || fail "the second successor does not serve the target"
pass "a successor hands over in turn (epoch 1, target)"

proxy_stop
C_PID=""
pass "planned hand-over"
