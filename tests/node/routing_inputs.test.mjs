// Inputs that compliance rules test, end to end through the real binary against fakes that speak the
// vendors' wire formats: client regions (ISO 3166 + sanctioned-territory aliases, anything else a
// 400 naming the header), data tags in any spelling (unknown ones a 400, or dropped with
// routing.unknown_data_tags: ignore), tenant settings that headers cannot lift, tenant compliance
// presets, self-hosted residency, region-less candidates meaning the configured region, base_url on
// a built-in provider type, and configuration that `gateway check` refuses with file:line:column.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { chat, userMsg, KEY_ENV, GATEWAY_BIN, run, tmpDir, toYaml, defaultConfig, startGateway } from './lib/gateway.mjs';
import { startUpstream, startPolicyGateway, explain } from './lib/routing_upstream.mjs';
import { scrape, metricValue } from './lib/prometheus.mjs';
import { request } from './lib/gateway.mjs';

const POLICY = `
version: 1
name: inputs
catalog:
  # A self-hosted server the operator runs in CN (declared facts): eu-gdpr must keep EU personal
  # data away from it although its jurisdiction is "self".
  - ref: cnbox@default/box-model
    jurisdiction: self
    developer_country: US
    inference_countries: [CN]
    storage_countries: [CN]
    trains_on_customer_data: "no"
    doj_dsp_covered_person: "no"
    context_window: 131072
    price: {input: 0.0001, output: 0.0001}
routes:
  - name: eu-personal
    match: {data_classification: eu_personal}
    constraints: {presets: [eu-gdpr]}
    candidates: [deepseek/deepseek-flash, qwen/qwen-flash]
  - name: gdpr
    match: {model: gdpr}
    constraints: {presets: [eu-gdpr]}
    candidates: [cnbox/box-model, qwen/qwen-flash]
  - name: general
    objective: ordered
    candidates: [qwen/qwen-flash, deepseek/deepseek-flash]
`;

const sha = (k) => 'sha256:' + crypto.createHash('sha256').update(k).digest('hex');
const TENANTS = {
  iran: { keys: [{ id: 'k1', sha256: sha('key-iran') }], client_region: 'IR' },
  eu: { keys: [{ id: 'k1', sha256: sha('key-eu') }], client_region: 'DE', data_classification: 'eu_personal' },
  federal: { keys: [{ id: 'k1', sha256: sha('key-federal') }], compliance_profiles: ['us-federal'] },
  legacy: { keys: [{ id: 'k1', sha256: sha('key-legacy') }], compliance_profile: 'us-federal' },
  roaming: { keys: [{ id: 'k1', sha256: sha('key-roaming') }], client_region: 'DE', allow_header_overrides: ['x-gateway-client-region'] },
  plain: { keys: [{ id: 'k1', sha256: sha('key-plain') }] },
};
const auth = (k, extra = {}) => ({ authorization: `Bearer ${k}`, ...extra });

const up = {};
let gw, lenient;

before(async () => {
  up.deepseek = await startUpstream({ name: 'deepseek' });
  up.qwen = await startUpstream({ name: 'qwen' });
  up.box = await startUpstream({ name: 'cnbox' });
  const providers = {
    deepseek: { api_key_env: KEY_ENV.deepseek, base_urls: { global: up.deepseek.origin } },
    // base_url on a built-in type: replaces the configured region's URL; the policy's region-less
    // candidate `qwen/qwen-flash` means that region, not every built-in one.
    qwen: { api_key_env: KEY_ENV.qwen, region: 'ap-southeast-1', base_url: up.qwen.origin + '/compatible-mode/v1' },
    cnbox: { type: 'openai_compatible', base_url: up.box.origin + '/v1' },
  };
  const env = { [KEY_ENV.deepseek]: 'sk-ds', [KEY_ENV.qwen]: 'sk-qwen-secret' };
  gw = await startPolicyGateway({ policy: POLICY, providers, env, tenants: TENANTS, routing: { policy_poll_ms: 0 } });
  lenient = await startPolicyGateway({ policy: POLICY, providers, env, routing: { policy_poll_ms: 0, unknown_data_tags: 'ignore' } });
});

after(async () => {
  await Promise.all(Object.values(up).map((u) => u.close()));
  await gw?.stop();
  await lenient?.stop();
});

