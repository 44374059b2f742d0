#!/usr/bin/env bash
# The full `pgcutoverctl flip` with the trigger method, on the Heroku-shaped source (app role:
# owner, no superuser, no REPLICATION), under pgbench load through the proxy:
#  - capture installed and copied, `replicate apply` keeping up in the background;
#  - pgbench tpcb-like + a ledger of acknowledged inserts, 8 clients through the proxy, runs
#    through the flip with zero failed transactions; the flip's catch-up barrier is the final
#    drain of the change log; the closing report gives the measured write pause;
#  - `validate` passes at the flip point (run by a test hook just before the proxies flip, when
#    the source is fenced, the proxy paused and the log drained; its own duration is taken
#    out of the reported pause); every acknowledged ledger row and history row is on the
#    target, and pgbench's balances agree (accounts = tellers = branches = history deltas);
#  - `finalize` leaves no trigger, function or pgcutover schema on the source.
. "$(dirname "$0")/../lib/proxy_harness.bash"

CTL_BIN=${PGCUTOVER_CTL_BIN:-$(dirname "$PROXY_BIN")/../control/pgcutoverctl}
[ -x "$CTL_BIN" ] || fail "pgcutoverctl not built: $CTL_BIN"
P1_PID="" APPLY_PID="" B_PID=""
PROXY_PID_VARS=(P1_PID APPLY_PID B_PID)
PROXY_FAILURE_LOGS=(p1.log "ctl.*" "*.out" "*.log")

pgc_start src heroku >/dev/null
pgc_start tgt rds >/dev/null
[ "$(pgc_psql src -XAtc "select rolsuper or rolreplication from pg_roles where rolname = current_user")" = f ] ||
  fail "the source's app role must have neither superuser nor REPLICATION"
controlled_proxy_setup

# ---- data, schema, capture, copy, validation, apply in the background ----
timeout 120 pgbench -i -q -s 1 "$SRC_URL" >/dev/null 2>&1 || fail "pgbench -i"
pgc_psql src -qc "CREATE TABLE ledger (id bigserial PRIMARY KEY, client int NOT NULL, at timestamptz DEFAULT now())"
pgc_admin_psql tgt -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
ctl schema copy >/dev/null || fail "schema copy"
ctl replicate start --method trigger --jobs 2 >"$PROXY_DIR/start.out" 2>&1 || fail "replicate start"
ctl validate --jobs 2 >"$PROXY_DIR/validate0.out" 2>&1 || fail "validate before the load"
"$CTL_BIN" replicate apply "${conn[@]}" >"$PROXY_DIR/apply.log" 2>&1 &
APPLY_PID=$!
PROXY_TEST_PASSWORD=$PROXY_USER_PASSWORD "$PROXY_BIN" -c "$CFG" >>"$PROXY_DIR/p1.log" 2>&1 &
P1_PID=$!
pgc_wait_until 15 pg_isready -q -h 127.0.0.1 -p "$PROXY_PORT" -t 1 || fail "proxy does not accept on $PROXY_PORT"
pass "trigger capture installed as a non-superuser, copied, validated; apply and the proxy running"

# ---- the flip under pgbench through the proxy ----
base=$(pgc_admin_psql src -XAtc "select count(*) from ledger")
hist0=$(pgc_admin_psql src -XAtc "select count(*) from pgbench_history")
ledger_load "$PROXY_DIR/bench.log" "$PROXY_PORT" 8 12
B_PID=$!
# A few rows prove that pgbench writes through the proxy; a fixed volume would depend on the
# box's throughput (under ASan and a parallel test, 66 ledger rows in the whole 12 s run).
ledger_grows() { [ "$(pgc_admin_psql src -XAtc "select count(*) from ledger")" -gt $((base + 20)) ]; }
pgc_wait_until 15 ledger_grows || fail "pgbench does not write through the proxy"
# The apply keeps up (the flip refuses a log whose oldest entry is older than --max-lag).
sleep 2
ctl lag --method trigger >"$PROXY_DIR/lag.out" 2>&1 || fail "lag"

