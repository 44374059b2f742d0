#!/usr/bin/env bash
# The write pause the application's writers see through a full `pgcutoverctl flip` and
# `revert`, next to the figure the controller prints (docs/cutover.md, "Figures").
#
#   - For each method in BENCH_METHODS ("trigger logical pgbouncer"), fresh clusters: a Heroku-shaped
#     source (with --logical for the logical method), an RDS-shaped target, pgbench -i
#     (BENCH_SCALE, 10) and a ledger table, schema copy, `replicate start --method <m>`,
#     validate. Trigger method: `replicate apply` runs in the background the whole time, and
#     `replicate apply --reverse` from each flip to the revert after it.
#   - Two proxies (transaction mode, pool 10, client TLS required, TLS to both servers), each
#     with its own [admin] port and token, both in the controller's [[control.proxies]].
#   - BENCH_ROUNDS (5) rounds of `pgcutoverctl flip --json` then `pgcutoverctl revert --json`
#     (lossless: the way back of each method, no --accept-data-loss), under load that starts
#     before the flip and ends after the revert: through each proxy pgbench -c 4 -j 1
#     tpcb-like@1 + ledger.sql@1 (one INSERT INTO ledger), and through proxy 2 one
#     connect-per-transaction client (pgbench -C -c 1, ledger.sql); all with -l.
#     0 failed transactions required; after every revert, every acknowledged ledger row is on
#     the source exactly once (rows before + acknowledged inserts, no duplicate id), and
#     pgbench_history holds every acknowledged tpcb-like transaction.
#   - Per flip / revert, the window from just before the controller starts to just after it
#     returns (date +%s%N); from pgbench's per-transaction logs, the transactions overlapping
#     it: ledger inserts' max and p99, tpcb-like max, the -C client's max; next to the JSON's
#     write_pause_ms (the worst held-client wait, measured by the proxies), controller_span_ms
#     and the steps. The proxies' logs split the window's inserts into those across the gates
#     (first gate closed to last held client answered) and the others. Baseline: ledger inserts
#     outside every window (less each pgbench run's first second, while the pools connect).
#     tests/bench/write_pause_report.py; with -R, a latency leaves out pgbench's schedule lag.
#   - pgbouncer: the comparison. The same load and logical replication through two PgBouncers
#     1.18 (same pool and TLS), cut over by the tightest script (tests/bench/pgbouncer_switch.py:
#     PAUSE, wait for the subscription, RELOAD, RESUME over admin sessions opened before); its
#     flips only (tests/bench/write_pause_pgbouncer.bash), and a line comparing the writers'
#     worst insert against each method's flips.
# Prints the tables and writes them to $BENCH_OUT/write_pause.md (BENCH_OUT: build/bench), the
# per-round figures to $BENCH_OUT/write_pause_rounds.md, every report to
# $BENCH_OUT/write_pause.jsonl, and the logs (proxies, pgbench, apply, controller) to
# $BENCH_OUT/write_pause.logs/. A benchmark, not a CTest test.
#
#   tests/bench/bench_write_pause.sh                          ~6 min on 2 cores
#   BENCH_ROUNDS=2 BENCH_METHODS=trigger tests/bench/bench_write_pause.sh
#
# Knobs: BENCH_METHODS ("trigger logical pgbouncer"), BENCH_ROUNDS (5), BENCH_SCALE (10),
# BENCH_RATE (tps per pgbench -c 4, 200: meant to keep 2 cores about 70% busy; vmstat showed
# about 50% at 150 on an otherwise idle machine; 0 = unthrottled, which keeps both cores at 100%
# and stretches the steps: preconditions 1.4 s, the controller's run 3.4 s, and slow inserts
# outside the pause as long as it), BENCH_CONNECT_RATE (connections/s of the -C client, 20;
# 0 = unthrottled), BENCH_LOAD_SECONDS (pgbench -T per round, 24: must outlast flip + window +
# revert), BENCH_WINDOW (seconds on the target between a flip and its revert, 3).
# Run as root, the PostgreSQL servers run as ${PGCUTOVER_PG_USER:-pgcutover}
# (tests/lib/pgcluster.sh).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
# PgBouncer (the scripted cutover compared with) is installed for the benchmarks only.
"$top/deploy/bootstrap.sh" --no-build --bench
PY=/usr/bin/python3
methods=${BENCH_METHODS:-trigger logical pgbouncer}
rounds=${BENCH_ROUNDS:-5}
scale=${BENCH_SCALE:-10}
rate=${BENCH_RATE:-200}
crate=${BENCH_CONNECT_RATE:-20}
load_s=${BENCH_LOAD_SECONDS:-24}
window_s=${BENCH_WINDOW:-3}
out=${BENCH_OUT:-$top/build/bench}
mkdir -p "$out"

