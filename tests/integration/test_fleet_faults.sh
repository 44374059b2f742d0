#!/usr/bin/env bash
# Fleet mode (docs/fleet.md) under four faults a real cutover can meet, with proxies that take
# their commands through the databases only:
#  1. the source dies right after the fleet is paused (stopped in immediate mode between the
#     pause and the fence, by the flip's test hook): the flip stops at the fence (the first
#     step that needs the source), rolls back at once and resumes every proxy on the source
#     through the target's channel; nothing reaches the target. Once the source is back,
#     clients write through every proxy again, the fleet is whole at epoch 0 and no
#     acknowledged ledger row is lost;
#  2. two controllers (two configs, two journals: two operators) start `flip` at the same
#     moment, and later a second `revert` starts inside a first one (between its step 1 and its
#     pause), under pgbench: exactly one run moves the fleet, the other is refused by the
#     cutover lock and leaves nothing paused, fenced, half-swapped or journaled; 0 failed
#     transactions, every acknowledged ledger row on both sides;
#  3. a fourth proxy's control sessions are cut (in both databases) during a flip's pause and it
#     would not reconnect for two minutes: its dead-man timer resumes it, it reconnects at once,
#     reads the authority and follows it; the run ends, flipped or rolled back, with every proxy
#     on one backend at one epoch matching the authority, 0 failed transactions and every
#     acknowledged row there;
#  4. a controller killed after its flip step, and another killed while the fleet is paused:
#     `recover` run with the other controller's config and journal (another machine) finds the
#     run in the databases and finishes or rolls it back; the dead one's journal, recovered
#     later, learns that the run was ended elsewhere.
. "$(dirname "$0")/../lib/proxy_harness.bash"

CTL_BIN=${PGCUTOVER_CTL_BIN:-$(dirname "$PROXY_BIN")/../control/pgcutoverctl}
[ -x "$CTL_BIN" ] || fail "pgcutoverctl not built: $CTL_BIN"
N=${FLEET_TEST_PROXIES:-3}
export PROXY_THREADS=${PROXY_THREADS:-1}
PROXY_FAILURE_LOGS=('p*.log' 'ctl*.out' 'ctl*.err' 'bench*.log')
T0=$(date +%s.%N)
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

pgc_start src heroku --logical >/dev/null
pgc_start tgt rds >/dev/null
export PROXY_TEST_SOURCE_URL=$SRC_URL PROXY_TEST_TARGET_URL=$TGT_URL
export PROXY_TEST_PASSWORD=$PROXY_USER_PASSWORD

# Two controller configs: the same backends, no [[control.proxies]], each its own journal (two
# operators on two laptops).
for c in ctl ctl2; do
  PROXY_PORT=$(pgc_free_port) proxy_write_config "$PROXY_DIR/$c.toml" transaction 10 require "
[control]
journal = \"$PROXY_DIR/$c.journal\"
"
done
PORTS=()
for i in $(seq 1 "$N"); do
  proxy_write_fleet_config "$i" "dyno-$i" 0.5 "
[cutover]
max_pause = 30
"
done
start_proxy() { # <n>
  "$PROXY_BIN" -c "$PROXY_DIR/p$1.toml" >>"$PROXY_DIR/p$1.log" 2>&1 &
  PROXY_PIDS[$1]=$!
  pgc_wait_until 15 pg_isready -q -h 127.0.0.1 -p "${PORTS[$1]}" -t 1 || fail "proxy $1 does not accept"
}
ctl() { # [ctl|ctl2] pgcutoverctl args...: output in <config>.out / <config>.err
  local c=ctl
  case "$1" in ctl | ctl2) c=$1 && shift ;; esac
  timeout 120 "$CTL_BIN" "$@" -c "$PROXY_DIR/$c.toml" >"$PROXY_DIR/$c.out" 2>"$PROXY_DIR/$c.err"
}
# fleet_is <state> <backend>: all N members live, each in that state on that backend, one epoch
# (printed in $PROXY_DIR/epoch).
fleet_is() {
  ctl fleet --json || return 1
  python3 - "$PROXY_DIR/ctl.out" "$N" "$@" >"$PROXY_DIR/epoch" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); n, state, backend = int(sys.argv[2]), sys.argv[3], sys.argv[4]
