#!/usr/bin/python3
"""The controller's part of a flip, --rounds times, against one proxy under load (the same
sequence as tests/integration/test_cutover_flip.sh): prewarm the target; pause; read the
source's pg_current_wal_lsn() once; wait until the subscription's slot has confirmed it; flip
to the target (persist, retarget, resume). Then revert to the source (the proxy's own
prewarm + pause + flip, no catch-up: only the forward flip is the measured cutover) and wait
--gap seconds so the load settles.

    ADMIN=http://127.0.0.1:P TOKEN=... SRC_ADMIN_URL=... flip_rounds.py --rounds 20 --slot sub

Prints one JSON object: per round the pause->resume time of the flip by the controller's clock
(t0_us/t1_us, for matching against pgbench's per-transaction log), the held clients' worst wait
as the proxy measured it (the write pause), and the revert's time.
"""
import argparse
import json
import os
import time
import urllib.error
import urllib.request

import psycopg


def call(method, path, body=None):
    req = urllib.request.Request(os.environ["ADMIN"] + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + os.environ["TOKEN"]})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--slot", required=True)
    ap.add_argument("--gap", type=float, default=0.3)
    a = ap.parse_args()
    src = psycopg.connect(os.environ["SRC_ADMIN_URL"], autocommit=True)
    rounds = []
    for i in range(a.rounds):
        code, st = call("GET", "/v1/status")
        assert code == 200 and st["backend"] == "source", st
        code, r = call("POST", "/v1/prewarm", {"backend": "target"})
        assert code == 200, (code, r)
        t0 = time.time()
        code, r = call("POST", "/v1/pause", {})
        assert code == 200, (code, r)
        lsn = src.execute("select pg_current_wal_lsn()").fetchone()[0]
        deadline = time.time() + 15
        while not src.execute("select coalesce(bool_and(confirmed_flush_lsn >= %s::pg_lsn), false)"
                              " from pg_replication_slots where slot_name = %s",
                              (lsn, a.slot)).fetchone()[0]:
            assert time.time() < deadline, "target did not reach " + str(lsn)
            time.sleep(0.002)
        t_caught = time.time()
        code, r = call("POST", "/v1/flip", {"backend": "target", "epoch": st["epoch"]})
        t1 = time.time()
        assert code == 200 and r["backend"] == "target", (code, r)
        flip_answer = r
        time.sleep(a.gap)
        r0 = time.time()
        code, r = call("POST", "/v1/revert", {"epoch": r["epoch"]})
        r1 = time.time()
        assert code == 200 and r["backend"] == "source", (code, r)
        # What the proxy measured at its held clients (docs/cutover.md "Figures": write pause).
        waits = flip_answer.get("client_wait_ms", {})
        rounds.append({"t0_us": int(t0 * 1e6), "t1_us": int(t1 * 1e6),
                       "pause_ms": round((t1 - t0) * 1000, 1),
                       "client_wait_worst_ms": waits.get("worst", 0),
                       "clients_held": waits.get("held", 0),
                       "catch_up_ms": round((t_caught - t0) * 1000, 1),
                       "revert_ms": round((r1 - r0) * 1000, 1)})
        time.sleep(a.gap)
    print(json.dumps({"rounds": rounds}))


if __name__ == "__main__":
    main()
