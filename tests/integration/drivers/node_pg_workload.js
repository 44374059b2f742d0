// node-postgres workload for test_node_pg.sh (see driver_harness.bash for the common work).
// Named queries ({name, text, values}): node-postgres sends Parse + Bind + Describe + Execute +
// Sync the first time a connection runs a name and Bind + Describe + Execute + Sync afterwards,
// so every later use lands on whatever server connection the proxy picks. Also: a named query
// with a syntax error (and the connection going on), failing transactions, COPY FROM / TO
// through pg-copy-streams, 16 clients on one event loop.
'use strict';
const { Client } = require('pg');
const { from: copyFrom, to: copyTo } = require('pg-copy-streams');
const { pipeline } = require('node:stream/promises');
const { Readable, Writable } = require('node:stream');

const env = process.env;
const CLIENTS = Number(env.DRV_CLIENTS || 16);
const ROUNDS = Number(env.DRV_ROUNDS || 5);
const RECONNECT = env.DRV_RECONNECT === '1';
const COPY_ROWS = 5;
const payload = (w, r, i) => `${w}-${r}-${i}`;

class Checks {
  constructor() { this.passed = 0; }
  eq(got, want, what) {
    const g = JSON.stringify(got);
    const e = JSON.stringify(want);
    if (g !== e) throw new Error(`${what}: got ${g}, want ${e}`);
    this.passed++;
  }
}

const Q = {
  balance: 'SELECT balance::int AS b FROM drv_accounts WHERE id = $1',
  credit: 'UPDATE drv_accounts SET balance = balance + $1 WHERE id = $2',
  ledger: "INSERT INTO drv_ledger VALUES ($1, $2, $3, 'ok')",
  badRow: "INSERT INTO drv_ledger VALUES ($1, $2, 1000, 'rolled back')",
  divide: 'SELECT 1 / $1::int AS q',
  notOk: "SELECT count(*)::int AS n FROM drv_ledger WHERE worker = $1 AND note <> 'ok'",
};
const named = (name, values) => ({ name, text: Q[name], values });

async function connect() {
  const client = new Client({
    host: env.DRV_HOST, port: Number(env.DRV_PORT), user: env.DRV_USER, password: env.DRV_PASSWORD,
    database: env.DRV_DBNAME, ssl: env.DRV_SSLMODE === 'require' ? { rejectUnauthorized: false } : false,
    connectionTimeoutMillis: 20000,
  });
  await client.connect();
  return client;
}

async function oneRound(client, c, w, r) {
  const at = `worker ${w} round ${r}`;
  c.eq((await client.query(named('balance', [w]))).rows, [{ b: r * w }], `${at}: balance before`);

  await client.query('BEGIN');
  c.eq((await client.query(named('credit', [w, w]))).rowCount, 1, `${at}: update count`);
  c.eq((await client.query(named('ledger', [w, r, w]))).rowCount, 1, `${at}: insert count`);
  await client.query('COMMIT');

  await client.query('BEGIN');
  await client.query(named('badRow', [w, r]));
  try {
    await client.query(named('divide', [0]));
    throw new Error(`${at}: 1 / 0 did not fail`);
  } catch (e) {
    c.eq(e.code, '22012', `${at}: division by zero`);
  }
  await client.query('ROLLBACK');
  c.eq((await client.query(named('notOk', [w]))).rows, [{ n: 0 }], `${at}: rolled-back rows visible`);

  // A named query PostgreSQL refuses: node-postgres does not remember it as parsed, the
  // connection goes on.
  try {
    await client.query({ name: `broken_${r}`, text: 'SELEC 1' });
    throw new Error(`${at}: a syntax error was accepted`);
  } catch (e) {
    c.eq(e.code, '42601', `${at}: syntax error`);
  }
  c.eq((await client.query(named('divide', [1]))).rows, [{ q: 1 }], `${at}: after the syntax error`);

  const rows = [];
  for (let i = 0; i < COPY_ROWS; i++) rows.push(`${w}\t${r}\t${i}\t${payload(w, r, i)}\n`);
  await pipeline(Readable.from(rows), client.query(copyFrom('COPY drv_copied (worker, round, i, payload) FROM STDIN')));
  let out = '';
  await pipeline(
    client.query(copyTo(`COPY (SELECT i, payload FROM drv_copied WHERE worker = ${w} AND round = ${r} ORDER BY i) TO STDOUT`)),
    new Writable({ write(chunk, _enc, done) { out += chunk.toString(); done(); } }));
  let want = '';
  for (let i = 0; i < COPY_ROWS; i++) want += `${i}\t${payload(w, r, i)}\n`;
  c.eq(out, want, `${at}: COPY TO rows`);
}

async function worker(w) {
  const c = new Checks();
  let client = null;
  try {
    for (let r = 0; r < ROUNDS; r++) {
      if (client === null || RECONNECT) {
        if (client !== null) await client.end();
        client = await connect();
      }
      await oneRound(client, c, w, r);
    }
    c.eq((await client.query(named('balance', [w]))).rows, [{ b: ROUNDS * w }], `worker ${w}: final balance`);
    return { passed: c.passed };
  } catch (e) {
    return { passed: c.passed, failure: `worker ${w}: ${e.stack}` };
  } finally {
    if (client !== null) await client.end().catch(() => {});
  }
}

async function main() {
  const results = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => worker(i + 1)));
  const failures = results.filter((x) => x.failure).map((x) => x.failure);
  const passed = results.reduce((n, x) => n + x.passed, 0);
  const version = require('pg/package.json').version;
  if (failures.length > 0) {
    for (const f of failures.slice(0, 5)) console.error(`FAIL: ${f}`);
    console.error(`node-postgres ${version}: ${failures.length} worker(s) failed`);
    process.exit(1);
  }
  console.log(`node-postgres ${version}: ${passed} checks passed`);
}

main();
