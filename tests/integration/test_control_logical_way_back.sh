#!/usr/bin/env bash
# The logical method's way back when the source cannot subscribe (Heroku: no superuser, so no
# CREATE SUBSCRIPTION on PostgreSQL 15). Source: Heroku-shaped with logical replication out (a
# REPLICATION role, no superuser); target: RDS-shaped. Under pgbench through the proxy the
# whole time (tpcb-like + a ledger of acknowledged bigserial inserts):
#  - `flip` (logical) installs the trigger capture on the target before the pause, disables
#    the forward subscription and arms the capture inside it, and drops the forward
#    subscription and its slot after the gates open (no WAL kept on the source for the window);
#  - writes on the target travel back with `replicate apply --reverse`; `lag --reverse` and
#    `status` measure them;
#  - `revert` runs over that capture, `validate --reverse` clean at its revert point (a test
#    hook just before the proxies flip back): every acknowledged ledger and history row on the source
#    exactly once, balances agree, 0 failed; the source's writes are captured for the target
#    from then on (the method recorded becomes trigger);
#  - a flip forward again (trigger) is clean; `finalize` leaves nothing on either side.
. "$(dirname "$0")/../lib/proxy_harness.bash"

CTL_BIN=${PGCUTOVER_CTL_BIN:-$(dirname "$PROXY_BIN")/../control/pgcutoverctl}
[ -x "$CTL_BIN" ] || fail "pgcutoverctl not built: $CTL_BIN"
P1_PID="" APPLY_PID="" BACK_PID="" B_PID=""
PROXY_PID_VARS=(P1_PID APPLY_PID BACK_PID B_PID)
PROXY_FAILURE_LOGS=(p1.log "ctl.*" "*.out" "*.log")

pgc_start src heroku --logical >/dev/null
pgc_start tgt rds >/dev/null
# The source's admin is its app role (it cannot subscribe); the target's subscription was
# made by the target's admin, as an RDS master user would.
controlled_proxy_setup

# ---- forward: logical replication, proxy ----
pgc_logical_fixture
[ "$(pgc_admin_psql src -XAtc "select rolsuper from pg_roles where rolname = 'app'")" = f ] ||
  fail "the source's app role must not be a superuser"
"$PROXY_BIN" -c "$CFG" >>"$PROXY_DIR/p1.log" 2>&1 &
P1_PID=$!
pgc_wait_until 15 pg_isready -q -h 127.0.0.1 -p "$PROXY_PORT" -t 1 || fail "proxy does not accept on $PROXY_PORT"
ctl preflight --method logical --json >"$PROXY_DIR/preflight.out" 2>&1 || true
/usr/bin/python3 - "$PROXY_DIR/preflight.out" <<'PY' || fail "preflight does not name the way back: $(cat "$PROXY_DIR/preflight.out")"
import json, sys
w = {c["id"]: c for c in json.load(open(sys.argv[1]))["checks"]}["way_back"]
assert w["status"] == "pass" and "trigger capture on the target" in w["found"], w
PY

# ---- the load, through the proxy, across the flip, the window on the target and the revert ----
base=$(table_rows src ledger)
hist0=$(table_rows src pgbench_history)
ledger_load "$PROXY_DIR/bench.log" "$PROXY_PORT" 6 45
B_PID=$!
pgc_wait_until 15 grows src $((base + 20)) || fail "pgbench does not write through the proxy"
pgc_wait_until 20 lag_ok "" || fail "logical replication does not keep up: $(cat "$PROXY_DIR/lag.out")"

ctl flip --json -c "$CFG" --subscriber-url "$TGT_ADMIN_URL" --smoke-url "$(proxy_dsn require)" \
  --max-validation-age 0 >"$PROXY_DIR/ctl.flip.json" 2>"$PROXY_DIR/ctl.flip.err" ||
  { cat "$PROXY_DIR/ctl.flip.json" "$PROXY_DIR/ctl.flip.err"; fail "flip under load"; }
