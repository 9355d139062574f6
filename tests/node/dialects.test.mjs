// Per-dialect normal answers, non-stream and stream, with usage normalised to OpenAI's shape.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFake, USAGE, CONTENT_PIECES, REASONING_PIECES, PATHS } from './lib/fake_upstream.mjs';
import { startGateway, defaultConfig, providerFor, chat, chatStream, userMsg, KEY_ENV, DEFAULT_REGION } from './lib/gateway.mjs';
import { assemble } from './lib/sse.mjs';

const DIALECTS = ['deepseek', 'qwen', 'kimi', 'glm', 'minimax', 'openai'];
const PROVIDER = { deepseek: 'deepseek', qwen: 'qwen', kimi: 'kimi', glm: 'glm', minimax: 'minimax', openai: 'my-vllm' };
const KEYS = { deepseek: 'sk-ds-0123456789abcdef', qwen: 'sk-qw-0123456789abcdef', kimi: 'sk-km-0123456789abcdef', glm: 'zai-0123456789abcdef.secretpart', minimax: 'sk-mm-0123456789abcdef' };

let gw;
const fakes = {};

function expectedDeployment(d, model = 'ok') {
  return d === 'openai' ? new RegExp(`^my-vllm(@[^/]+)?/${model}$`) : new RegExp(`^${PROVIDER[d]}@${DEFAULT_REGION[d]}/${model}$`);
}

function assertNormalisedUsage(u, d, where) {
  const x = USAGE[d];
  assert.ok(u && typeof u === 'object', `${where}: usage present`);
  assert.equal(u.prompt_tokens, x.prompt, `${where}: usage.prompt_tokens`);
  assert.equal(u.completion_tokens, x.completion, `${where}: usage.completion_tokens`);
  assert.equal(u.total_tokens, x.prompt + x.completion, `${where}: usage.total_tokens`);
  assert.equal(u.prompt_tokens_details?.cached_tokens, x.cached, `${where}: usage.prompt_tokens_details.cached_tokens (got ${JSON.stringify(u)})`);
  assert.equal(u.completion_tokens_details?.reasoning_tokens, x.reasoning, `${where}: usage.completion_tokens_details.reasoning_tokens (got ${JSON.stringify(u)})`);
}

function assertGatewayHeaders(res, d, model = 'ok', attempts = '1') {
  assert.ok(res.headers['x-request-id'], 'x-request-id header present');
  assert.match(String(res.headers['x-gateway-deployment']), expectedDeployment(d, model), 'x-gateway-deployment');
  assert.equal(res.headers['x-gateway-attempts'], attempts, 'x-gateway-attempts');
}

function assertUpstreamRequest(rec, d, { stream }) {
  assert.ok(PATHS[d].includes(rec.path), `upstream path ${rec.path} is one of ${PATHS[d]}`);
  if (KEYS[d]) assert.equal(rec.headers.authorization, `Bearer ${KEYS[d]}`, 'upstream Authorization carries the key from the env var');
  assert.equal(rec.body.model, 'ok', 'upstream model is the deployment model id');
  assert.deepEqual(rec.body.messages, userMsg('Say hello'), 'messages passed through');
  if (stream) {
    assert.equal(rec.body.stream, true);
    assert.equal(rec.body.stream_options?.include_usage, true, 'gateway always asks upstream for usage when streaming');
  } else {
    assert.ok(rec.body.stream === undefined || rec.body.stream === false, 'non-stream request not turned into a stream');
  }
}

before(async () => {
  for (const d of DIALECTS) fakes[d] = await startFake({ dialect: d, key: KEYS[d] });
  const config = defaultConfig();
  for (const d of DIALECTS) {
    config.providers[PROVIDER[d]] = providerFor(fakes[d]);
    config.models[`${d}-ok`] = [`${PROVIDER[d]}/ok`];
  }
  config.models['ds-keepalive'] = ['deepseek/keepalive'];
  const env = {};
  for (const d of DIALECTS) if (KEYS[d]) env[KEY_ENV[d]] = KEYS[d];
  gw = await startGateway({ config, env });
});

after(async () => {
  // Fakes first: stop() throws if the gateway died during the tests.
  await Promise.all(Object.values(fakes).map((f) => f.close()));
  await gw?.stop();
});

