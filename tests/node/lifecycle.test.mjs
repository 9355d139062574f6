// Request lifecycle: a client that leaves cancels the upstream work in every phase (the upstream sees
// its socket close at once, long before any upstream deadline could); a half-closed client still gets
// its answer; a non-stream body that stalls fails over; a stream that fails after content ends with an
// error chunk that looks like the chunks before it (and the usage counted, when asked for) and is
// counted as failed in the metrics.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import OpenAI from 'openai';
import { startFake, TRICKLE } from './lib/fake_upstream.mjs';
import { startGateway, defaultConfig, providerFor, chat, chatStream, request, userMsg, KEY_ENV, withTimeout, sleep } from './lib/gateway.mjs';

const KEYS = { deepseek: 'sk-ds-life', qwen: 'sk-qw-life', kimi: 'sk-km-life', glm: 'zai-life.secret' };
const fakes = {};
let silentTls; // accepts TCP connections and never answers: a TLS handshake that never completes
const silentSockets = [];
let gwLong; // every upstream deadline 20 s or more: only a cancel can close an upstream socket early
let gwShort; // the default test deadlines (stream_idle_timeout_ms 1000)
let gwRetry; // deepseek with its key, kimi without one

// Generous for a loaded 2-core machine, and still 10x shorter than any upstream deadline of gwLong.
const CANCEL_BOUND_MS = 2000;

function env() {
  const e = {};
  for (const d of Object.keys(KEYS)) e[KEY_ENV[d]] = KEYS[d];
  return e;
}

before(async () => {
  for (const d of Object.keys(KEYS)) fakes[d] = await startFake({ dialect: d, key: KEYS[d] });
  silentTls = net.createServer((s) => {
    s.resume(); // read (and drop) the ClientHello, so that the gateway's close is seen
    const rec = { at: performance.now(), closedAt: null };
    rec.closed = new Promise((resolve) => s.once('close', () => resolve((rec.closedAt = performance.now()))));
    s.on('error', () => {});
    silentSockets.push(rec);
  });
  await new Promise((r) => silentTls.listen(0, '127.0.0.1', r));

  const c = defaultConfig();
  for (const d of Object.keys(KEYS)) c.providers[d] = providerFor(fakes[d]);
  c.providers.silent = { type: 'openai_compatible', base_url: `https://127.0.0.1:${silentTls.address().port}/v1` };
  c.models = {
    'tls-stuck': ['silent/m'],
    hang: ['qwen/hang:life'],
    'stall-body': ['qwen/stall-body:life'],
    trickle: ['glm/trickle:life'],
    'trickle-ns': ['qwen/trickle:life'],
  };
  const long = structuredClone(c);
  Object.assign(long.upstream, {
    connect_timeout_ms: 20000,
    tls_timeout_ms: 20000,
    first_byte_timeout_ms: 20000,
    stream_idle_timeout_ms: 20000,
    total_timeout_ms: 30000,
  });
  gwLong = await startGateway({ config: long, env: env() });

  const short = structuredClone(c);
  short.models = {
    'stall-fo': ['qwen/stall-body:fo', 'deepseek/ok:after-stall'],
    cut: ['kimi/close-mid-stream:life'],
    'usage-cut': ['deepseek/usage-then-cut'],
  };
  gwShort = await startGateway({ config: short, env: env() });

  const retry = defaultConfig();
  retry.providers = { deepseek: providerFor(fakes.deepseek), kimi: providerFor(fakes.kimi) };
  retry.models = { limited: ['deepseek/rate-limit-long'], nokey: ['kimi/ok:nokey'] };
  gwRetry = await startGateway({ config: retry, env: { DEEPSEEK_API_KEY: KEYS.deepseek } });
});

after(async () => {
  await Promise.all(Object.values(fakes).map((f) => f.close()));
  await new Promise((r) => silentTls.close(r));
  await Promise.all([gwLong?.stop(), gwShort?.stop(), gwRetry?.stop()]);
});

// A raw HTTP/1.1 POST over a fresh socket; the caller decides when to leave or half-close.
function rawChat(gw, body) {
  const payload = JSON.stringify(body);
  const sock = net.connect(gw.port, '127.0.0.1');
  const out = { sock, text: '', closed: null };
  sock.setEncoding('utf8');
  sock.on('data', (d) => (out.text += d));
  sock.on('error', () => {});
  out.closed = new Promise((resolve) => sock.once('close', resolve));
  sock.write(
    `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`,
  );
  return out;
}

