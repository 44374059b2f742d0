#!/usr/bin/env bash
# The admin API over HTTPS ([admin] tls_cert_file / tls_key_file): with a certificate made at
# test time, a client that verifies it against the CA gets the status with the token and 401
# without; plain HTTP on the same port gets no answer; a config with only one of the two
# files is refused naming both keys; pgcutoverctl drives it over HTTPS with the proxy's CA
# ([[control.proxies]] ca_file), by address and by name, and refuses another CA or no CA.
. "$(dirname "$0")/../lib/proxy_harness.bash"

pgc_start db plain >/dev/null
export PROXY_TEST_SOURCE_URL=$DB_URL PROXY_TEST_TARGET_URL=$DB_URL
export PROXY_TEST_ADMIN_TOKEN="admin-token-$$-$RANDOM"
ADMIN_PORT=$(pgc_free_port)
cfg=$PROXY_DIR/proxy.toml
admin_toml() {
  printf '[admin]\nlisten_addr = "127.0.0.1"\nlisten_port = %s\ntoken = "${PROXY_TEST_ADMIN_TOKEN}"\n%s\n' \
    "$ADMIN_PORT" "$1"
}

# One file without the other: refused at --check, naming both keys, the proxy never starts.
proxy_write_config "$cfg" transaction 2 disable "$(admin_toml "tls_cert_file = \"$PROXY_DIR/tls/server.crt\"")"
if out=$(PROXY_TEST_PASSWORD=$PROXY_USER_PASSWORD "$PROXY_BIN" --check -c "$cfg" 2>&1); then fail "--check accepted tls_cert_file without tls_key_file"; fi
grep -q 'admin.tls_key_file' <<<"$out" && grep -q 'tls_cert_file' <<<"$out" ||
  fail "the error does not name both keys: $out"
pass "tls_cert_file without tls_key_file is refused: $out"

proxy_write_config "$cfg" transaction 2 disable "$(admin_toml "tls_cert_file = \"$PROXY_DIR/tls/server.crt\"
tls_key_file = \"$PROXY_DIR/tls/server.key\"")"
proxy_start "$cfg"
ADMIN=https://127.0.0.1:$ADMIN_PORT
CA=$PROXY_DIR/tls/ca.crt
pgc_wait_until 10 curl -sf -m 2 --cacert "$CA" "$ADMIN/healthz" -o /dev/null ||
  fail "admin API not up over HTTPS"

code=$(curl -s -m 5 --cacert "$CA" -o /dev/null -w '%{http_code}' "$ADMIN/v1/status")
[ "$code" = 401 ] || fail "HTTPS status without token: HTTP $code, want 401"
body=$(curl -sf -m 5 --cacert "$CA" -H "Authorization: Bearer $PROXY_TEST_ADMIN_TOKEN" "$ADMIN/v1/status") ||
  fail "HTTPS status with the token failed"
grep -q '"state":"running"' <<<"$body" || fail "unexpected status: $body"
pass "HTTPS with a verified certificate: 401 without the token, the status with it"

# The certificate is verified by the client: another CA is refused.
pgc_make_tls "$PROXY_DIR/other" other >/dev/null
if curl -s -m 5 --cacert "$PROXY_DIR/other/ca.crt" -o /dev/null "$ADMIN/healthz"; then
  fail "a client trusting another CA got through"
fi
# Plain HTTP to the HTTPS port gets no HTTP answer (no cleartext fallback).
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/healthz" || true)
[ "$code" = 000 ] || fail "plain HTTP on the HTTPS admin port answered HTTP $code"
pass "another CA is refused; plain HTTP gets no answer"

# pgcutoverctl drives the HTTPS admin API: [[control.proxies]] with ca_file verifies the
# certificate and the host name; another CA, or no ca_file (the system store does not know the
# test CA), is a clear "unreachable" naming the certificate problem, never a silent fallback.
CTL_BIN=${PGCUTOVER_CTL_BIN:-$top/build/control/pgcutoverctl}
ctl_config() { # <admin_url> [ca_file line]
  cat "$cfg"
  printf '[[control.proxies]]\nadmin_url = "%s"\ntoken = "${PROXY_TEST_ADMIN_TOKEN}"\n%s\n' "$1" "${2:-}"
}
ctl_status() { PROXY_TEST_PASSWORD=$PROXY_USER_PASSWORD timeout 60 "$CTL_BIN" status --json -c "$1"; }
# expect_proxy <admin_url> <ca_file line or ""> <state> <word in the error or ""> <what>:
# pgcutoverctl status reports the proxy in <state>, and the error names <word>.
expect_proxy() {
  local conf=$PROXY_DIR/ctl-$RANDOM.toml out
  ctl_config "$1" "$2" >"$conf"
  out=$(ctl_status "$conf") || true
  /usr/bin/python3 -c 'import json,sys; p=json.loads(sys.argv[1])["proxies"][0]; assert p["state"] == sys.argv[2] and sys.argv[3] in p.get("error", ""), p' \
    "$out" "$3" "$4" || fail "$5: $out"
}
expect_proxy "$ADMIN" "ca_file = \"$CA\"" running "" "pgcutoverctl status over HTTPS with ca_file"
expect_proxy "$ADMIN" "ca_file = \"$PROXY_DIR/other/ca.crt\"" unreachable certificate \
  "pgcutoverctl trusted a certificate from another CA"
expect_proxy "$ADMIN" "" unreachable ca_file "pgcutoverctl without ca_file"
# By name: SNI and the name check (the certificate carries DNS:localhost and IP:127.0.0.1).
expect_proxy "https://localhost:$ADMIN_PORT" "ca_file = \"$CA\"" running "" \
  "pgcutoverctl over HTTPS by host name"
# ca_file on an http:// admin_url is a configuration error, named.
ctl_config "http://127.0.0.1:$ADMIN_PORT" "ca_file = \"$CA\"" >"$PROXY_DIR/ctl-http.toml"
if out=$(ctl_status "$PROXY_DIR/ctl-http.toml" 2>&1); then fail "ca_file with an http admin_url accepted: $out"; fi
grep -q "control.proxies\[0\].ca_file" <<<"$out" || fail "the error does not name the key: $out"
pass "pgcutoverctl over HTTPS: verified with ca_file (by address and by name); another CA or no ca_file refused"

# The token never reaches the log.
! grep -qF "$PROXY_TEST_ADMIN_TOKEN" "$PROXY_DIR/proxy.log" || fail "the admin token is in the log"
proxy_stop
pass "admin API over HTTPS"
