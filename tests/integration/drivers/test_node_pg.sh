#!/usr/bin/env bash
# node-postgres (`pg` and pg-copy-streams from the npm registry, pinned in package.json and
# installed by deploy/bootstrap.sh) through pgcutover-proxy with 16 clients on a pool of 2, in
# transaction mode and in session mode: named queries ({name, text, values}), a named query
# with a syntax error, failing transactions, COPY FROM / TO; every result checked, totals
# checked in PostgreSQL afterwards (driver_harness.bash).
. "$(dirname "$0")/driver_harness.bash"
[ -d "$DRV_DIR/node_modules/pg" ] && [ -d "$DRV_DIR/node_modules/pg-copy-streams" ] ||
  fail "node-postgres missing: run deploy/bootstrap.sh (it fetches it into tests/integration/drivers/node_modules)"
drivers_run node-postgres node "$DRV_DIR/node_pg_workload.js"
