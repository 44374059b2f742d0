#!/usr/bin/env bash
# A client cannot tell the proxy from PostgreSQL, with psycopg 3, direct and through the proxy
# in session and in transaction mode:
#  - notifications: a NOTIFY sent by the client's own session arrives with the pid the client
#    was given at login (BackendKeyData, PQbackendPID, psycopg's conn.info.backend_pid);
#    drivers compare the two to skip their own notifications. A notification from another
#    client's session keeps that session's pid, which is never the listener's; in transaction
#    mode, where that pid is not the one the proxy gave the sender, the first LISTEN says so
#    with a warning, and so does a read of pg_prepared_statements (the pooled connection's
#    shared statements, not the client's); direct and in session mode nothing is said;
#  - session mode, a client that logged in while the pool was busy got the proxy's pid: its
#    first statement tells it (NOTICE) the pid of its server process, which pg_backend_pid()
#    returns;
#  - a database the server does not have is refused at login (FATAL 3D000), as direct, also
#    through libpq's asynchronous connect;
#  - client_encoding asked as "utf-8" or "euc-jp" is reported at login as the server spells it
#    ("UTF8", "EUC_JP"), and text round-trips in that encoding;
#  - direct and in session mode, the pid a driver reports is the server's: pg_backend_pid()
#    returns it, and pg_terminate_backend() of it ends the client's own session with 57P01 and
#    a closed connection (psycopg's own test of a broken connection does exactly this); in
#    transaction mode, where the pid is the proxy's, the server's "is not a PostgreSQL backend
#    process" warning carries a hint saying what that pid is;
#  - transaction mode, two clients sharing one server connection: what one client set for its
#    session (default_transaction_read_only from its startup options or a SET, search_path,
#    statement_timeout) never reaches the other, and stays its own across the other's
#    transactions.
. "$(dirname "$0")/../lib/proxy_harness.bash"

