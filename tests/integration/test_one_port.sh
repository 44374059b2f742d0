#!/usr/bin/env bash
# One port, one proxy. A second pgcutover-proxy started on a running proxy's port (a copied
# config whose state file says the other backend, as after a flip) must refuse to start, name
# the process that holds the port, and exit non-zero: with SO_REUSEPORT the kernel used to
# split new connections between the two, half of the application's writes going to each
# database. No other process of this user may join the port either (SO_REUSEPORT on its side).
# Then every connection still reaches the one backend, and clients are spread over the
# proxy's threads.
. "$(dirname "$0")/../lib/proxy_harness.bash"

pgc_start src plain >/dev/null
pgc_start dst plain >/dev/null
export PROXY_TEST_SOURCE_URL=$SRC_URL PROXY_TEST_TARGET_URL=$DST_URL
proxy_write_config "$PROXY_DIR/a.toml" transaction 4 disable
sed -i 's/^log_level = "info"/log_level = "debug"/' "$PROXY_DIR/a.toml" # client_login names the shard
proxy_start "$PROXY_DIR/a.toml"
[ "$(proxy_psql "$(proxy_dsn disable)" -c 'select inet_server_port()')" = "$SRC_PORT" ] ||
  fail "the first proxy does not serve the source"

# The second proxy: same port, its own state file saying "target", as a flipped copy would.
sed "s|$PROXY_DIR/state.json|$PROXY_DIR/b-state.json|" "$PROXY_DIR/a.toml" >"$PROXY_DIR/b.toml"
echo '{"backend":"target","epoch":1}' >"$PROXY_DIR/b-state.json"
set +e
PROXY_TEST_PASSWORD=$PROXY_USER_PASSWORD timeout 20 "$PROXY_BIN" -c "$PROXY_DIR/b.toml" \
  >"$PROXY_DIR/b.out" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] ||
  fail "a second proxy on port $PROXY_PORT started (rc $rc): $(tail -3 "$PROXY_DIR/b.out")"
grep -q "port $PROXY_PORT on 127.0.0.1 is already in use by pid $PROXY_PID (pgcutover-proxy)" \
  "$PROXY_DIR/b.out" || fail "the refusal does not name the port and its holder: $(cat "$PROXY_DIR/b.out")"
grep -q "split the application's writes" "$PROXY_DIR/b.out" || fail "the refusal does not say why"
if grep -q "boost\|\.hpp" "$PROXY_DIR/b.out"; then fail "the refusal shows library internals"; fi
pass "a second proxy on the same port refuses to start (exit $rc) and names pid $PROXY_PID"

# Any other process of this user asking for SO_REUSEPORT is refused by the kernel too.
/usr/bin/python3 - "$PROXY_PORT" <<'PY' || fail "another process joined the proxy's port"
import errno, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen()
except OSError as e:
    sys.exit(0 if e.errno == errno.EADDRINUSE else 1)
sys.exit(1)
PY
pass "a process asking for SO_REUSEPORT cannot join the port"

# Every connection reaches the source: nothing was split.
for i in $(seq 1 12); do
  port=$(proxy_psql "$(proxy_dsn disable)" -c 'select inet_server_port()')
  [ "$port" = "$SRC_PORT" ] || fail "connection $i reached port $port, not the source's $SRC_PORT"
done
pass "12 connections out of 12 reached the source"

# Clients are spread over both threads: 8 held connections, each shard gets some. The proxy
# names the shard of a session in its log line for the login.
/usr/bin/python3 - "$(proxy_dsn disable)" <<'PY' || fail "holding 8 clients failed"
import subprocess, sys, time
procs = [subprocess.Popen(["psql", "-X", "-q", "-At", sys.argv[1], "-c", "select pg_sleep(1.5)"],
                          stdout=subprocess.DEVNULL) for _ in range(8)]
sys.exit(max(p.wait(timeout=60) for p in procs))
PY
shards=$(grep 'event=client_login' "$PROXY_DIR/proxy.log" | grep -o 'shard=[0-9]*' | sort -u | wc -l)
[ "$shards" -ge 2 ] || fail "every client landed on one shard ($(grep -c event=client_login "$PROXY_DIR/proxy.log") logins)"
pass "clients spread over $shards shards"

proxy_stop
pass "one port, one proxy"
