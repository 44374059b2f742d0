"""Shared by the fault-injection and ledger tests (imported, not a test itself).

- Cluster: a PostgreSQL server from tests/lib/pgcluster.sh that a test can kill -9 and start
  again on the same port and data directory (crash recovery, as after a real crash).
- Proxy: the real pgcutover-proxy binary with two backends, its admin API, SIGKILL and restart.
- Relay: a TCP relay placed between the proxy and a backend that can be frozen (the network
  stalls: nothing moves either way, sockets stay open) or made to refuse TLS (answers 'N' to
  every SSLRequest, like a server without TLS or a middlebox stripping it).
- Ledger: client threads that insert rows through the proxy and record every insert whose
  COMMIT was acknowledged; check() proves each acknowledged row is present exactly once.
"""
import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import psycopg

from proxy_testlib import PGCLUSTER, PROXY_BIN, fail, port_accepting, wait_until

PG_BIN = "/usr/lib/postgresql/15/bin"
PG_USER = os.environ.get("PGCUTOVER_PG_USER", "pgcutover")


def free_port():
    return int(subprocess.run(["bash", PGCLUSTER, "free-port"], check=True, capture_output=True,
                              text=True).stdout.strip())


class Cluster:
    def __init__(self, name, shape, *extra):
        out = subprocess.run(["bash", PGCLUSTER, "start", "--name", name, "--shape", shape,
                              "--owner-pid", str(os.getpid()), *extra],
                             check=True, capture_output=True, text=True).stdout
        self.env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        self.name = name
        self.dir = self.env["dir"]
        self.port = int(self.env["port"])
        self.url = self.env["url"]
        self.admin_url = self.env["admin_url"]

    def admin(self, sql, params=None):
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as c:
            cur = c.execute(sql, params)
            return cur.fetchall() if cur.description else None

    def kill9(self):
        """The postmaster and every backend die at once, as in a machine or process crash."""
        with open(os.path.join(self.dir, "data/postmaster.pid")) as f:
            pid = int(f.readline())
        children = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                            children.append(int(entry))
                except (OSError, ValueError, IndexError):
                    pass
        for p in [pid] + children:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(20, lambda: not port_accepting(self.port), f"{self.name} to stop accepting")
        # The killed postmaster may stay a zombie for a while (its parent is not ours to reap),
        # and PostgreSQL reads a live pid in postmaster.pid as "another server is running":
        # the pid file of a server we know is dead is removed, as an operator would.
        os.unlink(os.path.join(self.dir, "data/postmaster.pid"))
        lock = os.path.join(self.dir, f"sock/.s.PGSQL.{self.port}.lock")
        if os.path.exists(lock):
            os.unlink(lock)

    def restart(self):
        """Starts the killed server again: crash recovery replays the WAL."""
        cmd = [f"{PG_BIN}/pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/postgres.log",
               "-w", "-t", "60", "start"]
        if os.getuid() == 0:
            cmd = ["runuser", "-u", PG_USER, "--"] + cmd
        # A killed postmaster leaves its pid file: pg_ctl removes a stale one by itself.
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
        if r.returncode != 0:
            with open(f"{self.dir}/postgres.log", errors="replace") as f:
                tail = "".join(f.readlines()[-15:])
            fail(f"could not restart {self.name}: {r.stdout}{r.stderr}\n{tail}")
        wait_until(30, lambda: port_accepting(self.port), f"{self.name} to accept again")

    def stop(self):
        subprocess.run(["bash", PGCLUSTER, "stop", "--dir", self.dir], capture_output=True)


class Relay:
    """127.0.0.1:<port> -> 127.0.0.1:<upstream>, one thread per direction per connection."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.frozen = threading.Event()
        self.refuse_tls = False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, client):
        self.conns.append(client)
        if self.refuse_tls:
            # Read the SSLRequest and answer 'N' (no TLS), then close: the proxy must refuse to
            # continue in plaintext when its sslmode requires TLS.
            try:
                client.settimeout(5)
                client.recv(8)
                client.sendall(b"N")
                client.recv(1024)
            except OSError:
                pass
            client.close()
            return
        try:
            up = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
        except OSError:
            client.close()
            return
        up.settimeout(None)
        self.conns.append(up)
        for a, b in ((client, up), (up, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src, dst):
        try:
            while True:
                r, _, _ = select.select([src], [], [], 0.05)
                if self.frozen.is_set() or not r:
                    continue  # frozen: bytes stay in the kernel buffers, nothing moves
                data = src.recv(65536)
                if not data:
                    break
                while self.frozen.is_set():
                    time.sleep(0.01)
                dst.sendall(data)
        except (OSError, ValueError):  # ValueError: the other direction closed the socket
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closed = True
        self.frozen.clear()
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


class Proxy:
    def __init__(self, workdir, backends, password, token, extra=""):
        """backends: {"source": url, "target": url}; secrets reach the proxy by environment."""
        self.dir = workdir
        self.port = free_port()
        self.admin_port = free_port()
        self.password, self.token = password, token
        self.cfg = os.path.join(workdir, "proxy.toml")
        self.log = os.path.join(workdir, "proxy.log")
        self.state_file = os.path.join(workdir, "state.json")
        self.env = dict(os.environ, FT_PASSWORD=password, FT_TOKEN=token)
        lines = [f"""[proxy]
