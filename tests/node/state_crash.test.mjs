// Crash test: under load, `kill -9` the gateway, restart it on the same ledger;
// the ledger's totals equal the sum of the costs in the responses the clients received in full
// (nothing lost, nothing counted twice), and the database opens clean.
//
// Setup: a priced policy catalog deployment `pa/m` (input 10, output 20 USD per 1M tokens) whose fake
// upstream (lib/routing_upstream.mjs) answers after 20 ms (streams: role chunk at once, content
// 20 ms later) with usage 1000 + 200 tokens: every answer costs exactly $0.014. 16 clients, streams
// and non-streams alternating, each request tagged with a client-chosen x-request-id (the gateway
// keeps sane client ids and the ledger stores them in client_request_id; its own id is the key), for
// ~1.5 s; then SIGKILL. Four more clients vanish during that time: streams left at the first event,
// non-streams 5 ms after sending. Before the kill the test waits (bounded) until each vanished
// request has its row: an abandoned attempt is accounted (provider usage, or an estimate) once.
//
// "Received in full": non-stream = 200 with a complete JSON body and x-gateway-cost-usd; stream =
// `data: [DONE]` and the `: x-gateway-cost-usd: N` comment. The gateway writes the ledger entry
// durably BEFORE a response's final bytes (gateway/pipeline/accounting.cpp ledger_durable), so requests cut by the
// kill may or may not be in the ledger. Asserted, reading the ledger per request id with the sqlite3
// CLI (the ledger is documented as an SQLite database; table `spend`):
//   - every request received in full is in the ledger exactly once, at the cost the client saw;
//   - every request whose client saw its cost (header / comment) at all is in the ledger;
//   - no ledger row for a request id no client sent, no request id twice;
//   - ledger total (gateway spend, GET /admin/spend after restart) = sum(received in full) +
//     sum(ledger rows of cut requests), hence sum(full) <= total <= sum(full) + cut * $0.014.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import http from 'node:http';
import { startGateway, defaultConfig, tmpDir, request, chatStream, userMsg, run, sleep, withTimeout, GATEWAY_BIN } from './lib/gateway.mjs';
import { startUpstream, pricedPolicy } from './lib/routing_upstream.mjs';

const USAGE = { prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200 };
const COST = 14_000_000_000n; // pico-dollars
const CLIENTS = 16;
const VANISHERS = 4;
const LOAD_MS = 1500;
const SQLITE = '/usr/bin/sqlite3';
const POLICY = pricedPolicy('state-crash');
const KEY = 'gwk_crash_' + crypto.randomBytes(12).toString('hex');

function usdToPico(s) {
  const m = /^(\d+)(?:\.(\d{0,12}))?$/.exec(String(s).trim());
  if (!m) throw new Error(`not a USD amount: ${JSON.stringify(s)}`);
  return BigInt(m[1]) * 10n ** 12n + BigInt((m[2] || '').padEnd(12, '0') || '0');
}

let up, gw, gw2, cfgPath, ledgerPath;
before(async () => {
  up = await startUpstream({ name: 'pa', usage: USAGE, delayMs: 20, contentDelayMs: 20 });
  const dir = tmpDir('gw-state-crash-');
  fs.writeFileSync(path.join(dir, 'policy.yaml'), POLICY);
  ledgerPath = path.join(dir, 'ledger.db');
  const c = defaultConfig();
  delete c.models;
  c.server.workers = 4;
  c.providers = { pa: { type: 'openai_compatible', base_url: up.baseUrl } };
  c.policy = path.join(dir, 'policy.yaml');
  c.routing = { policy_poll_ms: 0 };
  c.tenants = { crashco: { keys: [{ id: 'ck', sha256: crypto.createHash('sha256').update(KEY).digest('hex') }] } };
  c.state = { ledger_path: ledgerPath };
  cfgPath = path.join(dir, 'gateway.yaml');
  const { toYaml } = await import('./lib/gateway.mjs');
  fs.writeFileSync(cfgPath, toYaml(c));
  gw = await startGateway({ configPath: cfgPath });
});
after(async () => {
  await up?.close();
  if (gw && !gw.exited) gw.kill('SIGKILL');
  await gw2?.stop();
});