live = [m for m in d["members"] if m["live"]]
ok = len(live) == n and all(m["state"] == state and m["backend"] == backend for m in live)
ok = ok and len({m["epoch"] for m in live}) == 1
print(live[0]["epoch"] if ok else "")
sys.exit(0 if ok else 1)
PY
}
# writes_on <n> <port>: an insert through proxy n is acknowledged by the server on that port.
writes_on() {
  [ "$(timeout 10 psql -XAtq "host=127.0.0.1 port=${PORTS[$1]} user=app dbname=app sslmode=require connect_timeout=3 password=$PROXY_USER_PASSWORD" \
    -c "insert into ledger (client) values (-$1) returning current_setting('port')" 2>/dev/null)" = "$2" ]
}
ADMIN_OPTS=(--subscriber-url "$TGT_ADMIN_URL" --source-subscriber-url "$SRC_ADMIN_URL" --reverse-publisher-url "$TGT_ADMIN_URL")
pgc_logical_fixture
ctl fleet setup || fail "fleet setup: $(cat "$PROXY_DIR/ctl.err")"
for i in $(seq 1 "$N"); do start_proxy "$i"; done
pgc_wait_until 20 fleet_is running source || fail "the fleet did not register: $(cat "$PROXY_DIR/ctl.out")"
pass "$N proxies with [fleet] (no admin port) registered ($(since "$T0") s in)"

# ---- 1. the source dies right after the pause ----
# A writer through each proxy, one insert per connection; the ids acknowledged are kept.
writer() { # <n>
  local id
  # Also ends when the test itself is gone (a failed check exits without stop_writers).
  while [ ! -e "$PROXY_DIR/stop_writers" ] && kill -0 $$ 2>/dev/null; do
    if id=$(timeout 20 psql -XAtq "host=127.0.0.1 port=${PORTS[$1]} user=app dbname=app sslmode=require connect_timeout=3 password=$PROXY_USER_PASSWORD" \
      -c "insert into ledger (client) values ($1) returning id" 2>/dev/null); then
      echo "$id" >>"$PROXY_DIR/acked$1"
    else
      sleep 0.1 # the source is down: do not spin
    fi
  done
}
WRITERS=()
for i in $(seq 1 "$N"); do
  : >"$PROXY_DIR/acked$i"
  writer "$i" &
  WRITERS+=($!)
done
pgc_wait_until 15 bash -c "[ \$(cat '$PROXY_DIR'/acked* | wc -l) -ge $((3 * N)) ]" || fail "the writers do not write"

cat >"$PROXY_DIR/halt_source.sh" <<EOF
#!/usr/bin/env bash
# The flip's test hook before the fence: the source dies (immediate mode) with the fleet paused.
. "$top/tests/lib/pgcluster.sh"
pgc__as_pg "$PGC_PG_BIN/pg_ctl" -D "$SRC_DATA_DIR" -m immediate -w -t 30 stop >/dev/null 2>&1
EOF
chmod +x "$PROXY_DIR/halt_source.sh"
rc=0
t=$(date +%s.%N)
PGCUTOVER_TEST_HOOK_BEFORE_STEP="fence:$PROXY_DIR/halt_source.sh" \
  ctl flip --json --max-pause 20 --admin-timeout 3 "${ADMIN_OPTS[@]}" || rc=$?
