// The kill switch: POST/GET/DELETE /admin/suspend, the policy file's `suspended:` list, the audit
// table in the ledger (SQLite; PostgreSQL when the server is installed), restarts, what-if planning
// (POST /admin/explain `what_if`, `gateway explain --what-if`), and two replicas sharing
// suspensions through a real redis-server.
//
// Vendors one and two are openai_compatible instances on their own fake upstreams, so the
// x-gateway-deployment header and the fakes' request logs tell which vendor served a request.
// Route `m` tries one/m then two/m (ordered); route `solo` has one/m only.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startGateway, defaultConfig, tmpDir, chat, request, userMsg, run, waitFor, GATEWAY_BIN } from './lib/gateway.mjs';
import { startUpstream } from './lib/routing_upstream.mjs';
import { scrape, metricValue } from './lib/prometheus.mjs';
import { startRedis } from './lib/redis.mjs';
import { startPostgres, postgresMissing } from './lib/postgres.mjs';

const SQLITE = '/usr/bin/sqlite3';
const ADMIN_KEY = 'adm-suspend-0123456789';
const ADMIN = { authorization: `Bearer ${ADMIN_KEY}` };
const POLICY = (extra = '') => `version: 1
name: suspend-test
${extra}catalog:
  - {ref: one/m, context_window: 100000, price: {input: 1, output: 1}}
  - {ref: two/m, context_window: 100000, price: {input: 2, output: 2}}
routes:
  - {name: r, match: {model: m}, objective: ordered, candidates: [one/m, two/m]}
  - {name: solo, match: {model: solo}, objective: ordered, candidates: [one/m]}
`;

let up1, up2;

function config(dir, { policy = POLICY(), state = {} } = {}) {
  fs.writeFileSync(path.join(dir, 'policy.yaml'), policy);
  const c = defaultConfig();
  delete c.models;
  c.server.admin_key_env = 'GW_ADMIN';
  c.providers = { one: { type: 'openai_compatible', base_url: up1.baseUrl }, two: { type: 'openai_compatible', base_url: up2.baseUrl } };
  c.policy = path.join(dir, 'policy.yaml');
  c.routing = { policy_poll_ms: 0 };
  c.state = { ledger_path: path.join(dir, 'ledger.db'), ...state };
  return c;
}
const start = (c, env = {}) => startGateway({ config: c, env: { GW_ADMIN: ADMIN_KEY, ...env } });

const admin = (gw, method, p, body) => request(gw.url + p, { method, headers: ADMIN, body });
const suspend = (gw, body) => admin(gw, 'POST', '/admin/suspend', body);
const explainOf = async (gw, body) => {
  const r = await admin(gw, 'POST', '/admin/explain', body);
  assert.equal(r.status, 200, r.text);
  return r.json;
};
const candidate = (ex, id) => ex.candidates.find((c) => c.deployment === id);
const served = (r) => r.headers['x-gateway-deployment'];

// Polls fn until it returns a truthy value; a bounded wait (the bound is generous on purpose).
before(async () => {
  up1 = await startUpstream({ name: 'one' });
  up2 = await startUpstream({ name: 'two' });
});
after(async () => {
  await up1?.close();
  await up2?.close();
});