# The harness: clusters (pgcluster.sh), proxy_write_config, proxy_dsn, $PROXY_DIR, fail.
. "$top/tests/lib/proxy_harness.bash"
. "$top/tests/bench/pgbouncer.bash"
. "$top/tests/bench/write_pause_pgbouncer.bash"
CTL_BIN=${PGCUTOVER_CTL_BIN:-$top/build/control/pgcutoverctl}
[ -x "$CTL_BIN" ] || fail "pgcutoverctl not built: $CTL_BIN"
# The binaries measured are the ones present now, even if the tree is rebuilt meanwhile.
build_desc="binaries built $(date -u -r "$PROXY_BIN" '+%Y-%m-%d %H:%M') (proxy) and"
build_desc+=" $(date -u -r "$CTL_BIN" '+%Y-%m-%d %H:%M') (pgcutoverctl) UTC"
if rev=$(git -C "$top" rev-parse --short HEAD 2>/dev/null); then
  git -C "$top" diff --quiet HEAD 2>/dev/null || rev="$rev + uncommitted changes"
  build_desc="$build_desc, tree at $rev"
fi
mkdir -p "$PROXY_DIR/bin" "$PROXY_DIR/tx"
cp "$PROXY_BIN" "$PROXY_DIR/bin/pgcutover-proxy"
cp "$CTL_BIN" "$PROXY_DIR/bin/pgcutoverctl"
PROXY_BIN=$PROXY_DIR/bin/pgcutover-proxy CTL_BIN=$PROXY_DIR/bin/pgcutoverctl
chmod 755 "$PROXY_DIR/tx"

