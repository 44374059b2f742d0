"""Session state through pgcutover-proxy (issues 4 and 5), with psycopg 3 against real servers.

A Heroku-shaped source and an RDS-shaped target (both TLS + SCRAM), a real proxy binary with
one shard. Proves:
  - transaction mode, pool of 2: LISTEN, a session advisory lock, a temp table, a WITH HOLD
    cursor, SQL PREPARE and SET ROLE each pin their client to its server connection (same backend pid
    for every transaction while another client keeps working on the other connection, the
    state invisible to that client), pgcutover_pinned_sessions in /metrics and
    pinned_sessions in /v1/status go to 1 and back to 0 when the state is released; a SET
    outside a transaction pins nothing but follows the client to the other connection and
    never reaches the other client;
  - session mode flip: a session with settings, a protocol-level prepared statement and an SQL
    PREPARE moves to the target and keeps all three; sessions holding LISTEN / a temp table /
    an advisory lock are named in /v1/status and in the pause answer before any flip, refuse
    the flip under unmovable_policy = "block" (409, resumed on the source) and are ended with
    FATAL 57P01 naming the state under "terminate" while the movable one continues;
  - prewarm: /v1/prewarm opens real authenticated connections to the target (seen in its
    pg_stat_activity before the flip), the flip hands them to the pools (the held clients run
    on backends started before the flip), unused ones close after prewarm_ttl; the held
    clients' wait is measured with and without prewarm in the same run;
  - read-only mode: a write gets SQLSTATE 25006 with a message naming the migration, reads work.
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import psycopg
import psycopg.conninfo
from psycopg import errors

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from proxy_testlib import PGCLUSTER, PROXY_BIN, fail, ok, pgcluster, port_accepting, wait_until  # noqa: E402

PASSWORD = "proxy-pw-" + secrets.token_hex(4)
TOKEN = "admin-" + secrets.token_hex(8)


def free_port():
    return int(subprocess.run(["bash", PGCLUSTER, "free-port"], check=True, capture_output=True,
                              text=True).stdout.strip())


class Proxy:
    def __init__(self, workdir, source, target):
        self.dir = workdir
        self.source, self.target = source, target
        self.port = free_port()
        self.admin_port = free_port()
        self.proc = None
        self.log = os.path.join(workdir, "proxy.log")
        subprocess.run(["bash", PGCLUSTER, "tls", "--dir", os.path.join(workdir, "tls"), "--label", "proxy"],
                       check=True, capture_output=True)

    def start(self, mode, pool_size, cutover=""):
        state = os.path.join(self.dir, "state.json")
        if os.path.exists(state):
            os.remove(state)  # every phase starts on the source
        cfg = os.path.join(self.dir, "proxy.toml")
        with open(cfg, "w") as f:
            f.write(f"""
