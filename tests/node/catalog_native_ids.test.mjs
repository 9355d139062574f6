// Clients switching from a vendor's own base URL keep their vendor model names: the shipped default
// policy routes every catalog model's own ID (legacy IDs included) to that model, one vendor at a
// time against its fake; MiniMax (the fifth provider) also for usage, streaming and errors.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startFake, USAGE } from './lib/fake_upstream.mjs';
import { startGateway, defaultConfig, providerFor, chat, chatStream, userMsg, openAiError, KEY_ENV, DEFAULT_REGION, REPO, GATEWAY_BIN, run, tmpDir, request } from './lib/gateway.mjs';
import { startPolicyGateway, explain } from './lib/routing_upstream.mjs';
import { assemble } from './lib/sse.mjs';

const DEFAULT_POLICY = fs.readFileSync(path.join(REPO, 'policies', 'default.yaml'), 'utf8');

// Per vendor: the model names a client of that vendor's API sends (current and legacy IDs).
const NATIVE = {
  deepseek: ['deepseek-flash', 'deepseek-v4-pro', 'deepseek-v4-flash', 'deepseek-v4-flash-vision-exp'],
  qwen: ['qwen-plus', 'qwen-flash', 'qwen3.7-max', 'qwen3.8-max', 'qwen3.8-flash'],
  kimi: ['kimi-k2.6', 'kimi-k2.7-code', 'kimi-k2.7-code-highspeed', 'moonshot-v1-8k', 'kimi-k3.1-pro'],
  glm: ['glm-5.3', 'glm-5.1', 'glm-5', 'glm-5-turbo', 'glm-4.7-flash'],
  minimax: ['MiniMax-M3', 'MiniMax-M2.7', 'MiniMax-M2.7-highspeed'],
};
const KEY = (d) => `sk-${d}-0123456789abcdef`;

for (const [vendor, models] of Object.entries(NATIVE)) {
  describe(`${vendor} client keeps its model names (default policy)`, () => {
    let fake, gw;
    before(async () => {
      fake = await startFake({ dialect: vendor, key: KEY(vendor), nativeModels: models });
      gw = await startPolicyGateway({
        policy: DEFAULT_POLICY,
        providers: { [vendor]: providerFor(fake) },
        env: { [KEY_ENV[vendor]]: KEY(vendor) },
      });
    });
    after(async () => {
      await gw?.stop();
      await fake?.close();
    });

    for (const model of models) {
      test(`${model} reaches ${vendor}@${DEFAULT_REGION[vendor]}/${model} unchanged`, async () => {
        const res = await chat(gw, { model, messages: userMsg('Say hello'), max_tokens: 16 });
        assert.equal(res.status, 200, JSON.stringify(res.json));
        assert.equal(res.headers['x-gateway-deployment'], `${vendor}@${DEFAULT_REGION[vendor]}/${model}`);
        const rec = fake.byModel(model).at(-1);
        assert.ok(rec, 'the fake saw the request under the vendor model name');
        assert.equal(rec.headers.authorization, `Bearer ${KEY(vendor)}`);
      });
    }

    if (vendor === 'deepseek') {
      test('explain says which current model a legacy ID names', async () => {
        const legacy = await explain(gw, { model: 'deepseek-v4-flash', messages: userMsg() });
        assert.equal(legacy.request.alias_of, 'deepseek-flash', JSON.stringify(legacy.request));
        assert.equal(legacy.plan[0], 'deepseek@global/deepseek-v4-flash');
        const own = await explain(gw, { model: 'deepseek-flash', messages: userMsg() });
        assert.equal(own.request.alias_of, undefined);
      });
    }

    test('a model name the vendor does not have is a 404 naming it, and the fake is not called', async () => {
      const before = fake.requests.length;
      const res = await chat(gw, { model: `${vendor}-no-such-model`, messages: userMsg(), max_tokens: 4 });
      assert.ok(res.status === 404 || res.status === 400, `status ${res.status}`);
      openAiError(assert, res, res.status);
      assert.equal(fake.requests.length, before);
    });
  });
}

