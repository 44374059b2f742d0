#!/usr/bin/env bash
# The way back without superuser (trigger method), on the Heroku-shaped source (app role:
# owner, no superuser, no REPLICATION) and the RDS-shaped target, under pgbench through the
# two proxies the whole time (tpcb-like + a ledger of acknowledged bigserial inserts, 8 clients
# through proxy 1, commanded over its admin API, and 4 through proxy 2, a fleet member with no
# admin port, commanded through the databases' fleet channel):
#  - `flip` installs the capture on the target ahead of the pause and arms it inside;
#  - 30 s of writes land on the target; `replicate apply --reverse` carries them to the fenced
#    source, is SIGKILLed mid-run and restarted (nothing lost, nothing twice);
#  - `lag --reverse` measures it; `validate --reverse` passes at the revert point (a test hook
#    just before the proxies flip back: target fenced, its change log drained);
#  - `revert` under the same load: pgbench 0 failed (the sequences moved back, never down),
#    every acknowledged ledger row and history row on the source exactly once, balances agree;
#    both proxies back on the source (the fleet member by the channel alone);
#  - a flip forward again is clean (the source's capture was re-armed by the revert);
#  - `revert` refuses after a failed `validate --reverse` unless --force;
#  - a schema change and a TRUNCATE on the target after the flip fail `lag --reverse`;
#  - `finalize` leaves no capture on either side.
. "$(dirname "$0")/../lib/proxy_harness.bash"

CTL_BIN=${PGCUTOVER_CTL_BIN:-$(dirname "$PROXY_BIN")/../control/pgcutoverctl}
[ -x "$CTL_BIN" ] || fail "pgcutoverctl not built: $CTL_BIN"
P1_PID="" P2_PID="" APPLY_PID="" BACK_PID="" B_PID="" B2_PID=""
PROXY_PID_VARS=(P1_PID P2_PID APPLY_PID BACK_PID B_PID B2_PID)
PROXY_FAILURE_LOGS=(p1.log p2.log "ctl.*" "*.out" "*.log")

pgc_start src heroku >/dev/null
pgc_start tgt rds >/dev/null
controlled_proxy_setup
P1_PORT=$PROXY_PORT
# Proxy 2: a fleet member with no admin API (the Heroku dyno no controller can reach).
PORTS=()
proxy_write_fleet_config 2 dyno-2 0.5 "
[cutover]
max_pause = 60
"
P2_PORT=${PORTS[2]}
grep -q "^\[admin\]" "$PROXY_DIR/p2.toml" && fail "proxy 2 must have no admin API"
apply_bg() { # direction flag ("" or --reverse), log name
  "$CTL_BIN" replicate apply $1 "${conn[@]}" >>"$PROXY_DIR/$2" 2>&1 &
}

# ---- forward: capture, copy, apply, proxy ----
timeout 120 pgbench -i -q -s 1 "$SRC_URL" >/dev/null 2>&1 || fail "pgbench -i"
pgc_psql src -qc "CREATE TABLE ledger (id bigserial PRIMARY KEY, client int NOT NULL, at timestamptz DEFAULT now())"
pgc_admin_psql tgt -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
ctl schema copy >/dev/null || fail "schema copy"
ctl replicate start --method trigger --jobs 2 >"$PROXY_DIR/start.out" 2>&1 || fail "replicate start"
ctl validate --jobs 2 >"$PROXY_DIR/validate0.out" 2>&1 || fail "validate before the load"
ctl fleet setup >"$PROXY_DIR/fleet-setup.out" 2>&1 || fail "fleet setup: $(cat "$PROXY_DIR/fleet-setup.out")"
apply_bg "" apply.log
APPLY_PID=$!
"$PROXY_BIN" -c "$CFG" >>"$PROXY_DIR/p1.log" 2>&1 &
P1_PID=$!
"$PROXY_BIN" -c "$PROXY_DIR/p2.toml" >>"$PROXY_DIR/p2.log" 2>&1 &
P2_PID=$!
for port in "$P1_PORT" "$P2_PORT"; do
  pgc_wait_until 15 pg_isready -q -h 127.0.0.1 -p "$port" -t 1 || fail "proxy does not accept on $port"
