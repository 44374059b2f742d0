#!/usr/bin/env bash
# The trigger method on the Heroku-shaped source (app role: owner, no superuser, no
# REPLICATION), under constant pgbench write load directly on the source:
#  - `replicate start --method trigger` installs capture and copies from one snapshot;
#  - `replicate apply` killed with SIGKILL at three points and restarted loses nothing;
#  - after the load stops, a final `apply --until-empty` leaves the target equal to the
#    source: `validate` passes (pgbench_history, which has no key, included);
#  - key-changing UPDATEs, DELETEs and INSERTs converge by key;
#  - a table without a primary key that saw UPDATE is refused by preflight and by start, with
#    the fix; insert-only tables without a key (pgbench_history) are captured by whole row;
#  - `lag` reports the pending log (size and age); `replicate stop` leaves no trigger,
#    function or schema.
top=${PGCUTOVER_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
CTL_BIN=${PGCUTOVER_CTL_BIN:-$top/build/control/pgcutoverctl}
[ -x "$CTL_BIN" ] || { echo "pgcutoverctl not built: $CTL_BIN" >&2; exit 1; }
. "$(dirname "$0")/../lib/proxy_harness.bash"

WORK=$PROXY_DIR
BENCH_PID="" APPLY_PID="" B_PID=""
PROXY_PID_VARS=(BENCH_PID APPLY_PID B_PID)
PROXY_FAILURE_LOGS=("*.log" "*.out")

pgc_start src heroku >/dev/null
pgc_start tgt rds >/dev/null
[ "$(pgc_psql src -XAtc "select rolsuper or rolreplication from pg_roles where rolname = current_user")" = f ] ||
  fail "the source's app role must have neither superuser nor REPLICATION"
ctl() { timeout 120 "$CTL_BIN" "$@" --source-url "$SRC_URL" --target-url "$TGT_URL"; }
# In the background with $! = pgcutoverctl itself (not a `timeout` around it), so that
# kill -KILL $APPLY_PID kills the apply.
apply_bg() { # <log> <args...>
  local log=$1
  shift
  "$CTL_BIN" replicate apply "$@" --source-url "$SRC_URL" --target-url "$TGT_URL" >"$log" 2>&1 &
  APPLY_PID=$!
}
# Pending entries, as `lag` reports them (every table's log, keyed and insert-only).
pending() {
  ctl lag --method trigger --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pending_changes"])'
}

timeout 120 pgbench -i -q -s 2 "$SRC_URL" >/dev/null 2>&1 || fail "pgbench -i"
pgc_admin_psql tgt -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"

# A keyless table that sees UPDATE cannot converge by key: refused, with the fix.
pgc_psql src -qc "CREATE TABLE nokey (a int NOT NULL, b int); CREATE UNIQUE INDEX nokey_a ON nokey (a);
  INSERT INTO nokey SELECT g, g FROM generate_series(1, 10) g; UPDATE nokey SET b = 0 WHERE a = 1"
seen_update() { [ "$(pgc_admin_psql src -XAtc "select n_tup_upd from pg_stat_user_tables where relname = 'nokey'")" -gt 0 ]; }
pgc_wait_until 10 seen_update || fail "statistics never showed the UPDATE on nokey"
rc=0
ctl preflight --method trigger --json >"$WORK/preflight.out" 2>&1 || rc=$?
[ $rc = 1 ] || fail "preflight --method trigger with an updated keyless table exited $rc, expected 1"
python3 - "$WORK/preflight.out" <<'PY' || fail "preflight does not refuse nokey with the fix"
import json, sys
checks = {c["id"]: c for c in json.load(open(sys.argv[1]))["checks"]}
c = checks["primary_keys"]
assert c["status"] == "fail", c
assert "public.nokey" in c["data"]["updated_without_key"], c
assert "public.pgbench_history" in c["data"]["insert_only_without_key"], c
assert "PRIMARY KEY USING INDEX" in c["fix"], c
w = checks["way_back"]
assert w["status"] == "pass" and "replicate apply --reverse" in w["found"], w
PY
# The logical method on this source cannot subscribe back: its way back is the trigger
# capture on the target, and preflight says so at T-7 days.
ctl preflight --method logical --json >"$WORK/preflight-logical.out" 2>&1 || true
python3 - "$WORK/preflight-logical.out" <<'PY' || fail "preflight --method logical does not name its way back"
import json, sys
w = {c["id"]: c for c in json.load(open(sys.argv[1]))["checks"]}["way_back"]
assert w["status"] == "pass" and "cannot CREATE SUBSCRIPTION" in w["found"] and "trigger capture on the target" in w["found"], w
PY
rc=0
ctl replicate start --method trigger >"$WORK/refused.out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "public.nokey" "$WORK/refused.out" && grep -q "PRIMARY KEY USING INDEX" "$WORK/refused.out" ||
  fail "replicate start did not refuse nokey with the fix (exit $rc): $(cat "$WORK/refused.out")"
[ "$(pgc_admin_psql src -XAtc "select count(*) from pg_namespace where nspname = 'pgcutover'")" = 0 ] ||
  fail "a refused start left objects on the source"
# The fix the message gives, then the table is captured by key like any other.
pgc_psql src -qc "ALTER TABLE nokey ADD CONSTRAINT nokey_pkey PRIMARY KEY USING INDEX nokey_a"
pass "keyless updated table refused by preflight and start with the fix (PRIMARY KEY USING INDEX); pgbench_history accepted as insert-only; preflight's way_back: trigger keeps one, logical by the trigger capture on the target here"

ctl schema copy >/dev/null || fail "schema copy"

# Constant write load, bounded by -T and stopped explicitly below; paced (400 transactions a
# second) rather than flat out, which took both cores from the test beside it in the suite.
timeout 300 pgbench -n -c 4 -j 2 -T 240 -R 400 "$SRC_URL" >"$WORK/bench.log" 2>&1 &
BENCH_PID=$!
hist() { pgc_admin_psql src -XAtc "select count(*) from pgbench_history"; }
tgt_hist() { pgc_admin_psql tgt -XAtc "select count(*) from pgbench_history"; }
pgc_wait_until 20 bash -c "[ \$(PGPASSWORD= psql -XAtd '$SRC_ADMIN_URL' -c 'select count(*) from pgbench_history') -gt 200 ]" ||
  fail "pgbench does not write"

ctl replicate start --method trigger --jobs 3 >"$WORK/start.out" 2>&1 || fail "replicate start"
grep -q "initial copy done" "$WORK/start.out" || fail "no copy summary"
pass "capture installed and tables copied from one snapshot under load, as a non-superuser"
# Every kind of change by key: a key-changing UPDATE (old row must go on the target), a
# DELETE, an INSERT, and an UPDATE back to a key that existed before.
pgc_psql src -qc "UPDATE nokey SET a = a + 100 WHERE a = 2; DELETE FROM nokey WHERE a = 3;
  INSERT INTO nokey VALUES (50, 5); UPDATE nokey SET a = 3, b = 33 WHERE a = 4"

# Kill the apply at three points of its work; each restart continues where it was.
for i in 1 2 3; do
  h0=$(tgt_hist)
  apply_bg "$WORK/apply$i.log" --batch 200
  # The kill lands while the apply is busy: once it has applied something, at a random
  # offset (0-300 ms) into whatever round it is in. Progress is read on the target (history
  # rows only grow), not from the pending count: under load that hovers around a few dozen when
  # the apply keeps up, and need not ever drop below its value at the start.
  progressed() { [ "$(tgt_hist)" -gt "$h0" ] || ! kill -0 "$APPLY_PID"; }
  pgc_wait_until 30 progressed ||
    fail "apply $i made no progress"
  kill -0 "$APPLY_PID" || fail "apply $i exited: $(cat "$WORK/apply$i.log")"
  sleep "0.$((RANDOM % 3))$((RANDOM % 10))"
  kill -KILL "$APPLY_PID"
  wait "$APPLY_PID" 2>/dev/null || true
  APPLY_PID=""
done
pass "apply killed (SIGKILL) three times under load"

# Nothing applies now while pgbench writes: the log grows and ages, and lag says so.
sleep 1.2
ctl lag --method trigger --json >"$WORK/lag.out" || fail "lag"
python3 - "$WORK/lag.out" <<'PY' || fail "lag does not report the pending log's size and age: $(cat "$WORK/lag.out")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] and d["method"] == "trigger", d
assert d["pending_changes"] > 0, d
assert d["seconds"] >= 1.0 and d["seconds_from"] == "oldest_pending_change", d
PY
lag_n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pending_changes"])' "$WORK/lag.out")
pass "lag reports the pending log: $lag_n change(s), oldest >= 1 s"

# Keep up while the load runs, then stop the load and drain.
apply_bg "$WORK/apply-live.log"
kept_up() { [ "$(pending)" -lt 500 ]; }
pgc_wait_until 60 kept_up ||
  fail "apply does not keep up with the load"
kill -INT "$BENCH_PID" 2>/dev/null || true
wait "$BENCH_PID" 2>/dev/null || true
BENCH_PID=""
kill -KILL "$APPLY_PID"
wait "$APPLY_PID" 2>/dev/null || true
APPLY_PID=""
ctl replicate apply --until-empty --timeout 60 >"$WORK/final.out" 2>&1 || fail "final apply"
[ "$(pending)" = 0 ] || fail "log not empty after the final apply"
ctl validate --jobs 2 >"$WORK/validate.out" 2>&1 || fail "validate after apply"
src_h=$(hist)
tgt_h=$(pgc_admin_psql tgt -XAtc "select count(*) from pgbench_history")
[ "$src_h" = "$tgt_h" ] || fail "pgbench_history: source $src_h rows, target $tgt_h"
pass "final apply drained the log; validate passes ($src_h history rows on both sides)"

# Two applies over the same entries, the way a flip's fence makes them: apply A has read the
# log when its session on the log's side is ended (a fence does that to every session of the
# app role), which frees the apply lock held on that session; apply B (the flip's drain) takes
# the lock and consumes the same entries. A must then write nothing: pgbench_history has no key,
# so a second copy of its rows would go unnoticed by any constraint. The hook holds A right
# after its log read until the test says go.
pgc_psql src -qc "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime)
  SELECT 1, 1, g, g, now() FROM generate_series(1, 50) g"
export PGCUTOVER_TEST_HOOK_AFTER_LOG_READ="touch '$WORK/a-read'; i=0; while [ ! -e '$WORK/a-go' ] && [ \$i -lt 600 ]; do sleep 0.05; i=\$((i+1)); done"
apply_bg "$WORK/apply-a.log" --once
unset PGCUTOVER_TEST_HOOK_AFTER_LOG_READ
a_pid=$APPLY_PID
pgc_wait_until 30 test -e "$WORK/a-read" || fail "apply A never read the log: $(cat "$WORK/apply-a.log")"
pgc_admin_psql src -XAtc "select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory' and granted" >/dev/null
lock_free() { [ "$(pgc_admin_psql src -XAtc "select count(*) from pg_locks where locktype = 'advisory'")" = 0 ]; }
pgc_wait_until 10 lock_free || fail "apply A's log-side session did not end"
"$CTL_BIN" replicate apply --until-empty --timeout 60 --source-url "$SRC_URL" --target-url "$TGT_URL" \
  >"$WORK/apply-b.log" 2>&1 &
B_PID=$!
# B either finishes (nothing stops it while A is held: the bug) or waits for A's commit.
b_done_or_waiting() {
  ! kill -0 "$B_PID" 2>/dev/null ||
    [ "$(pgc_admin_psql tgt -XAtc "select count(*) from pg_locks where locktype = 'advisory' and not granted")" -gt 0 ]
}
pgc_wait_until 30 b_done_or_waiting || fail "apply B neither finished nor waited for A"
touch "$WORK/a-go"
wait "$a_pid" 2>/dev/null || true
APPLY_PID=""
wait "$B_PID" || fail "apply B failed: $(cat "$WORK/apply-b.log")"
B_PID=""
[ "$(pending)" = 0 ] || fail "log not empty after apply B"
src_h=$(hist)
tgt_h=$(tgt_hist)
[ "$src_h" = "$tgt_h" ] ||
  fail "an apply whose log-side session ended mid-round applied rows twice: pgbench_history source $src_h, target $tgt_h (A: $(cat "$WORK/apply-a.log"))"
pass "an apply whose log-side session (and lock) ended mid-round writes nothing another apply consumed ($src_h history rows on both sides)"

ctl replicate stop >"$WORK/stop.out" 2>&1 || fail "replicate stop"
left=$(pgc_admin_psql src -XAtc "select (select count(*) from pg_trigger where tgname like 'pgcutover%')
  + (select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace where nspname = 'pgcutover')
  + (select count(*) from pg_namespace where nspname = 'pgcutover')")
[ "$left" = 0 ] || fail "replicate stop left $left trigger(s)/function(s)/schema on the source"
pgc_psql src -qc "update pgbench_accounts set abalance = abalance + 1 where aid = 1" || fail "write after stop"
pass "replicate stop removed triggers, functions and the pgcutover schema from the source"
