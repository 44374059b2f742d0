#!/usr/bin/env bash
# Configures and builds pgcutover (RelWithDebInfo, ccache when present) into build/ or
# $PGCUTOVER_BUILD_DIR. The one build recipe: deploy/bootstrap.sh calls it after installing the
# packages, and deploy/docker/Dockerfile runs `bootstrap.sh --no-build` then this script, so the
# image is built exactly as the tests and the demo build it.
#
#   deploy/build.sh                          build everything (binaries and tests)
#   deploy/build.sh pgcutover-proxy ...      build only these CMake targets
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${PGCUTOVER_BUILD_DIR:-$top/build}
case "${1:-}" in
  -h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # Fresh clones live at other paths: make cache hits independent of where the tree is.
  export CCACHE_BASEDIR="$top" CCACHE_NOHASHDIR=1
fi
cmake -S "$top" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$build_dir" -j "$(nproc)" "${targets[@]}"