# Background processes: TPIDS run under timeout(1), which passes a TERM on to its child
# (pgbench, replicate apply); PPIDS are the proxies (KILL).
TPIDS=() PPIDS=()
LOGS=$out/write_pause.logs
bench_cleanup() {
  local rc=$? p f
  for p in "${TPIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PPIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${TPIDS[@]}" "${PPIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ $rc -ne 0 ]; then
    for f in "$PROXY_DIR"/*.log "$PROXY_DIR"/*.out "$PROXY_DIR"/*.err "$PROXY_DIR"/tx/*.out; do
      [ -f "$f" ] && { echo "---- last lines of $f ----" >&2; tail -n 25 "$f" >&2; }
    done
  fi
  rm -rf "$LOGS"
  mkdir -p "$LOGS"
  cp "$PROXY_DIR"/*.log "$PROXY_DIR"/*.out "$PROXY_DIR"/*.err "$PROXY_DIR"/*.json "$LOGS/" \
    2>/dev/null || true
  cp "$PROXY_DIR"/tx/* "$PROXY_DIR"/runs "$LOGS/" 2>/dev/null || true
  pgc_stop_all || true
  rm -rf "$PROXY_DIR"
  exit $rc
}
trap bench_cleanup EXIT
log() { echo "== $(date +%H:%M:%S) $*" >&2; }
untrack() { # <pid>: waited for, so never signalled again (the pid may be reused)
  local i
  for i in "${!TPIDS[@]}"; do [ "${TPIDS[$i]}" != "$1" ] || unset "TPIDS[$i]"; done
}
stop_bg() { # <pid>: TERM a timeout-wrapped background process, wait for it
  [ -n "$1" ] || return 0
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  untrack "$1"
}

cat >"$PROXY_DIR/ledger.sql" <<'SQL'
INSERT INTO ledger (client) VALUES (:client_id);
SQL
chmod 644 "$PROXY_DIR/ledger.sql"
export PROXY_TEST_PASSWORD=$PROXY_USER_PASSWORD
export PGCUTOVER_TOKEN_1="tok1-$$-$RANDOM" PGCUTOVER_TOKEN_2="tok2-$$-$RANDOM"
TOKENS=("" "$PGCUTOVER_TOKEN_1" "$PGCUTOVER_TOKEN_2")
RUNS=$PROXY_DIR/runs
: >"$RUNS"
: >"$out/write_pause.jsonl"

admin_status() { # <n>: "<state> <backend>" of proxy n by its admin API
  curl -s -m 3 -H "Authorization: Bearer ${TOKENS[$1]}" "http://127.0.0.1:${APORTS[$1]}/v1/status" |
    $PY -c 'import json, sys; d = json.load(sys.stdin); print(d["state"], d["backend"])'
}
both_on() { # <backend>: both proxies running on it
  [ "$(admin_status 1)" = "running $1" ] && [ "$(admin_status 2)" = "running $1" ]
}
count() { pgc_admin_psql "$1" -XAtc "select $2"; }
summary_n() { # <pgbench output> <pattern before the count>
  grep -oE "$2: [0-9]+" "$1" | head -1 | grep -oE '[0-9]+$'
}
script_n() { # <pgbench output> <script name>: its transactions (per-script statistics)
  grep -A3 "$2" "$1" | grep -oE '[0-9]+ transactions' | head -1 | cut -d' ' -f1
}

# ---- one method: clusters, data, replication, proxies, rounds ----
# setup_clusters <name> <method>: fresh clusters, pgbench's tables and the ledger on the
# source, schema copy, `replicate start --method <method>`, validate; files named <name>.*.
setup_clusters() {
  local m=$1 method=$2 logical=()
  [ "$method" = logical ] && logical=(--logical)
  log "$m: fresh clusters, pgbench -i -s $scale + ledger, schema copy, replicate start, validate"
  pgc_start src heroku "${logical[@]}" >/dev/null
  pgc_start tgt rds >/dev/null
  pgv=$(pgc_admin_psql src -XAtc "show server_version")
  export PROXY_TEST_SOURCE_URL=$SRC_URL PROXY_TEST_TARGET_URL=$TGT_URL
  conn=(--source-url "$SRC_URL" --target-url "$TGT_URL")
  PGPASSWORD=$SRC_APP_PASSWORD timeout 600 pgbench -i -q -s "$scale" "$SRC_URL" \
    >"$PROXY_DIR/$m.init.out" 2>&1 || fail "pgbench -i"
  pgc_psql src -qc "CREATE TABLE ledger (id bigserial PRIMARY KEY, client int NOT NULL,
    at timestamptz DEFAULT now())"
  pgc_admin_psql tgt -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
  timeout 300 "$CTL_BIN" schema copy "${conn[@]}" >"$PROXY_DIR/$m.schema.out" 2>&1 ||
    fail "schema copy"
  local start_args=(--jobs 2)
  [ "$method" = logical ] && start_args=(--subscriber-url "$TGT_ADMIN_URL" --wait-timeout 300)
  timeout 600 "$CTL_BIN" replicate start --method "$method" "${start_args[@]}" "${conn[@]}" \
    >"$PROXY_DIR/$m.start.out" 2>&1 || fail "replicate start --method $method"
  timeout 300 "$CTL_BIN" validate --jobs 2 "${conn[@]}" >"$PROXY_DIR/$m.validate.out" 2>&1 ||
    fail "validate ($m)"
}

run_method() {
  local m=$1 i r
  setup_clusters "$m" "$m"
  APPLY_PID="" BACK_PID=""
  if [ "$m" = trigger ]; then
    timeout -k 5 3600 "$CTL_BIN" replicate apply "${conn[@]}" >>"$PROXY_DIR/$m.apply.log" 2>&1 &
    APPLY_PID=$!
    TPIDS+=("$APPLY_PID")
  fi

  # Two proxies, each with its own [admin] port and token; the controller's config lists both.
  PORTS=("" "$(pgc_free_port)" "$(pgc_free_port)") APORTS=("" "$(pgc_free_port)" "$(pgc_free_port)")
  local journal=$PROXY_DIR/$m.journal
  PROXY_PORT=$(pgc_free_port) proxy_write_config "$PROXY_DIR/$m.ctl.toml" transaction 10 require "
[control]
journal = \"$journal\"

[[control.proxies]]
admin_url = \"http://127.0.0.1:${APORTS[1]}\"
token = \"\${PGCUTOVER_TOKEN_1}\"

[[control.proxies]]
admin_url = \"http://127.0.0.1:${APORTS[2]}\"
token = \"\${PGCUTOVER_TOKEN_2}\"
"
  for i in 1 2; do
    PROXY_PORT=${PORTS[$i]} proxy_write_config "$PROXY_DIR/$m.p$i.toml" transaction 10 require "
[cutover]
max_pause = 30

[admin]
listen_addr = \"127.0.0.1\"
listen_port = ${APORTS[$i]}
token = \"\${PGCUTOVER_TOKEN_$i}\"
"
    sed -i "s|state_file = .*|state_file = \"$PROXY_DIR/$m.state$i.json\"|" "$PROXY_DIR/$m.p$i.toml"
    sed -i "s|log_level = .*|log_level = \"${BENCH_PROXY_LOG_LEVEL:-info}\"|" "$PROXY_DIR/$m.p$i.toml"
    "$PROXY_BIN" -c "$PROXY_DIR/$m.p$i.toml" >>"$PROXY_DIR/$m.p$i.log" 2>&1 &
    PPIDS[$i]=$!
  done
  for i in 1 2; do
    pgc_wait_until 20 pg_isready -q -h 127.0.0.1 -p "${PORTS[$i]}" -t 1 ||
      fail "proxy $i does not accept on ${PORTS[$i]}"
    pgc_wait_until 20 admin_status "$i" >/dev/null || fail "proxy $i does not serve its admin API"
  done
  pgc_wait_until 10 both_on source || fail "the proxies are not running on the source"

  base=$(count src "count(*) from ledger") hist0=$(count src "count(*) from pgbench_history")
  acked=0 acked_hist=0
  for ((r = 1; r <= rounds; r++)); do run_round "$m" "$r"; done

  log "$m: done; stopping the proxies and the clusters"
  stop_bg "$APPLY_PID"
  for i in 1 2; do
    kill -TERM "${PPIDS[$i]}" 2>/dev/null || true
    wait "${PPIDS[$i]}" 2>/dev/null || true
  done
  PPIDS=()
  pgc_stop src
  pgc_stop tgt
}

# ---- one round: load, flip, a window on the target, revert, checks ----
BPIDS=()
start_load() { # <method> <round>
  local m=$1 r=$2 i th=() cth=()
  [ "$rate" = 0 ] || th=(-R "$rate")
  [ "$crate" = 0 ] || cth=(-R "$crate")
  BPIDS=()
  for i in 1 2; do
    PGPASSWORD=${PGPASSWORD_LOAD:-$PROXY_USER_PASSWORD} PGSSLMODE=require timeout -k 5 $((load_s + 120)) \
      pgbench -n -c 4 -j 1 -T "$load_s" "${th[@]}" -b tpcb-like@1 -f "$PROXY_DIR/ledger.sql@1" \
      -l --log-prefix="$PROXY_DIR/tx/$m.r$r.p$i.tx" -h 127.0.0.1 -p "${PORTS[$i]}" -U app app \
      >"$PROXY_DIR/tx/$m.r$r.p$i.out" 2>&1 &
    BPIDS+=($!)
  done
  PGPASSWORD=${PGPASSWORD_LOAD:-$PROXY_USER_PASSWORD} PGSSLMODE=require timeout -k 5 $((load_s + 120)) \
    pgbench -n -C -c 1 -j 1 -T "$load_s" "${cth[@]}" -f "$PROXY_DIR/ledger.sql" \
    -l --log-prefix="$PROXY_DIR/tx/$m.r$r.c.tx" -h 127.0.0.1 -p "${PORTS[2]}" -U app app \
    >"$PROXY_DIR/tx/$m.r$r.c.out" 2>&1 &
  BPIDS+=($!)
  TPIDS+=("${BPIDS[@]}")
}
lag_ok() { # [--reverse]: the trigger apply keeps up
  timeout 60 "$CTL_BIN" lag "$@" --max-lag 3 "${conn[@]}" >"$PROXY_DIR/lag.out" 2>&1
}
# one <method> <flip|revert> <round>: the controller, timed; the window goes to $RUNS.
one() {
  local m=$1 op=$2 r=$3 want t0 t1 rc=0 args
  [ "$op" = flip ] && want=target || want=source
  args=(--json -c "$PROXY_DIR/$m.ctl.toml"
    --smoke-url "$(PROXY_PORT=${PORTS[1]} proxy_dsn require)")
  [ "$m" = logical ] && args+=(--subscriber-url "$TGT_ADMIN_URL"
    --source-subscriber-url "$SRC_ADMIN_URL" --reverse-publisher-url "$TGT_ADMIN_URL")
  local json=$PROXY_DIR/$m.r$r.$op.json
  t0=$(date +%s%N)
  timeout 120 "$CTL_BIN" "$op" "${args[@]}" >"$json" 2>"$PROXY_DIR/$m.r$r.$op.err" || rc=$?
  t1=$(date +%s%N)
  [ $rc = 0 ] || {
    cat "$json" "$PROXY_DIR/$m.r$r.$op.err" >&2
    fail "$op ($m, round $r) exited $rc"
  }
  echo "$m $op $r $t0 $t1 $json" >>"$RUNS"
  $PY - "$json" "$m" "$op" "$r" "$out/write_pause.jsonl" "$t0" "$t1" <<'PY' ||
import json, sys
f, m, op, r, jl, t0, t1 = sys.argv[1:8]
rep = json.load(open(f))
assert rep["ok"] and rep["outcome"] == "completed", (rep.get("ok"), rep.get("outcome"))
assert rep.get("method") == m, rep.get("method")
with open(jl, "a") as o:
    o.write(json.dumps({"method": m, "op": op, "round": int(r), "report": rep}) + "\n")
print("%-8s %-6s %5s %9.0f %9.0f %5s %8.0f" % (m, op, r, rep["write_pause_ms"],
      rep["controller_span_ms"], rep.get("clients_held", 0), (int(t1) - int(t0)) / 1e6))
PY
    fail "the $op's report ($m, round $r): $(head -c 3000 "$json")"
  pgc_wait_until 10 both_on "$want" ||
    fail "after the $op ($m, round $r) not both proxies run on $want"
}
# load_started <name> <round>: the round's load writing (the source's ledger grows) for 3 s,
# a little load before the flip, also for the baseline.
load_started() {
  local m=$1 r=$2 n0 t_start
  n0=$(count src "count(*) from ledger")
  t_start=$SECONDS
  start_load "$m" "$r"
  grows() { [ "$(count src "count(*) from ledger")" -gt $((n0 + 20)) ]; }
  pgc_wait_until 20 grows || fail "pgbench does not write through the poolers (round $r, $m)"
  sleep_until() { [ $((SECONDS - t_start)) -ge "$1" ]; }
  pgc_wait_until 10 sleep_until 3 || true
}
# load_finished <name> <round>: every pgbench of the round exited 0 with 0 failed transactions;
# their acknowledged ledger inserts are added to $acked, the tpcb-like ones to $acked_hist.
load_finished() {
  local m=$1 r=$2 p rc l i
  for p in "${BPIDS[@]}"; do
    rc=0
    wait "$p" || rc=$?
    untrack "$p"
    [ $rc = 0 ] || fail "a pgbench of round $r ($m) exited $rc"
  done
  for l in "$PROXY_DIR/tx/$m.r$r".*.out; do
    grep -q "actually processed" "$l" || { cat "$l" >&2; fail "pgbench: $l"; }
    grep -q "number of failed transactions: 0 " "$l" ||
      { cat "$l" >&2; fail "failed transactions: $l"; }
  done
  # Acknowledged: the ledger script's transactions (-c 4 clients) and the -C client's.
  for i in 1 2; do
    l=$PROXY_DIR/tx/$m.r$r.p$i.out
    acked=$((acked + $(script_n "$l" ledger.sql)))
    acked_hist=$((acked_hist + $(script_n "$l" TPC-B)))
  done
  acked=$((acked + $(summary_n "$PROXY_DIR/tx/$m.r$r.c.out" "actually processed")))
}
run_round() { # <method> <round>
  local m=$1 r=$2 p
  [ "$m" != trigger ] || pgc_wait_until 60 lag_ok ||
    fail "the forward apply does not keep up before round $r: $(cat "$PROXY_DIR/lag.out")"
  load_started "$m" "$r"
  [ "$m" != trigger ] || pgc_wait_until 30 lag_ok ||
    fail "the forward apply does not keep up under load (round $r): $(cat "$PROXY_DIR/lag.out")"
  one "$m" flip "$r"
  local flipped=$SECONDS
  if [ "$m" = trigger ]; then
    timeout -k 5 3600 "$CTL_BIN" replicate apply --reverse "${conn[@]}" \
      >>"$PROXY_DIR/$m.back.log" 2>&1 &
    BACK_PID=$!
    TPIDS+=("$BACK_PID")
  fi
  window_done() { [ $((SECONDS - flipped)) -ge "$window_s" ]; }
  pgc_wait_until $((window_s + 10)) window_done || true
  [ "$m" != trigger ] || pgc_wait_until 30 lag_ok --reverse ||
    fail "the reverse apply does not keep up (round $r): $(cat "$PROXY_DIR/lag.out")"
  one "$m" revert "$r"
  if [ "$m" = trigger ]; then
    stop_bg "$BACK_PID"
    BACK_PID=""
  fi
  for p in "${BPIDS[@]}"; do
    kill -0 "$p" 2>/dev/null ||
      fail "the load ended before the revert of round $r ($m) did: raise BENCH_LOAD_SECONDS"
  done
  load_finished "$m" "$r"
  local got distinct hist
  read -r got distinct hist < <(count src "count(*), count(distinct id),
    (select count(*) from pgbench_history) from ledger" | tr '|' ' ')
  [ "$got" = $((base + acked)) ] && [ "$distinct" = "$got" ] ||
    fail "ledger on the source after round $r ($m): $got rows ($distinct distinct ids)," \
      "acknowledged $((base + acked))"
  [ "$hist" = $((hist0 + acked_hist)) ] ||
    fail "pgbench_history on the source after round $r ($m): $hist rows," \
      "acknowledged $((hist0 + acked_hist))"
  echo "   round $r ($m): ledger $got rows = $base before + $acked acknowledged, no duplicate" \
    "id; history $hist rows; 0 failed" >&2
}

load_desc="through each of 2 proxies pgbench -c 4 -j 1 tpcb-like@1 + ledger insert@1"
load_desc+=" ($([ "$rate" = 0 ] && echo unthrottled || echo "-R $rate")),"
load_desc+=" through proxy 2 a -C client"
load_desc+=" (ledger insert, $([ "$crate" = 0 ] && echo unthrottled || echo "-R $crate"))"
log "methods: $methods; $rounds rounds of flip + revert each; $load_desc; -T $load_s per round"
printf '%-8s %-6s %5s %9s %9s %5s %8s\n' method op round pause_ms span_ms held ctl_ms
for m in $methods; do
  case $m in
    trigger | logical) run_method "$m" ;;
    pgbouncer) run_pgbouncer ;;
    *) fail "BENCH_METHODS: unknown method $m (trigger, logical, pgbouncer)" ;;
  esac
done

# ---- the tables ----
header="Run: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, PostgreSQL $pgv,"
header+=" pgbench scale $scale,"
header+=" 2 proxies (transaction mode, pool 10, TLS from clients and to both servers), $load_desc,"
header+=" $rounds rounds of flip + revert per method ($window_s s on the target between);"
header+=" $build_desc."
$PY "$top/tests/bench/write_pause_report.py" "$RUNS" "$PROXY_DIR/tx" "$out/write_pause.md" \
  "$out/write_pause_rounds.md" "$header" "$PROXY_DIR" || fail "write_pause_report.py"
log "written: $out/write_pause.md, $out/write_pause_rounds.md, $out/write_pause.jsonl, $LOGS/"
