// Fail-over before any content reached the client; status mapping when every attempt fails.
// Failing deployments live on their own provider instances (explicit `type`) so that a gateway that
// takes a whole out-of-balance account out of rotation cannot disturb the healthy fall-backs.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startFake, CONTENT_PIECES } from './lib/fake_upstream.mjs';
import { startGateway, defaultConfig, providerFor, chat, chatStream, userMsg, KEY_ENV, openAiError, sleep, withTimeout } from './lib/gateway.mjs';
import { assemble } from './lib/sse.mjs';

const DIALECTS = ['deepseek', 'qwen', 'kimi', 'glm'];
const KEYS = { deepseek: 'sk-ds-failover', qwen: 'sk-qw-failover', kimi: 'sk-km-failover', glm: 'zai-failover.secret' };
let gw;
const fakes = {};
let deadPort;

async function closedPort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const p = srv.address().port;
  await new Promise((r) => srv.close(r));
  return p;
}

before(async () => {
  for (const d of DIALECTS) fakes[d] = await startFake({ dialect: d, key: KEYS[d] });
  deadPort = await closedPort();
  const c = defaultConfig();
  c.upstream.first_byte_timeout_ms = 1500;
  for (const d of DIALECTS) c.providers[d] = providerFor(fakes[d]);
  const inst = (name, d) => (c.providers[name] = { type: d, ...providerFor(fakes[d]) });
  inst('glm-broke', 'glm');
  inst('glm-broke2', 'glm');
  inst('ds-broke', 'deepseek');
  inst('qwen-broke', 'qwen');
  inst('kimi-broke', 'kimi');
  inst('ds-limited', 'deepseek');
  inst('ds-limited2', 'deepseek');
  inst('kimi-5xx', 'kimi');
  inst('kimi-5xx2', 'kimi');
  inst('qwen-hang', 'qwen');
  inst('qwen-hang2', 'qwen');
  inst('glm-400', 'glm');
  inst('kimi-cut', 'kimi');
  inst('many-a', 'kimi');
  inst('many-b', 'qwen');
  inst('many-c', 'glm');
  c.providers['dead'] = { type: 'openai_compatible', base_url: `http://127.0.0.1:${deadPort}/v1` };
  c.models = {
    'glm-1113': ['glm-broke@intl/no-balance', 'deepseek/ok'],
    'glm-1113-only': ['glm-broke2/no-balance'],
    'ds-402': ['ds-broke/no-balance', 'qwen/ok'],
    'qwen-arrearage': ['qwen-broke/no-balance', 'kimi/ok'],
    'kimi-quota': ['kimi-broke/no-balance', 'glm/ok'],
    'rl': ['ds-limited/rate-limit', 'qwen/ok:rl'],
    'rl-only': ['ds-limited2/rate-limit'],
    '5xx': ['kimi-5xx/server-error', 'deepseek/ok:5xx'],
    '5xx-only': ['kimi-5xx2/server-error:only'],
    'hang': ['qwen-hang/hang', 'deepseek/ok:hang'],
    'hang-only': ['qwen-hang2/hang:only'],
    'client-400': ['glm-400/bad-request', 'deepseek/ok:400'],
    'refused': ['dead/ok', 'deepseek/ok:refused'],
    'cut-before-headers': ['kimi-cut/close-before-headers', 'deepseek/ok:cut'],
    'cut-body': ['kimi-cut/close-mid-stream', 'deepseek/ok:cutbody'],
    // max_attempts is 3: the fourth deployment must never be called.
    'too-many': ['many-a/server-error:m1', 'many-b/server-error:m2', 'many-c/server-error:m3', 'deepseek/ok:m4'],
  };
  const env = {};
  for (const d of DIALECTS) env[KEY_ENV[d]] = KEYS[d];
  gw = await startGateway({ config: c, env });
});

after(async () => {
  // Fakes first: stop() throws if the gateway died during the tests.
  await Promise.all(Object.values(fakes).map((f) => f.close()));
  await gw?.stop();
});