done
# side_of <proxy port>: the port of the server a new client of that proxy writes to.
side_of() {
  PGPASSWORD=$PROXY_USER_PASSWORD psql -XAt "host=127.0.0.1 port=$1 user=app dbname=app sslmode=require" \
    -c "select inet_server_port()" 2>/dev/null
}
member_live() {
  ctl fleet --json >"$PROXY_DIR/fleet.out" 2>&1 &&
    /usr/bin/python3 -c 'import json,sys; sys.exit(0 if any(m["live"] and m["name"] == "dyno-2" for m in json.load(open(sys.argv[1]))["members"]) else 1)' "$PROXY_DIR/fleet.out"
}
pgc_wait_until 20 member_live || fail "proxy 2 did not join the fleet: $(cat "$PROXY_DIR/fleet.out")"

# ---- the load, through the proxy, across the flip, the window on the target and the revert ----
base=$(table_rows src ledger)
hist0=$(table_rows src pgbench_history)
ledger_load "$PROXY_DIR/bench.log" "$P1_PORT" 8 60
B_PID=$!
ledger_load "$PROXY_DIR/bench2.log" "$P2_PORT" 4 60
B2_PID=$!
pgc_wait_until 15 grows src $((base + 20)) || fail "pgbench does not write through the proxy"
pgc_wait_until 20 lag_ok "" || fail "the forward apply does not keep up: $(cat "$PROXY_DIR/lag.out")"

ctl flip --json -c "$CFG" --smoke-url "$(proxy_dsn require)" --max-validation-age 0 \
  >"$PROXY_DIR/ctl.flip.json" 2>"$PROXY_DIR/ctl.flip.err" || { cat "$PROXY_DIR/ctl.flip.json"; fail "flip under load"; }
/usr/bin/python3 - "$PROXY_DIR/ctl.flip.json" <<'PY' || fail "flip report"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] and d["method"] == "trigger", d
steps = {s["step"]: s for s in d["steps"]}
assert steps["preconditions"]["data"]["way_back"] == "trigger capture on the target", steps["preconditions"]
assert steps["replication"]["data"]["way_back"] == "trigger", steps["replication"]
assert not any("NO REVERSE" in n for n in d["notes"]), d["notes"]
PY
for port in "$P1_PORT" "$P2_PORT"; do
  [ "$(side_of "$port")" = "$TGT_PORT" ] || fail "proxy on $port is not on the target after the flip: $(side_of "$port")"
done
at_flip=$(table_rows tgt ledger)
flipped_at=$SECONDS
pass "flip under load installed the way-back capture on the target and armed it in the pause"

# ---- the window: writes on the target travel back; the reverse apply dies and restarts ----
apply_bg --reverse back.log
BACK_PID=$!
pgc_wait_until 20 grows tgt $((at_flip + 40)) || fail "no writes reach the target after the flip"
back_applied() { grep -qE "^applied [1-9]" "$PROXY_DIR/back.log" || grows src $((at_flip + 20)); }
pgc_wait_until 20 back_applied || fail "the reverse apply carries nothing to the source: $(cat "$PROXY_DIR/back.log")"
kill -KILL "$BACK_PID"
wait "$BACK_PID" 2>/dev/null || true
apply_bg --reverse back.log
BACK_PID=$!
pgc_wait_until 20 grows tgt $((at_flip + 200)) || fail "the target stops taking writes"
pgc_wait_until 20 lag_ok --reverse || fail "lag --reverse: $(cat "$PROXY_DIR/lag--reverse.out")"
grep -q "change(s) pending" "$PROXY_DIR/lag--reverse.out" || fail "lag --reverse says: $(cat "$PROXY_DIR/lag--reverse.out")"
ctl status -c "$CFG" >"$PROXY_DIR/status.out" 2>&1 || fail "status: $(cat "$PROXY_DIR/status.out")"
grep -q "way back reverse (target -> source): [0-9]* change(s) pending" "$PROXY_DIR/status.out" ||
  fail "status does not show the way back: $(cat "$PROXY_DIR/status.out")"
