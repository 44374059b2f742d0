#!/usr/bin/env bash
# Builds and runs every pgcutover test on this machine; exits non-zero on any failure.
# Installs what it needs first (deploy/bootstrap.sh), so it works on a fresh Debian 12 machine.
#
#   tests/run.sh                 everything: build, unit, integration, style, fuzz smoke run
#   tests/run.sh -R <regex>      only the CTest tests matching <regex> (no fuzz run)
#   PGCUTOVER_TEST_JOBS=N        parallel CTest jobs (default: number of cores)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build_dir=${PGCUTOVER_BUILD_DIR:-$top/build}
export PGCUTOVER_BUILD_DIR=$build_dir
jobs=${PGCUTOVER_TEST_JOBS:-$(nproc)}

"$top/deploy/bootstrap.sh"

status=0
echo "== tests: ctest in $build_dir"
ctest --test-dir "$build_dir" --output-on-failure --timeout 900 -j "$jobs" "$@" || status=1

# Fuzz smoke run: every decoder's libFuzzer target, briefly, in a clang build of its own.
if [ $# -eq 0 ] && command -v clang++ >/dev/null; then
  fuzz_dir="$top/build-fuzz"
  echo "== tests: fuzz smoke run in $fuzz_dir"
  launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    export CCACHE_BASEDIR="$top" CCACHE_NOHASHDIR=1
  fi
  cmake -S "$top" -B "$fuzz_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGCUTOVER_FUZZ=ON \
    -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" >/dev/null
  cmake --build "$fuzz_dir" --target fuzz_all -j "$jobs"
  ctest --test-dir "$fuzz_dir" -L fuzz --output-on-failure -j "$jobs" || status=1
fi

exit $status
