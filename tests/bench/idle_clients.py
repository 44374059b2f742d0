#!/usr/bin/python3
"""Opens N client connections to a PostgreSQL-protocol listener, logs each one in (SCRAM-SHA-256,
MD5 or trust, plain TCP), leaves them idle and reports the listener process's memory.

    idle_clients.py --port P --user U --password PW --pid PID -n 10000 [--tls]

--tls: each client asks for TLS (SSLRequest, then the handshake, no certificate check) before
logging in, as libpq's sslmode=require does: the cost of an idle TLS client.
--query: each client runs one query (SELECT 1) after logging in, then stays idle: the state an
application's pooled connection is in between its requests (a pooler may keep more for a client
that has run a query than for one that only logged in).

Prints one JSON object: how many logged in, the listener's RSS before and with them (from
/proc/PID/status; VmRSS, plus the RSS of its children for PgBouncer-like forks is not needed:
both poolers are single processes), and the bytes per idle client. A raw asyncio client, not a
driver: 10,000 driver connections would cost the client more memory and CPU than the proxy.
The PBKDF2 of SCRAM is computed once per salt (the proxy gives every login of a user the same
salt, as PostgreSQL does), so the client spends its time on the wire, not on hashing.
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import ssl
import struct
import sys
import time

_pbkdf2_cache = {}


def _msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


async def _read(reader):
    head = await reader.readexactly(5)
    n = struct.unpack("!I", head[1:])[0]
    return head[:1], await reader.readexactly(n - 4)


def _tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # sslmode=require: encrypted, not verified
    return ctx


async def login(host, port, user, password, database, tls=None):
    reader, writer = await asyncio.open_connection(host, port)
    if tls is not None:
        writer.write(struct.pack("!II", 8, 80877103))  # SSLRequest
        await writer.drain()
        if await reader.readexactly(1) != b"S":
            raise RuntimeError("the server refused TLS")
        await writer.start_tls(tls)
    params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0\0"
    body = struct.pack("!I", 196608) + params
    writer.write(struct.pack("!I", len(body) + 4) + body)
    nonce = base64.b64encode(os.urandom(18)).decode()
    client_first_bare = f"n=,r={nonce}"
    auth_message = salted = None
    while True:
        kind, body = await _read(reader)
        if kind == b"R":
            code = struct.unpack("!I", body[:4])[0]
            if code == 0:
                continue
            if code == 5:  # MD5
                inner = hashlib.md5((password + user).encode()).hexdigest()
                digest = "md5" + hashlib.md5(inner.encode() + body[4:8]).hexdigest()
                writer.write(_msg(b"p", digest.encode() + b"\0"))
            elif code == 3:
                writer.write(_msg(b"p", password.encode() + b"\0"))
            elif code == 10:  # SASL
                first = ("n,," + client_first_bare).encode()
                writer.write(_msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first))
            elif code == 11:  # SASL continue: server-first
                server_first = body[4:].decode()
                attrs = dict(a.split("=", 1) for a in server_first.split(","))
                salt, iters = base64.b64decode(attrs["s"]), int(attrs["i"])
                key = (password, attrs["s"], iters)
                if key not in _pbkdf2_cache:
                    _pbkdf2_cache[key] = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iters)
                salted = _pbkdf2_cache[key]
                without_proof = "c=biws,r=" + attrs["r"]
                auth_message = ",".join([client_first_bare, server_first, without_proof]).encode()
                client_key = hmac.new(salted, b"Client Key", "sha256").digest()
                stored = hashlib.sha256(client_key).digest()
                sig = hmac.new(stored, auth_message, "sha256").digest()
                proof = bytes(a ^ b for a, b in zip(client_key, sig))
                final = without_proof + ",p=" + base64.b64encode(proof).decode()
                writer.write(_msg(b"p", final.encode()))
            elif code == 12:
                continue
            else:
                raise RuntimeError(f"unsupported auth code {code}")
            await writer.drain()
        elif kind == b"E":
            raise RuntimeError("login refused: " + body.decode(errors="replace"))
        elif kind == b"Z":
            return reader, writer


async def query(reader, writer, sql="select 1"):
    """One simple Query, read up to its ReadyForQuery; raises on an ErrorResponse."""
    writer.write(_msg(b"Q", sql.encode() + b"\0"))
    await writer.drain()
    error = None
    while True:
        kind, body = await _read(reader)
        if kind == b"E":
            error = body.decode(errors="replace")
        elif kind == b"Z":
            if error:
                raise RuntimeError("query failed: " + error)
            return


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", default="")
    ap.add_argument("--database", default="app")
    ap.add_argument("--pid", type=int, required=True, help="listener process whose RSS is read")
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--settle", type=float, default=2.0, help="seconds idle before measuring")
    ap.add_argument("--tls", action="store_true", help="TLS for every client (sslmode=require)")
    ap.add_argument("--query", action="store_true", help="each client runs SELECT 1, then idles")
    a = ap.parse_args()
    tls = _tls_context() if a.tls else None

    before = rss_kib(a.pid)
    gate = asyncio.Semaphore(a.concurrency)
    conns, errors = [], []

    async def one():
        async with gate:
            try:
                conn = await asyncio.wait_for(
                    login(a.host, a.port, a.user, a.password, a.database, tls), 60)
                if a.query:
                    await asyncio.wait_for(query(*conn), 60)
                conns.append(conn)
            except Exception as e:  # counted and reported, the run goes on
                errors.append(repr(e))

    t0 = time.time()
    await asyncio.gather(*(one() for _ in range(a.n)))
    login_s = time.time() - t0
    await asyncio.sleep(a.settle)
    with_clients = rss_kib(a.pid)
    # Still connected? A proxy that dropped idle clients would look cheap.
    alive = sum(1 for r, w in conns if not r.at_eof())
    for r, w in conns:
        w.write(_msg(b"X", b""))
        w.close()
    await asyncio.sleep(0.5)
    print(json.dumps({
        "requested": a.n, "tls": a.tls, "query": a.query, "logged_in": len(conns), "alive_at_measure": alive,
        "errors": len(errors), "first_error": errors[0] if errors else "",
        "login_seconds": round(login_s, 2),
        "rss_before_kib": before, "rss_with_clients_kib": with_clients,
        "bytes_per_client": round((with_clients - before) * 1024 / max(1, len(conns))),
    }))


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
