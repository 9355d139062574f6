// TLS: upstream certificates verified against a CA generated at test time (upstream.ca_file),
// host names checked, and TLS termination on the gateway itself (server.tls).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFake, CONTENT_PIECES } from './lib/fake_upstream.mjs';
import { assemble } from './lib/sse.mjs';
import { startGateway, defaultConfig, chat, chatStream, request, userMsg, openAiError } from './lib/gateway.mjs';
import { makeCa } from './lib/certs.mjs';

const KEY = 'sk-ds-tls-key';
let ca, otherCa, good, wrongHost, untrusted;
const fakes = {};
let gw;

before(async () => {
  ca = await makeCa('Gateway Test CA');
  otherCa = await makeCa('Some Other CA');
  good = await ca.leaf('good', 'DNS:localhost,IP:127.0.0.1', 'localhost');
  wrongHost = await ca.leaf('wronghost', 'DNS:wrong.example', 'wrong.example');
  untrusted = await otherCa.leaf('untrusted', 'DNS:localhost,IP:127.0.0.1', 'localhost');
  fakes.good = await startFake({ dialect: 'deepseek', key: KEY, tls: { cert: good.certPem, key: good.keyPem } });
  fakes.wrongHost = await startFake({ dialect: 'deepseek', key: KEY, tls: { cert: wrongHost.certPem, key: wrongHost.keyPem } });
  fakes.untrusted = await startFake({ dialect: 'deepseek', key: KEY, tls: { cert: untrusted.certPem, key: untrusted.keyPem } });
  const c = defaultConfig();
  c.server.tls = { cert_file: good.cert, key_file: good.key };
  c.server.header_timeout_ms = 1000;  // bounds the TLS handshake too
  c.upstream.ca_file = ca.caCert;
  c.providers = {
    deepseek: { api_key_env: 'DEEPSEEK_API_KEY', base_urls: { global: fakes.good.origin } },
    'ds-wrong-host': { type: 'deepseek', api_key_env: 'DEEPSEEK_API_KEY', base_urls: { global: fakes.wrongHost.origin } },
    'ds-untrusted': { type: 'deepseek', api_key_env: 'DEEPSEEK_API_KEY', base_urls: { global: fakes.untrusted.origin } },
  };
  c.models = {
    ok: ['deepseek/ok'], 'wrong-host': ['ds-wrong-host/ok'], untrusted: ['ds-untrusted/ok'],
    // A broken upstream behind TLS: the gateway's TLS stream waits on the socket itself, so each
    // deadline and cut must reach it as it does over plain TCP.
    hang: ['deepseek/hang', 'deepseek/ok:after-hang'], cut: ['deepseek/close-mid-stream', 'deepseek/ok:after-cut'],
    stall: ['deepseek/stall-mid-stream'], fragmented: ['deepseek/fragmented'],
  };
  gw = await startGateway({ config: c, env: { DEEPSEEK_API_KEY: KEY } });
});

after(async () => {
  // Fakes first: stop() throws if the gateway died during the tests.
  await Promise.all(Object.values(fakes).map((f) => f.close()));
  await gw?.stop();
});

const opts = () => ({ ca: ca.caPem });

describe('gateway TLS termination (server.tls)', () => {
  test('listens on https:// and serves a client that trusts the test CA', async () => {
    assert.match(gw.url, /^https:\/\/127\.0\.0\.1:\d+$/, `listening line announces https: ${gw.url}`);
    const res = await request(gw.url + '/healthz', opts());
    assert.equal(res.status, 200);
  });

  test('a client that does not trust the CA is refused by its own TLS stack', async () => {
    await assert.rejects(request(gw.url + '/healthz'), /certificate|self.signed|verify/i);
  });

  test('a client that never starts the TLS handshake is closed after header_timeout_ms (1 s)', async () => {
    const { default: net } = await import('node:net');
    const sock = net.connect(Number(new URL(gw.url).port), '127.0.0.1');
    await new Promise((r, j) => sock.once('connect', r).once('error', j));
    const t0 = performance.now();
    sock.resume();
    await new Promise((r, j) => {
      const timer = setTimeout(() => j(new Error('still open after 4 s')), 4000);
      sock.once('close', () => { clearTimeout(timer); r(); });
    });
    const ms = performance.now() - t0;
    assert.ok(ms >= 950 && ms < 2500, `closed at the deadline: ${ms.toFixed(0)} ms`);
    const res = await request(gw.url + '/healthz', opts());
    assert.equal(res.status, 200, 'still serving');
  });
});

