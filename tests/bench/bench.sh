#!/usr/bin/env bash
# Every benchmark of pgcutover-proxy, side by side with PgBouncer (same pool size) and direct
# PostgreSQL, in one run on one machine, so that the ratios carry over to another machine:
#   - pgbench select-only, tpcb-like, -M extended, -M prepared, -C at 1, 32 and 256 clients
#     (and from the 1-client runs: the latency each pooler adds per query);
#   - RSS with 10,000 idle clients, plain and TLS, logged in only and after one query each
#     (proxy and PgBouncer, each set on freshly started poolers);
#   - full TLS handshakes per second (proxy and PgBouncer, same certificate);
#   - `pgcutoverctl validate` throughput (MB/s per side);
#   - the write pause of 20 flips under pgbench tpcb-like (p50/p99/max).
# Writes the tables to $BENCH_OUT/results.md (and prints them) and the plots to docs/img/.
# A benchmark, not a CTest test. Needs root (or enough `ulimit -n`) for 10,000 connections.
#
#   tests/bench/bench.sh                      the whole run (~12 min on 2 cores)
#   BENCH_SECONDS=3 BENCH_CLIENTS="1 32" BENCH_IDLE=2000 BENCH_FLIPS=5 tests/bench/bench.sh
#
# Knobs: BENCH_SECONDS (per pgbench run, default 10), BENCH_CLIENTS ("1 32 256"),
# BENCH_WORKLOADS ("select-only tpcb-like extended prepared connect"), BENCH_POOL (16),
# BENCH_SCALE (10), BENCH_PROXY_THREADS (0 = one per core), BENCH_IDLE (10000),
# BENCH_TLS_SECONDS (10), BENCH_FLIPS (20), BENCH_OUT (build/bench), BENCH_IMG (docs/img),
# BENCH_SERVER_TLS (0; 1: both poolers reach PostgreSQL over TLS, sslmode=require, as a proxy on
# a Heroku dyno reaches Heroku Postgres; pgbench to the poolers and direct stays plain),
# BENCH_PROFILE (0; 1: `perf record` samples each pooler during its measured pgbench runs, and
# $BENCH_OUT/profile-<workload>-<clients>-<pooler>.txt gets where its CPU went, by library and
# by function: the sampling costs the pooler a little, so compare CPU figures of unprofiled runs).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/tests/bench
PROXY_BIN=${PGCUTOVER_PROXY_BIN:-$top/build/proxy/pgcutover-proxy}
CTL_BIN=${PGCUTOVER_CTL_BIN:-$top/build/control/pgcutoverctl}
PY=/usr/bin/python3
for b in "$PROXY_BIN" "$CTL_BIN"; do
  [ -x "$b" ] || { echo "bench: not built: $b (run deploy/build.sh first)" >&2; exit 1; }
done
# PgBouncer and matplotlib are installed for the benchmarks only.
"$top/deploy/bootstrap.sh" --no-build --bench
seconds=${BENCH_SECONDS:-10}
clients_list=${BENCH_CLIENTS:-"1 32 256"}
workloads=${BENCH_WORKLOADS:-"select-only tpcb-like extended prepared connect"}
pool=${BENCH_POOL:-16}
scale=${BENCH_SCALE:-10}
proxy_threads=${BENCH_PROXY_THREADS:-0}
idle_n=${BENCH_IDLE:-10000}
tls_seconds=${BENCH_TLS_SECONDS:-10}
flips=${BENCH_FLIPS:-20}
server_tls=${BENCH_SERVER_TLS:-0}
profile=${BENCH_PROFILE:-0}
[ "$profile" = 0 ] || command -v perf >/dev/null || { echo "bench: BENCH_PROFILE needs perf" >&2; exit 1; }
server_ssl=disable
[ "$server_tls" = 1 ] && server_ssl=require
out=${BENCH_OUT:-$top/build/bench}
mkdir -p "$out"
profile_dir=$out # run_pgbench has a local of that name
img=${BENCH_IMG:-$top/docs/img}
max_clients=$(tr ' ' '\n' <<<"$clients_list" | sort -n | tail -1)

