// Admin and discovery endpoints: /healthz, /readyz, /v1/models, /metrics (promtool-valid, counters move).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { startFake } from './lib/fake_upstream.mjs';
import { startGateway, defaultConfig, providerFor, chat, chatStream, request, userMsg, run, sleep } from './lib/gateway.mjs';

let gw;
const f = {};

before(async () => {
  f.deepseek = await startFake({ dialect: 'deepseek', key: 'sk-ds-admin' });
  f.glm = await startFake({ dialect: 'glm', key: 'zai.admin' });
  // Closes idle keep-alive connections after 100 ms, like many real load balancers do (sooner).
  f.impatient = await startFake({ dialect: 'openai', keepAliveTimeoutMs: 100 });
  const c = defaultConfig();
  c.providers = { deepseek: providerFor(f.deepseek), glm: providerFor(f.glm), 'glm-broke': { type: 'glm', ...providerFor(f.glm) }, impatient: providerFor(f.impatient) };
  c.models = { ds: ['deepseek/ok'], chain: ['glm-broke/no-balance', 'deepseek/ok'], 'ds-5xx': ['deepseek/server-error'], impatient: ['impatient/ok'], slow: ['deepseek/trickle'] };
  gw = await startGateway({ config: c, env: { DEEPSEEK_API_KEY: 'sk-ds-admin', ZAI_API_KEY: 'zai.admin' } });
});

after(async () => {
  // Fakes first: stop() throws if the gateway died during the tests.
  await Promise.all(Object.values(f).map((x) => x.close()));
  await gw?.stop();
});

// Parses Prometheus text into [{name, labels, value}].
function parseProm(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const lm of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}
const sum = (samples, name, pred = () => true) => samples.filter((s) => s.name === name && pred(s.labels)).reduce((a, s) => a + s.value, 0);

async function metrics() {
  const res = await request(gw.url + '/metrics');
  assert.equal(res.status, 200);
  return res;
}

describe('health', () => {
  test('GET /healthz -> 200', async () => {
    assert.equal((await request(gw.url + '/healthz')).status, 200);
  });
  test('GET /readyz -> 200 when serving', async () => {
    assert.equal((await request(gw.url + '/readyz')).status, 200);
  });
});

describe('GET /v1/models', () => {
  test('OpenAI list shape; ids are the configured aliases', async () => {
    const res = await request(gw.url + '/v1/models');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.object, 'list');
    assert.ok(Array.isArray(res.json.data));
    assert.deepEqual(res.json.data.map((m) => m.id).sort(), ['chain', 'ds', 'ds-5xx', 'impatient', 'slow']);
    for (const m of res.json.data) {
      assert.equal(m.object, 'model');
      assert.equal(typeof m.created, 'number');
      assert.equal(typeof m.owned_by, 'string');
      assert.equal(m.available, true);
      assert.deepEqual(m.surfaces, ['chat.completions', 'responses', 'messages']);
    }
  });

  test('?all=true lists the same (every alias here has a keyed provider); other methods are refused', async () => {
    const res = await request(gw.url + '/v1/models?all=true');
    assert.deepEqual(res.json.data.map((m) => m.id).sort(), ['chain', 'ds', 'ds-5xx', 'impatient', 'slow']);
    assert.equal((await request(gw.url + '/v1/models', { method: 'POST', body: '{}' })).status, 405);
  });
});

