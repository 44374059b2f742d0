#!/usr/bin/env bash
# The shell side of the test harness (tests/lib/pgcluster.sh), driven with the real clients the
# other scripts use: psql and pgbench. Proves the Heroku-shaped source and RDS-shaped target
# refuse what their originals refuse, carry pgbench traffic over TLS, stream to a replica, and
# that nothing survives the script: normal exit, a failing command under set -e, and SIGKILL.
set -euo pipefail

top=${PGCUTOVER_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=tests/lib/pgcluster.sh
. "$top/tests/lib/pgcluster.sh"
trap pgc_stop_all EXIT

failures=0
pass() { echo "ok   - $*"; }
fail() {
  echo "FAIL - $*" >&2
  failures=$((failures + 1))
}
expect_eq() { # <what> <want> <got>
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: want '$2', got '$3'"; fi
}
expect_match() { # <what> <regex> <text>
  if [[ "$3" =~ $2 ]]; then pass "$1"; else fail "$1: '$3' does not match /$2/"; fi
}
port_open() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_closed() { ! port_open "$1"; }
dir_gone() { [ ! -e "$1" ]; }

echo "# starting a Heroku-shaped source and an RDS-shaped target"
pgc_start source heroku
pgc_start target rds
for var in SOURCE_PORT SOURCE_DIR SOURCE_URL SOURCE_ADMIN_URL SOURCE_CA_FILE TARGET_PORT \
  TARGET_URL TARGET_CA_FILE; do
  if [ -n "${!var:-}" ]; then pass "$var is exported"; else fail "$var is not exported"; fi
done
if [ "$SOURCE_PORT" != "$TARGET_PORT" ]; then
  pass "source and target listen on different ports"
else
  fail "both clusters on port $SOURCE_PORT"
fi

echo "# source: TLS only, app role without superuser or REPLICATION, Heroku's extensions"
out=$(psql -X -d "${SOURCE_URL/sslmode=require/sslmode=disable}" -c 'SELECT 1' 2>&1 || true)
expect_match "source refuses a plaintext TCP connection" 'pg_hba\.conf rejects connection.*no encryption' "$out"
expect_eq "source accepts sslmode=require" "t|app" \
  "$(pgc_psql source -At -c 'SELECT ssl, current_user FROM pg_stat_ssl WHERE pid = pg_backend_pid()')"
expect_eq "source app role has neither superuser nor replication" "f|f" \
  "$(pgc_admin_psql source -At -c "SELECT rolsuper, rolreplication FROM pg_roles WHERE rolname = 'app'")"
expect_eq "source app role owns database app" "app" \
  "$(pgc_admin_psql source -At -c "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'")"
expect_eq "source has citext, hstore, pg_stat_statements" "citext,hstore,pg_stat_statements" \
  "$(pgc_psql source -At -c "SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension WHERE extname <> 'plpgsql'")"
expect_eq "source has wal_level=replica" "replica" "$(pgc_psql source -At -c 'SHOW wal_level')"
out=$(psql -X -d "$SOURCE_ADMIN_URL" -At -c 'SELECT current_user' 2>&1 || true)
expect_eq "admin URL reaches the superuser over the socket" "postgres" "$out"

echo "# target: verify-full with its CA only, wal_level=logical"
expect_eq "target accepts verify-full with its CA" "t" \
  "$(pgc_psql target -At -c 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')"
out=$(psql -X -d "${TARGET_URL/sslrootcert=*/sslrootcert=$SOURCE_CA_FILE}" -c 'SELECT 1' 2>&1 || true)
expect_match "target fails verify-full with another CA" 'certificate verify failed' "$out"
out=$(psql -X -d "${TARGET_URL%%\?*}?sslmode=disable" -c 'SELECT 1' 2>&1 || true)
expect_match "target refuses a plaintext TCP connection" 'no encryption' "$out"
expect_eq "target has wal_level=logical" "logical" "$(pgc_psql target -At -c 'SHOW wal_level')"

echo "# a port taken between choosing it and binding it: the start retries on another"
# PGC_FIRST_PORT forces the first attempt onto the source's port, which is certainly taken.
PGC_FIRST_PORT=$SOURCE_PORT pgc_start retried plain 2>"$PGC_BASE/retried.err"
expect_match "the clash was detected in the server log" 'port [0-9]+ was taken meanwhile' \
  "$(cat "$PGC_BASE/retried.err")"
if [ "$RETRIED_PORT" != "$SOURCE_PORT" ]; then
  pass "the retried cluster got another port ($RETRIED_PORT)"
else
  fail "the retried cluster reports the source's port"
fi
expect_eq "the retried cluster answers" "1" "$(pgc_psql retried -At -c 'SELECT 1')"
pgc_stop retried

echo "# pgbench over TLS against the source, and a replica that follows it"
if pgbench -i -s 1 -q "$SOURCE_URL" >"$SOURCE_DIR/pgbench-init.log" 2>&1; then
  pass "pgbench -i -s 1 against the source over TLS"
else
  fail "pgbench -i failed: $(tail -n 5 "$SOURCE_DIR/pgbench-init.log")"
fi
# A fixed number of transactions, not a duration: the same work on every run.
if pgbench -n -c 4 -j 2 -t 50 "$SOURCE_URL" >"$SOURCE_DIR/pgbench-run.log" 2>&1; then
  pass "pgbench run (4 clients x 50 transactions) over TLS"
else
  fail "pgbench run failed: $(tail -n 5 "$SOURCE_DIR/pgbench-run.log")"
fi
expect_eq "pgbench recorded its 200 transactions" "200" \
  "$(pgc_psql source -At -c 'SELECT count(*) FROM pgbench_history')"
pgc_start_replica follower source
follower_has_history() {
  [ "$(pgc_psql follower -At -c 'SELECT count(*) FROM pgbench_history' 2>/dev/null)" = 200 ]
}
if pgc_wait_until 60 follower_has_history; then
  pass "follower streams the source's pgbench data"
else
  fail "follower did not catch up within 60 s"
fi

echo "# clean-up: nothing outlives the script that started it"
probe=$(mktemp -d /tmp/pgcutover-probe.XXXXXX)
child_script=$(cat <<'EOS'
set -euo pipefail
. "$1/tests/lib/pgcluster.sh"
pgc_start probe plain
echo "$PROBE_DIR $PROBE_PORT" >"$2/cluster"
case "$3" in
  exit) exit 0 ;;
  fail) false ;;                            # set -e ends the script; the EXIT trap still runs
  kill) echo ready >"$2/ready"; exec sleep 600 ;; # killed with SIGKILL: only the watchdog is left
