// The fleet ledger: gateways writing one PostgreSQL database (state.ledger backend postgres).
//
// A real PostgreSQL server (lib/postgres.mjs: initdb into a temp dir, 127.0.0.1 only) and a priced
// fake upstream (lib/routing_upstream.mjs, policy deployment pa/m: 1000 + 200 tokens at 10 / 20 USD
// per 1M = exactly $0.014 per answer). Skipped, saying why, only when initdb is not installed.
//   1. Start-up refusals that need no server: url_env naming an unset variable, a server that is
//      not there (the error names it, never the password).
//   2. Two replicas started at once (the schema is created once, under an advisory lock) take load
//      from 16 clients; replica A is killed with SIGKILL mid-load, B keeps serving. Then, from the
//      database itself: every request a client received in full is there exactly once at the cost
//      the client saw; a client that saw a cost at all has its row; no id twice, no phantom row;
//      `gateway spend` (same config) and GET /admin/spend on either replica (A restarted) answer
//      for the whole fleet with the totals of the rows.
//   3. The server stopped while requests are at the upstream: the ledger reports failing (its idle
//      probe), new requests are refused with 503 spend_ledger_unavailable and /readyz is 503; the
//      upstream then finishes, the entries wait in the queue (gateway_ledger_queue_depth); the
//      server restarted: served again and the queued entries land, each once.
//   4. The server stopped again and the gateway shut down with entries unwritten: they go to
//      state.ledger.recovery_path; the file is then given duplicate lines, a line for an entry the
//      database already has and a torn last line; the next start imports it and the database holds
//      each entry once (ON CONFLICT on (request_id, attempt)).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { startGateway, defaultConfig, tmpDir, toYaml, request, chatStream, userMsg, run, sleep, withTimeout, GATEWAY_BIN } from './lib/gateway.mjs';
import { startUpstream, pricedPolicy } from './lib/routing_upstream.mjs';
import { scrape, metricValue, freePort } from './lib/prometheus.mjs';
import { startPostgres, postgresMissing } from './lib/postgres.mjs';

const USAGE = { prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200 };
const COST = 14_000_000_000n; // pico-dollars
const KEY = 'gwk_fleet_' + crypto.randomBytes(12).toString('hex');
const H = { authorization: `Bearer ${KEY}` };
const URL_ENV = 'GATEWAY_LEDGER_URL';
const RUN = crypto.randomBytes(3).toString('hex');
const skipReason = postgresMissing();

let pg, up, dir, policyPath;
const gateways = [];

before(async () => {
  dir = tmpDir('gw-ledger-pg-');
  policyPath = path.join(dir, 'policy.yaml');
  fs.writeFileSync(policyPath, pricedPolicy('ledger-pg'));
  up = await startUpstream({ name: 'pa', usage: USAGE, delayMs: 20, contentDelayMs: 20 });
  if (skipReason) return;
  pg = await startPostgres();
  process.env[URL_ENV] = await pg.createDb('ledger'); // inherited by the gateways and `gateway spend`
});

after(async () => {
  for (const gw of gateways) {
    if (!gw.exited) {
      gw.kill('SIGKILL');
      await gw.waitExit(5000).catch(() => {});
    }
  }
  await up?.close();
  await pg?.close();
  delete process.env[URL_ENV];
});

function writeConfig(name, ledger) {
  const c = defaultConfig();
  delete c.models;
  c.server.workers = 2;
  c.providers = { pa: { type: 'openai_compatible', base_url: up.baseUrl } };
  c.policy = policyPath;
  c.routing = { policy_poll_ms: 0 };
  c.tenants = { fleetco: { keys: [{ id: 'fk', sha256: crypto.createHash('sha256').update(KEY).digest('hex') }] } };
  c.state = { ledger };
  const p = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(p, toYaml(c));
  return p;
}

async function start(cfgPath, env = {}) {
  const gw = await startGateway({ configPath: cfgPath, env });
  gateways.push(gw);
  return gw;
}