describe('GET /metrics', () => {
  test('Prometheus text that passes `promtool check metrics`, with the gateway_ metrics, and counters that move', async () => {
    const before0 = parseProm((await metrics()).text);
    assert.equal((await chat(gw, { model: 'ds', messages: userMsg() })).status, 200);
    const s = await chatStream(gw, { model: 'ds', messages: userMsg(), stream: true });
    assert.equal(s.status, 200);
    assert.equal((await chat(gw, { model: 'chain', messages: userMsg() })).status, 200);
    assert.equal((await chat(gw, { model: 'ds-5xx', messages: userMsg() })).status, 502);

    const res = await metrics();
    assert.match(String(res.headers['content-type']), /text\/plain/);
    const dir = fs.mkdtempSync(path.join(gw.dir, 'm'));
    const file = path.join(dir, 'metrics.txt');
    fs.writeFileSync(file, res.text);
    const pc = await run('sh', ['-c', `promtool check metrics < '${file}'`]);
    assert.equal(pc.code, 0, `promtool check metrics failed:\n${pc.stdout}${pc.stderr}\n--- body ---\n${res.text.slice(0, 3000)}`);

    const after0 = parseProm(res.text);
    const names = new Set(after0.map((x) => x.name.replace(/_(bucket|sum|count|total|created)$/, '')));
    for (const n of ['gateway_requests', 'gateway_upstream_attempts', 'gateway_failovers', 'gateway_tokens', 'gateway_upstream_latency_seconds', 'gateway_ttft_seconds', 'gateway_in_flight_requests']) {
      assert.ok(names.has(n) || names.has(n.replace(/s$/, '')), `metric ${n}* is exported (have: ${[...names].filter((x) => x.startsWith('gateway_')).join(', ')})`);
    }
    const d = (name, pred) => sum(after0, name, pred) - sum(before0, name, pred);
    assert.ok(d('gateway_requests_total', (l) => l.model === 'ds' && l.status_class === '2xx') >= 2, 'requests_total{model="ds",status_class="2xx"} +2');
    assert.ok(d('gateway_requests_total', (l) => l.model === 'ds-5xx' && l.status_class === '5xx') >= 1, 'requests_total{status_class="5xx"} +1');
    assert.ok(d('gateway_requests_total', (l) => 'deployment' in l) >= 1, 'requests_total has a deployment label');
    assert.ok(d('gateway_failovers_total') >= 1, 'failovers_total incremented by the chain request');
    assert.ok(d('gateway_upstream_attempts_total') >= 5, 'upstream_attempts_total counts every attempt (>= 5)');
    assert.ok(d('gateway_tokens_total', (l) => /deepseek/.test(l.deployment ?? '')) > 0, 'tokens_total{deployment=~deepseek} increased');
    const kinds = new Set(after0.filter((x) => x.name === 'gateway_tokens_total').map((x) => x.labels.kind));
    assert.ok(kinds.size >= 2, `tokens_total has several kinds: ${[...kinds]}`);
    assert.ok(d('gateway_ttft_seconds_count') >= 1, 'ttft histogram observed the stream');
    assert.ok(d('gateway_upstream_latency_seconds_count') >= 1, 'upstream latency histogram observed');
    assert.equal(sum(after0, 'gateway_in_flight_requests'), sum(after0, 'gateway_in_flight_requests') | 0, 'in-flight is an integer gauge');
  });

  test('no secret in /metrics', async () => {
    const res = await metrics();
    assert.ok(!res.text.includes('sk-ds-admin') && !res.text.includes('zai.admin'));
  });
});

describe('routing of paths', () => {
  test('unknown path -> 404 in OpenAI error shape', async () => {
    const res = await request(gw.url + '/v1/nope');
    assert.equal(res.status, 404);
    assert.equal(typeof res.json?.error?.message, 'string', res.text);
  });
  test('wrong method on /v1/chat/completions -> 404/405 in OpenAI error shape', async () => {
    const res = await request(gw.url + '/v1/chat/completions');
    assert.ok([404, 405].includes(res.status), `status ${res.status}`);
    assert.equal(typeof res.json?.error?.message, 'string', res.text);
  });
});

