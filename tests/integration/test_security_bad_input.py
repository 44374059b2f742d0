"""pgcutover-proxy under bad input and attack: malformed bytes, slow clients, floods, TLS, secrets.

Real Heroku-shaped PostgreSQL behind the real pgcutover-proxy binary (issue 8, "Bad input and
security"). Proves: malformed startup packets (length < 8, length > 10000 refused from the
4-byte header alone with no memory growth, protocol 2, no final terminator, a CancelRequest of
the wrong size) get FATAL 08P01 at once; a length that lies (longer than sent, then silence)
and a slowloris client (1 byte a second) are dropped at client_login_timeout; after login a
typed message with length < 4 and one over max_message_size get 08P01; a few hundred
connections of seeded random bytes never crash the proxy; a login and query written one byte
per TLS record work; a flood of connections never admits more than max_client_conn (the rest
get 53300 or are closed), RSS stays bounded and a real psql query works afterwards; a wrong
password and an unknown user get the same bytes (no user enumeration); the admin API answers
401 without or with a wrong token, 413 to an oversized body, 400 (or a close) to garbage and
keeps answering; with client_tls = "require" plaintext is refused, TLS 1.0/1.1 are refused by
the proxy, TLS 1.2/1.3 work; and after all that no password or token appears in the proxy log
(at debug level), /metrics or /v1/status.

The flood is PGCUTOVER_SEC_FLOOD_CONNS connections (default 20,000, as issue 8 asks; ~5-10 s
here, spread over processes of 9,000 sockets each so that no process needs more than ~10,000
descriptors) against max_client_conn
= PGCUTOVER_SEC_MAX_CLIENT_CONN (default 500). Three proxy starts: client_login_timeout 2 s
(bad input, slowloris, admin API), 60 s (the flood, so no admitted client leaves early and the
limit is checked exactly), and client_tls = "require" (TLS versions, then the secrets grep over
the whole log).
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import random
import secrets
import selectors
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from proxy_testlib import (PGCLUSTER, PROXY_BIN, TOP, fail, ok, pgcluster,  # noqa: E402
                           port_accepting, wait_until)

PASSWORD = "app-pw-" + secrets.token_hex(8)
ADMIN_TOKEN = "admin-token-" + secrets.token_hex(12)
FLOOD_CONNS = int(os.environ.get("PGCUTOVER_SEC_FLOOD_CONNS", "20000"))
MAX_CLIENT_CONN = int(os.environ.get("PGCUTOVER_SEC_MAX_CLIENT_CONN", "500"))
LOGIN_TIMEOUT = 2.0
MAX_MESSAGE = 8192
FLOOD_LOGIN_TIMEOUT = 60.0



def free_port():
    return int(subprocess.run(["bash", PGCLUSTER, "free-port"], check=True, capture_output=True, text=True).stdout.strip())


class Proxy:
    def __init__(self, workdir, source_url):
        self.dir = workdir
        self.source_url = source_url
        self.port = free_port()
        self.admin_port = free_port()
        self.proc = None
        self.log = os.path.join(workdir, "proxy.log")
        subprocess.run(["bash", PGCLUSTER, "tls", "--dir", os.path.join(workdir, "tls"), "--label", "proxy"],
                       check=True, capture_output=True)
        self.ca = os.path.join(workdir, "tls/ca.crt")

    def start(self, client_tls, login_timeout=LOGIN_TIMEOUT):
        cfg = os.path.join(self.dir, "proxy.toml")
        # Secrets come from the environment, as in production (the config file holds none).
        with open(cfg, "w") as f:
            f.write(f"""