# Just before the proxies flip (paused, fenced, log drained): validate the target against the
# source, timing the hook so that its duration can be taken out of the pause.
hook="$PROXY_DIR/hook.sh"
cat >"$hook" <<EOF
#!/usr/bin/env bash
t0=\$(date +%s%N)
"$CTL_BIN" validate --source-url '$SRC_URL' --target-url '$TGT_URL' --jobs 2 >"$PROXY_DIR/validate.out" 2>&1
echo \$? >"$PROXY_DIR/validate.rc"
echo \$(( (\$(date +%s%N) - t0) / 1000000 )) >"$PROXY_DIR/hook.ms"
EOF
chmod +x "$hook"
PGCUTOVER_TEST_HOOK_BEFORE_STEP="flip:$hook" timeout 120 "$CTL_BIN" flip --json -c "$CFG" \
  --smoke-url "$(proxy_dsn require)" "${conn[@]}" >"$PROXY_DIR/ctl.out" 2>"$PROXY_DIR/ctl.err" ||
  { cat "$PROXY_DIR/ctl.out"; fail "flip under load"; }
wait "$B_PID" || { cat "$PROXY_DIR/bench.log"; fail "pgbench through the proxy failed"; }
B_PID=""
kill -TERM "$APPLY_PID" 2>/dev/null || true
wait "$APPLY_PID" 2>/dev/null || true
APPLY_PID=""

grep -q "number of failed transactions: 0 " "$PROXY_DIR/bench.log" || { cat "$PROXY_DIR/bench.log"; fail "failed transactions"; }
[ "$(cat "$PROXY_DIR/validate.rc")" = 0 ] || { cat "$PROXY_DIR/validate.out"; fail "validate at the flip point"; }
read -r pause_ms drain_ms drained < <(python3 - "$PROXY_DIR/ctl.out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] and d["method"] == "trigger", d
cu = [s for s in d["steps"] if s["step"] == "catch_up"][0]
print(int(d["write_pause_ms"]), int(cu["ms"]), cu["data"]["applied"])
PY
)
hook_ms=$(cat "$PROXY_DIR/hook.ms")
pause_net=$((pause_ms - hook_ms))
want=$((base + $(acked "$PROXY_DIR/bench.log")))
want_hist=$((hist0 + $(tpcb "$PROXY_DIR/bench.log")))
got=$(pgc_admin_psql tgt -XAtc "select count(*) from ledger")
got_hist=$(pgc_admin_psql tgt -XAtc "select count(*) from pgbench_history")
[ "$got" = "$want" ] || fail "ledger on the target: $got rows, acknowledged $want"
[ "$got_hist" = "$want_hist" ] || fail "pgbench_history on the target: $got_hist rows, acknowledged $want_hist"
sums=$(pgc_admin_psql tgt -XAtc "select (select sum(abalance) from pgbench_accounts), (select sum(tbalance) from pgbench_tellers), (select sum(bbalance) from pgbench_branches), (select sum(delta) from pgbench_history)")
[ "$(tr '|' '\n' <<<"$sums" | sort -u | wc -l)" = 1 ] || fail "balances disagree on the target: $sums"
[ "$pause_net" -lt 1000 ] || fail "write pause $pause_net ms without the hook (>= 1 s)"
pass "flip under pgbench through the proxy: 0 failed, ledger $got/$want, history $got_hist/$want_hist, validate passed at the flip point"
echo "   write pause $pause_net ms (flip reported $pause_ms ms, of which $hook_ms ms was the test's validate hook); final drain $drain_ms ms for $drained change(s)"

# ---- finalize: nothing of the capture left on the source ----
timeout 120 "$CTL_BIN" finalize -c "$CFG" "${conn[@]}" >"$PROXY_DIR/finalize.out" 2>&1 ||
  { cat "$PROXY_DIR/finalize.out"; fail "finalize"; }
grep -q "trigger capture: no trigger" "$PROXY_DIR/finalize.out" || { cat "$PROXY_DIR/finalize.out"; fail "finalize did not remove the capture"; }
left=$(pgc_admin_psql src -XAtc "select (select count(*) from pg_trigger where tgname like 'pgcutover%')
  + (select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace where nspname = 'pgcutover')
  + (select count(*) from pg_namespace where nspname = 'pgcutover')")
[ "$left" = 0 ] || fail "finalize left $left trigger(s)/function(s)/schema on the source"
pass "finalize removed the triggers, functions and the pgcutover schema from the source"