pgc_start db plain >/dev/null
export PROXY_TEST_SOURCE_URL=$DB_URL PROXY_TEST_TARGET_URL=$DB_URL
check() { # <label> <dsn> <real pid: yes|no>
  /usr/bin/python3 - "$2" "$3" <<'PY' || fail "$1: what the client sees differs from direct"
import sys
import select
import psycopg

dsn, real_pid = sys.argv[1], sys.argv[2] == "yes"
with psycopg.connect(dsn, autocommit=True) as me, psycopg.connect(dsn, autocommit=True) as other:
    seen = {}
    told = []  # the proxy's own notices: what differs from direct, said once when met
    # Read inside the handler: the notice's fields are gone once it returns.
    me.add_notice_handler(lambda d: told.append(d.message_primary) if d.message_primary.startswith("pgcutover-proxy:") else None)
    me.add_notify_handler(lambda n: seen.__setitem__(n.payload, n.pid))
    me.execute("LISTEN pgcutover_pid_test")
    me.execute("LISTEN pgcutover_pid_test_2")
    names = me.execute("SELECT name FROM pg_prepared_statements").fetchall()
    me.execute("SELECT count(*) FROM pg_catalog.pg_prepared_statements")
    if real_pid:  # direct and session mode: nothing differs, nothing said
        assert told == [], told
    else:  # transaction mode: each said once, the first time it is met
        assert len(told) == 2, told
        assert "notifications from other clients carry their server connection's pid" in told[0], told
        assert "pg_prepared_statements lists the pooled server connection's statements" in told[1], told
    told.clear()
    me.execute("NOTIFY pgcutover_pid_test, 'mine'")
    other.execute("NOTIFY pgcutover_pid_test, 'theirs'")
    for _ in range(200):  # bounded: each query lets the notifications that arrived through
        if len(seen) == 2:
            break
        me.execute("SELECT pg_sleep(0.02)")
    assert set(seen) == {"mine", "theirs"}, seen
    assert seen["mine"] == me.info.backend_pid, (seen, me.info.backend_pid)
    assert seen["theirs"] != me.info.backend_pid, (seen, me.info.backend_pid)
    assert told == [], told  # not again
# A database the server does not have: refused at login as direct (libpq's asynchronous
# connect, polled as psycopg's own test does, ends FAILED; never connected to another one).
bad = psycopg.conninfo.make_conninfo(dsn, dbname="pgcutover_no_such_db")
try:
    psycopg.connect(bad).close()
    raise AssertionError("connected to a database that does not exist")
except psycopg.OperationalError as e:
    assert 'database "pgcutover_no_such_db" does not exist' in str(e), e
pgconn = psycopg.pq.PGconn.connect_start(bad.encode())
for _ in range(1000):  # bounded: each step waits for the socket
    status = pgconn.connect_poll()
    if status == psycopg.pq.PollingStatus.FAILED:
        break
    assert status in (psycopg.pq.PollingStatus.READING, psycopg.pq.PollingStatus.WRITING), status

    r, w = ([pgconn.socket], []) if status == psycopg.pq.PollingStatus.READING else ([], [pgconn.socket])
    select.select(r, w, [], 5)
assert status == psycopg.pq.PollingStatus.FAILED and pgconn.status == psycopg.pq.ConnStatus.BAD
pgconn.finish()
for asked, reported in (("utf-8", "UTF8"), ("euc-jp", "EUC_JP"), ("Unicode", "UTF8")):
    with psycopg.connect(dsn, autocommit=True, client_encoding=asked) as c:
        got = c.info.parameter_status("client_encoding")
        assert got == reported, (asked, got)
        assert c.execute("SELECT %s::text", ["日本語"]).fetchone()[0] == "日本語", asked
if real_pid:
    c = psycopg.connect(dsn, autocommit=True)
    assert c.execute("SELECT pg_backend_pid()").fetchone()[0] == c.info.backend_pid
    try:
        c.execute("SELECT pg_terminate_backend(%s)", [c.info.backend_pid])
        raise AssertionError("terminating the reported pid did not end the session")
    except psycopg.OperationalError as e:
        assert "terminating connection due to administrator command" in str(e), e
    assert c.closed and c.broken, (c.closed, c.broken)
else:
    # The pid is the proxy's: no SQL function can signal it, and the server's warning says
    # why instead of reading as "that session had already ended".
    with psycopg.connect(dsn, autocommit=True) as c:
        notices = []
        # Read inside the handler: the notice's fields are gone once it returns.
        c.add_notice_handler(lambda d: notices.append((d.message_primary, d.message_hint or "")))
        assert c.execute("SELECT pg_terminate_backend(%s)", [c.info.backend_pid]).fetchone()[0] is False
        assert c.execute("SELECT 1").fetchone()[0] == 1  # still connected
        assert any("is the pid the proxy gave a client session" in h for _, h in notices), notices
print("ok")
PY
}
check direct "$DB_URL" yes
pass "direct: own notification carries the session's pid; an unknown database refused at login (also async); client_encoding reported as UTF8 / EUC_JP; terminating the reported pid ends the session"
for mode in session transaction; do
  proxy_write_config "$PROXY_DIR/$mode.toml" "$mode" 4 disable
  proxy_start "$PROXY_DIR/$mode.toml"
  check "$mode mode" "$(proxy_dsn disable)" "$([ "$mode" = session ] && echo yes || echo no)"
  pass "$mode mode: own notification carries the pid the proxy gave the client, another's does not; an unknown database refused at login as direct; client_encoding reported as the server spells it$([ "$mode" = session ] && echo "; the pid is the server's: pg_backend_pid() agrees, terminating it ends the session as direct" || echo "; terminating the proxy's pid warns with a hint saying what it is")"
  proxy_stop
done

# One shard and one server connection, so the two clients below take turns on it.
PROXY_THREADS=1 proxy_write_config "$PROXY_DIR/shared.toml" transaction 1 disable
proxy_start "$PROXY_DIR/shared.toml"
/usr/bin/python3 - "$(proxy_dsn disable)" <<'PY' || fail "transaction mode: one client's session settings reached another"
import sys
import psycopg

dsn = sys.argv[1]
SHOW = "SELECT current_setting('default_transaction_read_only'), current_setting('search_path'), current_setting('statement_timeout')"
with psycopg.connect(dsn, autocommit=True) as c:
    defaults = c.execute(SHOW).fetchone()
