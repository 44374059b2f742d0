#!/usr/bin/env bash
# Backend credentials that rotate under a running proxy (issue 10):
#  - password_file: ALTER ROLE ... PASSWORD plus a rewritten file; established server
#    connections go on (same backend pid), new ones log in with the new password without a
#    restart and without an error to the client (the file is re-read on the refused login);
#  - a rotation the file does not know yet: clients get the backend's 28P01, the proxy logs
#    backend_auth_failed once (not per attempt), counts every failure in
#    pgcutover_backend_auth_failures_total, and recovers once the file is right;
#  - SIGHUP re-reads the file too (no failed login at all);
#  - password_command: rotation picked up the same way; a hanging command is killed at
#    password_command_timeout and named in the error;
#  - no password ever appears in the proxy's log or in /metrics.
. "$(dirname "$0")/../lib/proxy_harness.bash"

pgc_start src heroku >/dev/null
pgc_start tgt plain >/dev/null
TOKEN="tok-$$-$RANDOM"
export PGCUTOVER_TEST_TOKEN=$TOKEN PROXY_TEST_TARGET_URL=$TGT_URL
ADMIN_PORT=$(pgc_free_port)
PW_FILE=$PROXY_DIR/source.password
SECRETS=("$SRC_APP_PASSWORD") # every password used, for the final grep

# The source URL without its password: the password comes from the file or the command.
export PROXY_TEST_SOURCE_URL="postgresql://app@127.0.0.1:$SRC_PORT/app?sslmode=require"
ROUTES=""
for db in app_r1 app_r2 app_r3 app_r4 app_r5 app_r6 app_c1; do
  ROUTES+="
