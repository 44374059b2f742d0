#!/usr/bin/env bash
# Fleet mode (docs/fleet.md): ten proxies with [fleet], nine with no admin port, a controller whose
# config lists only the tenth (commanded over HTTP, once). They register in the databases,
# `pgcutoverctl flip` moves all of them under pgbench (tpcb-like, and connect-per-transaction)
# with 0 failed transactions and every acknowledged ledger row on the target once; the fence
# leaves their control sessions alone;
# a proxy started after the flip with the unchanged config serves its first query from the
# target (the authority in the databases, not its state file); `revert` brings all back; with
# the controller killed while the fleet is paused, a proxy started meanwhile comes up paused and
# `recover` resumes everyone; a proxy that missed a flip moves itself on its first refused write;
# a proxy SIGKILLed while paused makes the run roll back and leaves the fleet.
. "$(dirname "$0")/../lib/proxy_harness.bash"

CTL_BIN=${PGCUTOVER_CTL_BIN:-$(dirname "$PROXY_BIN")/../control/pgcutoverctl}
[ -x "$CTL_BIN" ] || fail "pgcutoverctl not built: $CTL_BIN"
# Ten proxies in the release run; four under the sanitizers (the same code paths, a third of the time).
N=${FLEET_TEST_PROXIES:-$([ -n "${PGCUTOVER_SANITIZED:-}" ] && echo 4 || echo 10)}
export PROXY_THREADS=${PROXY_THREADS:-1} # ten proxies on two cores
PROXY_FAILURE_LOGS=('p*.log' 'ctl.out' 'ctl.err' 'bench*.log')

pgc_start src heroku --logical >/dev/null
pgc_start tgt rds >/dev/null
export PROXY_TEST_SOURCE_URL=$SRC_URL PROXY_TEST_TARGET_URL=$TGT_URL
export PROXY_TEST_PASSWORD=$PROXY_USER_PASSWORD
JOURNAL=$PROXY_DIR/flip.journal

# The controller's config: the same backends; [[control.proxies]] names only proxy N, which
# also has an admin API (a member reached both ways is commanded once, over HTTP).
TOKEN="tok-$$-$RANDOM"
export PGCUTOVER_TEST_TOKEN=$TOKEN
ADMIN_PORT=$(pgc_free_port)
PROXY_PORT=$(pgc_free_port) proxy_write_config "$PROXY_DIR/ctl.toml" transaction 10 require "
[control]
journal = \"$JOURNAL\"

[[control.proxies]]
admin_url = \"http://127.0.0.1:$ADMIN_PORT\"
token = \"\${PGCUTOVER_TEST_TOKEN}\"
"
PORTS=()
write_fleet_config() { # <n> [reconnect_interval]
  local admin=""
  [ "$1" = "$N" ] && admin="
[admin]
listen_port = $ADMIN_PORT
token = \"\${PGCUTOVER_TEST_TOKEN}\"
"
  proxy_write_fleet_config "$1" "dyno-$1" "${2:-0.5}" "
[cutover]
max_pause = 30
$admin"
}
start_proxy() { # <n>
  "$PROXY_BIN" -c "$PROXY_DIR/p$1.toml" >>"$PROXY_DIR/p$1.log" 2>&1 &
  PROXY_PIDS[$1]=$!
  pgc_wait_until 15 pg_isready -q -h 127.0.0.1 -p "${PORTS[$1]}" -t 1 || fail "proxy $1 does not accept"
}
ctl() { # pgcutoverctl with the controller's config; output in ctl.out / ctl.err
  timeout 120 "$CTL_BIN" "$@" -c "$PROXY_DIR/ctl.toml" >"$PROXY_DIR/ctl.out" 2>"$PROXY_DIR/ctl.err"
}
# fleet_is <count> <state> <backend>: that many live members, every live one in that state/backend
fleet_is() {
  ctl fleet --json || return 1
  python3 - "$PROXY_DIR/ctl.out" "$@" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); n, state, backend = int(sys.argv[2]), sys.argv[3], sys.argv[4]
live = [m for m in d["members"] if m["live"]]
sys.exit(0 if len(live) == n and all(m["state"] == state and m["backend"] == backend for m in live) else 1)
PY
}

# ---- data, schema, replication, validation ----
pgc_logical_fixture

# ---- the fleet registers ----
ctl fleet && fail "fleet listed members before any database had the schema"
grep -q "fleet setup" "$PROXY_DIR/ctl.err" || fail "no hint at fleet setup: $(cat "$PROXY_DIR/ctl.err")"
ctl fleet setup || fail "fleet setup: $(cat "$PROXY_DIR/ctl.err")"
ctl fleet setup || fail "fleet setup is not idempotent: $(cat "$PROXY_DIR/ctl.err")"
for i in $(seq 1 "$N"); do
  write_fleet_config "$i"
  [ "$i" != "$N" ] && grep -q "^\[admin\]" "$PROXY_DIR/p$i.toml" && fail "the fleet proxies must have no admin API"
  start_proxy "$i"
