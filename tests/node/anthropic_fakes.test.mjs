// The fake vendors' Anthropic-compatible endpoints speak the Anthropic Messages wire format with each
// vendor's quirks (the gateway's native relay is tested against them once POST /v1/messages is routed;
// until then these tests pin the fakes' own behaviour, without the gateway).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFake } from './lib/fake_upstream.mjs';
import { ANTHROPIC_PATHS, ANTHROPIC_TEXT, ANTHROPIC_THINKING, ANTHROPIC_USAGE, TOOL_CALL, anthropicCoreUsage } from './lib/fake_anthropic.mjs';
import { SseParser } from './lib/sse.mjs';

const DIALECTS = ['deepseek', 'qwen', 'kimi', 'glm', 'minimax'];
const KEYS = { deepseek: 'sk-ds-0123456789abcdef', qwen: 'sk-qw-0123456789abcdef', kimi: 'sk-km-0123456789abcdef', glm: 'zai-0123456789abcdef.secretpart', minimax: 'sk-mm-0123456789abcdef' };
const fakes = {};

// The header each vendor's fake wants its key in (the one the gateway's provider sends).
function authHeaders(d) {
  return d === 'deepseek' ? { 'x-api-key': KEYS[d] } : { authorization: 'Bearer ' + KEYS[d] };
}

function request(d, model, { stream = false, headers = authHeaders(d), body } = {}) {
  const b = body ?? { model, max_tokens: 64, stream, messages: [{ role: 'user', content: 'hi' }] };
  return fetch(fakes[d].anthropicBaseUrl + '/v1/messages', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...headers },
    body: typeof b === 'string' ? b : JSON.stringify(b),
    signal: AbortSignal.timeout(10_000),
  });
}

// Reads a stream to its end (or until `maxEvents`, or until the socket dies): {events, cut}.
async function readEvents(res, maxEvents = Infinity) {
  const parser = new SseParser();
  const decoder = new TextDecoder();
  const reader = res.body.getReader();
  let cut = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(decoder.decode(value, { stream: true }));
      if (parser.events.length >= maxEvents) {
        await reader.cancel();
        break;
      }
    }
  } catch {
    cut = true;  // the fake destroyed the socket
  }
  const events = parser.events.filter((e) => e.data !== null).map((e) => ({ name: e.event, data: JSON.parse(e.data) }));
  return { events, cut };
}

// What a relay computes: each figure the largest seen in message_start and message_delta.
function relayUsage(events) {
  const u = { input_tokens: 0, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, output_tokens: 0 };
  for (const e of events) {
    const src = e.name === 'message_start' ? e.data.message.usage : e.name === 'message_delta' ? e.data.usage : null;
    for (const k of Object.keys(u)) if (src && Number.isInteger(src[k])) u[k] = Math.max(u[k], src[k]);
  }
  return { prompt: u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens, cached: u.cache_read_input_tokens, cacheWrite: u.cache_creation_input_tokens, completion: u.output_tokens };
}

before(async () => {
  for (const d of DIALECTS) fakes[d] = await startFake({ dialect: d, key: KEYS[d] });
});
after(async () => {
  for (const f of Object.values(fakes)) await f.close();
});