[routes.$db]
backends = { source = \"source\", target = \"target\" }"
done
write_config() { # <file> <password key line>
  PROXY_THREADS=1 proxy_write_config "$1" transaction 1 disable "$ROUTES
[admin]
listen_addr = \"127.0.0.1\"
listen_port = $ADMIN_PORT
token = \"\${PGCUTOVER_TEST_TOKEN}\"
"
  # The key belongs to [backends.source]: put it right after that table's url line.
  sed -i "/^\[backends.source\]/{n;s|\$|\n$2|}" "$1"
}
metrics() { curl -s -m 3 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/metrics"; }
auth_failures() {
  metrics | awk '/^pgcutover_backend_auth_failures_total\{backend="src"|^pgcutover_backend_auth_failures_total\{backend="source"/ {print int($2)}'
}
# A query through the proxy as a client of database <db>: each new name is a new pool, so a
# new server connection (pools are per (database, user)). The names are routes to the same
# backends (the proxy serves only its backends' and its routes' database names).
through() { # <db> <sql>
  timeout 30 psql -X -q -At "host=127.0.0.1 port=$PROXY_PORT user=app dbname=$1 password=$PROXY_USER_PASSWORD sslmode=disable" -c "$2" 2>&1
}
rotate() { # <new password>: on the server only
  pgc_admin_psql src -qc "ALTER ROLE app PASSWORD '$1'" >/dev/null
  SECRETS+=("$1")
}
count_log() { grep -c "event=$1" "$PROXY_DIR/proxy.log" || true; }

# ---- password_file ----
printf '%s\n' "$SRC_APP_PASSWORD" >"$PW_FILE"
write_config "$PROXY_DIR/file.toml" "password_file = \"$PW_FILE\""
proxy_start "$PROXY_DIR/file.toml"
pid0=$(through app "SELECT pg_backend_pid()")
[[ "$pid0" =~ ^[0-9]+$ ]] || fail "no answer through the proxy: $pid0"
pass "proxy logs in to the source with the password from password_file"

pw1="rotated-1-$RANDOM$RANDOM"
rotate "$pw1"
printf '%s\n' "$pw1" >"$PW_FILE"
[ "$(through app "SELECT pg_backend_pid()")" = "$pid0" ] ||
  fail "the established server connection was not kept after the rotation"
out=$(through app_r1 "SELECT 'new connection ok'")
[ "$out" = "new connection ok" ] || fail "new server connection after rotating the file: $out"
[ "$(count_log backend_password_reloaded)" = 1 ] || fail "no backend_password_reloaded logged"
[ "$(count_log backend_auth_failed)" = 0 ] || fail "a retried login was reported as an auth failure"
pass "ALTER ROLE + rewritten password_file: established connection kept, new one logs in (file re-read on the refused login), client saw no error"

# ---- a rotation the file does not know yet ----
pw2="rotated-2-$RANDOM$RANDOM"
rotate "$pw2"
before=$(auth_failures)
for db in app_r2 app_r3 app_r4; do
  out=$(through "$db" "SELECT 1") && fail "login with a stale password file succeeded: $out"
  grep -q 'backend "source" refused the login: password authentication failed' <<<"$out" ||
    fail "client error does not name the backend and the cause: $out"
done
[ "$(count_log backend_auth_failed)" = 1 ] || fail "backend_auth_failed logged $(count_log backend_auth_failed) times for 3 attempts (want once)"
grep "event=backend_auth_failed" "$PROXY_DIR/proxy.log" | grep -q 'fix=' || fail "backend_auth_failed has no fix"
after=$(auth_failures)
[ "$((after - before))" -ge 3 ] || fail "pgcutover_backend_auth_failures_total went from $before to $after for 3 failures"
printf '%s\n' "$pw2" >"$PW_FILE"
# Sources are re-read at most once a second: the next attempts succeed within that.
pgc_wait_until 10 bash -c "[ \"\$(timeout 30 psql -X -q -At 'host=127.0.0.1 port=$PROXY_PORT user=app dbname=app_r5 password=$PROXY_USER_PASSWORD sslmode=disable' -c 'SELECT 7' 2>/dev/null)\" = 7 ]" ||
  fail "no recovery after the file was fixed"
[ "$(count_log backend_auth_recovered)" = 1 ] || fail "no backend_auth_recovered logged"
pass "stale file: 3 clients refused with 28P01 naming the backend, logged once, counted $((after - before)) times; fixed file picked up without restart"

# ---- SIGHUP re-reads the file ----
pw3="rotated-3-$RANDOM$RANDOM"
rotate "$pw3"
printf '%s\n' "$pw3" >"$PW_FILE"
kill -HUP "$PROXY_PID"
pgc_wait_until 10 bash -c "[ \$(grep -c event=reloaded '$PROXY_DIR/proxy.log') -ge 1 ]" || fail "no reload logged"
reloads=$(count_log backend_password_reloaded)
out=$(through app_r6 "SELECT 'after sighup'")
[ "$out" = "after sighup" ] || fail "new connection after SIGHUP: $out"
[ "$(count_log backend_password_reloaded)" = "$reloads" ] || fail "SIGHUP did not read the file (a failed login re-read it)"
pass "SIGHUP re-reads password_file: new connections log in with no refused attempt"
metrics >"$PROXY_DIR/metrics.txt"
proxy_stop

# ---- password_command ----
cat >"$PROXY_DIR/get-password.sh" <<EOF
#!/bin/sh
# Stands in for a secrets manager's CLI: slow-ish, prints the secret and a newline.
sleep 0.1
cat "$PW_FILE"
EOF
chmod 755 "$PROXY_DIR/get-password.sh"
write_config "$PROXY_DIR/cmd.toml" "password_command = \"$PROXY_DIR/get-password.sh\""
proxy_start "$PROXY_DIR/cmd.toml"
[ "$(through app "SELECT 'cmd ok'")" = "cmd ok" ] || fail "login with the password from password_command"
pw4="rotated-4-$RANDOM$RANDOM"
rotate "$pw4"
printf '%s\n' "$pw4" >"$PW_FILE"
out=$(through app_c1 "SELECT 'cmd rotated'")
[ "$out" = "cmd rotated" ] || fail "new connection after rotating behind password_command: $out"
pass "password_command: rotation picked up on the refused login, no restart"
proxy_stop

write_config "$PROXY_DIR/hang.toml" "password_command = \"sleep 30\"\npassword_command_timeout = 0.5"
start=$(date +%s%N)
rc=0
out=$(PROXY_TEST_PASSWORD=x "$PROXY_BIN" --check -c "$PROXY_DIR/hang.toml" 2>&1) || rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
[ $rc = 2 ] || fail "--check with a hanging password_command exited $rc: $out"
grep -q "backends.source.password_command: password_command did not finish within password_command_timeout" <<<"$out" ||
  fail "hanging command error: $out"
[ $ms -lt 5000 ] || fail "hanging command took $ms ms to be killed"
pass "hanging password_command killed after its timeout ($ms ms) with an error naming the key"

# ---- no secret anywhere ----
for s in "${SECRETS[@]}"; do
  if grep -qF "$s" "$PROXY_DIR/proxy.log" "$PROXY_DIR/metrics.txt"; then fail "a password appears in the log or metrics"; fi
done
pass "none of the ${#SECRETS[@]} passwords appears in the proxy log or /metrics"
