#!/usr/bin/env bash
# Read scaling on a route with several readers (issue 10, optional part): a primary and two
# streaming replicas; route `app_reports` lists both replicas. 8 concurrent clients get their
# queries spread over both readers (least outstanding queries); after one reader is stopped,
# the next attempt to it takes it out (event=reader_down) and every query is answered by the
# other one, with no client error.
. "$(dirname "$0")/../lib/proxy_harness.bash"

pgc_start prim plain >/dev/null
pgc_start_replica r1 prim >/dev/null
pgc_start_replica r2 prim >/dev/null
export PROXY_TEST_SOURCE_URL=$PRIM_URL PROXY_TEST_TARGET_URL=$PRIM_URL
export PROXY_TEST_R1_URL=$R1_URL PROXY_TEST_R2_URL=$R2_URL
CFG=$PROXY_DIR/proxy.toml
# One shard: one pool, so the readers share one load table (the test then knows what it saw).
PROXY_THREADS=1 proxy_write_config "$CFG" transaction 8 disable "
[backends.r1]
url = \"\${PROXY_TEST_R1_URL}\"
[backends.r2]
url = \"\${PROXY_TEST_R2_URL}\"

[routes.reports]
database = \"app_reports\"
read_only = true
backends = { source = [\"r1\", \"r2\"], target = [\"r1\", \"r2\"] }
"
proxy_start "$CFG"

# <clients> <queries each>: "port count" lines and "errors N" from concurrent clients of
# app_reports, one transaction per query (each one a new assignment in transaction mode).
cat >"$PROXY_DIR/spread.py" <<'PY'
import collections, os, sys, threading
import psycopg
dsn = os.environ["DSN"]
clients, queries = int(sys.argv[1]), int(sys.argv[2])
ports, errors, lock = collections.Counter(), [0], threading.Lock()
def run():
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(queries):
            try:
                port = conn.execute("SELECT inet_server_port() FROM pg_sleep(0.001)").fetchone()[0]
                with lock:
                    ports[port] += 1
            except psycopg.Error as e:
                with lock:
                    errors[0] += 1
                print("error:", e, file=sys.stderr)
                if conn.closed:
                    return
threads = [threading.Thread(target=run) for _ in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
for port, n in ports.items():
    print(port, n)
print("errors", errors[0])
PY
dsn="host=127.0.0.1 port=$PROXY_PORT user=app dbname=app_reports password=$PROXY_USER_PASSWORD sslmode=disable"
count() { awk -v k="$1" '$1 == k {print $2}' "$2"; }

DSN=$dsn timeout 60 /usr/bin/python3 "$PROXY_DIR/spread.py" 8 200 >"$PROXY_DIR/spread1.out" || fail "clients failed: $(cat "$PROXY_DIR/spread1.out")"
[ "$(count errors "$PROXY_DIR/spread1.out")" = 0 ] || fail "errors with both readers up: $(cat "$PROXY_DIR/spread1.out")"
n1=$(count "$R1_PORT" "$PROXY_DIR/spread1.out")
n2=$(count "$R2_PORT" "$PROXY_DIR/spread1.out")
n1=${n1:-0} n2=${n2:-0}
[ $((n1 + n2)) = 1600 ] || fail "answers from elsewhere than the readers: $(cat "$PROXY_DIR/spread1.out")"
[ "$n1" -ge 400 ] && [ "$n2" -ge 400 ] || fail "queries not spread over the readers: r1 $n1, r2 $n2 of 1600"
pass "8 clients x 200 queries on app_reports: r1 answered $n1, r2 answered $n2, 0 errors"

pgc_stop r2
# Queries until the proxy has tried r2 and taken it out. Until then a query may still get an
# idle connection to r2 that died with it (one used less than a second ago is not re-checked,
# as in PgBouncer's server_check_delay): that client gets an error, as it would without a proxy.
r2_out() {
  timeout 10 psql -X -At "$dsn" -c "select 1" >/dev/null 2>&1 || true
  grep -q 'event=reader_down backend=r2' "$PROXY_DIR/proxy.log"
}
pgc_wait_until 15 r2_out || fail "r2 was not taken out"
DSN=$dsn timeout 60 /usr/bin/python3 "$PROXY_DIR/spread.py" 8 100 >"$PROXY_DIR/spread2.out" || fail "clients failed: $(cat "$PROXY_DIR/spread2.out")"
[ "$(count errors "$PROXY_DIR/spread2.out")" = 0 ] || fail "client errors with r2 down: $(cat "$PROXY_DIR/spread2.out")"
[ "$(count "$R1_PORT" "$PROXY_DIR/spread2.out")" = 800 ] || fail "not every query answered by r1: $(cat "$PROXY_DIR/spread2.out")"
pass "r2 stopped: taken out (event=reader_down), 800 queries all answered by r1, 0 client errors"
