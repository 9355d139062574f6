// Geography, compliance and cost end to end through the real gateway, on the BUILT-IN catalog
// deployments (deepseek@global/deepseek-flash, qwen@us-east-1/qwen-flash, glm@intl/glm-4.7-flashx,
// kimi@intl/kimi-k2.5, ...) whose base URLs point at programmable fakes (lib/routing_upstream.mjs,
// which answer any model id), so the catalog's own facts and prices are what is tested.
//
// Trusted request headers: x-gateway-tenant, x-gateway-client-region, x-gateway-data-classification.
// Costs are checked against the vendors' list prices (DeepSeek's peak and off-peak prices): deepseek-flash peak per 1M tokens: cache hit 0.006, miss 0.30,
// output 1.20; off-peak half; peak = Mon-Fri 01:00-04:00 and 06:00-10:00 UTC.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chat, chatStream, userMsg, KEY_ENV } from './lib/gateway.mjs';
import { startUpstream, startPolicyGateway, explain } from './lib/routing_upstream.mjs';

// DeepSeek-shaped usage the fake returns: 1000 prompt tokens of which 600 cache hits, 200 output
// tokens of which 50 reasoning (priced as output).
const DS_USAGE = {
  prompt_tokens: 1000,
  completion_tokens: 200,
  total_tokens: 1200,
  prompt_cache_hit_tokens: 600,
  prompt_cache_miss_tokens: 400,
  completion_tokens_details: { reasoning_tokens: 50 },
};
const DS_PEAK = { hit: 0.006, miss: 0.3, out: 1.2 }; // USD per 1M tokens, reference table
const dsCost = (factor) => (factor * (600 * DS_PEAK.hit + 400 * DS_PEAK.miss + 200 * DS_PEAK.out)) / 1e6;
// Reference peak windows (UTC). Chinese public holidays are off-peak too, but the built-in catalog
// has no holiday dates (operators add them in YAML), so the built-in schedule is the weekday rule.
function isPeak(d = new Date()) {
  const wd = d.getUTCDay(); // 0 = Sunday
  if (wd === 0 || wd === 6) return false;
  const m = d.getUTCHours() * 60 + d.getUTCMinutes();
  return (m >= 60 && m < 240) || (m >= 360 && m < 600);
}
const isoDay = (offsetDays) => new Date(Date.now() + offsetDays * 86400000).toISOString().slice(0, 10);

const POLICY = `
version: 1
name: compliance
operator_region: US
tenants:
  bank-us: {client_region: US-NY, data_classification: confidential}
catalog:
  # GLM made the cheapest deployment on purpose: only the constraints can keep it out.
  - ref: glm@intl/glm-4.7-flashx
    price: {input: 0.001, output: 0.001}
  # The same DeepSeek model behind two more instances whose schedules make the price factor
  # independent of the clock: always peak / off-peak today (offpeak_dates around today, UTC).
  - ref: ds-peak@global/deepseek-flash
    price: {schedule: {peak: ["Mon-Sun 00:00-24:00"], offpeak_factor: 0.5}}
  - ref: ds-off@global/deepseek-flash
    price: {schedule: {peak: ["Mon-Fri 01:00-04:00", "Mon-Fri 06:00-10:00"], offpeak_factor: 0.5, offpeak_dates: [${isoDay(-1)}, ${isoDay(0)}, ${isoDay(1)}]}}
routes:
  - name: regulated
    match: {tenant: bank-us}
    constraints: {presets: [us-regulated-enterprise]}
    objective: {type: weighted, weights: {cost: 1, latency: 0, error_risk: 0}}
    candidates: [glm@intl/glm-4.7-flashx, deepseek/deepseek-flash, qwen@us-east-1/qwen-flash]
  - name: eu-preset-only
    match: {model: eu-preset}
    constraints: {presets: [eu-gdpr]}
    candidates: [deepseek/deepseek-flash, qwen@ap-southeast-1/qwen-flash, qwen@us-east-1/qwen-flash, glm@intl/glm-4.7-flashx, kimi@intl/kimi-k2.5]
  - name: eu-personal
    match: {data_classification: eu_personal}
    constraints: {presets: [eu-gdpr], required_inference_regions: [EEA]}
    candidates: [deepseek/deepseek-flash, qwen@ap-southeast-1/qwen-flash, qwen@us-east-1/qwen-flash, glm@intl/glm-4.7-flashx, kimi@intl/kimi-k2.5]
  - name: no-china
    match: {model: no-china}
    constraints: {denied_jurisdictions: [PRC]}
    candidates: [deepseek/deepseek-flash, qwen@us-east-1/qwen-flash, glm@intl/glm-4.7-flashx]
  - name: cost-builtin
    match: {model: ds-builtin}
    objective: ordered
    candidates: [deepseek/deepseek-flash]
  - name: cost-peak
    match: {model: ds-peak}
    objective: ordered
    candidates: [ds-peak/deepseek-flash]
  - name: cost-offpeak
    match: {model: ds-offpeak}
    objective: ordered
    candidates: [ds-off/deepseek-flash]
  - name: general
    objective: {type: weighted, weights: {cost: 1, latency: 0, error_risk: 0}}
    candidates: [glm@intl/glm-4.7-flashx, deepseek/deepseek-flash, qwen@us-east-1/qwen-flash, kimi@intl/kimi-k2.5]
`;