took=$(since "$t")
pg_isready -q -h 127.0.0.1 -p "$SRC_PORT" -t 1 && fail "the test hook did not stop the source"
[ $rc = 1 ] || fail "flip with the source dead after the pause exited $rc, expected 1: $(cat "$PROXY_DIR/ctl.out" "$PROXY_DIR/ctl.err")"
python3 - "$PROXY_DIR/ctl.out" "$took" <<'PY' || fail "the failed flip's report: $(cat "$PROXY_DIR/ctl.out")"
import json, re, sys
r = json.load(open(sys.argv[1]))
assert r["outcome"] == "rolled_back", r["outcome"]
steps = {s["step"]: s for s in r["steps"]}
assert steps["pause"]["ok"], "the pause did not complete"
# The first step that needs the source fails; nothing after it runs, so no proxy is flipped.
assert not steps["fence"]["ok"], steps["fence"]
assert set(steps) == {"preconditions", "pause", "fence"}, list(steps)
# It names the side that stopped answering, and says what to do about the fence it may have left.
assert re.search("the source .* stopped answering during the pause", r["error"]), r["error"]
assert "nothing was flipped" in r["error"], r["error"]
assert "run `pgcutoverctl recover` once it answers" in r["error"], r["error"]
assert "all proxies resumed on source" in r["rolled_back"], r["rolled_back"]
# Bounded: it gave up at once instead of waiting for the source (nor for the proxies' max_pause).
assert float(sys.argv[2]) < 15, f"the flip took {sys.argv[2]} s"
PY
# The resume reached every proxy through the target's channel, with the source still down: no
# proxy waited for its dead-man timer, none is on the target, the authority was never written.
pgc_wait_until 5 fleet_is running source || fail "not every proxy resumed on the source: $(cat "$PROXY_DIR/ctl.out" "$PROXY_DIR/ctl.err")"
[ "$(cat "$PROXY_DIR/epoch")" = 0 ] || fail "the epoch moved to $(cat "$PROXY_DIR/epoch")"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["databases"]==["target"] else 1)' "$PROXY_DIR/ctl.out" ||
  fail "the fleet was read from more than the target: $(cat "$PROXY_DIR/ctl.out")"
for i in $(seq 1 "$N"); do
  grep -q 'command="POST /v1/resume" status=200' "$PROXY_DIR/p$i.log" || fail "proxy $i got no resume"
done
grep -l "cutover_dead_man_resume" "$PROXY_DIR"/p*.log && fail "a proxy resumed by its dead-man timer, not by the controller"
[ "$(pgc_admin_psql tgt -XAtc "select count(*) from pgcutover.fleet_authority where backend = 'target'")" = 0 ] ||
  fail "the authority names the target"
pass "the source stopped right after the pause: the flip rolled back in ${took}s (exit 1, failed at the fence), every proxy resumed on the source through the target's channel"

# The source comes back: the journal kept the run open (the fence may have landed before the
# source died), `recover` removes the fence, every proxy writes on it again, the fleet is whole,
# no row is lost.
pgc__as_pg "$PGC_PG_BIN/pg_ctl" -D "$SRC_DATA_DIR" -l "$SRC_LOG_FILE" -w -t 60 start >/dev/null 2>&1 ||
  fail "the source did not start again"
ctl flip --dry-run "${ADMIN_OPTS[@]}" && fail "a new flip was allowed with the run still open"
grep -q "run \`pgcutoverctl recover\` first" "$PROXY_DIR/ctl.err" "$PROXY_DIR/ctl.out" ||
  fail "the refused flip does not point to recover: $(cat "$PROXY_DIR/ctl.out" "$PROXY_DIR/ctl.err")"
ctl recover --json "${ADMIN_OPTS[@]}" || fail "recover after the source came back: $(cat "$PROXY_DIR/ctl.out" "$PROXY_DIR/ctl.err")"
grep -q "fence removed on source" "$PROXY_DIR/ctl.out" || fail "recover did not remove the fence: $(cat "$PROXY_DIR/ctl.out")"
[ "$(pgc_admin_psql src -XAtc "select count(*) from pg_db_role_setting s join pg_roles r on r.oid = s.setrole where r.rolname = 'app' and 'default_transaction_read_only=on' = any(s.setconfig)")" = 0 ] ||
  fail "the source is still fenced after recover"
for i in $(seq 1 "$N"); do
  pgc_wait_until 30 writes_on "$i" "$SRC_PORT" || fail "proxy $i does not write on the source again"