# 30 s of the application's writes on the target before going back (the load runs 60 s).
window_done() { [ $((SECONDS - flipped_at)) -ge 30 ]; }
pgc_wait_until 40 window_done || fail "the window on the target did not last 30 s"
kill -0 "$B_PID" 2>/dev/null || fail "the load ended before the revert: $(tail -5 "$PROXY_DIR/bench.log")"
pass "writes on the target carried to the fenced source by replicate apply --reverse, SIGKILLed and restarted; $(cat "$PROXY_DIR/lag--reverse.out")"

# ---- revert under load, validate --reverse at the revert point ----
hook="$PROXY_DIR/hook.sh"
cat >"$hook" <<EOF
#!/usr/bin/env bash
t0=\$(date +%s%N)
"$CTL_BIN" validate --reverse --source-url '$SRC_URL' --target-url '$TGT_URL' --jobs 2 >"$PROXY_DIR/validate.out" 2>&1
echo \$? >"$PROXY_DIR/validate.rc"
echo \$(( (\$(date +%s%N) - t0) / 1000000 )) >"$PROXY_DIR/hook.ms"
EOF
chmod +x "$hook"
PGCUTOVER_TEST_HOOK_BEFORE_STEP="flip:$hook" ctl revert --json -c "$CFG" --smoke-url "$(proxy_dsn require)" \
  >"$PROXY_DIR/ctl.revert.json" 2>"$PROXY_DIR/ctl.revert.err" ||
  { cat "$PROXY_DIR/ctl.revert.json"; fail "revert under load"; }
[ "$(cat "$PROXY_DIR/validate.rc")" = 0 ] || { cat "$PROXY_DIR/validate.out"; fail "validate --reverse at the revert point"; }
grep -q "validate --reverse (target -> source): OK" "$PROXY_DIR/validate.out" || fail "validate --reverse output: $(cat "$PROXY_DIR/validate.out")"
/usr/bin/python3 - "$PROXY_DIR/ctl.revert.json" "$(cat "$PROXY_DIR/hook.ms")" <<'PY' || fail "revert report"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] and d["command"] == "revert" and d["method"] == "trigger", d
steps = {s["step"]: s for s in d["steps"]}
assert steps["replication"]["data"]["way_back"] == "trigger", steps["replication"]
hook = int(sys.argv[2])
print("   revert: write pause %d ms without the test's validate hook (reported %s ms, hook %d ms); %s"
      % (d["write_pause_ms"] - hook, d["write_pause_ms"], hook, steps["catch_up"]["data"].get("summary")))
PY
for port in "$P1_PORT" "$P2_PORT"; do
  [ "$(side_of "$port")" = "$SRC_PORT" ] || fail "proxy on $port is not back on the source after the revert: $(side_of "$port")"
done
wait "$B_PID" || { cat "$PROXY_DIR/bench.log"; fail "pgbench through proxy 1 failed"; }
B_PID=""
wait "$B2_PID" || { cat "$PROXY_DIR/bench2.log"; fail "pgbench through proxy 2 (fleet member) failed"; }
B2_PID=""
for log in bench.log bench2.log; do
  grep -q "number of failed transactions: 0 " "$PROXY_DIR/$log" || { cat "$PROXY_DIR/$log"; fail "failed transactions ($log)"; }
done
want=$((base + $(acked "$PROXY_DIR/bench.log") + $(acked "$PROXY_DIR/bench2.log")))
want_hist=$((hist0 + $(tpcb "$PROXY_DIR/bench.log") + $(tpcb "$PROXY_DIR/bench2.log")))
got=$(table_rows src ledger)
got_hist=$(table_rows src pgbench_history)
[ "$got" = "$want" ] || fail "ledger on the source: $got rows, acknowledged $want"
[ "$got_hist" = "$want_hist" ] || {
  history_repeats_report src tgt
  fail "pgbench_history on the source: $got_hist rows, acknowledged $want_hist"
}
sums=$(pgc_admin_psql src -XAtc "select (select sum(abalance) from pgbench_accounts), (select sum(tbalance) from pgbench_tellers), (select sum(bbalance) from pgbench_branches), (select sum(delta) from pgbench_history)")
[ "$(tr '|' '\n' <<<"$sums" | sort -u | wc -l)" = 1 ] || fail "balances disagree on the source: $sums"
on_target=$((got - at_flip))
grep -q 'command="POST /v1/flip"' "$PROXY_DIR/p2.log" || fail "proxy 2 was not commanded through the fleet channel"
pass "revert under load through both proxies (one by the fleet channel alone): 0 failed, ledger $got/$want and history $got_hist/$want_hist on the source (~$on_target ledger rows written on the target after the flip), balances agree, validate --reverse passed"

