#!/usr/bin/env bash
# The trigger method's cost on the source's write path (issue 11): pgbench tpcb-like on the
# Heroku-shaped source (app role: owner, no superuser, no REPLICATION), side by side
#   off      no capture installed (`replicate stop` removed everything)
#   capture  `replicate start --method trigger` installed, no apply running (the log grows)
#   +apply   capture installed and `replicate apply` running on the same machine
#   bare     the capture without its loop guard: the triggers re-created without the
#            `pgcutover.applying` test in their WHEN clause (what that test costs; the way
#            back needs it, see docs/cli.md)
# in alternating order (off capture +apply, then +apply capture off, ...) so that drift in
# the machine's load hits every configuration alike. Per run: tps, the source server's CPU
# time per transaction (every server process, reaped backends included; pgbench's own CPU is
# not in it) and WAL bytes per transaction. Prints the medians and the ratios to `off`.
# Not a CTest test: a benchmark.
#
#   tests/bench/bench_trigger_capture.sh          3 rounds of 20 s runs, scale 5, 4 clients
#   BENCH_SECONDS=30 BENCH_ROUNDS=5 BENCH_CLIENTS=8 BENCH_SCALE=10 tests/bench/bench_trigger_capture.sh
#   BENCH_DURABLE=0 ...   fsync off (the test harness's default): every transaction is pure
#                         CPU, the worst case for a trigger's relative cost
#   BENCH_APPLY=0 ...     skip the +apply configuration
#   BENCH_BARE=0 ...      skip the bare configuration
#   BENCH_SIDE=target ... measure on the RDS-shaped cluster instead: the way back's capture,
#                         which `flip` installs on the target (the same triggers), applied
#                         to the Heroku-shaped one
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
CTL_BIN=${PGCUTOVER_CTL_BIN:-$top/build/control/pgcutoverctl}
[ -x "$CTL_BIN" ] || { echo "bench: pgcutoverctl not built: $CTL_BIN" >&2; exit 1; }
seconds=${BENCH_SECONDS:-20}
rounds=${BENCH_ROUNDS:-3}
clients=${BENCH_CLIENTS:-4}
scale=${BENCH_SCALE:-5}
durable=${BENCH_DURABLE:-1}
with_apply=${BENCH_APPLY:-1}
with_bare=${BENCH_BARE:-1}
side=${BENCH_SIDE:-source}
case "$side" in
  source) meas=src other=tgt ;;
  target) meas=tgt other=src ;;
  *) echo "bench: BENCH_SIDE is source or target, not $side" >&2; exit 2 ;;
esac

. "$top/tests/lib/pgcluster.sh"
work=$(mktemp -d /tmp/pgcutover-bench-trigger.XXXXXX)
apply_pid=""
cleanup() {
  [ -n "$apply_pid" ] && kill -KILL "$apply_pid" 2>/dev/null || true
  pgc_stop_all || true
  rm -rf "$work"
}
trap cleanup EXIT

# Heroku Postgres and RDS are durable (fsync, synchronous commit): so is the measured side by
# default.
opts=()
[ "$durable" = 1 ] && opts+=(--durable)
if [ "$meas" = src ]; then
  pgc_start src heroku "${opts[@]}" >/dev/null
  pgc_start tgt rds >/dev/null
else
  pgc_start src heroku >/dev/null
  pgc_start tgt rds "${opts[@]}" >/dev/null
fi
pgc_admin_psql tgt -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" # as RDS has it
if [ "$meas" = src ]; then MEAS_URL=$SRC_URL OTHER_URL=$TGT_URL; else MEAS_URL=$TGT_URL OTHER_URL=$SRC_URL; fi
# The capture goes on the measured side and applies to the other one.
ctl() { timeout 300 "$CTL_BIN" "$@" --source-url "$MEAS_URL" --target-url "$OTHER_URL"; }
timeout 300 pgbench -i -q -s "$scale" "$MEAS_URL" >/dev/null 2>&1
# Copied is enough (measured on the RDS-shaped side, the Heroku-shaped one keeps its own
# extra extensions, which schema copy reports as differences).
ctl schema copy >"$work/schema.out" 2>&1 || grep -q "^schema copied" "$work/schema.out" ||
  { cat "$work/schema.out" >&2; exit 1; }