# 10,000 clients need 10,000 descriptors in the pooler and in the client, plus PgBouncer's
# server side; the limit is inherited by everything started below.
want_fds=$((idle_n * 2 + 4096))
if [ "$(ulimit -n)" -lt "$want_fds" ]; then
  ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)" ||
    { echo "bench: cannot raise ulimit -n to $want_fds" >&2; exit 1; }
fi

# Clusters, PgBouncer, $run, pids, cleanup at exit, log.
. "$top/tests/bench/bench_run.bash" pgcutover-bench

# ---- two clusters, SCRAM for the app role over TCP (as in production), no TLS ----
pg_opts=(--logical --max-connections $((max_clients + 64)) --set shared_buffers=256MB)
shape=plain
[ "$server_tls" = 1 ] && shape=heroku # TLS on (the line added below lets direct pgbench in plain)
pgc_start db $shape "${pg_opts[@]}" >/dev/null
pgc_start tgt $shape "${pg_opts[@]}" >/dev/null
password=$(pgc_get db app_password)
for c in db tgt; do
  # The plain shape trusts 127.0.0.1; make the app role log in with SCRAM like everywhere else,
  # so a pooler's logins and direct logins cost the same work.
  hba=$(pgc_admin_psql "$c" -XAtc "show hba_file")
  sed -i "1i host all app 127.0.0.1/32 scram-sha-256" "$hba"
  pgc_admin_psql "$c" -XAtc "alter role app password '$password'" >/dev/null
  pgc_admin_psql "$c" -XAtc "select pg_reload_conf()" >/dev/null