done
touch "$PROXY_DIR/stop_writers"
for w in "${WRITERS[@]}"; do wait "$w"; done
fleet_whole() { # every member live in both databases again, running on the source, one epoch
  fleet_is running source && python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if all(len(m["live_in"]) == 2 for m in d["members"] if m["live"]) else 1)' "$PROXY_DIR/ctl.out"
}
pgc_wait_until 15 fleet_whole || fail "the fleet is not whole again on the source: $(cat "$PROXY_DIR/ctl.out")"
[ "$(cat "$PROXY_DIR/epoch")" = 0 ] || fail "the epoch moved to $(cat "$PROXY_DIR/epoch")"
sort -n "$PROXY_DIR"/acked[0-9]* >"$PROXY_DIR/acked.all"
acked=$(wc -l <"$PROXY_DIR/acked.all")
ids="{$(paste -sd, "$PROXY_DIR/acked.all")}"
found=$(pgc_admin_psql src -XAtc "select count(*) from ledger where id = any('$ids'::bigint[])")
[ "$found" = "$acked" ] && [ "$(sort -u "$PROXY_DIR/acked.all" | wc -l)" = "$acked" ] ||
  fail "ledger: $found of the $acked acknowledged rows on the source"
pass "the source restarted: all $N proxies write on it again, live in both databases at epoch 0, all $acked acknowledged ledger rows there"

# ---- 2. two controllers at once ----
echo "drill 2 starts $(since "$T0") s in"
bench_start() { # <cluster it writes to> <log>: ledger_load through proxy 1
  local before
  before=$(pgc_admin_psql "$1" -XAtc "select count(*) from ledger")
  ledger_load "$PROXY_DIR/$2" "${PORTS[1]}" 4 5
  BENCH=$!
  pgc_wait_until 10 bash -c "[ \$(psql -XAtd '$(pgc_get "$1" admin_url)' -c 'select count(*) from ledger') -gt $((before + 20)) ]" ||
    fail "pgbench does not write"
}
bench_end() { # <log>: waits; 0 failed transactions; ACKED := the acknowledged ledger inserts
  wait "$BENCH" || fail "pgbench failed: $(tail -5 "$PROXY_DIR/$1")"
  grep -q "number of failed transactions: 0 " "$PROXY_DIR/$1" || fail "failed transactions in $1"
  ACKED=$(acked "$PROXY_DIR/$1")
}
# settled <backend> <epoch>: every proxy running there at that epoch, the authority the same in
# both databases, the side left fenced, the other not, and one replication link running the
# right way (nothing half-swapped).
settled() {
  local to=$1 epoch=$2 from=source from_db=src to_db=tgt link=pgcutover_reverse
  [ "$to" = source ] && from=target from_db=tgt to_db=src link=pgcutover
  pgc_wait_until 10 fleet_is running "$to" || fail "the fleet is not running on the $to: $(cat "$PROXY_DIR/ctl.out")"
  [ "$(cat "$PROXY_DIR/epoch")" = "$epoch" ] || fail "the fleet is at epoch $(cat "$PROXY_DIR/epoch"), not $epoch"
  for db in src tgt; do
    [ "$(pgc_admin_psql $db -XAtc "select backend || ' ' || epoch from pgcutover.fleet_authority")" = "$to $epoch" ] ||
      fail "the authority in $db is not $to/$epoch"
  done
  fenced() { pgc_admin_psql "$1" -XAtc "select count(*) from pg_db_role_setting where 'default_transaction_read_only=on' = any(setconfig)"; }
  [ "$(fenced $from_db)" = 1 ] && [ "$(fenced $to_db)" = 0 ] ||
    fail "fences: the $from must be read-only and the $to not"
  local subs
  subs="$(pgc_admin_psql src -XAtc "select string_agg(subname || ':' || subenabled, ',') from pg_subscription")/$(pgc_admin_psql tgt -XAtc "select string_agg(subname || ':' || subenabled, ',') from pg_subscription")"
  [ "$subs" = "$([ "$to" = source ] && echo "/$link:true" || echo "$link:true/")" ] ||
    fail "replication (subscriptions source/target) is '$subs', not one link $link on the $from"
}
loser_clean() { # <config>: refused by the lock, wrote no run in its journal
  grep -q "another cutover run holds the cutover lock" "$PROXY_DIR/$1.err" || fail "$1's error: $(cat "$PROXY_DIR/$1.err")"
  ctl "$1" recover --json || fail "recover with $1's journal: $(cat "$PROXY_DIR/$1.err")"
  grep -q '"action":"nothing"' "$PROXY_DIR/$1.out" || fail "$1's journal holds a run: $(cat "$PROXY_DIR/$1.out")"
}

