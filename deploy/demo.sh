#!/usr/bin/env bash
# The pgcutover demo on one machine: installs and builds what it needs (deploy/bootstrap.sh),
# starts a Heroku-shaped source and an RDS-shaped target on loopback, loads sample data,
# points a live pgbench workload at pgcutover-proxy, runs preflight, schema copy, logical
# replication, validation and the orchestrated flip under that load, and prints a summary:
# the method, the write pause, transactions completed and failed. Everything is removed on
# exit unless --keep.
#
#   deploy/demo.sh                run the demo, clean up on exit
#   deploy/demo.sh --keep         leave the clusters running; prints how to connect and stop
#   deploy/demo.sh --no-build     skip the build (packages are still checked)
#   PGCUTOVER_DEMO_SCALE=N        pgbench scale factor for the sample data (default 5)
#   PGCUTOVER_DEMO_SECONDS=N      how long the live workload runs (default 20; the flip is
#                                 in the middle)
#
# Run as root (or with sudo) on a fresh Debian 12 machine; the PostgreSQL servers themselves
# run as the unprivileged `pgcutover` user that bootstrap.sh creates.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
keep=0
bootstrap_args=()
for arg in "$@"; do
  case "$arg" in
    --keep) keep=1 ;;
    --no-build) bootstrap_args+=(--no-build) ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "demo.sh: unknown argument '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done
scale=${PGCUTOVER_DEMO_SCALE:-5}
seconds=${PGCUTOVER_DEMO_SECONDS:-20}
build_dir=${PGCUTOVER_BUILD_DIR:-$top/build}

step() { printf '\n== %s\n' "$*"; }

step "bootstrap: packages, the pgcutover user, the build (deploy/bootstrap.sh)"
"$top/deploy/bootstrap.sh" "${bootstrap_args[@]}"

# shellcheck source=tests/lib/pgcluster.sh
. "$top/tests/lib/pgcluster.sh"
if [ "$keep" -eq 1 ]; then
  # No watchdog: the clusters must outlive this script. Clean up only if the demo fails.
  export PGC_OWNER_PID=0
  on_exit() {
    local status=$?
    if [ "$status" -ne 0 ]; then
      stop_proxy
      pgc_stop_all
    fi
  }
else
  on_exit() {
    local status=$?
    stop_proxy
    pgc_stop_all
    exit "$status"
  }
