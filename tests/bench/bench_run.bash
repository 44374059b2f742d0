# What every side-by-side benchmark starts with (sourced by bench.sh and ab_proxies.sh, with
# the run directory's prefix as its argument): the cluster helpers and PgBouncer's start-up,
# a run directory, the processes the script starts (`pids`) stopped at exit with every
# cluster, and a timestamped progress line on stderr (`log`).
#
#   . "$top/tests/bench/bench_run.bash" pgcutover-bench
bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$bench_dir/../lib/pgcluster.sh"
. "$bench_dir/pgbouncer.bash"
run=$(mktemp -d "/tmp/${1:-pgcutover-bench}.XXXXXX")
chmod 755 "$run"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  pgc_stop_all || true
  rm -rf "$run"
}
trap cleanup EXIT
log() { echo "== $(date +%H:%M:%S) $*" >&2; }