function usdToPico(s) {
  const m = /^(\d+)(?:\.(\d{0,12}))?$/.exec(String(s).trim());
  if (!m) throw new Error(`not a USD amount: ${JSON.stringify(s)}`);
  return BigInt(m[1]) * 10n ** 12n + BigInt((m[2] || '').padEnd(12, '0') || '0');
}

const show = (r) => JSON.stringify(r, (k, v) => (typeof v === 'bigint' ? String(v) : v));
const body = (stream) => ({ model: 'priced', messages: userMsg('fleet'), max_tokens: 200, stream });

// One request; resolves {id, stream, full, costSeen, status, code}. Never rejects.
async function one(gw, id, stream) {
  const rec = { id, stream, full: false, costSeen: null, status: null, code: null, error: null };
  try {
    if (!stream) {
      const r = await request(gw.url + '/v1/chat/completions', { method: 'POST', body: body(false), headers: { ...H, 'x-request-id': id }, timeoutMs: 15000 });
      rec.status = r.status;
      rec.code = r.json?.error?.code ?? null;
      if (r.headers['x-gateway-cost-usd'] !== undefined) rec.costSeen = usdToPico(r.headers['x-gateway-cost-usd']);
      rec.full = r.status === 200 && !!r.json?.choices?.[0]?.message && rec.costSeen !== null;
    } else {
      const s = await chatStream(gw, body(true), { headers: { ...H, 'x-request-id': id }, timeoutMs: 15000 });
      rec.status = s.status;
      const c = s.events.flatMap((e) => e.comments).find((x) => x.startsWith('x-gateway-cost-usd:'));
      if (c) rec.costSeen = usdToPico(c.slice('x-gateway-cost-usd:'.length));
      rec.full = s.status === 200 && s.done && rec.costSeen !== null;
    }
  } catch (e) {
    rec.error = String(e.message || e);
  }
  return rec;
}

// Every row, by client request id.
async function ledgerRows() {
  const out = await pg.psql('SELECT client_request_id, request_id, attempt, cost_pico, status, tenant, key_id, ts_ms FROM spend', 'ledger');
  const byId = new Map();
  const rows = out.split('\n').filter(Boolean).map((l) => {
    const [id, rid, attempt, cost, status, tenant, key, ts] = l.split('|');
    return { id, rid, attempt: Number(attempt), cost: BigInt(cost), status, tenant, key, ts: Number(ts) };
  });
  for (const r of rows) byId.set(r.id, [...(byId.get(r.id) ?? []), r]);
  return { rows, byId };
}

async function dbTotals() {
  const [n, sum] = (await pg.psql('SELECT COUNT(*), COALESCE(SUM(cost_pico), 0) FROM spend', 'ledger')).trim().split('|');
  return { requests: Number(n), cost: BigInt(sum) };
}

