#!/usr/bin/env bash
# pgbench select-only and tpcb-like at 32 clients: direct to PostgreSQL, through PgBouncer and
# through pgcutover-proxy, same machine, same run, same pool size, no TLS anywhere (so the
# figures compare the poolers, not the TLS libraries). Prints tps and the ratios
# proxy/pgbouncer and proxy/direct. Not a CTest test: a benchmark.
#
#   tests/bench/bench_pgbench.sh            30 s per run
#   BENCH_SECONDS=10 BENCH_CLIENTS=32 BENCH_POOL=16 BENCH_SCALE=10 tests/bench/bench_pgbench.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
PROXY_BIN=${PGCUTOVER_PROXY_BIN:-$top/build/proxy/pgcutover-proxy}
[ -x "$PROXY_BIN" ] || { echo "bench: pgcutover-proxy not built: $PROXY_BIN" >&2; exit 1; }
command -v pgbouncer >/dev/null || { echo "bench: pgbouncer not installed" >&2; exit 1; }
seconds=${BENCH_SECONDS:-30}
clients=${BENCH_CLIENTS:-32}
pool=${BENCH_POOL:-16}
scale=${BENCH_SCALE:-10}
proxy_threads=${BENCH_PROXY_THREADS:-0}

. "$top/tests/lib/pgcluster.sh"
work=$(mktemp -d /tmp/pgcutover-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  pgc_stop_all || true
  rm -rf "$work"
}
trap cleanup EXIT

pgc_start db plain --max-connections 200 >/dev/null
password=$(pgc_get db app_password)
export PGPASSWORD=$password

# ---- pgcutover-proxy ----
proxy_port=$(pgc_free_port)
cat >"$work/proxy.toml" <<EOT
[proxy]
listen_port = $proxy_port
threads = $proxy_threads
pool_mode = "transaction"
default_pool_size = $pool
max_client_conn = 1000
state_file = "$work/state.json"
log_level = "warn"
[proxy.tls]
client_tls = "disable"
[users.app]
password = "$password"
[backends.source]
url = "postgresql://app:$password@127.0.0.1:$DB_PORT/app?sslmode=disable"
EOT
"$PROXY_BIN" -c "$work/proxy.toml" >"$work/proxy.log" 2>&1 &
pids+=($!)

# ---- PgBouncer (refuses to run as root: run it as the test server user) ----
bouncer_port=$(pgc_free_port)
cat >"$work/pgbouncer.ini" <<EOT
[databases]
app = host=127.0.0.1 port=$DB_PORT dbname=app user=app password=$password
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = md5
auth_file = $work/userlist.txt
pool_mode = transaction
default_pool_size = $pool
max_client_conn = 1000
logfile = $work/pgbouncer.log
pidfile = $work/pgbouncer.pid
EOT
printf '"app" "%s"\n' "$password" >"$work/userlist.txt"
chmod 644 "$work"/*.ini "$work/userlist.txt"
if [ "$(id -u)" -eq 0 ]; then
  chown "${PGCUTOVER_PG_USER:-pgcutover}" "$work"
  runuser -u "${PGCUTOVER_PG_USER:-pgcutover}" -- pgbouncer "$work/pgbouncer.ini" >/dev/null 2>&1 &
else
  pgbouncer "$work/pgbouncer.ini" >/dev/null 2>&1 &
fi
pids+=($!)

ready() { pg_isready -q -h 127.0.0.1 -p "$1" -t 1; }
pgc_wait_until 15 ready "$proxy_port" || { cat "$work/proxy.log"; echo "bench: proxy did not start" >&2; exit 1; }
pgc_wait_until 15 ready "$bouncer_port" || { cat "$work/pgbouncer.log" 2>/dev/null; echo "bench: pgbouncer did not start" >&2; exit 1; }

echo "== pgbench -i -s $scale (direct)"
pgbench -i -s "$scale" -q -h 127.0.0.1 -p "$DB_PORT" -U app app >/dev/null 2>&1

# run <port> <extra pgbench args...> -> prints tps
run() {
  local port=$1
  shift
  local out
  out=$(pgbench -n -c "$clients" -j 2 -T "$seconds" -h 127.0.0.1 -p "$port" -U app "$@" app 2>&1) ||
    { echo "$out" >&2; echo 0; return; }
  if ! echo "$out" | grep -q "number of failed transactions: 0 "; then
    echo "$out" | grep "failed" >&2
  fi
  echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}

declare -A tps
for workload in select-only tpcb-like; do
  args=(-b "$workload")
  for target in direct pgbouncer proxy; do
    case $target in
      direct) port=$DB_PORT ;;
      pgbouncer) port=$bouncer_port ;;
      proxy) port=$proxy_port ;;
    esac
    # Warm the pool so connection set-up is not measured.
    pgbench -n -c "$clients" -j 2 -T 2 -h 127.0.0.1 -p "$port" -U app "${args[@]}" app >/dev/null 2>&1 || true
    tps[$workload/$target]=$(run "$port" "${args[@]}")
    printf '%-12s %-10s %10.1f tps\n' "$workload" "$target" "${tps[$workload/$target]}"
  done
done

echo
echo "== $clients clients, pool $pool, ${seconds}s per run, scale $scale, $(nproc) cores, proxy threads=${proxy_threads} (0 = one per core)"
printf '%-12s %10s %10s %10s %14s %12s\n' workload direct pgbouncer proxy proxy/pgbouncer proxy/direct
for workload in select-only tpcb-like; do
  d=${tps[$workload/direct]} b=${tps[$workload/pgbouncer]} p=${tps[$workload/proxy]}
  awk -v w="$workload" -v d="$d" -v b="$b" -v p="$p" 'BEGIN {
    printf "%-12s %10.1f %10.1f %10.1f %14.2f %12.2f\n", w, d, b, p, (b > 0 ? p / b : 0), (d > 0 ? p / d : 0) }'
done