[proxy]
listen_addr = "127.0.0.1"
listen_port = {self.port}
threads = 2
pool_mode = "transaction"
default_pool_size = 4
max_client_conn = {MAX_CLIENT_CONN}
client_login_timeout = {login_timeout}
max_message_size = {MAX_MESSAGE}
query_wait_timeout = 20
state_file = "{self.dir}/state.json"
log_level = "debug"
[proxy.tls]
client_tls = "{client_tls}"
cert_file = "{self.dir}/tls/server.crt"
key_file = "{self.dir}/tls/server.key"
[users.app]
password = "${{SEC_TEST_PASSWORD}}"
[backends.source]
url = "${{SEC_TEST_SOURCE_URL}}"
[admin]
listen_addr = "127.0.0.1"
listen_port = {self.admin_port}
token = "${{SEC_TEST_ADMIN_TOKEN}}"
""")
        env = dict(os.environ, SEC_TEST_PASSWORD=PASSWORD, SEC_TEST_SOURCE_URL=self.source_url,
                   SEC_TEST_ADMIN_TOKEN=ADMIN_TOKEN)
        self.proc = subprocess.Popen([PROXY_BIN, "-c", cfg], stdout=open(self.log, "a"), stderr=subprocess.STDOUT,
                                     env=env)

        wait_until(15, lambda: port_accepting(self.port), "the proxy to accept")
        wait_until(15, lambda: admin_http("GET", "/healthz", self)[0] == 200, "the admin API to answer")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                fail("proxy did not exit within 15 s of SIGTERM")
        self.proc = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        fail("no VmRSS in /proc status")

    def psql(self, query, sslmode="require"):
        env = dict(os.environ, PGPASSWORD=PASSWORD, PGSSLMODE=sslmode, PGCONNECT_TIMEOUT="10")
        r = subprocess.run(["psql", "-X", "-At", "-h", "127.0.0.1", "-p", str(self.port), "-U", "app", "-d", "app",
                            "-c", query], env=env, capture_output=True, text=True, timeout=30)
        return r.returncode, r.stdout.strip(), r.stderr.strip()

    def connect(self, timeout=10):
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)


def admin_http(method, path, proxy, token=None, body=None, timeout=5):
    req = urllib.request.Request(f"http://127.0.0.1:{proxy.admin_port}{path}", data=body, method=method)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, http.client.HTTPException) as e:  # closed without an answer
        return None, repr(e).encode()


# ---- raw protocol helpers ----
def startup_packet(params, code=196608, terminator=True):
    body = struct.pack("!I", code) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items())
    if terminator:
        body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def msg(t, payload):
    return t + struct.pack("!I", len(payload) + 4) + payload


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def read_msg(sock):
    hdr = recv_exact(sock, 5)
    length = struct.unpack("!I", hdr[1:5])[0]
    return hdr[0:1], recv_exact(sock, length - 4)


def error_fields(body):
    return {chr(item[0]): item[1:].decode() for item in body.split(b"\0") if item}


def expect_fatal_then_close(sock, sqlstate, what, within=2.0):
    """The next message is a FATAL ErrorResponse with sqlstate, then the proxy closes."""
    sock.settimeout(within)
    t0 = time.monotonic()
    try:
        t, body = read_msg(sock)
    except (ConnectionError, OSError) as e:
        fail(f"{what}: no ErrorResponse ({e!r})")
    f = error_fields(body)
    if t != b"E" or f.get("C") != sqlstate or f.get("S") != "FATAL":
        fail(f"{what}: expected FATAL {sqlstate}, got {t} {f}")
    try:
        rest = sock.recv(100)
    except OSError:
        rest = b""
    if rest != b"":
        fail(f"{what}: connection not closed after the error ({rest!r})")
    sock.close()
    return time.monotonic() - t0, f


def expect_closed(sock, within, what):
    """The proxy closes the connection (no bytes) within `within` seconds; returns the wait."""
    sock.settimeout(within + 2)
    t0 = time.monotonic()
    try:
        data = sock.recv(100)
    except socket.timeout:
        fail(f"{what}: still open after {within + 2:.0f} s")
    except ConnectionResetError:
        data = b""
    waited = time.monotonic() - t0
    sock.close()
    if data != b"":
        fail(f"{what}: expected a silent close, got {data!r}")
    return waited


def scram_login(sock, user="app", password=PASSWORD):
    """A full SCRAM-SHA-256 login (RFC 5802/7677) on any object with sendall/recv; reads up to
    ReadyForQuery."""
    sock.sendall(startup_packet({"user": user, "database": "app"}))
    t, body = read_msg(sock)
    if t != b"R" or struct.unpack("!I", body[:4])[0] != 10:
        fail(f"expected AuthenticationSASL, got {t} {body!r}")
    client_first_bare = "n=,r=" + base64.b64encode(secrets.token_bytes(18)).decode()
    first = ("n,," + client_first_bare).encode()
    sock.sendall(msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first))
    t, body = read_msg(sock)
    if t != b"R" or struct.unpack("!I", body[:4])[0] != 11:
        fail(f"expected SASLContinue, got {t} {body!r}")
    server_first = body[4:].decode()
    attrs = dict(item.split("=", 1) for item in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    without_proof = f"c=biws,r={attrs['r']}"
    auth_message = f"{client_first_bare},{server_first},{without_proof}".encode()
    signature = hmac.new(hashlib.sha256(client_key).digest(), auth_message, "sha256").digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()
    sock.sendall(msg(b"p", f"{without_proof},p={proof}".encode()))
    while True:
        t, body = read_msg(sock)
        if t == b"E":
            fail(f"SCRAM login failed: {error_fields(body)}")
        if t == b"Z":
            return


def simple_query(sock, sql):
    """Sends a Query, returns the first column of each DataRow; fails on an ErrorResponse."""
    sock.sendall(msg(b"Q", sql.encode() + b"\0"))
    rows = []
    while True:
        t, body = read_msg(sock)
        if t == b"E":
            fail(f"query {sql!r} failed: {error_fields(body)}")
        if t == b"D":
            n = struct.unpack("!I", body[2:6])[0]
            rows.append(body[6:6 + n].decode())
        if t == b"Z":
            return rows


def ssl_request(sock):
    sock.sendall(struct.pack("!II", 8, 80877103))
    answer = recv_exact(sock, 1)
    if answer != b"S":
        fail(f"SSLRequest answered {answer!r}")


def tls_context(proxy, min_version=None, max_version=None):
    ctx = ssl.create_default_context(cafile=proxy.ca)
    if min_version is not None:
        # OpenSSL 3's default security level refuses TLS 1.0/1.1 on the client side; lower it
        # so the refusal this test sees is the proxy's, not our own.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():  # TLSv1 / TLSv1_1 are deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        if min_version is not None:
            ctx.minimum_version = min_version
        if max_version is not None:
            ctx.maximum_version = max_version
    return ctx


def tls_connect(proxy, ctx):
    raw = proxy.connect()
    ssl_request(raw)
    return ctx.wrap_socket(raw, server_hostname="localhost")


class OneBytePerRecord:
    """Writes every byte as its own TLS record (and, with TCP_NODELAY, mostly its own segment)."""

    def __init__(self, tls_sock):
        self.s = tls_sock
        self.records = 0

    def sendall(self, data):
        for i in range(len(data)):
            self.s.sendall(data[i:i + 1])
            self.records += 1

    def recv(self, n):
        return self.s.recv(n)


# ---- the checks ----
def run_malformed_startup(proxy):
    cases = [
        ("length 4 (< 8)", struct.pack("!I", 4)),
        ("length 7 (< 8)", struct.pack("!II", 7, 196608)),
        ("length 0", struct.pack("!I", 0)),
        ("length 10001 (> 10000)", struct.pack("!I", 10001)),
        ("protocol major 2", startup_packet({"user": "app", "database": "app"}, code=2 << 16)),
        ("no final terminator", startup_packet({"user": "app", "database": "app"}, terminator=False)),
        ("CancelRequest of 12 bytes", struct.pack("!III", 12, 80877102, 1)),
        ("CancelRequest of 20 bytes", struct.pack("!IIiii", 20, 80877102, 1, 2, 3)),
        ("SSLRequest of 12 bytes", struct.pack("!III", 12, 80877103, 0)),
    ]
    for what, data in cases:
        s = proxy.connect()
        s.sendall(data)
        took, f = expect_fatal_then_close(s, "08P01", what)
        if took > 1.0:
            fail(f"{what}: refused only after {took:.2f} s")
    ok(f"{len(cases)} malformed startup packets (length < 8, > 10000, protocol 2, no terminator, "
       "Cancel/SSLRequest of the wrong size): FATAL 08P01 and close at once")

    # 1 GB declared: refused from the 4-byte header alone, before any body bytes, no allocation.
    rss_before = proxy.rss_kb()
    socks = []
    t0 = time.monotonic()
    for _ in range(50):
        s = proxy.connect()
        s.sendall(struct.pack("!I", 1 << 30))
        socks.append(s)
    for i, s in enumerate(socks):
        expect_fatal_then_close(s, "08P01", f"1 GB startup header #{i}")
    took = time.monotonic() - t0
    rss_after = proxy.rss_kb()
    if rss_after - rss_before > 16 * 1024:
        fail(f"RSS grew from {rss_before} to {rss_after} kB on 1 GB length headers")
    ok(f"50 x a 4-byte header declaring 1 GB: all FATAL 08P01 in {took * 1000:.0f} ms, "
       f"RSS {rss_before} -> {rss_after} kB")

    # A length that lies: 200 declared, 20 sent, then silence -> closed at client_login_timeout.
    s = proxy.connect()
    s.sendall(struct.pack("!II", 200, 196608) + b"user\0app\0database")
    waited = expect_closed(s, LOGIN_TIMEOUT, "startup length that lies")
    if not LOGIN_TIMEOUT - 0.3 <= waited <= LOGIN_TIMEOUT + 1.5:
        fail(f"startup length that lies: closed after {waited:.2f} s, login timeout is {LOGIN_TIMEOUT} s")
    ok(f"startup declaring 200 bytes, sending 25, then silence: closed after {waited:.2f} s (client_login_timeout)")


def run_slowloris(proxy):
    # A valid startup packet trickled at 1 byte per second: dropped at client_login_timeout
    # although it never stops sending.
    s = proxy.connect()
    data = startup_packet({"user": "app", "database": "app"})
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ)
    t0 = time.monotonic()
    dropped_at = None
    sent = 0
    while time.monotonic() - t0 < LOGIN_TIMEOUT + 4:
        try:
            s.sendall(data[sent:sent + 1])
            sent += 1
        except OSError:
            dropped_at = time.monotonic() - t0
            break
        if sel.select(timeout=1.0):
            try:
                got = s.recv(100)
            except OSError:
                got = b""
            if got == b"":
                dropped_at = time.monotonic() - t0
                break
            fail(f"slowloris: unexpected bytes {got!r}")
    sel.close()
    s.close()
    if dropped_at is None:
        fail(f"slowloris client still connected after {LOGIN_TIMEOUT + 4:.0f} s ({sent} bytes sent)")
    if dropped_at > LOGIN_TIMEOUT + 1.5:
        fail(f"slowloris client dropped only after {dropped_at:.2f} s")
    ok(f"slowloris (1 byte/s of a startup packet): dropped after {dropped_at:.2f} s, {sent} bytes sent")


def run_after_login(proxy):
    # Typed message with a length below 4 after login: 08P01, close.
    for length in (0, 3):
        s = proxy.connect()
        scram_login(s)
        s.sendall(b"Q" + struct.pack("!I", length))
        expect_fatal_then_close(s, "08P01", f"typed message with length {length}")
    ok("after login, a typed message with length 0 or 3: FATAL 08P01 and close")

    # Over max_message_size: refused from the header, with the body sent or not.
    s = proxy.connect()
    scram_login(s)
    s.sendall(msg(b"Q", b"select '" + b"x" * (MAX_MESSAGE + 100) + b"'\0"))
    _, f = expect_fatal_then_close(s, "08P01", "message over max_message_size")
    s = proxy.connect()
    scram_login(s)
    s.sendall(b"Q" + struct.pack("!I", 1 << 30))
    expect_fatal_then_close(s, "08P01", "header of a 1 GB message")
    ok(f"a message over max_message_size ({MAX_MESSAGE}) or a 1 GB header: FATAL 08P01 ({f.get('M')})")


def run_random_bytes(proxy):
    rng = random.Random(20240801)
    total = 0
    startup_lengths = 0
    for batch in range(6):
        socks = []
        for _ in range(50):
            kind = rng.random()
            n = rng.randint(1, 300)
            junk = bytes(rng.getrandbits(8) for _ in range(n))
            if kind < 0.3:  # a plausible startup length, then junk
                junk = struct.pack("!I", rng.randint(8, 400)) + junk
                startup_lengths += 1
            elif kind < 0.45:  # a real startup code with junk parameters
                junk = struct.pack("!II", len(junk) + 8, 196608) + junk
            elif kind < 0.55:  # an SSLRequest, then junk as the TLS ClientHello
                junk = struct.pack("!II", 8, 80877103) + junk
            s = proxy.connect()
            s.setblocking(False)
            try:
                s.send(junk)
            except OSError:
                pass
            socks.append(s)
            total += 1
        time.sleep(0.05)
        for s in socks:
            try:
                s.recv(4096)
            except OSError:
                pass
            s.close()
        if not proxy.alive():
            fail(f"proxy died during random-bytes batch {batch}")
    # And after login: random typed messages (the server may see some; nothing may crash).
    for i in range(30):
        s = proxy.connect()
        scram_login(s)
        junk = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200)))
        s.sendall(junk)
        s.settimeout(0.3)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
        s.close()
        total += 1
    if not proxy.alive():
        fail("proxy died on random bytes after login")
    rc, out, err = proxy.psql("select 'still here'", sslmode="disable")
    if rc != 0 or out != "still here":
        fail(f"psql after random bytes: rc={rc} {out!r} {err!r}")
    ok(f"{total} connections of seeded random bytes (incl. 30 after login): proxy up, psql answers")


def run_tls_records(proxy):
    # Startup, SCRAM and a query, each byte in its own TLS record.
    raw = proxy.connect()
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ssl_request(raw)
    tls = tls_context(proxy).wrap_socket(raw, server_hostname="localhost")
    w = OneBytePerRecord(tls)
    scram_login(w)
    rows = simple_query(w, "select 'split' || 'records'")
    if rows != ["splitrecords"]:
        fail(f"query over one-byte TLS records returned {rows}")
    w.sendall(msg(b"X", b""))
    tls.close()
    ok(f"startup + SCRAM + query written one byte per TLS record ({w.records} records): works")


def run_wrong_passwords(proxy):
    def wrong_proof(user):
        s = proxy.connect()
        s.sendall(startup_packet({"user": user, "database": "app"}))
        t, body = read_msg(s)
        if t != b"R" or struct.unpack("!I", body[:4])[0] != 10:
            fail(f"{user}: expected AuthenticationSASL, got {t} {body!r}")
        first = ("n,,n=,r=" + base64.b64encode(secrets.token_bytes(18)).decode()).encode()
        s.sendall(msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first))
        t, body = read_msg(s)
        attrs = dict(item.split("=", 1) for item in body[4:].decode().split(","))
        proof = base64.b64encode(secrets.token_bytes(32)).decode()
        s.sendall(msg(b"p", f"c=biws,r={attrs['r']},p={proof}".encode()))
        t, body = read_msg(s)
        s.close()
        if t != b"E":
            fail(f"{user}: expected ErrorResponse after a wrong proof, got {t}")
        return attrs, body

    ak, ek = wrong_proof("app")
    au, eu = wrong_proof("nosuchuser")
    fk = error_fields(ek)
    if fk.get("C") != "28P01" or fk.get("S") != "FATAL":
        fail(f"wrong password: expected FATAL 28P01, got {fk}")
    if eu.replace(b"nosuchuser", b"app") != ek:
        fail(f"unknown user distinguishable: {error_fields(eu)} vs {fk}")
    if ak["i"] != au["i"] or len(ak["s"]) != len(au["s"]):
        fail(f"SCRAM parameters differ for an unknown user: {ak} vs {au}")
    # The same through psql: only the user name differs in what the client is told.
    env = dict(os.environ, PGPASSWORD="wrong-" + secrets.token_hex(4), PGSSLMODE="disable", PGCONNECT_TIMEOUT="10")
    outs = {}
    for user in ("app", "nosuchuser"):
        r = subprocess.run(["psql", "-X", "-h", "127.0.0.1", "-p", str(proxy.port), "-U", user, "-d", "app",
                            "-c", "select 1"], env=env, capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            fail(f"psql as {user} with a wrong password succeeded")
        outs[user] = r.stderr.replace(str(proxy.port), "PORT")
    if outs["nosuchuser"].replace("nosuchuser", "app") != outs["app"]:
        fail(f"psql errors differ: {outs}")
    ok(f"wrong password vs unknown user: same FATAL 28P01 bytes and SCRAM shape ({fk.get('M')})")


FLOOD_PER_PROCESS = 9000  # sockets per flood process: each stays under a 10,000-descriptor limit


def flood_part(port, n, results, release):
    """One flood process: opens n connections, sends a StartupMessage on each, reads until each
    one is answered (R = admitted to authentication, E 53300 = refused) or closed, reports the
    counts, and keeps every socket open until `release` is set (so all admitted clients of all
    parts are held at the same time)."""
    sel = selectors.DefaultSelector()
    startup = startup_packet({"user": "app", "database": "app"})
    socks = []
    refused_connect = 0
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(startup)
        except OSError:
            refused_connect += 1
            continue
        s.setblocking(False)
        socks.append(s)
        sel.register(s, selectors.EVENT_READ)
    admitted = refused_53300 = closed = other = 0
    pending = {s: b"" for s in socks}
    deadline = time.monotonic() + 20
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                chunk = s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            buf = pending[s] + chunk
            done = False
            if len(buf) >= 5:
                t = buf[0:1]
                length = struct.unpack("!I", buf[1:5])[0]
                if t == b"R":
                    admitted += 1
                    done = True
                elif t == b"E" and len(buf) >= length + 1:
                    if error_fields(buf[5:length + 1]).get("C") == "53300":
                        refused_53300 += 1
                    else:
                        other += 1
                    done = True
            if not done and chunk == b"":
                closed += 1
                done = True
            if done:
                sel.unregister(s)
                del pending[s]
            else:
                pending[s] = buf
    sel.close()
    results.put({"opened": len(socks), "refused_connect": refused_connect, "admitted": admitted,
                 "refused_53300": refused_53300, "closed": closed, "other": other,
                 "pending": len(pending)})
    release.wait(60)
    for s in socks:
        s.close()


def run_flood(proxy):
    import multiprocessing
    rss_before = proxy.rss_kb()
    t0 = time.monotonic()
    ctx = multiprocessing.get_context("fork")
    results, release = ctx.Queue(), ctx.Event()
    sizes = [FLOOD_PER_PROCESS] * (FLOOD_CONNS // FLOOD_PER_PROCESS)
    if FLOOD_CONNS % FLOOD_PER_PROCESS:
        sizes.append(FLOOD_CONNS % FLOOD_PER_PROCESS)
    parts = [ctx.Process(target=flood_part, args=(proxy.port, n, results, release)) for n in sizes]
    for p in parts:
        p.start()
    rss_peak = rss_before
    got = []
    deadline = time.monotonic() + 120
    while len(got) < len(parts) and time.monotonic() < deadline:
        rss_peak = max(rss_peak, proxy.rss_kb())
        try:
            got.append(results.get(timeout=0.2))
        except Exception:  # queue.Empty: keep sampling RSS
            pass
    if len(got) < len(parts):
        release.set()
        fail(f"flood: only {len(got)} of {len(parts)} flood processes reported within 120 s")
    connect_time = time.monotonic() - t0
    total = {k: sum(g[k] for g in got) for k in got[0]}
    admitted, refused_53300, closed, other = (total["admitted"], total["refused_53300"],
                                              total["closed"], total["other"])
    refused_connect, pending, opened = total["refused_connect"], total["pending"], total["opened"]
    rss_peak = max(rss_peak, proxy.rss_kb())  # every admitted connection still held here
    if not proxy.alive():
        fail("proxy died in the flood")
    rc, out, err = proxy.psql("select 'during the flood'", sslmode="require")
    if rc == 0 and admitted >= MAX_CLIENT_CONN:
        fail("a client beyond max_client_conn got in during the flood")
    release.set()
    for p in parts:
        p.join(30)
    took = time.monotonic() - t0
    if pending:
        fail(f"flood: {pending} connections got neither an answer nor a close in 20 s")
    if not proxy.alive():
        fail("proxy died in the flood")
    if admitted > MAX_CLIENT_CONN:
        fail(f"flood: {admitted} clients admitted to authentication, max_client_conn = {MAX_CLIENT_CONN}")
    if admitted == 0 or refused_53300 == 0 or other:
        fail(f"flood: admitted={admitted} 53300={refused_53300} closed={closed} other={other}")
    # All flood sessions end once we close them.
    wait_until(20, lambda: client_gauge(proxy) == 0, "the flood's client sessions to end")
    rss_after = proxy.rss_kb()
    # Bounded: measured ~6 kB per flood connection (2000 -> +12 MB, 19000 -> +115 MB).
    rss_bound = 32 * 1024 + 16 * opened
    # AddressSanitizer's shadow memory and quarantine multiply what every allocation costs; the
    # sanitizer run (tests/run.sh sets PGCUTOVER_SANITIZED=1) checks the bound scaled, still
    # catching unbounded growth.
    if os.environ.get("PGCUTOVER_SANITIZED") == "1":
        rss_bound *= 4
    if rss_peak - rss_before > rss_bound:
        fail(f"flood: RSS grew from {rss_before} kB to {rss_peak} kB (bound +{rss_bound} kB)")
    rc, out, err = proxy.psql("select 'after the flood'", sslmode="require")
    if rc != 0 or out != "after the flood":
        fail(f"psql after the flood: rc={rc} {out!r} {err!r}")
    ok(f"flood of {opened} connections from {len(parts)} processes ({refused_connect} refused at "
       f"connect) in {connect_time:.1f} s: "
       f"{admitted} admitted (max_client_conn {MAX_CLIENT_CONN}), {refused_53300} got 53300, {closed} closed; "
       f"RSS {rss_before} -> peak {rss_peak} -> {rss_after} kB; psql works after ({took:.1f} s)")
    return rss_before, rss_peak, rss_after


def client_gauge(proxy):
    code, body = admin_http("GET", "/metrics", proxy, token=ADMIN_TOKEN)
    if code != 200:
        return -1
    total = 0
    found = False
    for line in body.decode().splitlines():
        if line.startswith("pgcutover_client_connections{"):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    return int(total) if found else -1


def run_admin(proxy):
    code, _ = admin_http("GET", "/v1/status", proxy)
    if code != 401:
        fail(f"/v1/status without a token: {code}")
    code, _ = admin_http("GET", "/v1/status", proxy, token="wrong")
    if code != 401:
        fail(f"/v1/status with a wrong token: {code}")
    code, _ = admin_http("POST", "/v1/pause", proxy, token=ADMIN_TOKEN[:-1], body=b"{}")
    if code != 401:
        fail(f"/v1/pause with a token one character short: {code}")
    code, _ = admin_http("GET", "/metrics", proxy)
    if code != 401:
        fail(f"/metrics without a token: {code}")
    big = b'{"enabled":true,"pad":"' + b"x" * (64 * 1024 + 10) + b'"}'
    code, _ = admin_http("POST", "/v1/readonly", proxy, token=ADMIN_TOKEN, body=big)
    if code != 413:
        fail(f"a body over 64 KiB: {code}, want 413")
    # A chunked body (no Content-Length up front) over the limit: also 413.
    s = socket.create_connection(("127.0.0.1", proxy.admin_port), timeout=5)
    head = (f"POST /v1/readonly HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    chunk = b"x" * 16384
    try:
        s.sendall(head)
        for _ in range(6):
            s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
    except OSError:
        pass
    try:
        answer = s.recv(200)
    except OSError:
        answer = b""
    s.close()
    if not answer.startswith(b"HTTP/1.1 413"):
        fail(f"chunked body over 64 KiB: {answer[:60]!r}, want 413")
    # Without a token, an oversized body is never read: 413 from its Content-Length (checked
    # with the headers) or 401 (token checked before the body); nothing else.
    code, _ = admin_http("POST", "/v1/readonly", proxy, body=big)
    if code not in (401, 413):
        fail(f"an oversized body without a token: {code}, want 401 or 413")
    garbage = [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)),
               b"GET / HTTP/9.9\r\n\r\n", b"\r\n\r\n\r\n", b"GE\x00T /v1/status HTTP/1.1\r\n\r\n",
               b"GET /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
               b"GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"A" * 20000 + b"\r\n\r\n",
               bytes(random.Random(7).getrandbits(8) for _ in range(3000))]
    answers = []
    for g in garbage:
        s = socket.create_connection(("127.0.0.1", proxy.admin_port), timeout=5)
        try:
            s.sendall(g)
            s.shutdown(socket.SHUT_WR)
            answer = s.recv(200)
        except OSError:
            answer = b""
        s.close()
        status = answer[9:12].decode(errors="replace") if answer.startswith(b"HTTP/1.1 ") else "close"
        if status not in ("400", "401", "431", "close"):
            fail(f"garbage HTTP {g[:30]!r}: answered {answer[:60]!r}")
        answers.append(status)
        code, _ = admin_http("GET", "/healthz", proxy)
        if code != 200:
            fail(f"admin API not answering after garbage {g[:30]!r}: {code}")
    code, body = admin_http("GET", "/v1/status", proxy, token=ADMIN_TOKEN)
    if code != 200 or "backend" not in json.loads(body):
        fail(f"/v1/status with the token after garbage: {code} {body[:200]!r}")
    ok("admin API: 401 without/with a wrong token, 413 over 64 KiB "
       f"(Content-Length and chunked), garbage answered {answers}, still serving")


def run_tls_required(proxy):
    # Plaintext StartupMessage with client_tls = require: FATAL 28000.
    s = proxy.connect()
    s.sendall(startup_packet({"user": "app", "database": "app"}))
    _, f = expect_fatal_then_close(s, "28000", "plaintext with client_tls = require")
    rc, out, err = proxy.psql("select 1", sslmode="disable")
    if rc == 0:
        fail("psql with sslmode=disable got in with client_tls = require")
    ok(f"client_tls = require: plaintext refused (FATAL 28000: {f.get('M')})")

    for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        failures_before = tls_failures(proxy)
        try:
            tls = tls_connect(proxy, tls_context(proxy, min_version=ssl.TLSVersion.TLSv1, max_version=version))
            tls.close()
            fail(f"{version.name} handshake accepted")
        except ssl.SSLError as e:
            reason = str(e)
        # Proof the refusal came from the proxy: it logged a failed handshake (our client got
        # as far as sending a ClientHello) and the error is the server's protocol_version alert.
        wait_until(5, lambda: tls_failures(proxy) > failures_before, f"the proxy to count the {version.name} failure")
        # "alert protocol version" is the alert the server sent; a refusal by our own client
        # would read "no protocols available" / "unsupported protocol" instead.
        if "ALERT_PROTOCOL_VERSION" not in reason.upper():
            fail(f"{version.name}: unexpected handshake error {reason}")
        ok(f"{version.name} refused by the proxy ({reason.split(']')[-1].strip() or reason})")
    for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
        tls = tls_connect(proxy, tls_context(proxy, max_version=version))
        tls.settimeout(10)
        scram_login(tls)
        rows = simple_query(tls, "select current_user")
        negotiated = tls.version()
        tls.close()
        if negotiated != name or rows != ["app"]:
            fail(f"{name}: negotiated {negotiated}, rows {rows}")
        ok(f"{name} accepted: SCRAM login and a query work")


def tls_failures(proxy):
    with open(proxy.log, "rb") as f:
        return f.read().count(b"client_tls_failed")


def run_secrets(proxy, source_url):
    backend_password = urllib.parse.unquote(urllib.parse.urlsplit(source_url).password or "")
    if not backend_password:
        fail(f"source URL has no password: {source_url}")
    secrets_to_find = {"app password": PASSWORD, "backend password": backend_password, "admin token": ADMIN_TOKEN}
    code_m, metrics = admin_http("GET", "/metrics", proxy, token=ADMIN_TOKEN)
    code_s, status = admin_http("GET", "/v1/status", proxy, token=ADMIN_TOKEN)
    if code_m != 200 or code_s != 200:
        fail(f"/metrics {code_m}, /v1/status {code_s}")
    with open(proxy.log, "rb") as f:
        log = f.read()
    where = {"proxy log": log, "/metrics": metrics, "/v1/status": status}
    for place, text in where.items():
        for name, value in secrets_to_find.items():
            if value.encode() in text:
                fail(f"the {name} appears in the {place}")
    for bad in (b"XX000", b"level=error"):
        if bad in log:
            fail(f"the proxy log has {bad!r} after bad input: an internal error, not a client error")
    ok(f"no app password, backend password or admin token in the proxy log ({len(log)} bytes at debug), "
       f"/metrics ({len(metrics)} bytes) or /v1/status ({len(status)} bytes)")


def raise_fd_limit(needed):
    """Each flood process holds up to FLOOD_PER_PROCESS sockets; the proxy (a child) inherits
    the limit too. Root may raise the hard limit; anyone may raise the soft one up to it."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(needed, soft), max(needed, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        fail(f"the flood needs {needed} file descriptors per process, the limit is {soft}")


