#!/usr/bin/env bash
# pgcutoverctl flip/revert/recover with two real proxies over a real logical replication:
#  - a proxy unreachable at step 2 aborts the flip with the other one resumed on the source;
#  - the controller killed after each step (PGCUTOVER_CRASH_AFTER_STEP) leaves both proxies on
#    one backend, and `recover` finishes or rolls back (then `revert` brings it back);
#  - pgbench tpcb-like, 16 clients split over the two proxies, runs through the flip with zero
#    failed transactions, the ledger of acknowledged inserts arrives whole on the target, and
#    the printed write pause is below 1 s;
#  - writes made on the target after the flip survive `revert` (reverse replication).
. "$(dirname "$0")/../lib/proxy_harness.bash"

CTL_BIN=${PGCUTOVER_CTL_BIN:-$(dirname "$PROXY_BIN")/../control/pgcutoverctl}
[ -x "$CTL_BIN" ] || fail "pgcutoverctl not built: $CTL_BIN"
PROXY_FAILURE_LOGS=('p*.log' 'ctl.out' 'ctl.err')

pgc_start src heroku --logical >/dev/null
pgc_start tgt rds >/dev/null
export PROXY_TEST_SOURCE_URL=$SRC_URL PROXY_TEST_TARGET_URL=$TGT_URL
TOKEN="tok-$$-$RANDOM"
export PGCUTOVER_TEST_TOKEN=$TOKEN PROXY_TEST_PASSWORD=$PROXY_USER_PASSWORD # the controller reads the same config
JOURNAL=$PROXY_DIR/flip.journal
P1_PORT=$(pgc_free_port) P2_PORT=$(pgc_free_port) A1_PORT=$(pgc_free_port) A2_PORT=$(pgc_free_port)

write_proxy_config() { # <file> <listen port> <admin port> <state file>
  PROXY_PORT=$2 proxy_write_config "$1" transaction 10 require "
[cutover]
max_pause = 30

[admin]
listen_addr = \"127.0.0.1\"
listen_port = $3
token = \"\${PGCUTOVER_TEST_TOKEN}\"

[control]
journal = \"$JOURNAL\"

[[control.proxies]]
admin_url = \"http://127.0.0.1:$A1_PORT\"
token = \"\${PGCUTOVER_TEST_TOKEN}\"

[[control.proxies]]
admin_url = \"http://127.0.0.1:$A2_PORT\"
token = \"\${PGCUTOVER_TEST_TOKEN}\"
"
  sed -i "s|state_file = .*|state_file = \"$4\"|" "$1"
}
write_proxy_config "$PROXY_DIR/p1.toml" "$P1_PORT" "$A1_PORT" "$PROXY_DIR/state1.json"
write_proxy_config "$PROXY_DIR/p2.toml" "$P2_PORT" "$A2_PORT" "$PROXY_DIR/state2.json"
CFG=$PROXY_DIR/p1.toml

