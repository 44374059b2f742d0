#!/usr/bin/python3
"""The tightest PgBouncer cutover a user can script, for bench_write_pause.sh: the admin
sessions and the source session are open before the pause, so the pause pays for no login.

  pgbouncer_switch.py <source admin DSN | -> <new [databases] line> <bouncer admin DSN> <ini>...

PAUSE every PgBouncer (at once), then, with a source DSN, wait until the logical slot has
confirmed the source's WAL position at the pause (polled every 2 ms), rewrite each ini's `app =`
line, RELOAD and RESUME every PgBouncer (at once). Prints the JSON a flip report has (steps,
write_pause_ms = PAUSE sent to the last RESUME answered, gate_window_s)."""
import json
import re
import sys
import threading
import time

import psycopg


def on_all(conns, command):
    """The command on every admin console at once (simple protocol, as the console wants)."""
    errors = []

    def run(c):
        try:
            r = c.pgconn.exec_(command.encode())
            if r.status not in (1, 2):  # COMMAND_OK, TUPLES_OK
                errors.append(r.error_message.decode(errors="replace"))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(str(e))

    threads = [threading.Thread(target=run, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit("pgbouncer_switch: %s: %s" % (command, "; ".join(errors)))


def main():
    source_dsn, db_line = sys.argv[1], sys.argv[2]
    pairs = sys.argv[3:]
    dsns, inis = pairs[0::2], pairs[1::2]
    conns = [psycopg.connect(d, autocommit=True) for d in dsns]
    source = psycopg.connect(source_dsn, autocommit=True) if source_dsn != "-" else None
    t0 = time.time()
    on_all(conns, "PAUSE app")
    t_paused = time.time()
    if source is not None:
        lsn = source.execute("select pg_current_wal_lsn()").fetchone()[0]
        deadline = time.time() + 30
        while True:
            ok = source.execute(
                "select confirmed_flush_lsn >= %s from pg_replication_slots "
                "where slot_type = 'logical' and active", (lsn,)).fetchone()
            if ok and ok[0]:
                break
            if time.time() > deadline:
                sys.exit("pgbouncer_switch: the subscription did not reach %s in 30 s" % lsn)
            time.sleep(0.002)
    t_caught = time.time()
    for ini in inis:
        text = open(ini).read()
        open(ini, "w").write(re.sub(r"(?m)^app = .*$", db_line, text))
    on_all(conns, "RELOAD")
    t_reloaded = time.time()
    on_all(conns, "RESUME app")
    t1 = time.time()

    def ms(a, b):
        return (b - a) * 1000.0
    print(json.dumps({
        "ok": True, "outcome": "completed", "method": "pgbouncer",
        "write_pause_ms": ms(t0, t1), "controller_span_ms": ms(t0, t1),
        "gate_window_s": [t0, t1],
        "steps": [{"step": "pause", "ms": ms(t0, t_paused)},
                  {"step": "catch_up", "ms": ms(t_paused, t_caught)},
                  {"step": "reload", "ms": ms(t_caught, t_reloaded)},
                  {"step": "resume", "ms": ms(t_reloaded, t1)}]}))


if __name__ == "__main__":
    main()
