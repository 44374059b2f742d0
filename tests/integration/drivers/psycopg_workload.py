"""psycopg 3 workload for test_psycopg.sh (see driver_harness.bash for the common work).

prepare_threshold=0: every query with parameters is a named server-side prepared statement
(_pg3_N) from its first use. prepared_max=4: psycopg rotates its cache by sending
`DEALLOCATE _pg3_N` as SQL, and after each ROLLBACK it sends `DEALLOCATE ALL`, so statement
names come and go all the time. Odd rounds run the transaction inside conn.pipeline(); every
round also runs a pipeline with an error in the middle (what follows it is aborted, what
preceded it stands, the connection goes on)."""
import os
import sys
import threading
import traceback

import psycopg
from psycopg import errors, sql

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driver_workload as dw  # noqa: E402


def connect():
    conn = psycopg.connect(host=dw.HOST, port=dw.PORT, user=dw.USER, password=dw.PASSWORD,
                           dbname=dw.DBNAME, sslmode="disable", autocommit=True, prepare_threshold=0,
                           connect_timeout=20)
    conn.prepared_max = 4
    if os.environ.get("DRV_TRACE"):  # debugging aid: libpq's protocol trace of one worker
        conn.pgconn.trace(os.open(os.environ["DRV_TRACE"], os.O_WRONLY | os.O_CREAT | os.O_APPEND))
    return conn


def one_round(conn, c, w, r):
    row = conn.execute("SELECT balance FROM drv_accounts WHERE id = %s", (w,)).fetchone()
    c.eq(row, (r * w,), f"worker {w} round {r}: balance before")

    if r % 2 == 0:
        with conn.transaction():
            cur = conn.execute("UPDATE drv_accounts SET balance = balance + %s WHERE id = %s", (w, w))
            c.eq(cur.rowcount, 1, "update rowcount")
            cur = conn.execute("INSERT INTO drv_ledger VALUES (%s, %s, %s, 'ok')", (w, r, w))
            c.eq(cur.rowcount, 1, "insert rowcount")
    else:
        with conn.pipeline():
            with conn.transaction():
                up = conn.execute("UPDATE drv_accounts SET balance = balance + %s WHERE id = %s", (w, w))
                ins = conn.execute("INSERT INTO drv_ledger VALUES (%s, %s, %s, 'ok')", (w, r, w))
                sel = conn.execute("SELECT balance FROM drv_accounts WHERE id = %s", (w,))
        c.eq(up.rowcount, 1, "pipelined update rowcount")
        c.eq(ins.rowcount, 1, "pipelined insert rowcount")
        c.eq(sel.fetchone(), ((r + 1) * w,), "pipelined balance after")

    try:
        with conn.transaction():
            conn.execute("INSERT INTO drv_ledger VALUES (%s, %s, 1000, 'rolled back')", (w, r))
            conn.execute("SELECT 1 / %s", (0,))
        raise AssertionError("1 / 0 did not fail")
    except errors.DivisionByZero:
        c.passed += 1
    row = conn.execute("SELECT count(*) FROM drv_ledger WHERE worker = %s AND note <> 'ok'", (w,)).fetchone()
    c.eq(row, (0,), "rolled-back rows visible")

    # An error in the middle of a pipeline: the statement before it has its result, the one
    # after it is aborted, and the connection is usable afterwards.
    before = after = None
    try:
        with conn.pipeline():
            before = conn.execute("SELECT %s::int + 1", (w,))
            conn.execute("SELECT 1 / %s", (0,))
            # prepare=False: psycopg 3.1.7 keeps the name of a statement whose Parse the
            # server skipped after the error, and later DEALLOCATEs it (26000 straight to
            # PostgreSQL too).
            after = conn.execute("SELECT %s::int * 2", (w,), prepare=False)
        raise AssertionError("pipeline with 1 / 0 did not fail")
    except errors.DivisionByZero:
        c.passed += 1
    c.eq(before.fetchone(), (w + 1,), "result before the pipeline error")
    if after is not None:  # psycopg raises at the failing execute() when its result is in
        try:
            after.fetchone()
            raise AssertionError("statement after the pipeline error has a result")
        except psycopg.Error:
            c.passed += 1
    c.eq(conn.execute("SELECT %s::int * 3", (w,)).fetchone(), (3 * w,), "after the failed pipeline")

    with conn.cursor() as cur:
        with cur.copy("COPY drv_copied (worker, round, i, payload) FROM STDIN") as cp:
            for i in range(dw.COPY_ROWS):
                cp.write_row((w, r, i, dw.copy_payload(w, r, i)))
        c.eq(cur.rowcount, dw.COPY_ROWS, "COPY FROM rows")
        q = sql.SQL("COPY (SELECT i, payload FROM drv_copied WHERE worker = {} AND round = {} ORDER BY i) TO STDOUT")
        with cur.copy(q.format(w, r)) as cp:
            rows = list(cp.rows())
        c.eq(rows, [(str(i), dw.copy_payload(w, r, i)) for i in range(dw.COPY_ROWS)], "COPY TO rows")


def worker(w, results, failures):
    c = dw.Checks()
    conn = None
    try:
        for r in range(dw.ROUNDS):
            if conn is None or dw.RECONNECT:
                if conn is not None:
                    conn.close()
                conn = connect()
            one_round(conn, c, w, r)
        # After all that churn the connection still knows every statement it uses.
        c.eq(conn.execute("SELECT balance FROM drv_accounts WHERE id = %s", (w,)).fetchone(),
             (dw.ROUNDS * w,), "final balance")
    except Exception as e:  # noqa: BLE001 - every failure is reported with its worker
        failures.append(f"worker {w}: {type(e).__name__}: {e}\n{traceback.format_exc(limit=-3)}")
    finally:
        if conn is not None:
            conn.close()
    results.append(c.passed)


def main():
    results, failures = [], []
    threads = [threading.Thread(target=worker, args=(w, results, failures)) for w in range(1, dw.CLIENTS + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dw.report("psycopg " + psycopg.__version__, sum(results), failures)


if __name__ == "__main__":
    main()
