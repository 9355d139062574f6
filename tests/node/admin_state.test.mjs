// GET /admin/state: the JSON the status page renders. One tenant with a budget, a ledger, a policy
// with a healthy deployment (pa/m) and one whose upstream answers 500 (pb/m); then traffic, a
// refusal for a model the tenant may not use and one for an unknown model, and the document must
// show each of them. Without the admin key it is a 401; any method but GET a 405.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startGateway, defaultConfig, request, userMsg, run, tmpDir, GATEWAY_BIN } from './lib/gateway.mjs';
import { startUpstream } from './lib/routing_upstream.mjs';

const ADMIN_KEY = 'adm-' + Math.random().toString(36).slice(2);
const POLICY = `version: 1
name: state-page
catalog:
  - {ref: pa/m, context_window: 100000, price: {input: 10, output: 20}}
  - {ref: pb/m, context_window: 100000, price: {input: 1, output: 1}}
routes:
  - name: priced
    match: {model: priced}
    objective: ordered
    candidates: [pa/m]
  - name: broken
    match: {model: broken}
    objective: ordered
    max_attempts: 1
    candidates: [pb/m]
`;

let pa, pb, gw, key;

async function mintKey(tenant, id) {
  const r = await run(GATEWAY_BIN, ['keys', 'new', '--tenant', tenant, '--id', id], { timeoutMs: 10000 });
  assert.equal(r.code, 0, `gateway keys new failed: ${r.stderr}`);
  const lines = r.stdout.split('\n').filter((l) => l.trim());
  const m = /id:\s*"?([^,"}\s]+)"?\s*,\s*sha256:\s*"?((?:sha256:)?[0-9a-f]{64})"?/.exec(lines.slice(1).join('\n'));
  assert.ok(m, `a key entry: ${r.stdout}`);
  return { key: lines[0].trim().split(/\s+/).pop(), entry: { id: m[1], sha256: m[2] } };
}

async function startStateGateway() {
  const dir = tmpDir('gw-admin-state-');
  fs.writeFileSync(path.join(dir, 'policy.yaml'), POLICY);
  const c = defaultConfig();
  delete c.models;
  c.server.admin_key_env = 'GW_TEST_ADMIN_KEY';
  c.providers = { pa: { type: 'openai_compatible', base_url: pa.baseUrl }, pb: { type: 'openai_compatible', base_url: pb.baseUrl } };
  c.policy = path.join(dir, 'policy.yaml');
  c.routing = { policy_poll_ms: 0 };
  c.tenants = { acme: { keys: [key.entry], models: ['priced', 'broken', 'nope'], budget: { daily_usd: 0.5, hard: true } } };
  c.state = { ledger_path: path.join(dir, 'spend.db') };
  return startGateway({ config: c, env: { GW_TEST_ADMIN_KEY: ADMIN_KEY } });
}

const admin = { authorization: `Bearer ${ADMIN_KEY}` };
const state = async () => {
  const r = await request(gw.url + '/admin/state', { headers: admin });
  assert.equal(r.status, 200, r.text);
  return r.json;
};
const send = (model) =>
  request(gw.url + '/v1/chat/completions', { method: 'POST', headers: { authorization: `Bearer ${key.key}` }, body: { model, messages: userMsg('state'), max_tokens: 50 } });

before(async () => {
  pa = await startUpstream({ name: 'pa' });
  pb = await startUpstream({ name: 'pb', status: 500 });
  key = await mintKey('acme', 'k1');
  gw = await startStateGateway();
});

after(async () => {
  await pa?.close();
  await pb?.close();
  await gw?.stop();
});