done
pgc_wait_until 20 fleet_is "$N" running source || fail "the fleet did not register: $(cat "$PROXY_DIR/ctl.out")"
ctl status --json || true # its exit code follows the whole picture
python3 - "$PROXY_DIR/ctl.out" "$N" <<'PY' || fail "status does not list the fleet: $(cat "$PROXY_DIR/ctl.out")"
import json, sys
st = json.load(open(sys.argv[1]))
assert len(st["fleet"]) == int(sys.argv[2]) and all(m["state"] == "running" for m in st["fleet"]), st.get("fleet")
assert "configure the proxies" not in st["next_step"], st["next_step"]
PY
ctl lag --publish || fail "lag --publish to the fleet: $(cat "$PROXY_DIR/ctl.err")"
for i in $(seq 1 $((N - 1))); do # proxy N gets it over HTTP
  grep -q 'command="POST /v1/replication_lag" status=200' "$PROXY_DIR/p$i.log" || fail "proxy $i got no lag reading"
done
pass "$N proxies with [fleet] ($((N - 1)) with no admin port) registered in the databases; status lists them, lag --publish reaches them"

# ---- pause and resume, outside a flip ----
ctl pause --json --max-pause 20 || fail "pause: $(cat "$PROXY_DIR/ctl.out" "$PROXY_DIR/ctl.err")"
pgc_wait_until 10 fleet_is "$N" paused source || fail "not every proxy paused: $(cat "$PROXY_DIR/ctl.out")"
psql -XAt "host=127.0.0.1 port=${PORTS[$N]} user=app dbname=app sslmode=require password=$PROXY_USER_PASSWORD" \
  -c "insert into ledger (client) values (-1)" >"$PROXY_DIR/held.out" 2>&1 &
held=$!
held_now() {
  curl -s -m 3 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/v1/status" |
    python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["held_clients"] >= 1 else 1)'
}
pgc_wait_until 10 held_now || fail "the insert through proxy $N is not held"
ctl resume --json || fail "resume: $(cat "$PROXY_DIR/ctl.out" "$PROXY_DIR/ctl.err")"
wait $held || fail "the held insert failed: $(cat "$PROXY_DIR/held.out")"
python3 - "$PROXY_DIR/ctl.out" <<'PY' || fail "resume's report: $(cat "$PROXY_DIR/ctl.out")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["ok"] and r["clients_held"] >= 1 and r["write_pause_ms"] > 0, r
PY
pgc_wait_until 10 fleet_is "$N" running source || fail "not every proxy resumed: $(cat "$PROXY_DIR/ctl.out")"
pass "pause and resume reach every proxy (fleet and admin API); a held insert waited and went through"

# ---- the flip under load, through the databases only ----
base=$(pgc_admin_psql src -XAtc "select count(*) from ledger")
export PGPASSWORD=$PROXY_USER_PASSWORD PGSSLMODE=require
ledger_load "$PROXY_DIR/bench1.log" "${PORTS[1]}" 4 8
b1=$!
ledger_load "$PROXY_DIR/bench2.log" "${PORTS[2]}" 4 8 -C
b2=$!
pgc_wait_until 10 bash -c "[ \$(PGPASSWORD= psql -XAtd '$SRC_ADMIN_URL' -c 'select count(*) from ledger') -gt $((base + 20)) ]" ||
  fail "pgbench does not write"
ctl flip --json --subscriber-url "$TGT_ADMIN_URL" --source-subscriber-url "$SRC_ADMIN_URL" \
  --reverse-publisher-url "$TGT_ADMIN_URL" || { cat "$PROXY_DIR/ctl.out" "$PROXY_DIR/ctl.err"; fail "flip of the fleet"; }
cp "$PROXY_DIR/ctl.out" "$PROXY_DIR/flip.json"
wait $b1 || fail "pgbench through proxy 1 failed"
wait $b2 || fail "pgbench -C through proxy 2 failed"
for l in "$PROXY_DIR"/bench[12].log; do
  grep -q "number of failed transactions: 0 " "$l" || fail "failed transactions in $l"
