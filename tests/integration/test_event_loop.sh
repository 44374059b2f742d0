#!/usr/bin/env bash
# Which event loop the proxy runs on, and what it does where io_uring is not allowed.
# pgcutover-proxy is the io_uring build; by default it starts pgcutover-proxy-epoll (the same
# sources on epoll) in its place, and --event-loop auto runs io_uring itself. Where io_uring_setup
# is refused (here: a seccomp filter from tests/integration/deny_io_uring, as Docker's default
# profile or systemd's @system-service does), auto must start the epoll build, log why, and serve
# exactly as before: TLS clients, transaction pooling under pgbench, a clean shutdown.
# --event-loop io_uring refuses to fall back.
. "$(dirname "$0")/../lib/proxy_harness.bash"

DENY=${PGCUTOVER_BUILD_DIR:-$top/build}/tests/integration/deny_io_uring
[ -x "$DENY" ] || fail "not built: $DENY"
EPOLL_BIN=$(dirname "$PROXY_BIN")/pgcutover-proxy-epoll
[ -x "$EPOLL_BIN" ] || fail "not built: $EPOLL_BIN (the epoll build installed beside pgcutover-proxy)"

pgc_start src heroku >/dev/null
export PROXY_TEST_SOURCE_URL=$SRC_URL PROXY_TEST_TARGET_URL=$SRC_URL
cfg=$PROXY_DIR/proxy.toml
proxy_write_config "$cfg" transaction 4 require
dsn=$(proxy_dsn verify-full)

"$PROXY_BIN" --version | grep -q "(io_uring)" || fail "--version: $("$PROXY_BIN" --version)"
"$EPOLL_BIN" --version | grep -q "(epoll)" || fail "epoll build --version: $("$EPOLL_BIN" --version)"
pass "--version names the event loop of each build"

# started_on <log> <event loop>: the proxy that wrote <log> listens on that event loop.
listening_on() { grep "event=listening" "$1" | grep -q "event_loop=$2"; }

# run_on <log> <expected event loop> [proxy arguments...]: start (behind $launcher, if set),
# serve a query and pgbench, shut down with SIGTERM, check the log said which loop listened.
launcher=()
run_on() {
  local log=$1 want=$2
  shift 2
  PROXY_TEST_PASSWORD=$PROXY_USER_PASSWORD "${launcher[@]}" "$PROXY_BIN" -c "$cfg" "$@" >"$log" 2>&1 &
  PROXY_PID=$!
  pgc_wait_until 15 proxy_ready || fail "$want: proxy did not start accepting on $PROXY_PORT"
  listening_on "$log" "$want" || fail "$want: not listening on $want: $(grep listening "$log")"
  [ "$(proxy_psql "$dsn" -c "select 40 + 2")" = 42 ] || fail "$want: query through the proxy"
  PGPASSWORD=$PROXY_USER_PASSWORD PGSSLMODE=require timeout 120 pgbench -n -c 8 -j 2 -t 200 -S \
    -h 127.0.0.1 -p "$PROXY_PORT" -U app app >"$log.pgbench" 2>&1 ||
    fail "$want: pgbench: $(tail -3 "$log.pgbench")"
  grep -q "number of failed transactions: 0" "$log.pgbench" || fail "$want: pgbench failed"
  kill -TERM "$PROXY_PID"
  local rc=0
  wait "$PROXY_PID" || rc=$?
  PROXY_PID=""
  [ $rc -eq 0 ] || fail "$want: exit status $rc after SIGTERM"
}

PGPASSWORD=$SRC_APP_PASSWORD timeout 120 pgbench -i -s 1 -q "$SRC_URL" >/dev/null 2>&1 ||
  fail "pgbench -i on the source"

run_on "$PROXY_DIR/default.log" epoll
grep -q io_uring_unavailable "$PROXY_DIR/default.log" && fail "default: logged a fallback"
pass "default: the epoll build; TLS client, 1,600 pooled transactions, clean exit"

run_on "$PROXY_DIR/auto.log" io_uring --event-loop auto
grep -q io_uring_unavailable "$PROXY_DIR/auto.log" && fail "auto: fell back though io_uring is allowed"
pass "--event-loop auto: io_uring; TLS client, 1,600 pooled transactions, clean exit"

launcher=("$DENY")
run_on "$PROXY_DIR/denied.log" epoll --event-loop auto
grep "event=io_uring_unavailable" "$PROXY_DIR/denied.log" | grep -q "Operation not permitted" ||
  fail "denied: no io_uring_unavailable warning with the error: $(head -3 "$PROXY_DIR/denied.log")"
pass "auto where io_uring is refused: the epoll build started in its place, said why, served"

set +e
out=$(PROXY_TEST_PASSWORD=x timeout 30 "$DENY" "$PROXY_BIN" -c "$cfg" --event-loop io_uring 2>&1)
rc=$?
set -e
[ $rc -eq 1 ] || fail "--event-loop io_uring where refused: exit $rc, want 1 ($out)"
grep -q "may not set up an io_uring (Operation not permitted)" <<<"$out" || fail "--event-loop io_uring: $out"
set +e
out=$(PROXY_TEST_PASSWORD=x timeout 30 "$EPOLL_BIN" -c "$cfg" --event-loop io_uring 2>&1)
rc=$?
set -e
[ $rc -eq 2 ] || fail "epoll build with --event-loop io_uring: exit $rc, want 2 ($out)"
pass "--event-loop io_uring fails (exit 1) where io_uring is refused; the epoll build refuses it (exit 2)"