def main():
    raise_fd_limit(FLOOD_PER_PROCESS + 1024)
    if not os.access(PROXY_BIN, os.X_OK):
        fail("pgcutover-proxy not built: " + PROXY_BIN)
    workdir = tempfile.mkdtemp(prefix="pgcutover-sec.")
    src = pgcluster("start", "--shape", "heroku", "--owner-pid", str(os.getpid()))
    proxy = Proxy(workdir, src["url"])
    t0 = time.monotonic()
    try:
        proxy.start("allow")
        run_malformed_startup(proxy)
        run_after_login(proxy)
        run_slowloris(proxy)
        run_tls_records(proxy)
        run_wrong_passwords(proxy)
        run_random_bytes(proxy)
        run_admin(proxy)
        proxy.stop()
        # The flood gets its own start with a long login timeout, so no admitted client is
        # timed out (freeing its slot) while the flood is still arriving: every admitted
        # connection is then held at once, and "admitted <= max_client_conn" is exact.
        proxy.start("allow", login_timeout=FLOOD_LOGIN_TIMEOUT)
        run_flood(proxy)
        proxy.stop()
        proxy.start("require")
        run_tls_required(proxy)
        run_secrets(proxy, src["url"])
        proxy.stop()
        print(f"all bad-input and security checks passed in {time.monotonic() - t0:.1f} s")
    except BaseException:
        import traceback
        traceback.print_exc()
        try:
            with open(proxy.log, errors="replace") as f:
                sys.stderr.write("---- proxy log tail ----\n" + "".join(f.readlines()[-40:]))
        except OSError:
            pass
        raise
    finally:
        if proxy.proc and proxy.proc.poll() is None:
            proxy.proc.kill()
            proxy.proc.wait(5)
        subprocess.run(["bash", PGCLUSTER, "stop", "--dir", src["dir"]], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
