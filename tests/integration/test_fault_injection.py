"""Faults at the cutover, under a ledger workload (issue 8, "Fault injection"); each ends in the
safe state documented in docs/cutover.md ("Faults") and no acknowledged write is lost.

A Heroku-shaped source and an RDS-shaped target with logical replication source -> target; the
real proxy reaches each backend through a TCP relay this test controls; four writers insert
through the proxy and record every acknowledged row. Proves, in order:
  1. the network to the source stalls (relay frozen, sockets open): a flip ends in
     drain_timeout (409), the proxy stays RUNNING on the source, and the writers carry on when
     the network comes back;
  2. the target refuses TLS, then the target is dead: a flip answers prewarm_failed (502), the
     gate never closed, and the writers saw no error; the target dies after the prewarm and the
     pause: the flip lands on it, every query fails (nothing acknowledged) and revert brings the
     proxy back to the source;
  3. the proxy is SIGKILLed while paused and while a flip drains: restarted, it is RUNNING on
     the source with the epoch it had (the state file was not changed);
  4. the source dies (kill -9) while the proxy drains: the drain ends (its blocker is gone), the
     controller cannot prove the catch-up and resumes on the source; after crash recovery the
     writes resume, the catch-up is proven and the flip to the target succeeds; the proxy is
     SIGKILLed after the flip and comes back on the target;
and after all of it every acknowledged row is on the target exactly once.
"""
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time

import psycopg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fault_testlib import (LEDGER_DDL, Cluster, Ledger, Proxy, Relay,  # noqa: E402
                           lsn_caught_up)
from proxy_testlib import PROXY_BIN, fail, ok, wait_until  # noqa: E402


def via(url, port_from, port_to):
    return url.replace(f"127.0.0.1:{port_from}/", f"127.0.0.1:{port_to}/")


def expect(code_body, code, error=None, what=""):
    c, body = code_body
    if c != code or (error and error not in (body.get("result"), body.get("error"))):
        fail(f"{what}: got {c} {body}, want {code} {error or ''}")
    return body


def pause_in_background(proxy, body, path="/v1/pause"):
    result = {}
    t = threading.Thread(target=lambda: result.update(r=proxy.call("POST", path, body)), daemon=True)
    t.start()
    return t, result


def open_blocker(proxy):
    """A client inside a transaction: the drain must wait for it."""
    c = psycopg.connect(proxy.dsn())
    c.execute("INSERT INTO ledger (writer, seq) VALUES (-1, 1)")
    return c


