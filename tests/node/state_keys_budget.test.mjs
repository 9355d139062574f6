// Tenants, gateway keys, allowed models, budgets and rate limits, end to end.
//
// Keys are minted by the real CLI (`gateway keys new --tenant T --id K`): the key is the last word of
// its first output line, the config entry `- {id: K, sha256: "..."}` a later line; only the hash goes
// into the config. Prices are real: a policy catalog deployment `pa/m` priced {input: 10, output: 20}
// USD per 1M tokens, whose base URL is a programmable fake (lib/routing_upstream.mjs) that returns
// usage {prompt 1000, completion 200}: every request costs 1000*10e-6 + 200*20e-6 = $0.014 exactly.
//
// Budget arithmetic (gateway/state/limits.h): a hard budget refuses when spent + reserved + this request's
// worst case > limit; the worst case is the estimated prompt (a few tokens) plus max_tokens (200) of
// output at list price, about $0.004. With a daily budget of $0.03: request 1 (0 + 0.004) and request 2
// (0.014 + 0.004) are admitted, request 3 (0.028 + 0.004 > 0.03) is refused.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import path from 'node:path';
import OpenAI from 'openai';
import { startGateway, defaultConfig, tmpDir, chat, chatStream, request, openAiError, userMsg, run, GATEWAY_BIN } from './lib/gateway.mjs';
import { startUpstream, pricedPolicy } from './lib/routing_upstream.mjs';
import { scrape, metricValue } from './lib/prometheus.mjs';

const USAGE = { prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200 };
const COST_PICO = 14_000_000_000n; // $0.014
const ADMIN_KEY = 'adm-' + Math.random().toString(36).slice(2);

// "0.014" -> 14000000000n (pico-dollars), exact.
export function usdToPico(s) {
  const m = /^(-?)(\d+)(?:\.(\d{0,12}))?$/.exec(String(s).trim());
  if (!m) throw new Error(`not a USD amount: ${JSON.stringify(s)}`);
  const v = BigInt(m[2]) * 10n ** 12n + BigInt((m[3] || '').padEnd(12, '0') || '0');
  return m[1] ? -v : v;
}

function runEnv(cmd, args, env, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(Object.assign(err, { stdout, stderr }));
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

async function mintKey(tenant, id) {
  const r = await run(GATEWAY_BIN, ['keys', 'new', '--tenant', tenant, '--id', id], { timeoutMs: 10000 });
  assert.equal(r.code, 0, `gateway keys new failed: ${r.stderr}`);
  const lines = r.stdout.split('\n').filter((l) => l.trim());
  const key = lines[0].trim().split(/\s+/).pop();
  assert.ok(key.length >= 20, `a key on the first line: ${lines[0]}`);
  const entryLine = lines.slice(1).find((l) => /^\s*-\s*\{/.test(l));
  assert.ok(entryLine, `a YAML entry line after the key: ${r.stdout}`);
  const m = /id:\s*"?([^,"}\s]+)"?\s*,\s*sha256:\s*"?((?:sha256:)?[0-9a-f]{64})"?/.exec(entryLine);
  assert.ok(m, `entry has id and sha256: ${entryLine}`);
  assert.equal(m[1], id);
  assert.ok(!r.stdout.split('\n').slice(1).join('\n').includes(key), 'the key itself is not in the config line');
  return { key, entry: { id: m[1], sha256: m[2] } };
}

const POLICY = pricedPolicy('state-keys', ['priced', 'other']);

let up, gw, keys, ledgerPath;
const seen = []; // {tenant, cost (pico)} of every priced 200 the clients received

before(async () => {
  up = await startUpstream({ name: 'pa', usage: USAGE });
  keys = {
    acme: await mintKey('acme', 'k1'),
    acme2: await mintKey('acme', 'k2'),
    soft: await mintKey('softco', 's1'),
    rl: await mintKey('rlco', 'r1'),
  };
  const dir = tmpDir('gw-state-keys-');
  fs.writeFileSync(path.join(dir, 'policy.yaml'), POLICY);
  ledgerPath = path.join(dir, 'spend.db');
  const c = defaultConfig();
  delete c.models;
  c.server.admin_key_env = 'GW_TEST_ADMIN_KEY';
  c.providers = { pa: { type: 'openai_compatible', base_url: up.baseUrl } };
  c.policy = path.join(dir, 'policy.yaml');
  c.routing = { policy_poll_ms: 0 };
  c.tenants = {
    acme: { keys: [keys.acme.entry, keys.acme2.entry], models: ['priced'], budget: { daily_usd: 0.03, monthly_usd: 1, hard: true } },
    softco: { keys: [keys.soft.entry], budget: { daily_usd: 0.001, hard: false } },
    rlco: { keys: [keys.rl.entry], limits: { rpm: 3 } },
  };
  c.state = { ledger_path: ledgerPath };
  gw = await startGateway({ config: c, env: { GW_TEST_ADMIN_KEY: ADMIN_KEY } });
});