const body = (model = 'auto') => ({ model, messages: userMsg('inputs'), max_tokens: 50 });
const total = () => Object.values(up).reduce((a, u) => a + u.requests.length, 0);

function assertInvalid(res, code, param) {
  assert.equal(res.status, 400, res.text);
  assert.equal(res.json?.error?.code, code, res.text);
  assert.equal(res.json?.error?.param, param, res.text);
  assert.equal(res.json?.error?.type, 'invalid_request_error', res.text);
  assert.match(res.json.error.message, new RegExp(param), res.text);
}

describe('client region: ISO 3166, aliases of sanctioned territories, anything else a 400', () => {
  test('IRN, Iran, XX, UA-433: 400 invalid_client_region naming the header; no upstream called', async () => {
    for (const region of ['IRN', 'Iran', 'XX', 'UA-433', 'North Korea']) {
      const n0 = total();
      const res = await chat(gw, body(), { headers: auth('key-plain', { 'x-gateway-client-region': region }) });
      assertInvalid(res, 'invalid_client_region', 'x-gateway-client-region');
      assert.equal(total(), n0, region);
    }
  });

  test('RU-CR, RU-SEV, UA_43, UA43, Crimea, " ir ": 403 sanctioned-origin-block; " de " is served', async () => {
    for (const region of ['RU-CR', 'RU-SEV', 'UA_43', 'UA43', 'crimea', ' ir ', 'Sevastopol', 'ua-14']) {
      const n0 = total();
      const res = await chat(gw, body(), { headers: auth('key-plain', { 'x-gateway-client-region': region }) });
      assert.equal(res.status, 403, `${region}: ${res.text}`);
      assert.match(res.json.error.message, /sanctioned-origin-block/);
      assert.equal(total(), n0, region);
    }
    const ok = await chat(gw, body(), { headers: auth('key-plain', { 'x-gateway-client-region': ' de ' }) });
    assert.equal(ok.status, 200, ok.text);
  });
});

describe('data tags: one vocabulary, any spelling', () => {
  test('EU_PERSONAL, eu-personal, Eu-Personal as tag or classification: eu-gdpr keeps every non-EU deployment out', async () => {
    const cases = [
      { 'x-gateway-data-tags': 'EU_PERSONAL' },
      { 'x-gateway-data-tags': 'us_gov_related, eu-personal' },
      { 'x-gateway-data-classification': 'Eu-Personal' },
    ];
    for (const h of cases) {
      const n0 = total();
      const res = await chat(gw, body('gdpr'), { headers: auth('key-plain', h) });
      assert.equal(res.status, 403, `${JSON.stringify(h)}: ${res.text}`);
      assert.equal(total(), n0);
    }
    // Without the tag the same route serves (qwen@ap-southeast-1 passes eu-gdpr).
    const ok = await chat(gw, body('gdpr'), { headers: auth('key-plain') });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.headers['x-gateway-deployment'], 'qwen@ap-southeast-1/qwen-flash');
  });

  test('US_DSP:HEALTH and EAR_CONTROLLED are the known tags; a misspelt tag is a 400 naming the header', async () => {
    const ok = await chat(gw, body(), { headers: auth('key-plain', { 'x-gateway-data-tags': 'US_DSP:HEALTH, EAR-CONTROLLED' }) });
    assert.equal(ok.status, 200, ok.text);
    const ex = await explain(gw, body(), { 'x-gateway-data-tags': 'US_DSP:HEALTH, EAR-CONTROLLED' });
    assert.ok(ex.request.data_tags.includes('us_dsp:health') && ex.request.data_tags.includes('ear_controlled'), JSON.stringify(ex.request));
    const n0 = total();
    const bad = await chat(gw, body(), { headers: auth('key-plain', { 'x-gateway-data-tags': 'eu_personnal' }) });
    assertInvalid(bad, 'invalid_data_tag', 'x-gateway-data-tags');
    const badClass = await chat(gw, body(), { headers: auth('key-plain', { 'x-gateway-data-classification': 'top-secret' }) });
    assertInvalid(badClass, 'invalid_data_classification', 'x-gateway-data-classification');
    assert.equal(total(), n0);
  });

  test('routing.unknown_data_tags: ignore drops the unknown tag and keeps the known ones', async () => {
    const ok = await chat(lenient, body(), { headers: { 'x-gateway-data-tags': 'eu_personnal' } });
    assert.equal(ok.status, 200, ok.text);
    const still = await chat(lenient, body('gdpr'), { headers: { 'x-gateway-data-tags': 'eu_personnal, EU-PERSONAL' } });
    assert.equal(still.status, 403, still.text);
    const region = await chat(lenient, body(), { headers: { 'x-gateway-client-region': 'IRN' } });
    assertInvalid(region, 'invalid_client_region', 'x-gateway-client-region');
  });
});