async function leaveAndMeasure(client, upstreamClosed, upstreamClosedAt) {
  const leftAt = performance.now();
  client.sock.destroy();
  await withTimeout(upstreamClosed, CANCEL_BOUND_MS + 1000, 'the upstream socket to close after the client left');
  const lag = upstreamClosedAt() - leftAt;
  assert.ok(lag < CANCEL_BOUND_MS, `upstream socket closed ${lag.toFixed(0)} ms after the client left`);
}

describe('a client that leaves cancels the upstream work in every phase', () => {
  test('during the upstream TLS handshake (connect phase)', async () => {
    const before = silentSockets.length;
    const client = rawChat(gwLong, { model: 'tls-stuck', messages: userMsg() });
    for (let i = 0; i < 100 && silentSockets.length === before; i++) await sleep(20);
    assert.equal(silentSockets.length, before + 1, 'the gateway connected to the upstream');
    await sleep(200);
    const up = silentSockets.at(-1);
    await leaveAndMeasure(client, up.closed, () => up.closedAt);
  });

  // The gateway starts watching the client at its next deadline sweep (100 ms): a client that
  // leaves at once, before that, is noticed by the sweep.
  for (const stream of [false, true]) {
    for (const waitMs of [200, 0]) {
      test(`while waiting for the upstream's response header (${stream ? 'stream' : 'non-stream'}, leaving after ${waitMs} ms)`, async () => {
        const next = fakes.qwen.nextRequest((r) => r.body?.model === 'hang:life', 5000);
        const client = rawChat(gwLong, { model: 'hang', messages: userMsg(), stream });
        const rec = await next;
        if (waitMs) await sleep(waitMs);
        await leaveAndMeasure(client, rec.socketClosed, () => rec.socketClosedAt);
        assert.equal(client.text, '', 'nothing was sent to the client');
      });
    }
  }

  test('while a non-stream body is stalled after its header', async () => {
    const next = fakes.qwen.nextRequest((r) => r.body?.model === 'stall-body:life', 5000);
    const client = rawChat(gwLong, { model: 'stall-body', messages: userMsg() });
    const rec = await next;
    await sleep(300);
    await leaveAndMeasure(client, rec.socketClosed, () => rec.socketClosedAt);
  });

  test('between stream events while the upstream is silent', async () => {
    const next = fakes.qwen.nextRequest((r) => r.body?.model === 'stall-body:life', 5000);
    const client = rawChat(gwLong, { model: 'stall-body', messages: userMsg(), stream: true });
    const rec = await next;
    for (let i = 0; i < 250 && !client.text.includes('partial'); i++) await sleep(20);
    assert.ok(client.text.includes('partial'), `the first content chunk reached the client: ${client.text.slice(0, 300)}`);
    await sleep(200);
    await leaveAndMeasure(client, rec.socketClosed, () => rec.socketClosedAt);
  });

  test('the gateway still serves after all of these', async () => {
    const r = await chatStream(gwLong, { model: 'trickle', messages: userMsg(), stream: true });
    assert.equal(r.status, 200);
    assert.ok(r.done);
  });
});

describe('a client that half-closes after its request still gets the whole answer', () => {
  test('stream', async () => {
    const client = rawChat(gwLong, { model: 'trickle', messages: userMsg(), stream: true });
    client.sock.end(); // FIN after the request: "I have nothing more to send", not "I am gone"
    await withTimeout(client.closed, 10000, 'the response to end');
    const ticks = client.text.match(/tick\d/g) ?? [];
    assert.equal(ticks.length, TRICKLE.count, `all chunks arrived: ${client.text.slice(-600)}`);
    assert.ok(client.text.includes('data: [DONE]'), 'the stream ended with [DONE]');
    assert.match(client.text, /HTTP\/1\.1 200 OK\r\n/);
  });

  test('non-stream', async () => {
    const client = rawChat(gwLong, { model: 'trickle-ns', messages: userMsg() });
    client.sock.end();
    await withTimeout(client.closed, 10000, 'the response to end');
    assert.match(client.text, /HTTP\/1\.1 200 OK\r\n/);
    const body = client.text.slice(client.text.lastIndexOf('\r\n\r\n') + 4);
    assert.equal(JSON.parse(body).object, 'chat.completion');
  });
});