for (const d of DIALECTS) {
  describe(`dialect ${d}`, () => {
    test('non-stream: OpenAI-shaped completion, reasoning_content passed, usage normalised', async () => {
      const next = fakes[d].nextRequest();
      const res = await chat(gw, { model: `${d}-ok`, messages: userMsg('Say hello') });
      assert.equal(res.status, 200, res.text);
      assert.match(String(res.headers['content-type']), /application\/json/);
      assertGatewayHeaders(res, d);
      const b = res.json;
      assert.equal(b.object, 'chat.completion', 'object is OpenAI\'s "chat.completion" (the GLM fake sends none, like bigmodel\'s examples)');
      assert.equal(typeof b.id, 'string');
      assert.equal(typeof b.created, 'number');
      assert.equal(typeof b.model, 'string');
      assert.equal(b.choices.length, 1);
      assert.equal(b.choices[0].index, 0);
      assert.equal(b.choices[0].message.role, 'assistant');
      assert.equal(b.choices[0].message.content, CONTENT_PIECES(d).join(''));
      if (d !== 'openai') assert.equal(b.choices[0].message.reasoning_content, REASONING_PIECES.join(''), 'reasoning_content passes through');
      assert.equal(b.choices[0].finish_reason, 'stop');
      assertNormalisedUsage(b.usage, d, 'non-stream');
      assertUpstreamRequest(await next, d, { stream: false });
    });

    test('stream without include_usage: chunks relayed one by one, usage-only chunk stripped, [DONE] last', async () => {
      const next = fakes[d].nextRequest();
      const r = await chatStream(gw, { model: `${d}-ok`, messages: userMsg('Say hello'), stream: true });
      assert.equal(r.status, 200, r.raw);
      assert.match(String(r.headers['content-type']), /text\/event-stream/);
      assertGatewayHeaders(r, d);
      assert.equal(r.errors.length, 0, `no error events: ${JSON.stringify(r.errors)}`);
      assert.equal(r.bad.length, 0, `all data events are JSON: ${r.bad}`);
      assert.ok(r.done, 'stream ends with data: [DONE]');
      assert.equal(r.afterDone.length, 0, 'nothing after [DONE]');
      assert.equal(r.order.filter((o) => o !== 'comment').at(-1), 'done');
      for (const c of r.chunks) assert.equal(c.object, 'chat.completion.chunk', `every chunk has object "chat.completion.chunk" (the GLM fake sends none): ${JSON.stringify(c)}`);
      const contents = r.chunks.map((c) => c.choices?.[0]?.delta?.content).filter((x) => x);
      assert.deepEqual(contents, CONTENT_PIECES(d), 'content deltas arrive as the upstream sent them, in order');
      const a = assemble(r.chunks);
      assert.equal(a.content, CONTENT_PIECES(d).join(''));
      if (d !== 'openai') assert.equal(a.reasoning, REASONING_PIECES.join(''), 'reasoning_content deltas pass through');
      assert.equal(a.finish, 'stop');
      const usageOnly = r.chunks.filter((c) => Array.isArray(c.choices) && c.choices.length === 0);
      assert.equal(usageOnly.length, 0, `client did not ask for usage: no usage-only chunk (got ${JSON.stringify(usageOnly)})`);
      assertUpstreamRequest(await next, d, { stream: true });
    });

    test('stream with include_usage: final usage chunk (choices: []) normalised, then [DONE]', async () => {
      const r = await chatStream(gw, { model: `${d}-ok`, messages: userMsg('Say hello'), stream: true, stream_options: { include_usage: true } });
      assert.equal(r.status, 200, r.raw);
      assert.ok(r.done, 'ends with [DONE]');
      assert.equal(r.errors.length, 0);
      const last = r.chunks.at(-1);
      assert.ok(last, 'at least one chunk');
      assert.deepEqual(last.choices, [], `last chunk before [DONE] is the usage chunk with choices: [] (got ${JSON.stringify(last)})`);
      assertNormalisedUsage(last.usage, d, 'stream usage chunk');
      const usageOnly = r.chunks.filter((c) => Array.isArray(c.choices) && c.choices.length === 0);
      assert.equal(usageOnly.length, 1, 'exactly one usage-only chunk');
      assert.equal(assemble(r.chunks).content, CONTENT_PIECES(d).join(''));
      if (d === 'kimi') {
        const nested = r.chunks.filter((c) => c.choices?.[0]?.usage);
        assert.equal(nested.length, 0, `Kimi's choices[0].usage is moved to the top-level usage chunk, not left in the choice (got ${JSON.stringify(nested)})`);
      }
    });
  });
}

describe('DeepSeek queueing keep-alives', () => {
  test('stream: ": keep-alive" comments then content; usage-only last chunk normalised; [DONE]', async () => {
    const t0 = performance.now();
    const r = await chatStream(gw, { model: 'ds-keepalive', messages: userMsg('Say hello'), stream: true, stream_options: { include_usage: true } });
    assert.equal(r.status, 200, r.raw);
    assert.match(String(r.headers['x-gateway-deployment']), /^deepseek@global\/keepalive$/);
    assert.equal(r.errors.length, 0, JSON.stringify(r.errors));
    assert.ok(r.done);
    assert.equal(assemble(r.chunks).content, CONTENT_PIECES('deepseek').join(''));
    assert.equal(assemble(r.chunks).reasoning, REASONING_PIECES.join(''));
    const last = r.chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assertNormalisedUsage(last.usage, 'deepseek', 'keepalive usage chunk');
    // Comments are no content: the first content must not be reported before the upstream sent it (~450 ms).
    const firstContent = r.chunks.find((c) => c.choices?.[0]?.delta?.content);
    assert.ok(firstContent.__t - t0 >= 400, `first content arrived after the keep-alives (${(firstContent.__t - t0).toFixed(0)} ms)`);
  });

  test('stream without include_usage: usage-only chunk stripped', async () => {
    const r = await chatStream(gw, { model: 'ds-keepalive', messages: userMsg('Say hello'), stream: true });
    assert.equal(r.status, 200, r.raw);
    assert.ok(r.done);
    assert.equal(r.chunks.filter((c) => c.choices?.length === 0).length, 0, 'no usage-only chunk');
    assert.equal(assemble(r.chunks).content, CONTENT_PIECES('deepseek').join(''));
  });

  test('non-stream: blank lines before the JSON body are tolerated', async () => {
    const res = await chat(gw, { model: 'ds-keepalive', messages: userMsg('Say hello') });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.choices[0].message.content, CONTENT_PIECES('deepseek').join(''));
    assertNormalisedUsage(res.json.usage, 'deepseek', 'keepalive non-stream');
  });
});
