#!/usr/bin/env bash
# pgcutover-proxy data plane end to end, real PostgreSQL on both sides: a Heroku-shaped source
# (server TLS sslmode=require) and an RDS-shaped target (verify-full against its own CA), the
# proxy terminating client TLS. Proves: psql/libpq/pgbench through both pool modes, COPY both
# ways, plaintext refused under client_tls=require, wrong password and unknown user give the
# same error, SIGHUP with a bad file keeps serving, session-mode reset between clients, a
# restart with the state file on "target" serves from the target, verify-full really verifies.
. "$(dirname "$0")/../lib/proxy_harness.bash"

pgc_start src heroku >/dev/null
pgc_start tgt rds >/dev/null
export PROXY_TEST_SOURCE_URL=$SRC_URL PROXY_TEST_TARGET_URL=$TGT_URL
cfg=$PROXY_DIR/proxy.toml
dsn=$(proxy_dsn verify-full)

# ---- bad configuration: message naming file, key and problem; exit code 2; --check ----
printf '[proxy]\npool_mode = "statement"\n[backends.source]\nurl = "postgres://a@h/d"\n' >"$PROXY_DIR/bad.toml"
set +e
msg=$("$PROXY_BIN" -c "$PROXY_DIR/bad.toml" 2>&1)
rc=$?
set -e
[ $rc -eq 2 ] || fail "bad config: exit code $rc, want 2"
grep -q "$PROXY_DIR/bad.toml: proxy.pool_mode: unknown value \"statement\"" <<<"$msg" || fail "bad config message: $msg"
proxy_write_config "$cfg" transaction 4 require
PROXY_TEST_PASSWORD=x "$PROXY_BIN" --check -c "$cfg" | grep -q "is valid" || fail "--check on a good file"
"$PROXY_BIN" --version | grep -q "pgcutover-proxy" || fail "--version"
pass "bad config: exit 2 with file, key and problem; --check and --version"

# ---- transaction mode, client TLS required, server TLS require (source) ----
proxy_write_config "$cfg" transaction 4 require
proxy_start "$cfg"

out=$(proxy_psql "$dsn" -c "select inet_server_port(), current_user, (select ssl from pg_stat_ssl where pid = pg_backend_pid())")
[ "$out" = "$SRC_PORT|app|t" ] || fail "expected source port over server TLS, got '$out'"
pass "psql over client TLS (verify-full) -> transaction mode -> source over TLS"

out=$(timeout 20 psql -X -At "$(proxy_dsn disable)" -c "select 1" 2>&1 || true)
grep -q "SSL connection is required" <<<"$out" || fail "plaintext was not refused under client_tls=require: $out"
pass "plaintext refused when client_tls = require"

wrong=$(PGPASSWORD=x timeout 20 psql -X -At "host=127.0.0.1 port=$PROXY_PORT user=app dbname=app password=wrong sslmode=require" -c "select 1" 2>&1 || true)
unknown=$(timeout 20 psql -X -At "host=127.0.0.1 port=$PROXY_PORT user=nosuchuser dbname=app password=wrong sslmode=require" -c "select 1" 2>&1 || true)
grep -q 'password authentication failed for user "app"' <<<"$wrong" || fail "wrong password: $wrong"
[ "${unknown//nosuchuser/app}" = "$wrong" ] || fail "unknown user distinguishable from wrong password: '$unknown' vs '$wrong'"
pass "wrong password and unknown user get the same 28P01 message"

# Extended protocol, pipelined statements and errors inside transactions.
out=$(timeout 60 psql -X -At "$dsn" <<'SQL'
begin;
create table t_tx(x int primary key);
insert into t_tx values (1);
commit;
begin;
insert into t_tx values (1);
commit;
select count(*) from t_tx;
SQL
) 2>&1 || true
echo "$out" | tail -1 | grep -qx "1" || fail "error inside a transaction handled wrongly: $out"
proxy_psql "$dsn" -c "select 42" | grep -qx 42 || fail "proxy unusable after a failed transaction"
pass "error inside a transaction: rolled back, connection reusable"

