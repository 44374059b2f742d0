"""asyncpg workload for test_asyncpg.sh (see driver_harness.bash for the common work).

asyncpg prepares every statement it runs (named __asyncpg_stmt_N__, Parse + Describe first,
then Bind + Execute); statement_cache_size=3 makes it Close and re-Parse them all the time, and
every fourth worker has no cache at all (the unnamed statement, parsed and bound in separate
round trips, so in different transactions).
Also: conn.prepare() in one transaction and the PreparedStatement used in later ones (so
Describe and Bind land on server connections that never saw its Parse), executemany (many
Bind/Execute pipelined before one Sync, atomic: one bad row rolls the batch back),
copy_records_to_table (binary COPY FROM STDIN), copy_from_query (COPY TO STDOUT), and
transactions that fail, all on 16 connections from one event loop."""
import asyncio
import os
import sys
import traceback

import asyncpg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driver_workload as dw  # noqa: E402


async def connect(w):
    # Every fourth worker runs without a statement cache, as asyncpg is often set up behind
    # PgBouncer: its queries then use the unnamed statement, prepared (Parse + Describe +
    # Sync) in one round trip and bound (Bind + Execute + Sync) in the next.
    return await asyncpg.connect(host=dw.HOST, port=dw.PORT, user=dw.USER, password=dw.PASSWORD,
                                 database=dw.DBNAME, ssl=False, timeout=20,
                                 statement_cache_size=0 if w % 4 == 0 else 3)


async def one_round(conn, c, w, r, prepared):
    c.eq(await conn.fetchval("SELECT balance FROM drv_accounts WHERE id = $1", w), r * w,
         f"worker {w} round {r}: balance before")

    if r % 2 == 0:
        async with conn.transaction():
            c.eq(await conn.execute("UPDATE drv_accounts SET balance = balance + $1 WHERE id = $2", w, w),
                 "UPDATE 1", "update status")
            c.eq(await conn.execute("INSERT INTO drv_ledger VALUES ($1, $2, $3, 'ok')", w, r, w),
                 "INSERT 0 1", "insert status")
    else:
        async with conn.transaction():
            # Prepared in an earlier round (another transaction, maybe another server
            # connection): its Bind must find it prepared wherever this one runs.
            c.eq(await prepared["credit"].fetchval(w, w), (r + 1) * w, "prepared credit")
            await conn.executemany("INSERT INTO drv_ledger VALUES ($1, $2, $3, $4)", [(w, r, w, "ok")])

    try:
        async with conn.transaction():
            await conn.execute("INSERT INTO drv_ledger VALUES ($1, $2, 1000, 'rolled back')", w, r)
            await conn.fetchval("SELECT 1 / $1::int", 0)
        raise AssertionError("1 / 0 did not fail")
    except asyncpg.exceptions.DivisionByZeroError:
        c.passed += 1
    c.eq(await prepared["not_ok"].fetchval(w), 0, "rolled-back rows visible")

    # executemany: a pipeline of Bind/Execute; 10 good rows, then a batch with one bad row in
    # the middle that must leave nothing behind.
    await conn.executemany("INSERT INTO drv_scratch VALUES ($1, $2, $3, 'many')",
                           [(w, r, n) for n in range(10)])
    try:
        await conn.executemany("INSERT INTO drv_scratch VALUES ($1, $2, $3, 'bad batch')",
                               [(w, r, n if n != 3 else None) for n in range(6)])
        raise AssertionError("executemany with a NULL did not fail")
    except asyncpg.exceptions.NotNullViolationError:
        c.passed += 1
    c.eq(await conn.fetchval("SELECT count(*) FROM drv_scratch WHERE worker = $1 AND round = $2", w, r), 10,
         "executemany rows")

    n = await conn.copy_records_to_table(
        "drv_copied", records=[(w, r, i, dw.copy_payload(w, r, i)) for i in range(dw.COPY_ROWS)],
        columns=("worker", "round", "i", "payload"))
    c.eq(n, f"COPY {dw.COPY_ROWS}", "copy_records_to_table status")
    chunks = []

    async def sink(data):
        chunks.append(bytes(data))

    await conn.copy_from_query("SELECT i, payload FROM drv_copied WHERE worker = $1 AND round = $2 ORDER BY i",
                               w, r, output=sink, format="csv")
    c.eq(b"".join(chunks).decode(),
         "".join(f"{i},{dw.copy_payload(w, r, i)}\n" for i in range(dw.COPY_ROWS)), "copy_from_query rows")


async def prepare_statements(conn):
    return {
        "credit": await conn.prepare(
            "UPDATE drv_accounts SET balance = balance + $1 WHERE id = $2 RETURNING balance"),
        "not_ok": await conn.prepare("SELECT count(*) FROM drv_ledger WHERE worker = $1 AND note <> 'ok'"),
    }


async def worker(w, results, failures):
    c = dw.Checks()
    conn = None
    try:
        for r in range(dw.ROUNDS):
            if conn is None or dw.RECONNECT:
                if conn is not None:
                    await conn.close()
                conn = await connect(w)
                prepared = await prepare_statements(conn)
            await one_round(conn, c, w, r, prepared)
        c.eq(await conn.fetchval("SELECT balance FROM drv_accounts WHERE id = $1", w), dw.ROUNDS * w,
             "final balance")
    except Exception as e:  # noqa: BLE001 - every failure is reported with its worker
        failures.append(f"worker {w}: {type(e).__name__}: {e}\n{traceback.format_exc(limit=-3)}")
    finally:
        if conn is not None:
            await conn.close()
    results.append(c.passed)


async def main():
    results, failures = [], []
    await asyncio.gather(*(worker(w, results, failures) for w in range(1, dw.CLIENTS + 1)))
    dw.report("asyncpg " + asyncpg.__version__, sum(results), failures)


if __name__ == "__main__":
    asyncio.run(main())
