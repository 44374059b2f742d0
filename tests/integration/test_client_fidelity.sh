#!/usr/bin/env bash
# A client cannot tell the proxy from PostgreSQL, with psycopg 3, direct and through the proxy
# in session and in transaction mode:
#  - notifications: a NOTIFY sent by the client's own session arrives with the pid the client
#    was given at login (BackendKeyData, PQbackendPID, psycopg's conn.info.backend_pid);
#    drivers compare the two to skip their own notifications. A notification from another
#    client's session keeps that session's pid, which is never the listener's;
#  - client_encoding asked as "utf-8" or "euc-jp" is reported at login as the server spells it
#    ("UTF8", "EUC_JP"), and text round-trips in that encoding.
. "$(dirname "$0")/../lib/proxy_harness.bash"

pgc_start db plain >/dev/null
export PROXY_TEST_SOURCE_URL=$DB_URL PROXY_TEST_TARGET_URL=$DB_URL
check() { # <label> <dsn>
  /usr/bin/python3 - "$2" <<'PY' || fail "$1: what the client sees differs from direct"
import sys
import psycopg

dsn = sys.argv[1]
with psycopg.connect(dsn, autocommit=True) as me, psycopg.connect(dsn, autocommit=True) as other:
    seen = {}
    me.add_notify_handler(lambda n: seen.__setitem__(n.payload, n.pid))
    me.execute("LISTEN pgcutover_pid_test")
    me.execute("NOTIFY pgcutover_pid_test, 'mine'")
    other.execute("NOTIFY pgcutover_pid_test, 'theirs'")
    for _ in range(200):  # bounded: each query lets the notifications that arrived through
        if len(seen) == 2:
            break
        me.execute("SELECT pg_sleep(0.02)")
    assert set(seen) == {"mine", "theirs"}, seen
    assert seen["mine"] == me.info.backend_pid, (seen, me.info.backend_pid)
    assert seen["theirs"] != me.info.backend_pid, (seen, me.info.backend_pid)
for asked, reported in (("utf-8", "UTF8"), ("euc-jp", "EUC_JP"), ("Unicode", "UTF8")):
    with psycopg.connect(dsn, autocommit=True, client_encoding=asked) as c:
        got = c.info.parameter_status("client_encoding")
        assert got == reported, (asked, got)
        assert c.execute("SELECT %s::text", ["日本語"]).fetchone()[0] == "日本語", asked
print("ok")
PY
}
check direct "$DB_URL"
pass "direct: own notification carries the session's pid; client_encoding reported as UTF8 / EUC_JP"
for mode in session transaction; do
  proxy_write_config "$PROXY_DIR/$mode.toml" "$mode" 4 disable
  proxy_start "$PROXY_DIR/$mode.toml"
  check "$mode mode" "$(proxy_dsn disable)"
  pass "$mode mode: own notification carries the pid the proxy gave the client, another's does not; client_encoding reported as the server spells it"
  proxy_stop
done