# COPY out and in through the proxy.
proxy_psql "$dsn" -c "\\copy (select g, md5(g::text) from generate_series(1, 5000) g) to '$PROXY_DIR/copy.csv' csv"
[ "$(wc -l <"$PROXY_DIR/copy.csv")" = 5000 ] || fail "COPY TO STDOUT returned $(wc -l <"$PROXY_DIR/copy.csv") rows"
proxy_psql "$dsn" -c "create table t_copy(a int, b text)"
proxy_psql "$dsn" -c "\\copy t_copy from '$PROXY_DIR/copy.csv' csv"
[ "$(proxy_psql "$dsn" -c "select count(*), sum(a) from t_copy")" = "5000|12502500" ] || fail "COPY FROM STDIN lost rows"
out=$(printf '1,x\nnot-a-number,y\n' | proxy_psql "$dsn" -c "\\copy t_copy from stdin csv" 2>&1 || true)
grep -q "invalid input syntax" <<<"$out" || fail "COPY error not reported: $out"
[ "$(proxy_psql "$dsn" -c "select count(*) from t_copy")" = 5000 ] || fail "failed COPY left rows"
pass "COPY out and in (and a failing COPY) through transaction mode"

# A result far larger than the relay's read buffer (about 9 MB) arrives whole and in order: on
# the way the server reader lets the shard's other sessions run every 16 full buffers.
big="select g, repeat(md5(g::text), 4) from generate_series(1, 60000) g"
want=$(pgc_psql src -q -At -c "$big" | md5sum)
got=$(proxy_psql "$dsn" -c "$big" | md5sum)
[ "$got" = "$want" ] || fail "a 9 MB result through the proxy differs from the same query run directly"
pass "a 9 MB result streams through whole"

# pgbench: initialise and run through the proxy, simple and extended protocol.
PGPASSWORD=$PROXY_USER_PASSWORD PGSSLMODE=require timeout 120 pgbench -i -s 2 -q -h 127.0.0.1 -p "$PROXY_PORT" -U app app >/dev/null 2>"$PROXY_DIR/pgbench-init.log" ||
  { cat "$PROXY_DIR/pgbench-init.log"; fail "pgbench -i through the proxy"; }
for proto in simple extended; do
  PGPASSWORD=$PROXY_USER_PASSWORD PGSSLMODE=require timeout 120 pgbench -n -M $proto -c 8 -j 2 -t 200 \
    -h 127.0.0.1 -p "$PROXY_PORT" -U app app >"$PROXY_DIR/pgbench.log" 2>&1 ||
    { cat "$PROXY_DIR/pgbench.log"; fail "pgbench -M $proto through transaction mode"; }
  grep -q "number of failed transactions: 0 " "$PROXY_DIR/pgbench.log" || { cat "$PROXY_DIR/pgbench.log"; fail "pgbench had failures"; }
  grep -q "number of transactions actually processed: 1600/1600" "$PROXY_DIR/pgbench.log" || { cat "$PROXY_DIR/pgbench.log"; fail "pgbench incomplete"; }
done
pass "pgbench -i and pgbench (simple, extended) through transaction mode, 0 failures"

# SIGHUP with a broken file: logged, old config stays, clients keep being served.
cp "$cfg" "$cfg.good"
echo "this is = = not toml" >>"$cfg"
kill -HUP "$PROXY_PID"
pgc_wait_until 10 grep -q "event=reload_failed" "$PROXY_DIR/proxy.log" || fail "no reload_failed log line"
proxy_psql "$dsn" -c "select 7" | grep -qx 7 || fail "proxy stopped serving after a bad reload"
cp "$cfg.good" "$cfg"
kill -HUP "$PROXY_PID"
pgc_wait_until 10 grep -q "event=reloaded" "$PROXY_DIR/proxy.log" || fail "no reloaded log line after fixing the file"
proxy_psql "$dsn" -c "select 8" | grep -qx 8 || fail "proxy not serving after a good reload"
pass "SIGHUP: bad file rejected with a log line and the old config kept; good file applied"
proxy_stop

# ---- session mode, client TLS allowed, one shard and a pool of one: the second client gets
# the very server connection the first one used, so DISCARD ALL between clients is observable.
PROXY_THREADS=1 PROXY_UNIX_DIR=$PROXY_DIR proxy_write_config "$cfg" session 1 allow
proxy_start "$cfg"
out=$(proxy_psql "$(proxy_dsn disable)" <<'SQL'
set application_name = 'leaky';
create temp table tmp_x(x int);
prepare p1 as select 1;
select pg_backend_pid();
show application_name;
SQL
)
first_pid=${out%%$'\n'*}
[ "$(echo "$out" | tail -1)" = "leaky" ] || fail "session mode: SET not kept within the session: $out"
out=$(proxy_psql "$dsn" -c "select pg_backend_pid()" -c "show application_name" -c "select count(*) from pg_prepared_statements" \
  -c "select count(*) from pg_class where relname = 'tmp_x' and relpersistence = 't'")