function assertServedBy(res, deploymentRe, attempts, dialect) {
  assert.equal(res.status, 200, res.text ?? res.raw);
  assert.match(String(res.headers['x-gateway-deployment']), deploymentRe, 'x-gateway-deployment');
  assert.equal(res.headers['x-gateway-attempts'], String(attempts), 'x-gateway-attempts');
  if (res.json) assert.equal(res.json.choices[0].message.content, CONTENT_PIECES(dialect).join(''));
}

describe('out of balance fails over', () => {
  test('GLM HTTP 429 code 1113 -> next deployment answers (attempts 2)', async () => {
    const res = await chat(gw, { model: 'glm-1113', messages: userMsg() });
    assertServedBy(res, /^deepseek@global\/ok$/, 2, 'deepseek');
    assert.ok(fakes.glm.byModel('no-balance').length >= 1, 'GLM fake was tried first');
  });

  test('GLM 1113, streaming -> next deployment streams, client sees only its content', async () => {
    const r = await chatStream(gw, { model: 'glm-1113', messages: userMsg(), stream: true });
    assert.equal(r.status, 200, r.raw);
    assert.match(String(r.headers['x-gateway-deployment']), /^deepseek@global\/ok$/);
    assert.ok(Number(r.headers['x-gateway-attempts']) >= 1);
    assert.equal(assemble(r.chunks).content, CONTENT_PIECES('deepseek').join(''));
    assert.equal(r.errors.length, 0);
    assert.ok(r.done);
  });

  test('GLM 1113 with no fall-back -> 503 OpenAI error naming the cause', async () => {
    const res = await chat(gw, { model: 'glm-1113-only', messages: userMsg() });
    const e = openAiError(assert, res, 503);
    assert.match(e.message, /1113|balance/i, `message keeps the provider's code or says out of balance: ${e.message}`);
  });

  test('DeepSeek HTTP 402 -> next deployment answers (attempts 2)', async () => {
    const res = await chat(gw, { model: 'ds-402', messages: userMsg() });
    assertServedBy(res, /^qwen@ap-southeast-1\/ok$/, 2, 'qwen');
    assert.ok(fakes.deepseek.byModel('no-balance').length >= 1);
  });

  test('Qwen HTTP 403 Arrearage -> next deployment answers (attempts 2)', async () => {
    const res = await chat(gw, { model: 'qwen-arrearage', messages: userMsg() });
    assertServedBy(res, /^kimi@intl\/ok$/, 2, 'kimi');
    assert.ok(fakes.qwen.byModel('no-balance').length >= 1);
  });

  test('Kimi HTTP 403 exceeded_current_quota_error -> next deployment answers (attempts 2)', async () => {
    const res = await chat(gw, { model: 'kimi-quota', messages: userMsg() });
    assertServedBy(res, /^glm@intl\/ok$/, 2, 'glm');
    assert.ok(fakes.kimi.byModel('no-balance').length >= 1);
  });
});

describe('rate limits and Retry-After', () => {
  test('429 + Retry-After: 1 -> fail-over; cooled-down deployment skipped next; back after 1 s', async () => {
    const limited = () => fakes.deepseek.byModel('rate-limit').length;
    const before0 = limited();
    const r1 = await chat(gw, { model: 'rl', messages: userMsg() });
    assertServedBy(r1, /^qwen@ap-southeast-1\/ok:rl$/, 2, 'qwen');
    assert.equal(limited(), before0 + 1, 'first request tried the rate-limited deployment');

    const r2 = await chat(gw, { model: 'rl', messages: userMsg() });
    assertServedBy(r2, /^qwen@ap-southeast-1\/ok:rl$/, 1, 'qwen');
    assert.equal(limited(), before0 + 1, 'deployment in Retry-After cooldown was not called again');

    await sleep(1300);
    const r3 = await chat(gw, { model: 'rl', messages: userMsg() });
    assert.equal(limited(), before0 + 2, 'after Retry-After elapsed the deployment is tried again');
    assertServedBy(r3, /^qwen@ap-southeast-1\/ok:rl$/, 2, 'qwen');
  });

  test('429 on the only deployment -> client gets 429 (OpenAI shape)', async () => {
    const res = await chat(gw, { model: 'rl-only', messages: userMsg() });
    openAiError(assert, res, 429);
  });
});

