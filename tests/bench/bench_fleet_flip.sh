#!/usr/bin/env bash
# What the fleet channel (docs/fleet.md) costs in the write pause: the same `pgcutoverctl flip`
# and `revert` of the same proxies, once through their admin APIs (HTTP) and once through the
# databases (INSERT + NOTIFY, answers via LISTEN), alternating in one run on one machine.
#
#   - BENCH_FLEET_PROXIES (10) proxies, each with an [admin] API (token, own port) AND [fleet]
#     (own name), threads = 1, pool 5; all registered in both databases.
#   - Two controller configs with the same backends and journal: `admin` lists every proxy in
#     [[control.proxies]] (a member the controller reaches by its admin API is commanded over
#     HTTP only, so everything goes over HTTP); `fleet` lists none (everything goes through the
#     databases). Each run's JSON is checked for it: n HTTP answers and 0 fleet answers to the
#     pause, or the reverse.
#   - Load during every flip and revert: pgbench tpcb-like (BENCH_CLIENTS per proxy, 3) through
#     BENCH_LOADED (3) of the proxies at BENCH_RATE (100) tps each (pgbench -R; 0 = as fast as
#     it goes, which saturates 2 cores), started before the flip and still running after the
#     revert; 0 failed transactions required.
#   - BENCH_FLEET_ROUNDS (5) rounds; each: flip + revert with one config, then flip + revert with
#     the other (admin first in odd rounds, fleet first in even ones). After every flip and
#     revert all proxies must be running on the expected backend at one epoch, by their admin
#     APIs and by `pgcutoverctl fleet --json` (fleet config).
#   - Per path and operation: write_pause_ms (the worst wait any held client saw, measured by the
#     proxies) and controller_span_ms (PAUSE sent -> last gate reopened): median, p90
#     (nearest rank: with 5 samples, the max), max, n; the fleet/admin ratio and difference of
#     the medians; the medians of the controller's steps, to see where a difference comes from.
# Prints the table and writes it to $BENCH_OUT/fleet_flip.md (BENCH_OUT: build/bench), with every
# flip's JSON in $BENCH_OUT/fleet_flip.jsonl and the proxies' logs, pgbench's output and the
# controller's journal in $BENCH_OUT/fleet_flip.logs/. A benchmark, not a CTest test.
#
#   tests/bench/bench_fleet_flip.sh                              ~5 min on 2 cores
#   BENCH_FLEET_ROUNDS=7 BENCH_FLEET_PROXIES=10 BENCH_LOADED=2 BENCH_CLIENTS=4 tests/bench/bench_fleet_flip.sh
#
# Other knobs: BENCH_SCALE (pgbench scale, 5), BENCH_POOL (pool size per proxy, 5),
# BENCH_LOAD_SECONDS (pgbench -T per flip + revert, 25: must outlast both).
# Run as root, the PostgreSQL servers run as ${PGCUTOVER_PG_USER:-pgcutover} (tests/lib/pgcluster.sh).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
n_proxies=${BENCH_FLEET_PROXIES:-10}
rounds=${BENCH_FLEET_ROUNDS:-5}
loaded=${BENCH_LOADED:-3}
clients=${BENCH_CLIENTS:-3}
scale=${BENCH_SCALE:-5}
pool=${BENCH_POOL:-5}
rate=${BENCH_RATE:-100}
load_s=${BENCH_LOAD_SECONDS:-25}
out=${BENCH_OUT:-$top/build/bench}
[ "$loaded" -le "$n_proxies" ] || { echo "bench: BENCH_LOADED > BENCH_FLEET_PROXIES" >&2; exit 1; }
mkdir -p "$out"

# The harness: clusters (pgcluster.sh), proxy_write_config, $PROXY_DIR, fail/pass.
. "$top/tests/lib/proxy_harness.bash"
CTL_BIN=${PGCUTOVER_CTL_BIN:-$top/build/control/pgcutoverctl}
[ -x "$CTL_BIN" ] || fail "pgcutoverctl not built: $CTL_BIN (PGCUTOVER_BUILD_DIR=build deploy/build.sh pgcutover-proxy pgcutoverctl)"
# The binaries measured are the ones present now, even if the tree is rebuilt meanwhile.
build_desc="binaries built $(date -u -r "$PROXY_BIN" '+%H:%M') (proxy) and $(date -u -r "$CTL_BIN" '+%H:%M') (pgcutoverctl) UTC"
if rev=$(git -C "$top" rev-parse --short HEAD 2>/dev/null); then
  git -C "$top" diff --quiet HEAD 2>/dev/null || rev="$rev + uncommitted changes"
  build_desc="$build_desc, tree at $rev"