describe('MiniMax dialect: usage, streaming, errors', () => {
  let fake, gw;
  before(async () => {
    fake = await startFake({ dialect: 'minimax', key: KEY('minimax') });
    const config = defaultConfig();
    config.providers.minimax = providerFor(fake);
    for (const s of ['ok', 'no-balance', 'bad-key', 'server-error']) config.models[`mm-${s}`] = [`minimax/${s}`];
    gw = await startGateway({ config, env: { MINIMAX_API_KEY: KEY('minimax') } });
  });
  after(async () => {
    await gw?.stop();
    await fake?.close();
  });

  test('non-stream: usage normalised, the key from MINIMAX_API_KEY, path /v1/chat/completions', async () => {
    const res = await chat(gw, { model: 'mm-ok', messages: userMsg('Say hello') });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(res.headers['x-gateway-deployment'], 'minimax@intl/ok');
    const u = res.json.usage;
    assert.equal(u.prompt_tokens, USAGE.minimax.prompt);
    assert.equal(u.completion_tokens, USAGE.minimax.completion);
    assert.equal(u.prompt_tokens_details?.cached_tokens, USAGE.minimax.cached);
    assert.equal(u.completion_tokens_details?.reasoning_tokens, USAGE.minimax.reasoning);
    const rec = fake.byModel('ok').at(-1);
    assert.equal(rec.path, '/v1/chat/completions');
    assert.equal(rec.headers.authorization, `Bearer ${KEY('minimax')}`);
  });

  test('stream: content, then the usage-only chunk normalised, then [DONE]', async () => {
    const r = await chatStream(gw, { model: 'mm-ok', messages: userMsg('Say hello'), stream: true, stream_options: { include_usage: true } });
    assert.equal(r.status, 200, r.raw);
    assert.ok(r.done, 'ends with [DONE]');
    assert.equal(assemble(r.chunks).content, 'Hello from minimax!');
    assert.equal(r.chunks.at(-1).usage?.prompt_tokens, USAGE.minimax.prompt);
    assert.equal(r.chunks.at(-1).usage?.prompt_tokens_details?.cached_tokens, USAGE.minimax.cached);
  });

  test('broken upstream and bad day: OpenAI-shaped errors, the vendor key never echoed', async () => {
    for (const alias of ['mm-bad-key', 'mm-server-error', 'mm-no-balance']) {
      const res = await chat(gw, { model: alias, messages: userMsg() });
      assert.ok(res.status >= 400 && res.status < 600, `${alias}: ${res.status}`);
      openAiError(assert, res, res.status);
      assert.ok(!JSON.stringify(res.json).includes(KEY('minimax')), 'key not echoed');
    }
  });
});