describe('tenant settings are authoritative: headers only narrow', () => {
  test('tenant client_region IR + header US: 403; header US for a plain tenant: served', async () => {
    const n0 = total();
    const res = await chat(gw, body(), { headers: auth('key-iran', { 'x-gateway-client-region': 'US' }) });
    assert.equal(res.status, 403, res.text);
    assert.match(res.json.error.message, /sanctioned-origin-block/);
    assert.equal(total(), n0);
    const ok = await chat(gw, body(), { headers: auth('key-plain', { 'x-gateway-client-region': 'US' }) });
    assert.equal(ok.status, 200, ok.text);
  });

  test('a header adds a region whose rules apply too: tenant DE + header RU-CR is refused', async () => {
    const res = await chat(gw, body(), { headers: auth('key-eu', { 'x-gateway-client-region': 'RU-CR' }) });
    assert.equal(res.status, 403, res.text);
  });

  test('tenant classified eu_personal + header public: still routed by eu_personal (refused here, no CN vendor called)', async () => {
    const n0 = total();
    const res = await chat(gw, body(), { headers: auth('key-eu', { 'x-gateway-data-classification': 'public' }) });
    assert.equal(res.status, 403, res.text);
    assert.match(res.json.error.message, /eu-personal/);
    assert.equal(total(), n0);
  });

  test('allow_header_overrides lets a tenant replace its region with the header', async () => {
    const ok = await chat(gw, body(), { headers: auth('key-roaming', { 'x-gateway-client-region': 'US' }) });
    assert.equal(ok.status, 200, ok.text);
    const blocked = await chat(gw, body(), { headers: auth('key-roaming', { 'x-gateway-client-region': 'IR' }) });
    assert.equal(blocked.status, 403, blocked.text);
  });

  test('compliance_profiles: [us-federal] (and the older compliance_profile) enforced on every route: no PRC vendor', async () => {
    for (const key of ['key-federal', 'key-legacy']) {
      const n0 = total();
      const res = await chat(gw, body(), { headers: auth(key) });
      assert.equal(res.status, 403, res.text);
      assert.match(res.json.error.message, /tenant preset us-federal/, res.text);
      assert.equal(total(), n0);
    }
    const ok = await chat(gw, body(), { headers: auth('key-plain') });
    assert.equal(ok.status, 200, ok.text);
  });
});

describe('residency and regions mean what the operator configured', () => {
  test('eu-gdpr + eu_personal never goes to a self-hosted box declared in CN', async () => {
    const b0 = up.box.requests.length;
    const res = await chat(gw, body('gdpr'), { headers: auth('key-plain', { 'x-gateway-data-tags': 'eu_personal' }) });
    assert.equal(res.status, 403, res.text);
    assert.match(res.json.error.message, /cnbox@default\/box-model excluded: eu-gdpr: inference in CN/, res.text);
    assert.equal(up.box.requests.length, b0);
  });

  test('qwen/qwen-flash means the configured region only; base_url on a built-in type receives the request and the key', async () => {
    const ex = await explain(gw, body());
    const qwen = ex.candidates.map((c) => c.deployment).filter((d) => d.startsWith('qwen'));
    assert.deepEqual(qwen, ['qwen@ap-southeast-1/qwen-flash']);
    const q0 = up.qwen.requests.length;
    const res = await chat(gw, body(), { headers: auth('key-plain') });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['x-gateway-deployment'], 'qwen@ap-southeast-1/qwen-flash');
    assert.equal(up.qwen.requests.length, q0 + 1, 'the request went to base_url');
    const got = up.qwen.requests.at(-1);
    assert.equal(got.headers.authorization, 'Bearer sk-qwen-secret');
    assert.equal(got.path, '/compatible-mode/v1/chat/completions');
  });
});