base=$(pgc_admin_psql src -XAtc "select count(*) from ledger")
bench_start src bench1.log
rc1=0 rc2=0
ctl ctl flip --json "${ADMIN_OPTS[@]}" &
f1=$!
ctl ctl2 flip --json "${ADMIN_OPTS[@]}" &
f2=$!
wait $f1 || rc1=$?
wait $f2 || rc2=$?
bench_end bench1.log
acked1=$ACKED
case "$rc1 $rc2" in
  "0 1") winner=ctl loser=ctl2 ;;
  "1 0") winner=ctl2 loser=ctl ;;
  *) fail "two flips at once exited $rc1 and $rc2: $(cat "$PROXY_DIR"/ctl*.err)" ;;
esac
loser_clean $loser
settled target 1
pass "two flips started at once: $winner's flipped all $N proxies (epoch 1), $loser's was refused by the cutover lock and did nothing; pgbench 0 failed"

# The second operator starts while the first's run is between its step 1 and its pause (the
# window in which both would otherwise pause the fleet and one roll back the other).
{
  echo '#!/usr/bin/env bash'
  printf 'exec env -u PGCUTOVER_TEST_HOOK_BEFORE_STEP timeout 120 %q "$@" -c %q >%q 2>%q\n' \
    "$CTL_BIN" "$PROXY_DIR/ctl2.toml" "$PROXY_DIR/ctl2.out" "$PROXY_DIR/ctl2.err"
} >"$PROXY_DIR/ctl2.sh"
chmod +x "$PROXY_DIR/ctl2.sh"
hook="$PROXY_DIR/ctl2.sh revert --json"
for a in "${ADMIN_OPTS[@]}"; do hook+=" $(printf %q "$a")"; done
bench_start tgt bench2.log
rm -f "$PROXY_DIR/rc2"
rc1=0
PGCUTOVER_TEST_HOOK_BEFORE_STEP="pause:$hook; echo \$? >$PROXY_DIR/rc2" ctl ctl revert --json "${ADMIN_OPTS[@]}" || rc1=$?
bench_end bench2.log
acked2=$ACKED
[ "$rc1" = 0 ] && [ "$(cat "$PROXY_DIR/rc2")" = 1 ] ||
  fail "the first revert exited $rc1, the one started inside it $(cat "$PROXY_DIR/rc2") (expected 0 and 1): $(cat "$PROXY_DIR"/ctl*.err)"
loser_clean ctl2
settled source 2
pass "a revert started while another was about to pause the fleet was refused by the lock; the first reverted all $N proxies (epoch 2); pgbench 0 failed"

want=$((base + acked1 + acked2))
for db in src tgt; do # the target through the forward replication the revert restored
  pgc_wait_until 15 bash -c "[ \$(psql -XAtd '$(pgc_get $db admin_url)' -c 'select count(distinct id) from ledger') = $want ]" ||
    fail "ledger in $db: $(pgc_admin_psql $db -XAtc "select count(*) || ' rows, ' || count(distinct id) || ' distinct' from ledger"), acknowledged $want"
done
pass "ledger: all $want acknowledged rows on the source and, replicated, on the target"

