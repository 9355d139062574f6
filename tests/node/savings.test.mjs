// Counterfactual savings end to end: a route with a baseline (a reference_only catalog entry at
// list prices), a route without one, and every place the figure shows agreeing to the pico-USD:
// the ledger rows' baseline_pico, the saved and baseline counters, GET /admin/spend?savings=1,
// `gateway spend --savings` (JSON and table) and /admin/state's spend of today.
//
// Prices (USD per 1M tokens): the served deployment pa/m 10 in / 20 out; the reference
// ref@us/frontier 40 in / 80 out. Every answer reports 1000 prompt and 200 completion tokens:
// cost 14e9 pico, baseline 56e9 pico, saved 42e9 pico per request.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startGateway, defaultConfig, tmpDir, toYaml, request, userMsg, run, GATEWAY_BIN } from './lib/gateway.mjs';
import { startUpstream, explain } from './lib/routing_upstream.mjs';
import { scrape, metricValue } from './lib/prometheus.mjs';

const SQLITE = '/usr/bin/sqlite3';
const USAGE = { prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200 };
const COST = 14_000_000_000;
const BASELINE = 56_000_000_000;
const N = 3;
const KEY = 'gwk_save_' + crypto.randomBytes(12).toString('hex');
const ADMIN_KEY = 'adm-save-' + crypto.randomBytes(8).toString('hex');
const REFERENCE = `  - ref: ref@us/frontier
    reference_only: true
    context_window: 400000
    price: {input: 40, output: 80, as_of: 2026-12-01}
`;
const POLICY = `version: 1
name: savings
catalog:
  - {ref: pa/m, context_window: 100000, price: {input: 10, output: 20}}
${REFERENCE}routes:
  - name: saved
    match: {model: saved}
    objective: ordered
    candidates: [ref/frontier, pa/m]
    baseline: {ref: ref@us/frontier}
  - name: plain
    match: {model: plain}
    objective: ordered
    candidates: [pa/m]
`;

let up, gw, dir, cfgPath, ledgerPath;
before(async () => {
  assert.ok(fs.existsSync(SQLITE), 'sqlite3 CLI (Debian package sqlite3) needed to read the ledger');
  up = await startUpstream({ name: 'pa', usage: USAGE });
  dir = tmpDir('gw-savings-');
  fs.writeFileSync(path.join(dir, 'policy.yaml'), POLICY);
  ledgerPath = path.join(dir, 'ledger.db');
  const c = defaultConfig();
  delete c.models;
  c.server.admin_key_env = 'GW_TEST_ADMIN_KEY';
  c.providers = { pa: { type: 'openai_compatible', base_url: up.baseUrl } };
  c.policy = path.join(dir, 'policy.yaml');
  c.routing = { policy_poll_ms: 0 };
  c.tenants = { acme: { keys: [{ id: 'a1', sha256: crypto.createHash('sha256').update(KEY).digest('hex') }] } };
  c.state = { ledger_path: ledgerPath };
  cfgPath = path.join(dir, 'gateway.yaml');
  fs.writeFileSync(cfgPath, toYaml(c));
  gw = await startGateway({ configPath: cfgPath, env: { GW_TEST_ADMIN_KEY: ADMIN_KEY } });
  for (const model of [...Array(N).fill('saved'), 'plain']) {
    const r = await request(gw.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'x-request-id': `save-${model}` },
      body: { model, messages: userMsg('save me'), max_tokens: 200 },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-gateway-deployment'], 'pa@default/m', 'the reference is never routed to');
  }
});
after(async () => {
  await gw?.stop();
  await up?.close();
});

const admin = { authorization: `Bearer ${ADMIN_KEY}` };

async function ledgerRows() {
  const q = await run(SQLITE, ['-json', ledgerPath, 'SELECT client_request_id, cost_pico, baseline_pico FROM spend ORDER BY id'], { timeoutMs: 10000 });
  assert.equal(q.code, 0, q.stderr);
  return JSON.parse(q.stdout || '[]');
}