esac
EOS
)
for how in exit fail kill; do
  rm -f "$probe/cluster" "$probe/ready"
  bash -c "$child_script" child "$top" "$probe" "$how" >/dev/null 2>&1 &
  child=$!
  if [ "$how" = kill ]; then
    if pgc_wait_until 60 test -f "$probe/ready"; then kill -KILL "$child"; fi
  fi
  { wait "$child" || true; } 2>/dev/null # no "Killed" job notice in the output
  if [ ! -f "$probe/cluster" ]; then
    fail "child ($how) did not start its cluster"
    continue
  fi
  read -r child_dir child_port <"$probe/cluster"
  # The watchdog polls once a second; allow it a generous bound. The child's per-run base
  # directory must go too.
  if pgc_wait_until 60 dir_gone "$child_dir" && pgc_wait_until 60 port_closed "$child_port" &&
    pgc_wait_until 60 dir_gone "$(dirname "$child_dir")"; then
    pass "cluster removed and port closed after the script ended ($how)"
  else
    fail "cluster of the '$how' child still there: $child_dir, port $child_port"
  fi
done
rm -rf "$probe"

dirs=("$SOURCE_DIR" "$TARGET_DIR" "$FOLLOWER_DIR")
ports=("$SOURCE_PORT" "$TARGET_PORT" "$FOLLOWER_PORT")
base=$PGC_BASE
pgc_stop_all
for i in "${!dirs[@]}"; do
  if dir_gone "${dirs[$i]}" && port_closed "${ports[$i]}"; then
    pass "pgc_stop_all removed ${dirs[$i]##*/}"
  else
    fail "pgc_stop_all left ${dirs[$i]} or port ${ports[$i]}"
  fi
done
if dir_gone "$base"; then pass "pgc_stop_all removed the run's base directory"; else fail "$base left"; fi

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