fi
mkdir -p "$PROXY_DIR/bin"
cp "$PROXY_BIN" "$PROXY_DIR/bin/pgcutover-proxy"
cp "$CTL_BIN" "$PROXY_DIR/bin/pgcutoverctl"
PROXY_BIN=$PROXY_DIR/bin/pgcutover-proxy CTL_BIN=$PROXY_DIR/bin/pgcutoverctl

PIDS=() BENCH_PIDS=()
JOURNAL=$PROXY_DIR/flip.journal
bench_cleanup() {
  local rc=$? p
  # pgbench runs under timeout(1), which passes a TERM on to it.
  for p in "${BENCH_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${BENCH_PIDS[@]}" "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ $rc -ne 0 ]; then
    for f in "$PROXY_DIR"/p1.log "$PROXY_DIR"/p"$n_proxies".log "$PROXY_DIR"/ctl.* "$PROXY_DIR"/bench*.log; do
      case $f in *.toml) continue ;; esac
      [ -f "$f" ] && { echo "---- $f ----" >&2; tail -n 30 "$f" >&2; }
    done
  fi
  # The proxies' logs and the controller's journal stay with the results.
  rm -rf "$out/fleet_flip.logs"
  mkdir -p "$out/fleet_flip.logs"
  cp "$PROXY_DIR"/p*.log "$PROXY_DIR"/bench*.log "$JOURNAL" "$out/fleet_flip.logs/" 2>/dev/null || true
  pgc_stop_all || true
  rm -rf "$PROXY_DIR"
  exit $rc
}
trap bench_cleanup EXIT
log() { echo "== $(date +%H:%M:%S) $*" >&2; }

# ---- two clusters, data, logical replication, validation (as tests/integration/test_fleet.sh) ----
pgc_start src heroku --logical >/dev/null
pgc_start tgt rds >/dev/null
export PROXY_TEST_SOURCE_URL=$SRC_URL PROXY_TEST_TARGET_URL=$TGT_URL
export PROXY_TEST_PASSWORD=$PROXY_USER_PASSWORD
TOKEN="tok-$$-$RANDOM"
export PGCUTOVER_TEST_TOKEN=$TOKEN
log "pgbench -i -s $scale, schema copy, logical replication, validate"
export PGPASSWORD=$SRC_APP_PASSWORD
timeout 300 pgbench -i -q -s "$scale" "$SRC_URL" >/dev/null 2>&1 || fail "pgbench -i"
pgc_admin_psql tgt -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
"$CTL_BIN" schema copy --source-url "$SRC_URL" --target-url "$TGT_URL" >/dev/null || fail "schema copy"
"$CTL_BIN" replicate start --method logical --source-url "$SRC_URL" --target-url "$TGT_URL" \
  --subscriber-url "$TGT_ADMIN_URL" --wait-timeout 300 >/dev/null || fail "replicate start"
"$CTL_BIN" validate --source-url "$SRC_URL" --target-url "$TGT_URL" --jobs 2 >/dev/null || fail "validate"

# ---- the proxies: [admin] and [fleet] each ----
PORTS=() APORTS=()
for i in $(seq 1 "$n_proxies"); do PORTS[$i]=$(pgc_free_port) APORTS[$i]=$(pgc_free_port); done
proxies_toml=""
for i in $(seq 1 "$n_proxies"); do
  proxies_toml+="
[[control.proxies]]
admin_url = \"http://127.0.0.1:${APORTS[$i]}\"
token = \"\${PGCUTOVER_TEST_TOKEN}\"
"
done
# The controller's configs: the same backends and journal; admin lists every proxy, fleet none.
PROXY_PORT=$(pgc_free_port) proxy_write_config "$PROXY_DIR/ctl-admin.toml" transaction "$pool" require "
[control]
journal = \"$JOURNAL\"
$proxies_toml"
PROXY_PORT=$(pgc_free_port) proxy_write_config "$PROXY_DIR/ctl-fleet.toml" transaction "$pool" require "
[control]
journal = \"$JOURNAL\"
"
for i in $(seq 1 "$n_proxies"); do
  PROXY_THREADS=1 proxy_write_fleet_config "$i" "bench-$i" 0.5 "
[cutover]
max_pause = 30

