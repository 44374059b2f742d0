#!/usr/bin/env bash
# The pgcutover demo on one machine: installs and builds what it needs (deploy/bootstrap.sh),
# starts a Heroku-shaped source and an RDS-shaped target on loopback, loads pgbench's sample
# data into the source and shows what runs where. Everything is removed on exit.
#
#   deploy/demo.sh                run the demo, clean up on exit
#   deploy/demo.sh --keep         leave the clusters running; prints how to connect and stop
#   deploy/demo.sh --no-build     skip the build (packages are still checked)
#   PGCUTOVER_DEMO_SCALE=N        pgbench scale factor for the sample data (default 1)
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
scale=${PGCUTOVER_DEMO_SCALE:-1}
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
    if [ "$status" -ne 0 ]; then pgc_stop_all; fi
  }
  trap on_exit EXIT
else
  trap pgc_stop_all EXIT
fi
trap 'exit 130' INT
trap 'exit 143' TERM

step "starting the source (Heroku-shaped) and the target (RDS-shaped)"
pgc_start source heroku
pgc_start target rds

step "loading pgbench sample data (scale $scale) into the source, over TLS as the app role"
# pgbench -i always drops the tables first; its "does not exist, skipping" notices are noise.
PGOPTIONS='-c client_min_messages=warning' pgbench -i -q -s "$scale" "$SOURCE_URL" 2>&1 |
  sed 's/^/   /'
accounts=$(pgc_psql source -At -c 'SELECT count(*) FROM pgbench_accounts')

# The source refuses what Heroku refuses: show it rather than claim it.
plaintext=$(psql -X -d "${SOURCE_URL/sslmode=require/sslmode=disable}" -c 'SELECT 1' 2>&1 |
  sed -n 's/.*FATAL: *//p' | head -n 1 || true)

# ---------------------------------------------------------------------------------------------
# PROXY: start pgcutover-proxy here, once it exists ($build_dir/proxy/pgcutover-proxy), with
# TLS on its listener (pgc_make_tls "$PGC_BASE/proxy-tls"), the source as the active backend
# and the target as the standby; then point pgbench at the proxy, run traffic and flip with
# pgcutoverctl. Until then the demo ends after showing the two databases.
# ---------------------------------------------------------------------------------------------
if [ -x "$build_dir/proxy/pgcutover-proxy" ]; then
  echo "(pgcutover-proxy is built at $build_dir/proxy/pgcutover-proxy; the demo does not run it yet)"
fi

step "running"
cat <<EOF
  source  Heroku-shaped: TLS only, app role without superuser or REPLICATION, wal_level=replica
          127.0.0.1:$SOURCE_PORT   pgbench_accounts: $accounts rows
          app URL:    $SOURCE_URL
          plaintext:  refused: $plaintext
  target  RDS-shaped: TLS with verify-full, wal_level=logical, empty database app
          127.0.0.1:$TARGET_PORT
          app URL:    $TARGET_URL
  files   $PGC_BASE  (data, logs, TLS chains)
EOF

if [ "$keep" -eq 1 ]; then
  step "left running (--keep)"
  cat <<EOF
  connect:  psql '$SOURCE_URL'
            psql '$TARGET_URL'
  admin:    psql '$SOURCE_ADMIN_URL'   (superuser over the unix socket; as root)
  stop:     $top/tests/lib/pgcluster.sh stop-all --base $PGC_BASE
EOF
else
  step "cleaning up (use --keep to leave the clusters running)"
fi
