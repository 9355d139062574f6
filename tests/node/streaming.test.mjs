// Streaming edge cases: failures after content, trickling streams (no buffering), stalls hidden by
// keep-alive comments, absolute deadlines, client disconnects cancelling the upstream request.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFake, TRICKLE } from './lib/fake_upstream.mjs';
import { startGateway, defaultConfig, providerFor, chat, chatStream, userMsg, KEY_ENV, openAiError, withTimeout } from './lib/gateway.mjs';
import { assemble } from './lib/sse.mjs';

const DIALECTS = ['deepseek', 'qwen', 'kimi', 'glm'];
const KEYS = { deepseek: 'sk-ds-stream', qwen: 'sk-qw-stream', kimi: 'sk-km-stream', glm: 'zai-stream.secret' };
const fakes = {};
let gw; // stream_idle_timeout_ms 1000, total 6000
let gwTotal; // stream_idle_timeout_ms 5000, total 1200: the absolute deadline bites first

function env() {
  const e = {};
  for (const d of DIALECTS) e[KEY_ENV[d]] = KEYS[d];
  return e;
}

before(async () => {
  for (const d of DIALECTS) fakes[d] = await startFake({ dialect: d, key: KEYS[d] });
  const c = defaultConfig();
  for (const d of DIALECTS) c.providers[d] = providerFor(fakes[d]);
  c.models = {
    cut: ['kimi/close-mid-stream', 'deepseek/ok:after-cut'],
    trickle: ['glm/trickle'],
    'trickle-ds': ['deepseek/trickle'],
    forever: ['deepseek/keepalive-forever'],
    disconnect: ['qwen/trickle:disconnect'],
    fragmented: ['deepseek/fragmented'],
    stall: ['deepseek/stall-mid-stream', 'qwen/ok:after-stall'],
    'sse-variants': ['kimi/sse-variants'],
    'sse-variants-qwen': ['qwen/sse-variants'],
    garbage: ['glm/garbage', 'deepseek/ok:after-garbage'],
    'garbage-only': ['glm/garbage:only'],
  };
  gw = await startGateway({ config: c, env: env() });
  const c2 = structuredClone(c);
  c2.upstream.stream_idle_timeout_ms = 5000;
  c2.upstream.first_byte_timeout_ms = 5000;
  c2.upstream.total_timeout_ms = 1200;
  c2.models = { forever: ['deepseek/keepalive-forever:total'], trickle: ['kimi/trickle:total'] };
  gwTotal = await startGateway({ config: c2, env: env() });
});

after(async () => {
  // Fakes first: stop() throws if the gateway died during the tests.
  await Promise.all(Object.values(fakes).map((f) => f.close()));
  await Promise.all([gw?.stop(), gwTotal?.stop()]);
});

function assertInBandError(r, what) {
  const seq = r.order.filter((o) => o !== 'comment');
  assert.equal(r.done, false, `${what}: no fabricated data: [DONE] (sequence ${seq.join(',')})`);
  assert.equal(r.errors.length, 1, `${what}: exactly one error event (raw: ${r.raw.slice(-600)})`);
  assert.deepEqual(seq.slice(-2), ['chunk', 'error'], `${what}: stream ends with a finish chunk then the error event (sequence ${seq.join(',')})`);
  const last = r.chunks.at(-1);
  assert.equal(last.choices?.[0]?.finish_reason, 'error', `${what}: last chunk has finish_reason "error": ${JSON.stringify(last)}`);
  const e = r.errors[0].error;
  assert.ok(e && typeof e === 'object', 'error event is {"error":{...}}');
  assert.ok('type' in e, `error event has a type: ${JSON.stringify(e)}`);
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0);
  return e;
}

describe('failure after content reached the client', () => {
  test('upstream closes mid-stream -> content, then finish_reason "error" chunk + error event, no [DONE], no fail-over', async () => {
    const r = await chatStream(gw, { model: 'cut', messages: userMsg(), stream: true });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['x-gateway-deployment']), /^kimi@intl\/close-mid-stream$/);
    assert.equal(assemble(r.chunks).content, 'partial answer', 'the two content chunks sent before the cut arrive');
    assertInBandError(r, 'close-mid-stream');
    assert.equal(fakes.deepseek.byModel('ok:after-cut').length, 0, 'no fail-over once content was sent');
  });
});