describe('plain models: lists (no policy) still validate the region and block sanctioned origins', () => {
  test('IRN -> 400 naming the header; RU-CR -> 403; DE -> served', async () => {
    const c = defaultConfig();
    c.providers = { deepseek: { api_key_env: KEY_ENV.deepseek, base_urls: { global: up.deepseek.origin } } };
    c.models = { auto: ['deepseek/deepseek-flash'] };
    const plain = await startGateway({ config: c, env: { [KEY_ENV.deepseek]: 'sk-ds' } });
    try {
      const n0 = total();
      assertInvalid(await chat(plain, body(), { headers: { 'x-gateway-client-region': 'IRN' } }), 'invalid_client_region', 'x-gateway-client-region');
      const blocked = await chat(plain, body(), { headers: { 'x-gateway-client-region': 'RU-CR' } });
      assert.equal(blocked.status, 403, blocked.text);
      assert.match(blocked.json.error.message, /sanctioned-origin-block/);
      assert.equal(total(), n0);
      const ok = await chat(plain, body(), { headers: { 'x-gateway-client-region': 'DE' } });
      assert.equal(ok.status, 200, ok.text);
    } finally {
      await plain.stop();
    }
  });
});

describe('a policy that can never serve', () => {
  const ONE_DEAD = POLICY.replace('routes:\n', `routes:
  - name: nowhere
    match: {model: nowhere}
    constraints: {allowed_jurisdictions: [US]}
    candidates: [deepseek/deepseek-flash, qwen/qwen-flash]
`);
  const ALL_DEAD = `
routes:
  - name: nowhere
    constraints: {allowed_jurisdictions: [US]}
    candidates: [deepseek/deepseek-flash, qwen/qwen-flash]
`;
  const value = async (name, labels = {}) => metricValue((await scrape(gw)).samples, name, labels);

  test('one route that can never serve: check warns at its line, reload is ok with a warning, counted in gateway_policy_warnings', async () => {
    assert.equal(await value('gateway_policy_warnings'), 0);
    const dir = tmpDir('gw-inputs-');
    const file = path.join(dir, 'one-dead.yaml');
    fs.writeFileSync(file, ONE_DEAD);
    const c = await run(GATEWAY_BIN, ['check', file]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stderr, /one-dead\.yaml:\d+:\d+: warning: route 'nowhere' can never serve/, c.stderr);
    const ok0 = (await value('gateway_policy_reloads_total', { result: 'ok' })) ?? 0;
    fs.writeFileSync(gw.policyPath, ONE_DEAD);
    const r = await request(gw.url + '/admin/reload', { method: 'POST' });
    assert.equal(r.status, 200, r.text);
    assert.equal(await value('gateway_policy_reloads_total', { result: 'ok' }), ok0 + 1);
    assert.equal(await value('gateway_policy_warnings'), 1);
    assert.match(gw.stderr, /policy warning: .*route 'nowhere' can never serve/);
    const res = await chat(gw, body('nowhere'), { headers: auth('key-plain') });
    assert.equal(res.status, 403, res.text);
  });

  test('a policy that excludes everything everywhere: check fails, reload refused, the previous policy keeps serving', async () => {
    const dir = tmpDir('gw-inputs-');
    const file = path.join(dir, 'all-dead.yaml');
    fs.writeFileSync(file, ALL_DEAD);
    const c = await run(GATEWAY_BIN, ['check', file]);
    assert.notEqual(c.code, 0);
    assert.match(c.stderr, /all-dead\.yaml:\d+:\d+: the policy excludes every candidate of every route/, c.stderr);
    const err0 = (await value('gateway_policy_reloads_total', { result: 'error' })) ?? 0;
    const previous = fs.readFileSync(gw.policyPath, 'utf8');
    fs.writeFileSync(gw.policyPath, ALL_DEAD);
    const r = await request(gw.url + '/admin/reload', { method: 'POST' });
    assert.notEqual(r.status, 200, r.text);
    assert.equal(await value('gateway_policy_reloads_total', { result: 'error' }), err0 + 1);
    fs.writeFileSync(gw.policyPath, previous);
    const ok = await chat(gw, body(), { headers: auth('key-plain') });
    assert.equal(ok.status, 200, ok.text);
  });
});

