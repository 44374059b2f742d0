#!/usr/bin/env bash
# docs/runbook.md's Heroku-classic path, run as written: every line of the block between
# `<!-- heroku-classic: begin -->` and `<!-- heroku-classic: end -->`, in order, from a directory
# holding pgcutover.toml, on a Heroku-shaped source (app role without superuser or REPLICATION)
# and an RDS-shaped target. Lines ending in `&` keep running in the background. Each line must
# exit 0. Writes made through the proxy while the capture runs must be on RDS after the flip,
# the proxy must serve from RDS, and finalize must leave nothing of the capture on Heroku. A
# command renamed or an option removed in the docs or the code fails here.
. "$(dirname "$0")/../lib/proxy_harness.bash"

CTL_BIN=${PGCUTOVER_CTL_BIN:-$(dirname "$PROXY_BIN")/../control/pgcutoverctl}
[ -x "$CTL_BIN" ] || fail "pgcutoverctl not built: $CTL_BIN"
PROXY_FAILURE_LOGS=("work/*.log")

pgc_start src heroku >/dev/null
pgc_start tgt rds >/dev/null
[ "$(pgc_psql src -XAtc "select rolsuper or rolreplication from pg_roles where rolname = current_user")" = f ] ||
  fail "the source's app role must have neither superuser nor REPLICATION"
timeout 120 pgbench -i -q -s 1 "$SRC_URL" >/dev/null 2>&1 || fail "pgbench -i"
pgc_psql src -qc "CREATE TABLE ledger (id bigserial PRIMARY KEY, note text NOT NULL)"
pgc_admin_psql tgt -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"

# pgcutover.toml: the proxy, its admin API, and the controller's view of it.
export PROXY_TEST_SOURCE_URL=$SRC_URL PROXY_TEST_TARGET_URL=$TGT_URL
export PGCUTOVER_TEST_TOKEN="tok-$$-$RANDOM" PROXY_TEST_PASSWORD=$PROXY_USER_PASSWORD
ADMIN_PORT=$(pgc_free_port)
work=$PROXY_DIR/work
mkdir -p "$work"
proxy_write_config "$work/pgcutover.toml" transaction 8 require "
$(proxy_controlled_toml "$ADMIN_PORT" "$work/flip.journal")
"
export PGCUTOVER_SMOKE_URL
PGCUTOVER_SMOKE_URL=$(proxy_dsn require)
export PATH="$(cd "$(dirname "$CTL_BIN")" && pwd):$(cd "$(dirname "$PROXY_BIN")" && pwd):$PATH"

# The block, as the reader sees it.
lines=$(awk '/<!-- heroku-classic: begin -->/ {on = 1; next} /<!-- heroku-classic: end -->/ {on = 0}
             on && !/^```/ && !/^#/ && NF' "$top/docs/runbook.md")
[ "$(wc -l <<<"$lines")" -ge 10 ] || fail "docs/runbook.md has no Heroku-classic block (got: $lines)"

writes_done=0
n=0
cd "$work"
while IFS= read -r line; do
  n=$((n + 1))
  case "$line" in
    pgcutoverctl* | pgcutover-proxy*) ;;
    *) fail "runbook line $n is not a pgcutover command: $line" ;;
  esac
  if [[ "$line" == *"&" ]]; then
    cmd=${line%&}
    bash -c "exec $cmd" >"$work/bg$n.log" 2>&1 &
    disown $! 2>/dev/null || true # killed at the end; no "Killed" noise
    PROXY_PIDS+=($!)
    case "$cmd" in
      pgcutover-proxy*)
        pgc_wait_until 15 proxy_ready || fail "runbook line $n: the proxy does not accept on $PROXY_PORT"
        ;;
    esac
    pass "runbook line $n running: $line"
    continue
  fi
  # After the flip, before the way back's lag is read, writes through the proxy land on RDS.
  if [ $writes_done = 1 ] && [[ "$line" == "pgcutoverctl lag --reverse"* ]]; then
    for i in $(seq 1 20); do
      proxy_psql "$(proxy_dsn require)" -c "insert into ledger (note) values ('after the flip $i')" ||
        fail "a write through the proxy after the flip failed"
    done
    writes_done=2
  fi
  # Before the lag is read, the application writes through the proxy (captured, applied).
  if [ $writes_done = 0 ] && [[ "$line" == "pgcutoverctl lag "* ]]; then
    for i in $(seq 1 20); do
      proxy_psql "$(proxy_dsn require)" -c "insert into ledger (note) values ('before the flip $i')" ||
        fail "a write through the proxy failed"
    done
    writes_done=1
  fi
  # An operator validates once the apply has caught up (lag shows 0 pending); so does this test,
  # bounded, so that a validate racing the apply of the writes above is not the thing tested.
  if [[ "$line" == "pgcutoverctl validate "* ]]; then
    dir=""
    [[ "$line" == *"--reverse"* ]] && dir=--reverse
    drained() {
      pgcutoverctl lag $dir --json -c pgcutover.toml 2>/dev/null |
        /usr/bin/python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin).get("pending_changes") == 0 else 1)'
    }
    pgc_wait_until 60 drained || fail "the apply did not catch up within 60 s before validate"
  fi
  timeout 180 bash -c "$line" >"$work/line$n.log" 2>&1 ||
    { cat "$work/line$n.log"; fail "runbook line $n exited $?: $line"; }
  pass "runbook line $n: $line"
done <<<"$lines"

[ $writes_done = 2 ] || fail "the runbook never reads the lag before the flip and the way back's after it"
port=$(proxy_psql "$(proxy_dsn require)" -c 'select inet_server_port()')
[ "$port" = "$TGT_PORT" ] || fail "after the runbook the proxy serves port $port, not RDS's $TGT_PORT"
got=$(pgc_admin_psql tgt -XAtc "select count(*) from ledger where note like 'before the flip %'")
[ "$got" = 20 ] || fail "$got of 20 writes made through the proxy before the flip are on RDS"
# validate --reverse passed, so they were on Heroku too before finalize; the rows remain.
back=$(pgc_admin_psql src -XAtc "select count(*) from ledger where note like 'after the flip %'")
[ "$back" = 20 ] || fail "$back of 20 writes made on RDS after the flip reached Heroku through the way back"
left=$(pgc_admin_psql src -XAtc "select (select count(*) from pg_trigger where tgname like 'pgcutover%')
  + (select count(*) from pg_namespace where nspname = 'pgcutover')")
[ "$left" = 0 ] || fail "finalize left $left trigger(s)/schema on the source"
left=$(pgc_admin_psql tgt -XAtc "select count(*) from pg_trigger where tgname like 'pgcutover%'")
[ "$left" = 0 ] || fail "finalize left $left trigger(s) on RDS"
pass "the Heroku-classic runbook, as written: traffic on RDS, 20/20 writes there, 20/20 of RDS's back on Heroku, nothing left on either"
