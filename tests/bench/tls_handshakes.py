#!/usr/bin/python3
"""Full TLS handshakes per second against a PostgreSQL-protocol listener: each connection sends
SSLRequest, reads 'S', completes a fresh TLS handshake (no session resumption, certificate
verified against --ca) and closes. --procs worker processes loop for --seconds.

    tls_handshakes.py --port P --ca ca.crt --seconds 10 --procs 2

Prints one JSON object: handshakes, seconds, handshakes_per_second, errors, TLS version and
cipher seen. The client shares the machine's cores with the listener, so this is a lower bound
for the listener and meant for side-by-side comparison.
"""
import argparse
import json
import multiprocessing
import socket
import ssl
import struct
import time

SSL_REQUEST = struct.pack("!II", 8, 80877103)


def worker(args, out):
    host, port, ca, seconds = args
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False  # the test certificate names localhost and 127.0.0.1
    done = errors = 0
    version = cipher = ""
    end = time.time() + seconds
    while time.time() < end:
        try:
            with socket.create_connection((host, port), timeout=10) as s:
                s.sendall(SSL_REQUEST)
                if s.recv(1) != b"S":
                    errors += 1
                    continue
                with ctx.wrap_socket(s, server_hostname=host) as t:
                    version, cipher = t.version(), t.cipher()[0]
                    done += 1
        except OSError:
            errors += 1
    out.put((done, errors, version, cipher))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--procs", type=int, default=2)
    a = ap.parse_args()
    q = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=worker, args=((a.host, a.port, a.ca, a.seconds), q))
             for _ in range(a.procs)]
    t0 = time.time()
    for p in procs:
        p.start()
    results = [q.get(timeout=a.seconds + 60) for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.time() - t0
    done = sum(r[0] for r in results)
    print(json.dumps({"handshakes": done, "seconds": round(elapsed, 2),
                      "handshakes_per_second": round(done / elapsed, 1),
                      "errors": sum(r[1] for r in results),
                      "tls_version": results[0][2], "cipher": results[0][3]}))


if __name__ == "__main__":
    main()
