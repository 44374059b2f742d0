#!/usr/bin/env bash
# Configures and builds pgcutover (RelWithDebInfo, ccache when present) into build/ or
# $PGCUTOVER_BUILD_DIR. The one build recipe: deploy/bootstrap.sh calls it once the build's
# packages are in (the tools install meanwhile), and deploy/docker/Dockerfile runs
# `bootstrap.sh --no-build` then this script, so the image is built exactly as the tests and the
# demo build it.
#
#   deploy/build.sh                          build everything (binaries and tests)
#   deploy/build.sh pgcutover-proxy ...      build only these CMake targets
# A new build directory is a unity build with line tables only (-g1), the fastest from cold;
# for one that recompiles only the file you changed and keeps local variables for gdb:
#   cmake -B build -DCMAKE_UNITY_BUILD=OFF -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g -DNDEBUG"
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${PGCUTOVER_BUILD_DIR:-$top/build}
case "${1:-}" in
  -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # Fresh clones live at other paths: make cache hits independent of where the tree is.
  # Depend mode: on a miss ccache takes the headers from the compiler's own -MD output instead
  # of running the preprocessor once more. Measured on 2 cores, release build from an empty
  # cache (2026-12-07): 183 s in ccache's default mode, 164 s in depend mode, 160 s without
  # ccache; warm, every object a direct hit either way (6 s).
  export CCACHE_BASEDIR="$top" CCACHE_NOHASHDIR=1 CCACHE_DEPEND=1
fi
# A new build directory is configured for the cheapest cold build: a unity build (several
# sources per compiler run, so Asio's and Boost's headers are parsed, and their templates
# compiled, once per batch instead of once per file) with line tables only (-g1: file:line in
# every backtrace and profile, no local variables in gdb). Measured on 2 cores with ccache off
# (2026-12-07): 394 s per file with -g, 321 s per file with -g1, 252 s unity with -g, 164 s
# unity with -g1; the proxy's CPU per transaction the same within 3% (tests/bench/ab_proxies.sh).
# An existing directory keeps what it was configured with (the header above says how to change).
fresh=()
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  fresh=(-DCMAKE_UNITY_BUILD=ON -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG")
fi
cmake -S "$top" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${fresh[@]}" "${launcher[@]}" \
  >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$build_dir" -j "$(nproc)" "${targets[@]}"