describe('runtime suspensions on one replica', () => {
  let dir, gw;
  before(async () => {
    dir = tmpDir('gw-suspend-');
    gw = await start(config(dir));
  });
  after(async () => gw?.stop());

  test('suspend a vendor: the next request avoids it, explain and metrics name it; lift: back', async () => {
    let r = await chat(gw, { model: 'm', messages: userMsg('before') });
    assert.equal(r.status, 200);
    assert.equal(served(r), 'one@default/m');

    const s = await suspend(gw, { selector: 'vendor:one', reason: 'OFAC designation', by: 'ops' });
    assert.equal(s.status, 201, s.text);
    assert.match(s.json.id, /^s-[0-9a-f]+$/);
    assert.match(s.json.since, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual([s.json.kind, s.json.target, s.json.by, s.json.source], ['vendor', 'one', 'ops', 'runtime']);

    r = await chat(gw, { model: 'm', messages: userMsg('during') });
    assert.equal(r.status, 200);
    assert.equal(served(r), 'two@default/m');
    const ex = await explainOf(gw, { model: 'm', messages: userMsg('x') });
    const one = candidate(ex, 'one@default/m');
    assert.equal(one.status, 'excluded');
    assert.equal(one.exclusion, 'suspended');
    assert.equal(one.reason, `suspended since ${s.json.since} by ops: 'OFAC designation'`);
    assert.deepEqual(ex.plan, ['two@default/m']);

    const list = await admin(gw, 'GET', '/admin/suspend');
    assert.equal(list.status, 200);
    assert.deepEqual(list.json.suspensions.map((x) => x.id), [s.json.id]);
    const m = (await scrape(gw)).samples;
    assert.equal(metricValue(m, 'gateway_suspensions', { kind: 'vendor', target: 'one' }), 1);
    assert.ok(metricValue(m, 'gateway_suspension_exclusions_total', { target: 'one' }) >= 1);

    const lifted = await admin(gw, 'DELETE', `/admin/suspend/${s.json.id}`);
    assert.equal(lifted.status, 200, lifted.text);
    r = await chat(gw, { model: 'm', messages: userMsg('after') });
    assert.equal(served(r), 'one@default/m');
    assert.equal((await admin(gw, 'DELETE', `/admin/suspend/${s.json.id}`)).status, 404);
  });

  test('every candidate suspended: a permanent 503 naming the suspension; lift by selector', async () => {
    const s = await suspend(gw, { selector: 'one', reason: 'out of money' });
    assert.equal(s.status, 201, s.text);
    assert.equal(s.json.by, 'admin');  // the admin caller by default
    const r = await chat(gw, { model: 'solo', messages: userMsg('x') });
    assert.equal(r.status, 503, r.text);
    assert.equal(r.headers['x-should-retry'], 'false');
    assert.equal(r.headers['retry-after'], undefined);
    assert.match(r.json.error.message, /suspended since .* by admin: 'out of money'/);
    assert.equal(r.json.error.code, 'deployment_suspended');
    const lifted = await admin(gw, 'DELETE', '/admin/suspend?selector=vendor%3Aone');
    assert.equal(lifted.status, 200, lifted.text);
    assert.equal(lifted.json.lifted.length, 1);
    assert.equal((await chat(gw, { model: 'solo', messages: userMsg('x') })).status, 200);
  });

  test('callers without the admin key are refused, and nothing is suspended', async () => {
    const body = { selector: 'vendor:one', reason: 'x' };
    for (const headers of [{}, { authorization: 'Bearer wrong-key-0123456789' }]) {
      const r = await request(gw.url + '/admin/suspend', { method: 'POST', headers, body });
      assert.equal(r.status, 401, r.text);
    }
    assert.equal((await request(gw.url + '/admin/suspend', {})).status, 401);
    assert.deepEqual((await admin(gw, 'GET', '/admin/suspend')).json.suspensions, []);
  });

  test('bad selectors and bodies are a 400 that says what is wrong', async () => {
    const cases = [
      [{ selector: 'vendor:nobody', reason: 'x' }, /unknown vendor 'nobody'/],
      [{ selector: 'country:CN', reason: 'x' }, /unknown selector kind 'country'/],
      [{ selector: 'jurisdiction:XX', reason: 'x' }, /unknown jurisdiction 'XX'/],
      [{ selector: 'vendor:one' }, /reason is required/],
      [{ selector: 'vendor:one', reason: 'x', until: 'never' }, /unknown member 'until'/],
      [{ selector: 'vendor:one', reason: 'a\nb' }, /printable/],
      [{ reason: 'x' }, /selector is required/],
    ];
    for (const [body, want] of cases) {
      const r = await suspend(gw, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.json.error.message, want);
    }
    const dup = await request(gw.url + '/admin/suspend', {
      method: 'POST', headers: { ...ADMIN, 'content-type': 'application/json' },
      body: '{"selector":"vendor:two","selector":"vendor:one","reason":"x"}',
    });
    assert.equal(dup.status, 400);
    assert.match(dup.json.error.message, /appears twice/);
    assert.deepEqual((await admin(gw, 'GET', '/admin/suspend')).json.suspensions, []);
  });

  test('what-if on POST /admin/explain: plans, cost before and after, the live set untouched', async () => {
    const w = await explainOf(gw, { model: 'm', messages: userMsg('what if'), what_if: ['suspend=vendor:one'] });
    assert.deepEqual(w.what_if, ['vendor:one']);
    assert.equal(w.requests[0].before.deployment, 'one@default/m');
    assert.equal(w.requests[0].after.deployment, 'two@default/m');
    assert.ok(w.requests[0].after.est_cost_usd > w.requests[0].before.est_cost_usd);
    assert.equal(w.summary.share_after_pct.two, 100);
    assert.ok(w.summary.cost_change_pct > 0);
    assert.match(w.summary.text, /^suspending vendor:one moves 100 % of traffic to two, cost \+\d+ %; 0 of 1 requests become unservable$/);
    assert.equal(candidate(w.explain_after, 'one@default/m').exclusion, 'suspended');
    const solo = await explainOf(gw, { model: 'solo', messages: userMsg('x'), what_if: 'one' });
    assert.equal(solo.summary.became_unservable, 1);
    const bad = await admin(gw, 'POST', '/admin/explain', { model: 'm', messages: userMsg('x'), what_if: ['nobody'] });
    assert.equal(bad.status, 400);
    assert.equal(served(await chat(gw, { model: 'm', messages: userMsg('x') })), 'one@default/m');
  });

  test('gateway explain --what-if over a JSONL file of requests', async () => {
    const file = path.join(dir, 'requests.jsonl');
    const line = (model) => JSON.stringify({ model, messages: userMsg('x') });
    fs.writeFileSync(file, [line('m'), line('m'), line('m'), line('solo')].join('\n') + '\n');
    const r = await run(GATEWAY_BIN, ['explain', '--config', gw.cfgPath, '--request', file, '--what-if', 'suspend=one']);
    assert.equal(r.code, 0, r.stderr);
    const w = JSON.parse(r.stdout);
    assert.equal(w.summary.requests, 4);
    assert.equal(w.summary.became_unservable, 1);
    assert.equal(w.summary.share_before_pct.one, 100);
    assert.equal(w.summary.share_after_pct.two, 75);
    assert.match(w.summary.text, /moves 75 % of traffic to two, cost \+\d+ %; 1 of 4 requests become unservable/);
    const bad = await run(GATEWAY_BIN, ['explain', '--config', gw.cfgPath, '--request', file, '--what-if', 'suspend=acme']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /unknown selector 'acme'/);
  });
});

describe('audit table and restarts', () => {
  test('suspend and lift are audit rows; runtime suspensions survive a restart and apply to explain', async () => {
    assert.ok(fs.existsSync(SQLITE), 'sqlite3 CLI (Debian package sqlite3) needed to read the audit table');
    const dir = tmpDir('gw-suspend-restart-');
    const c = config(dir);
    let gw = await start(c);
    const kept = await suspend(gw, { selector: 'deployment:one@default/m', reason: 'Entity List', by: 'legal' });
    const gone = await suspend(gw, { selector: 'vendor:two', reason: 'test', by: 'ops' });
    assert.equal(kept.status, 201);
    assert.equal(gone.status, 201);
    assert.equal((await admin(gw, 'DELETE', `/admin/suspend/${gone.json.id}`)).status, 200);
    await gw.stop();
    assert.match(gw.stderr, new RegExp(`suspension ${kept.json.id}: deployment:one@default/m`));

    gw = await start(c);
    try {
      const list = await admin(gw, 'GET', '/admin/suspend');
      assert.deepEqual(list.json.suspensions.map((s) => [s.id, s.by, s.reason]), [[kept.json.id, 'legal', 'Entity List']]);
      const r = await chat(gw, { model: 'm', messages: userMsg('x') });
      assert.equal(served(r), 'two@default/m');
      const cli = await run(GATEWAY_BIN, ['explain', '--config', gw.cfgPath, '--request', writeReq(dir)]);
      assert.equal(cli.code, 0, cli.stderr);
      assert.equal(candidate(JSON.parse(cli.stdout), 'one@default/m').exclusion, 'suspended');
    } finally {
      await gw.stop();
    }
    const rows = await run(SQLITE, ['-separator', '|', path.join(dir, 'ledger.db'),
      'SELECT action, suspension_id, kind, target, reason, by FROM suspension_audit ORDER BY seq']);
    assert.equal(rows.code, 0, rows.stderr);
    assert.deepEqual(rows.stdout.trim().split('\n'), [
      `suspend|${kept.json.id}|deployment|one@default/m|Entity List|legal`,
      `suspend|${gone.json.id}|vendor|two|test|ops`,
      `lift|${gone.json.id}|vendor|two|test|admin`,
    ]);
  });

  test('a suspension that cannot be recorded is an error, never in effect', async () => {
    const dir = tmpDir('gw-suspend-ro-');
    const gw = await start(config(dir));
    try {
      // The audit table made read-only underneath the gateway: the insert fails.
      const db = path.join(dir, 'ledger.db');
      const trig = await run(SQLITE, [db, "CREATE TRIGGER no_audit BEFORE INSERT ON suspension_audit BEGIN SELECT RAISE(ABORT, 'audit refused'); END;"]);
      assert.equal(trig.code, 0, trig.stderr);
      const r = await suspend(gw, { selector: 'vendor:one', reason: 'x' });
      assert.equal(r.status, 500, r.text);
      assert.match(r.json.error.message, /suspension audit .*audit refused/);
      assert.deepEqual((await admin(gw, 'GET', '/admin/suspend')).json.suspensions, []);
      assert.equal(served(await chat(gw, { model: 'm', messages: userMsg('x') })), 'one@default/m');
    } finally {
      await gw.stop();
    }
  });
});

describe('audit table in the PostgreSQL ledger', () => {
  const skip = postgresMissing();
  let pg;
  after(async () => pg?.close());
  test('a suspension is a row of suspension_audit in the fleet database and survives a restart', { skip: skip ?? false }, async () => {
    pg = await startPostgres();
    const env = { GW_TEST_SUSPEND_PG: await pg.createDb('suspend') };
    const dir = tmpDir('gw-suspend-pg-');
    const c = config(dir);
    c.state = { ledger: { backend: 'postgres', url_env: 'GW_TEST_SUSPEND_PG' } };
    let gw = await start(c, env);
    const s = await suspend(gw, { selector: 'vendor:one', reason: 'OFAC designation', by: 'legal' });
    assert.equal(s.status, 201, s.text);
    await gw.stop();
    gw = await start(c, env);
    try {
      assert.deepEqual((await admin(gw, 'GET', '/admin/suspend')).json.suspensions.map((x) => x.id), [s.json.id]);
      assert.equal(served(await chat(gw, { model: 'm', messages: userMsg('x') })), 'two@default/m');
    } finally {
      await gw.stop();
    }
    const rows = await pg.psql('SELECT action, suspension_id, kind, target, reason, by FROM suspension_audit ORDER BY seq', 'suspend');
    assert.equal(rows.trim(), `suspend|${s.json.id}|vendor|one|OFAC designation|legal`);
  });
});

function writeReq(dir) {
  const f = path.join(dir, 'req.json');
  fs.writeFileSync(f, JSON.stringify({ model: 'm', messages: userMsg('x') }));
  return f;
}

describe('policy-file suspensions', () => {
  test('in effect from the file, shown by explain, read-only through the API; bad entries refused by check', async () => {
    const dir = tmpDir('gw-suspend-policy-');
    const gw = await start(config(dir, { policy: POLICY('suspended:\n  - {vendor: one, reason: "Entity List", since: 2026-12-01, by: ops}\n') }));
    try {
      const r = await chat(gw, { model: 'm', messages: userMsg('x') });
      assert.equal(served(r), 'two@default/m');
      const ex = await explainOf(gw, { model: 'm', messages: userMsg('x') });
      assert.equal(candidate(ex, 'one@default/m').reason, "suspended since 2026-12-01 by ops: 'Entity List'");
      const list = (await admin(gw, 'GET', '/admin/suspend')).json.suspensions;
      assert.equal(list.length, 1);
      assert.equal(list[0].source, 'policy');
      const del = await admin(gw, 'DELETE', `/admin/suspend/${list[0].id}`);
      assert.equal(del.status, 409);
      assert.match(del.json.error.message, /read-only through the API/);
    } finally {
      await gw.stop();
    }
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, POLICY('suspended:\n  - {vendor: onee, reason: x, since: 2026-12-01}\n  - {vendor: one, parent: x, since: 2026-12-01}\n'));
    const chk = await run(GATEWAY_BIN, ['check', bad]);
    assert.notEqual(chk.code, 0);
    assert.match(chk.stderr + chk.stdout, /unknown vendor 'onee' \(did you mean 'one'\?\)/);
    assert.match(chk.stderr + chk.stdout, /exactly one of vendor, parent, jurisdiction, deployment/);
    assert.match(chk.stderr + chk.stdout, /needs 'reason'/);
  });
});