const H = { authorization: `Bearer ${KEY}` };
const body = (stream) => ({ model: 'priced', messages: userMsg('crash me'), max_tokens: 200, stream });

// One request; resolves {id, stream, full, costSeen (pico or null)}. Never rejects.
async function one(id, stream) {
  const rec = { id, stream, full: false, costSeen: null, status: null, error: null };
  try {
    if (!stream) {
      const r = await request(gw.url + '/v1/chat/completions', { method: 'POST', body: body(false), headers: { ...H, 'x-request-id': id }, timeoutMs: 5000 });
      rec.status = r.status;
      if (r.headers['x-gateway-cost-usd'] !== undefined) rec.costSeen = usdToPico(r.headers['x-gateway-cost-usd']);
      if (r.status === 200 && r.json?.choices?.[0]?.message && rec.costSeen !== null) {
        assert.equal(r.headers['x-request-id'], id, 'client request id kept');
        rec.full = true;
      }
    } else {
      const s = await chatStream(gw, body(true), { headers: { ...H, 'x-request-id': id }, timeoutMs: 5000 });
      rec.status = s.status;
      const c = s.events.flatMap((e) => e.comments).find((x) => x.startsWith('x-gateway-cost-usd:'));
      if (c) rec.costSeen = usdToPico(c.slice('x-gateway-cost-usd:'.length));
      if (s.status === 200 && s.done && rec.costSeen !== null) rec.full = true;
      if (s.error) rec.error = String(s.error.message || s.error);
    }
  } catch (e) {
    rec.error = String(e.message || e);
  }
  return rec;
}