# ---- 3. one proxy's control sessions cut during the pause ----
# Proxy X would not reconnect by itself within this test (reconnect_interval 120 s). Its control
# sessions are ended in both databases before the catch-up: it never sees the flip. Its dead-man
# timer (--max-pause 4) resumes it; it then reconnects at once, reads the authority and follows
# it. The controller counts it unanswered until then. Either way the run ends with every proxy
# on one backend at one epoch, matching the authority.
X=$((N + 1))
proxy_write_fleet_config "$X" "dyno-$X" 120
start_proxy "$X"
N=$X
pgc_wait_until 15 fleet_is running source || fail "proxy $X did not join: $(cat "$PROXY_DIR/ctl.out")"
{
  echo '#!/usr/bin/env bash'
  for url in "$SRC_ADMIN_URL" "$TGT_ADMIN_URL"; do
    printf 'psql -XAtq %q -c %q >/dev/null\n' "$url" \
      "select pg_terminate_backend(l.pid) from pg_locks l join pgcutover.fleet_member m on l.objid = m.lock_key where l.locktype = 'advisory' and l.classid = 1885823861 and l.objsubid = 2 and m.name = 'dyno-$X'"
  done
} >"$PROXY_DIR/cut_x.sh"
chmod +x "$PROXY_DIR/cut_x.sh"
bench_start src bench3.log
rc=0
t=$(date +%s.%N)
PGCUTOVER_TEST_HOOK_BEFORE_STEP="catch_up:$PROXY_DIR/cut_x.sh" \
  ctl flip --json --max-pause 4 --admin-timeout 2 "${ADMIN_OPTS[@]}" || rc=$?
took=$(since "$t")
bench_end bench3.log
grep -q "cutover_dead_man_resume" "$PROXY_DIR/p$X.log" || fail "proxy $X was not resumed by its dead-man timer"
grep -q 'fleet_authority_recheck reason="resumed by the dead-man timer"' "$PROXY_DIR/p$X.log" ||
  fail "proxy $X did not recheck the authority after its dead-man resume: $(grep -E 'fleet_|cutover_' "$PROXY_DIR/p$X.log" | tail -8)"
case $rc in
  0) to=target port=$TGT_PORT ;;
  1)
    to=source port=$SRC_PORT
    python3 - "$PROXY_DIR/ctl.out" "$X" <<'PY' || fail "the flip's report: $(head -c 2000 "$PROXY_DIR/ctl.out")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["outcome"] == "rolled_back", r["outcome"]
assert f"fleet:dyno-{sys.argv[2]}" in r.get("error", ""), r.get("error")
PY
    ;;
  *) fail "the flip with proxy $X cut off exited $rc: $(cat "$PROXY_DIR/ctl.err")" ;;
esac
pgc_wait_until 15 fleet_is running "$to" || fail "the fleet is not whole on the $to: $(cat "$PROXY_DIR/ctl.out")"
epoch=$(cat "$PROXY_DIR/epoch")
for db in src tgt; do
  [ "$(pgc_admin_psql $db -XAtc "select backend || ' ' || epoch from pgcutover.fleet_authority")" = "$to $epoch" ] ||
    fail "the authority in $db is not $to/$epoch"
done
want=$((want + ACKED))
to_db=$([ "$to" = target ] && echo tgt || echo src)
pgc_wait_until 15 bash -c "[ \$(psql -XAtd '$(pgc_get $to_db admin_url)' -c 'select count(distinct id) from ledger') = $want ]" ||
  fail "ledger on the $to: $(pgc_admin_psql $to_db -XAtc "select count(distinct id) from ledger") rows, acknowledged $want"
pgc_wait_until 15 writes_on "$X" "$port" || fail "proxy $X does not write on the $to"
pass "proxy $X's control sessions cut during the pause: dead-man resume, then it rejoined and followed the authority; the flip exited $rc in ${took}s and all $N proxies run on the $to at epoch $epoch; pgbench 0 failed, all $want acknowledged ledger rows there"

# ---- 4. the controller dies; another machine's controller recovers from the databases ----
# ctl and ctl2 keep separate journals (two laptops): the run a dead controller left is found in
# pgcutover.cutover_run, and the authority tells whether its flip step had started.
if [ "$to" = source ]; then cmd=flip back=revert dest=target home=source; else cmd=revert back=flip dest=source home=target; fi
rc=0
PGCUTOVER_CRASH_AFTER_STEP=flip ctl ctl "$cmd" "${ADMIN_OPTS[@]}" || rc=$?
[ $rc = 99 ] || fail "crash after the flip step: exit $rc ($(cat "$PROXY_DIR/ctl.err"))"
ctl ctl2 recover --json "${ADMIN_OPTS[@]}" || fail "recover on the other machine: $(cat "$PROXY_DIR/ctl2.out" "$PROXY_DIR/ctl2.err")"
grep -q "from the fleet's databases.*: finish" "$PROXY_DIR/ctl2.out" "$PROXY_DIR/ctl2.err" ||
  fail "recover did not find the run in the databases: $(cat "$PROXY_DIR/ctl2.out" "$PROXY_DIR/ctl2.err")"