fi
proxy_pid=""
stop_proxy() {
  if [ -n "$proxy_pid" ] && kill -0 "$proxy_pid" 2>/dev/null; then
    kill -TERM "$proxy_pid" 2>/dev/null || true
    pgc_wait_until 10 bash -c "! kill -0 $proxy_pid 2>/dev/null" || kill -KILL "$proxy_pid" 2>/dev/null || true
  fi
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "starting the source (Heroku-shaped) and the target (RDS-shaped)"
# --logical: a Heroku plan that allows logical replication. Classic plans do not (no
# REPLICATION); preflight says so and names the method that remains possible.
pgc_start source heroku --logical
pgc_start target rds
proxy_bin=$build_dir/proxy/pgcutover-proxy
ctl_bin=$build_dir/control/pgcutoverctl

step "loading pgbench sample data (scale $scale) into the source, over TLS as the app role"
# pgbench -i always drops the tables first; its "does not exist, skipping" notices are noise.
PGOPTIONS='-c client_min_messages=warning' pgbench -i -q -s "$scale" "$SOURCE_URL" 2>&1 |
  sed 's/^/   /'

# The source refuses what Heroku refuses: show it rather than claim it.
plaintext=$(psql -X -d "${SOURCE_URL/sslmode=require/sslmode=disable}" -c 'SELECT 1' 2>&1 |
  sed -n 's/.*FATAL: *//p' | head -n 1 || true)

step "starting pgcutover-proxy in front of the source (the app's DATABASE_URL points here)"
demo_dir=$PGC_BASE/demo
mkdir -p "$demo_dir"
chmod 755 "$demo_dir"
pgc_make_tls "$demo_dir/tls" proxy >/dev/null
proxy_port=$(pgc_free_port)
admin_port=$(pgc_free_port)
export DEMO_SOURCE_URL=$SOURCE_URL DEMO_TARGET_URL=$TARGET_URL
export DEMO_APP_PASSWORD="demo-$RANDOM$RANDOM" DEMO_ADMIN_TOKEN="token-$RANDOM$RANDOM$RANDOM"
config=$demo_dir/pgcutover.toml
# Secrets stay in the environment: the file only references them.
cat >"$config" <<TOML
[proxy]
listen_addr = "127.0.0.1"
listen_port = $proxy_port
pool_mode = "transaction"
default_pool_size = 10
state_file = "$demo_dir/state.json"

[proxy.tls]
client_tls = "require"
cert_file = "$demo_dir/tls/server.crt"
key_file = "$demo_dir/tls/server.key"

[users.app]
password = "\${DEMO_APP_PASSWORD}"

[backends.source]
url = "\${DEMO_SOURCE_URL}"

[backends.target]
url = "\${DEMO_TARGET_URL}"

[cutover]
initial_backend = "source"
drain_timeout = 5
max_pause = 30

[admin]
listen_addr = "127.0.0.1"
listen_port = $admin_port
token = "\${DEMO_ADMIN_TOKEN}"

[control]
journal = "$demo_dir/flip.journal"
[[control.proxies]]
admin_url = "http://127.0.0.1:$admin_port"
token = "\${DEMO_ADMIN_TOKEN}"
TOML
"$proxy_bin" -c "$config" >>"$demo_dir/proxy.log" 2>&1 &
proxy_pid=$!
pgc_wait_until 15 pg_isready -q -h 127.0.0.1 -p "$proxy_port" -t 1 ||
  {
    tail -n 20 "$demo_dir/proxy.log"
    echo "demo: the proxy did not start" >&2
    exit 1
  }
app_dsn="host=127.0.0.1 port=$proxy_port user=app dbname=app password=$DEMO_APP_PASSWORD sslmode=verify-full sslrootcert=$demo_dir/tls/ca.crt"
echo "   proxy on 127.0.0.1:$proxy_port (client TLS required), admin API on 127.0.0.1:$admin_port"
echo "   a query through the proxy runs on port $(psql -X -At "$app_dsn" -c 'select inet_server_port()') (the source)"

# pgcutoverctl with the demo's config. CREATE SUBSCRIPTION needs superuser on PostgreSQL 15
# (rds_superuser on RDS): the subscriber URLs are the clusters' admin roles.
ctl() { "$ctl_bin" "$@" -c "$config"; }
indent() { sed 's/^/   /'; }

step "pgcutoverctl preflight"
ctl preflight | indent || true

step "pgcutoverctl schema copy (pg_stat_statements is created by the RDS admin first)"
pgc_admin_psql target -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
ctl schema copy | indent

step "pgcutoverctl replicate start --method logical"
ctl replicate start --method logical --subscriber-url "$TARGET_ADMIN_URL" | indent

step "pgcutoverctl validate"
ctl validate --jobs 2 | indent

step "live workload: pgbench tpcb-like, 16 clients through the proxy for ${seconds}s"
(cd "$demo_dir" && PGPASSWORD=$DEMO_APP_PASSWORD PGSSLMODE=require timeout $((seconds + 60)) \
  pgbench -n -c 16 -j 2 -T "$seconds" -l --log-prefix=demo -h 127.0.0.1 -p "$proxy_port" -U app app \
  >"$demo_dir/pgbench.out" 2>&1) &
bench_pid=$!
# Let it run a third of its time first, so the flip happens under steady load.
until_s=$(($(date +%s) + seconds / 3))
while [ "$(date +%s)" -lt "$until_s" ] && kill -0 "$bench_pid" 2>/dev/null; do sleep 0.2; done

step "pgcutoverctl flip: pause, fence, catch-up barrier, sequences, reverse replication, flip, resume"
ctl flip --json --subscriber-url "$TARGET_ADMIN_URL" --source-subscriber-url "$SOURCE_ADMIN_URL" \
  --reverse-publisher-url "$TARGET_ADMIN_URL" \
  --smoke-url "postgresql://app:$DEMO_APP_PASSWORD@127.0.0.1:$proxy_port/app?sslmode=require" \
  >"$demo_dir/flip.json" 2>"$demo_dir/flip.err" || {
  cat "$demo_dir/flip.err" "$demo_dir/flip.json" >&2
  echo "demo: the flip failed (above); pgcutoverctl rolled the proxies back to the source" >&2
  exit 1
}
/usr/bin/python3 - "$demo_dir/flip.json" <<'PY' | indent
import json, sys
d = json.load(open(sys.argv[1]))
for s in d.get("steps", []):
    print(f'{s.get("step", "?"):<16} {float(s.get("ms", 0)):8.1f} ms')
PY
write_pause=$(/usr/bin/python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["write_pause_ms"]))' "$demo_dir/flip.json")
wait "$bench_pid" || true
processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$demo_dir/pgbench.out")
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$demo_dir/pgbench.out")
max_ms=$(cat "$demo_dir"/demo.[0-9]* 2>/dev/null | awk '$3 > m {m = $3} END {printf "%.0f", m / 1000}')
now_on=$(psql -X -At "$app_dsn" -c 'select inet_server_port()')
[ "$now_on" = "$TARGET_PORT" ] || {
  echo "demo: after the flip the proxy serves port $now_on, not the target" >&2
  exit 1
}
[ "${failed:-1}" = 0 ] || {
  cat "$demo_dir/pgbench.out"
  echo "demo: pgbench had failed transactions" >&2
  exit 1
}

step "summary"
cat <<SUMMARY
  method                  native logical replication source -> target; reverse replication armed
  write pause             ${write_pause} ms (the longest any held client waited for its answer, as the proxy measured it)
  longest transaction     ${max_ms} ms (pgbench's log, whole run: gate wait + execution)
  (what each figure measures: docs/cutover.md, "Figures")
  transactions completed  ${processed:-?}
  transactions failed     ${failed}
  serving now             target 127.0.0.1:$TARGET_PORT (was source 127.0.0.1:$SOURCE_PORT)
  source refuses          plaintext: $plaintext
  metrics                 curl -H "Authorization: Bearer \$DEMO_ADMIN_TOKEN" http://127.0.0.1:$admin_port/metrics
  files                   $demo_dir (config, proxy.log, flip.json, pgbench logs)
SUMMARY

if [ "$keep" -eq 1 ]; then
  step "left running (--keep)"
  cat <<KEEP
  app:      psql '$app_dsn'
  env:      export DEMO_SOURCE_URL='$SOURCE_URL' DEMO_TARGET_URL='$TARGET_URL' \\
                   DEMO_ADMIN_TOKEN='$DEMO_ADMIN_TOKEN' DEMO_APP_PASSWORD='$DEMO_APP_PASSWORD'
  status:   $ctl_bin status -c $config
  revert:   $ctl_bin revert -c $config --subscriber-url '$TARGET_ADMIN_URL' --source-subscriber-url '$SOURCE_ADMIN_URL'
  stop:     kill $proxy_pid; $top/tests/lib/pgcluster.sh stop-all --base $PGC_BASE
KEEP
else
  step "cleaning up (use --keep to leave everything running)"
fi