describe('every vendor fake serves its Anthropic path', () => {
  for (const d of DIALECTS) {
    test(`${d}: streamed answer in Anthropic's event sequence, usage where the dialect puts it`, async () => {
      const res = await request(d, 'ok', { stream: true });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type'), /^text\/event-stream/);
      const { events, cut } = await readEvents(res);
      assert.equal(cut, false);
      assert.deepEqual(events.map((e) => e.name), [
        'message_start', 'ping',
        'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_stop',
        'content_block_start', ...ANTHROPIC_TEXT(d).map(() => 'content_block_delta'), 'content_block_stop',
        'message_delta', 'message_stop',
      ]);
      for (const e of events) assert.equal(e.data.type, e.name, 'each data names its event');
      const text = events.filter((e) => e.data.delta?.type === 'text_delta').map((e) => e.data.delta.text).join('');
      const thinking = events.filter((e) => e.data.delta?.type === 'thinking_delta').map((e) => e.data.delta.thinking).join('');
      assert.equal(text, ANTHROPIC_TEXT(d).join(''));
      assert.equal(thinking, ANTHROPIC_THINKING.join(''));
      assert.equal(events.at(-2).data.delta.stop_reason, 'end_turn');
      assert.deepEqual(relayUsage(events), anthropicCoreUsage(d));
      const rec = fakes[d].requests.at(-1);
      assert.equal(rec.api, 'anthropic');
      assert.equal(rec.path, ANTHROPIC_PATHS[d]);
    });

    test(`${d}: non-stream message with the whole usage`, async () => {
      const res = await request(d, 'ok');
      assert.equal(res.status, 200);
      const m = await res.json();
      assert.equal(m.type, 'message');
      assert.deepEqual(m.content.map((b) => b.type), ['thinking', 'text']);
      assert.equal(m.content[1].text, ANTHROPIC_TEXT(d).join(''));
      const u = ANTHROPIC_USAGE[d];
      assert.deepEqual(m.usage, { input_tokens: u.input, cache_creation_input_tokens: u.cache_creation, cache_read_input_tokens: u.cache_read, output_tokens: u.output });
    });

    test(`${d}: errors in Anthropic's shape`, async () => {
      const over = await request(d, 'overloaded');
      assert.equal(over.status, 529);
      assert.deepEqual(await over.json(), { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
      const rate = await request(d, 'rate-limit');
      assert.equal(rate.status, 429);
      assert.equal(rate.headers.get('retry-after'), '1');
      assert.equal((await rate.json()).error.type, 'rate_limit_error');
      const ctx = await request(d, 'context-too-long');
      assert.equal(ctx.status, 400);
      assert.match((await ctx.json()).error.message, /prompt is too long/);
      const missing = await request(d, 'ok', { body: { model: 'ok', messages: [] } });
      assert.equal(missing.status, 400, 'max_tokens is required, as on Anthropic');
      assert.equal((await missing.json()).error.type, 'invalid_request_error');
    });
  }
});

describe('vendor quirks', () => {
  test('GLM: out of balance is a 429 rate_limit_error with code 1113', async () => {
    const res = await request('glm', 'no-balance');
    assert.equal(res.status, 429);
    const b = await res.json();
    assert.equal(b.type, 'error');
    assert.equal(b.error.type, 'rate_limit_error');
    assert.equal(b.error.code, '1113');
    const busy = await (await request('glm', 'rate-limit')).json();
    assert.equal(busy.error.code, '1302', 'a real rate limit has another code');
  });

  test('out of balance per vendor: DeepSeek 402, Qwen 403 Arrearage, Kimi 403 quota', async () => {
    assert.equal((await request('deepseek', 'no-balance')).status, 402);
    const q = await request('qwen', 'no-balance');
    assert.equal(q.status, 403);
    assert.equal((await q.json()).error.code, 'Arrearage');
    const k = await request('kimi', 'no-balance');
    assert.equal(k.status, 403);
    assert.equal((await k.json()).error.type, 'exceeded_current_quota_error');
  });

  test('DeepSeek wants x-api-key, the others Authorization: Bearer', async () => {
    const bearer = await request('deepseek', 'ok', { headers: { authorization: 'Bearer ' + KEYS.deepseek } });
    assert.equal(bearer.status, 401);
    assert.equal((await bearer.json()).error.type, 'authentication_error');
    const xkey = await request('glm', 'ok', { headers: { 'x-api-key': KEYS.glm } });
    assert.equal(xkey.status, 401);
    assert.equal((await xkey.json()).error.code, '1000');
    const wrong = await request('kimi', 'ok', { headers: { authorization: 'Bearer sk-wrong' } });
    assert.equal(wrong.status, 401);
  });

  test('GLM legacy JWT is checked on the Anthropic path too', async () => {
    const f = await startFake({ dialect: 'glm', key: KEYS.glm, auth: 'jwt' });
    try {
      const res = await fetch(f.anthropicBaseUrl + '/v1/messages', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer ' + KEYS.glm },
        body: JSON.stringify({ model: 'ok', max_tokens: 8, messages: [] }),
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(res.status, 401, 'the raw key is not a JWT');
      assert.equal(f.requests.at(-1).jwt.ok, false);
    } finally {
      await f.close();
    }
  });

  test('the OpenAI path of the same fake still answers chat completions', async () => {
    const res = await fetch(fakes.kimi.baseUrl + '/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer ' + KEYS.kimi },
      body: JSON.stringify({ model: 'ok', messages: [{ role: 'user', content: 'hi' }] }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).object, 'chat.completion');
  });

  test('an unknown path on the Anthropic host is not an answer', async () => {
    const res = await fetch(fakes.glm.origin + '/api/anthropic/v1/complete', { method: 'POST', body: '{}', signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 404);
  });
});

describe('hostile modes', () => {
  test('tool-use: a tool_use block whose partial JSON assembles to the input', async () => {
    const { events } = await readEvents(await request('minimax', 'tool-use', { stream: true }));
    const start = events.find((e) => e.name === 'content_block_start' && e.data.content_block.type === 'tool_use');
    assert.equal(start.data.content_block.name, TOOL_CALL.name);
    const json = events.filter((e) => e.data.delta?.type === 'input_json_delta' && e.data.index === start.data.index).map((e) => e.data.delta.partial_json).join('');
    assert.deepEqual(JSON.parse(json), { path: '/etc/hosts' });
    assert.equal(events.find((e) => e.name === 'message_delta').data.delta.stop_reason, 'tool_use');
  });

  test('error-mid-stream: `event: error` after content, no message_stop', async () => {
    const { events } = await readEvents(await request('deepseek', 'error-mid-stream', { stream: true }));
    const names = events.map((e) => e.name);
    assert.ok(names.indexOf('content_block_delta') >= 0 && names.indexOf('content_block_delta') < names.indexOf('error'));
    assert.equal(names.at(-1), 'error');
    assert.equal(events.at(-1).data.error.type, 'overloaded_error');
  });

  test('error-before-content: the error follows message_start and ping only', async () => {
    const { events } = await readEvents(await request('qwen', 'error-before-content', { stream: true }));
    assert.deepEqual(events.map((e) => e.name), ['message_start', 'ping', 'error']);
  });

  test('close-mid-stream and usage-then-cut end without message_stop, on a dead socket', async () => {
    const a = await readEvents(await request('kimi', 'close-mid-stream', { stream: true }));
    assert.equal(a.cut, true);
    assert.ok(!a.events.some((e) => e.name === 'message_delta' || e.name === 'message_stop'));
    const b = await readEvents(await request('kimi', 'usage-then-cut', { stream: true }));
    assert.equal(b.cut, true);
    assert.equal(b.events.at(-1).name, 'message_delta');
    assert.deepEqual(relayUsage(b.events), anthropicCoreUsage('kimi'), 'the usage came before the cut');
  });

  test('no-message-stop ends cleanly after message_delta', async () => {
    const { events, cut } = await readEvents(await request('glm', 'no-message-stop', { stream: true }));
    assert.equal(cut, false);
    assert.equal(events.at(-1).name, 'message_delta');
  });

  test('stall-mid-stream: content, then only pings', async () => {
    const { events } = await readEvents(await request('glm', 'stall-mid-stream', { stream: true }), 8);
    const firstDelta = events.findIndex((e) => e.name === 'content_block_delta');
    assert.ok(firstDelta > 0);
    assert.ok(events.slice(firstDelta + 1).every((e) => e.name === 'ping'), JSON.stringify(events.map((e) => e.name)));
  });

  test('lying-usage: message_delta claims fewer input tokens than message_start', async () => {
    const { events } = await readEvents(await request('qwen', 'lying-usage', { stream: true }));
    const start = events[0].data.message.usage;
    const delta = events.find((e) => e.name === 'message_delta').data.usage;
    assert.ok(delta.input_tokens < start.input_tokens, JSON.stringify({ start, delta }));
    assert.deepEqual(relayUsage(events), anthropicCoreUsage('qwen'), 'the largest figures are the true ones');
  });

  test('bad-usage: a negative output count', async () => {
    const { events } = await readEvents(await request('minimax', 'bad-usage', { stream: true }));
    assert.equal(events.find((e) => e.name === 'message_delta').data.usage.output_tokens, -3);
  });

  test('garbage: an event that is not JSON, a body that is not JSON', async () => {
    const s = await request('deepseek', 'garbage', { stream: true });
    assert.match(await s.text(), /data: \{this is not json/);
    const n = await request('deepseek', 'garbage');
    assert.equal(n.status, 200);
    await assert.rejects(n.json());
  });
});