done
export PGPASSWORD=$password
export PGSSLMODE=disable # libpq's default "prefer" would make pgbench use TLS to both poolers
pgc_make_tls "$run/tls" bench >/dev/null
chmod 644 "$run"/tls/*

# ---- pgcutover-proxy (client TLS allowed: pgbench goes plain, the TLS benchmark does not) ----
proxy_port=$(pgc_free_port)
admin_port=$(pgc_free_port)
token="bench-$$-$RANDOM"
cat >"$run/proxy.toml" <<EOT
[proxy]
listen_port = $proxy_port
threads = $proxy_threads
pool_mode = "transaction"
default_pool_size = $pool
max_client_conn = $((idle_n + max_clients + 1000))
state_file = "$run/state.json"
log_level = "warn"
[proxy.tls]
client_tls = "allow"
cert_file = "$run/tls/server.crt"
key_file = "$run/tls/server.key"
[users.app]
password = "$password"
[backends.source]
url = "postgresql://app:$password@127.0.0.1:$DB_PORT/app?sslmode=$server_ssl"
[backends.target]
url = "postgresql://app:$password@127.0.0.1:$TGT_PORT/app?sslmode=$server_ssl"
[cutover]
initial_backend = "source"
max_pause = 20
[admin]
listen_port = $admin_port
token = "$token"
EOT
ready() { pg_isready -q -h 127.0.0.1 -p "$1" -t 1; }
start_proxy() {
  "$PROXY_BIN" -c "$run/proxy.toml" >>"$run/proxy.log" 2>&1 &
  proxy_pid=$!
  pids+=("$proxy_pid")
  pgc_wait_until 15 ready "$proxy_port" || { cat "$run/proxy.log"; echo "bench: proxy did not start" >&2; exit 1; }
}

# ---- PgBouncer, same pool size and TLS certificate ----
start_bouncer() {
  start_pgbouncer "$run" "$DB_PORT" "$password" "$pool" $((idle_n + max_clients + 1000)) "$server_ssl" \
    "client_tls_sslmode = allow
client_tls_cert_file = $run/tls/server.crt
client_tls_key_file = $run/tls/server.key"
  [ "$(awk '/open files/ {print $4}' "/proc/$bouncer_pid/limits")" -ge "$idle_n" ] ||
    echo "bench: PgBouncer has fewer descriptors than $idle_n clients need" >&2
}
# Both poolers afresh: memory freed by earlier clients stays in a process's heap, and the next
# set of idle clients would reuse it and look free.
gone() { # exited: no process, or a zombie (our child, reaped by wait below)
  local stat
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 0
  [[ ${stat##*) } == Z* ]]
}
restart_poolers() {
  kill "$proxy_pid" "$bouncer_pid"
  pgc_wait_until 15 gone "$proxy_pid" && pgc_wait_until 15 gone "$bouncer_pid" ||
    { echo "bench: a pooler did not stop" >&2; exit 1; }
  wait "$proxy_pid" "$bouncer_pid" 2>/dev/null || true
  start_proxy
  start_bouncer
}
start_proxy
start_bouncer

log "pgbench -i -s $scale"
pgbench -i -s "$scale" -q -h 127.0.0.1 -p "$DB_PORT" -U app app >/dev/null 2>&1
pgc_admin_psql db -XAtc "vacuum analyze" >/dev/null

# ---- the pgbench matrix ----
# CPU seconds (user + system) a process has used so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# The system calls a pooler's transaction is made of, counted one by one in profile mode.
syscall_events=$(printf 'syscalls:sys_enter_%s,' recvfrom sendto read write readv writev recvmsg \
  sendmsg epoll_wait epoll_ctl futex getsockopt setsockopt accept4 close)
syscall_events=${syscall_events%,}

# profile_report <perf data> <name>: where the sampled CPU went, by library, then by function.
profile_report() {
  local f="$profile_dir/profile-$2.txt"
  {
    echo "# $2: share of the pooler's sampled CPU"
    perf report -i "$1" --no-children --sort dso --stdio --percent-limit 1 2>/dev/null |
      grep -v '^#' | grep -v '^$' | sed 's/ *$//'
    echo
    perf report -i "$1" --no-children --sort dso,symbol --stdio --percent-limit 0.7 2>/dev/null |
      grep -v '^#' | grep -v '^$' | sed 's/  *- *- *$//; s/ *$//' | head -45
  } >"$f"
  rm -f "$1"
}

# run_pgbench <port> <clients> <workload> [pooler pid] [pooler name]
#   -> "tps<TAB>latency_ms<TAB>status<TAB>pooler CPU microseconds per transaction ('-': direct)"
# The pooler's CPU per transaction compares the two poolers' own cost on any machine: on a
# small one pgbench, PostgreSQL and the pooler share the cores, so tps mostly shows who shares.
run_pgbench() {
  local port=$1 c=$2 w=$3 pid=${4:-} name=${5:-} args out j cpu0=0 cpu1=0 perf_pid=
  case $w in
    select-only) args=(-b select-only) ;;
    tpcb-like) args=(-b tpcb-like) ;;
    extended) args=(-b select-only -M extended) ;;
    prepared) args=(-b select-only -M prepared) ;;
    connect) args=(-b select-only -C) ;;
  esac
  j=$((c < 2 ? 1 : 2))
  if [ "$w" != connect ]; then # warm the pool: connection set-up is not what is measured
    timeout 60 pgbench -n -c "$c" -j "$j" -T 1 -h 127.0.0.1 -p "$port" -U app "${args[@]}" app >/dev/null 2>&1 || true
  fi
  [ -n "$pid" ] && cpu0=$(cpu_ticks "$pid")
  if [ "$profile" != 0 ] && [ -n "$pid" ]; then
    perf record -q -F 999 -p "$pid" -o "$run/perf.data" -- sleep "$seconds" >/dev/null 2>&1 &
    perf_pid=$!
    perf stat -x, -e "raw_syscalls:sys_enter,$syscall_events" -p "$pid" -o "$run/perf.stat" \
      -- sleep "$seconds" >/dev/null 2>&1 &
    perf_pid="$perf_pid $!"
  fi
  out=$(timeout $((seconds + 120)) pgbench -n -c "$c" -j "$j" -T "$seconds" -h 127.0.0.1 -p "$port" -U app "${args[@]}" app 2>&1) || true
  [ -n "$pid" ] && cpu1=$(cpu_ticks "$pid")
  if [ -n "$perf_pid" ]; then
    # shellcheck disable=SC2086 # two pids
    wait $perf_pid 2>/dev/null || true
    profile_report "$run/perf.data" "$w-$c-$name"
    awk -F, -v n="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")" \
      'n > 0 && $3 == "raw_syscalls:sys_enter" { printf "\nsystem calls per transaction: %.1f\n", $1 / n }
       n > 0 && $3 ~ /^syscalls:sys_enter_/ && $1 > 0 { sub(/syscalls:sys_enter_/, "", $3); printf "  %-12s %.2f\n", $3, $1 / n }' \
      "$run/perf.stat" >>"$profile_dir/profile-$w-$c-$name.txt" 2>/dev/null || true
  fi
  local tps lat failed aborted txns cpu=-
  txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
  if [ -n "$pid" ] && [ "${txns:-0}" -gt 0 ]; then
    cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v n="$txns" -v hz="$(getconf CLK_TCK)" \
      'BEGIN { printf "%.1f", (b - a) * 1000000 / hz / n }')
  fi
  tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
  lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' <<<"$out")
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
  aborted=$(grep -c "aborted in command\|client .* aborted" <<<"$out" || true)
  if [ -z "$tps" ] || [ "${aborted:-0}" -gt 0 ] || [ "${failed:-0}" != 0 ]; then
    printf '0\t0\t%s\t-\n' "$(grep -m1 -o 'ERROR: [^"]*\|FATAL: [^"]*\|aborted[^.]*' <<<"$out" | head -c 60 | tr '\t|' '  ' || echo error)"
  else
    printf '%s\t%s\tok\t%s\n' "$tps" "${lat:-0}" "$cpu"
  fi
}
: >"$run/pgbench.tsv"
for w in $workloads; do
  for c in $clients_list; do
    for t in direct pgbouncer proxy; do
      case $t in
        direct) port=$DB_PORT pid= ;;
        pgbouncer) port=$bouncer_port pid=$bouncer_pid ;;
        proxy) port=$proxy_port pid=$proxy_pid ;;
      esac
      r=$(run_pgbench "$port" "$c" "$w" "$pid" "$t")
      printf '%s\t%s\t%s\t%s\n' "$w" "$c" "$t" "$r" >>"$run/pgbench.tsv"
      log "$(printf '%-12s %4s clients %-10s %s' "$w" "$c" "$t" "$r")"
    done
  done
done

# ---- 10,000 idle clients, plain and TLS, logged in only and after one query each (an app's
# pooled connection between requests); each set disconnects before the next ----
for mode in plain plain-query tls tls-query; do
  [ "$mode" = plain ] || restart_poolers
  flags=()
  case $mode in tls*) flags+=(--tls) ;; esac
  case $mode in *-query) flags+=(--query) ;; esac
  for t in proxy pgbouncer; do
    if [ "$t" = proxy ]; then port=$proxy_port pid=$proxy_pid; else port=$bouncer_port pid=$bouncer_pid; fi
    log "$idle_n idle clients ($mode): $t"
    timeout 300 "$PY" "$here/idle_clients.py" --port "$port" --user app --password "$password" \
      --pid "$pid" -n "$idle_n" "${flags[@]}" >"$run/idle-$mode-$t.json" ||
      log "idle clients ($mode) through $t failed"
    cat "$run/idle-$mode-$t.json" >&2
  done
done

# ---- TLS handshakes ----
for t in proxy pgbouncer; do
  if [ "$t" = proxy ]; then port=$proxy_port; else port=$bouncer_port; fi
  log "TLS handshakes: $t"
  timeout 300 "$PY" "$here/tls_handshakes.py" --port "$port" --ca "$run/tls/ca.crt" \
    --seconds "$tls_seconds" --procs 2 >"$run/tls-$t.json" || log "TLS through $t failed"
  cat "$run/tls-$t.json" >&2
done

# ---- logical replication db -> tgt, validate throughput ----
log "logical replication to the target, then validate"
pg_dump --schema-only --no-owner --no-acl -t 'pgbench_*' -h 127.0.0.1 -p "$DB_PORT" -U app app |
  psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$TGT_PORT" -U app app >/dev/null
pgc_admin_psql db -qc "create publication bench_pub for table pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history" >/dev/null
# Over the source's Unix socket as its superuser: allowed by every cluster shape (the heroku
# shape of BENCH_SERVER_TLS=1 takes TCP logins with TLS and a password only).
pgc_admin_psql tgt -qc "create subscription bench_sub connection '$(pgc__admin_conninfo "$(pgc__dir_of db)" app)' publication bench_pub with (synchronous_commit = 'on')" >/dev/null
synced() { [ "$(pgc_admin_psql tgt -At -c "select count(*) from pg_subscription_rel where srsubstate <> 'r'")" = 0 ]; }
pgc_wait_until 300 synced || { echo "bench: initial copy did not finish" >&2; exit 1; }
src_url="postgresql://app:$password@127.0.0.1:$DB_PORT/app?sslmode=disable"
tgt_url="postgresql://app:$password@127.0.0.1:$TGT_PORT/app?sslmode=disable"
"$CTL_BIN" validate --source-url "$src_url" --target-url "$tgt_url" --jobs 2 --json >"$run/validate.raw" 2>"$run/validate.err" ||
  log "validate exited non-zero (see below)"
"$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(json.dumps({"jobs": 2, "rows": d["rows"], "mb": d["bytes"] / 1048576, "seconds": d["seconds"], "ok": d["ok"]}))
' "$run/validate.raw" >"$run/validate.json" || { cat "$run/validate.raw" "$run/validate.err" >&2; }
cat "$run/validate.json" >&2 || true

# ---- flips under load ----
log "$flips flips under pgbench tpcb-like, 16 clients"
(cd "$run" && timeout $((flips * 10 + 120)) pgbench -n -c 16 -j 2 -T $((flips * 2 + 15)) -l --log-prefix=flip_log \
  -h 127.0.0.1 -p "$proxy_port" -U app app >"$run/flip_pgbench.out" 2>&1) &
bench_pid=$!
history_rows() { psql -X -At -h 127.0.0.1 -p "$DB_PORT" -U app -c "select count(*) from pgbench_history" app; }
before=$(history_rows)
loaded() { [ "$(history_rows)" -gt $((before + 500)) ]; }
pgc_wait_until 30 loaded || { cat "$run/flip_pgbench.out" >&2; echo "bench: pgbench is not running through the proxy" >&2; exit 1; }
ADMIN="http://127.0.0.1:$admin_port" TOKEN=$token SRC_ADMIN_URL="host=127.0.0.1 port=$DB_PORT user=postgres dbname=app" \
  "$PY" "$here/flip_rounds.py" --rounds "$flips" --slot bench_sub >"$run/flips.json" || log "flip rounds failed"
wait "$bench_pid" || log "pgbench across the flips exited non-zero"
grep -E "failed|processed" "$run/flip_pgbench.out" >&2 || true

# ---- report ----
"$PY" -c '
import json, sys, datetime, os
print(json.dumps({"date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), "cores": os.cpu_count(),
  "seconds": sys.argv[1], "scale": sys.argv[2], "pool": sys.argv[3], "proxy_threads": sys.argv[4],
  "pg": sys.argv[5], "pgbouncer": sys.argv[6], "server_tls": sys.argv[7] == "1"}))' "$seconds" "$scale" "$pool" "$proxy_threads" \
  "$(pg_config --version)" "$(pgbouncer --version | head -1)" "$server_tls" >"$run/meta.json"
mkdir -p "$out"
profile_dir=$out # run_pgbench has a local of that name
cp "$run"/*.tsv "$run"/*.json "$out/" 2>/dev/null || true
"$PY" "$here/report.py" "$run" "$out" "$img"