reader = psycopg.connect(dsn, autocommit=True, options="-c default_transaction_read_only=on")
other = psycopg.connect(dsn, autocommit=True)
mine = reader.execute(SHOW).fetchone()
assert mine[0] == "on", mine
reader.execute("SET search_path = pg_catalog")
reader.execute("SET statement_timeout = '7s'")
mine = reader.execute(SHOW).fetchone()
# The other client, on the same server connection, sees the defaults and can write.
assert other.execute(SHOW).fetchone() == defaults, (other.execute(SHOW).fetchone(), defaults)
other.execute("CREATE TABLE IF NOT EXISTS fidelity_leak (x int)")
other.execute("DROP TABLE fidelity_leak")
# And the first keeps its own settings across the other's transactions.
assert reader.execute(SHOW).fetchone() == mine, (reader.execute(SHOW).fetchone(), mine)
try:
    reader.execute("CREATE TABLE fidelity_leak (x int)")
    raise AssertionError("the read-only client could write")
except psycopg.errors.ReadOnlySqlTransaction:
    pass
# A SET of the read-only default ends with its client.
with psycopg.connect(dsn, autocommit=True) as c:
    c.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    assert c.execute(SHOW).fetchone()[0] == "on"
reader.close()
with psycopg.connect(dsn, autocommit=True) as c:
    assert c.execute(SHOW).fetchone() == defaults, (c.execute(SHOW).fetchone(), defaults)
    c.execute("CREATE TABLE fidelity_leak (x int)")
    c.execute("DROP TABLE fidelity_leak")
other.close()
# Startup settings as JDBC sends them: one the server reports in its own form ("ISO" comes back
# "ISO, MDY") before one it never reports, alone on their settings (the proxy's copy of them
# is replaced while the sync runs).
for _ in range(3):
    with psycopg.connect(dsn, autocommit=True, options="-c DateStyle=ISO -c extra_float_digits=3") as c:
        got = c.execute("SELECT current_setting('DateStyle'), current_setting('extra_float_digits')").fetchone()
        assert got == ("ISO, MDY", "3"), got
print("ok")
PY
pass "transaction mode: a client's read-only default, search_path and statement_timeout stay its own (the next client on the same server connection sees the defaults and can write)"
proxy_stop

# Session mode, one server connection: a client logging in while another holds it is given
# the proxy's pid, and its first statement (once the first client leaves) says which server
# process serves it; a client that found the pool free is told nothing.
PROXY_THREADS=1 proxy_write_config "$PROXY_DIR/busy.toml" session 1 disable
proxy_start "$PROXY_DIR/busy.toml"
/usr/bin/python3 - "$(proxy_dsn disable)" <<'PY' || fail "session mode, busy pool at login: the client was not told its server's pid"
import sys
import threading
import psycopg

dsn = sys.argv[1]
def proxy_notices(conn, into):
    conn.add_notice_handler(lambda d: into.append((d.severity, d.message_primary)) if d.message_primary.startswith("pgcutover-proxy:") else None)

first_told = []
first = psycopg.connect(dsn, autocommit=True)
proxy_notices(first, first_told)
assert first.execute("SELECT pg_backend_pid()").fetchone()[0] == first.info.backend_pid
late = psycopg.connect(dsn, autocommit=True)  # the pool's one connection is first's
late_told = []
proxy_notices(late, late_told)
done = threading.Event()
result = {}
def query():
    result["pid"] = late.execute("SELECT pg_backend_pid()").fetchone()[0]
    done.set()
t = threading.Thread(target=query)
t.start()
first.close()  # frees the server connection for the late client
assert done.wait(20), "the late client's query never ran"
t.join()
assert result["pid"] != late.info.backend_pid, (result, late.info.backend_pid)
assert len(late_told) == 1, late_told
severity, message = late_told[0]
assert severity == "NOTICE", late_told
assert f"server process is pid {result['pid']}, not pid {late.info.backend_pid} given at login" in message, late_told
late.execute("SELECT 1")
assert len(late_told) == 1, late_told  # once
assert first_told == [], first_told
late.close()
print("ok")
PY
pass "session mode, pool busy at login: the client given the proxy's pid is told its server's pid once (NOTICE), a client that found the pool free nothing"
proxy_stop
