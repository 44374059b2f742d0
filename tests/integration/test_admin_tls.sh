#!/usr/bin/env bash
# The admin API over HTTPS ([admin] tls_cert_file / tls_key_file): with a certificate made at
# test time, a client that verifies it against the CA gets the status with the token and 401
# without; plain HTTP on the same port gets no answer; a config with only one of the two
# files is refused naming both keys.
. "$(dirname "$0")/test_proxy_common.bash"

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

# The token never reaches the log.
! grep -qF "$PROXY_TEST_ADMIN_TOKEN" "$PROXY_DIR/proxy.log" || fail "the admin token is in the log"
proxy_stop
pass "admin API over HTTPS"