async function until(what, fn, timeoutMs = 15000) {
  const end = performance.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

async function metric(gw, name) {
  return metricValue((await scrape(gw)).samples, name);
}

async function spendCli(cfgPath, by = 'tenant') {
  const r = await run(GATEWAY_BIN, ['spend', '--config', cfgPath, '--by', by], { timeoutMs: 15000 });
  assert.equal(r.code, 0, `gateway spend: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

test('start-up refusals: url_env names an unset variable; the server is not there (named, the password never)', async () => {
  const unsetVar = 'GATEWAY_TEST_LEDGER_URL_UNSET_' + RUN;
  const cfg = writeConfig('unset', { backend: 'postgres', url_env: unsetVar });
  const serve = await run(GATEWAY_BIN, ['serve', '--config', cfg], { timeoutMs: 15000 });
  assert.equal(serve.code, 2, serve.stderr);
  assert.match(serve.stderr, new RegExp(`state\\.ledger\\.url_env names '${unsetVar}', which is not set`));
  const spend = await run(GATEWAY_BIN, ['spend', '--config', cfg], { timeoutMs: 15000 });
  assert.equal(spend.code, 1, spend.stderr);
  assert.match(spend.stderr, /which is not set/);

  // `gateway check` needs no secret, but says the variable is missing.
  const checked = await run(GATEWAY_BIN, ['check', cfg], { timeoutMs: 15000 });
  assert.equal(checked.code, 0, checked.stderr);
  assert.match(checked.stdout, /: OK/);
  assert.match(checked.stderr, new RegExp(`note: state\\.ledger\\.url_env names '${unsetVar}', which is not set here`));

  const bad = writeConfig('badbackend', { backend: 'postgresql', url_env: unsetVar });
  const check = await run(GATEWAY_BIN, ['check', bad], { timeoutMs: 15000 });
  assert.equal(check.code, 1, check.stdout);
  assert.match(check.stderr, /state\.ledger\.backend must be sqlite or postgres \(got 'postgresql'\)/);

  // Nothing listens on a port just freed; the URL carries a password that must not be printed.
  const port = await freePort();
  const cfg2 = writeConfig('nowhere', { backend: 'postgres', url_env: 'GATEWAY_TEST_LEDGER_URL_NOWHERE' });
  const r = await run('env', [`GATEWAY_TEST_LEDGER_URL_NOWHERE=postgres://gw:s3cret-pw-${RUN}@127.0.0.1:${port}/ledger`, GATEWAY_BIN, 'serve', '--config', cfg2], { timeoutMs: 20000 });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`spend ledger postgres 127\\.0\\.0\\.1:${port}/ledger: cannot connect`), r.stderr);
  assert.ok(!r.stderr.includes(`s3cret-pw-${RUN}`), 'password not in the log');
});

test('two replicas under load, one killed with SIGKILL: every complete answer in the ledger once; spend and /admin/spend answer for the fleet', { skip: skipReason ?? false }, async () => {
  const cfg = writeConfig('fleet', { backend: 'postgres', url_env: URL_ENV });
  // At once: both create the schema if absent (the advisory lock serialises them).
  let [a, b] = await Promise.all([start(cfg), start(cfg)]);
  assert.match(a.stderr, new RegExp(`spend ledger postgres 127\\.0\\.0\\.1:${pg.port}/ledger`));
  assert.equal((await pg.psql("SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'spend' AND indexname = 'spend_tenant_ts'", 'ledger')).trim(), '1');

  const results = [];
  let stopA = false, stopB = false;
  const clients = Array.from({ length: 16 }, (_, w) =>
    (async () => {
      const gw = w % 2 ? b : a;
      for (let i = 0; !(w % 2 ? stopB : stopA); i++) {
        const r = await one(gw, `fleet-${RUN}-${w % 2 ? 'b' : 'a'}-${w}-${i}`, (w + i) % 4 < 2);
        r.replica = w % 2 ? 'b' : 'a';
        results.push(r);
      }
    })(),
  );
  // Load until each replica has answered plenty (bounded), then kill A with requests in flight.
  await until('40 complete answers from each replica', () => ['a', 'b'].every((x) => results.filter((r) => r.replica === x && r.full).length >= 40), 30000);
  a.kill('SIGKILL');
  stopA = true;
  assert.equal((await a.waitExit(5000)).signal, 'SIGKILL');
  const bBefore = results.filter((r) => r.replica === 'b' && r.full).length;
  await until('B serving on after the kill', () => results.filter((r) => r.replica === 'b' && r.full).length >= bBefore + 20, 20000);
  stopB = true;
  await withTimeout(Promise.all(clients), 20000, 'clients finishing');

  const full = results.filter((r) => r.full);
  const cut = results.filter((r) => !r.full);
  const cutA = cut.filter((r) => r.replica === 'a');
  console.log(`# ${results.length} requests: ${full.length} complete (${full.filter((r) => r.replica === 'a').length} from A, ${full.filter((r) => r.replica === 'b').length} from B), ${cut.length} cut (${cutA.length} by the kill of A)`);
  assert.ok(cutA.length >= 1, 'requests were in flight on A at the kill');
  assert.deepEqual(cut.filter((r) => r.replica === 'b'), [], 'B lost nothing');
  for (const r of full) assert.equal(r.costSeen, COST, `${r.id}: cost`);

  const { rows, byId } = await ledgerRows();
  const sent = new Map(results.map((r) => [r.id, r]));
  assert.deepEqual([...byId].filter(([, v]) => v.length !== 1).map(([k]) => k), [], 'no request counted twice');
  assert.deepEqual(rows.filter((r) => !sent.has(r.id)).map((r) => r.id), [], 'no row for a request no client sent');
  assert.deepEqual(full.filter((r) => !byId.has(r.id)).map((r) => r.id), [], 'every complete answer is in the ledger');
  assert.deepEqual(cut.filter((r) => r.costSeen !== null && !byId.has(r.id)).map((r) => r.id), [], 'a client that saw a cost has its row');
  for (const r of rows) {
    assert.equal(r.cost, COST, `${r.id}: costed whole`);
    assert.equal(r.status, 'ok');
    assert.equal(r.tenant, 'fleetco');
    assert.equal(r.key, 'fk');
    assert.equal(r.attempt, 1);
    assert.match(r.rid, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'the gateway id (UUIDv7) is the key');
    assert.ok(Math.abs(r.ts - Date.now()) < 3_600_000, `${r.id}: ts_ms is Unix ms (${r.ts})`);
  }

  const db = await dbTotals();
  assert.equal(db.requests, rows.length);
  for (const by of ['tenant', 'deployment', 'day']) {
    const cli = await spendCli(cfg, by);
    assert.equal(BigInt(cli.total.cost_pico), db.cost, `gateway spend --by ${by}`);
    assert.equal(cli.total.requests, db.requests);
    assert.equal(cli.rows.reduce((s, x) => s + BigInt(x.cost_pico), 0n), db.cost);
    if (by === 'day') for (const x of cli.rows) assert.match(x.key, /^\d{4}-\d{2}-\d{2}$/);
    if (by === 'tenant') assert.deepEqual(cli.rows.map((x) => x.key), ['fleetco']);
  }
  // A restarted replica answers for the fleet too (its own requests and B's).
  a = await start(cfg);
  for (const gw of [a, b]) {
    const adm = await request(gw.url + '/admin/spend?by=tenant');
    assert.equal(adm.status, 200, adm.text);
    assert.equal(BigInt(adm.json.total.cost_pico), db.cost);
    assert.equal(adm.json.total.requests, db.requests);
  }
  const bad = await request(b.url + '/admin/spend?by=week');
  assert.equal(bad.status, 400, 'a bad group_by is the client\'s error');
  await a.stop();
  await b.stop();
});

// Requests that reach the upstream and wait there until released.
function holdUpstream() {
  let release;
  const hold = new Promise((r) => (release = r));
  up.set({ hold });
  return () => {
    up.set({ hold: undefined });
    release();
  };
}

async function sendHeld(gw, prefix, n) {
  const ids = Array.from({ length: n }, (_, i) => `${prefix}-${RUN}-${i}`);
  const pending = ids.map((id, i) => one(gw, id, i % 2 === 0));
  await until(`${n} requests at the upstream`, () => ids.every((id) => up.requests.some((r) => r.headers['x-request-id'] === id)));
  return { ids, pending };
}

test('server stopped: fail closed, entries kept; restarted: served again and the queued entries land once', { skip: skipReason ?? false }, async () => {
  const recovery = path.join(dir, 'recovery.jsonl');
  const cfg = writeConfig('outage', { backend: 'postgres', url_env: URL_ENV, recovery_path: recovery });
  const gw = await start(cfg);
  const first = await one(gw, `outage-first-${RUN}`, false);
  assert.ok(first.full, show(first));

  const release = holdUpstream();
  const held = await sendHeld(gw, 'outage-held', 4);
  await pg.stop('fast');
  await until('the ledger to report failing', async () => (await request(gw.url + '/readyz')).status === 503);
  assert.equal((await request(gw.url + '/readyz')).json.status, 'spend_ledger_unavailable');
  const refused = await one(gw, `outage-refused-${RUN}`, false);
  assert.equal(refused.status, 503);
  assert.equal(refused.code, 'spend_ledger_unavailable');
  assert.ok(!up.requests.some((r) => r.headers['x-request-id'] === refused.id), 'a refused request never reaches the upstream');
  assert.equal(await metric(gw, 'gateway_ledger_failing'), 1);
  assert.match(gw.stderr, /spend ledger postgres .*cannot write/);

  release();
  await until('the held entries queued', async () => (await metric(gw, 'gateway_ledger_queue_depth')) === held.ids.length);
  await pg.start();
  const answers = await withTimeout(Promise.all(held.pending), 30000, 'held requests');
  for (const r of answers) assert.ok(r.full, `${r.id} answered in full: ${show(r)}`);
  await until('the queued entries in the database', async () => {
    const { byId } = await ledgerRows();
    return held.ids.every((id) => byId.get(id)?.length === 1);
  });
  await until('ready again', async () => (await request(gw.url + '/readyz')).status === 200);
  assert.equal(await metric(gw, 'gateway_ledger_queue_depth'), 0);
  const again = await one(gw, `outage-again-${RUN}`, true);
  assert.ok(again.full, show(again));
  const { byId } = await ledgerRows();
  for (const id of [first.id, ...held.ids, again.id]) assert.equal(byId.get(id)?.length, 1, `${id} once`);
  assert.equal(byId.has(refused.id), false);
  await gw.stop();
});

test('shut down during an outage: the recovery file, with duplicates added, is imported once each', { skip: skipReason ?? false }, async () => {
  const recovery = path.join(dir, 'recovery-2.jsonl');
  const cfg = writeConfig('recovery', { backend: 'postgres', url_env: URL_ENV, recovery_path: recovery });
  let gw = await start(cfg);
  const known = await one(gw, `recover-known-${RUN}`, false);
  assert.ok(known.full, show(known));
  const before = await dbTotals();

  const release = holdUpstream();
  const held = await sendHeld(gw, 'recover-held', 3);
  await pg.stop('fast');
  await until('the ledger to report failing', async () => (await request(gw.url + '/readyz')).status === 503);
  release();
  await until('the held entries queued', async () => (await metric(gw, 'gateway_ledger_queue_depth')) === held.ids.length);
  // SIGTERM: the drain (the held answers wait out their bounded durability wait), a short last
  // flush, then the spill. Longer than the harness's stop() allows before its SIGKILL.
  gw.kill('SIGTERM');
  const exit = await gw.waitExit(40000);
  assert.equal(exit.code, 0, gw.stderr.slice(-2000));
  await Promise.all(held.pending);
  assert.match(gw.stderr, /3 unwritten entries saved to .*recovery-2\.jsonl/);
  const lines = fs.readFileSync(recovery, 'utf8').split('\n').filter(Boolean);
  assert.deepEqual(lines.map((l) => JSON.parse(l).client_request_id).sort(), [...held.ids].sort());

  // Hostile edits: every line twice, the entry the database already has, a torn last line.
  await pg.start();
  // The stored row in the recovery file's own format (its column names are the JSON keys).
  const knownLine = (await pg.psql(`SELECT row_to_json(s) FROM spend s WHERE client_request_id = '${known.id}'`, 'ledger')).trim();
  assert.equal(JSON.parse(knownLine).client_request_id, known.id);
  fs.appendFileSync(recovery, lines.join('\n') + '\n' + knownLine + '\n{"ts_ms":17');
  gw = await start(cfg);
  assert.match(gw.stderr, /recovery file line 8 is not an entry, skipped/);
  assert.match(gw.stderr, /imported 7 entries from .*recovery-2\.jsonl/);
  assert.equal(fs.existsSync(recovery), false, 'the imported file is removed');
  const { byId } = await ledgerRows();
  for (const id of [known.id, ...held.ids]) assert.equal(byId.get(id)?.length, 1, `${id} once`);
  const after = await dbTotals();
  assert.equal(after.requests, before.requests + held.ids.length);
  assert.equal(after.cost, before.cost + BigInt(held.ids.length) * COST);
  const adm = await request(gw.url + '/admin/spend');
  assert.equal(BigInt(adm.json.total.cost_pico), after.cost);
  assert.equal(BigInt((await spendCli(cfg)).total.cost_pico), after.cost);
  await gw.stop();
});
