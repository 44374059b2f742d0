#!/usr/bin/env bash
# Builds and runs every pgcutover test on this machine; exits non-zero on any failure.
# Installs what it needs first (deploy/bootstrap.sh), so it works on a fresh Debian 12 machine.
#
#   tests/run.sh                 everything: build, unit, integration, style, the sanitizer
#                                run (ASan + UBSan: every unit and integration test again),
#                                fuzz smoke run
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

# Sanitizer run: every test again (unit and integration; not the style check, nor the deploy
# manifests check, which compares the release binary's libraries with the Docker image), built with
# AddressSanitizer and UndefinedBehaviorSanitizer (PGCUTOVER_SANITIZE=ON) in a build of its own.
if [ $# -eq 0 ]; then
  asan_dir="$top/build-asan"
  echo "== tests: ASan + UBSan run in $asan_dir"
  launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    export CCACHE_BASEDIR="$top" CCACHE_NOHASHDIR=1
  fi
  # -O1 -g1 (line tables only): half the compile time of -O2 -g on a cold cache, same findings
  # (the sanitizers' own recommendation is -O1), file:line in every report.
  cmake -S "$top" -B "$asan_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGCUTOVER_SANITIZE=ON \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" "${launcher[@]}" >/dev/null
  cmake --build "$asan_dir" -j "$jobs" --target unit_tests integration_tests pgcutover-proxy pgcutoverctl
  # Leaks are reported by LeakSanitizer at exit; a leak is a failure like any other.
  PGCUTOVER_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$asan_dir" --output-on-failure --timeout 900 -j "$jobs" \
    -E '^style\.|test_deploy_manifests' || status=1
fi

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
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_CXX_COMPILER=clang++ \
    "${launcher[@]}" >/dev/null
  cmake --build "$fuzz_dir" --target fuzz_all -j "$jobs"
  ctest --test-dir "$fuzz_dir" -L fuzz --output-on-failure -j "$jobs" || status=1
fi

exit $status