after(async () => {
  await up?.close();
  await gw?.stop();
});

const auth = (k) => ({ authorization: `Bearer ${k}` });
const body = (model = 'priced', extra = {}) => ({ model, messages: userMsg('budget me'), max_tokens: 200, ...extra });
function record(tenant, res) {
  assert.equal(res.status, 200, res.text);
  const c = res.headers['x-gateway-cost-usd'];
  assert.ok(c !== undefined, 'x-gateway-cost-usd header on a priced answer');
  assert.equal(usdToPico(c), COST_PICO, `cost header ${c} = $0.014`);
  seen.push({ tenant, cost: usdToPico(c) });
}

describe('keys', () => {
  test('no key / wrong key -> 401 OpenAI-shaped, upstream untouched; minted key (Bearer or x-api-key) -> 200', async () => {
    const n0 = up.requests.length;
    const none = await chat(gw, body());
    const e1 = openAiError(assert, none, 401);
    console.log(`# no key: ${JSON.stringify(e1)}`);
    const wrong = await chat(gw, body(), { headers: auth(keys.acme.key.slice(0, -2) + 'xx') });
    const e2 = openAiError(assert, wrong, 401);
    assert.equal(e2.code, 'invalid_api_key', JSON.stringify(e2));
    // The hash itself is not a key.
    const hash = await chat(gw, body(), { headers: auth(keys.acme.entry.sha256) });
    openAiError(assert, hash, 401);
    const models = await request(gw.url + '/v1/models');
    openAiError(assert, models, 401);
    assert.equal(up.requests.length, n0, 'no upstream call for unauthenticated requests');

    const ok = await chat(gw, body(), { headers: auth(keys.acme.key) });
    record('acme', ok);
    const ok2 = await chat(gw, body(), { headers: { 'x-api-key': keys.soft.key } });
    record('softco', ok2);
  });

  test('OpenAI SDK: wrong key raises AuthenticationError (401), right key works', async () => {
    const bad = new OpenAI({ baseURL: gw.url + '/v1', apiKey: 'gwk_not-a-key', maxRetries: 0, timeout: 10000 });
    await assert.rejects(bad.chat.completions.create(body()), (e) => {
      assert.ok(e instanceof OpenAI.AuthenticationError, `AuthenticationError, got ${e?.constructor?.name}: ${e?.message}`);
      assert.equal(e.status, 401);
      return true;
    });
    const good = new OpenAI({ baseURL: gw.url + '/v1', apiKey: keys.soft.key, maxRetries: 0, timeout: 10000 });
    const { data, response } = await good.chat.completions.create(body()).withResponse();
    assert.equal(data.choices[0].message.content, 'hello from pa');
    seen.push({ tenant: 'softco', cost: usdToPico(response.headers.get('x-gateway-cost-usd')) });
  });

  test('allowed models: acme (models: [priced]) gets 403 for `other`, /v1/models lists only `priced`', async () => {
    const n0 = up.requests.length;
    const r = await chat(gw, body('other'), { headers: auth(keys.acme.key) });
    const e = openAiError(assert, r, 403);
    assert.match(e.message, /acme/);
    assert.match(e.message, /other/);
    assert.equal(up.requests.length, n0, 'refused before any upstream call');
    const m = await request(gw.url + '/v1/models', { headers: auth(keys.acme.key) });
    assert.equal(m.status, 200, m.text);
    assert.deepEqual(m.json.data.map((x) => x.id).sort(), ['priced']);
    // A tenant without an allow-list sees every model and may use `other`.
    const all = await request(gw.url + '/v1/models', { headers: auth(keys.soft.key) });
    assert.deepEqual(all.json.data.map((x) => x.id).sort(), ['other', 'priced']);
    const o = await chat(gw, body('other'), { headers: auth(keys.soft.key) });
    record('softco', o);
  });
});

