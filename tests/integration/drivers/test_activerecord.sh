#!/usr/bin/env bash
# ActiveRecord 6.1 (Debian ruby-activerecord, postgresql adapter over ruby-pg) through
# pgcutover-proxy with 16 threads on a pool of 2, in transaction mode and in session mode:
# prepared_statements: true (every query a named statement), a statement pool of 3 that
# DEALLOCATEs as SQL, models, transactions that raise and roll back, COPY through the raw
# connection; every result checked, totals checked in PostgreSQL afterwards
# (driver_harness.bash).
. "$(dirname "$0")/driver_harness.bash"
drivers_run activerecord ruby "$DRV_DIR/activerecord_workload.rb"
