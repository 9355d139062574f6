// `gateway catalog` and GET /admin/catalog list the API surfaces each deployment's endpoint speaks:
// OpenAI chat everywhere; Anthropic Messages where the vendor has an Anthropic-compatible endpoint
// for the region (and only there will /v1/messages be relayed natively); OpenAI Responses where the
// vendor's Responses API is verified (Qwen, DeepSeek, GLM's Coding Plan region on a base of its own; Kimi's is
// not: off unless configured). A base_url override (an egress proxy) without anthropic_base_url turns the
// built-in Anthropic endpoint off, and without responses_base_url GLM's built-in Responses base.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { GATEWAY_BIN, run, tmpDir, toYaml, defaultConfig, startGateway, request } from './lib/gateway.mjs';

const surfaces = (doc) => Object.fromEntries(doc.deployments.map((d) => [d.id, d.surfaces]));

test('built-in catalog: Anthropic-compatible regions speak both surfaces, others chat only', async () => {
  const r = await run(GATEWAY_BIN, ['catalog', '--format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const s = surfaces(JSON.parse(r.stdout));
  assert.deepEqual(s['deepseek@global/deepseek-flash'], ['openai_chat', 'anthropic_messages', 'openai_responses']);
  assert.deepEqual(s['kimi@intl/kimi-k3'], ['openai_chat', 'anthropic_messages']);
  // Embedding models speak the embeddings API only (capability `embeddings`).
  const emb = new Set(JSON.parse(r.stdout).deployments.filter((d) => d.capabilities.includes('embeddings')).map((d) => d.id));
  assert.equal(emb.size, 3);
  for (const [id, v] of Object.entries(s))
    if (emb.has(id)) continue;
    else if (id.startsWith('qwen@')) assert.ok(v.includes('openai_responses'), `${id}: ${v}`);
    else if (!id.startsWith('deepseek@') && !id.startsWith('glm@intl-coding/'))
      assert.ok(!v.includes('openai_responses'), `${id}: ${v}`);
  const glmCoding = Object.keys(s).filter((id) => id.startsWith('glm@intl-coding/'));
  assert.ok(glmCoding.length > 0, 'the catalog has GLM Coding Plan deployments');
  for (const id of glmCoding) assert.deepEqual(s[id], ['openai_chat', 'openai_responses'], `${id}: no verified Anthropic endpoint`);
  for (const [id, v] of Object.entries(s)) assert.deepEqual(emb.has(id) ? v : v[0], emb.has(id) ? ['embeddings'] : 'openai_chat', id);
});

test('a proxied base_url drops the built-in Anthropic endpoint unless anthropic_base_url is set; /admin/catalog agrees', async () => {
  const dir = tmpDir('gw-surfaces-');
  const c = defaultConfig();
  c.providers = {
    deepseek: { api_key_env: 'DEEPSEEK_API_KEY', base_url: 'http://127.0.0.1:9/v1' },
    kimi: { api_key_env: 'MOONSHOT_API_KEY', base_url: 'http://127.0.0.1:9/v1', anthropic_base_url: 'http://127.0.0.1:9/anthropic' },
  };
  c.models = { a: ['deepseek/deepseek-flash'], b: ['kimi/kimi-k3'] };
  const cfg = path.join(dir, 'gateway.yaml');
  fs.writeFileSync(cfg, toYaml(c));
  const r = await run(GATEWAY_BIN, ['catalog', '--config', cfg, '--format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const s = surfaces(JSON.parse(r.stdout));
  // The Responses API is on the chat base: it follows the override.
  assert.deepEqual(s['deepseek@global/deepseek-flash'], ['openai_chat', 'openai_responses']);
  assert.deepEqual(s['kimi@intl/kimi-k3'], ['openai_chat', 'anthropic_messages']);
  const gw = await startGateway({ config: c, env: { DEEPSEEK_API_KEY: 'k', MOONSHOT_API_KEY: 'k' } });
  try {
    const a = await request(gw.url + '/admin/catalog');
    assert.equal(a.status, 200, a.text);
    const sa = surfaces(a.json);
    assert.deepEqual(sa['deepseek@global/deepseek-flash'], ['openai_chat', 'openai_responses']);
    assert.deepEqual(sa['kimi@intl/kimi-k3'], ['openai_chat', 'anthropic_messages']);
  } finally {
    await gw.stop();
  }
});

// Catalog surfaces (id -> surfaces) of a configuration with these providers.
async function catalogFor(providers, models) {
  const c = { ...defaultConfig(), providers, models };
  const cfg = path.join(tmpDir('gw-surfaces-glm-'), 'gateway.yaml');
  fs.writeFileSync(cfg, toYaml(c));
  const r = await run(GATEWAY_BIN, ['catalog', '--config', cfg, '--format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return { config: c, s: surfaces(JSON.parse(r.stdout)) };
}

test('a proxied GLM Coding Plan base_url drops the built-in Responses base unless responses_base_url is set', async () => {
  const coding = 'glm@intl-coding/glm-5.1';
  const models = { a: ['glm/glm-5.1'] };
  const built = await catalogFor({ glm: {} }, models);
  assert.deepEqual(built.s[coding], ['openai_chat', 'openai_responses']);
  assert.deepEqual(built.s['glm@intl/glm-5.1'], ['openai_chat', 'anthropic_messages']);
  assert.deepEqual(built.s['glm@cn-coding/glm-5.1'], ['openai_chat']);
  const proxy = { region: 'intl-coding', api_key_env: 'ZAI_API_KEY', base_url: 'http://127.0.0.1:9/api/coding/paas/v4' };
  const proxied = await catalogFor({ glm: proxy }, models);
  assert.deepEqual(proxied.s[coding], ['openai_chat']);
  const own = await catalogFor({ glm: { ...proxy, responses_base_url: 'http://127.0.0.1:9/api/v1' } }, models);
  assert.deepEqual(own.s[coding], ['openai_chat', 'openai_responses']);
  for (const { config, s: expected } of [proxied, own]) {
    const gw = await startGateway({ config, env: { ZAI_API_KEY: 'k' } });
    try {
      const a = await request(gw.url + '/admin/catalog');
      assert.equal(a.status, 200, a.text);
      assert.deepEqual(surfaces(a.json)[coding], expected[coding]);
    } finally {
      await gw.stop();
    }
  }
});