describe('gateway check: DeepSeek holiday coverage', () => {
  test('the built-in holiday list is reported as not covering the next 12 months', async () => {
    const r = await run(GATEWAY_BIN, ['check', path.join(REPO, 'policies', 'default.yaml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: deepseek off-peak holiday dates end 2026-10-01, less than 12 months ahead/);
  });

  test('a policy listing holidays far enough ahead gets no warning; a typo in a date is an error', async () => {
    const dir = tmpDir('gw-holidays-');
    const schedule = (dates) => `catalog:
  - ref: deepseek@global/*
    price:
      schedule: {peak: ["Mon-Fri 01:00-04:00", "Mon-Fri 06:00-10:00"], offpeak_factor: 0.5, offpeak_dates: [${dates}]}
routes:
  - name: r
    candidates: [deepseek/*]
`;
    const ok = path.join(dir, 'ok.yaml');
    fs.writeFileSync(ok, schedule('2026-10-01, 2099-10-01'));
    const r = await run(GATEWAY_BIN, ['check', ok]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /holiday/);
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, schedule('2099-13-01'));
    const b = await run(GATEWAY_BIN, ['check', bad]);
    assert.notEqual(b.code, 0);
    assert.match(b.stderr, /offpeak_dates: '2099-13-01' is not a YYYY-MM-DD date/);
  });
});

// The reference's figures for a few deployments, as `gateway catalog --format json` must print them.
const REFERENCE = {
  'deepseek@global/deepseek-flash': { context_window: 1000000, max_output: 384000, tier0: { input: 0.3, cached_input: 0.006, output: 1.2 } },
  'qwen@ap-southeast-1/qwen-plus': { context_window: 1000000, max_output: 32768, tier0: { input: 0.4, output: 1.2, reasoning_output: 4 } },
  'minimax@intl/MiniMax-M3': { context_window: 1000000, max_output: 131072, tier0: { input: 0.3, cached_input: 0.06, output: 1.2 } },
  'glm@intl-coding/glm-4.7': { context_window: 204800, max_output: 131072, tier0: { input: 0.6, cached_input: 0.11, output: 2.2 } },
};

describe('gateway catalog and GET /admin/catalog', () => {
  test('--format json prints every deployment with its facts; yaml and table carry the same ids', async () => {
    const j = await run(GATEWAY_BIN, ['catalog', '--format', 'json']);
    assert.equal(j.code, 0, j.stderr);
    const doc = JSON.parse(j.stdout);
    assert.equal(doc.catalog_date, '2026-11-23');
    const byId = Object.fromEntries(doc.deployments.map((d) => [d.id, d]));
    for (const [id, want] of Object.entries(REFERENCE)) {
      const d = byId[id];
      assert.ok(d, id);
      assert.equal(d.context_window, want.context_window, id);
      assert.equal(d.max_output, want.max_output, id);
      for (const [k, v] of Object.entries(want.tier0)) assert.equal(d.price.tiers[0][k], v, `${id} ${k}`);
    }
    const ds = byId['deepseek@global/deepseek-flash'];
    assert.deepEqual(ds.price.schedule.peak_utc, ['Mon,Tue,Wed,Thu,Fri 01:00-04:00', 'Mon,Tue,Wed,Thu,Fri 06:00-10:00']);
    assert.deepEqual(ds.price.schedule.offpeak_dates, ['2026-10-01']);
    assert.equal(ds.risk.cac_genai_filed, false);
    assert.equal(ds.alias_of, null);
    assert.equal(byId['deepseek@global/deepseek-v4-flash-vision-exp'].alias_of, 'deepseek-flash');
    assert.equal(byId['minimax@intl/MiniMax-M3'].price.tiers[0].up_to_input_tokens, 512000);
    const y = await run(GATEWAY_BIN, ['catalog', '--format', 'yaml']);
    assert.equal(y.code, 0, y.stderr);
    for (const id of Object.keys(REFERENCE)) assert.ok(y.stdout.includes(`id: "${id}"`), id);
    const t = await run(GATEWAY_BIN, ['catalog']);
    assert.equal(t.code, 0, t.stderr);
    assert.equal(t.stdout.trim().split('\n').length, doc.deployments.length + 2);
    const bad = await run(GATEWAY_BIN, ['catalog', '--format', 'xml']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--format must be table, json or yaml/);
  });

  test('with a config, the policy overrides are applied; /admin/catalog needs the admin key', async () => {
    const policy = `catalog:
  - ref: qwen@ap-southeast-1/qwen-plus
    price: {tiers: [{up_to: 256000, input: 0.5, output: 1.5}, {up_to: max, input: 1.5, output: 4.0}]}
    cac_genai_filed: true
routes:
  - name: r
    candidates: [qwen/*]
`;
    const fake = await startFake({ dialect: 'qwen', key: KEY('qwen') });
    const gw = await startPolicyGateway({
      policy,
      providers: { qwen: providerFor(fake) },
      env: { DASHSCOPE_API_KEY: KEY('qwen'), GW_ADMIN: 'admin-secret-1234' },
      server: { admin_key_env: 'GW_ADMIN' },
    });
    try {
      const denied = await request(gw.url + '/admin/catalog');
      assert.equal(denied.status, 401);
      openAiError(assert, denied, 401);
      const post = await request(gw.url + '/admin/catalog', { method: 'POST', body: {}, headers: { authorization: 'Bearer admin-secret-1234' } });
      assert.equal(post.status, 405);
      const r = await request(gw.url + '/admin/catalog', { headers: { authorization: 'Bearer admin-secret-1234' } });
      assert.equal(r.status, 200, r.text);
      const d = r.json.deployments.find((x) => x.id === 'qwen@ap-southeast-1/qwen-plus');
      assert.equal(d.price.tiers[0].input, 0.5);
      assert.equal(d.price.tiers[1].output, 4);
      assert.equal(d.risk.cac_genai_filed, true);
      const y = await request(gw.url + '/admin/catalog?format=yaml', { headers: { authorization: 'Bearer admin-secret-1234' } });
      assert.equal(y.status, 200);
      assert.match(String(y.headers['content-type']), /yaml/);
      assert.ok(y.text.includes('id: "qwen@ap-southeast-1/qwen-plus"'));
      const cli = await run(GATEWAY_BIN, ['catalog', '--config', gw.cfgPath, '--format', 'json']);
      assert.equal(cli.code, 0, cli.stderr);
      const c = JSON.parse(cli.stdout).deployments.find((x) => x.id === 'qwen@ap-southeast-1/qwen-plus');
      assert.equal(c.price.tiers[0].input, 0.5);
    } finally {
      await gw.stop();
      await fake.close();
    }
  });
});

describe('Qwen Frankfurt (EU scope) through a workspace base URL', () => {
  test('eu_personal data goes to qwen@eu-central-1, never to the Singapore scope', async () => {
    const eu = await startFake({ dialect: 'qwen', key: KEY('qwen'), nativeModels: ['qwen-flash'] });
    const sg = await startFake({ dialect: 'qwen', key: KEY('qwen'), nativeModels: ['qwen-flash'] });
    const gw = await startPolicyGateway({
      policy: `routes:
  - name: r
    max_attempts: 4
    constraints: {presets: [eu-gdpr]}
    candidates: [qwen/qwen-flash]
`,
      providers: { qwen: { api_key_env: 'DASHSCOPE_API_KEY', base_urls: { 'ap-southeast-1': sg.baseUrl, 'eu-central-1': eu.baseUrl } } },
      env: { DASHSCOPE_API_KEY: KEY('qwen') },
    });
    try {
      const res = await chat(gw, { model: 'qwen-flash', messages: userMsg() }, { headers: { 'x-gateway-data-tags': 'eu_personal' } });
      assert.equal(res.status, 200, JSON.stringify(res.json));
      assert.equal(res.headers['x-gateway-deployment'], 'qwen@eu-central-1/qwen-flash');
      assert.equal(eu.byModel('qwen-flash').length, 1);
      assert.equal(sg.byModel('qwen-flash').length, 0);
    } finally {
      await gw.stop();
      await eu.close();
      await sg.close();
    }
  });
});