describe('trickling streams are relayed as they arrive', () => {
  for (const [alias, dialect] of [['trickle', 'glm'], ['trickle-ds', 'deepseek']]) {
    test(`${dialect}: ${TRICKLE.count} chunks ${TRICKLE.intervalMs} ms apart arrive spread in time, then [DONE]`, async () => {
      const r = await chatStream(gw, { model: alias, messages: userMsg(), stream: true, stream_options: { include_usage: true } });
      assert.equal(r.status, 200, r.raw);
      const ticks = r.chunks.filter((c) => /^tick\d/.test(c.choices?.[0]?.delta?.content ?? ''));
      assert.equal(ticks.length, TRICKLE.count, 'all trickled chunks arrive');
      assert.equal(assemble(r.chunks).content, 'tick1 tick2 tick3 tick4 tick5 ');
      const gaps = ticks.slice(1).map((c, i) => c.__t - ticks[i].__t);
      // Not buffered: every gap is a good part of the upstream's interval (a loaded machine may delay
      // one chunk and so shorten the next gap), and together they span the upstream's timeline.
      for (const g of gaps) assert.ok(g >= TRICKLE.intervalMs * 0.3, `inter-arrival gap ${g.toFixed(0)} ms >= ${TRICKLE.intervalMs * 0.3} ms (not buffered): ${gaps.map((x) => x.toFixed(0))}`);
      const span = ticks.at(-1).__t - ticks[0].__t;
      assert.ok(span >= (TRICKLE.count - 1) * TRICKLE.intervalMs * 0.8, `chunks spread over ${span.toFixed(0)} ms`);
      assert.ok(ticks[0].__t - r.t0 < TRICKLE.intervalMs + 400, `first chunk relayed promptly (${(ticks[0].__t - r.t0).toFixed(0)} ms)`);
      assert.ok(r.done);
      assert.deepEqual(r.chunks.at(-1).choices, [], 'usage chunk last');
    });
  }
});

describe('upstream SSE framing', () => {
  test('events split across reads (5-byte writes) are reassembled: same chunks, usage, [DONE]', async () => {
    const r = await chatStream(gw, { model: 'fragmented', messages: userMsg(), stream: true, stream_options: { include_usage: true } });
    assert.equal(r.status, 200, r.raw);
    assert.equal(r.bad.length, 0, `no broken events: ${r.bad}`);
    assert.deepEqual(r.chunks.map((c) => c.choices?.[0]?.delta?.content).filter((x) => x), ['Hello', ' from', ' deepseek', '!']);
    assert.equal(assemble(r.chunks).reasoning, 'Let me think.');
    assert.deepEqual(r.chunks.at(-1).choices, []);
    assert.equal(r.chunks.at(-1).usage?.prompt_tokens_details?.cached_tokens, 32);
    assert.ok(r.done);
  });

  for (const [alias, dialect, cached] of [['sse-variants', 'kimi', 48], ['sse-variants-qwen', 'qwen', 24]]) {
    test(`${dialect}: other legal SSE spellings (CRLF, "data:" without space, id/event fields, comments) are parsed`, async () => {
      const r = await chatStream(gw, { model: alias, messages: userMsg(), stream: true, stream_options: { include_usage: true } });
      assert.equal(r.status, 200, r.raw);
      assert.equal(r.errors.length, 0, `no error: ${JSON.stringify(r.errors)} raw: ${r.raw.slice(-300)}`);
      assert.equal(assemble(r.chunks).content, `Hello from ${dialect}!`);
      assert.deepEqual(r.chunks.at(-1).choices, []);
      assert.equal(r.chunks.at(-1).usage?.prompt_tokens_details?.cached_tokens, cached);
      assert.ok(r.done);
    });
  }

  test('upstream 200 with a body that is not JSON -> fail-over before any content (non-stream and stream)', async () => {
    const a = await chat(gw, { model: 'garbage', messages: userMsg() });
    assert.equal(a.status, 200, a.text);
    assert.match(String(a.headers['x-gateway-deployment']), /^deepseek@global\/ok:after-garbage$/);
    const b = await chatStream(gw, { model: 'garbage', messages: userMsg(), stream: true });
    assert.equal(b.status, 200, b.raw);
    assert.equal(b.bad.length, 0, 'the broken upstream event is not relayed');
    assert.equal(assemble(b.chunks).content, 'Hello from deepseek!');
    assert.ok(b.done);
  });

  test('upstream 200 with a body that is not JSON, no fall-back -> 502 OpenAI error', async () => {
    const res = await chat(gw, { model: 'garbage-only', messages: userMsg() });
    openAiError(assert, res, 502);
  });
});

