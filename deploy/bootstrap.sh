#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for pgcutover: installs every package the build, tests,
# demo and benchmarks need, makes sure the unprivileged user that runs test PostgreSQL
# servers exists, then configures and builds (RelWithDebInfo) into build/.
# Idempotent: a second run installs nothing and only rebuilds what changed.
#
#   deploy/bootstrap.sh              install + build
#   deploy/bootstrap.sh --no-build   install only
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build_dir=${PGCUTOVER_BUILD_DIR:-$top/build}
do_build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) do_build=0 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bootstrap.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

# Everything comes from Debian 12's own archive.
packages=(
  build-essential cmake pkg-config ccache git clang clang-format libclang-rt-14-dev
  libboost1.81-dev libssl-dev libpq-dev prometheus-cpp-dev libtomlplusplus-dev
  libgtest-dev googletest
  postgresql-15 postgresql-client-15 postgresql-contrib pgbouncer openssl
  python3 python3-psycopg python3-asyncpg python3-yaml python3-matplotlib
  default-jdk-headless libpostgresql-jdbc-java ruby ruby-pg ruby-activerecord nodejs
  iproute2 procps util-linux curl
)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "bootstrap.sh: run as root or install sudo" >&2; exit 2; }
  sudo_cmd=(sudo)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq || true
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's postgresql package starts a cluster on 5432; the tests do not need it and it
# only takes memory. Leave it if the admin uses it, but never depend on it.

# PostgreSQL refuses to run as root; CI runs as root. Test clusters run as this user.
pg_user=${PGCUTOVER_PG_USER:-pgcutover}
if [ "$(id -u)" -eq 0 ] && ! id "$pg_user" >/dev/null 2>&1; then
  useradd --system --create-home --home-dir "/var/lib/$pg_user" --shell /bin/bash "$pg_user"
fi

# node-postgres for the driver tests comes from the npm registry (not in Debian 12), pinned by
# tests/integration/drivers/package-lock.json. npm ships inside some nodejs builds; Debian's
# own nodejs needs the npm package beside it.
if ! command -v npm >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
drivers_dir=$top/tests/integration/drivers
if [ -f "$drivers_dir/package.json" ]; then
  if [ ! -d "$drivers_dir/node_modules/pg" ] || [ ! -d "$drivers_dir/node_modules/pg-copy-streams" ]; then
    echo "== bootstrap: npm ci in tests/integration/drivers"
    npm_log=$(mktemp)
    if ! (cd "$drivers_dir" && npm ci --no-audit --no-fund >"$npm_log" 2>&1); then
      tail -n 20 "$npm_log" >&2
      rm -f "$npm_log"
      echo "bootstrap.sh: npm ci failed (above): the driver tests need node-postgres from the" \
        "npm registry. Check that this machine reaches it (npm ping) and trusts its certificate" \
        "(npm config get cafile; NODE_EXTRA_CA_CERTS for a proxy's own CA), then run again." >&2
      exit 1
    fi
    rm -f "$npm_log"
  fi
fi

if [ "$do_build" -eq 1 ]; then
  # The build recipe is shared with deploy/docker/Dockerfile.
  PGCUTOVER_BUILD_DIR=$build_dir "$here/build.sh"
fi
