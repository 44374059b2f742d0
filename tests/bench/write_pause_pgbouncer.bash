# The comparison row of bench_write_pause.sh: the same load and the same logical replication,
# with two PgBouncers in place of the proxies and the tightest cutover a user can script
# around them: PAUSE both, wait until the subscription has confirmed the source's position at
# the pause, point both at the target (RELOAD), RESUME both. No fence, no smoke test, the
# sequences set ahead before the pause, the admin sessions open before it (pgbouncer_switch.py).
# Only the flip is measured: the way back is a plain switch (PAUSE, RELOAD, RESUME) with no
# replication back, so each round's checks look at the target, which holds every acknowledged
# row (the source's through the subscription).
# Sourced by bench_write_pause.sh (its helpers: log, fail, count, one-round load, RUNS).

# bouncer_db_line <cluster>: the [databases] entry for the app database on that cluster.
bouncer_db_line() {
  local port pw
  if [ "$1" = src ]; then port=$SRC_PORT pw=$SRC_APP_PASSWORD; else port=$TGT_PORT pw=$TGT_APP_PASSWORD; fi
  echo "app = host=127.0.0.1 port=$port dbname=app user=app password=$pw"
}
# bouncer_switch <cluster> [wait]: PAUSE both, [wait for the subscription], RELOAD both onto
# <cluster>, RESUME both, over admin sessions opened before the pause (pgbouncer_switch.py).
# Prints the JSON a flip report has, for the report script.
bouncer_switch() {
  local i args=()
  for i in 1 2; do
    args+=("host=127.0.0.1 port=${PORTS[$i]} user=app dbname=pgbouncer password=$SRC_APP_PASSWORD sslmode=require"
      "$PROXY_DIR/pgbouncer$i/pgbouncer.ini")
  done
  timeout 60 $PY "$top/tests/bench/pgbouncer_switch.py" "$([ -n "${2:-}" ] && echo "$SRC_ADMIN_URL" || echo -)" \
    "$(bouncer_db_line "$1")" "${args[@]}" || fail "the scripted PgBouncer switch to $1"
}

run_pgbouncer() {
  local i r
  setup_clusters pgbouncer logical

  # Two PgBouncers as the proxies run: transaction mode, pool 10, TLS from the clients (the
  # proxies' certificate) and to the server.
  PORTS=("" "" "")
  for i in 1 2; do
    local run=$PROXY_DIR/pgbouncer$i pids=()
    mkdir -p "$run"
    cp "$PROXY_DIR/tls/server.crt" "$PROXY_DIR/tls/server.key" "$run/"
    chown -R "${PGCUTOVER_PG_USER:-pgcutover}" "$run" 2>/dev/null || true
    chmod 600 "$run/server.key"
    start_pgbouncer "$run" "$SRC_PORT" "$SRC_APP_PASSWORD" 10 1000 require "admin_users = app
client_tls_sslmode = require
client_tls_cert_file = $run/server.crt
client_tls_key_file = $run/server.key"
    PPIDS[$i]=${pids[0]}
    PORTS[$i]=$bouncer_port
  done
  PGPASSWORD_LOAD=$SRC_APP_PASSWORD
  base=$(count tgt "count(*) from ledger")
  acked=0 acked_hist=0
  for ((r = 1; r <= rounds; r++)); do pgbouncer_round "$r"; done
  log "pgbouncer: done; stopping PgBouncer and the clusters"
  for i in 1 2; do
    kill -TERM "${PPIDS[$i]}" 2>/dev/null || true
    wait "${PPIDS[$i]}" 2>/dev/null || true
    cp "$PROXY_DIR/pgbouncer$i/pgbouncer.log" "$PROXY_DIR/pgbouncer.b$i.log" 2>/dev/null || true
  done
  PPIDS=()
  PGPASSWORD_LOAD=""
  pgc_stop src
  pgc_stop tgt
}

pgbouncer_round() { # <round>
  local r=$1 m=pgbouncer json t0 t1 got distinct
  load_started "$m" "$r"
  # Sequences ahead on the target before the pause (what a runbook does; the proxies' flip
  # does it inside the pause, in its sequences step).
  pgc_admin_psql tgt -qc "select setval('ledger_id_seq', greatest((select last_value from
    ledger_id_seq), $(count src "last_value from ledger_id_seq")) + 1000000)" >/dev/null
  json=$PROXY_DIR/$m.r$r.flip.json
  t0=$(date +%s%N)
  bouncer_switch tgt wait >"$json"
  t1=$(date +%s%N)
  echo "$m flip $r $t0 $t1 $json" >>"$RUNS"
  $PY - "$json" "$m" "$r" "$out/write_pause.jsonl" "$t0" "$t1" <<'PY'
import json, sys
f, m, r, jl, t0, t1 = sys.argv[1:7]
rep = json.load(open(f))
with open(jl, "a") as o:
    o.write(json.dumps({"method": m, "op": "flip", "round": int(r), "report": rep}) + "\n")
print("%-8s %-6s %5s %9.0f %9.0f %5s %8.0f" % (m, "flip", r, rep["write_pause_ms"],
      rep["controller_span_ms"], "-", (int(t1) - int(t0)) / 1e6))
PY
  local flipped=$SECONDS
  window_done() { [ $((SECONDS - flipped)) -ge "$window_s" ]; }
  pgc_wait_until $((window_s + 10)) window_done || true
  # Back, unmeasured (nothing replicates the target's writes back); its window is listed so that
  # the baseline leaves it out.
  t0=$(date +%s%N)
  bouncer_switch src >"$PROXY_DIR/$m.r$r.back.json"
  t1=$(date +%s%N)
  echo "$m back $r $t0 $t1 $PROXY_DIR/$m.r$r.back.json" >>"$RUNS"
  load_finished "$m" "$r"
  # The target has every acknowledged row once the subscription has the source's last ones.
  all_there() { [ "$(count tgt "count(*) from ledger")" = $((base + acked)) ]; }
  pgc_wait_until 30 all_there || true
  read -r got distinct < <(count tgt "count(*), count(distinct id) from ledger" | tr '|' ' ')
  [ "$got" = $((base + acked)) ] && [ "$distinct" = "$got" ] ||
    fail "ledger on the target after round $r ($m): $got rows ($distinct distinct ids)," \
      "acknowledged $((base + acked))"
  echo "   round $r ($m): ledger on the target $got rows = $base before + $acked acknowledged," \
    "no duplicate id; 0 failed" >&2
}
