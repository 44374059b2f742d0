#!/usr/bin/env bash
# ruby-pg (Debian ruby-pg) through pgcutover-proxy with 16 threads on a pool of 2, in
# transaction mode and in session mode: prepare (PQprepare) / exec_prepared across
# transactions, DEALLOCATE as SQL and re-prepare of the same name with another text, a
# statement with a syntax error, a libpq pipeline with an error in the middle, failing
# transactions, COPY in and out; every result checked, totals checked in PostgreSQL afterwards
# (driver_harness.bash).
. "$(dirname "$0")/driver_harness.bash"
drivers_run ruby-pg ruby "$DRV_DIR/ruby_pg_workload.rb"