describe('stalls and deadlines', () => {
  test('keep-alive comments forever, stream -> 504 after stream_idle_timeout_ms (comments do not reset it)', async () => {
    const t0 = performance.now();
    const r = await chatStream(gw, { model: 'forever', messages: userMsg(), stream: true }, { timeoutMs: 10000 });
    const ms = performance.now() - t0;
    assert.equal(r.status, 504, `nothing was sent yet: 504 (got ${r.status}: ${r.raw.slice(0, 300)})`);
    const body = JSON.parse(r.raw);
    assert.equal(typeof body.error?.message, 'string');
    assert.ok(ms >= 900 && ms < 3000, `timed out by the idle deadline (1000 ms), not the total one (6000 ms): ${ms.toFixed(0)} ms`);
  });

  test('stall after content (only keep-alive comments follow) -> in-band error after stream_idle_timeout_ms, no [DONE]', async () => {
    const t0 = performance.now();
    const r = await chatStream(gw, { model: 'stall', messages: userMsg(), stream: true }, { timeoutMs: 10000 });
    const ms = performance.now() - t0;
    assert.equal(r.status, 200);
    assert.equal(assemble(r.chunks).content, 'partial answer');
    const e = assertInBandError(r, 'stall mid-stream');
    assert.ok(ms >= 900 && ms < 3000, `ended by the idle deadline (1000 ms), not the total one (6000 ms): ${ms.toFixed(0)} ms`);
    assert.match(e.message, /time|idle|stall|no stream event|\d+ ?ms/i, `error says it timed out: ${e.message}`);
    assert.equal(fakes.qwen.byModel('ok:after-stall').length, 0, 'no fail-over after content');
  });

  test('blank lines forever, non-stream -> 504 within the deadlines', async () => {
    const res = await chat(gw, { model: 'forever', messages: userMsg() }, { timeoutMs: 10000 });
    openAiError(assert, res, 504);
    assert.ok(res.ms < 6800, `bounded by total_timeout_ms 6000 (${res.ms.toFixed(0)} ms)`);
  });

  test('total_timeout_ms is absolute: keep-alives forever with a long idle deadline -> 504 at ~1.2 s', async () => {
    const t0 = performance.now();
    const r = await chatStream(gwTotal, { model: 'forever', messages: userMsg(), stream: true }, { timeoutMs: 10000 });
    const ms = performance.now() - t0;
    assert.equal(r.status, 504, r.raw.slice(0, 300));
    assert.ok(ms >= 1100 && ms < 3000, `504 at the total deadline (${ms.toFixed(0)} ms)`);
  });

  test('total_timeout_ms hit after content was sent -> in-band error, no [DONE]', async () => {
    const t0 = performance.now();
    const r = await chatStream(gwTotal, { model: 'trickle', messages: userMsg(), stream: true }, { timeoutMs: 10000 });
    const ms = performance.now() - t0;
    assert.equal(r.status, 200);
    const ticks = r.chunks.filter((c) => /^tick\d/.test(c.choices?.[0]?.delta?.content ?? ''));
    assert.ok(ticks.length >= 2 && ticks.length < TRICKLE.count, `some but not all chunks before the deadline (${ticks.length})`);
    assertInBandError(r, 'total timeout');
    assert.ok(ms < 3000, `ended at the deadline (${ms.toFixed(0)} ms)`);
  });
});

describe('client disconnect', () => {
  test('client drops mid-stream -> the upstream request socket is closed within ~1 s', async () => {
    const fake = fakes.qwen;
    const upstream = fake.nextRequest((r) => r.body?.model === 'trickle:disconnect', 5000);
    let abortedAt = null;
    const r = await chatStream(gw, { model: 'disconnect', messages: userMsg(), stream: true }, {
      onEvent: (ev) => {
        if (ev.data && ev.data.includes('tick1')) {
          abortedAt = performance.now();
          return 'abort';
        }
      },
    });
    assert.equal(r.status, 200);
    assert.ok(r.aborted && abortedAt, 'client aborted after the first content chunk');
    const rec = await upstream;
    await withTimeout(rec.socketClosed, 2500, 'upstream socket close after client disconnect');
    const lag = rec.socketClosedAt - abortedAt;
    assert.ok(lag < 1200, `upstream connection closed ${lag.toFixed(0)} ms after the client left`);
    assert.equal(rec.finished, false, 'the upstream stream had not finished on its own');
  });

  test('gateway still serves after the disconnect', async () => {
    const r = await chatStream(gw, { model: 'trickle', messages: userMsg(), stream: true });
    assert.equal(r.status, 200);
    assert.ok(r.done);
  });
});