test('each row of the baselined route carries its baseline cost; the other row has none (NULL)', async () => {
  const rows = await ledgerRows();
  assert.equal(rows.length, N + 1);
  for (const r of rows.filter((x) => x.client_request_id === 'save-saved')) {
    assert.equal(r.cost_pico, COST);
    assert.equal(r.baseline_pico, BASELINE);
  }
  const plain = rows.find((x) => x.client_request_id === 'save-plain');
  assert.equal(plain.cost_pico, COST);
  assert.equal(plain.baseline_pico, null, 'no baseline is NULL, not 0');
});

test('counters, /admin/spend?savings=1, gateway spend --savings and /admin/state agree to the pico-USD', async () => {
  const want = { requests: N + 1, cost_pico: (N + 1) * COST, baselined_requests: N, baselined_cost_pico: N * COST, baseline_pico: N * BASELINE, saved_pico: N * (BASELINE - COST) };
  const { samples } = await scrape(gw);
  const saved = metricValue(samples, 'gateway_cost_saved_usd_total', { tenant: 'acme' });
  const base = metricValue(samples, 'gateway_cost_baseline_usd_total', { tenant: 'acme' });
  assert.ok(Math.abs(saved - want.saved_pico / 1e12) < 1e-12, `saved counter ${saved}`);
  assert.ok(Math.abs(base - want.baseline_pico / 1e12) < 1e-12, `baseline counter ${base}`);

  const http = await request(gw.url + '/admin/spend?savings=1&by=tenant', { headers: admin });
  assert.equal(http.status, 200, http.text);
  assert.equal(http.json.savings, true, http.text);
  const row = http.json.rows.find((r) => r.key === 'acme');
  for (const [k, v] of Object.entries(want)) assert.equal(row[k], v, k);
  assert.equal(row.saved_usd, '0.126');
  assert.equal(row.baseline_usd, '0.168');
  assert.equal(http.json.total.saved_pico, want.saved_pico);

  const plain = await request(gw.url + '/admin/spend?by=tenant', { headers: admin });
  assert.equal(plain.status, 200);
  assert.equal(plain.json.rows[0].saved_pico, undefined, 'without savings=1 the report is unchanged');

  const byDay = await request(gw.url + '/admin/spend?savings=1&by=day', { headers: admin });
  assert.equal(byDay.json.rows.length, 1);
  assert.equal(byDay.json.rows[0].saved_pico, want.saved_pico);

  const cli = await run(GATEWAY_BIN, ['spend', '--config', cfgPath, '--savings'], { timeoutMs: 10000 });
  assert.equal(cli.code, 0, cli.stderr);
  assert.deepEqual(JSON.parse(cli.stdout), http.json, 'the CLI prints the same report as the endpoint');
  const table = await run(GATEWAY_BIN, ['spend', '--config', cfgPath, '--savings', '--format', 'table'], { timeoutMs: 10000 });
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trim().split('\n');
  assert.match(lines[0], /^tenant\s+requests\s+prompt\s+completion\s+cost_usd\s+baselined\s+baseline_usd\s+saved_usd$/);
  assert.match(lines.find((l) => l.startsWith('acme')), /^acme\s+4\s+4000\s+800\s+0\.056\s+3\s+0\.168\s+0\.126$/);
  const badFormat = await run(GATEWAY_BIN, ['spend', '--config', cfgPath, '--format', 'xml'], { timeoutMs: 10000 });
  assert.equal(badFormat.code, 2);

  const st = await request(gw.url + '/admin/state', { headers: admin });
  assert.equal(st.status, 200, st.text);
  const today = st.json.spend_today.rows.find((r) => r.key === 'acme');
  assert.equal(today.saved_pico, want.saved_pico);
  assert.equal(today.saved_usd, '0.126');
});