describe('budgets and limits', () => {
  test('hard daily budget: exhausted after two $0.014 requests -> 429 naming budget, tenant and reset; Retry-After; metric shows remaining', async () => {
    // acme already spent one request (keys test). Asking for n: 4 choices reserves four times the
    // output (4 x 200 tokens x $20/M = $0.016): $0.014 + $0.016 + the prompt is past $0.03.
    const nBefore = up.requests.length;
    const many = await chat(gw, body('priced', { n: 4 }), { headers: auth(keys.acme.key) });
    assert.equal(openAiError(assert, many, 429).code, 'budget_exceeded', 'n multiplies the worst case');
    assert.equal(up.requests.length, nBefore, 'refused before dispatch');
    // One more (by its second key, streamed) fits.
    const s = await chatStream(gw, body('priced', { stream: true }), { headers: auth(keys.acme2.key) });
    assert.equal(s.status, 200);
    assert.ok(s.done, 'stream completed');
    const comment = s.events.flatMap((e) => e.comments).find((c) => c.startsWith('x-gateway-cost-usd:'));
    assert.ok(comment, `cost comment in the stream: ${s.raw.slice(-400)}`);
    const cost = usdToPico(comment.split(':')[1]);
    assert.equal(cost, COST_PICO);
    seen.push({ tenant: 'acme', cost });

    const n0 = up.requests.length;
    const r = await chat(gw, body(), { headers: auth(keys.acme.key) });
    const e = openAiError(assert, r, 429);
    console.log(`# budget refusal: ${e.message} (retry-after ${r.headers['retry-after']})`);
    assert.equal(e.code, 'budget_exceeded', JSON.stringify(e));
    assert.match(e.message, /daily/i, 'names the budget period');
    assert.match(e.message, /\$0\.03\b/, 'names the budget amount');
    assert.match(e.message, /acme/, 'names the tenant');
    const tomorrow = new Date(Math.floor(Date.now() / 86400000 + 1) * 86400000).toISOString().replace(/\.000Z$/, 'Z');
    assert.ok(e.message.includes(tomorrow), `names the reset time ${tomorrow}: ${e.message}`);
    assert.equal(up.requests.length, n0, 'refused before dispatch');
    // Streams are refused the same way, before any SSE.
    const rs = await chat(gw, body('priced', { stream: true }), { headers: auth(keys.acme2.key) });
    assert.equal(openAiError(assert, rs, 429).code, 'budget_exceeded');

    const { samples } = await scrape(gw);
    const daily = metricValue(samples, 'gateway_budget_remaining_usd', { tenant: 'acme', period: 'daily' });
    const monthly = metricValue(samples, 'gateway_budget_remaining_usd', { tenant: 'acme', period: 'monthly' });
    console.log(`# gateway_budget_remaining_usd acme daily=${daily} monthly=${monthly}`);
    assert.ok(Math.abs(daily - (0.03 - 0.028)) < 1e-9, `daily remaining = 0.03 - 0.028, got ${daily}`);
    assert.ok(Math.abs(monthly - (1 - 0.028)) < 1e-9, `monthly remaining = 1 - 0.028, got ${monthly}`);
    // Retry-After = seconds until the budget resets (the message's time), not a generic 1.
    const ra = Number(r.headers['retry-after']);
    const untilReset = (Date.parse(tomorrow) - Date.now()) / 1000;
    assert.ok(Number.isInteger(ra) && Math.abs(ra - untilReset) <= 3, `Retry-After ${r.headers['retry-after']} ~ ${untilReset.toFixed(0)} s to the reset`);
  });

  test('soft budget never refuses; its remaining goes negative on /metrics', async () => {
    for (let i = 0; i < 3; i++) record('softco', await chat(gw, body(), { headers: auth(keys.soft.key) }));
    const spent = seen.filter((s) => s.tenant === 'softco').reduce((a, s) => a + s.cost, 0n);
    const { samples } = await scrape(gw);
    const daily = metricValue(samples, 'gateway_budget_remaining_usd', { tenant: 'softco', period: 'daily' });
    assert.ok(Math.abs(daily - (0.001 - Number(spent) / 1e12)) < 1e-9, `softco daily remaining = 0.001 - ${Number(spent) / 1e12}, got ${daily}`);
    assert.ok(daily < 0);
  });

  test('rpm limit 3: the 4th request within 60 s gets 429 rate_limit_rpm, Retry-After = when the first leaves the sliding window', async () => {
    // A fresh tenant. Sliding window (gateway/state/limits.h): no UTC minute boundary to avoid; the first
    // request's second leaves the window 61 s after it began.
    const statuses = [];
    let refusal;
    const firstBefore = Date.now();
    let firstAfter = 0;
    let refusedBefore = 0;
    let refusedAfter = 0;
    for (let i = 0; i < 4; i++) {
      const sent = Date.now();
      const r = await chat(gw, body(), { headers: auth(keys.rl.key) });
      if (i === 0) firstAfter = Date.now();
      statuses.push(r.status);
      if (r.status === 200) record('rlco', r);
      else if (!refusal) {
        refusal = r;
        refusedBefore = sent;
        refusedAfter = Date.now();
      }
    }
    console.log(`# rpm statuses: ${statuses.join(',')}`);
    assert.deepEqual(statuses, [200, 200, 200, 429]);
    const e = openAiError(assert, refusal, 429);
    assert.equal(e.code, 'rate_limit_rpm', JSON.stringify(e));
    assert.match(e.message, /rlco/);
    assert.match(e.message, /3 requests per minute/);
    const ra = Number(refusal.headers['retry-after']);
    // The gateway's clocks for both requests lie inside the client's [before, after] intervals.
    const leavesMin = (Math.floor(firstBefore / 1000) + 61) * 1000;
    const leavesMax = (Math.floor(firstAfter / 1000) + 61) * 1000;
    const lo = Math.ceil((leavesMin - refusedAfter) / 1000);
    const hi = Math.ceil((leavesMax - refusedBefore) / 1000);
    assert.ok(Number.isInteger(ra) && ra >= lo && ra <= hi, `Retry-After ${refusal.headers['retry-after']} in [${lo}, ${hi}] s: when the first request leaves the window`);
    assert.match(e.message, new RegExp(`retry in ${ra} s`));
  });
});