done
want=$((base + $(acked "$PROXY_DIR/bench1.log") + $(acked "$PROXY_DIR/bench2.log")))
got=$(pgc_admin_psql tgt -XAtc "select count(*) from ledger")
got_distinct=$(pgc_admin_psql tgt -XAtc "select count(distinct id) from ledger")
[ "$got" = "$want" ] && [ "$got_distinct" = "$want" ] || fail "ledger on target: $got rows ($got_distinct distinct), acknowledged $want"
read -r moved pause_ms < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
flip = [s for s in r["steps"] if s["step"] == "flip"][0]
ps = flip["data"]["proxies"]
fleet = sum(1 for p in ps if p["ok"] and p["admin_url"].startswith("fleet:"))
http = sum(1 for p in ps if p["ok"] and p["admin_url"].startswith("http://"))
print(f"{fleet}+{http}/{len(ps)}", int(r["write_pause_ms"]))' "$PROXY_DIR/flip.json")
[ "$moved" = "$((N - 1))+1/$N" ] || fail "the flip moved $moved (fleet+admin/all), not $((N - 1))+1/$N"
grep -q 'command="POST /v1/flip"' "$PROXY_DIR/p$N.log" && fail "proxy $N, listed by its admin API, was also flipped through the fleet: $(grep fleet_command "$PROXY_DIR/p$N.log") $(pgc_psql src -XAtc "select key, target, except_members from pgcutover.fleet_command")"
pgc_wait_until 10 fleet_is "$N" running target || fail "after the flip: $(cat "$PROXY_DIR/ctl.out")"
auth=$(pgc_admin_psql src -XAtc "select backend || ' ' || epoch from pgcutover.fleet_authority")
[ "$auth" = "target 1" ] || fail "authority on the source: '$auth' (flip notes: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("notes"))' "$PROXY_DIR/flip.json"))"
auth=$(pgc_admin_psql tgt -XAtc "select backend || ' ' || epoch from pgcutover.fleet_authority")
[ "$auth" = "target 1" ] || fail "authority on the target: '$auth'"
pass "flip of $N proxies ($((N - 1)) through the databases, 1 by its admin API, once) under pgbench (plain and -C): 0 failed, ledger $got/$want, write pause $pause_ms ms, authority target/1 in both"

# ---- a proxy that starts after the flip, config unchanged ----
write_fleet_config $((N + 1))
grep -q 'initial_backend' "$PROXY_DIR/p$((N + 1)).toml" && fail "the late proxy's config names a backend"
start_proxy $((N + 1))
port=$(psql -XAt "host=127.0.0.1 port=${PORTS[$((N + 1))]} user=app dbname=app sslmode=require" -c "select current_setting('port')") ||
  fail "first query through the late proxy"
[ "$port" = "$TGT_PORT" ] || fail "the late proxy's first query ran on port $port, not the target's $TGT_PORT"
grep -q '"fleet_authority_adopted"\|fleet_authority_adopted' "$PROXY_DIR/p$((N + 1)).log" || fail "no fleet_authority_adopted in the late proxy's log"
pgc_wait_until 10 fleet_is $((N + 1)) running target || fail "the late proxy did not join: $(cat "$PROXY_DIR/ctl.out")"
pass "a proxy started after the flip with the same config serves its first query from the target"

# ---- revert, the same way ----
ctl revert --json --subscriber-url "$TGT_ADMIN_URL" --source-subscriber-url "$SRC_ADMIN_URL" \
  --reverse-publisher-url "$TGT_ADMIN_URL" || { cat "$PROXY_DIR/ctl.out" "$PROXY_DIR/ctl.err"; fail "revert of the fleet"; }
pgc_wait_until 10 fleet_is $((N + 1)) running source || fail "after the revert: $(cat "$PROXY_DIR/ctl.out")"
port=$(psql -XAt "host=127.0.0.1 port=${PORTS[1]} user=app dbname=app sslmode=require" -c "select current_setting('port')")
[ "$port" = "$SRC_PORT" ] || fail "after the revert proxy 1 serves from port $port"
pass "revert moved all $((N + 1)) fleet proxies back to the source"

# ---- the controller dies while the fleet is paused; a proxy starts meanwhile ----
ADMIN_OPTS=(--subscriber-url "$TGT_ADMIN_URL" --source-subscriber-url "$SRC_ADMIN_URL" --reverse-publisher-url "$TGT_ADMIN_URL")
rc=0
PGCUTOVER_CRASH_AFTER_STEP=pause ctl flip "${ADMIN_OPTS[@]}" || rc=$?
[ $rc = 99 ] || fail "crash after pause: exit $rc, expected 99 ($(cat "$PROXY_DIR/ctl.err"))"
pgc_wait_until 10 fleet_is $((N + 1)) paused source || fail "the fleet is not paused after the crash: $(cat "$PROXY_DIR/ctl.out")"
write_fleet_config $((N + 2))
start_proxy $((N + 2))
grep -q "fleet_command" "$PROXY_DIR/p$((N + 2)).log" || fail "the proxy started mid-flip ran no command before accepting"
pgc_wait_until 10 fleet_is $((N + 2)) paused source || fail "the proxy started mid-flip is not paused: $(cat "$PROXY_DIR/ctl.out")"
ctl recover "${ADMIN_OPTS[@]}" || { cat "$PROXY_DIR/ctl.out" "$PROXY_DIR/ctl.err"; fail "recover after the crash"; }
pgc_wait_until 10 fleet_is $((N + 2)) running source || fail "after recover: $(cat "$PROXY_DIR/ctl.out")"
psql -XAt "host=127.0.0.1 port=${PORTS[$((N + 2))]} user=app dbname=app sslmode=require" -c "insert into ledger (client) values (0)" >/dev/null ||
  fail "the proxy started mid-flip does not serve writes after recover"