describe('connections', () => {
  test('chunked request body (no content-length) is accepted', async () => {
    const res = await new Promise((resolve, reject) => {
      const req = http.request(gw.url + '/v1/chat/completions', { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
        let t = '';
        res.on('data', (d) => (t += d));
        res.on('end', () => resolve({ status: res.statusCode, t }));
      });
      req.setTimeout(5000, () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      const body = JSON.stringify({ model: 'ds', messages: userMsg() });
      req.write(body.slice(0, 10));
      setTimeout(() => req.end(body.slice(10)), 50);
    });
    assert.equal(res.status, 200, res.t);
  });

  test('Expect: 100-continue (curl does this for bodies > 1 KiB) works', async () => {
    const res = await new Promise((resolve, reject) => {
      const body = JSON.stringify({ model: 'ds', messages: userMsg('z'.repeat(4000)) });
      const req = http.request(gw.url + '/v1/chat/completions', { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), expect: '100-continue' } }, (res) => {
        let t = '';
        res.on('data', (d) => (t += d));
        res.on('end', () => resolve({ status: res.statusCode, t, gotContinue }));
      });
      let gotContinue = false;
      let sent = false;
      const send = () => {
        if (sent) return;
        sent = true;
        req.end(body);
      };
      req.on('continue', () => {
        gotContinue = true;
        send();
      });
      setTimeout(send, 1000); // like curl: send anyway after 1 s
      req.setTimeout(5000, () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
    assert.equal(res.status, 200, res.t);
  });

  test('HTTP/1.1 keep-alive: sequential requests (a stream among them) reuse one client connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const one = (extra = {}) =>
      new Promise((resolve, reject) => {
        const body = JSON.stringify({ model: 'ds', messages: userMsg(), ...extra });
        const req = http.request(gw.url + '/v1/chat/completions', { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
          let t = '';
          res.on('data', (d) => (t += d));
          res.on('end', () => resolve({ status: res.statusCode, reused: req.reusedSocket, connection: res.headers.connection, t }));
        });
        req.setTimeout(5000, () => req.destroy(new Error('timeout')));
        req.on('error', reject);
        req.end(body);
      });
    try {
      const a = await one();
      const b = await one({ stream: true });
      const c = await one();
      assert.equal(a.status, 200, a.t);
      assert.notEqual(a.connection, 'close', 'the gateway does not close a keep-alive connection after a response');
      assert.equal(b.status, 200);
      assert.match(b.t, /data: \[DONE\]/, 'the streamed response in the middle completed');
      assert.equal(c.status, 200);
      assert.ok(b.reused && c.reused, 'the second and third requests went over the same connection');
    } finally {
      agent.destroy();
    }
  });

  test('HTTP/1.1 pipelining: requests sent while the first is in flight are all answered, in order', async () => {
    // Request 1 takes 300 ms upstream (trickle); the bytes of requests 2 and 3 arrive while the
    // gateway watches the socket for a client disconnect: the watch must leave them in the socket.
    const reqFor = (model, id) => {
      const body = JSON.stringify({ model, messages: userMsg(), stream: model === 'ds' && id === 'p2' });
      return `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nX-Request-Id: ${id}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    };
    const { default: net } = await import('node:net');
    const text = await new Promise((resolve, reject) => {
      const sock = net.connect(Number(new URL(gw.url).port), '127.0.0.1');
      let t = '';
      const timer = setTimeout(() => { sock.destroy(); reject(new Error(`timeout; got: ${t.slice(0, 400)}`)); }, 5000);
      sock.on('data', (d) => {
        t += d;
        if ((t.match(/x-request-id: p\d/gi) ?? []).length === 3 && t.includes('0\r\n\r\n')) { clearTimeout(timer); sock.end(); resolve(t); }
      });
      sock.on('error', reject);
      sock.write(reqFor('slow', 'p1'));
      setTimeout(() => sock.write(reqFor('ds', 'p2') + reqFor('ds', 'p3')), 50);
    });
    const ids = [...text.matchAll(/x-request-id: (p\d)/gi)].map((m) => m[1]);
    assert.deepEqual(ids, ['p1', 'p2', 'p3'], text.slice(0, 600));
    assert.equal((text.match(/HTTP\/1\.1 200 OK\r\n/g) ?? []).length, 3, text.slice(0, 600));
    assert.match(text, /data: \[DONE\]/, 'the pipelined stream completed');
  });

  // A request whose whole body came with its header is parsed from the read buffer, without a
  // second read: chunked framing, what follows the body and framing errors must all hold there too.
  const rawExchange = async (bytes, done) => {
    const { default: net } = await import('node:net');
    return new Promise((resolve, reject) => {
      const sock = net.connect(Number(new URL(gw.url).port), '127.0.0.1');
      let t = '';
      const timer = setTimeout(() => { sock.destroy(); reject(new Error(`timeout; got: ${t.slice(0, 400)}`)); }, 5000);
      const finish = () => { clearTimeout(timer); sock.destroy(); resolve(t); };
      sock.on('data', (d) => { t += d; if (done(t)) finish(); });
      sock.on('close', finish);
      sock.on('error', () => {});
      sock.write(bytes);
    });
  };
  const chunkedPost = (id, chunks) =>
    `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nX-Request-Id: ${id}\r\nTransfer-Encoding: chunked\r\n\r\n` +
    chunks.map((c) => `${Buffer.byteLength(c).toString(16)}\r\n${c}\r\n`).join('') + '0\r\n\r\n';

  test('a chunked body and the next request in one write: both answered, in order', async () => {
    const body = JSON.stringify({ model: 'ds', messages: userMsg() });
    const second = JSON.stringify({ model: 'ds', messages: userMsg('again') });
    const bytes = chunkedPost('c1', [body.slice(0, 7), body.slice(7)]) +
      `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nX-Request-Id: c2\r\nContent-Length: ${Buffer.byteLength(second)}\r\n\r\n${second}`;
    const text = await rawExchange(bytes, (t) => (t.match(/"object":"chat.completion"/g) ?? []).length === 2);
    assert.deepEqual([...text.matchAll(/x-request-id: (c\d)/gi)].map((m) => m[1]), ['c1', 'c2'], text.slice(0, 600));
    assert.equal((text.match(/HTTP\/1\.1 200 OK\r\n/g) ?? []).length, 2, text.slice(0, 600));
  });

  test('a malformed chunk size in the same write as the header: 400, connection closed, nothing upstream', async () => {
    const before = f.deepseek.stats.requests;
    const bytes = `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`;
    const text = await rawExchange(bytes, () => false);  // until the gateway closes
    assert.match(text, /^HTTP\/1\.1 400 /, text.slice(0, 300));
    assert.match(text, /malformed HTTP request body/, text.slice(0, 600));
    assert.equal(f.deepseek.stats.requests, before, 'the upstream saw nothing');
  });

  test('upstream connections are pooled: 6 sequential requests open at most 2 upstream connections', async () => {
    const before0 = f.deepseek.stats.connections;
    for (let i = 0; i < 6; i++) assert.equal((await chat(gw, { model: 'ds', messages: userMsg() })).status, 200);
    const opened = f.deepseek.stats.connections - before0;
    assert.ok(opened <= 2, `upstream connections opened for 6 sequential requests: ${opened}`);
  });

  test('pooled upstream connection closed by the upstream while idle is not reused: requests keep succeeding', async () => {
    for (let i = 0; i < 4; i++) {
      const res = await chat(gw, { model: 'impatient', messages: userMsg() });
      assert.equal(res.status, 200, `request ${i + 1} after the upstream closed the idle connection: ${res.text}`);
      await sleep(250);
    }
    const s = await chatStream(gw, { model: 'impatient', messages: userMsg(), stream: true });
    assert.equal(s.status, 200);
    assert.ok(s.done);
  });

  test('50 concurrent streams all complete', async () => {
    const rs = await Promise.all(Array.from({ length: 50 }, () => chatStream(gw, { model: 'ds', messages: userMsg(), stream: true, stream_options: { include_usage: true } })));
    for (const r of rs) {
      assert.equal(r.status, 200);
      assert.ok(r.done, 'each stream ends with [DONE]');
      assert.equal(r.errors.length, 0);
      assert.deepEqual(r.chunks.at(-1).choices, []);
    }
  });
});

describe('response headers', () => {
  test('x-request-id is unique per request', async () => {
    const a = await chat(gw, { model: 'ds', messages: userMsg() });
    const b = await chat(gw, { model: 'ds', messages: userMsg() });
    assert.ok(a.headers['x-request-id'] && b.headers['x-request-id']);
    assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id']);
  });
});