describe('upstream TLS verification', () => {
  test('upstream certificate signed by upstream.ca_file for 127.0.0.1 -> works (non-stream and stream)', async () => {
    const res = await chat(gw, { model: 'ok', messages: userMsg() }, opts());
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.choices[0].message.content, CONTENT_PIECES('deepseek').join(''));
    const r = await chatStream(gw, { model: 'ok', messages: userMsg(), stream: true }, opts());
    assert.equal(r.status, 200);
    assert.ok(r.done);
    assert.equal(fakes.good.requests.at(-1).headers.authorization, `Bearer ${KEY}`);
  });

  test('certificate for the wrong host name (only DNS:wrong.example) -> refused with 502 mentioning the certificate', async () => {
    const res = await chat(gw, { model: 'wrong-host', messages: userMsg() }, opts());
    const e = openAiError(assert, res, 502);
    assert.match(e.message, /certificate|verif|host ?name|tls|ssl/i, `message explains the TLS failure: ${e.message}`);
    assert.equal(fakes.wrongHost.requests.length, 0, 'no HTTP request was sent over the unverified connection');
  });

  test('certificate from a CA that is not trusted -> refused with 502 mentioning the certificate', async () => {
    const res = await chat(gw, { model: 'untrusted', messages: userMsg() }, opts());
    const e = openAiError(assert, res, 502);
    assert.match(e.message, /certificate|verif|tls|ssl/i, `message explains the TLS failure: ${e.message}`);
    assert.equal(fakes.untrusted.requests.length, 0, 'no HTTP request was sent over the unverified connection');
  });

  test('the gateway keeps serving after refused handshakes', async () => {
    const res = await chat(gw, { model: 'ok', messages: userMsg() }, opts());
    assert.equal(res.status, 200, res.text);
  });
});

describe('upstream TLS connection pooling', () => {
  // Pooled connections are checked for stray bytes before reuse; TLS records that belong to the
  // connection (session tickets) must not make every TLS connection single-use.
  test('sequential requests over TLS reuse pooled upstream connections', async () => {
    const before = fakes.good.stats.connections;
    for (let i = 0; i < 6; ++i) {
      const res = await chat(gw, { model: 'ok', messages: userMsg() }, opts());
      assert.equal(res.status, 200, res.text);
    }
    const opened = fakes.good.stats.connections - before;
    assert.ok(opened <= 2, `upstream TLS connections opened for 6 sequential requests: ${opened} (2 workers)`);
  });
});

describe('a broken upstream behind TLS', () => {
  test('never answers -> the first-byte deadline (1.5 s) fires on the TLS wait -> fail-over', async () => {
    const res = await chat(gw, { model: 'hang', messages: userMsg() }, opts());
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['x-gateway-deployment'], 'deepseek@global/ok:after-hang');
    assert.ok(res.ms >= 1400, `waited for the first-byte deadline (${res.ms.toFixed(0)} ms)`);
  });

  test('stalls mid-stream -> the idle deadline ends the stream with an in-band error, no [DONE]', async () => {
    const r = await chatStream(gw, { model: 'stall', messages: userMsg(), stream: true }, opts());
    assert.equal(r.status, 200);
    assert.equal(r.done, false, 'no fabricated [DONE]');
    assert.equal(r.errors.length, 1, `one error event: ${r.raw.slice(-400)}`);
    assert.equal(r.chunks.at(-1).choices?.[0]?.finish_reason, 'error');
  });

  test('cut mid-stream (TCP close without close_notify) -> in-band error, no fail-over after content', async () => {
    const r = await chatStream(gw, { model: 'cut', messages: userMsg(), stream: true }, opts());
    assert.equal(r.status, 200);
    assert.equal(r.done, false);
    assert.equal(r.errors.length, 1, `one error event: ${r.raw.slice(-400)}`);
    assert.equal(fakes.good.byModel('ok:after-cut').length, 0);
  });

  test('records split across many TLS reads -> the answer arrives intact', async () => {
    const r = await chatStream(gw, { model: 'fragmented', messages: userMsg(), stream: true }, opts());
    assert.equal(r.status, 200, r.raw);
    assert.ok(r.done);
    assert.ok(assemble(r.chunks).content.length > 0);
  });

  test('a large non-stream answer and a large request body cross TLS in many records', async () => {
    const big = 'x'.repeat(300_000);
    const res = await chat(gw, { model: 'ok', messages: [{ role: 'user', content: big }] }, opts());
    assert.equal(res.status, 200, res.text);
    assert.equal(fakes.good.requests.at(-1).body.messages[0].content.length, big.length);
  });
});