describe('server errors, timeouts, broken connections', () => {
  test('500 -> fail-over (attempts 2)', async () => {
    const res = await chat(gw, { model: '5xx', messages: userMsg() });
    assertServedBy(res, /^deepseek@global\/ok:5xx$/, 2, 'deepseek');
  });

  test('500 on the only deployment -> 502', async () => {
    const res = await chat(gw, { model: '5xx-only', messages: userMsg() });
    openAiError(assert, res, 502);
  });

  test('upstream never answers -> first-byte timeout (1.5 s) -> fail-over', async () => {
    const res = await chat(gw, { model: 'hang', messages: userMsg() });
    assertServedBy(res, /^deepseek@global\/ok:hang$/, 2, 'deepseek');
    assert.ok(res.ms >= 1400, `waited for the first-byte deadline (${res.ms.toFixed(0)} ms)`);
    assert.ok(res.ms < 4500, `but not much longer (${res.ms.toFixed(0)} ms)`);
  });

  test('upstream never answers, streaming -> fail-over, client gets the fall-back stream', async () => {
    const r = await chatStream(gw, { model: 'hang', messages: userMsg(), stream: true });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['x-gateway-deployment']), /^deepseek@global\/ok:hang$/);
    assert.equal(assemble(r.chunks).content, CONTENT_PIECES('deepseek').join(''));
    assert.ok(r.done);
  });

  test('upstream never answers, no fall-back -> 504 within the deadline', async () => {
    const res = await chat(gw, { model: 'hang-only', messages: userMsg() });
    openAiError(assert, res, 504);
    assert.ok(res.ms >= 1400 && res.ms < 4500, `504 after ~first_byte_timeout_ms (${res.ms.toFixed(0)} ms)`);
    // A timeout must cancel the work, not only stop waiting: the hung upstream connection is closed.
    const rec = fakes.qwen.byModel('hang:only').at(-1);
    assert.ok(rec, 'the hanging upstream was called');
    await withTimeout(rec.socketClosed, 1500, 'gateway closing the timed-out upstream connection');
  });

  test('connection refused -> fail-over', async () => {
    const res = await chat(gw, { model: 'refused', messages: userMsg() });
    assertServedBy(res, /^deepseek@global\/ok:refused$/, 2, 'deepseek');
  });

  test('socket closed before response headers -> fail-over', async () => {
    const res = await chat(gw, { model: 'cut-before-headers', messages: userMsg() });
    assertServedBy(res, /^deepseek@global\/ok:cut$/, 2, 'deepseek');
  });

  test('non-stream body cut half-way (nothing sent to the client yet) -> fail-over', async () => {
    const res = await chat(gw, { model: 'cut-body', messages: userMsg() });
    assertServedBy(res, /^deepseek@global\/ok:cutbody$/, 2, 'deepseek');
  });
});

describe('attempt budget and streaming errors before content', () => {
  test('max_attempts (3) bounds the attempts: 3 failures -> 502, the 4th deployment is never called', async () => {
    const res = await chat(gw, { model: 'too-many', messages: userMsg() });
    openAiError(assert, res, 502);
    assert.equal(fakes.deepseek.byModel('ok:m4').length, 0, '4th deployment not called');
    assert.equal(fakes.kimi.byModel('server-error:m1').length + fakes.qwen.byModel('server-error:m2').length + fakes.glm.byModel('server-error:m3').length, 3);
    if (res.headers['x-gateway-attempts'] !== undefined) assert.equal(res.headers['x-gateway-attempts'], '3');
  });

  test('stream request failing before any content -> plain JSON error with the status (not an SSE stream)', async () => {
    const r = await chatStream(gw, { model: '5xx-only', messages: userMsg(), stream: true });
    assert.equal(r.status, 502, r.raw);
    assert.match(String(r.headers['content-type']), /application\/json/);
    const body = JSON.parse(r.raw);
    assert.equal(typeof body.error?.message, 'string');
  });
});

describe('client errors do not fail over', () => {
  test('upstream 400 -> 400 to the client, next deployment not tried', async () => {
    const res = await chat(gw, { model: 'client-400', messages: userMsg() });
    openAiError(assert, res, 400);
    assert.equal(fakes.deepseek.byModel('ok:400').length, 0, 'fall-back deployment was not called');
    assert.equal(fakes.glm.byModel('bad-request').length, 1);
  });
});
