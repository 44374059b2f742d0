#!/usr/bin/env bash
# Ready means a client can be served. With a wrong backend password, or a backend on a port
# where nothing listens, every client gets a FATAL: /readyz must answer 503 with the reason
# (and never the password), and `pgcutover-proxy --check --connect` must exit 1 naming the
# backend. With the backend right, /readyz answers 200 and --check --connect exits 0. A fixed
# backend is seen within the failure cache (a few seconds), bounded here.
. "$(dirname "$0")/../lib/proxy_harness.bash"

pgc_start db heroku >/dev/null # SCRAM over TLS: a wrong password is refused
ADMIN_PORT=$(pgc_free_port)
export PROXY_TEST_ADMIN_TOKEN="admin-token-$$-$RANDOM"
readyz() { # prints "<http code> <body>"
  local code
  code=$(curl -sS -m 30 -o "$PROXY_DIR/readyz.out" -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/readyz")
  echo "$code $(cat "$PROXY_DIR/readyz.out")"
}
write_config() {
  proxy_write_config "$PROXY_DIR/proxy.toml" transaction 2 disable "[admin]
listen_addr = \"127.0.0.1\"
listen_port = $ADMIN_PORT
token = \"\${PROXY_TEST_ADMIN_TOKEN}\""
  sed -i 's/^log_level = "info"/log_level = "debug"/' "$PROXY_DIR/proxy.toml"
}
check_connect() {
  PROXY_TEST_PASSWORD=$PROXY_USER_PASSWORD timeout 60 "$PROXY_BIN" --check --connect \
    -c "$PROXY_DIR/proxy.toml" >"$PROXY_DIR/check.out" 2>&1
}

wrong_pw="wrong-secret-$RANDOM"
bad_url=${DB_URL/":$DB_APP_PASSWORD@"/":$wrong_pw@"}
closed_port=$(pgc_free_port)
closed_url=$(echo "$DB_URL" | sed "s|:$DB_PORT/|:$closed_port/|")
[ "$bad_url" != "$DB_URL" ] && [ "$closed_url" != "$DB_URL" ] || fail "could not derive the broken URLs from $DB_URL"

# ---- a wrong password on the active backend ----
export PROXY_TEST_SOURCE_URL=$bad_url PROXY_TEST_TARGET_URL=$DB_URL
write_config
proxy_start "$PROXY_DIR/proxy.toml"
pgc_wait_until 10 curl -sf -m 2 "http://127.0.0.1:$ADMIN_PORT/healthz" -o /dev/null || fail "admin API not up"
if proxy_psql "$(proxy_dsn disable)" -c 'select 1' >/dev/null 2>&1; then fail "a client was served with a wrong backend password"; fi
out=$(readyz)
case "$out" in "503 "*'"ready":false'*'"backend":"source"'*28P01*) ;; *) fail "wrong password: /readyz said $out" ;; esac
case "$out" in *"$wrong_pw"*) fail "/readyz shows the backend password" ;; esac
pass "wrong backend password: /readyz 503 with the reason ($out)"
if check_connect; then fail "--check --connect passed with a wrong password: $(cat "$PROXY_DIR/check.out")"; fi
grep -q "backend source: login FAILED: 28P01" "$PROXY_DIR/check.out" || fail "--check --connect: $(cat "$PROXY_DIR/check.out")"
grep -q "backend target: login ok" "$PROXY_DIR/check.out" || fail "--check --connect: $(cat "$PROXY_DIR/check.out")"
if grep -q "$wrong_pw" "$PROXY_DIR/check.out"; then fail "--check --connect shows the password"; fi
pass "--check --connect exits 1 and names the refused backend"
proxy_stop

# ---- the active backend on a port where nothing listens ----
export PROXY_TEST_SOURCE_URL=$closed_url
rm -f "$PROXY_DIR/state.json"
write_config
proxy_start "$PROXY_DIR/proxy.toml"
pgc_wait_until 10 curl -sf -m 2 "http://127.0.0.1:$ADMIN_PORT/healthz" -o /dev/null || fail "admin API not up"
out=$(readyz)
case "$out" in "503 "*'"ready":false'*'"reason":"login to backend source failed'*) ;; *) fail "closed port: /readyz said $out" ;; esac
pass "backend down: /readyz 503 ($out)"
proxy_stop

# ---- everything right ----
export PROXY_TEST_SOURCE_URL=$DB_URL
rm -f "$PROXY_DIR/state.json"
write_config
check_connect || fail "--check --connect failed on a good config: $(cat "$PROXY_DIR/check.out")"
proxy_start "$PROXY_DIR/proxy.toml"
pgc_wait_until 10 curl -sf -m 2 "http://127.0.0.1:$ADMIN_PORT/healthz" -o /dev/null || fail "admin API not up"
out=$(readyz)
case "$out" in "200 "*'"ready":true'*'"backend":"source"'*) ;; *) fail "good backend: /readyz said $out" ;; esac
[ "$(proxy_psql "$(proxy_dsn disable)" -c 'select 1')" = 1 ] || fail "a client was not served"
# Cached: a second probe right after does not log in again (the proxy logs each server login
# at debug level).
logins() { grep -c "event=server_connected" "$PROXY_DIR/proxy.log" || true; }
before=$(logins)
readyz >/dev/null
[ "$(logins)" = "$before" ] || fail "a cached /readyz logged in again ($before -> $(logins) logins)"
pass "good backend: /readyz 200, --check --connect exits 0, the answer is cached"
proxy_stop