const up = {};
let gw, untrusting;
const KEYS = { deepseek: 'sk-ds', qwen: 'sk-qw', kimi: 'sk-km', glm: 'zai.key' };

before(async () => {
  up.deepseek = await startUpstream({ name: 'deepseek', usage: DS_USAGE });
  up.qwen = await startUpstream({ name: 'qwen' });
  up.glm = await startUpstream({ name: 'glm' });
  up.kimi = await startUpstream({ name: 'kimi' });
  const qwenUrl = up.qwen.origin + '/compatible-mode/v1';
  const providers = {
    deepseek: { api_key_env: KEY_ENV.deepseek, base_urls: { global: up.deepseek.origin } },
    'ds-peak': { type: 'deepseek', api_key_env: KEY_ENV.deepseek, base_urls: { global: up.deepseek.origin } },
    'ds-off': { type: 'deepseek', api_key_env: KEY_ENV.deepseek, base_urls: { global: up.deepseek.origin } },
    qwen: { api_key_env: KEY_ENV.qwen, base_urls: { 'us-east-1': qwenUrl, 'ap-southeast-1': qwenUrl, 'cn-beijing': qwenUrl, 'cn-hongkong': qwenUrl } },
    glm: { api_key_env: KEY_ENV.glm, auth: 'bearer', base_urls: { intl: up.glm.origin + '/api/paas/v4', cn: up.glm.origin + '/api/paas/v4' } },
    kimi: { api_key_env: KEY_ENV.kimi, base_urls: { intl: up.kimi.origin + '/v1', cn: up.kimi.origin + '/v1' } },
  };
  const env = {};
  for (const [d, k] of Object.entries(KEYS)) env[KEY_ENV[d]] = k;
  gw = await startPolicyGateway({ policy: POLICY, providers, env, routing: { policy_poll_ms: 0, trust_routing_headers: true } });
  untrusting = await startPolicyGateway({ policy: POLICY, providers, env, routing: { policy_poll_ms: 0, trust_routing_headers: false } });
});

after(async () => {
  await Promise.all(Object.values(up).map((u) => u.close()));
  await gw?.stop();
  await untrusting?.stop();
});

const body = (model = 'auto', extra = {}) => ({ model, messages: userMsg('compliance'), max_tokens: 100, ...extra });
const total = () => Object.values(up).reduce((a, u) => a + u.requests.length, 0);