admin_ready() { curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$1/v1/status"; }
start_proxy() { # <n>
  local port admin
  if [ "$1" = 1 ]; then port=$P1_PORT admin=$A1_PORT; else port=$P2_PORT admin=$A2_PORT; fi
  PROXY_TEST_PASSWORD=$PROXY_USER_PASSWORD "$PROXY_BIN" -c "$PROXY_DIR/p$1.toml" >>"$PROXY_DIR/p$1.log" 2>&1 &
  PROXY_PIDS[$1]=$!
  pgc_wait_until 15 pg_isready -q -h 127.0.0.1 -p "$port" -t 1 || fail "proxy $1 does not accept on $port"
  pgc_wait_until 15 admin_ready "$admin" ||
    fail "proxy $1 does not serve the admin API on $admin (is the admin API wired into pgcutover-proxy?)"
}
# "<state> <backend> <epoch>" of proxy <admin port>
proxy_status() {
  curl -s -m 3 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$1/v1/status" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["state"], d["backend"], d["epoch"])'
}
# Both proxies RUNNING on backend $1 (bounded wait: a resume may still be on its way).
both_running_on() {
  [ "$(proxy_status "$A1_PORT" | cut -d' ' -f1-2)" = "running $1" ] &&
    [ "$(proxy_status "$A2_PORT" | cut -d' ' -f1-2)" = "running $1" ]
}
# metric <admin port> <name with labels>: its value in the proxy's /metrics
metric() {
  curl -s -m 3 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$1/metrics" |
    awk -v m="$2" '$1 == m {print $2}'
}
# Both proxies carry a published lag reading in direction $1 with ok = $2.
lag_published() {
  local a
  for a in "$A1_PORT" "$A2_PORT"; do
    [ "$(metric "$a" "pgcutover_replication_direction{direction=\"$1\"}")" = 1 ] || return 1
    [ "$(metric "$a" pgcutover_replication_ok)" = "$2" ] || return 1
    python3 -c 'import sys,time; sys.exit(0 if abs(time.time() - float(sys.argv[1])) < 120 else 1)' \
      "$(metric "$a" pgcutover_replication_lag_measured_timestamp_seconds)" || return 1
  done
}
# Never split: both proxies on the same backend, whatever their state.
same_backend() {
  [ "$(proxy_status "$A1_PORT" | cut -d' ' -f2)" = "$(proxy_status "$A2_PORT" | cut -d' ' -f2)" ]
}

ctl() { # pgcutoverctl with the common options; output in $PROXY_DIR/ctl.out
  timeout 120 "$CTL_BIN" "$@" -c "$CFG" --subscriber-url "$TGT_ADMIN_URL" \
    --source-subscriber-url "$SRC_ADMIN_URL" --reverse-publisher-url "$TGT_ADMIN_URL" \
    --smoke-url "$(PROXY_PORT=$P1_PORT proxy_dsn require)" >"$PROXY_DIR/ctl.out" 2>"$PROXY_DIR/ctl.err"
}

# ---- data, schema, replication, validation ----
pgc_logical_fixture
start_proxy 1
start_proxy 2
pass "two proxies on the source, logical replication streaming, validated"

# ---- the lag metrics and alerts are fed by `lag --publish` ----
[ "$(metric "$A1_PORT" pgcutover_replication_lag_measured_timestamp_seconds)" = 0 ] ||
  fail "a lag reading before any was published"
"$CTL_BIN" lag --publish --method trigger -c "$CFG" >"$PROXY_DIR/ctl.out" 2>&1 && fail "lag of a method that is not running exited 0"
for a in "$A1_PORT" "$A2_PORT"; do
  [ "$(metric "$a" pgcutover_replication_lag_measured_timestamp_seconds)" != 0 ] &&
    [ "$(metric "$a" pgcutover_replication_ok)" = 0 ] || fail "a failed reading was not published as ok 0 to $a"
done
"$CTL_BIN" lag --publish --json -c "$CFG" >"$PROXY_DIR/ctl.out" 2>&1 || { cat "$PROXY_DIR/ctl.out"; fail "lag --publish"; }
lag_published forward 1 || fail "lag --publish: proxies' metrics do not carry the reading"
pass "lag --publish sets every proxy's replication metrics (ok 0 for a failed reading, then forward, ok 1)"

ctl flip --dry-run || { cat "$PROXY_DIR/ctl.out"; fail "flip --dry-run"; }
both_running_on source || fail "dry run changed a proxy"
pass "flip --dry-run checks everything and changes nothing"

# ---- a proxy unreachable at step 2 ----
rc=0
PGCUTOVER_TEST_HOOK_BEFORE_STEP="pause:kill -KILL ${PROXY_PIDS[2]}" ctl flip || rc=$?
[ $rc = 1 ] || fail "flip with proxy 2 gone exited $rc, expected 1"
wait "${PROXY_PIDS[2]}" 2>/dev/null || true
PROXY_PIDS[2]=""
[ "$(proxy_status "$A1_PORT" | cut -d' ' -f1-2)" = "running source" ] || fail "proxy 1 not resumed on the source"
[ "$(pgc_admin_psql src -XAtc "select coalesce(array_to_string(setconfig, ','), '') from pg_db_role_setting s join pg_roles r on r.oid = s.setrole where rolname = 'app'")" = "" ] ||
  fail "the source is still fenced after the abort"
start_proxy 2
both_running_on source || fail "proxy 2 did not come back on the source"
pass "proxy unreachable at step 2: flip aborted (exit 1), proxy 1 resumed on the source, fence removed"

# ---- the controller killed after each step ----
# (resume: like flip, the reverse subscription is still to be made; subscribe: everything done.)
for step in preconditions pause fence catch_up sequences replication flip subscribe; do
  rc=0
  PGCUTOVER_CRASH_AFTER_STEP=$step ctl flip || rc=$?
  [ $rc = 99 ] || fail "crash after $step: exit $rc, expected 99"
  same_backend || fail "crash after $step: proxies split ($(proxy_status "$A1_PORT") / $(proxy_status "$A2_PORT"))"
  ctl recover || { cat "$PROXY_DIR/ctl.out"; fail "recover after a crash after $step"; }
  action=$(grep -o 'roll_back\|finish' "$PROXY_DIR/ctl.out" | head -1)
  if [ "$action" = finish ]; then
    pgc_wait_until 5 both_running_on target || fail "recover ($step) finished but proxies are not running on target"
    ctl revert || { cat "$PROXY_DIR/ctl.out"; fail "revert after recover ($step)"; }
  fi
  pgc_wait_until 5 both_running_on source || fail "after crash at $step: proxies not running on the source"
  echo "   crash after $step: recover chose $action"
done
pass "controller killed after every step: never split, recover finished or rolled back"

# ---- the flip under pgbench ----
cat >"$PROXY_DIR/ledger.sql" <<'SQL'
INSERT INTO ledger (client) VALUES (:client_id);
SQL
base=$(pgc_admin_psql src -XAtc "select count(*) from ledger")
hist0=$(pgc_admin_psql src -XAtc "select count(*) from pgbench_history")
export PGPASSWORD=$PROXY_USER_PASSWORD PGSSLMODE=require
run_bench() { # <port> <log> <seconds>: per-transaction latencies in <log>.tx.*
  # Half the transactions are the one-statement ledger insert: the figure check below needs
  # inserts among the clients the pause holds (with 1 in 10, a flip could hold none).
  timeout 120 pgbench -n -c 8 -j 1 -T "$3" -b tpcb-like@1 -f "$PROXY_DIR/ledger.sql@1" \
    -l --log-prefix="$2.tx" -h 127.0.0.1 -p "$1" -U app app >"$2" 2>&1
}
run_bench "$P1_PORT" "$PROXY_DIR/bench1.log" 10 &
b1=$!
run_bench "$P2_PORT" "$PROXY_DIR/bench2.log" 10 &
b2=$!
pgc_wait_until 10 bash -c "[ \$(PGPASSWORD= psql -XAtd '$SRC_ADMIN_URL' -c 'select count(*) from ledger') -gt $((base + 50)) ]" ||
  fail "pgbench does not write"
# A session of the app role that does not go through the proxies (a console, a worker the
# proxies never saw): the fence must end it, while it spares the proxies' pooled sessions.
PGSSLMODE=require timeout 90 psql -XAt "$SRC_URL" -c "select pg_sleep(80) /* direct */" >"$PROXY_DIR/direct.out" 2>&1 &
direct=$!
pgc_wait_until 10 bash -c "[ -n \"\$(PGPASSWORD= psql -XAtd '$SRC_ADMIN_URL' -c \"select pid from pg_stat_activity where query like '%/* direct */%' and pid <> pg_backend_pid()\")\" ]" ||
  fail "the direct session did not start: $(cat "$PROXY_DIR/direct.out")"
direct_pid=$(pgc_admin_psql src -XAtc "select pid from pg_stat_activity where query like '%/* direct */%' and pid <> pg_backend_pid()")
ctl flip --json || { cat "$PROXY_DIR/ctl.out"; fail "flip under load"; }
wait $direct && fail "the direct app session on the source survived the fence: $(cat "$PROXY_DIR/direct.out")"
grep -q "terminating connection due to administrator command" "$PROXY_DIR/direct.out" ||
  fail "the direct session ended otherwise than by the fence: $(cat "$PROXY_DIR/direct.out")"
python3 - "$PROXY_DIR/ctl.out" "$direct_pid" <<'PY' || fail "the fence did not spare exactly the proxies' quiet sessions"
import json, sys
rep, direct = json.load(open(sys.argv[1])), int(sys.argv[2])
steps = {s["step"]: s for s in rep["steps"]}
quiet = [p for a in steps["pause"]["data"]["proxies"] for p in a.get("quiet_server_pids", [])]
fence = steps["fence"]["data"]
assert len(quiet) >= 2 and len(set(quiet)) == len(quiet), f"quiet pids {quiet}"
assert direct not in quiet, f"the direct session {direct} was reported quiet"
assert fence["proxy_sessions_spared"] == len(quiet), fence
assert fence["sessions_terminated"] >= 1, fence
PY
pause_ms=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["write_pause_ms"]))' "$PROXY_DIR/ctl.out")
wait $b1 || { cat "$PROXY_DIR/bench1.log"; fail "pgbench through proxy 1 failed"; }
wait $b2 || { cat "$PROXY_DIR/bench2.log"; fail "pgbench through proxy 2 failed"; }
for l in "$PROXY_DIR"/bench[12].log; do
  grep -q "number of failed transactions: 0 " "$l" || { cat "$l"; fail "failed transactions in $l"; }