[admin]
listen_addr = \"127.0.0.1\"
listen_port = ${APORTS[$i]}
token = \"\${PGCUTOVER_TEST_TOKEN}\"
" "$pool"
done

ctl() { # <admin|fleet> <args...>: pgcutoverctl with that config; output in ctl.out / ctl.err
  local cfg=$1
  shift
  timeout 120 "$CTL_BIN" "$@" -c "$PROXY_DIR/ctl-$cfg.toml" >"$PROXY_DIR/ctl.out" 2>"$PROXY_DIR/ctl.err"
}
ctl fleet fleet setup || fail "fleet setup: $(cat "$PROXY_DIR/ctl.err")"
admin_ready() { curl -sf -o /dev/null -m 2 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$1/v1/status"; }
log "starting $n_proxies proxies (threads 1, pool $pool, [admin] + [fleet])"
for i in $(seq 1 "$n_proxies"); do
  "$PROXY_BIN" -c "$PROXY_DIR/p$i.toml" >>"$PROXY_DIR/p$i.log" 2>&1 &
  PIDS[$i]=$!
done
for i in $(seq 1 "$n_proxies"); do
  pgc_wait_until 20 pg_isready -q -h 127.0.0.1 -p "${PORTS[$i]}" -t 1 || fail "proxy $i does not accept"
  pgc_wait_until 20 admin_ready "${APORTS[$i]}" || fail "proxy $i does not serve its admin API"
done

# admin_all_on <state> <backend>: every proxy's admin API says so, all at one epoch (printed).
admin_all_on() {
  local i
  for i in $(seq 1 "$n_proxies"); do
    curl -s -m 3 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:${APORTS[$i]}/v1/status" || return 1
    echo
  done | $PY -c '
import json, sys
st = [json.loads(l) for l in sys.stdin if l.strip()]
ok = len(st) == int(sys.argv[3]) and all((d["state"], d["backend"]) == (sys.argv[1], sys.argv[2]) for d in st)
ok = ok and len({d["epoch"] for d in st}) == 1
print(st[0]["epoch"] if ok else "")
sys.exit(0 if ok else 1)' "$1" "$2" "$n_proxies"
}
# fleet_listed <state> <backend> <epoch>: `pgcutoverctl fleet --json` (fleet config) lists
# exactly the n members live, with their admin addresses registered, all in that state, on
# that backend, at that epoch (prints how many are not).
fleet_listed() {
  ctl fleet fleet --json || return 1
  $PY - "$PROXY_DIR/ctl.out" "$n_proxies" "$@" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); n, state, backend, epoch = int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
live = [m for m in d["members"] if m["live"]]
if len(live) != n or not all(m["admin"].startswith("127.0.0.1:") for m in live):
    sys.exit(1)
off = [m for m in live if (m["state"], m["backend"], m["epoch"]) != (state, backend, epoch)]
print(len(off))
sys.exit(0 if not off else 1)
PY
}
all_on() { # <state> <backend>: the admin APIs and the fleet listing agree
  local epoch
  epoch=$(admin_all_on "$@") && fleet_listed "$@" "$epoch" >/dev/null
}
pgc_wait_until 30 all_on running source || fail "the proxies did not register: $(cat "$PROXY_DIR/ctl.out")"