describe('gateway check refuses what would be ignored or wrong, with file:line:column', () => {
  function configFile(obj) {
    const dir = tmpDir('gw-inputs-');
    const file = path.join(dir, 'gateway.yaml');
    fs.writeFileSync(file, toYaml(obj));
    return file;
  }
  const base = () => {
    const c = defaultConfig();
    c.providers = { deepseek: { api_key_env: 'X_DS_KEY' } };
    c.models = { auto: ['deepseek/deepseek-flash'] };
    return c;
  };

  test('tenant settings: invalid region, unknown preset, unknown tag, unknown override header; rules without a policy', async () => {
    const cases = [
      [{ t: { client_region: 'IRN' } }, /:\d+:\d+: invalid_client_region: tenants\.t\.client_region/],
      [{ t: { compliance_profiles: ['us-federl'] } }, /:\d+:\d+: tenants\.t\.compliance_profiles: unknown compliance preset 'us-federl'/],
      [{ t: { data_tags: ['eu_personnal'] } }, /:\d+:\d+: tenants\.t\.data_tags: unknown data tag 'eu_personnal'/],
      [{ t: { allow_header_overrides: ['x-gateway-tenant'] } }, /:\d+:\d+: tenants\.t\.allow_header_overrides/],
      [{ t: { compliance_profile: 'eu-gdpr', compliance_profiles: ['eu-gdpr'] } }, /not both/],
      [{ t: { compliance_profiles: ['eu-gdpr'] } }, /:\d+:\d+: tenants\.t\.compliance_profiles: tenant routing settings are enforced by the policy engine/],
    ];
    for (const [tenants, re] of cases) {
      const c = base();
      c.tenants = tenants;
      const file = configFile(c);
      const r = await run(GATEWAY_BIN, ['check', file]);
      assert.notEqual(r.code, 0, `${JSON.stringify(tenants)} accepted: ${r.stdout}`);
      assert.match(r.stderr, re, r.stderr);
      assert.ok(r.stderr.includes(file), r.stderr);
    }
  });

  test('base_url together with base_urls, and an unknown routing.unknown_data_tags value, are errors', async () => {
    const c = base();
    c.providers.deepseek = { api_key_env: 'X', base_url: 'http://127.0.0.1:9/v1', base_urls: { global: 'http://127.0.0.1:9' } };
    let r = await run(GATEWAY_BIN, ['check', configFile(c)]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /:\d+:\d+: providers\.deepseek: use base_url .* or base_urls/, r.stderr);
    for (const [routing, re] of [
      [{ prometheus_url: 'http://127.0.0.1:9' }, /:\d+:\d+: routing\.prometheus_url has no effect without `policy:`/],
      [{ policy_poll_ms: 500 }, /:\d+:\d+: routing\.policy_poll_ms has no effect without `policy:`/],
      [{ unknown_data_tags: 'ignore' }, /:\d+:\d+: routing\.unknown_data_tags has no effect without `policy:`/],
    ]) {
      const e = base();
      e.routing = routing;
      const out = await run(GATEWAY_BIN, ['check', configFile(e)]);
      assert.notEqual(out.code, 0, JSON.stringify(routing));
      assert.match(out.stderr, re, out.stderr);
    }
    const d = base();
    d.routing = { unknown_data_tags: 'drop' };
    r = await run(GATEWAY_BIN, ['check', configFile(d)]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /:\d+:\d+: routing\.unknown_data_tags must be reject or ignore/, r.stderr);
  });

  test('a policy with a misspelt data tag or classification fails check at its position', async () => {
    const dir = tmpDir('gw-inputs-');
    const file = path.join(dir, 'policy.yaml');
    fs.writeFileSync(file, 'routes:\n  - name: r\n    match: {data_classification: eu_personnal}\n    candidates: ["*/*"]\n');
    const r = await run(GATEWAY_BIN, ['check', file]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /policy\.yaml:3:34: match\.data_classification: unknown data classification 'eu_personnal' \(did you mean 'eu_personal'\?\)/, r.stderr);
  });
});
