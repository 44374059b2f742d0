#!/usr/bin/env bash
# Builds and runs every pgcutover test on this machine; exits non-zero on any failure.
# Installs what it needs first (deploy/bootstrap.sh), so it works on a fresh Debian 12 machine.
#
#   tests/run.sh                 everything: build, unit, integration, style, the sanitizer
#                                run (ASan + UBSan: every unit and integration test again),
#                                fuzz smoke run
#   tests/run.sh -R <regex>      only the CTest tests matching <regex> (no fuzz run)
#   PGCUTOVER_TEST_JOBS=N        parallel CTest jobs (default: number of cores)
#
# The end-to-end drills (CTest label `release_only`: many flips under load, connection floods,
# thousands of idle clients; tests/integration/CMakeLists.txt lists them and says why) run once,
# in the release build: under the sanitizers they only repeat code paths that the other tests
# take there too, several times slower. Every other test runs in both builds.
# Each stage's wall time is printed at the end.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
# PostgreSQL's and Debian's tools first, for the builds and every test (tests/lib/pgcluster.sh
# says why).
pg_bin=${PGCUTOVER_PG_BIN:-/usr/lib/postgresql/15/bin}
case ":$PATH:" in :$pg_bin:/usr/bin:*) ;; *) export PATH=$pg_bin:/usr/bin:$PATH ;; esac
cd "$top"
build_dir=${PGCUTOVER_BUILD_DIR:-$top/build}
export PGCUTOVER_BUILD_DIR=$build_dir
jobs=${PGCUTOVER_TEST_JOBS:-$(nproc)}

stage_names=()
stage_seconds=()
stage_started=$SECONDS
# Closes the stage that started at $stage_started under the given name.
end_stage() {
  stage_names+=("$1")
  stage_seconds+=($((SECONDS - stage_started)))
  stage_started=$SECONDS
}
print_stages() {
  echo "== tests: time per stage"
  local i total=0
  for i in "${!stage_names[@]}"; do
    printf '   %-44s %5d s\n' "${stage_names[$i]}" "${stage_seconds[$i]}"
    total=$((total + stage_seconds[i]))
  done
  printf '   %-44s %5d s\n' "total" "$total"
}

# CTest starts the longest tests first when it knows their times (its cost data in
# Testing/Temporary); a fresh clone has none and would start them in declaration order, leaving
# a long drill for the end. The times of the last run on this machine are kept beside ccache's.
cost_cache=${XDG_CACHE_HOME:-$HOME/.cache}/pgcutover
restore_test_times() { # <build dir> <suite>
  local data="$1/Testing/Temporary/CTestCostData.txt"
  if [ ! -f "$data" ] && [ -f "$cost_cache/ctest-times-$2.txt" ]; then
    mkdir -p "$(dirname "$data")"
    cp "$cost_cache/ctest-times-$2.txt" "$data"
  fi
}
save_test_times() { # <build dir> <suite>
  local data="$1/Testing/Temporary/CTestCostData.txt"
  [ -f "$data" ] || return 0
  mkdir -p "$cost_cache" && cp "$data" "$cost_cache/ctest-times-$2.txt" || true
}

"$top/deploy/bootstrap.sh"
end_stage "packages + release build (bootstrap)"

# The sanitizer and fuzz builds use ccache as deploy/build.sh does (it says why these settings).
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR="$top" CCACHE_NOHASHDIR=1 CCACHE_DEPEND=1
fi

status=0
echo "== tests: ctest in $build_dir"
restore_test_times "$build_dir" release
ctest --test-dir "$build_dir" --output-on-failure --timeout 900 -j "$jobs" "$@" || status=1
[ $# -ne 0 ] || save_test_times "$build_dir" release
end_stage "release: every test"

# Sanitizer run: every test again (unit and integration; not the style and layout checks, which
# build nothing, nor the deploy manifests check, which compares the release binary's libraries
# with the Docker image, nor the release_only drills), built with AddressSanitizer and
# UndefinedBehaviorSanitizer (PGCUTOVER_SANITIZE=ON) in a build of its own.
if [ $# -eq 0 ]; then
  asan_dir="$top/build-asan"
  echo "== tests: ASan + UBSan run in $asan_dir"
  # -O0 -g1 (line tables only): the same findings, file:line in every report, and the cheapest
  # cold build. Measured with ccache off (2026-12-07): -O1 389 s, -O0 234 s to build; the
  # sanitizer suite ran 122-126 s at -O1, 139 s at -O0. A unity build (several sources per
  # compiler run, so Asio's and Boost's headers are parsed once per batch): 280 s against 375 s
  # on a slower machine the same day (batches of 16 instead of 8: 222 s against 234 s, not
  # worth larger batches). The release build in build/ is a unity build too when
  # deploy/build.sh creates it (its --help says how to make it file by file).
  cmake -S "$top" -B "$asan_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGCUTOVER_SANITIZE=ON \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0 -g1 -DNDEBUG" -DCMAKE_UNITY_BUILD=ON \
    "${launcher[@]}" >/dev/null
  cmake --build "$asan_dir" -j "$jobs" --target unit_tests integration_tests pgcutover-proxy pgcutoverctl
  end_stage "sanitizer build"
  # Leaks are reported by LeakSanitizer at exit; a leak is a failure like any other.
  restore_test_times "$asan_dir" sanitizer
  PGCUTOVER_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$asan_dir" --output-on-failure --timeout 900 -j "$jobs" \
    -E '^style\.|^layout\.|test_deploy_manifests' -LE release_only || status=1
  save_test_times "$asan_dir" sanitizer
  end_stage "sanitizer: every test but the drills"
fi

# Fuzz smoke run: every decoder's libFuzzer target, briefly, in a clang build of its own.
if [ $# -eq 0 ] && command -v clang++ >/dev/null; then
  fuzz_dir="$top/build-fuzz"
  echo "== tests: fuzz smoke run in $fuzz_dir"
  # 5 s per target: a smoke run (each decoder's corpus and a few hundred thousand inputs);
  # the long runs are in docs/testing.md.
  cmake -S "$top" -B "$fuzz_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGCUTOVER_FUZZ=ON \
    -DPGCUTOVER_FUZZ_SECONDS=5 \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_CXX_COMPILER=clang++ \
    "${launcher[@]}" >/dev/null
  cmake --build "$fuzz_dir" --target fuzz_all -j "$jobs"
  end_stage "fuzz build"
  ctest --test-dir "$fuzz_dir" -L fuzz --output-on-failure -j "$jobs" || status=1
  end_stage "fuzz smoke run"
fi

print_stages
exit $status