postmaster=$(head -1 "${PGC_DIRS[$meas]}/data/postmaster.pid")
# Clock ticks of the whole server: the postmaster, its reaped children, its live children.
server_ticks() {
  local t f p
  read -r -a f < <(sed 's/.*) //' "/proc/$postmaster/stat")
  t=$((f[11] + f[12] + f[13] + f[14]))
  for p in $(pgrep -P "$postmaster"); do
    read -r -a f < <(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    t=$((t + f[11] + f[12]))
  done
  echo "$t"
}
children() { pgrep -c -P "$postmaster" || true; }
wal_lsn() { pgc_admin_psql "$meas" -XAtc "select pg_current_wal_lsn() - '0/0'::pg_lsn"; }
hz=$(getconf CLK_TCK)

# The capture's triggers as installed, and without the loop guard (bare).
trigger_defs() {
  pgc_admin_psql "$meas" -XAtc "select format('DROP TRIGGER %I ON %s; ', tgname, tgrelid::regclass) || pg_get_triggerdef(oid) || ';' from pg_trigger where tgname like 'pgcutover%'"
}
guard=" AND (current_setting('pgcutover.applying'::text, true) IS DISTINCT FROM 'on'::text)"
guard_only=" WHEN ((current_setting('pgcutover.applying'::text, true) IS DISTINCT FROM 'on'::text))"
set_triggers() { # guarded | bare
  if [ ! -s "$work/guarded.sql" ]; then
    trigger_defs >"$work/guarded.sql"
    /usr/bin/python3 - "$work/guarded.sql" "$guard" "$guard_only" >"$work/bare.sql" <<'PY'
import sys
text = open(sys.argv[1]).read()
print(text.replace(sys.argv[2], "").replace(sys.argv[3], ""), end="")
PY
    grep -q "pgcutover.applying" "$work/guarded.sql" || { echo "bench: no loop guard in the triggers" >&2; exit 1; }
    ! grep -q "pgcutover.applying" "$work/bare.sql" || { echo "bench: could not strip the loop guard" >&2; exit 1; }
  fi
  pgc_admin_psql "$meas" -q -f "$work/$1.sql"
}

set_config() { # off | capture | +apply | bare
  if [ "$1" = off ]; then
    ctl replicate stop >/dev/null 2>&1 || true
    rm -f "$work/guarded.sql" "$work/bare.sql"
  elif [ "$(pgc_admin_psql "$meas" -XAtc "select count(*) from pg_namespace where nspname = 'pgcutover'")" = 0 ]; then
    ctl replicate start --method trigger --jobs 2 >/dev/null
  fi
  if [ "$1" = bare ]; then set_triggers bare; elif [ "$1" != off ]; then set_triggers guarded; fi
  # The same starting point for every run: no dead rows, no dirty buffers.
  pgc_psql "$meas" -qc "VACUUM pgbench_accounts, pgbench_tellers, pgbench_branches, pgbench_history"
  pgc_admin_psql "$meas" -qc "CHECKPOINT"
}

# One run: "<tps> <server CPU us per transaction> <WAL bytes per transaction>"
run() { # <config>
  local base t0 w0 t1 w1 out tps n
  if [ "$1" = +apply ]; then
    "$CTL_BIN" replicate apply --source-url "$MEAS_URL" --target-url "$OTHER_URL" >"$work/apply.log" 2>&1 &
    apply_pid=$!
  fi
  base=$(children)
  t0=$(server_ticks) w0=$(wal_lsn)
  out=$(pgbench -n -c "$clients" -j "$(((clients + 1) / 2))" -T "$seconds" "$MEAS_URL" 2>&1) || {
    echo "$out" >&2
    exit 1
  }
  if [ -n "$apply_pid" ]; then
    kill -TERM "$apply_pid" 2>/dev/null || true
    wait "$apply_pid" 2>/dev/null || true
    apply_pid=""
  fi
  # The benchmark's backends exit after it: wait (bounded) until the postmaster reaped them,
  # so their CPU time is counted.
  for _ in $(seq 50); do [ "$(children)" -le "$base" ] && break; sleep 0.1; done
  t1=$(server_ticks) w1=$(wal_lsn)
  tps=$(grep -oE 'tps = [0-9.]+' <<<"$out" | head -1 | cut -d' ' -f3)
  n=$(grep -oE 'actually processed: [0-9]+' <<<"$out" | cut -d' ' -f3)
  echo "$tps $(((t1 - t0) * 1000000 / hz / n)) $(((w1 - w0) / n))"
}

configs=(off capture)
[ "$with_apply" = 1 ] && configs+=(+apply)
[ "$with_bare" = 1 ] && configs+=(bare)
echo "pgbench tpcb-like on the $([ "$meas" = src ] && echo Heroku || echo RDS)-shaped $side, scale $scale, $clients clients, $seconds s per run, $rounds rounds," \
  "fsync $([ "$durable" = 1 ] && echo on || echo off), $(nproc) cores"
printf '%-6s %-8s %10s %14s %12s\n' round config tps cpu_us/txn wal_B/txn
for ((r = 1; r <= rounds; r++)); do
  order=("${configs[@]}")
  if ((r % 2 == 0)); then
    order=()
    for ((i = ${#configs[@]} - 1; i >= 0; i--)); do order+=("${configs[$i]}"); done
  fi
  for c in "${order[@]}"; do
    set_config "$c"
    read -r tps cpu wal < <(run "$c")
    printf '%-6s %-8s %10.1f %14s %12s\n' "$r" "$c" "$tps" "$cpu" "$wal"
    echo "$c $tps $cpu $wal" >>"$work/results"
  done
done

/usr/bin/python3 - "$work/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for c in dict.fromkeys(r[0] for r in rows):
    v = [r[1:] for r in rows if r[0] == c]
    med[c] = [statistics.median(float(x[i]) for x in v) for i in range(3)]
print("median:")
for c, (tps, cpu, wal) in med.items():
    line = f"  {c:<8} {tps:8.1f} tps {cpu:7.0f} us CPU/txn {wal:6.0f} B WAL/txn"
    if c != "off":
        o = med["off"]
        line += (f"   tps ratio {tps / o[0]:.3f} ({(1 - tps / o[0]) * 100:+.1f}% cost),"
                 f" CPU/txn x{cpu / o[1]:.2f}, WAL/txn x{wal / o[2]:.2f}")
    print(line)
PY