// A client that leaves: a stream at its first event, a non-stream 5 ms after sending. Never rejects.
async function vanish(id, stream) {
  if (stream) {
    try {
      await chatStream(gw, body(true), { headers: { ...H, 'x-request-id': id }, timeoutMs: 5000, onEvent: () => 'abort' });
    } catch {}
    return;
  }
  await new Promise((resolve) => {
    const payload = JSON.stringify(body(false));
    const req = http.request(gw.url + '/v1/chat/completions', {
      method: 'POST',
      agent: false,
      headers: { ...H, 'x-request-id': id, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    });
    req.on('error', resolve);
    req.on('close', resolve);
    req.end(payload);
    setTimeout(() => req.destroy(), 5);
  });
}

function ledgerRows() {
  return run(SQLITE, ['-separator', '|', ledgerPath, 'SELECT client_request_id, attempt, cost_pico, status, tenant, key_id, usage_source FROM spend'], { timeoutMs: 10000 });
}

function parseRows(stdout) {
  return stdout.split('\n').filter(Boolean).map((l) => {
    const [id, attempt, cost, status, tenant, key, source] = l.split('|');
    return { id, attempt: Number(attempt), cost: BigInt(cost), status, tenant, key, source };
  });
}

test('kill -9 under load: restart on the same ledger; ledger = costs the clients received in full, nothing lost or doubled; database clean', async () => {
  assert.ok(fs.existsSync(SQLITE), 'sqlite3 CLI (Debian package sqlite3) needed to read the ledger per request');
  const results = [];
  let killed = false;
  let seq = 0;
  const run0 = crypto.randomBytes(3).toString('hex');
  const workers = Array.from({ length: CLIENTS }, (_, w) =>
    (async () => {
      let i = 0;
      while (!killed) {
        const id = `crash-${run0}-${w}-${i}`;
        const stream = (w + i) % 2 === 0;
        i++;
        seq++;
        results.push(await one(id, stream));
      }
    })(),
  );
  const vanished = [];
  let vanishing = true;
  const vanishers = Array.from({ length: VANISHERS }, (_, w) =>
    (async () => {
      for (let i = 0; vanishing; i++) {
        const id = `crash-${run0}-gone-${w}-${i}`;
        vanished.push(id);
        await vanish(id, (w + i) % 2 === 0);
        await sleep(20);
      }
    })(),
  );
  await sleep(LOAD_MS);
  vanishing = false;
  await withTimeout(Promise.all(vanishers), 10000, 'vanishing clients');
  // Every abandoned request that reached the upstream (which may bill it) is accounted while the
  // gateway still runs (bounded wait); one that left before the gateway dispatched it costs nothing.
  // The set is read again on every pass: a request whose client left while the gateway was writing
  // it upstream can still arrive there (and be billed) after the client's promise settled.
  const reachedIds = () => new Set(up.requests.map((r) => r.headers['x-request-id']));
  const until = performance.now() + 10000;
  let missing = [];
  do {
    const q = await ledgerRows();
    const ids = new Set(parseRows(q.stdout).map((r) => r.id));
    const reachedNow = reachedIds();
    missing = vanished.filter((id) => reachedNow.has(id) && !ids.has(id));
    if (missing.length) await sleep(50);
  } while (missing.length && performance.now() < until);
  const fullBeforeKill = results.filter((r) => r.full).length;
  gw.kill('SIGKILL');
  killed = true;
  assert.deepEqual(missing, [], 'every abandoned request that reached the upstream has its ledger row');
  const exit = await gw.waitExit(5000);
  assert.equal(exit.signal, 'SIGKILL');
  // Final: nothing reaches the upstream from a dead gateway.
  const reached = reachedIds();
  const billable = vanished.filter((id) => reached.has(id));
  await withTimeout(Promise.all(workers), 10000, 'clients finishing after the kill');

  const full = results.filter((r) => r.full);
  const cut = results.filter((r) => !r.full);
  const sumFull = full.reduce((a, r) => a + r.costSeen, 0n);
  console.log(`# ${results.length} requests: ${full.length} received in full (${full.filter((r) => r.stream).length} streams), ${cut.length} cut or refused by the kill; ${fullBeforeKill} complete before the signal`);
  assert.ok(full.length >= 50, `enough load before the kill: ${full.length} complete responses`);
  assert.ok(cut.length >= 1, 'some requests were in flight at the kill');
  for (const r of full) assert.equal(r.costSeen, COST, `${r.id}: cost ${r.costSeen}`);

  // Restart on the same ledger: it must open (Ledger::open runs PRAGMA quick_check) and serve.
  gw2 = await startGateway({ configPath: cfgPath });
  assert.match(gw2.stderr, /spend ledger/, gw2.stderr);

  // Per request id, from the ledger itself.
  const q = await ledgerRows();
  assert.equal(q.code, 0, q.stderr);
  const rows = parseRows(q.stdout);
  const byId = new Map();
  for (const r of rows) byId.set(r.id, [...(byId.get(r.id) ?? []), r]);
  const sent = new Map(results.map((r) => [r.id, r]));
  const gone = new Set(vanished);
  const goneRows = rows.filter((r) => gone.has(r.id));
  console.log(`# ${vanished.length} abandoned requests, ${billable.length} reached the upstream: ${goneRows.filter((r) => r.source === 'estimated').length} estimated, ${goneRows.filter((r) => r.source === 'provider').length} with provider usage`);
  for (const r of goneRows) {
    assert.ok(r.source === 'provider' || r.source === 'estimated', `${r.id}: usage_source ${r.source}`);
    if (r.source === 'provider') assert.equal(r.cost, COST, `${r.id}: provider usage priced whole`);
    else assert.ok(r.cost > 0n && r.cost < COST, `${r.id}: an estimate (prompt + tokens relayed) costs something, less than the whole answer: ${r.cost}`);
  }
  const doubled = [...byId].filter(([, v]) => v.length !== 1).map(([k]) => k);
  assert.deepEqual(doubled, [], 'no request id counted twice');
  const phantom = rows.filter((r) => !sent.has(r.id) && !gone.has(r.id)).map((r) => r.id);
  assert.deepEqual(phantom, [], 'no ledger row for a request no client sent');
  const lost = full.filter((r) => !byId.has(r.id)).map((r) => r.id);
  assert.deepEqual(lost, [], 'every response received in full is in the ledger');
  for (const r of full) {
    const row = byId.get(r.id)[0];
    assert.equal(row.cost, r.costSeen, `${r.id}: ledger cost = cost the client saw`);
    assert.equal(row.status, 'ok');
    assert.equal(row.source, 'provider');
    assert.equal(row.tenant, 'crashco');
    assert.equal(row.key, 'ck');
  }
  const sawCostButMissing = cut.filter((r) => r.costSeen !== null && !byId.has(r.id)).map((r) => r.id);
  assert.deepEqual(sawCostButMissing, [], 'a client that saw a cost has it in the ledger');
  const cutInLedger = cut.filter((r) => byId.has(r.id));
  const sumCutInLedger = cutInLedger.reduce((a, r) => a + byId.get(r.id)[0].cost, 0n);
  for (const r of cutInLedger) assert.equal(byId.get(r.id)[0].cost, COST, `${r.id}: a cut request is costed whole or not at all`);
  const sumGone = goneRows.reduce((a, r) => a + r.cost, 0n);
  console.log(`# ledger: ${rows.length} rows = ${full.length} full + ${cutInLedger.length} cut after the upstream finished (committed before their final bytes) + ${goneRows.length} abandoned`);
  assert.equal(goneRows.length, billable.length, 'each abandoned request that reached the upstream exactly once');
  assert.ok(goneRows.every((r) => reached.has(r.id)), 'no row for one that never reached it');
  assert.equal(rows.length, full.length + cutInLedger.length + goneRows.length);

  // Totals: CLI and admin endpoint on the restarted gateway.
  const cli = await run(GATEWAY_BIN, ['spend', '--config', cfgPath, '--by', 'tenant'], { timeoutMs: 10000 });
  assert.equal(cli.code, 0, `gateway spend after the crash: ${cli.stderr}`);
  const rep = JSON.parse(cli.stdout);
  const total = BigInt(rep.total.cost_pico);
  console.log(`# gateway spend total ${rep.total.cost_usd} = full ${Number(sumFull) / 1e12} + cut-in-ledger ${Number(sumCutInLedger) / 1e12} + abandoned ${Number(sumGone) / 1e12}`);
  assert.equal(total, sumFull + sumCutInLedger + sumGone);
  assert.ok(total - sumGone >= sumFull && total - sumGone <= sumFull + BigInt(cut.length) * COST, 'sum(full) <= ledger - abandoned <= sum(full) + cut * $0.014');
  assert.equal(rep.total.requests, rows.length);
  const adm = await request(gw2.url + '/admin/spend?by=tenant');
  assert.equal(adm.status, 200, adm.text);
  assert.equal(BigInt(adm.json.total.cost_pico), total);

  // The restarted gateway keeps appending.
  const after1 = await request(gw2.url + '/v1/chat/completions', { method: 'POST', body: body(false), headers: H });
  assert.equal(after1.status, 200, after1.text);
  const adm2 = await request(gw2.url + '/admin/spend?by=tenant');
  assert.equal(BigInt(adm2.json.total.cost_pico), total + usdToPico(after1.headers['x-gateway-cost-usd']));

  const ic = await run(SQLITE, [ledgerPath, 'PRAGMA integrity_check'], { timeoutMs: 10000 });
  assert.equal(ic.stdout.trim(), 'ok', `integrity_check: ${ic.stdout} ${ic.stderr}`);
});