describe('two replicas sharing suspensions through Redis', () => {
  let redis, A, B;
  const POLL_MS = 100;
  before(async () => {
    redis = await startRedis();
    const state = { mode: 'redis', redis: { host: '127.0.0.1', port: redis.port, timeout_ms: 200 }, suspensions: { poll_interval_ms: POLL_MS } };
    [A, B] = await Promise.all([start(config(tmpDir('gw-suspend-a-'), { state })), start(config(tmpDir('gw-suspend-b-'), { state }))]);
  });
  after(async () => {
    await A?.stop();
    await B?.stop();
    await redis?.stop();
  });

  const bExcludesOne = async () => candidate(await explainOf(B, { model: 'm', messages: userMsg('x') }), 'one@default/m').exclusion === 'suspended';

  test('a suspension made on A is in effect on B once B has polled; a lift on B reaches A', async () => {
    const fleet = (await admin(B, 'GET', '/admin/suspend')).json.fleet;
    assert.equal(fleet.poll_interval_ms, POLL_MS);  // the configured interval is the one in use
    const polls0 = fleet.polls;
    const s = await suspend(A, { selector: 'vendor:one', reason: 'sanctioned', by: 'ops' });
    assert.equal(s.status, 201, s.text);
    await waitFor('B excludes vendor one', bExcludesOne);
    assert.ok((await admin(B, 'GET', '/admin/suspend')).json.fleet.polls > polls0);
    assert.equal(served(await chat(B, { model: 'm', messages: userMsg('x') })), 'two@default/m');

    assert.equal((await admin(B, 'DELETE', `/admin/suspend/${s.json.id}`)).status, 200);
    await waitFor('A serves vendor one again', async () => served(await chat(A, { model: 'm', messages: userMsg('x') })) === 'one@default/m');
  });

  test('Redis down: B keeps what it knew, says so in a metric, and lifts nothing', async () => {
    const s = await suspend(A, { selector: 'vendor:one', reason: 'sanctioned again', by: 'ops' });
    assert.equal(s.status, 201);
    await waitFor('B excludes vendor one', bExcludesOne);
    await redis.stop();
    await waitFor('B reports the fleet sync failing', async () =>
      metricValue((await scrape(B)).samples, 'gateway_suspension_fleet_sync_failing', {}) === 1);
    assert.ok(await bExcludesOne());
    assert.equal(served(await chat(B, { model: 'm', messages: userMsg('x') })), 'two@default/m');
    // A suspension made on B while Redis is down is recorded and in effect on B.
    const own = await suspend(B, { selector: 'vendor:two', reason: 'local decision' });
    assert.equal(own.status, 201, own.text);
    const r = await chat(B, { model: 'm', messages: userMsg('x') });
    assert.equal(r.status, 503);
  });
});