// Asserts a refusal that names every candidate with its reason; returns the message.
function assertRefusal(res, status, candidates, reasonRes = {}) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  const msg = res.json?.error?.message;
  assert.equal(typeof msg, 'string', res.text);
  console.log(`# refusal ${res.status}: ${msg}`);
  for (const id of candidates) {
    const m = new RegExp(`${id.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} excluded: ([^;]+)`).exec(msg);
    assert.ok(m, `refusal names ${id} with its reason: ${msg}`);
    if (reasonRes[id]) assert.match(m[1], reasonRes[id], `${id}: ${m[1]}`);
  }
  return msg;
}

describe('fail closed: 403 naming every candidate', () => {
  test('EU personal data (eu-gdpr + EEA inference): every Chinese-provider endpoint refused, none called', async () => {
    const n0 = total();
    const ids = ['deepseek@global/deepseek-flash', 'qwen@ap-southeast-1/qwen-flash', 'qwen@us-east-1/qwen-flash', 'glm@intl/glm-4.7-flashx', 'kimi@intl/kimi-k2.5'];
    const res = await chat(gw, body(), { headers: { 'x-gateway-client-region': 'DE', 'x-gateway-data-classification': 'eu_personal' } });
    const msg = assertRefusal(res, 403, ids);
    assert.match(msg, /eu-personal/, 'names the route');
    assert.equal(res.headers['x-gateway-deployment'], undefined);
    assert.equal(total(), n0, 'no upstream called');
    // Explain gives the same per-candidate reasons, classified as policy exclusions.
    const ex = await explain(gw, body(), { 'x-gateway-client-region': 'DE', 'x-gateway-data-classification': 'eu_personal' });
    assert.equal(ex.route, 'eu-personal');
    assert.equal(ex.request.client_country, 'DE');
    assert.deepEqual(ex.candidates.map((c) => c.deployment), ids);
    for (const c of ex.candidates) {
      assert.equal(c.status, 'excluded', JSON.stringify(c));
      assert.equal(c.exclusion, 'policy', JSON.stringify(c));
      assert.ok(msg.includes(`${c.deployment} excluded: ${c.reason}`), `HTTP refusal and explain agree for ${c.deployment}`);
    }
    assert.equal(ex.error?.status, 403);
  });

  test('eu-gdpr preset alone: eu_personal data refused everywhere; the same request without personal data is served', async () => {
    const ids = ['deepseek@global/deepseek-flash', 'qwen@ap-southeast-1/qwen-flash', 'qwen@us-east-1/qwen-flash', 'glm@intl/glm-4.7-flashx', 'kimi@intl/kimi-k2.5'];
    const n0 = total();
    const res = await chat(gw, body('eu-preset'), { headers: { 'x-gateway-client-region': 'FR', 'x-gateway-data-classification': 'eu_personal' } });
    assertRefusal(res, 403, ids);
    assert.equal(total(), n0);
    const ex = await explain(gw, body('eu-preset'), { 'x-gateway-client-region': 'FR' });
    const ok = ex.candidates.filter((c) => c.status !== 'excluded').map((c) => c.deployment);
    assert.ok(!ok.includes('deepseek@global/deepseek-flash'), 'eu-gdpr: never inference in CN');
    assert.ok(ok.length >= 1, `without eu_personal data some endpoint qualifies: ${JSON.stringify(ex.candidates.map((c) => [c.deployment, c.reason]))}`);
    const r = await chat(gw, body('eu-preset'), { headers: { 'x-gateway-client-region': 'FR' } });
    assert.equal(r.status, 200, r.text);
    assert.ok(ok.includes(r.headers['x-gateway-deployment']));
  });

  test('denied_jurisdictions [PRC]: 403 with the jurisdiction for each candidate', async () => {
    const ids = ['deepseek@global/deepseek-flash', 'qwen@us-east-1/qwen-flash', 'glm@intl/glm-4.7-flashx'];
    const res = await chat(gw, body('no-china'));
    assertRefusal(res, 403, ids, Object.fromEntries(ids.map((i) => [i, /CN|jurisdiction/i])));
  });

  test('sanctioned client origin (IR, UA-43 Crimea): 403 for every candidate, whatever the route', async () => {
    const ids = ['glm@intl/glm-4.7-flashx', 'deepseek@global/deepseek-flash', 'qwen@us-east-1/qwen-flash', 'kimi@intl/kimi-k2.5'];
    for (const region of ['IR', 'UA-43']) {
      const n0 = total();
      const res = await chat(gw, body(), { headers: { 'x-gateway-client-region': region } });
      assertRefusal(res, 403, ids);
      assert.equal(total(), n0, `no upstream called for a client in ${region}`);
    }
    // The same request from an ordinary region is served.
    const ok = await chat(gw, body(), { headers: { 'x-gateway-client-region': 'FR' } });
    assert.equal(ok.status, 200, ok.text);
  });
});