/usr/bin/python3 - "$PROXY_DIR/ctl.flip.json" <<'PY' || fail "flip report"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] and d["method"] == "logical", d
steps = {s["step"]: s for s in d["steps"]}
pre = steps["preconditions"]["data"]
assert pre["reverse_replication"] is False and pre["way_back"] == "trigger capture on the target", pre
rep = steps["replication"]["data"]
assert rep["way_back"] == "trigger" and rep["forward_subscription"] == "disabled", rep
assert steps["subscribe"]["data"]["forward_subscription"] == "dropped", steps["subscribe"]
assert not any("NO REVERSE" in n for n in d["notes"]), d["notes"]
print("   flip: write pause %s ms" % d["write_pause_ms"])
PY
[ "$(pgc_admin_psql src -XAtc "select count(*) from pg_replication_slots")" = 0 ] ||
  fail "the forward slot still holds the source's WAL after the flip"
[ "$(pgc_admin_psql tgt -XAtc "select count(*) from pg_subscription")" = 0 ] ||
  fail "the forward subscription is still on the target after the flip"
at_flip=$(table_rows tgt ledger)
pass "flip (logical, source cannot subscribe) armed the trigger capture on the target as the way back; the forward subscription and its slot are gone"

# ---- the window: writes on the target travel back ----
"$CTL_BIN" replicate apply --reverse "${conn[@]}" >>"$PROXY_DIR/back.log" 2>&1 &
BACK_PID=$!
pgc_wait_until 20 grows tgt $((at_flip + 100)) || fail "no writes reach the target after the flip"
pgc_wait_until 20 grows src $((at_flip + 20)) || fail "the reverse apply carries nothing to the source: $(cat "$PROXY_DIR/back.log")"
pgc_wait_until 20 lag_ok --reverse || fail "lag --reverse: $(cat "$PROXY_DIR/lag--reverse.out")"
ctl status -c "$CFG" >"$PROXY_DIR/status.out" 2>&1 || true
grep -q "way back reverse (target -> source): [0-9]* change(s) pending" "$PROXY_DIR/status.out" ||
  fail "status does not show the way back: $(cat "$PROXY_DIR/status.out")"
kill -0 "$B_PID" 2>/dev/null || fail "the load ended before the revert: $(tail -5 "$PROXY_DIR/bench.log")"
pass "writes on the target carried to the fenced source by replicate apply --reverse; $(cat "$PROXY_DIR/lag--reverse.out")"

# ---- revert under load; validate --reverse at the revert point (target fenced, log drained) ----
hook="$PROXY_DIR/hook.sh"
cat >"$hook" <<EOH
#!/usr/bin/env bash
"$CTL_BIN" validate --reverse --source-url '$SRC_URL' --target-url '$TGT_URL' --jobs 2 >"$PROXY_DIR/validate.out" 2>&1
echo \$? >"$PROXY_DIR/validate.rc"
EOH
chmod +x "$hook"
PGCUTOVER_TEST_HOOK_BEFORE_STEP="flip:$hook" ctl revert --json -c "$CFG" --subscriber-url "$TGT_ADMIN_URL" \
  --smoke-url "$(proxy_dsn require)" >"$PROXY_DIR/ctl.revert.json" 2>"$PROXY_DIR/ctl.revert.err" ||
  { cat "$PROXY_DIR/ctl.revert.json" "$PROXY_DIR/ctl.revert.err"; fail "revert under load"; }
