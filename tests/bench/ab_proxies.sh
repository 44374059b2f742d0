#!/usr/bin/env bash
# Two builds of pgcutover-proxy and PgBouncer side by side in ONE run, alternating, so that a
# change's effect on the proxy's CPU per transaction is told apart from the machine's drift:
# every (workload, clients) cell runs PgBouncer, build A and build B in turn, the order reversed
# every other round, and the medians are compared. Proxy and PgBouncer reach PostgreSQL over TLS
# (sslmode=require) by default, as on a Heroku dyno; pgbench reaches them in plain TCP.
# A benchmark, not a CTest test.
#
#   tests/bench/ab_proxies.sh OLD_PROXY_BIN NEW_PROXY_BIN
#   BENCH_WORKLOADS="select-only tpcb-like extended" BENCH_CLIENTS="1 32" BENCH_SECONDS=10 \
#     BENCH_ROUNDS=3 BENCH_SERVER_TLS=1 BENCH_POOL=20 BENCH_SCALE=10 tests/bench/ab_proxies.sh A B
#
# Prints, per cell: tps, pooler CPU (user + system) microseconds per transaction and the
# pooler's context switches per transaction (every thread's, voluntary + involuntary: each one is
# a sleep and a wake-up, which on a VM costs the pooler CPU beyond the system call), medians of
# the rounds, and the ratios A/PgBouncer, B/PgBouncer and B/A. BENCH_SYSCALLS=1 adds each
# pooler's system calls per transaction (strace; BENCH_ROUNDS=0 for that table alone).
# BENCH_MALLOCS=1 adds each pooler's calls to malloc per transaction (a uprobe on libc, perf stat;
# needs root).
# BENCH_PROFILE=1 adds one `perf record` run per cell and pooler (its report, by library and by
# function, in build/bench/ab-profile-<workload>-<clients>-<pooler>.txt, the samples with their call
# graphs beside it in .perf.data; BENCH_PROFILE_CALLGRAPH=dwarf for call graphs through libraries
# built without frame pointers, such as libc).
# BENCH_CLIENT_TLS=1: pgbench reaches both poolers over TLS too (sslmode=require, one certificate
# made for the run): what a dyno whose app reaches the proxy with sslmode=require pays.
# BENCH_THREADS_A / BENCH_THREADS_B set `threads` in that proxy's config (default: the proxy's
# own, one shard thread per core); A and B may then be the same binary.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -eq 2 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2; }
bin_a=$1 bin_b=$2
for b in "$bin_a" "$bin_b"; do [ -x "$b" ] || { echo "ab: not executable: $b" >&2; exit 2; }; done
# PgBouncer and matplotlib are installed for the benchmarks only.
"$top/deploy/bootstrap.sh" --no-build --bench
seconds=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-3}
workloads=${BENCH_WORKLOADS:-"select-only tpcb-like extended"}
clients_list=${BENCH_CLIENTS:-"1 32"}
pool=${BENCH_POOL:-20}
scale=${BENCH_SCALE:-10}
server_ssl=disable
[ "${BENCH_SERVER_TLS:-1}" = 1 ] && server_ssl=require
client_tls=${BENCH_CLIENT_TLS:-0}

# Clusters, PgBouncer, $run, pids, cleanup at exit, log.
. "$top/tests/bench/bench_run.bash" pgcutover-ab

