#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for pgcutover: installs every package the build, tests and
# demo need (and the benchmarks', with --bench), makes sure the unprivileged user that runs test
# PostgreSQL servers exists, then configures and builds (RelWithDebInfo) into build/.
# Idempotent: a second run installs nothing and only rebuilds what changed.
#
#   deploy/bootstrap.sh              install + build
#   deploy/bootstrap.sh --no-build   install only
#   deploy/bootstrap.sh --bench      also what only the benchmarks need (PgBouncer, matplotlib);
#                                    the benchmark scripts run `--no-build --bench` themselves
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build_dir=${PGCUTOVER_BUILD_DIR:-$top/build}
do_build=1
bench=0
for arg in "$@"; do
  case "$arg" in
    --no-build) do_build=0 ;;
    --bench) bench=1 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bootstrap.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

# Everything comes from Debian 12's own archive. What the build needs is installed first; the
# tools the tests and the demo run (servers, drivers, languages, the fuzz compiler) are
# installed while the build compiles: installing them keeps about one core busy
# and the network, and a cold build needs both cores, so the two overlap (docs/testing.md has the
# cold CI's stages).
build_packages=(
  build-essential cmake pkg-config ccache git
  libboost1.81-dev libssl-dev libpq-dev prometheus-cpp-dev libtomlplusplus-dev
  libgtest-dev googletest
)
tool_packages=(
  clang clang-format libclang-rt-14-dev
  postgresql-15 postgresql-client-15 postgresql-contrib openssl
  python3 python3-psycopg python3-asyncpg python3-yaml
  default-jdk-headless libpostgresql-jdbc-java ruby ruby-pg ruby-activerecord nodejs
  iproute2 procps util-linux curl
)
# Only the benchmarks: the pooler they compare with, and the charts of docs/benchmarks.md
# (matplotlib brings NumPy, SymPy and fontTools, which no test needs: SymPy's configuration
# alone took 8 s in a cold run).
bench_packages=(pgbouncer python3-matplotlib)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "bootstrap.sh: run as root or install sudo" >&2; exit 2; }
  sudo_cmd=(sudo)
fi

apt_updated=0
# Installs those of the given packages that are missing. --force-unsafe-io: dpkg skips its
# fsync per unpacked file (what Debian's own container images configure); a machine that
# crashes during the install runs bootstrap.sh again.
install_missing() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "== bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$apt_updated" -eq 0 ]; then
    "${sudo_cmd[@]}" apt-get update -qq || true
    apt_updated=1
  fi
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-unsafe-io "${missing[@]}" >/dev/null
}

install_missing "${build_packages[@]}"

# PostgreSQL refuses to run as root; CI runs as root. Test clusters run as this user.
pg_user=${PGCUTOVER_PG_USER:-pgcutover}
if [ "$(id -u)" -eq 0 ] && ! id "$pg_user" >/dev/null 2>&1; then
  useradd --system --create-home --home-dir "/var/lib/$pg_user" --shell /bin/bash "$pg_user"
fi

# The tools' packages, then node-postgres for the driver tests: it comes from the npm registry
# (not in Debian 12), pinned by tests/integration/drivers/package-lock.json and fetched by
# npm_fetch.py (what `npm ci` does for it, without Debian's npm and its ~300 packages).
# Debian's postgresql package starts a cluster on 5432; the tests do not need it and it only
# takes memory. Leave it if the admin uses it, but never depend on it.
install_tools() {
  install_missing "${tool_packages[@]}"
  [ "$bench" -eq 0 ] || install_missing "${bench_packages[@]}"
  local drivers_dir=$top/tests/integration/drivers
  [ -f "$drivers_dir/package-lock.json" ] || return 0
  [ ! -d "$drivers_dir/node_modules/pg" ] || [ ! -d "$drivers_dir/node_modules/pg-copy-streams" ] ||
    return 0
  echo "== bootstrap: node-postgres for tests/integration/drivers (deploy/npm_fetch.py)"
  if ! /usr/bin/python3 "$here/npm_fetch.py" "$drivers_dir" >&2; then
    echo "bootstrap.sh: fetching node-postgres failed (above): the driver tests need it from the" \
      "npm registry. Check that this machine reaches it (curl https://registry.npmjs.org/pg)" \
      "and trusts its certificate (NODE_EXTRA_CA_CERTS for a proxy's own CA), then run again." >&2
    return 1
  fi
}

if [ "$do_build" -eq 0 ]; then
  install_tools
  exit 0
fi
# The tools install in the background while the build compiles (the build recipe is shared with
# deploy/docker/Dockerfile); their messages are printed when both are done.
tools_log=$(mktemp)
install_tools >"$tools_log" 2>&1 &
tools_pid=$!
build_status=0
PGCUTOVER_BUILD_DIR=$build_dir "$here/build.sh" || build_status=$?
tools_status=0
wait "$tools_pid" || tools_status=$?
cat "$tools_log"
rm -f "$tools_log"
if [ "$tools_status" -ne 0 ]; then
  echo "bootstrap.sh: installing the tests' and the demo's tools failed (above); run again" \
    "when the cause is fixed" >&2
  exit "$tools_status"
fi
exit "$build_status"
