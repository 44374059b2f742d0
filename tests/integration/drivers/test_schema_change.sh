#!/usr/bin/env bash
# A table gains a column while a prepared SELECT * on it is shared by two clients on the one
# server connection of a transaction-mode pool: PostgreSQL answers the stale statement with
# 0A000 "cached plan must not change result type"; that server connection is then retired
# instead of pooled, so the clients' next tries prepare the statement afresh and read the new
# column (a driver's own Close + re-Parse cannot reach a shared server statement).
. "$(dirname "$0")/driver_harness.bash"
export PROXY_TEST_SOURCE_URL=$DB_URL PROXY_TEST_TARGET_URL=$DB_URL
cfg=$PROXY_DIR/proxy.toml
proxy_write_config "$cfg" transaction 1 allow
proxy_start "$cfg"
drivers_reset_schema
drivers_sql -c "INSERT INTO drv_scratch VALUES (1, 0, 0, 'before')" || fail "seeding drv_scratch"
DRV_HOST=127.0.0.1 DRV_PORT=$PROXY_PORT DRV_USER=app DRV_DBNAME=app DRV_PASSWORD=$PROXY_USER_PASSWORD \
  DRV_DIRECT_DSN=$DB_URL timeout 60 /usr/bin/python3 "$DRV_DIR/schema_change_client.py" >"$PROXY_DIR/client.log" 2>&1 ||
  { cat "$PROXY_DIR/client.log" >&2; fail "a prepared statement stayed stale after the schema change"; }
pass "schema change under a shared prepared statement: $(tail -1 "$PROXY_DIR/client.log") ($(grep -c attempt "$PROXY_DIR/client.log") 0A000 answer(s) first)"
