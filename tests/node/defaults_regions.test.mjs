// The shipped default configuration with no keys; region selection per deployment; `gateway check`.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startFake } from './lib/fake_upstream.mjs';
import { startGateway, defaultConfig, chat, request, userMsg, openAiError, REPO, GATEWAY_BIN, run, tmpDir, toYaml } from './lib/gateway.mjs';

const DEFAULT_CONFIG = path.join(REPO, 'deploy', 'gateway.yaml');

describe('default configuration, no API keys', () => {
  let gw;
  before(async () => {
    assert.ok(fs.existsSync(DEFAULT_CONFIG), `${DEFAULT_CONFIG} exists`);
    // What deploy/start.sh does before starting: make the demo model when it is missing.
    const model = path.join(REPO, 'var', 'demo-qwen3moe.gguf');
    if (!fs.existsSync(model)) {
      fs.mkdirSync(path.dirname(model), { recursive: true });
      const tool = path.join(path.dirname(path.dirname(GATEWAY_BIN)), 'local_backend', 'gguf-make-test-model');
      const r = await run(tool, ['--out', model]);
      assert.equal(r.code, 0, r.stderr);
    }
    gw = await startGateway({ configPath: DEFAULT_CONFIG, args: ['--listen', '127.0.0.1:0'] });
  });
  after(async () => {
    await gw?.stop();
  });

  test('starts, serves /healthz and lists its aliases', async () => {
    assert.equal((await request(gw.url + '/healthz')).status, 200);
    const m = await request(gw.url + '/v1/models');
    assert.equal(m.status, 200);
    assert.ok(m.json.data.length > 0);
  });

  test('auto and local are served by the embedded engine with no key', async () => {
    for (const model of ['auto', 'local']) {
      const res = await chat(gw, { model, messages: userMsg(), max_tokens: 4 });
      assert.equal(res.status, 200, JSON.stringify(res.json));
      assert.equal(res.headers['x-gateway-deployment'], 'local@self/qwen3moe-demo');
      // A random-weight model may end its turn early, even at its first token (seen in CI): usage
      // must still match what it did.
      const u = res.json.usage, fr = res.json.choices[0].finish_reason;
      assert.ok(u.completion_tokens >= 0 && u.completion_tokens <= 4, JSON.stringify(u));
      assert.equal(fr === 'length', u.completion_tokens === 4, `finish_reason ${fr} vs ${u.completion_tokens} tokens`);
    }
  });

  test('/v1/models lists what works with no key; ?all=true adds the rest, marked, naming the variable that enables each', async () => {
    const listed = (await request(gw.url + '/v1/models')).json.data;
    const all = (await request(gw.url + '/v1/models?all=true')).json.data;
    assert.ok(listed.some((m) => m.id === 'auto') && listed.some((m) => m.id === 'local'), JSON.stringify(listed.map((m) => m.id)));
    for (const m of listed) {
      assert.equal(m.available, true, m.id);
      assert.ok(['chat.completions', 'embeddings'].some((x) => m.surfaces.includes(x)), `${m.id}: ${m.surfaces}`);
    }
    const hidden = all.filter((m) => !listed.some((l) => l.id === m.id));
    assert.ok(hidden.length >= 10, `remote-only models are hidden without keys (${hidden.length})`);
    for (const m of hidden) {
      assert.equal(m.available, false, m.id);
      assert.deepEqual(m.surfaces, [], m.id);
      // The variable that enables it, or (a model only in a region no provider here is configured
      // for, such as GLM's embedding-3 on bigmodel) that no deployment is configured.
      assert.match(m.unavailable_reason, /[A-Z][A-Z0-9_]*_(API_)?KEY|has no deployment/, `${m.id}: ${m.unavailable_reason}`);
    }
    assert.deepEqual(all.filter((m) => m.available).map((m) => m.id), listed.map((m) => m.id));
  });

  test('every other model is served locally or gets an OpenAI-shaped 503 naming the variable that enables its provider', async () => {
    // Embedding models serve POST /v1/embeddings only (embeddings.test.mjs); without a key Qwen's
    // is refused there the same way.
    const EMBEDDING = ['text-embedding-v4', 'embedding-3', 'text-embedding-ada-002'];  // the last: the default policy's embeddings alias
    const models = (await request(gw.url + '/v1/models?all=true')).json.data.map((x) => x.id)
      .filter((m) => m !== 'auto' && m !== 'local' && !EMBEDDING.includes(m));
    const emb = await request(gw.url + '/v1/embeddings', { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'text-embedding-v4', input: 'x' }) });
    assert.match(openAiError(assert, emb, 503).message, /DASHSCOPE_API_KEY/);
    assert.ok(models.length > 0);
    let refused = 0;
    for (const model of models) {
      const res = await chat(gw, { model, messages: userMsg(), max_tokens: 2 });
      if (res.status === 200) {
        assert.equal(res.headers['x-gateway-deployment'], 'local@self/qwen3moe-demo', `${model} answered by the local engine`);
        continue;
      }
      refused++;
      const e = openAiError(assert, res, 503);
      assert.match(e.message, /[A-Z][A-Z0-9_]*_(API_)?KEY/, `${model}: message names an env var: ${e.message}`);
    }
    assert.ok(refused >= 10, `remote-only models are refused without keys (${refused})`);
  });
});