def main():
    if not os.access(PROXY_BIN, os.X_OK):
        fail("pgcutover-proxy not built: " + PROXY_BIN)
    t_start = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="pgcutover-fault.")
    os.chmod(workdir, 0o755)
    src = Cluster("src", "heroku", "--logical")
    tgt = Cluster("tgt", "rds")
    relays, proxy, ledger = [], None, None
    try:
        for c in (src, tgt):
            c.admin(LEDGER_DDL)
            c.admin("ALTER TABLE ledger OWNER TO app")
        src.admin("CREATE PUBLICATION fwd_pub FOR TABLE ledger")
        conninfo = (f"host=127.0.0.1 port={src.port} user={src.env['app_user']} "
                    f"password={src.env['app_password']} dbname=app sslmode=require")
        tgt.admin(f"CREATE SUBSCRIPTION fwd_sub CONNECTION '{conninfo}' PUBLICATION fwd_pub "
                  "WITH (synchronous_commit = 'on')")
        src_relay, tgt_relay = Relay(src.port), Relay(tgt.port)
        relays = [src_relay, tgt_relay]
        token = "tok-" + secrets.token_hex(8)
        proxy = Proxy(workdir, {"source": via(src.url, src.port, src_relay.port),
                                "target": via(tgt.url, tgt.port, tgt_relay.port)},
                      "pw-" + secrets.token_hex(8), token,
                      '[cutover]\ninitial_backend = "source"\ndrain_timeout = 10\nmax_pause = 30\n'
                      'prewarm = true\n')
        proxy.start()
        ledger = Ledger(proxy.dsn(), writers=4)
        ledger.start()
        ledger.wait_for_more(100)
        ok("ledger writers running through the proxy on the source (via the relay)")

        # ---- 1. the network to the source stalls ----
        epoch = proxy.status()["epoch"]
        src_relay.frozen.set()
        ledger.wait_stuck()  # every writer's INSERT is now in flight behind the frozen relay
        t0 = time.monotonic()
        # The controller's first step of a flip, with a short drain bound (a flip from RUNNING
        # drains with the configured drain_timeout, 10 s here, and ends the same way).
        body = expect(proxy.call("POST", "/v1/pause", {"drain_timeout_ms": 1000}),
                      409, "drain_timeout", "pause while the source network stalls")
        st = proxy.status()
        if (st["state"], st["backend"], st["epoch"]) != ("running", "source", epoch):
            fail(f"after a stalled drain the proxy is {st}, want running on the source, epoch {epoch}")
        src_relay.frozen.clear()
        ledger.wait_for_more(100, what="writes after the network came back")
        ok(f"network stall to the source: pause -> drain_timeout (409) after "
           f"{time.monotonic() - t0:.1f} s with {len(body.get('blockers', []))} blockers listed, "
           "still RUNNING on the source; writers resumed when the network came back")

        # ---- 2. the target refuses TLS / is dead at the flip ----
        errors_before = sum(ledger.errors)
        tgt_relay.refuse_tls = True
        expect(proxy.call("POST", "/v1/flip", {"backend": "target", "epoch": epoch}),
               502, "prewarm_failed", "flip to a target that refuses TLS")
        tgt_relay.refuse_tls = False
        tgt.kill9()
        expect(proxy.call("POST", "/v1/flip", {"backend": "target", "epoch": epoch}),
               502, "prewarm_failed", "flip to a dead target")
        st = proxy.status()
        if (st["state"], st["backend"], st["epoch"]) != ("running", "source", epoch):
            fail(f"after prewarm_failed the proxy is {st}")
        ledger.wait_for_more(50)
        if sum(ledger.errors) != errors_before:
            fail(f"writers saw {sum(ledger.errors) - errors_before} errors during prewarm failures:"
                 " the gate must never close when the prewarm fails")
        ok("target refusing TLS, then dead: flip -> prewarm_failed (502), gate never closed, "
           "writers saw no error")

        tgt.restart()
        expect(proxy.call("POST", "/v1/prewarm", {"backend": "target"}), 200, None, "prewarm")
        expect(proxy.call("POST", "/v1/pause", {}), 200, None, "pause")
        tgt.kill9()  # dies between the prewarm and the flip
        body = expect(proxy.call("POST", "/v1/flip", {"backend": "target", "epoch": epoch}),
                      200, None, "flip from paused onto a target that just died")
        acked_before = ledger.count()
        errors_before = sum(ledger.errors)
        wait_until(15, lambda: sum(ledger.errors) >= errors_before + 4,
                   "writers to get errors from the dead target")
        on_dead = ledger.count() - acked_before
        expect(proxy.call("POST", "/v1/revert", {"epoch": body["epoch"]}), 200, None, "revert")
        epoch = proxy.status()["epoch"]
        ledger.wait_for_more(50, what="writes after the revert")
        if on_dead > 4:  # at most one per writer can have been acknowledged before the flip landed
            fail(f"{on_dead} writes acknowledged while the proxy pointed at a dead target")
        tgt.restart()
        ok("target dead after prewarm and pause: the flip lands, queries fail (nothing "
           "acknowledged on the target), revert resumes writes on the source")

        # ---- 3. the proxy killed mid-flip ----
        expect(proxy.call("POST", "/v1/pause", {}), 200, None, "pause")
        proxy.kill9()
        proxy.start()
        st = proxy.status()
        if (st["state"], st["backend"], st["epoch"]) != ("running", "source", epoch):
            fail(f"proxy killed while paused came back as {st}, want running on the source, epoch {epoch}")
        blocker = open_blocker(proxy)
        t, result = pause_in_background(proxy, {"backend": "target", "epoch": epoch}, "/v1/flip")
        wait_until(10, lambda: proxy.status()["state"] == "pausing", "the flip to be draining")
        proxy.kill9()
        t.join(10)
        blocker.close()
        proxy.start()
        st = proxy.status()
        if (st["state"], st["backend"], st["epoch"]) != ("running", "source", epoch):
            fail(f"proxy killed while a flip drained came back as {st}, want running on the source")
        ledger.wait_for_more(50, what="writes after the proxy restarts")
        ok(f"proxy SIGKILLed while paused and while a flip drained: restarted RUNNING on the "
           f"source, epoch {epoch} unchanged; writers reconnected")

        # ---- 4. the source dies while the proxy drains ----
        blocker = open_blocker(proxy)
        t, result = pause_in_background(proxy, {"drain_timeout_ms": 10000})
        wait_until(10, lambda: proxy.status()["state"] == "pausing", "the pause to be draining")
        src.kill9()
        t.join(20)
        pause_code = result.get("r", (0, {}))[0]
        st = proxy.status()
        # The controller cannot read the source's WAL position: the catch-up cannot be proven,
        # so it must not flip. It resumes on the source (whatever the pause answered).
        expect(proxy.call("POST", "/v1/resume", {}), 200, None, "resume after the source died")
        try:
            blocker.close()
        except psycopg.Error:
            pass
        st2 = proxy.status()
        if (st2["state"], st2["backend"]) != ("running", "source"):
            fail(f"after resume the proxy is {st2}")
        src.restart()
        ledger.wait_for_more(100, seconds=40, what="writes after the source's crash recovery")
        acked_on_source = ledger.count()
        ledger.stop()
        n, errs = ledger.check(src.url, "the source after crash recovery")
        ok(f"source killed while draining: pause answered {pause_code} (state {st['state']}), "
           f"resumed on the source; after crash recovery all {n} acknowledged rows are on the "
           f"source exactly once ({errs} writer errors, none acknowledged)")

        ledger.start()  # the same writers again, their sequences continuing
        ledger.wait_for_more(50)
        epoch = proxy.status()["epoch"]
        expect(proxy.call("POST", "/v1/prewarm", {"backend": "target"}), 200, None, "prewarm")
        expect(proxy.call("POST", "/v1/pause", {}), 200, None, "pause")
        lsn_caught_up(src, "fwd_sub", seconds=30)
        body = expect(proxy.call("POST", "/v1/flip", {"backend": "target", "epoch": epoch}),
                      200, None, "flip after recovery")
        ledger.wait_for_more(50, what="writes on the target")
        proxy.kill9()
        proxy.start()
        st = proxy.status()
        if (st["state"], st["backend"], st["epoch"]) != ("running", "target", body["epoch"]):
            fail(f"proxy killed after the flip came back as {st}, want running on the target")
        ledger.wait_for_more(50, what="writes after the restart on the target")
        ledger.stop()
        n, errs = ledger.check(tgt.url, "the target")
        ok(f"after recovery the catch-up was proven and the flip landed; a proxy killed after the "
           f"flip came back on the target; all {n} acknowledged rows ({acked_on_source} of them "
           f"written on the source) are on the target exactly once")
        print(f"fault injection passed in {time.monotonic() - t_start:.1f} s")
    except BaseException:
        import traceback
        traceback.print_exc()
        if proxy:
            sys.stderr.write("---- proxy log tail ----\n" + proxy.log_tail())
        raise
    finally:
        if ledger:
            ledger.stop_ev.set()
        if proxy:
            proxy.stop()
        for r in relays:
            r.close()
        src.stop()
        tgt.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