[ "$out" = "$(printf '%s\npsql\n0\n0' "$first_pid")" ] || fail "session state leaked to the next client in session mode (or another server connection was used): $out"
pass "session mode: SET, temp table and PREPARE do not reach the next client (DISCARD ALL)"
out=$(proxy_psql "host=$PROXY_DIR port=$PROXY_PORT user=app dbname=app password=$PROXY_USER_PASSWORD" -c "select 'via unix socket'")
[ "$out" = "via unix socket" ] || fail "unix socket listener: $out"
pass "client over the unix socket (unix_socket_dir)"
PGPASSWORD=$PROXY_USER_PASSWORD PGSSLMODE=require timeout 120 pgbench -n -c 4 -j 2 -t 100 \
  -h 127.0.0.1 -p "$PROXY_PORT" -U app app >"$PROXY_DIR/pgbench.log" 2>&1 || { cat "$PROXY_DIR/pgbench.log"; fail "pgbench in session mode"; }
grep -q "number of failed transactions: 0 " "$PROXY_DIR/pgbench.log" || fail "pgbench failures in session mode"
pass "pgbench through session mode (4 clients queued on a pool of 1), 0 failures"
proxy_stop

# ---- restart with the state file on "target": serves from the RDS-shaped target ----
grep -q '"backend":"source"' "$PROXY_DIR/state.json" || fail "state file not written at first start: $(cat "$PROXY_DIR/state.json")"
printf '{"backend":"target","epoch":1}\n' >"$PROXY_DIR/state.json"
proxy_write_config "$cfg" transaction 4 require
proxy_start "$cfg"
out=$(proxy_psql "$dsn" -c "select inet_server_port(), (select ssl from pg_stat_ssl where pid = pg_backend_pid())")
[ "$out" = "$TGT_PORT|t" ] || fail "after restart with state file on target: got '$out', want '$TGT_PORT|t'"
PGPASSWORD=$PROXY_USER_PASSWORD PGSSLMODE=require timeout 120 pgbench -i -s 1 -q -h 127.0.0.1 -p "$PROXY_PORT" -U app app >/dev/null 2>&1 ||
  fail "pgbench -i on the target through the proxy"
PGPASSWORD=$PROXY_USER_PASSWORD PGSSLMODE=require timeout 120 pgbench -n -c 8 -j 2 -t 100 \
  -h 127.0.0.1 -p "$PROXY_PORT" -U app app >"$PROXY_DIR/pgbench.log" 2>&1 || { cat "$PROXY_DIR/pgbench.log"; fail "pgbench on target"; }
grep -q "number of failed transactions: 0 " "$PROXY_DIR/pgbench.log" || fail "pgbench failures on target"
pass "restart with state file on target: served by the target over verify-full TLS (psql, pgbench)"
proxy_stop

# The same target in session mode: both pool modes reach the RDS-shaped target over verify-full.
proxy_write_config "$cfg" session 2 require
proxy_start "$cfg"
out=$(proxy_psql "$dsn" -c "select inet_server_port(), (select ssl from pg_stat_ssl where pid = pg_backend_pid())")
[ "$out" = "$TGT_PORT|t" ] || fail "session mode on target: got '$out', want '$TGT_PORT|t'"
PGPASSWORD=$PROXY_USER_PASSWORD PGSSLMODE=require timeout 120 pgbench -n -c 4 -j 2 -t 100 \
  -h 127.0.0.1 -p "$PROXY_PORT" -U app app >"$PROXY_DIR/pgbench.log" 2>&1 || { cat "$PROXY_DIR/pgbench.log"; fail "pgbench on target in session mode"; }
grep -q "number of failed transactions: 0 " "$PROXY_DIR/pgbench.log" || fail "pgbench failures on target in session mode"
pass "session mode on the target over verify-full TLS (psql, pgbench 4 clients on a pool of 2)"
proxy_stop

# ---- verify-full really verifies: the target checked against the wrong CA fails ----
export PROXY_TEST_TARGET_URL=${TGT_URL//$TGT_CA_FILE/$SRC_CA_FILE}
proxy_start "$cfg"
out=$(timeout 30 psql -X -At "$dsn" -c "select 1" 2>&1 || true)
grep -q "TLS handshake with backend \"target\" failed" <<<"$out" || fail "verify-full accepted a certificate from another CA: $out"
pass "verify-full refuses a target certificate not signed by the configured CA"
proxy_stop

echo "all data plane checks passed"