# ---- one flip + revert under load ----
export PGPASSWORD=$PROXY_USER_PASSWORD PGSSLMODE=require
history() { pgc_admin_psql "$1" -XAtc "select count(*) from pgbench_history"; }
start_load() { # pgbench through proxies 1..loaded, -T load_s, -R rate (0: unthrottled)
  local i throttle=()
  [ "$rate" = 0 ] || throttle=(-R "$rate")
  BENCH_PIDS=()
  for i in $(seq 1 "$loaded"); do
    timeout $((load_s + 60)) pgbench -n -b tpcb-like -c "$clients" -j 1 -T "$load_s" "${throttle[@]}" \
      -h 127.0.0.1 -p "${PORTS[$i]}" -U app app >"$PROXY_DIR/bench$i.log" 2>&1 &
    BENCH_PIDS+=($!)
  done
}
# One flip or revert with config $1 ("admin" | "fleet"), op $2 ("flip" | "revert"), round $3.
# Appends its figures to $PROXY_DIR/results and its JSON to $out/fleet_flip.jsonl.
one() {
  local path=$1 op=$2 r=$3 want p epoch t0 t1 t2
  [ "$op" = flip ] && want=target || want=source
  t0=$(date +%s.%N)
  ctl "$path" "$op" --json --subscriber-url "$TGT_ADMIN_URL" --source-subscriber-url "$SRC_ADMIN_URL" \
    --reverse-publisher-url "$TGT_ADMIN_URL" || { cat "$PROXY_DIR/ctl.out" "$PROXY_DIR/ctl.err" >&2; fail "$op through the $path path (round $r)"; }
  t1=$(date +%s.%N)
  for p in "${BENCH_PIDS[@]}"; do
    kill -0 "$p" 2>/dev/null || fail "the load ended before the $op of round $r ($path) did: raise BENCH_LOAD_SECONDS"
  done
  $PY - "$PROXY_DIR/ctl.out" "$path" "$op" "$r" "$n_proxies" "$out/fleet_flip.jsonl" >>"$PROXY_DIR/results" <<'PY' ||
import json, sys
f, path, op, r, n, jl = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
rep = json.load(open(f))
assert rep["ok"] and rep["outcome"] == "completed", rep.get("outcome")
pause = [s for s in rep["steps"] if s["step"] == "pause"][0]
answers = pause["data"]["proxies"]
fleet = sum(1 for a in answers if a["admin_url"].startswith("fleet:"))
http = sum(1 for a in answers if a["admin_url"].startswith("http"))
want = (0, n) if path == "fleet" else (n, 0)
assert (http, fleet) == want, "%s path paused %d proxies over HTTP and %d through the fleet" % (path, http, fleet)
with open(jl, "a") as o:
    o.write(json.dumps({"path": path, "op": op, "round": r, "report": rep}) + "\n")
print(path, op, r, rep["write_pause_ms"], rep["controller_span_ms"], rep.get("clients_held", 0))
PY
    fail "the $op through the $path path (round $r): $(head -c 2000 "$PROXY_DIR/ctl.out")"
  # Every proxy on the destination by its admin API, and so listed by `pgcutoverctl fleet`
  # (a member's row follows its state, whichever way it was commanded).
  pgc_wait_until 10 admin_all_on running "$want" >/dev/null ||
    fail "after the $op through the $path path (round $r) not every proxy runs on $want"
  epoch=$(admin_all_on running "$want")
  pgc_wait_until 10 fleet_listed running "$want" "$epoch" >/dev/null ||
    fail "after the $op through the $path path (round $r) the fleet listing is not all running on $want at epoch $epoch: $(head -c 3000 "$PROXY_DIR/ctl.out")"
  t2=$(date +%s.%N)
  local row
  read -r -a row < <(tail -1 "$PROXY_DIR/results")
  printf '%-5s %-6s %-7s %9.0f %9.0f %5s %6s %7s %7s\n' "$r" "$path" "$op" "${row[3]}" "${row[4]}" "${row[5]}" \
    "$epoch" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" \
    "$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f", b - a }')"
}
run_path() { # <admin|fleet> <round>
  local path=$1 r=$2 h0 p i rc
  h0=$(history src)
  start_load
  pgc_wait_until 10 bash -c "[ \$(PGPASSWORD= psql -XAtd '$SRC_ADMIN_URL' -c 'select count(*) from pgbench_history') -gt $((h0 + 20)) ]" ||
    fail "pgbench does not write (round $r, $path)"
  one "$path" flip "$r"
  one "$path" revert "$r"
  for i in "${!BENCH_PIDS[@]}"; do
    rc=0
    wait "${BENCH_PIDS[$i]}" || rc=$?
    p=$((i + 1))
    [ $rc = 0 ] || { cat "$PROXY_DIR/bench$p.log" >&2; fail "pgbench through proxy $p exited $rc (round $r, $path)"; }
    grep -q "number of failed transactions: 0 " "$PROXY_DIR/bench$p.log" ||
      { cat "$PROXY_DIR/bench$p.log" >&2; fail "failed transactions through proxy $p (round $r, $path)"; }
    echo "$path $(grep -oE 'number of transactions actually processed: [0-9]+' "$PROXY_DIR/bench$p.log" | grep -oE '[0-9]+$') \
$(grep -oE 'number of failed transactions: [0-9]+' "$PROXY_DIR/bench$p.log" | grep -oE '[0-9]+$')" >>"$PROXY_DIR/load"
  done
  BENCH_PIDS=()
}