describe('a non-stream upstream that sends its header and then stalls', () => {
  test('times out after stream_idle_timeout_ms and fails over to the healthy fall-back', async () => {
    const r = await chat(gwShort, { model: 'stall-fo', messages: userMsg() }, { timeoutMs: 15000 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-gateway-deployment'], 'deepseek@global/ok:after-stall');
    assert.equal(r.headers['x-gateway-attempts'], '2');
    assert.equal(r.json.object, 'chat.completion');
    // Idle deadline 1 s; the total deadline (6 s) would be the only bound without it.
    assert.ok(r.ms < 5000, `answered after ${r.ms.toFixed(0)} ms`);
  });
});

describe('a stream that fails after content', () => {
  test('its error chunk carries the stream\'s own id and model', async () => {
    const r = await chatStream(gwShort, { model: 'cut', messages: userMsg(), stream: true });
    assert.equal(r.status, 200);
    assert.equal(r.errors.length, 1, r.raw.slice(-500));
    const ids = new Set(r.chunks.map((c) => c.id));
    const models = new Set(r.chunks.map((c) => c.model));
    assert.equal(ids.size, 1, `one id across all chunks: ${[...ids].join(', ')}`);
    assert.equal(models.size, 1, `one model across all chunks: ${[...models].join(', ')}`);
    assert.ok(![...ids][0].startsWith('req_'), 'the upstream stream id, not the request id');
    assert.equal(r.chunks.at(-1).choices[0].finish_reason, 'error');
  });

  test('with include_usage, a usage chunk with what was counted precedes the error', async () => {
    const r = await chatStream(gwShort, {
      model: 'usage-cut', messages: userMsg(), stream: true, stream_options: { include_usage: true },
    });
    assert.equal(r.status, 200);
    const seq = r.order.filter((o) => o !== 'comment');
    assert.deepEqual(seq.slice(-3), ['chunk', 'chunk', 'error'], `sequence ${seq.join(',')}`);
    const usage = r.chunks.at(-2);
    assert.deepEqual(usage.choices, [], JSON.stringify(usage));
    assert.equal(usage.usage.prompt_tokens, 40);
    assert.equal(usage.usage.completion_tokens, 20);
    assert.equal(usage.id, r.chunks[0].id);
    assert.equal(r.chunks.at(-1).choices[0].finish_reason, 'error');
  });

  test('metrics count such requests as failed_after_content, not 2xx', async () => {
    const m = await request(gwShort.url + '/metrics');
    const lines = m.text.split('\n').filter((l) => l.startsWith('gateway_requests_total{'));
    for (const dep of ['kimi@intl/close-mid-stream:life', 'deepseek@global/usage-then-cut']) {
      const mine = lines.filter((l) => l.includes(`deployment="${dep}"`));
      assert.ok(mine.some((l) => l.includes('status_class="failed_after_content"')), `${dep}: ${mine.join(' | ')}`);
      assert.ok(!mine.some((l) => l.includes('status_class="2xx"')), `${dep} is not counted as 2xx: ${mine.join(' | ')}`);
    }
  });
});

describe('honest retry signals', () => {
  test("an upstream 429's Retry-After reaches the client, and the cool-down it starts answers 429 with the real wait", async () => {
    const first = await chat(gwRetry, { model: 'limited', messages: userMsg() });
    assert.equal(first.status, 429, first.text);
    assert.equal(first.headers['retry-after'], '7', 'the upstream value, not a made-up 1');
    const second = await chat(gwRetry, { model: 'limited', messages: userMsg() });
    assert.equal(second.status, 429, `a rate-limit cool-down is a 429, not a 503: ${second.text}`);
    assert.equal(second.json.error.type, 'rate_limit_error');
    const ra = Number(second.headers['retry-after']);
    assert.ok(ra >= 5 && ra <= 7, `Retry-After ${second.headers['retry-after']}: the cool-down left (about 7 s)`);
    assert.equal(fakes.deepseek.byModel('rate-limit-long').length, 1, 'the cooling deployment was not called again');
  });

  test('a provider without an API key: no Retry-After, x-should-retry: false', async () => {
    const r = await chat(gwRetry, { model: 'nokey', messages: userMsg() });
    assert.equal(r.status, 503, r.text);
    assert.equal(r.headers['x-should-retry'], 'false');
    assert.equal(r.headers['retry-after'], undefined);
    assert.match(r.json.error.message, /MOONSHOT_API_KEY/);
  });

  test('the official openai SDK surfaces the missing-key error on its first attempt', async () => {
    const count = () => (gwRetry.stderr.match(/"model":"nokey"/g) ?? []).length;
    await sleep(200); // the previous test's access log line is written after its response
    const before = count();
    const client = new OpenAI({ baseURL: gwRetry.url + '/v1', apiKey: 'unused', maxRetries: 2, timeout: 10000 });
    const t0 = performance.now();
    await assert.rejects(client.chat.completions.create({ model: 'nokey', messages: userMsg() }), (e) => {
      assert.equal(e.status, 503);
      assert.match(e.message, /MOONSHOT_API_KEY/);
      return true;
    });
    await sleep(200); // the access log line is written after the response
    assert.equal(count() - before, 1, 'one request reached the gateway (the SDK did not retry)');
    assert.ok(performance.now() - t0 < 2000, 'no retry back-off was waited');
  });
});