test('explain names the baseline and excludes the reference deployment with the reason', async () => {
  const e = await explain(gw, { model: 'saved', messages: userMsg('x') }, admin);
  assert.equal(e.route, 'saved');
  assert.equal(e.baseline, 'ref@us/frontier');
  const ref = e.candidates.find((c) => c.deployment === 'ref@us/frontier');
  assert.equal(ref.status, 'excluded');
  assert.match(ref.reason, /reference_only: a price reference for savings baselines, never routed to/);
  const p = await explain(gw, { model: 'plain', messages: userMsg('x') }, admin);
  assert.equal(p.baseline, undefined);
});

test('gateway check refuses hostile baselines and a route of references only', async () => {
  const check = async (name, text) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return run(GATEWAY_BIN, ['check', f], { timeoutMs: 10000 });
  };
  const route = (baseline) => `routes:\n  - name: r\n    candidates: [deepseek/deepseek-flash]\n    baseline: ${baseline}\n`;
  const negative = await check('neg.yaml', route('{price: {input: -1, output: 10}}'));
  assert.notEqual(negative.code, 0);
  assert.match(negative.stderr, /neg\.yaml:4:\d+: baseline\.price\.input \(USD per 1M tokens\) must be between 0 and/);
  const unknown = await check('unknown.yaml', route('{price: {input: 1, output: 10}, discount: 0.5}'));
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /unknown baseline key 'discount'/);
  const refs = await check('refs.yaml', `catalog:\n${REFERENCE}routes:\n  - {name: only-refs, candidates: [ref/frontier]}\n`);
  assert.notEqual(refs.code, 0);
  assert.match(refs.stderr, /route 'only-refs': its only candidates are reference_only deployments/);
  const ok = await check('ok.yaml', `catalog:\n${REFERENCE}defaults:\n  baseline: {ref: ref/frontier}\nroutes:\n  - {name: r, candidates: [ref/frontier, deepseek/deepseek-flash]}\n`);
  assert.equal(ok.code, 0, ok.stderr);
});

test('a reload to a hostile baseline keeps the serving policy', async () => {
  fs.writeFileSync(path.join(dir, 'policy.yaml'), POLICY.replace('baseline: {ref: ref@us/frontier}', 'baseline: {price: {input: 1, output: -5}}'));
  const r = await request(gw.url + '/admin/reload', { method: 'POST', headers: admin });
  assert.notEqual(r.status, 200, r.text);
  const e = await explain(gw, { model: 'saved', messages: userMsg('x') }, admin);
  assert.equal(e.baseline, 'ref@us/frontier');
  fs.writeFileSync(path.join(dir, 'policy.yaml'), POLICY);
});

test('server.metrics_tenant_labels: false -> the savings counters carry an empty tenant label', async () => {
  const c = defaultConfig();
  delete c.models;
  c.server.metrics_tenant_labels = false;
  c.providers = { pa: { type: 'openai_compatible', base_url: up.baseUrl } };
  c.policy = path.join(dir, 'policy.yaml');
  c.routing = { policy_poll_ms: 0 };
  c.tenants = { acme: { keys: [{ id: 'a1', sha256: crypto.createHash('sha256').update(KEY).digest('hex') }] } };
  const quiet = await startGateway({ config: c });
  try {
    const r = await request(quiet.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}` },
      body: { model: 'saved', messages: userMsg('save me'), max_tokens: 200 },
    });
    assert.equal(r.status, 200, r.text);
    const { samples } = await scrape(quiet);
    const saved = samples.filter((s) => s.name === 'gateway_cost_saved_usd_total');
    assert.equal(saved.length, 1);
    assert.equal(saved[0].labels.tenant, '');
    assert.ok(Math.abs(saved[0].value - (BASELINE - COST) / 1e12) < 1e-12, `saved ${saved[0].value}`);
    const text = (await request(quiet.url + '/metrics')).text;
    assert.ok(!text.includes('acme'), 'no tenant name anywhere in /metrics');
  } finally {
    await quiet.stop();
  }
});
