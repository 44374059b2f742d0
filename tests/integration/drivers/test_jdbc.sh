#!/usr/bin/env bash
# pgJDBC (Debian libpostgresql-jdbc-java, default-jdk-headless) through pgcutover-proxy with 16
# clients on a pool of 2, in transaction mode and in session mode: server-side prepared
# statements from the first execution (prepareThreshold -1 and 1), a tiny statement cache,
# executeBatch with and without a failing row, a fetchSize cursor interleaved with other
# statements in one transaction, failing transactions, CopyManager COPY in and out; every result
# checked, totals checked in PostgreSQL afterwards (driver_harness.bash).
. "$(dirname "$0")/driver_harness.bash"
jar=/usr/share/java/postgresql.jar
[ -f "$jar" ] || fail "$jar missing: deploy/bootstrap.sh installs libpostgresql-jdbc-java"
command -v java >/dev/null || fail "java missing: deploy/bootstrap.sh installs default-jdk-headless"
# Compiled once, into the test's own directory (the single-file launcher would compile it
# again for each of the two runs).
mkdir -p "$PROXY_DIR/jdbc"
javac -d "$PROXY_DIR/jdbc" -cp "$jar" "$DRV_DIR/JdbcWorkload.java" || fail "javac JdbcWorkload.java"
drivers_run jdbc java -XX:TieredStopAtLevel=1 -Xshare:auto -cp "$PROXY_DIR/jdbc:$jar" JdbcWorkload