describe('GET /admin/state', () => {
  test('needs the admin key (401 without, 401 with a tenant key); GET only', async () => {
    assert.equal((await request(gw.url + '/admin/state')).status, 401);
    assert.equal((await request(gw.url + '/admin/state', { headers: { authorization: `Bearer ${key.key}` } })).status, 401);
    assert.equal((await request(gw.url + '/admin/state', { method: 'POST', headers: admin, body: {} })).status, 405);
  });

  test('before traffic: policy loaded at start, deployments closed and idle, budget untouched', async () => {
    const s = await state();
    assert.equal(s.policy.name, 'state-page');
    assert.equal(s.policy.generation, 1);
    assert.deepEqual({ trigger: s.policy.last_load.trigger, ok: s.policy.last_load.ok }, { trigger: 'start', ok: true });
    const ids = s.deployments.map((d) => d.id);
    assert.ok(ids.includes('pa@default/m') && ids.includes('pb@default/m'), ids.join(','));
    for (const d of s.deployments.filter((x) => x.provider === 'pa' || x.provider === 'pb')) {
      assert.deepEqual([d.circuit, d.availability, d.traffic_share], ['closed', 'available', 0], JSON.stringify(d));
    }
    assert.deepEqual(s.refusals, { total: 0, recent: [] });
    const routes = Object.fromEntries(s.routes.map((r) => [r.name, r.candidates.map((c) => c.deployment)]));
    assert.deepEqual(routes.priced, ['pa@default/m']);
    assert.deepEqual(routes.broken, ['pb@default/m']);
    const acme = s.tenants.find((t) => t.tenant === 'acme');
    assert.ok(acme, JSON.stringify(s.tenants));
    assert.equal(acme.budgets[0].period, 'daily');
    assert.equal(Number(acme.budgets[0].spent_usd.replace('$', '')), 0);
  });

  test('after traffic: spend, traffic share, failures of the broken upstream and the refusals with reasons', async () => {
    for (let i = 0; i < 3; ++i) assert.equal((await send('priced')).status, 200);
    const broken = await send('broken');
    assert.ok(broken.status >= 500, `broken upstream -> ${broken.status}`);
    assert.equal((await send('other-model')).status, 403);
    const s = await state();
    const dep = (id) => s.deployments.find((d) => d.id === id);
    assert.equal(dep('pa@default/m').figures.routing_attempts_total, 3);
    assert.equal(dep('pb@default/m').figures.routing_failures_total, 1);
    assert.ok(dep('pa@default/m').traffic_share > 0.7 && dep('pa@default/m').traffic_share < 0.8, String(dep('pa@default/m').traffic_share));
    const acme = s.tenants.find((t) => t.tenant === 'acme');
    assert.ok(Number(acme.budgets[0].spent_usd.replace('$', '')) > 0, JSON.stringify(acme));
    assert.ok(JSON.stringify(s.spend_today).includes('acme'), JSON.stringify(s.spend_today));
    const codes = s.refusals.recent.map((r) => r.code);
    assert.equal(s.refusals.recent[0].code, 'model_not_allowed', 'newest first');
    assert.equal(s.refusals.recent[0].tenant, 'acme');
    assert.match(s.refusals.recent[0].message, /other-model/);
    assert.equal(s.refusals.recent[0].status, 403);
    assert.equal(codes.length, 2, codes.join(','));
    assert.ok(s.refusals.recent[1].status >= 500, JSON.stringify(s.refusals.recent[1]));
  });

  test('a refused reload shows as the last load with its message; the generation stays', async () => {
    const policyFile = (await state()).policy.file;
    fs.writeFileSync(policyFile, POLICY + '    bogus_key: 1\n');
    const r = await request(gw.url + '/admin/reload', { method: 'POST', headers: admin });
    assert.equal(r.status, 422);
    const s = await state();
    assert.equal(s.policy.last_load.ok, false);
    assert.equal(s.policy.last_load.trigger, 'POST /admin/reload');
    assert.match(s.policy.last_load.message, /bogus_key/);
    assert.equal(s.policy.generation, 1);
    fs.writeFileSync(policyFile, POLICY);
    assert.equal((await request(gw.url + '/admin/reload', { method: 'POST', headers: admin })).status, 200);
    assert.equal((await state()).policy.generation, 2);
  });

  test('the refusal ring is bounded: 70 more refusals keep the newest 64', async () => {
    for (let i = 0; i < 70; ++i) assert.equal((await send(`m${i}`)).status, 403);
    const s = await state();
    assert.equal(s.refusals.recent.length, 64);
    assert.equal(s.refusals.total, 72);
    assert.match(s.refusals.recent[0].message, /'m69'/);
  });
});