pgc_wait_until 15 fleet_is running "$dest" || fail "after recover: $(cat "$PROXY_DIR/ctl.out")"
epoch=$(cat "$PROXY_DIR/epoch")
for db in src tgt; do
  [ "$(pgc_admin_psql $db -XAtc "select backend || ' ' || epoch || ' ' || (select outcome from pgcutover.cutover_run) from pgcutover.fleet_authority")" = "$dest $epoch completed" ] ||
    fail "the databases in $db do not say $dest/$epoch, run completed"
done
ctl ctl recover --json "${ADMIN_OPTS[@]}" || fail "recover on the first machine: $(cat "$PROXY_DIR/ctl.err")"
grep -q '"marked_ended":"run [^"]* was ended by another controller' "$PROXY_DIR/ctl.out" "$PROXY_DIR/ctl.err" ||
  fail "the first machine's journal was not told: $(cat "$PROXY_DIR/ctl.out" "$PROXY_DIR/ctl.err")"
pass "controller killed after its flip step ($cmd): recover on another machine found the run in the databases and finished it (all $N proxies on the $dest, epoch $epoch); the first machine's journal learnt it had ended"

rc=0
PGCUTOVER_CRASH_AFTER_STEP=pause ctl ctl2 "$back" "${ADMIN_OPTS[@]}" || rc=$?
[ $rc = 99 ] || fail "crash after the pause: exit $rc ($(cat "$PROXY_DIR/ctl2.err"))"
pgc_wait_until 10 fleet_is paused "$dest" || fail "the fleet is not paused: $(cat "$PROXY_DIR/ctl.out")"
ctl ctl recover --json "${ADMIN_OPTS[@]}" || fail "recover on the first machine: $(cat "$PROXY_DIR/ctl.out" "$PROXY_DIR/ctl.err")"
grep -q "from the fleet's databases.*: roll_back" "$PROXY_DIR/ctl.out" "$PROXY_DIR/ctl.err" ||
  fail "recover did not roll the databases' run back: $(cat "$PROXY_DIR/ctl.out" "$PROXY_DIR/ctl.err")"
pgc_wait_until 15 fleet_is running "$dest" || fail "after the rollback: $(cat "$PROXY_DIR/ctl.out")"
[ "$(cat "$PROXY_DIR/epoch")" = "$epoch" ] || fail "the rollback moved the epoch to $(cat "$PROXY_DIR/epoch")"
pgc_wait_until 15 writes_on "$X" "$([ "$dest" = target ] && echo "$TGT_PORT" || echo "$SRC_PORT")" ||
  fail "proxy $X does not write on the $dest after the rollback"
ctl ctl2 recover --json "${ADMIN_OPTS[@]}" || fail "recover on the second machine: $(cat "$PROXY_DIR/ctl2.err")"
grep -q '"marked_ended":"run [^"]* was ended by another controller' "$PROXY_DIR/ctl2.out" "$PROXY_DIR/ctl2.err" ||
  fail "the second machine's journal was not told: $(cat "$PROXY_DIR/ctl2.out" "$PROXY_DIR/ctl2.err")"
pass "controller killed while the fleet was paused ($back): recover on the other machine rolled it back from the databases; all $N proxies write on the $dest at epoch $epoch"

bugs=$(grep -l "event=bug_" "$PROXY_DIR"/p*.log || true)
[ -z "$bugs" ] || fail "bug events in $bugs: $(grep -h -B8 -A3 "event=bug_" $bugs | head -40)"
echo "measure: test_fleet_faults took $(since "$T0") s with $N proxies"