# ---- forward again: the source's capture was re-armed, the forward apply resumes ----
kill -TERM "$BACK_PID" 2>/dev/null || true
wait "$BACK_PID" 2>/dev/null || true
BACK_PID=""
pgc_psql src -qc "INSERT INTO ledger (client) SELECT 100 FROM generate_series(1, 50)"
pgc_wait_until 30 lag_ok "" || fail "the forward apply does not resume after the revert: $(cat "$PROXY_DIR/lag.out")"
ctl flip --json -c "$CFG" --max-validation-age 0 >"$PROXY_DIR/ctl.flip2.json" 2>"$PROXY_DIR/ctl.flip2.err" ||
  { cat "$PROXY_DIR/ctl.flip2.json"; fail "second flip"; }
[ "$(table_rows tgt ledger)" = "$(table_rows src ledger)" ] || fail "after the second flip: target $(table_rows tgt ledger) ledger rows, source $(table_rows src ledger)"
ctl validate --jobs 2 >"$PROXY_DIR/validate2.out" 2>&1 || { cat "$PROXY_DIR/validate2.out"; fail "validate after the second flip"; }
pass "flip forward again: clean (ledger equal, validate passes)"

# ---- a failed reverse validation stops the revert; --force overrides ----
pgc_admin_psql src -qc "SET default_transaction_read_only = off; SET pgcutover.applying = on; DELETE FROM ledger WHERE id = (SELECT max(id) FROM ledger)"
ctl validate --reverse --jobs 2 >"$PROXY_DIR/validate3.out" 2>&1 && fail "validate --reverse passed over a missing row"
ctl revert -c "$CFG" >"$PROXY_DIR/ctl.revert2.out" 2>&1 && fail "revert went ahead after a failed validate --reverse"
grep -q "validate --reverse" "$PROXY_DIR/ctl.revert2.out" || fail "revert refused without saying why: $(cat "$PROXY_DIR/ctl.revert2.out")"
pass "revert refuses after a failed validate --reverse (--force to override)"

# ---- DDL on the target in the window is reported, never skipped silently ----
pgc_admin_psql tgt -qc "ALTER TABLE ledger ADD COLUMN note text"
ctl lag --reverse >"$PROXY_DIR/lag-ddl.out" 2>&1 && fail "lag --reverse passed over a schema change on the target"
grep -q "schema change (DDL).*ledger" "$PROXY_DIR/lag-ddl.out" || fail "lag --reverse after DDL says: $(cat "$PROXY_DIR/lag-ddl.out")"
pgc_admin_psql tgt -qc "TRUNCATE pgbench_history"
ctl lag --reverse >"$PROXY_DIR/lag-truncate.out" 2>&1 && fail "lag --reverse passed over a TRUNCATE on the target"
grep -q "pgbench_history saw TRUNCATE" "$PROXY_DIR/lag-truncate.out" || fail "lag --reverse after TRUNCATE says: $(cat "$PROXY_DIR/lag-truncate.out")"
pass "a schema change and a TRUNCATE on the target are reported by lag --reverse: $(head -c 120 "$PROXY_DIR/lag-ddl.out")..."

# ---- finalize: no capture left on either side ----
kill -TERM "$APPLY_PID" 2>/dev/null || true
wait "$APPLY_PID" 2>/dev/null || true
APPLY_PID=""
ctl finalize -c "$CFG" >"$PROXY_DIR/finalize.out" 2>&1 || { cat "$PROXY_DIR/finalize.out"; fail "finalize"; }
for side in src tgt; do
  left=$(pgc_admin_psql $side -XAtc "select (select count(*) from pg_trigger where tgname like 'pgcutover%')
    + (select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace where nspname = 'pgcutover')
    + (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where nspname = 'pgcutover' and relname like 'trigger%')")
  [ "$left" = 0 ] || fail "finalize left $left trigger(s)/function(s)/log(s) on $side"
done
pass "finalize removed the capture from both sides"
