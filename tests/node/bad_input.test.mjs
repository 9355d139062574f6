// Bad client input gets the right OpenAI-shaped error, the upstream is not called, and the gateway
// keeps serving afterwards.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startFake, CONTENT_PIECES } from './lib/fake_upstream.mjs';
import { startGateway, defaultConfig, providerFor, chat, request, userMsg, openAiError, withTimeout } from './lib/gateway.mjs';

const KEY = 'sk-ds-badinput';
const MAX_BODY = 65536;
let gw;
let fake;

before(async () => {
  fake = await startFake({ dialect: 'deepseek', key: KEY });
  const c = defaultConfig();
  c.server.max_body_bytes = MAX_BODY;
  c.server.header_timeout_ms = 1000;
  c.server.body_timeout_ms = 1000;
  c.server.keepalive_idle_ms = 1500;
  c.providers.deepseek = providerFor(fake);
  c.models = { ds: ['deepseek/ok'] };
  gw = await startGateway({ config: c, env: { DEEPSEEK_API_KEY: KEY } });
});

after(async () => {
  // Fakes first: stop() throws if the gateway died during the tests.
  await fake?.close();
  await gw?.stop();
});

const raw = (s) => Buffer.from(s, 'utf8');
const withBytes = (prefix, bytes, suffix) => Buffer.concat([raw(prefix), Buffer.from(bytes), raw(suffix)]);

const CASES = [
  { name: 'malformed JSON', body: raw('{"model":"ds","messages":[{"role":"user","content":"hi"}]'), status: 400 },
  { name: 'not a JSON object (array)', body: raw('[1,2,3]'), status: 400 },
  { name: 'empty body', body: raw(''), status: 400 },
  { name: 'messages not an array', body: raw(JSON.stringify({ model: 'ds', messages: 'hello' })), status: 400, param: 'messages' },
  { name: 'max_tokens a string', body: raw(JSON.stringify({ model: 'ds', messages: userMsg(), max_tokens: '100' })), status: 400, param: 'max_tokens' },
  { name: 'stream a string', body: raw(JSON.stringify({ model: 'ds', messages: userMsg(), stream: 'yes' })), status: 400, param: 'stream' },
  { name: 'missing messages', body: raw(JSON.stringify({ model: 'ds' })), status: 400, param: 'messages' },
  { name: 'unknown model', body: raw(JSON.stringify({ model: 'no-such-model', messages: userMsg() })), status: 404, param: 'model', msg: /no-such-model/ },
  { name: 'invalid UTF-8 in a string (C3 28)', body: withBytes('{"model":"ds","messages":[{"role":"user","content":"bad ', [0xc3, 0x28], '"}]}'), status: 400 },
  { name: 'invalid UTF-8: encoded surrogate (ED A0 80)', body: withBytes('{"model":"ds","messages":[{"role":"user","content":"', [0xed, 0xa0, 0x80], '"}]}'), status: 400 },
  { name: 'invalid UTF-8: lone continuation byte in an unknown field', body: withBytes('{"model":"ds","messages":[{"role":"user","content":"x"}],"foo":"', [0x80], '"}'), status: 400 },
  { name: 'deeply nested JSON (20000 levels)', body: raw('{"model":"ds","messages":[{"role":"user","content":"x"}],"deep":' + '['.repeat(20000) + ']'.repeat(20000) + '}'), status: 400 },
  { name: `body over max_body_bytes (${MAX_BODY})`, body: raw(JSON.stringify({ model: 'ds', messages: userMsg('x'.repeat(MAX_BODY + 1000)) })), status: 413 },
];

async function assertStillServes() {
  const res = await chat(gw, { model: 'ds', messages: userMsg() });
  assert.equal(res.status, 200, `gateway still serves a good request: ${res.text}`);
  assert.equal(res.json.choices[0].message.content, CONTENT_PIECES('deepseek').join(''));
}

describe('bad client input', () => {
  for (const c of CASES) {
    test(`${c.name} -> ${c.status}, then a good request still works`, async () => {
      const before0 = fake.requests.length;
      const res = await request(gw.url + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: c.body });
      const e = openAiError(assert, res, c.status);
      assert.ok(res.headers['x-request-id'], 'error responses carry x-request-id too');
      if (c.param) assert.equal(e.param, c.param, `error.param names the field: ${JSON.stringify(e)}`);
      if (c.msg) assert.match(e.message, c.msg);
      assert.equal(fake.requests.length, before0, 'upstream not called');
      await assertStillServes();
    });
  }

  test(`body just under max_body_bytes is accepted`, async () => {
    const body = { model: 'ds', messages: userMsg('y'.repeat(MAX_BODY - 200)) };
    const res = await chat(gw, body);
    assert.equal(res.status, 200, res.text.slice(0, 300));
  });

  test('missing model errors are OpenAI-shaped (400)', async () => {
    const res = await chat(gw, { messages: userMsg() });
    const e = openAiError(assert, res, 400);
    assert.equal(e.param, 'model');
  });

  // Sends `partial` (an unfinished request) and waits for the gateway to answer and close.
  async function stalledRequest(partial) {
    const sock = net.connect(gw.port, '127.0.0.1');
    await new Promise((r, j) => sock.once('connect', r).once('error', j));
    const t0 = performance.now();
    sock.write(partial);
    let got = '';
    sock.on('data', (d) => (got += d));
    await withTimeout(new Promise((r) => sock.once('close', r)), 4000, 'gateway closing a stalled client');
    return { got, ms: performance.now() - t0 };
  }

  for (const [what, partial, message] of [
    ['headers', 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n', /request header timeout/],
    ['body', 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"model":', /request body timeout/],
  ]) {
    test(`slow client (incomplete ${what}) gets 408 and is cut off after its 1 s deadline`, async () => {
      const { got, ms } = await stalledRequest(partial);
      assert.ok(ms >= 950 && ms < 2500, `cut at the deadline (1 s; deadlines are swept every 100 ms): ${ms.toFixed(0)} ms`);
      assert.match(got, /^HTTP\/1\.1 408/, `the client is told why: ${got.slice(0, 100)}`);
      assert.match(got, message);
      await assertStillServes();
    });
  }

  test('idle keep-alive connection is closed after keepalive_idle_ms (1.5 s), not before', async () => {
    const sock = net.connect(gw.port, '127.0.0.1');
    await new Promise((r, j) => sock.once('connect', r).once('error', j));
    const body = JSON.stringify({ model: 'ds', messages: userMsg() });
    let got = '';
    const answered = new Promise((r) => sock.on('data', (d) => { got += d; if (got.includes('"usage"')) r(); }));
    sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    await withTimeout(answered, 4000, 'answer on the keep-alive connection');
    const t0 = performance.now();
    await withTimeout(new Promise((r) => sock.once('close', r)), 5000, 'gateway closing the idle connection');
    const ms = performance.now() - t0;
    assert.ok(ms >= 1400 && ms < 3500, `closed at the idle deadline: ${ms.toFixed(0)} ms`);
    assert.match(got, /^HTTP\/1\.1 200/);
    assert.doesNotMatch(got.slice(got.indexOf('"usage"')), /HTTP\/1\.1/, 'nothing sent on the idle connection');
  });
});
