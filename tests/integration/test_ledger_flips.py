"""A ledger workload through 20 consecutive flips and reverts with reverse replication (issue 8):
afterwards every acknowledged row is present exactly once, on both databases.

Four writers insert (writer, seq) through the real proxy, one autocommit INSERT at a time, and
record each acknowledged one; the ledger table has no key, so a duplicate would show. Each flip
is the controller's sequence of `pgcutoverctl flip`, driven here through the admin API and SQL
so that 40 cutovers fit in about a minute (the full command also fences roles, reconciles
sequences and smoke-tests: tests/integration/test_control_flip.sh covers it once):
  prewarm the other database; pause; read the active database's WAL position once and wait
  until the replication slot has confirmed it; drop that subscription; create the reverse one
  with copy_data = false while traffic is still held (PostgreSQL 15 has no origin filter, so
  both directions never run at once, and a slot made later would miss the first writes); flip.
"""
import os
import secrets
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fault_testlib import LEDGER_DDL, Cluster, Ledger, Proxy, lsn_caught_up  # noqa: E402
from proxy_testlib import PROXY_BIN, fail, ok  # noqa: E402

ROUNDS = int(os.environ.get("PGCUTOVER_LEDGER_ROUNDS", "20"))


def call(proxy, path, body):
    code, r = proxy.call("POST", path, body)
    if code != 200:
        fail(f"POST {path} {body}: {code} {r}")
    return r


def move(proxy, frm, to, to_backend, sub_from, sub_to, revert):
    """One cutover from `frm` to `to`. sub_from replicates frm -> to (on `to`, slot on frm);
    sub_to will replicate to -> frm (on frm, slot on to)."""
    epoch = proxy.status()["epoch"]
    call(proxy, "/v1/prewarm", {"backend": to_backend})
    t0 = time.monotonic()
    t_pause = time.time()
    call(proxy, "/v1/pause", {})
    t1 = time.monotonic()
    lsn_caught_up(frm, sub_from)
    t2 = time.monotonic()
    to.admin(f"DROP SUBSCRIPTION {sub_from}")
    t3 = time.monotonic()
    frm.admin(f"CREATE SUBSCRIPTION {sub_to} CONNECTION '{to.admin_url}' PUBLICATION ledger_pub "
              "WITH (copy_data = false, synchronous_commit = 'on')")
    t4 = time.monotonic()
    if revert:
        r = call(proxy, "/v1/revert", {"epoch": epoch})
    else:
        r = call(proxy, "/v1/flip", {"backend": to_backend, "epoch": epoch})
    # With the per-row ports and times Ledger.check prints, this places a lost row in time.
    print(f"cutover to {to_backend} (port {to.port}): pause sent {t_pause:.3f}, answered "
          f"{time.time():.3f}; pause {t1 - t0:.3f} s, catch-up {t2 - t1:.3f} s, drop subscription "
          f"{t3 - t2:.3f} s, create subscription {t4 - t3:.3f} s", flush=True)
    if r["backend"] != to_backend or r["epoch"] != epoch + 1:
        fail(f"cutover to {to_backend} answered {r}")
    return time.monotonic() - t0


def main():
    if not os.access(PROXY_BIN, os.X_OK):
        fail("pgcutover-proxy not built: " + PROXY_BIN)
    t_start = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="pgcutover-ledger.")
    os.chmod(workdir, 0o755)
    # The logical replication launcher starts a new subscription's apply worker at most once per
    # wal_retrieve_retry_interval (default 5 s): a cutover that comes sooner after the previous
    # one waits that long for the catch-up. 100 ms keeps 40 cutovers in about a minute.
    fast = ("--set", "wal_retrieve_retry_interval=100ms")
    src = Cluster("src", "heroku", "--logical", *fast)
    tgt = Cluster("tgt", "rds", *fast)
    proxy = ledger = None
    try:
        for c in (src, tgt):
            c.admin(LEDGER_DDL)
            c.admin("ALTER TABLE ledger OWNER TO app")
            c.admin("CREATE PUBLICATION ledger_pub FOR TABLE ledger")
        tgt.admin(f"CREATE SUBSCRIPTION fwd_sub CONNECTION '{src.admin_url}' PUBLICATION ledger_pub "
                  "WITH (synchronous_commit = 'on')")
        proxy = Proxy(workdir, {"source": src.url, "target": tgt.url},
                      "pw-" + secrets.token_hex(8), "tok-" + secrets.token_hex(8),
                      '[cutover]\ninitial_backend = "source"\ndrain_timeout = 5\nmax_pause = 20\n')
        proxy.start()
        ledger = Ledger(proxy.dsn(), writers=4)
        ledger.start()
        ledger.wait_for_more(100)
        pauses = []
        for i in range(ROUNDS):
            pauses.append(move(proxy, src, tgt, "target", "fwd_sub", "rev_sub", revert=False))
            ledger.wait_for_more(40, what=f"writes on the target (round {i + 1})")
            pauses.append(move(proxy, tgt, src, "source", "rev_sub", "fwd_sub", revert=True))
            ledger.wait_for_more(40, what=f"writes on the source (round {i + 1})")
        st = proxy.status()
        if (st["state"], st["backend"], st["epoch"]) != ("running", "source", 2 * ROUNDS):
            fail(f"after {ROUNDS} flips and reverts the proxy is {st}")
        ledger.stop()
        lsn_caught_up(src, "fwd_sub")
        n, errors = ledger.check(src.url, "the source")
        ledger.check(tgt.url, "the target")
        pauses.sort()
        ok(f"{ROUNDS} flips and {ROUNDS} reverts with reverse replication: all {n} acknowledged "
           f"rows present exactly once on the source and on the target; writer errors {errors}; "
           f"pause->resume p50 {pauses[len(pauses) // 2] * 1000:.0f} ms, "
           f"max {pauses[-1] * 1000:.0f} ms")
        if errors:
            fail(f"{errors} writer errors: a flip under the proxy must not surface an error")
        print(f"ledger through {2 * ROUNDS} cutovers passed in {time.monotonic() - t_start:.1f} s")
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
        src.stop()
        tgt.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