describe('regions', () => {
  let gw;
  const f = {};
  before(async () => {
    for (const k of ['qwenSg', 'qwenBj', 'qwenUs']) f[k] = await startFake({ dialect: 'qwen', key: 'sk-qwen-regions' });
    for (const k of ['kimiIntl', 'kimiCn']) f[k] = await startFake({ dialect: 'kimi', key: 'sk-kimi-regions' });
    for (const k of ['glmIntl', 'glmCn']) f[k] = await startFake({ dialect: 'glm', key: 'glm.regions' });
    const c = defaultConfig();
    c.providers = {
      qwen: { api_key_env: 'DASHSCOPE_API_KEY', base_urls: { 'ap-southeast-1': f.qwenSg.baseUrl, 'cn-beijing': f.qwenBj.baseUrl } },
      'qwen-us': { type: 'qwen', api_key_env: 'DASHSCOPE_API_KEY', region: 'us-east-1', base_urls: { 'us-east-1': f.qwenUs.baseUrl } },
      kimi: { api_key_env: 'MOONSHOT_API_KEY', base_urls: { intl: f.kimiIntl.baseUrl, cn: f.kimiCn.baseUrl } },
      glm: { api_key_env: 'ZAI_API_KEY', base_urls: { intl: f.glmIntl.baseUrl, cn: f.glmCn.baseUrl } },
    };
    c.models = {
      'qwen-default': ['qwen/ok'],
      'qwen-bj': ['qwen@cn-beijing/ok'],
      'qwen-us': ['qwen-us/ok'],
      'kimi-default': ['kimi/ok'],
      'kimi-cn': ['kimi@cn/ok'],
      'glm-cn': ['glm@cn/ok'],
      'glm-default': ['glm/ok'],
    };
    gw = await startGateway({ config: c, env: { DASHSCOPE_API_KEY: 'sk-qwen-regions', MOONSHOT_API_KEY: 'sk-kimi-regions', ZAI_API_KEY: 'glm.regions' } });
  });
  after(async () => {
    await Promise.all(Object.values(f).map((x) => x.close()));
    await gw?.stop();
  });

  for (const [alias, fake, dep] of [
    ['qwen-default', 'qwenSg', 'qwen@ap-southeast-1/ok'],
    ['qwen-bj', 'qwenBj', 'qwen@cn-beijing/ok'],
    ['qwen-us', 'qwenUs', 'qwen-us@us-east-1/ok'],
    ['kimi-default', 'kimiIntl', 'kimi@intl/ok'],
    ['kimi-cn', 'kimiCn', 'kimi@cn/ok'],
    ['glm-default', 'glmIntl', 'glm@intl/ok'],
    ['glm-cn', 'glmCn', 'glm@cn/ok'],
  ]) {
    test(`${alias} -> ${dep} (that region's base URL)`, async () => {
      const counts = Object.fromEntries(Object.entries(f).map(([k, v]) => [k, v.requests.length]));
      const res = await chat(gw, { model: alias, messages: userMsg() });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers['x-gateway-deployment'], dep);
      for (const [k, v] of Object.entries(f)) assert.equal(v.requests.length - counts[k], k === fake ? 1 : 0, `fake ${k} request count`);
    });
  }
});

describe('gateway check', () => {
  test('a valid file passes; a broken one fails with file:line:column', async () => {
    const dir = tmpDir();
    const good = path.join(dir, 'good.yaml');
    const c = defaultConfig();
    c.providers = { 'my-vllm': { type: 'openai_compatible', base_url: 'http://127.0.0.1:9/v1' } };
    c.models = { m: ['my-vllm/x'] };
    fs.writeFileSync(good, toYaml(c));
    const ok = await run(GATEWAY_BIN, ['check', good]);
    assert.equal(ok.code, 0, `valid config accepted: ${ok.stdout}${ok.stderr}`);
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, 'server:\n  listen: "127.0.0.1:0"\nmodels:\n  m: [unclosed\n');
    const ko = await run(GATEWAY_BIN, ['check', bad]);
    assert.notEqual(ko.code, 0, 'broken YAML rejected');
    assert.match(ko.stdout + ko.stderr, /:\d+:\d+/, `error has line:column: ${ko.stdout}${ko.stderr}`);
  });
});
