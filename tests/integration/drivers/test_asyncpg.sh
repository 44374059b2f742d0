#!/usr/bin/env bash
# asyncpg (Debian python3-asyncpg) through pgcutover-proxy with 16 clients on a pool of 2, in
# transaction mode and in session mode: asyncpg prepares every statement (a tiny statement
# cache makes it Close and re-Parse constantly; a quarter of the clients have no cache and use
# the unnamed statement across transactions), conn.prepare() reused across transactions,
# executemany pipelines (one with a failing row), transactions that fail and roll back,
# copy_records_to_table / copy_from_query; every result checked, totals checked in PostgreSQL
# afterwards (driver_harness.bash).
. "$(dirname "$0")/driver_harness.bash"
drivers_run asyncpg /usr/bin/python3 "$DRV_DIR/asyncpg_workload.py"
