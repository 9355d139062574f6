// The official OpenAI Node SDK (openai@6, the newest major that runs on Node 20; openai@7 needs
// Node 22) used unchanged against the gateway.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import OpenAI from 'openai';
import { startFake, CONTENT_PIECES, REASONING_PIECES, USAGE } from './lib/fake_upstream.mjs';
import { startGateway, defaultConfig, providerFor, userMsg } from './lib/gateway.mjs';

const sdkVersion = JSON.parse(fs.readFileSync(new URL('./node_modules/openai/package.json', import.meta.url), 'utf8')).version;
let gw;
let fake;
let client;

before(async () => {
  fake = await startFake({ dialect: 'deepseek', key: 'sk-ds-sdk' });
  const c = defaultConfig();
  c.providers = { deepseek: providerFor(fake) };
  c.models = { ds: ['deepseek/ok'], 'ds-keepalive': ['deepseek/keepalive'] };
  gw = await startGateway({ config: c, env: { DEEPSEEK_API_KEY: 'sk-ds-sdk' } });
  client = new OpenAI({ baseURL: gw.url + '/v1', apiKey: 'sk-gateway-client', maxRetries: 0, timeout: 10000 });
});

after(async () => {
  // Fakes first: stop() throws if the gateway died during the tests.
  await fake?.close();
  await gw?.stop();
});

test(`SDK openai@${sdkVersion} on node ${process.versions.node}: major 6`, () => {
  assert.equal(sdkVersion.split('.')[0], '6');
});

test('plain completion', async () => {
  const { data, response } = await client.chat.completions.create({ model: 'ds', messages: userMsg('Say hello') }).withResponse();
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.choices[0].message.content, CONTENT_PIECES('deepseek').join(''));
  assert.equal(data.choices[0].message.reasoning_content, REASONING_PIECES.join(''));
  assert.equal(data.usage.prompt_tokens, USAGE.deepseek.prompt);
  assert.equal(data.usage.prompt_tokens_details?.cached_tokens, USAGE.deepseek.cached);
  assert.equal(data.usage.completion_tokens_details?.reasoning_tokens, USAGE.deepseek.reasoning);
  assert.match(response.headers.get('x-gateway-deployment') ?? '', /^deepseek@global\/ok$/);
});

test('streamed completion assembled from chunks, usage in the final chunk (stream_options.include_usage)', async () => {
  for (const model of ['ds', 'ds-keepalive']) {
    const stream = await client.chat.completions.create({ model, messages: userMsg('Say hello'), stream: true, stream_options: { include_usage: true } });
    let content = '';
    let reasoning = '';
    let finish = null;
    let last = null;
    let n = 0;
    for await (const chunk of stream) {
      n++;
      last = chunk;
      const ch = chunk.choices[0];
      if (ch?.delta?.content) content += ch.delta.content;
      if (ch?.delta?.reasoning_content) reasoning += ch.delta.reasoning_content;
      if (ch?.finish_reason) finish = ch.finish_reason;
    }
    assert.ok(n >= CONTENT_PIECES('deepseek').length + 2, `${model}: several chunks (${n})`);
    assert.equal(content, CONTENT_PIECES('deepseek').join(''), model);
    assert.equal(reasoning, REASONING_PIECES.join(''), model);
    assert.equal(finish, 'stop', model);
    assert.deepEqual(last.choices, [], `${model}: final chunk is the usage chunk`);
    assert.equal(last.usage.total_tokens, USAGE.deepseek.prompt + USAGE.deepseek.completion);
    assert.equal(last.usage.prompt_tokens_details?.cached_tokens, USAGE.deepseek.cached);
  }
});

test('vendor parameters passed as extra fields reach the upstream', async () => {
  const next = fake.nextRequest();
  await client.chat.completions.create({ model: 'ds', messages: userMsg(), enable_thinking: false, foo_vendor_param: { x: 1 } });
  const up = (await next).body;
  assert.equal(up.enable_thinking, false);
  assert.deepEqual(up.foo_vendor_param, { x: 1 });
});

test('models.list()', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids.sort(), ['ds', 'ds-keepalive']);
});

test('unknown model surfaces as APIError / NotFoundError with status 404', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages: userMsg() }), (e) => {
    assert.ok(e instanceof OpenAI.APIError, `APIError, got ${e?.constructor?.name}: ${e}`);
    assert.ok(e instanceof OpenAI.NotFoundError, `NotFoundError, got ${e?.constructor?.name}`);
    assert.equal(e.status, 404);
    assert.equal(typeof e.error?.message, 'string');
    return true;
  });
});

test('bad request surfaces as BadRequestError with status 400', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'ds', messages: 'not-an-array' }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError, `BadRequestError, got ${e?.constructor?.name}: ${e}`);
    assert.equal(e.status, 400);
    return true;
  });
});