listen_addr = "127.0.0.1"
listen_port = {self.port}
threads = 2
pool_mode = "transaction"
default_pool_size = 8
max_client_conn = 500
query_wait_timeout = 20
server_connect_timeout = 3
client_login_timeout = 10
shutdown_timeout = 5
state_file = "{self.state_file}"
log_level = "info"
[proxy.tls]
client_tls = "disable"
[users.app]
password = "${{FT_PASSWORD}}"
[admin]
listen_addr = "127.0.0.1"
listen_port = {self.admin_port}
token = "${{FT_TOKEN}}"
"""]
        for name, url in backends.items():
            var = "FT_URL_" + name.upper()
            self.env[var] = url
            lines.append(f'[backends.{name}]\nurl = "${{{var}}}"\n')
        lines.append(extra)
        with open(self.cfg, "w") as f:
            f.write("\n".join(lines))
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([PROXY_BIN, "-c", self.cfg], stdout=open(self.log, "a"),
                                     stderr=subprocess.STDOUT, env=self.env)
        wait_until(15, lambda: port_accepting(self.port), "the proxy to accept")
        wait_until(15, lambda: self.call("GET", "/healthz")[0] == 200, "the admin API to answer")

    def kill9(self):
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def call(self, method, path, body=None, timeout=30):
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": "Bearer " + self.token})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw.strip().startswith(b"{") else {})
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, (json.loads(raw) if raw.strip().startswith(b"{") else {})
        except OSError as e:
            return 0, {"error": str(e)}

    def status(self):
        code, st = self.call("GET", "/v1/status")
        if code != 200:
            fail(f"GET /v1/status: {code} {st}")
        return st

    def dsn(self):
        return (f"host=127.0.0.1 port={self.port} user=app dbname=app password={self.password} "
                "sslmode=disable connect_timeout=5")

    def log_tail(self, n=40):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


LEDGER_DDL = "CREATE TABLE IF NOT EXISTS ledger (writer int NOT NULL, seq int NOT NULL, at timestamptz DEFAULT now())"


class Ledger:
    """Writers insert (writer, seq) through the proxy, one autocommit INSERT at a time. A row is
    acknowledged when the INSERT returned success; one that failed or whose answer was lost is
    'unknown' (it may or may not be there) and is never counted against the proxy. The table has
    no key on purpose: a duplicate would be visible instead of refused.

    Each writer waits `interval` seconds after an acknowledged insert (at most 100 a second
    each): flat out, four writers took more than a core for the whole test, and the test beside
    it in the suite waited. A flip or a fault still finds every writer's next INSERT in flight
    within 10 ms."""

    def __init__(self, dsn, writers=4, interval=0.01):
        self.dsn = dsn
        self.interval = interval
        self.acked = [[] for _ in range(writers)]
        self.errors = [0] * writers
        self.next_seq = [0] * writers
        self.where = {}  # (writer, seq) -> (server port, sent, acknowledged): for failure reports
        self.stop_ev = threading.Event()
        self.threads = []

    def start(self):
        """Starts (or, after stop(), restarts) the writers; sequences continue."""
        self.stop_ev.clear()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(len(self.acked))]
        for t in self.threads:
            t.start()

    def _run(self, w):
        conn = None
        while not self.stop_ev.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(self.dsn, autocommit=True)
                self.next_seq[w] += 1
                seq = self.next_seq[w]
                t_sent = time.time()
                port = conn.execute("INSERT INTO ledger (writer, seq) VALUES (%s, %s) "
                                    "RETURNING inet_server_port()", (w, seq)).fetchone()[0]
                self.acked[w].append(seq)
                self.where[(w, seq)] = (port, t_sent, time.time())
                self.stop_ev.wait(self.interval)
            except psycopg.Error:
                self.errors[w] += 1
                try:
                    if conn is not None:
                        conn.close()
                except psycopg.Error:
                    pass
                conn = None
                time.sleep(0.05)  # back off before reconnecting
        if conn is not None:
            conn.close()

    def count(self):
        return sum(len(a) for a in self.acked)

    def wait_stuck(self, seconds=10):
        """Waits until no write has been acknowledged for 0.3 s (the writers are blocked)."""
        last = [self.count(), time.monotonic()]

        def stuck():
            n = self.count()
            if n != last[0]:
                last[:] = [n, time.monotonic()]
            return time.monotonic() - last[1] >= 0.3
        wait_until(seconds, stuck, "the writers to block")

    def wait_for_more(self, n, seconds=30, what="ledger writes"):
        target = self.count() + n
        wait_until(seconds, lambda: self.count() >= target, f"{n} more {what}")

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(30)

    def check(self, conninfo, where):
        """Every acknowledged (writer, seq) is in `conninfo`'s ledger exactly once."""
        with psycopg.connect(conninfo, autocommit=True) as c:
            rows = c.execute("SELECT writer, seq, count(*) FROM ledger GROUP BY 1, 2").fetchall()
        present = {(w, s): n for w, s, n in rows}
        missing = [(w, s) for w in range(len(self.acked)) for s in self.acked[w]
                   if (w, s) not in present]
        dup = [(k, n) for k, n in present.items() if n > 1]
        if missing:
            fail(f"{len(missing)} acknowledged ledger rows missing on {where}, e.g. "
                 + ", ".join(f"{m} (ran on port {self.where[m][0]}, sent {self.where[m][1]:.3f}, "
                             f"acknowledged {self.where[m][2]:.3f})" for m in missing[:5]))
        if dup:
            fail(f"{len(dup)} ledger rows present more than once on {where}, e.g. {dup[:5]}")
        return self.count(), sum(self.errors)


def lsn_caught_up(publisher, slot, seconds=20):
    """Reads the publisher's WAL position once (a fixed point) and waits until the subscription's
    slot has confirmed it: everything committed before now is on the subscriber."""
    lsn = publisher.admin("SELECT pg_current_wal_lsn()")[0][0]
    wait_until(seconds, lambda: publisher.admin(
        "SELECT coalesce(bool_and(confirmed_flush_lsn >= %s::pg_lsn), false) FROM pg_replication_slots"
        " WHERE slot_name = %s", (lsn, slot))[0][0], f"slot {slot} to confirm {lsn}")