: >"$out/fleet_flip.jsonl"
load_desc="pgbench tpcb-like, $clients clients through each of $loaded proxies at $([ "$rate" = 0 ] && echo "full speed" || echo "$rate tps each")"
log "$rounds rounds of flip + revert, admin path and fleet path alternating; $load_desc, $load_s s per path"
printf '%-5s %-6s %-7s %9s %9s %5s %6s %7s %7s\n' round path op pause_ms span_ms held epoch ctl_s check_s
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2 == 1)); then order=(admin fleet); else order=(fleet admin); fi
  for path in "${order[@]}"; do run_path "$path" "$r"; done
done

# ---- the table ----
when=$(date -u '+%Y-%m-%d %H:%M UTC')
pgv=$(pgc_admin_psql src -XAtc "show server_version")
$PY - "$PROXY_DIR/results" "$PROXY_DIR/load" "$out/fleet_flip.md" "$when" "$(nproc)" "$n_proxies" \
  "$loaded" "$clients" "$scale" "$pool" "$rounds" "$pgv" "$out/fleet_flip.jsonl" "$rate" "$build_desc" <<'PY'
import json, math, statistics, sys
res, load, md, when, cores, n, loaded, clients, scale, pool, rounds, pgv, jl, rate, build = sys.argv[1:16]
rows = [l.split() for l in open(res)]
def vals(path, op, col):
    return [float(x[col]) for x in rows if x[0] == path and (op == "both" or x[1] == op)]
def p90(v):
    s = sorted(v)
    return s[max(0, math.ceil(0.9 * len(s)) - 1)]
lines = [
    f"Run: {when}, {cores} cores, {n} proxies (threads 1, pool {pool}, [admin] + [fleet] each), "
    f"pgbench tpcb-like scale {scale}, {clients} clients through each of {loaded} proxies "
    f"({'unthrottled' if rate == '0' else '-R ' + rate + ' tps each'}) during "
    f"every flip and revert, {rounds} rounds (admin and fleet path alternating, order swapped "
    f"every other round), PostgreSQL {pgv}, TLS on loopback; {build}.",
    "",
    "| path | op | write pause median ms | p90 | max | controller span median ms | p90 | max | n |",
    "|---|---|---|---|---|---|---|---|---|",
]
for op in ("flip", "revert", "both"):
    for path in ("admin", "fleet"):
        w, s = vals(path, op, 3), vals(path, op, 4)
        if not w:
            continue
        lines.append(f"| {path} | {op} | {statistics.median(w):.0f} | {p90(w):.0f} | {max(w):.0f} | "
                     f"{statistics.median(s):.0f} | {p90(s):.0f} | {max(s):.0f} | {len(w)} |")
lines += ["", "| op | figure | fleet / admin (medians) | fleet - admin (medians) |", "|---|---|---|---|"]
for op in ("flip", "revert", "both"):
    for col, name in ((3, "write pause"), (4, "controller span")):
        a, f = statistics.median(vals("admin", op, col)), statistics.median(vals("fleet", op, col))
        lines.append(f"| {op} | {name} | {f / a:.2f} | {f - a:+.0f} ms |")
# Where the controller span goes: the steps from PAUSE to the flip's answers. pause, flip and
# resume are calls to the proxies (HTTP or the channel); the others are the databases' work.
steps = ("pause", "fence", "catch_up", "sequences", "replication", "flip", "resume")
ms = {}
for l in open(jl):
    d = json.loads(l)
    for st in d["report"]["steps"]:
        ms.setdefault((d["path"], d["op"], st["step"]), []).append(st.get("ms", 0))
lines += ["", "| path | op | " + " | ".join(steps) + " |", "|---|---|" + "---|" * len(steps)]
for op in ("flip", "revert"):
    for path in ("admin", "fleet"):
        lines.append(f"| {path} | {op} | " + " | ".join(
            f"{statistics.median(ms.get((path, op, st), [0])):.0f}" for st in steps) + " |")
lines += ["", "Step medians in ms, from the controller's JSON; the controller span runs from the "
          "start of `pause` to the last gate-opening answer in `flip`."]
tx = {}
for l in open(load):
    path, done, failed = l.split()
    t = tx.setdefault(path, [0, 0])
    t[0] += int(done)
    t[1] += int(failed)
lines += ["", "pgbench across the flips and reverts: " + ", ".join(
    f"{p} path {t[0]} transactions, {t[1]} failed" for p, t in sorted(tx.items())) + "."]
text = "\n".join(lines) + "\n"
print()
print(text, end="")
open(md, "w").write(text)
PY
log "written: $out/fleet_flip.md, $out/fleet_flip.jsonl, $out/fleet_flip.logs/"
