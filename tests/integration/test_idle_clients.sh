#!/usr/bin/env bash
# What an idle logged-in client costs the proxy, and that idle clients still work. 300 clients
# log in over SCRAM (transaction mode), the proxy's RSS is read, 1,200 more log in, RSS again:
# the difference per client is the marginal cost of an idle client, fixed costs excluded. It must
# stay under 3 KiB (docs/benchmarks.md measures ~1.5 KB: a parked client holds no coroutine
# frame and no read buffer; a relay waiting in its coroutine, as before, cost ~4.5 KB, and a
# 4 KiB read buffer held while idle ~8 KB). The same for clients that ran one query before going
# idle (plain-query): an application's pooled connection between requests, which must give back
# what the transaction took. Then every client is still connected, and some of them run
# queries, one of them two pipelined in one write.
# The same again with TLS clients (sslmode=require's SSLRequest and handshake): under 24 KiB
# each (docs/benchmarks.md measures ~17 KB, as PgBouncer; through asio::ssl::stream, as before,
# it was ~72 KB). Each kind runs on a freshly started proxy: memory the previous set freed
# stays in the process and would make the next set look free.
# Under ASan (PGCUTOVER_SANITIZED=1) memory is the sanitizer's: the figure is printed, not bound.
. "$(dirname "$0")/../lib/proxy_harness.bash"

first=300
more=1200
ulimit -n $((first + more + 1024)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((first + more + 200)) ] || fail "ulimit -n $(ulimit -n) is too low for $((first + more)) clients"

pgc_start db plain >/dev/null
export PROXY_TEST_SOURCE_URL=$DB_URL PROXY_TEST_TARGET_URL=$DB_URL
proxy_write_config "$PROXY_DIR/proxy.toml" transaction 2 allow
proxy_start "$PROXY_DIR/proxy.toml"
[ "$(proxy_psql "$(proxy_dsn disable)" -c 'select 1')" = 1 ] || fail "a query through the proxy failed"

for kind in plain plain-query tls; do
if [ $kind != plain ]; then
  proxy_stop
  proxy_start "$PROXY_DIR/proxy.toml"
fi
bound=3072
[ $kind = tls ] && bound=24576
out=$(timeout 300 /usr/bin/python3 - "$top/tests/bench" "$PROXY_PORT" "$PROXY_USER_PASSWORD" "$PROXY_PID" "$first" "$more" $kind <<'PY'
import asyncio, json, struct, sys
sys.path.insert(0, sys.argv[1])
import idle_clients as ic  # the benchmark's raw client: SCRAM login (TLS first if asked), VmRSS

port, password, pid = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
first, more = int(sys.argv[5]), int(sys.argv[6])
tls = ic._tls_context() if sys.argv[7] == "tls" else None
first_query = sys.argv[7] == "plain-query"


async def main():
    conns = []
    gate = asyncio.Semaphore(100)

    async def one():
        async with gate:
            conn = await asyncio.wait_for(ic.login("127.0.0.1", port, "app", password, "app", tls), 60)
            if first_query:
                await asyncio.wait_for(ic.query(*conn), 60)
            conns.append(conn)

    await asyncio.gather(*(one() for _ in range(first)))
    before = ic.rss_kib(pid)
    await asyncio.gather(*(one() for _ in range(more)))
    after = ic.rss_kib(pid)
    alive = sum(1 for r, w in conns if not r.at_eof())

    async def query(reader, writer, count):
        # `count` queries in one write (pipelined): each answered up to its ReadyForQuery.
        q = b"select 41 + 1\0"
        writer.write(b"Q" + struct.pack("!I", len(q) + 4) + q)
        writer.write((b"Q" + struct.pack("!I", len(q) + 4) + q) * (count - 1))
        await writer.drain()
        rows = []
        while len(rows) < count:
            kind, body = await asyncio.wait_for(ic._read(reader), 30)
            if kind == b"D":
                rows.append(body[6:].decode())
            elif kind == b"E":
                raise RuntimeError("query failed: " + body.decode(errors="replace"))
        while kind != b"Z" or len(rows) < count:
            kind, body = await asyncio.wait_for(ic._read(reader), 30)
        return rows

    answers = []
    for i, (r, w) in enumerate(conns[:: len(conns) // 20]):
        answers += await query(r, w, 2 if i == 0 else 1)
    for r, w in conns:
        w.write(b"X\0\0\0\4")
        w.close()
    await asyncio.sleep(0.5)  # the proxy ends these sessions before the next set is measured
    print(json.dumps({"logged_in": len(conns), "alive": alive, "before_kib": before,
                      "after_kib": after, "per_client": (after - before) * 1024 // more,
                      "answers": answers}))


asyncio.run(main())
PY
) || fail "idle clients run failed: $out"
echo "$out"
read -r logged alive per answers < <(/usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["logged_in"], d["alive"], d["per_client"], len([a for a in d["answers"] if a == "42"]))' "$out")
[ "$logged" = $((first + more)) ] || fail "$logged of $((first + more)) clients logged in"
[ "$alive" = "$logged" ] || fail "only $alive of $logged idle clients still connected"
[ "$answers" -ge 21 ] || fail "idle clients' queries: $answers answers of 42, want at least 21"
pass "$kind: $logged idle clients logged in and stayed connected; $answers queries from idle clients answered (two pipelined)"
if [ "${PGCUTOVER_SANITIZED:-0}" = 1 ]; then
  pass "$kind: marginal cost of an idle client under ASan: $per bytes (not bound: the sanitizer's memory)"
else
  [ "$per" -lt $bound ] || fail "$kind: an idle client costs $per bytes (bound $bound): something is held while idle"
  pass "$kind: marginal cost of an idle client: $per bytes (bound $bound)"
fi
done
! grep -q "protocol\|bug_" "$PROXY_DIR/proxy.log" || fail "the proxy logged a protocol problem: $(grep -m3 'protocol\|bug_' "$PROXY_DIR/proxy.log")"
proxy_stop
pass "idle clients"