describe('US-regulated tenant never reaches an entity-listed (GLM) deployment', () => {
  test('GLM is the cheapest and wins for others; tenant bank-us gets qwen@us-east-1, and no fall-back to GLM or DeepSeek even when it fails', async () => {
    // Control: an ordinary request goes to the (cheapest) GLM deployment.
    const ctl = await chat(gw, body());
    assert.equal(ctl.status, 200, ctl.text);
    assert.equal(ctl.headers['x-gateway-deployment'], 'glm@intl/glm-4.7-flashx');

    const glm0 = up.glm.requests.length;
    const ds0 = up.deepseek.requests.length;
    const hdr = { 'x-gateway-tenant': 'bank-us' };
    const ex = await explain(gw, body(), hdr);
    assert.equal(ex.route, 'regulated');
    assert.equal(ex.request.client_country, 'US', 'tenant default region applied');
    const glm = ex.candidates.find((c) => c.deployment === 'glm@intl/glm-4.7-flashx');
    assert.equal(glm.status, 'excluded');
    assert.match(glm.reason, /entity|us_entity_list/i, glm.reason);
    const ds = ex.candidates.find((c) => c.deployment === 'deepseek@global/deepseek-flash');
    assert.equal(ds.status, 'excluded', `DeepSeek runs inference in CN: ${JSON.stringify(ds)}`);
    assert.deepEqual(ex.plan, ['qwen@us-east-1/qwen-flash']);

    for (let i = 0; i < 5; i++) {
      const r = await chat(gw, body(), { headers: hdr });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['x-gateway-deployment'], 'qwen@us-east-1/qwen-flash');
      assert.equal(r.headers['x-gateway-route'], 'regulated');
    }
    // The only allowed deployment fails: the client gets the error, never an excluded fall-back.
    up.qwen.set({ status: 500 });
    try {
      for (let i = 0; i < 3; i++) {
        const r = await chat(gw, body(), { headers: hdr });
        assert.ok(r.status >= 500, `bank-us with qwen failing -> 5xx, got ${r.status}: ${r.text.slice(0, 200)}`);
        if (i === 0) console.log(`# bank-us while qwen fails: ${r.status} ${r.text.slice(0, 300)}`);
        assert.notEqual(r.headers['x-gateway-deployment'], 'glm@intl/glm-4.7-flashx');
      }
    } finally {
      up.qwen.set({ status: 200 });
    }
    assert.equal(up.glm.requests.length, glm0, 'GLM never called for tenant bank-us');
    assert.equal(up.deepseek.requests.length, ds0, 'DeepSeek never called for tenant bank-us');
  });
});