# The heroku shape has TLS on; one hba line lets pgbench's direct runs in plain TCP with SCRAM.
pgc_start db heroku --max-connections 200 --set shared_buffers=256MB >/dev/null
password=$(pgc_get db app_password)
hba=$(pgc_admin_psql db -XAtc "show hba_file")
sed -i "1i host all app 127.0.0.1/32 scram-sha-256" "$hba"
pgc_admin_psql db -XAtc "select pg_reload_conf()" >/dev/null
export PGPASSWORD=$password PGSSLMODE=disable
log "pgbench -i -s $scale"
pgbench -i -s "$scale" -q -h 127.0.0.1 -p "$DB_PORT" -U app app >/dev/null 2>&1
pgc_admin_psql db -XAtc "vacuum analyze" >/dev/null
# Client TLS: one certificate for both poolers; the pooler-side settings below.
proxy_client_tls='client_tls = "disable"' bouncer_client_tls=
if [ "$client_tls" = 1 ]; then
  pgc_make_tls "$run/tls" bench >/dev/null
  chmod 644 "$run"/tls/*
  proxy_client_tls="client_tls = \"require\"
cert_file = \"$run/tls/server.crt\"
key_file = \"$run/tls/server.key\""
  bouncer_client_tls="client_tls_sslmode = require
client_tls_cert_file = $run/tls/server.crt
client_tls_key_file = $run/tls/server.key"
fi

start_proxy() { # <name> <binary> [threads]: sets proxy_port and proxy_pid (no subshell: cleanup kills it)
  local port threads_line=
  port=$(pgc_free_port)
  [ -z "${3:-}" ] || threads_line="threads = $3"
  cat >"$run/$1.toml" <<EOT
[proxy]
listen_port = $port
$threads_line
pool_mode = "transaction"
default_pool_size = $pool
max_client_conn = 2000
state_file = "$run/$1.state.json"
log_level = "warn"
[proxy.tls]
$proxy_client_tls
[users.app]
password = "$password"
[backends.source]
url = "postgresql://app:$password@127.0.0.1:$DB_PORT/app?sslmode=$server_ssl"
[cutover]
initial_backend = "source"
EOT
  "$2" -c "$run/$1.toml" >"$run/$1.log" 2>&1 &
  pids+=($!)
  proxy_port=$port proxy_pid=$!
}
start_proxy a "$bin_a" "${BENCH_THREADS_A:-}"
port_a=$proxy_port pid_a=$proxy_pid
start_proxy b "$bin_b" "${BENCH_THREADS_B:-}"
port_b=$proxy_port pid_b=$proxy_pid

start_pgbouncer "$run" "$DB_PORT" "$password" "$pool" 2000 "$server_ssl" "$bouncer_client_tls"
# pgbench to the poolers: over TLS with BENCH_CLIENT_TLS=1 (the direct runs above stay plain).
[ "$client_tls" = 1 ] && export PGSSLMODE=require
port_p=$bouncer_port pid_p=$bouncer_pid
ready() { pg_isready -q -h 127.0.0.1 -p "$1" -t 1; }
for p in "$port_a" "$port_b"; do
  pgc_wait_until 15 ready "$p" || { cat "$run"/*.log; echo "ab: a proxy did not start on $p" >&2; exit 1; }
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Context switches of every thread of <pid> so far (a thread that ended takes its count along:
# the poolers' threads live as long as they do).
switches() { cat /proc/"$1"/task/*/status | awk '/^(non)?voluntary_ctxt_switches:/ { n += $2 } END { print n }'; }
hz=$(getconf CLK_TCK)
# pooler <a|b|pgbouncer>: sets port and pid
pooler() {
  case $1 in
    a) port=$port_a pid=$pid_a ;;
    b) port=$port_b pid=$pid_b ;;
    pgbouncer) port=$port_p pid=$pid_p ;;
  esac
}
# pgbench_run <port> <clients> <workload> <seconds>: pgbench's output (exits on failure)
pgbench_run() {
  local args out
  case $3 in
    select-only) args=(-b select-only) ;;
    tpcb-like) args=(-b tpcb-like) ;;
    extended) args=(-b select-only -M extended) ;;
    *) echo "ab: unknown workload $3" >&2; exit 2 ;;
  esac
  out=$(timeout $(($4 + 60)) pgbench -n -c "$2" -j $(($2 < 2 ? 1 : 2)) -T "$4" -h 127.0.0.1 -p "$1" \
    -U app "${args[@]}" app 2>&1) || { echo "$out" >&2; exit 1; }
  echo "$out"
}
txns_of() { sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$1"; }
# warm_up <port> <clients> <workload>: one second of the workload first, so that what is
# measured next is the steady state (the pool's server connections and their TLS handshakes made).
warm_up() { (pgbench_run "$1" "$2" "$3" 1 >/dev/null 2>&1) || true; }
# each_extra_run <function>: the extra measurements after the rounds (system calls, mallocs,
# profiles) run the workload once more per cell and pooler, warmed up. <function> is called with
# <workload> <clients> <pooler> after `pooler` set $port and $pid; it runs the pgbench itself.
each_extra_run() {
  local w c t
  for w in $workloads; do
    for c in $clients_list; do
      for t in pgbouncer a b; do
        pooler "$t"
        warm_up "$port" "$c" "$w"
        "$1" "$w" "$c" "$t"
      done
    done
  done
}
# one <port> <pid> <clients> <workload> -> "tps cpu_us_per_txn switches_per_txn"
one() {
  local out c0 c1 s0 s1 n tps
  warm_up "$1" "$3" "$4"
  c0=$(cpu_ticks "$2") s0=$(switches "$2")
  out=$(pgbench_run "$1" "$3" "$4" "$seconds")
  c1=$(cpu_ticks "$2") s1=$(switches "$2")
  n=$(txns_of "$out")
  tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
  awk -v t="$tps" -v a="$c0" -v b="$c1" -v s="$s0" -v e="$s1" -v n="$n" -v hz="$hz" \
    'BEGIN { printf "%s %.1f %.2f\n", t, (b - a) * 1000000 / hz / n, (e - s) / n }'
}

: >"$run/results"
for ((r = 1; r <= rounds; r++)); do
  order=(pgbouncer a b)
  ((r % 2 == 0)) && order=(b a pgbouncer)
  for w in $workloads; do
    for c in $clients_list; do
      for t in "${order[@]}"; do
        pooler "$t"
        read -r tps cpu sw < <(one "$port" "$pid" "$c" "$w")
        log "round $r $w $c clients $t: $tps tps, $cpu us/txn, $sw context switches/txn"
        echo "$w $c $t $tps $cpu $sw" >>"$run/results"
      done
    done
  done
done

# BENCH_SYSCALLS=1: after the rounds, one more run per cell and pooler under `strace -c -f`
# (which slows the pooler: these runs are not in the CPU table), printing the pooler's system
# calls per transaction by call.
if [ "${BENCH_SYSCALLS:-0}" = 1 ]; then
  command -v strace >/dev/null || { echo "ab: BENCH_SYSCALLS=1 needs strace (apt-get install strace)" >&2; exit 2; }
  traced() { # <pid>: every thread of the pooler has a tracer
    local t
    for t in /proc/"$1"/task/*; do
      grep -q '^TracerPid:[[:space:]]*[1-9]' "$t/status" || return 1
    done
  }
  count_syscalls() { # <workload> <clients> <pooler>
    local spid out
    strace -f -c -q -p "$pid" -o "$run/strace-$1-$2-$3.txt" &
    spid=$!
    pgc_wait_until 10 traced "$pid" || { echo "ab: strace did not attach to $pid" >&2; exit 1; }
    out=$(pgbench_run "$port" "$2" "$1" "$seconds")
    kill -INT "$spid"
    wait "$spid" || true
    echo "$1 $2 $3 $(txns_of "$out") $run/strace-$1-$2-$3.txt" >>"$run/syscalls"
  }
  each_extra_run count_syscalls
fi

# BENCH_MALLOCS=1: one more run per cell and pooler counting the pooler's calls to libc's
# malloc (a uprobe, `perf stat`): heap allocations per transaction.
if [ "${BENCH_MALLOCS:-0}" = 1 ]; then
  command -v perf >/dev/null || { echo "ab: BENCH_MALLOCS=1 needs perf (apt-get install linux-perf)" >&2; exit 2; }
  libc=$(ldconfig -p | awk '/libc\.so\.6 .*x86-64/ { print $NF; exit }')
  [ -n "$libc" ] || libc=/lib/x86_64-linux-gnu/libc.so.6
  # A probe of our own name, removed again at the end (a uprobe needs root, as perf record -p).
  perf probe -q -d probe_libc:pgcutover_ab_malloc >/dev/null 2>&1 || true
  perf probe -q -x "$libc" --add pgcutover_ab_malloc=malloc ||
    { echo "ab: could not add a uprobe on $libc's malloc (root and a kernel with uprobes needed)" >&2; exit 2; }
  count_mallocs() { # <workload> <clients> <pooler>
    local stat_pid out calls csv=$run/mallocs-$1-$2-$3.csv
    perf stat -x, -e probe_libc:pgcutover_ab_malloc -p "$pid" -o "$csv" &
    stat_pid=$!
    out=$(pgbench_run "$port" "$2" "$1" "$seconds")
    kill -INT "$stat_pid"
    wait "$stat_pid" || true
    calls=$(awk -F, '/pgcutover_ab_malloc/ { print $1; exit }' "$csv")
    echo "$1 $2 $3 $(txns_of "$out") ${calls:-0}" >>"$run/mallocs"
  }
  each_extra_run count_mallocs
  perf probe -q -d probe_libc:pgcutover_ab_malloc >/dev/null 2>&1 || true
fi

# BENCH_PROFILE=1: one more run per cell and pooler with `perf record` on the pooler (sampling
# costs it a little: not in the CPU table), reported by library and by function.
if [ "${BENCH_PROFILE:-0}" = 1 ]; then
  command -v perf >/dev/null || { echo "ab: BENCH_PROFILE=1 needs perf (apt-get install linux-perf)" >&2; exit 2; }
  profile_dir=${PGCUTOVER_BUILD_DIR:-$top/build}/bench
  mkdir -p "$profile_dir"
  record_profile() { # <workload> <clients> <pooler>
    local perf_pid out f=$profile_dir/ab-profile-$1-$2-$3.txt
    perf record -q -F 999 --call-graph "${BENCH_PROFILE_CALLGRAPH:-fp}" -p "$pid" -o "$run/perf.data" -- sleep "$seconds" >/dev/null 2>&1 &
    perf_pid=$!
    out=$(pgbench_run "$port" "$2" "$1" "$seconds")
    wait "$perf_pid" || true
    {
      echo "# $1, $2 clients, $3: $(txns_of "$out") transactions; share of the sampled CPU"
      # (A report with no lines, or head closing the pipe early, is not a failure.)
      perf report -i "$run/perf.data" --no-children -g none --sort dso --stdio --percent-limit 1 2>/dev/null |
        grep -v -e '^#' -e '^$' | sed 's/ *$//' || true
      echo
      perf report -i "$run/perf.data" --no-children -g none --sort dso,symbol --stdio \
        --percent-limit 0.5 2>/dev/null | grep -v -e '^#' -e '^$' | sed 's/ *$//' | head -60 || true
    } >"$f"
    mv "$run/perf.data" "${f%.txt}.perf.data"
    log "profile: $f (perf report -i ${f%.txt}.perf.data for more)"
  }
  each_extra_run record_profile
fi

echo "A = $bin_a"
echo "B = $bin_b"
echo "server TLS: $server_ssl, $seconds s per run, $rounds rounds (medians), pool $pool, scale $scale, $(nproc) cores, $(pgbouncer --version | head -1)"
echo "proxy threads: A ${BENCH_THREADS_A:-default}, B ${BENCH_THREADS_B:-default}; pgbench to the poolers over TLS: $([ "$client_tls" = 1 ] && echo yes || echo no)"
[ -s "$run/results" ] && /usr/bin/python3 - "$run/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
cells = list(dict.fromkeys((r[0], r[1]) for r in rows))
print("| workload | clients | PgBouncer tps | A tps | B tps | PgBouncer µs/txn | A µs/txn | B µs/txn | A/PgBouncer CPU | B/PgBouncer CPU | B/A CPU | switches/txn PgBouncer, A, B |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for w, c in cells:
    m = {}
    for t in ("pgbouncer", "a", "b"):
        v = [r for r in rows if r[0] == w and r[1] == c and r[2] == t]
        m[t] = tuple(statistics.median(float(x[i]) for x in v) for i in (3, 4, 5))
    p, a, b = m["pgbouncer"], m["a"], m["b"]
    print(f"| {w} | {c} | {p[0]:.0f} | {a[0]:.0f} | {b[0]:.0f} | {p[1]:.1f} | {a[1]:.1f} | {b[1]:.1f} | "
          f"{a[1] / p[1]:.2f} | {b[1] / p[1]:.2f} | {b[1] / a[1]:.2f} | {p[2]:.2f}, {a[2]:.2f}, {b[2]:.2f} |")
PY
if [ -f "$run/mallocs" ]; then
  echo
  echo "Calls to malloc per transaction (a uprobe, one run per cell, not the runs above):"
  echo "| workload | clients | PgBouncer | A | B |"
  echo "|---|---|---|---|---|"
  awk '{ v[$1 " " $2 " " $3] = ($4 > 0 ? $5 / $4 : 0); if (!($1 " " $2 in seen)) { seen[$1 " " $2] = 1; order[++n] = $1 " " $2 } }
    END { for (i = 1; i <= n; i++) { split(order[i], k, " ");
      printf "| %s | %s | %.1f | %.1f | %.1f |\n", k[1], k[2], v[order[i] " pgbouncer"], v[order[i] " a"], v[order[i] " b"] } }' "$run/mallocs"
fi
if [ -f "$run/syscalls" ]; then
  echo
  echo "System calls per transaction (strace -c -f, one run per cell, not the runs above):"
  /usr/bin/python3 - "$run/syscalls" <<'PY'
import sys
print("| workload | clients | pooler | all | by call |")
print("|---|---|---|---|---|")
for line in open(sys.argv[1]):
    w, c, t, n, path = line.split()
    calls = {}
    for l in open(path):
        f = l.split()
        # % time, seconds, usecs/call, calls, [errors], syscall
        if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
            calls[f[-1]] = int(f[3])
    n = int(n)
    total = sum(calls.values()) / n
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:6]
    name = {"pgbouncer": "PgBouncer", "a": "A", "b": "B"}[t]
    print(f"| {w} | {c} | {name} | {total:.2f} | " + ", ".join(f"{k} {v / n:.2f}" for k, v in top) + " |")
PY
fi