describe('spend reports', () => {
  test('GET /admin/spend?by=tenant and `gateway spend --by deployment` equal the sum of x-gateway-cost-usd the clients saw', async () => {
    const noKey = await request(gw.url + '/admin/spend?by=tenant');
    openAiError(assert, noKey, 401);
    const r = await request(gw.url + '/admin/spend?by=tenant', { headers: auth(ADMIN_KEY) });
    assert.equal(r.status, 200, r.text);
    const byTenant = {};
    for (const s of seen) byTenant[s.tenant] = (byTenant[s.tenant] ?? 0n) + s.cost;
    const total = seen.reduce((a, s) => a + s.cost, 0n);
    console.log(`# client-seen: ${seen.length} priced answers, $${Number(total) / 1e12}; /admin/spend: ${r.text}`);
    const rows = Object.fromEntries(r.json.rows.map((x) => [x.key, BigInt(x.cost_pico)]));
    assert.deepEqual(rows, byTenant, 'per-tenant ledger spend = per-tenant sum of cost headers');
    assert.equal(BigInt(r.json.total.cost_pico), total);
    assert.equal(r.json.total.requests, seen.length);
    assert.equal(usdToPico(r.json.total.cost_usd), total);

    // The CLI loads the same config, whose server.admin_key_env must name a set variable
    // (config.cpp), so it runs with that variable too.
    const cli = await runEnv(GATEWAY_BIN, ['spend', '--config', gw.cfgPath, '--by', 'deployment'], { GW_TEST_ADMIN_KEY: ADMIN_KEY });
    assert.equal(cli.code, 0, cli.stderr);
    const rep = JSON.parse(cli.stdout);
    console.log(`# gateway spend --by deployment: ${cli.stdout.trim()}`);
    assert.deepEqual(rep.rows.map((x) => x.key), ['pa@default/m']);
    assert.equal(BigInt(rep.total.cost_pico), total);
    assert.equal(rep.total.prompt_tokens, 1000 * seen.length);
    assert.equal(rep.total.completion_tokens, 200 * seen.length);
  });
});