describe('invoice cost: x-gateway-cost-usd from the fake usage and the catalog price', () => {
  async function costOf(model, stream = false) {
    for (let tries = 0; tries < 3; tries++) {
      const before = isPeak();
      const r = stream ? await chatStream(gw, body(model, { stream: true })) : await chat(gw, body(model));
      const afterP = isPeak();
      if (before !== afterP) continue; // crossed a peak boundary during the request: try again
      assert.equal(r.status, 200, r.text ?? r.raw);
      return { r, peakNow: before };
    }
    throw new Error('could not make a request away from a peak/off-peak boundary');
  }
  const near = (got, want, what) =>
    assert.ok(Math.abs(Number(got) - want) < 0.6e-9, `${what}: x-gateway-cost-usd ${got}, expected ${want.toFixed(10)} (hand-computed)`);

  test('always-peak schedule: 600 hit + 400 miss + 200 out at peak prices', async () => {
    const { r } = await costOf('ds-peak');
    assert.equal(r.headers['x-gateway-deployment'], 'ds-peak@global/deepseek-flash');
    near(r.headers['x-gateway-cost-usd'], dsCost(1), 'peak'); // 0.0003636
    assert.equal(r.json.usage.prompt_tokens_details?.cached_tokens, 600, 'cache hits normalised');
  });

  test('off-peak today (offpeak_dates): half the peak price', async () => {
    const { r } = await costOf('ds-offpeak');
    near(r.headers['x-gateway-cost-usd'], dsCost(0.5), 'off-peak'); // 0.0001818
  });

  test('built-in schedule at the current UTC time (Mon-Fri 01-04, 06-10 peak)', async () => {
    const { r, peakNow } = await costOf('ds-builtin');
    assert.equal(r.headers['x-gateway-deployment'], 'deepseek@global/deepseek-flash');
    console.log(`# cost: ${new Date().toISOString()} is ${peakNow ? 'peak' : 'off-peak'}: x-gateway-cost-usd ${r.headers['x-gateway-cost-usd']}`);
    near(r.headers['x-gateway-cost-usd'], dsCost(peakNow ? 1 : 0.5), peakNow ? 'peak' : 'off-peak');
    // Estimated cost header = explain's estimate for the primary (input estimate at the miss price
    // + max_tokens at the output price, same factor).
    const est = (inTokens, peak) => ((inTokens * DS_PEAK.miss + 100 * DS_PEAK.out) * (peak ? 1 : 0.5)) / 1e6;
    let ex, exPeak;
    do {
      exPeak = isPeak();
      ex = await explain(gw, body('ds-builtin'));
    } while (isPeak() !== exPeak);
    const c = ex.candidates[0];
    assert.ok(Math.abs(c.est_cost_usd - est(ex.request.est_input_tokens, exPeak)) < 1e-12, `explain est_cost_usd ${c.est_cost_usd} vs hand-computed ${est(ex.request.est_input_tokens, exPeak)}`);
    const want = est(ex.request.est_input_tokens, peakNow); // same body, same input estimate
    assert.ok(Math.abs(Number(r.headers['x-gateway-estimated-cost-usd']) - want) < 0.6e-9, `x-gateway-estimated-cost-usd ${r.headers['x-gateway-estimated-cost-usd']} vs ${want}`);
  });

  test('stream: the cost arrives as a trailing SSE comment just before [DONE]', async () => {
    const { r, peakNow } = await costOf('ds-builtin', true);
    assert.ok(r.done, r.raw.slice(-500));
    const idx = r.events.findIndex((e) => e.comments.some((c) => c.startsWith('x-gateway-cost-usd:')));
    assert.ok(idx >= 0, `no cost comment in the stream: ${r.raw.slice(-600)}`);
    const value = r.events[idx].comments.find((c) => c.startsWith('x-gateway-cost-usd:')).split(':')[1].trim();
    near(value, dsCost(peakNow ? 1 : 0.5), 'stream');
    const doneIdx = r.events.findIndex((e) => e.data === '[DONE]');
    assert.equal(doneIdx, idx + 1, 'cost comment immediately before [DONE]');
  });
});

describe('trust_routing_headers: false', () => {
  test('routing headers from the client are ignored (no tenant, region or classification taken from them)', async () => {
    const hdr = { 'x-gateway-tenant': 'bank-us', 'x-gateway-client-region': 'IR', 'x-gateway-data-classification': 'eu_personal' };
    const ex = await explain(untrusting, body(), hdr);
    assert.equal(ex.route, 'general', JSON.stringify(ex.request));
    assert.equal(ex.request.tenant, '');
    assert.equal(ex.request.client_country, '');
    const r = await chat(untrusting, body(), { headers: hdr });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-gateway-route'], 'general');
    assert.equal(r.headers['x-gateway-deployment'], 'glm@intl/glm-4.7-flashx');
  });
});