[proxy]
listen_port = {self.port}
threads = 1
pool_mode = "{mode}"
default_pool_size = {pool_size}
query_wait_timeout = 20
state_file = "{state}"
[proxy.tls]
client_tls = "allow"
cert_file = "{self.dir}/tls/server.crt"
key_file = "{self.dir}/tls/server.key"
[users.app]
password = "{PASSWORD}"
[backends.source]
url = "{self.source['url']}"
[backends.target]
url = "{self.target['url']}"
[admin]
listen_port = {self.admin_port}
token = "{TOKEN}"
[cutover]
initial_backend = "source"
drain_timeout = 5
max_pause = 20
{cutover}
""")
        self.proc = subprocess.Popen([PROXY_BIN, "-c", cfg], stdout=open(self.log, "a"),
                                     stderr=subprocess.STDOUT)
        wait_until(15, lambda: port_accepting(self.port) and port_accepting(self.admin_port),
                   "the proxy and its admin API to accept")

    def stop(self):
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                fail("proxy did not exit after SIGTERM")
        # A sanitizer report (ASan run of tests/run.sh) ends the proxy with a non-zero status.
        if proc.returncode != 0:
            fail(f"proxy exited with status {proc.returncode}; see {self.log}")

    def connect(self, **kw):
        return psycopg.connect(host="127.0.0.1", port=self.port, user="app", dbname="app",
                               password=PASSWORD, sslmode="require", autocommit=True,
                               connect_timeout=10, **kw)

    def admin(self, method, path, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": "Bearer " + TOKEN,
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def pinned(self):
        code, status = self.admin("GET", "/v1/status")
        if code != 200:
            fail(f"status: HTTP {code}")
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}/metrics",
                                     headers={"Authorization": "Bearer " + TOKEN})
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read().decode()
        metric = [line for line in text.splitlines() if line.startswith("pgcutover_pinned_sessions ")]
        if len(metric) != 1:
            fail("pgcutover_pinned_sessions missing from /metrics")
        return status["pinned_sessions"], int(float(metric[0].split()[1]))

    def expect_pinned(self, n, what):
        wait_until(5, lambda: self.pinned() == (n, n), f"pinned_sessions == {n} ({what})")


def one(conn, sql, params=None):
    return conn.execute(sql, params).fetchone()[0]


# ---------------------------------------------------------------- transaction mode pinning

def check_pin(proxy, other, kind, create, use, release):
    """`create` pins the client to one server connection; `use` keeps working on it while
    `other` works on the second connection; `release` unpins."""
    c = proxy.connect()
    try:
        proxy.expect_pinned(0, kind + " before")
        for sql in create:
            c.execute(sql)
        proxy.expect_pinned(1, kind + " created")
        pid = one(c, "SELECT pg_backend_pid()")
        for _ in range(5):
            # The other client holds a transaction on the other connection meanwhile: with a
            # pool of 2 a pinned client would otherwise be handed whichever is free.
            with other.transaction():
                other_pid = one(other, "SELECT pg_backend_pid()")
                if other_pid == pid:
                    fail(f"{kind}: another client got the pinned server connection")
                use(c, other)
            if one(c, "SELECT pg_backend_pid()") != pid:
                fail(f"{kind}: pinned client moved to another server connection")
        for sql in release:
            c.execute(sql)
        proxy.expect_pinned(0, kind + " released")
        ok(f"transaction mode: {kind} pins its client (metric and status 1 -> 0)")
    finally:
        c.close()


def run_transaction_mode(proxy):
    proxy.start("transaction", 2)
    other = proxy.connect()

    def listen_use(c, o):
        o.execute("NOTIFY pin_ch, 'hello'")
        if one(o, "SELECT count(*) FROM pg_listening_channels()") != 0:
            fail("LISTEN leaked to another client's server connection")
    check_pin(proxy, other, "LISTEN", ["LISTEN pin_ch"], listen_use, ["UNLISTEN *"])

    def lock_use(c, o):
        if one(o, "SELECT pg_try_advisory_lock(4242)"):
            fail("advisory lock: another client could take the pinned client's lock")
    check_pin(proxy, other, "advisory lock", ["SELECT pg_advisory_lock(4242)"], lock_use,
              ["SELECT pg_advisory_unlock(4242)"])

    def temp_use(c, o):
        c.execute("INSERT INTO pin_tmp VALUES (1)")
        if one(o, "SELECT count(*) FROM pg_class WHERE relname = 'pin_tmp'"
                  " AND relnamespace = pg_my_temp_schema()") != 0:
            fail("temp table visible on another client's server connection")
    check_pin(proxy, other, "temp table", ["/* x */ CREATE TEMP TABLE pin_tmp (a int)"], temp_use,
              ["DROP TABLE pin_tmp"])

    def cursor_use(c, o):
        if one(c, "FETCH 1 FROM pin_cur") is None:
            fail("WITH HOLD cursor lost")
    check_pin(proxy, other, "WITH HOLD cursor",
              ["DECLARE pin_cur CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 100) g"],
              cursor_use, ["CLOSE pin_cur"])

    def prepare_use(c, o):
        if one(c, "EXECUTE pin_p(2)") != 42:
            fail("SQL prepared statement lost")
        try:
            o.execute("EXECUTE pin_p(2)")
            fail("SQL PREPARE visible to another client")
        except errors.InvalidSqlStatementName:
            pass
    check_pin(proxy, other, "SQL PREPARE", ["PREPARE pin_p(int) AS SELECT 40 + $1"], prepare_use,
              ["DEALLOCATE pin_p"])

    # SET ROLE: another client must never run with this client's privileges.
    app_user = psycopg.conninfo.conninfo_to_dict(proxy.source["url"])["user"]
    with psycopg.connect(proxy.source["admin_url"], autocommit=True) as a:
        a.execute("DROP ROLE IF EXISTS pin_helper")
        a.execute("CREATE ROLE pin_helper")
        a.execute(f'GRANT pin_helper TO "{app_user}"')

    def role_use(c, o):
        if one(c, "SELECT current_user") != "pin_helper":
            fail("SET ROLE lost")
        if one(o, "SELECT current_user") != app_user:
            fail("SET ROLE leaked to another client")
    check_pin(proxy, other, "SET ROLE", ["SET ROLE pin_helper"], role_use, ["RESET ROLE"])

    # SET outside a transaction: no pin, replayed on whichever connection the client gets.
    c = proxy.connect()
    c.execute("SET statement_timeout = '1234ms'")
    pids = set()
    for i in range(6):
        with other.transaction():
            one(other, "SELECT 1")
            pids.add(one(c, "SELECT pg_backend_pid()"))
            if one(c, "SHOW statement_timeout") != "1234ms":
                fail("SET statement_timeout did not follow the client")
            if one(other, "SHOW statement_timeout") != "0":
                fail("SET statement_timeout leaked to another client")
        pids.add(one(c, "SELECT pg_backend_pid()"))
    if proxy.pinned() != (0, 0):
        fail("a plain SET pinned the client")
    if len(pids) < 2:
        fail("the SET client never changed server connection: the replay was not exercised")
    c.execute("RESET statement_timeout")
    with other.transaction():
        one(other, "SELECT 1")
        if one(c, "SHOW statement_timeout") != "0":
            fail("RESET statement_timeout did not follow the client")
    ok(f"transaction mode: SET replayed on {len(pids)} server connections, no pin, never shared")
    c.close()

    # A pinned client ending its session releases the pin (and its server connection, cleaned).
    c = proxy.connect()
    c.execute("LISTEN bye")
    proxy.expect_pinned(1, "LISTEN before disconnect")
    c.close()
    proxy.expect_pinned(0, "after disconnect")
    if one(other, "SELECT count(*) FROM pg_listening_channels()") != 0:
        fail("a disconnected pinned client's LISTEN survived on the pooled connection")
    ok("transaction mode: a pinned client's disconnect unpins and cleans its connection")

    # Read-only mode: writes get 25006 with a message naming the migration; reads work.
    other.execute("CREATE TABLE IF NOT EXISTS ro_check (a int)")
    code, _ = proxy.admin("POST", "/v1/readonly", {"enabled": True})
    if code != 200:
        fail(f"readonly on: HTTP {code}")
    w = proxy.connect()
    try:
        w.execute("INSERT INTO ro_check VALUES (1)")
        fail("a write succeeded in read-only mode")
    except errors.ReadOnlySqlTransaction as e:
        msg = e.diag.message_primary or ""
        if "migration" not in msg or e.sqlstate != "25006":
            fail(f"read-only error does not name the migration: {e.sqlstate} {msg!r}")
        if "INSERT" not in (e.diag.message_detail or ""):
            fail(f"read-only error lost the server's text: {e.diag.message_detail!r}")
    if one(w, "SELECT count(*) FROM ro_check") is None:
        fail("read in read-only mode")
    proxy.admin("POST", "/v1/readonly", {"enabled": False})
    w.execute("INSERT INTO ro_check VALUES (1)")
    w.close()
    ok("read-only mode: 25006 says a migration is in progress; reads work; writes again after")
    other.close()
    proxy.stop()


# ---------------------------------------------------------------- session mode flip

# The proxy's own notices per connection (read inside the handler: the fields are gone after).
PROXY_NOTICES = {}


def proxy_notices(conn):
    told = PROXY_NOTICES.setdefault(id(conn), [])
    conn.add_notice_handler(
        lambda d: told.append(d.message_primary)
        if d.message_primary.startswith("pgcutover-proxy:") else None)
    return told


def open_sessions(proxy):
    mover = proxy.connect()
    proxy_notices(mover)
    mover.execute("SET statement_timeout = '4321ms'")
    mover.execute("SET application_name = 'mover'")
    mover.execute("PREPARE sq AS SELECT inet_server_port()")
    q = "SELECT %s::int + 1"
    if mover.execute(q, (1,), prepare=True).fetchone()[0] != 2:
        fail("prepared statement on the source")
    listener = proxy.connect()
    listener.execute("LISTEN moving")
    temp = proxy.connect()
    temp.execute("CREATE TEMP TABLE keep_me (a int)")
    locker = proxy.connect()
    locker.execute("SELECT pg_advisory_lock(7)")
    return mover, [listener, temp, locker]


def check_moved(mover, target_port):
    told = PROXY_NOTICES[id(mover)]
    if told:
        fail(f"the proxy said something before the move: {told}")
    if one(mover, "SELECT inet_server_port()") != target_port:
        fail("the movable session did not move to the target")
    # The server a flip moved the session to has a pid of its own: said once, with it.
    server_pid = one(mover, "SELECT pg_backend_pid()")
    if len(told) != 1 or f"server process is pid {server_pid}, not pid {mover.info.backend_pid}" not in told[0]:
        fail(f"the moved session was not told its new server's pid {server_pid}: {told}")
    if one(mover, "EXECUTE sq") != target_port:
        fail("SQL PREPARE not replayed on the target")
    if mover.execute("SELECT %s::int + 1", (41,), prepare=True).fetchone()[0] != 42:
        fail("protocol-level prepared statement not usable on the target")
    if one(mover, "SHOW statement_timeout") != "4321ms":
        fail("SET statement_timeout not replayed on the target")
    if one(mover, "SHOW application_name") != "mover":
        fail("application_name not replayed on the target")
    if len(told) != 1:
        fail(f"the new server's pid was said more than once: {told}")


def run_session_mode(proxy):
    target_port = int(proxy.target["port"])
    source_port = int(proxy.source["port"])

    # unmovable_policy = block: reported before the flip, the flip is refused.
    proxy.start("session", 8, 'unmovable_policy = "block"\nprewarm = false')
    mover, unmovable = open_sessions(proxy)

    def reported():
        status = proxy.admin("GET", "/v1/status")[1]
        return sorted(s["reason"] for s in status["unmovable_sessions"])
    # The proxy asks the server right after each flagged statement's answer: bounded wait.
    wait_until(5, lambda: reported() == ["LISTEN", "advisory lock", "temp table"],
               "status to list the three unmovable sessions")
    code, status = proxy.admin("GET", "/v1/status")
    if status["pinned_sessions"] != 3:
        fail(f"status pinned_sessions {status['pinned_sessions']}, want 3")
    code, body = proxy.admin("POST", "/v1/pause", {})
    if code != 200 or len(body["unmovable_sessions"]) != 3:
        fail(f"pause answer does not report the unmovable sessions: {code} {body}")
    proxy.admin("POST", "/v1/resume", {})
    code, body = proxy.admin("POST", "/v1/flip", {"backend": "target", "epoch": 0})
    if code != 409 or body["result"] != "unmovable_sessions" or len(body["unmovable_sessions"]) != 3:
        fail(f"flip with unmovable sessions under block: {code} {body}")
    if one(mover, "SELECT inet_server_port()") != source_port:
        fail("after a refused flip the session is not on the source")
    for c in unmovable:
        one(c, "SELECT 1")
    ok("session mode, unmovable_policy=block: LISTEN/temp table/advisory lock reported in status "
       "and pause, flip refused (409), everyone still on the source")
    for c in [mover, *unmovable]:
        c.close()
    proxy.stop()

    # unmovable_policy = terminate: the flip goes ahead, the unmovable ones get 57P01.
    proxy.start("session", 8, 'unmovable_policy = "terminate"\nprewarm = false')
    mover, unmovable = open_sessions(proxy)
    wait_until(5, lambda: len(proxy.admin("GET", "/v1/status")[1]["unmovable_sessions"]) == 3,
               "the three unmovable sessions to be known")
    code, body = proxy.admin("POST", "/v1/flip", {"backend": "target", "epoch": 0})
    if code != 200 or len(body["unmovable_sessions"]) != 3:
        fail(f"flip under terminate: {code} {body}")
    check_moved(mover, target_port)
    for c in unmovable:
        try:
            c.execute("SELECT 1")
            fail("an unmovable session kept running after the flip")
        except psycopg.OperationalError as e:
            text = str(e)
            if "57P01" not in (getattr(e, "sqlstate", None) or "") and "cannot move" not in text:
                fail(f"unmovable session ended without the 57P01 message: {text!r}")
            if not any(k in text for k in ("LISTEN", "temp table", "advisory lock")):
                fail(f"57P01 does not name the state: {text!r}")
    ok("session mode, unmovable_policy=terminate: flip done, LISTEN/temp/lock sessions got FATAL "
       "57P01 naming their state; the movable session runs on the target with its SETs, "
       "application_name, protocol and SQL prepared statements")
    mover.close()
    proxy.stop()

    # The controller's fence ends every session of the app role on the source while the proxy
    # is paused: the session's state was recorded when the drain ended, so it still moves.
    proxy.start("session", 8, 'unmovable_policy = "block"\nprewarm = false')
    mover, unmovable = open_sessions(proxy)
    for c in unmovable:
        c.close()
    code, body = proxy.admin("POST", "/v1/pause", {})
    if code != 200:
        fail(f"pause: {code} {body}")
    app_user = psycopg.conninfo.conninfo_to_dict(proxy.source["url"])["user"]
    with psycopg.connect(proxy.source["admin_url"], autocommit=True) as a:
        killed = a.execute("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                           " FROM pg_stat_activity WHERE usename = %s"
                           " AND backend_type = 'client backend'", (app_user,)).fetchone()[0]
        if killed < 1:
            fail("the fence ended no session on the source")
        wait_until(5, lambda: a.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s"
                                        " AND backend_type = 'client backend'",
                                        (app_user,)).fetchone()[0] == 0, "fenced sessions to exit")
    code, body = proxy.admin("POST", "/v1/flip", {"backend": "target", "epoch": 0})
    if code != 200:
        fail(f"flip after the fence: {code} {body}")
    check_moved(mover, target_port)
    ok("session mode: the source's sessions ended by a fence during the pause; the session still "
       "moved with its settings and prepared statements (state recorded when the drain ended)")
    mover.close()
    proxy.stop()


# ---------------------------------------------------------------- prewarm

def target_backends(admin_conn):
    return admin_conn.execute(
        "SELECT pid, backend_start FROM pg_stat_activity WHERE datname = 'app'"
        " AND backend_type = 'client backend' AND pid <> pg_backend_pid()").fetchall()


def held_flip(proxy, backend, epoch, clients):
    """Pauses, starts one query per client (held), flips; returns (flip HTTP answer, the
    longest time from the flip request to a held client's answer, in ms)."""
    code, body = proxy.admin("POST", "/v1/pause", {})
    if code != 200:
        fail(f"pause: {code} {body}")
    done = []

    def run(c):
        one(c, "SELECT inet_server_port()")
        done.append(time.monotonic())
    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    wait_until(5, lambda: proxy.admin("GET", "/v1/status")[1]["held_clients"] == len(clients),
               "every client to be held")
    start = time.monotonic()
    code, body = proxy.admin("POST", "/v1/flip", {"backend": backend, "epoch": epoch})
    for t in threads:
        t.join(20)
    if code != 200 or len(done) != len(clients):
        fail(f"flip to {backend}: {code} {body}, {len(done)} of {len(clients)} answered")
    return body, (max(done) - start) * 1000


def run_prewarm(proxy, target_admin):
    n = 8
    proxy.start("transaction", n, "prewarm = false\nprewarm_ttl = 2")
    clients = [proxy.connect() for _ in range(n)]
    # Open every pool connection on the source: n clients in transactions at once.
    barrier = threading.Barrier(n)

    def busy(c):
        with c.transaction():
            barrier.wait(10)
            one(c, "SELECT 1")
    ts = [threading.Thread(target=busy, args=(c,)) for c in clients]
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)

    # TTL: a prewarm with no flip closes its connections.
    before = len(target_backends(target_admin))
    code, body = proxy.admin("POST", "/v1/prewarm", {"backend": "target"})
    if code != 200:
        fail(f"prewarm: {code} {body}")
    warm = len(target_backends(target_admin)) - before
    if warm != n:
        fail(f"prewarm opened {warm} connections on the target, want {n}")
    wait_until(10, lambda: len(target_backends(target_admin)) == before, "warm connections to expire")
    ok(f"prewarm: {n} authenticated connections on the target, closed after prewarm_ttl without a flip")

    # A transaction-mode client pinned by SQL PREPARE moves with the flip, its statement
    # replayed on the target (and stays pinned there).
    pinned = proxy.connect()
    pinned.execute("PREPARE tp AS SELECT inet_server_port()")
    proxy.expect_pinned(1, "SQL PREPARE before the flip")

    # Same run: flip without prewarm, back, then with prewarm; the held clients' wait each time.
    _, cold = held_flip(proxy, "target", 0, clients)
    if one(pinned, "EXECUTE tp") != int(proxy.target["port"]):
        fail("pinned transaction-mode client did not move to the target with its PREPARE")
    proxy.expect_pinned(1, "SQL PREPARE after the flip")
    pinned.close()
    ok("transaction mode: a client pinned by SQL PREPARE moved to the target with its statement")
    held_flip(proxy, "source", 1, clients)
    code, body = proxy.admin("POST", "/v1/prewarm", {"backend": "target"})
    if code != 200:
        fail(f"prewarm: {code} {body}")
    warm_set = {pid: start for pid, start in target_backends(target_admin)}
    flip_started = time.time()
    body, hot = held_flip(proxy, "target", 2, clients)
    after = {pid: start for pid, start in target_backends(target_admin)}
    new_logins = [pid for pid, start in after.items() if start.timestamp() >= flip_started]
    if new_logins:
        fail(f"held clients needed {len(new_logins)} new connections after a prewarm")
    if not set(after) <= set(warm_set):
        fail("target connections after the flip are not the prewarmed ones")
    ok(f"prewarm: the flip handed the warm connections to the pool (no login after the flip); "
       f"{n} held clients answered {cold:.1f} ms after the flip request without prewarm, "
       f"{hot:.1f} ms with prewarm (target over TLS verify-full + SCRAM)")
    print(f"measure: held_wait_ms cold={cold:.1f} prewarmed={hot:.1f} clients={n}")
    for c in clients:
        c.close()
    proxy.stop()


def main():
    workdir = tempfile.mkdtemp(prefix="pgcutover-session-state.")
    src = pgcluster("start", "--shape", "heroku", "--owner-pid", str(os.getpid()))
    tgt = pgcluster("start", "--shape", "rds", "--owner-pid", str(os.getpid()))
    proxy = Proxy(workdir, src, tgt)
    target_admin = psycopg.connect(tgt["admin_url"], autocommit=True)
    try:
        run_transaction_mode(proxy)
        run_session_mode(proxy)
        run_prewarm(proxy, target_admin)
        print("all session-state checks passed")
        proxy.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    except BaseException:
        import traceback
        traceback.print_exc()
        print("---- proxy log (tail) ----", file=sys.stderr)
        try:
            with open(proxy.log) as f:
                sys.stderr.write("".join(f.readlines()[-60:]))
        except OSError:
            pass
        raise
    finally:
        proxy.stop()
        target_admin.close()
        for c in (src, tgt):
            subprocess.run(["bash", PGCLUSTER, "stop", "--dir", c["dir"]], capture_output=True)


if __name__ == "__main__":
    main()
