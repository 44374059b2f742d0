#!/usr/bin/env bash
# psycopg 3 (Debian python3-psycopg) through pgcutover-proxy with 16 clients on a pool of 2, in
# transaction mode and in session mode: every query a named server-side prepared statement
# (prepare_threshold=0), psycopg's own DEALLOCATE / DEALLOCATE ALL as SQL, pipeline mode with
# and without an error in the middle, transactions that fail and roll back, COPY in and out;
# every result checked, totals checked in PostgreSQL afterwards (driver_harness.bash).
. "$(dirname "$0")/driver_harness.bash"
drivers_run psycopg /usr/bin/python3 "$DRV_DIR/psycopg_workload.py"