done
want=$((base + $(acked "$PROXY_DIR/bench1.log") + $(acked "$PROXY_DIR/bench2.log")))
want_hist=$((hist0 + $(tpcb "$PROXY_DIR/bench1.log") + $(tpcb "$PROXY_DIR/bench2.log")))
got=$(pgc_admin_psql tgt -XAtc "select count(*) from ledger")
got_distinct=$(pgc_admin_psql tgt -XAtc "select count(distinct id) from ledger")
got_hist=$(pgc_admin_psql tgt -XAtc "select count(*) from pgbench_history")
[ "$got" = "$want" ] && [ "$got_distinct" = "$want" ] || fail "ledger on target: $got rows ($got_distinct distinct), acknowledged $want"
[ "$got_hist" = "$want_hist" ] || fail "pgbench_history on target: $got_hist rows, acknowledged $want_hist"
# The clients' own worst wait, on 2 shared cores with 16 writers, two proxies and both
# databases: 650-1000 ms measured (docs/cutover.md "Figures"); a regression guard, not the goal.
[ "$pause_ms" -lt 2000 ] || { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); [print(s[\"step\"], s.get(\"ms\"), json.dumps(s.get(\"data\",{}).get(\"proxies\",\"\"))[:600]) for s in r[\"steps\"]]" "$PROXY_DIR/ctl.out" >&2; fail "write pause $pause_ms ms (>= 2 s)"; }
both_running_on target || fail "not running on target after the flip"
pass "flip under pgbench (16 clients, 2 proxies): the fence ended a direct app session and spared the proxies' quiet ones; 0 failed, ledger $got/$want rows, history $got_hist/$want_hist, write pause $pause_ms ms"

# The figures reconcile as docs/cutover.md ("Figures") defines them. The write pause is what
# the clients saw: the worst wait any proxy measured for a held client, and no pgbench insert
# that overlapped the pause (one statement, so its latency is its wait) took more than 10%
# longer than it. Each proxy's
# gate closed (gate_closed_ms in the flip's JSON and in its log: one number) lies inside the
# controller's span, its drain inside its gate closed, and the steps add up to the span.
python3 - "$PROXY_DIR/ctl.out" "$PROXY_DIR/p1.log" "$PROXY_DIR/p2.log" "$PROXY_DIR" <<'PY' || fail "the flip's figures do not reconcile"
import glob, json, re, sys
rep = json.load(open(sys.argv[1]))
pause, span = rep["write_pause_ms"], rep["controller_span_ms"]
answers = []
def walk(x):
    if isinstance(x, dict):
        if x.get("gate_closed_ms", 0) > 0:
            answers.append(x)
        for v in x.values(): walk(v)
    elif isinstance(x, list):
        for v in x: walk(v)
walk(rep["steps"])
assert len(answers) == 2, "expected the gate-closed figure of 2 proxies, got %s" % answers
logged = []
for log in sys.argv[2:4]:
    lines = [l for l in open(log) if "event=cutover_flipped" in l]
    g = int(re.search(r"gate_closed_ms=(\d+)", lines[-1]).group(1))
    d = int(re.search(r"drain_ms=(\d+)", lines[-1]).group(1))
    logged.append((g, d))
for a in answers:
    assert a["gate_closed_ms"] <= span + 1, "gate closed %s ms > controller span %s ms" % (a["gate_closed_ms"], span)
    assert a.get("drain_ms", 0) <= a["gate_closed_ms"], a
assert sorted(a["gate_closed_ms"] for a in answers) == sorted(g for g, _ in logged), (answers, logged)
assert all(d <= g for g, d in logged), logged
worst = max(a.get("client_wait_worst_ms", 0) for a in answers)
assert pause == worst, "write_pause_ms %s is not the proxies' worst client wait %s" % (pause, worst)
assert rep["clients_held"] >= 1, "16 clients writing and none held by the pause?"
steps = sum(s.get("ms", 0) for s in rep["steps"])
assert steps + 1 >= span, "steps add up to %s ms < controller span %s ms" % (steps, span)
# The pause window, from the proxies' logs: the first gate closing to the last reopening.
import datetime
def log_time(line):
    ts = re.search(r"ts=(\S+)Z", line).group(1)
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()
opened, closed = [], []
for log, (gate, _) in zip(sys.argv[2:4], logged):
    lines = open(log).readlines()
    closed.append(log_time([l for l in lines if "event=cutover_pausing" in l][-1]))
    opened.append(closed[-1] + gate / 1000.0)
window = (min(closed), max(opened))
# pgbench -l: client transaction latency_us script_no epoch us (its end); script 1 is
# ledger.sql. The inserts that overlapped the window: the pause is theirs to see. (Outside it,
# an insert on two shared cores may take as long as a short pause for reasons of its own.)
inserts, overall = [], 0.0
for f in glob.glob(sys.argv[4] + "/bench[12].log.tx*"):
    for line in open(f):
        c = line.split()
        if len(c) >= 6 and c[3] == "1":
            lat = int(c[2]) / 1000.0
            end = int(c[4]) + int(c[5]) / 1e6
            overall = max(overall, lat)
            if end - lat / 1000.0 <= window[1] and end >= window[0]:
                inserts.append((lat, end - lat / 1000.0 - window[0]))
assert inserts, "no insert of pgbench's per-transaction log overlapped the pause"
seen, started = max(inserts)
# 10%, and at least 50 ms: pgbench -j 1 reads the answers of its 8 clients, released together,
# one after another, so the last one's latency includes its own thread's turn.
assert pause >= min(0.9 * seen, seen - 50), (
    "write pause %.0f ms, but an insert that overlapped the pause window (%.0f ms; the insert "
    "started %.3f s after the first gate closed) took %.0f ms" %
    (pause, (window[1] - window[0]) * 1000, started, seen))
print("write pause %.0f ms (held %d), slowest insert across it %.0f ms (of the whole run %.0f ms); gate closed %s ms; span %.0f ms; steps %s"
      % (pause, rep["clients_held"], seen, overall, [g for g, _ in logged], span,
         ", ".join("%s %.0f" % (s["step"], s.get("ms", 0)) for s in rep["steps"])))
print("catch-up: %s" % [s for s in rep["steps"] if s["step"] == "catch_up"][0].get("data", {}).get("summary"))
PY
pass "the flip's figures reconcile: write pause = the clients' worst wait >= 90% of the slowest insert across the pause; gate closed (answers = logs) <= controller span <= steps"

# ---- after the flip, lag, replicate status and status watch the reverse link ----
after_flip() { # <args...>: pgcutoverctl with the config and the admin URLs it needs
  timeout 60 "$CTL_BIN" "$@" -c "$CFG" >"$PROXY_DIR/ctl.out" 2>"$PROXY_DIR/ctl.err"
}
after_flip lag --json || { cat "$PROXY_DIR/ctl.out" "$PROXY_DIR/ctl.err"; fail "lag after the flip"; }
python3 - "$PROXY_DIR/ctl.out" <<'PY' || fail "lag after the flip: $(cat "$PROXY_DIR/ctl.out")"
import json, sys
lag = json.load(open(sys.argv[1]))
assert lag["ok"] and lag["direction"] == "reverse" and lag["bytes"] is not None, lag
PY
after_flip replicate status --subscriber-url "$TGT_ADMIN_URL" ||
  { cat "$PROXY_DIR/ctl.out" "$PROXY_DIR/ctl.err"; fail "replicate status after the flip"; }
grep -q "reverse (target -> source.*subscription pgcutover_reverse on the source enabled, apply worker running" "$PROXY_DIR/ctl.out" ||
  fail "replicate status after the flip: $(cat "$PROXY_DIR/ctl.out")"
after_flip status --json || true # exit code follows the whole picture; the lag part must be right
python3 - "$PROXY_DIR/ctl.out" <<'PY' || fail "status after the flip: $(cat "$PROXY_DIR/ctl.out")"
import json, sys
st = json.load(open(sys.argv[1]))
assert st["lag"]["ok"] and st["lag"]["direction"] == "reverse", st["lag"]
PY
after_flip lag --publish || { cat "$PROXY_DIR/ctl.out" "$PROXY_DIR/ctl.err"; fail "lag --publish after the flip"; }
lag_published reverse 1 || fail "after the flip, the published direction is not reverse"
pass "after the flip: lag, replicate status and status report the reverse link, healthy; lag --publish says reverse"

# ---- writes on the target, then revert: nothing lost ----
run_bench "$P1_PORT" "$PROXY_DIR/bench3.log" 3 || { cat "$PROXY_DIR/bench3.log"; fail "pgbench on target"; }
want=$((want + $(acked "$PROXY_DIR/bench3.log")))
ctl revert || { cat "$PROXY_DIR/ctl.out"; fail "revert"; }
got=$(pgc_admin_psql src -XAtc "select count(*) from ledger")
[ "$got" = "$want" ] || fail "ledger on source after revert: $got rows, acknowledged $want"
both_running_on source || fail "not running on source after revert"
pass "revert after writes on the target: ledger $got/$want rows on the source"