pass "controller killed while the fleet was paused: a proxy started meanwhile came up paused (told the phase), recover resumed all $((N + 2))"

# ---- a proxy that missed a flip moves itself when the fenced backend refuses a write ----
X=$((N + 3))
write_fleet_config "$X" 120 # it would not reconnect by itself within this test
start_proxy "$X"
pgc_wait_until 10 fleet_is $((N + 3)) running source || fail "proxy $X did not join: $(cat "$PROXY_DIR/ctl.out")"
kill -STOP "${PROXY_PIDS[$X]}"
for db in src tgt; do
  pgc_admin_psql $db -XAtqc "select pg_terminate_backend(l.pid) from pg_locks l join pgcutover.fleet_member m on l.objid = m.lock_key where l.locktype = 'advisory' and l.classid = 1885823861 and l.objsubid = 2 and m.name = 'dyno-$X'" >/dev/null
done
pgc_wait_until 10 fleet_is $((N + 2)) running source || fail "proxy $X still live: $(cat "$PROXY_DIR/ctl.out")"
ctl flip --json "${ADMIN_OPTS[@]}" || { cat "$PROXY_DIR/ctl.out" "$PROXY_DIR/ctl.err"; fail "flip without proxy $X"; }
kill -CONT "${PROXY_PIDS[$X]}"
x_write() {
  [ "$(psql -XAt "host=127.0.0.1 port=${PORTS[$X]} user=app dbname=app sslmode=require" \
    -c "insert into ledger (client) values ($X) returning current_setting('port')" 2>/dev/null | head -1)" = "$TGT_PORT" ]
}
pgc_wait_until 15 x_write || fail "proxy $X never wrote on the target: $(grep -E 'fleet_|cutover_' "$PROXY_DIR/p$X.log" | tail -8)"
grep -q "fleet_authority_recheck" "$PROXY_DIR/p$X.log" || fail "proxy $X moved without rechecking the authority"
grep -q "fleet_authority_follow" "$PROXY_DIR/p$X.log" || fail "proxy $X did not follow the authority"
pass "a proxy that missed the flip (control sessions cut, no reconnect due for 2 min) moved to the target on its first refused write"

# ---- a member SIGKILLed while paused: the run aborts as for an unreachable proxy ----
rc=0
revert_started=${EPOCHREALTIME/./}
PGCUTOVER_TEST_HOOK_BEFORE_STEP="fence:kill -KILL ${PROXY_PIDS[3]}" \
  ctl revert --json --admin-timeout 2 "${ADMIN_OPTS[@]}" || rc=$?
revert_s=$(pgc_seconds_since "$revert_started")
[ $rc = 1 ] || fail "revert with a member killed while paused exited $rc, expected 1: $(cat "$PROXY_DIR/ctl.err")"
python3 - "$PROXY_DIR/ctl.out" <<'PY' || fail "the revert's report: $(head -c 1500 "$PROXY_DIR/ctl.out")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["outcome"] == "rolled_back", r["outcome"]
assert "fleet:dyno-3" in r.get("error", ""), r.get("error")
# The clients' pause ran through the flip step and the rollback: so does the span it reports.
flip = [s for s in r["steps"] if s["step"] == "flip"][0]
assert r["controller_span_ms"] > flip["ms"], (r["controller_span_ms"], flip["ms"])
PY
pgc_wait_until 10 fleet_is $((N + 2)) running target || fail "after the aborted revert: $(cat "$PROXY_DIR/ctl.out")"
ctl fleet --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); m=[x for x in d["members"] if x["name"]=="dyno-3"][0]; sys.exit(0 if not m["live"] else 1)' "$PROXY_DIR/ctl.out" ||
  fail "the SIGKILLed proxy is still listed live"
pass "a member SIGKILLed while paused: the revert rolled back in $revert_s s (admin timeout 2 s), the other $((N + 2)) run on the target, the dead one is listed as vanished"

# Nothing the fleet did made a proxy log a bug (a shard asked before it ran, say).
bugs=$(grep -l "event=bug_" "$PROXY_DIR"/p*.log || true)
[ -z "$bugs" ] || fail "bug events in $bugs: $(grep -h -B8 -A3 "event=bug_" $bugs | head -40)"
pass "no proxy logged a bug event"