[ "$(cat "$PROXY_DIR/validate.rc")" = 0 ] || { cat "$PROXY_DIR/validate.out"; fail "validate --reverse at the revert point"; }
/usr/bin/python3 - "$PROXY_DIR/ctl.revert.json" <<'PY' || fail "revert report"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] and d["command"] == "revert" and d["method"] == "trigger", d
steps = {s["step"]: s for s in d["steps"]}
assert steps["subscribe"]["data"].get("method_recorded") == "trigger", steps["subscribe"]
print("   revert: %s (write pause %s ms with the test's validate --reverse inside)" % (steps["catch_up"]["data"].get("summary"), d["write_pause_ms"]))
PY
wait "$B_PID" || { cat "$PROXY_DIR/bench.log"; fail "pgbench through the proxy failed"; }
B_PID=""
grep -q "number of failed transactions: 0 " "$PROXY_DIR/bench.log" || { cat "$PROXY_DIR/bench.log"; fail "failed transactions"; }
want=$((base + $(acked "$PROXY_DIR/bench.log")))
want_hist=$((hist0 + $(tpcb "$PROXY_DIR/bench.log")))
got=$(table_rows src ledger)
got_hist=$(table_rows src pgbench_history)
[ "$got" = "$want" ] || fail "ledger on the source: $got rows, acknowledged $want"
if [ "$got_hist" != "$want_hist" ]; then
  history_repeats_report src tgt
  echo "flip at ledger $at_flip; revert report:"
  head -c 3000 "$PROXY_DIR/ctl.revert.json" || true
  echo
  tail -20 "$PROXY_DIR/back.log" || true
  fail "pgbench_history on the source: $got_hist rows, acknowledged $want_hist"
fi
sums=$(pgc_admin_psql src -XAtc "select (select sum(abalance) from pgbench_accounts), (select sum(tbalance) from pgbench_tellers), (select sum(bbalance) from pgbench_branches), (select sum(delta) from pgbench_history)")
[ "$(tr '|' '\n' <<<"$sums" | sort -u | wc -l)" = 1 ] || fail "balances disagree on the source: $sums"
pass "revert under load over the trigger capture, validate --reverse clean at the revert point: 0 failed, ledger $got/$want and history $got_hist/$want_hist on the source ($((got - at_flip)) ledger rows written on the target after the flip), balances agree"

# ---- forward again: the source's writes are captured for the target (trigger) ----
kill -TERM "$BACK_PID" 2>/dev/null || true
wait "$BACK_PID" 2>/dev/null || true
BACK_PID=""
ctl replicate status >"$PROXY_DIR/rstatus.out" 2>&1 || true
grep -qi "trigger" "$PROXY_DIR/rstatus.out" || fail "replicate status after the revert: $(cat "$PROXY_DIR/rstatus.out")"
"$CTL_BIN" replicate apply "${conn[@]}" >>"$PROXY_DIR/apply.log" 2>&1 &
APPLY_PID=$!
pgc_psql src -qc "INSERT INTO ledger (client) SELECT 100 FROM generate_series(1, 50)"
pgc_wait_until 30 lag_ok "" || fail "the forward apply does not carry the source's writes after the revert: $(cat "$PROXY_DIR/lag.out")"
ctl flip --json -c "$CFG" --max-validation-age 0 >"$PROXY_DIR/ctl.flip2.json" 2>"$PROXY_DIR/ctl.flip2.err" ||
  { cat "$PROXY_DIR/ctl.flip2.json" "$PROXY_DIR/ctl.flip2.err"; fail "second flip"; }
[ "$(table_rows tgt ledger)" = "$(table_rows src ledger)" ] || fail "after the second flip: target $(table_rows tgt ledger) ledger rows, source $(table_rows src ledger)"
ctl validate --jobs 2 >"$PROXY_DIR/validate2.out" 2>&1 || { cat "$PROXY_DIR/validate2.out"; fail "validate after the second flip"; }
pass "flip forward again (trigger, recorded by the revert): clean (ledger equal, validate passes)"

# ---- finalize: nothing left on either side ----
kill -TERM "$APPLY_PID" 2>/dev/null || true
wait "$APPLY_PID" 2>/dev/null || true
APPLY_PID=""
ctl finalize -c "$CFG" --subscriber-url "$TGT_ADMIN_URL" >"$PROXY_DIR/finalize.out" 2>&1 ||
  { cat "$PROXY_DIR/finalize.out"; fail "finalize"; }
for side in src tgt; do
  left=$(pgc_admin_psql $side -XAtc "select (select count(*) from pg_trigger where tgname like 'pgcutover%')
    + (select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace where nspname = 'pgcutover')
    + (select count(*) from pg_replication_slots) + (select count(*) from pg_subscription)")
  [ "$left" = 0 ] || fail "finalize left $left trigger(s)/function(s)/slot(s)/subscription(s) on $side"
done
pass "finalize removed the capture, the slots and the subscriptions from both sides"
