// Isolation between clients, tenants and the operator's surfaces, against the real binary:
// authentication before the body (and the process-wide body budget), conflicting credentials,
// admin and /metrics access, pooled upstream connections that saw bytes they should not have,
// upstream error text that echoes a key, interim 1xx responses, and a port already in use.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { startGateway, defaultConfig, chat, chatStream, request, openAiError, userMsg, run, sleep, withTimeout, GATEWAY_BIN, tmpDir, toYaml } from './lib/gateway.mjs';
import { startRawUpstream } from './lib/raw_upstream.mjs';
import path from 'node:path';

const RAW_KEY = 'sk-rawUpstreamKey0123456789abcdefXYZ';

async function mintKey(tenant, id) {
  const r = await run(GATEWAY_BIN, ['keys', 'new', '--tenant', tenant, '--id', id], { timeoutMs: 10000 });
  assert.equal(r.code, 0, `gateway keys new failed: ${r.stderr}`);
  const lines = r.stdout.split('\n').filter((l) => l.trim());
  const key = lines[0].trim().split(/\s+/).pop();
  const m = /id:\s*"?([^,"}\s]+)"?\s*,\s*sha256:\s*"?((?:sha256:)?[0-9a-f]{64})"?/.exec(lines.slice(1).join('\n'));
  assert.ok(m, `a YAML entry line: ${r.stdout}`);
  return { key, entry: { id: m[1], sha256: m[2] } };
}

// One raw HTTP/1.1 exchange on a fresh socket: writes `head` (and `body`, if any), resolves with
// everything received until the server closes or `untilText` appears, bounded by timeoutMs.
function rawExchange(port, head, { body, untilText, timeoutMs = 10000, onData } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    const t = setTimeout(() => {
      sock.destroy();
      reject(new Error(`raw exchange: no answer within ${timeoutMs} ms; got ${JSON.stringify(got.slice(0, 300))}`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(t);
      sock.destroy();
      resolve(got);
    };
    sock.on('error', () => {}); // a reset after the answer is expected when the body is not read
    sock.on('close', done);
    sock.on('data', (d) => {
      got += d.toString('latin1');
      if (onData) onData(got, sock);
      if (untilText && got.includes(untilText)) done();
    });
    sock.write(head);
    if (body) sock.write(body);
  });
}

const statusOf = (text) => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
const bodyOf = (text) => JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));

function rssKiB(pid, field = 'VmRSS') {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

describe('authentication before the body, and the body budget', () => {
  let raw, gw, acme;
  before(async () => {
    raw = await startRawUpstream();
    acme = await mintKey('acme', 'k1');
    const c = defaultConfig();
    c.server.max_body_bytes = 5 * 1024 * 1024;
    c.server.max_buffered_body_bytes = 6 * 1024 * 1024;
    c.server.max_connections = 2000;
    c.server.access_log = 'off';
    c.providers = { raw: { type: 'openai_compatible', base_url: raw.baseUrl, api_key_env: 'RAW_KEY' } };
    c.models = { m: ['raw/ok'], h: ['raw/held'] };
    c.tenants = { acme: { keys: [acme.entry] } };
    gw = await startGateway({ config: c, env: { RAW_KEY }, launcher: ['prlimit', '--nofile=4096:4096', '--'] });
  });
  after(async () => {
    await gw?.stop();
    await raw?.close();
  });

  const head = (len, headers = '') =>
    `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${len}\r\n${headers}\r\n`;

  test('no key / a wrong key with a 4 MiB body announced: 401 at once, without the body being sent', async () => {
    const n0 = raw.requests.length;
    for (const auth of ['', 'Authorization: Bearer gwk_wrong\r\n', 'x-api-key: gwk_wrong\r\n']) {
      // Only the header is sent: an answer proves the gateway did not wait for (or buffer) the body.
      const text = await rawExchange(gw.port, head(4 * 1024 * 1024, auth), { untilText: '}}' });
      assert.equal(statusOf(text), 401, text);
      assert.match(text, /\r\nConnection: close\r\n/i, 'the unread body ends the connection');
      const e = bodyOf(text).error;
      assert.ok(['missing_api_key', 'invalid_api_key'].includes(e.code), JSON.stringify(e));
    }
    assert.equal(raw.requests.length, n0, 'no upstream call');
  });

  test('a client sending its small body with a wrong key still reads the whole 401 (lingering close, no reset)', async () => {
    for (let i = 0; i < 20; ++i) {
      const res = await chat(gw, { model: 'm', messages: userMsg('x'.repeat(20000)) }, { headers: { authorization: 'Bearer gwk_wrong' } });
      const e = openAiError(assert, res, 401);
      assert.equal(e.code, 'invalid_api_key');
    }
  });

  test('400 unauthenticated connections each sending a 4 MiB body: RSS stays bounded, then a keyed request is served', async () => {
    const pid = gw.proc.pid;
    const before = rssKiB(pid);
    const body = Buffer.alloc(4 * 1024 * 1024, 0x61);
    let peak = before;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, rssKiB(pid));
      } catch {}
    }, 20);
    const statuses = [];
    const conns = [];
    for (let i = 0; i < 400; ++i) {
      conns.push(
        new Promise((resolve) => {
          const sock = net.connect(gw.port, '127.0.0.1');
          let got = '';
          sock.on('data', (d) => (got += d.toString('latin1')));
          sock.on('error', () => {});
          sock.on('close', () => {
            statuses.push(statusOf(got));
            resolve();
          });
          sock.write(head(body.length, 'Authorization: Bearer gwk_wrong\r\n'));
          sock.write(body);
        }),
      );
    }
    await withTimeout(Promise.all(conns), 50000, '400 connections to be closed by the gateway');
    clearInterval(sampler);
    peak = Math.max(peak, rssKiB(pid, 'VmHWM'));
    const grewMiB = (peak - before) / 1024;
    console.log(`# RSS before ${(before / 1024).toFixed(1)} MiB, peak ${(peak / 1024).toFixed(1)} MiB (+${grewMiB.toFixed(1)} MiB) for 400 x 4 MiB unauthenticated bodies`);
    // Buffering the bodies would take 1600 MiB; the bound is generous for a busy machine.
    assert.ok(grewMiB < 200, `RSS grew by ${grewMiB.toFixed(1)} MiB`);
    const answered = statuses.filter((s) => s === 401).length;
    assert.ok(answered >= 1, `some connections read their 401 (${answered} of 400)`);
    assert.ok(statuses.every((s) => s === 401 || Number.isNaN(s)), `only 401s: ${[...new Set(statuses)]}`);
    const ok = await chat(gw, { model: 'm', messages: userMsg() }, { headers: { authorization: `Bearer ${acme.key}` } });
    assert.equal(ok.status, 200, ok.text);
  });

  test('bodies in flight are bounded across connections (server.max_buffered_body_bytes): 503 beyond, served again once released', async () => {
    const auth = `Authorization: Bearer ${acme.key}\r\n`;
    const pad = (n) => {
      const skeleton = JSON.stringify({ model: 'm', messages: userMsg('') });
      return JSON.stringify({ model: 'm', messages: userMsg('y'.repeat(n - skeleton.length)) });
    };
    const bigBody = pad(4 * 1024 * 1024);
    assert.equal(Buffer.byteLength(bigBody), 4 * 1024 * 1024);
    // A: announces 4 MiB and waits for 100 Continue, which the gateway sends once the body is admitted.
    let aSock;
    let continued;
    const gotContinue = new Promise((r) => (continued = r));
    const aDone = rawExchange(gw.port, head(bigBody.length, auth + 'Expect: 100-continue\r\n'), {
      untilText: '"finish_reason"',
      timeoutMs: 20000,
      onData: (text, sock) => {
        aSock = sock;
        if (text.startsWith('HTTP/1.1 100')) continued();
      },
    });
    await withTimeout(gotContinue, 10000, '100 Continue for body A');
    // B: another 4 MiB would exceed 6 MiB in flight.
    const b = await rawExchange(gw.port, head(bigBody.length, auth), { untilText: '}}' });
    assert.equal(statusOf(b), 503, b);
    assert.equal(bodyOf(b).error.code, 'too_many_buffered_bodies', b);
    // A small body still fits next to A.
    const small = await chat(gw, { model: 'm', messages: userMsg() }, { headers: { authorization: `Bearer ${acme.key}` } });
    assert.equal(small.status, 200, small.text);
    aSock.write(bigBody);
    const a = await aDone;
    assert.match(a, /HTTP\/1\.1 200/, a.slice(0, 300));
    // A's share is released: a second 4 MiB body is admitted.
    const c = await chat(gw, JSON.parse(bigBody), { headers: { authorization: `Bearer ${acme.key}` }, timeoutMs: 20000 });
    assert.equal(c.status, 200, c.text.slice(0, 300));
  });

  test('a stream committed to its deployment gives its body and its budget share back while it streams', async () => {
    const auth = `Authorization: Bearer ${acme.key}\r\n`;
    const body = (model, stream) => {
      const skeleton = JSON.stringify({ model, stream, messages: userMsg('') });
      return JSON.stringify({ model, stream, messages: userMsg('z'.repeat(4 * 1024 * 1024 - skeleton.length)) });
    };
    const a = body('h', true);
    // A: 4 MiB streamed from an upstream that holds after its first content event.
    const held = raw.nextEvent('held', 20000);
    let sawContent;
    const contentSeen = new Promise((r) => (sawContent = r));
    const aDone = rawExchange(gw.port, head(Buffer.byteLength(a), auth) + a, {
      untilText: '[DONE]',
      timeoutMs: 30000,
      onData: (text) => {
        if (/answer \d+/.test(text)) sawContent();
      },
    });
    await held;
    await withTimeout(contentSeen, 20000, "A's first content");
    // B: 4 MiB more than the 6 MiB budget allowed next to A's while A held its body; admitted now.
    const b = await chat(gw, JSON.parse(body('m', false)), { headers: { authorization: `Bearer ${acme.key}` }, timeoutMs: 20000 });
    assert.equal(b.status, 200, b.text.slice(0, 300));
    raw.release();
    const aText = await aDone;
    assert.match(aText, /HTTP\/1\.1 200/, aText.slice(0, 300));
    assert.match(aText, /"finish_reason":"stop"/, 'A ends normally after its body went back');
  });

  test('conflicting credentials: Bearer and x-api-key that differ -> 400 saying so; the same key in both -> 200', async () => {
    const n0 = raw.requests.length;
    const res = await chat(gw, { model: 'm', messages: userMsg() }, { headers: { authorization: `Bearer ${acme.key}`, 'x-api-key': 'gwk_other' } });
    const e = openAiError(assert, res, 400);
    assert.equal(e.code, 'conflicting_credentials');
    assert.match(e.message, /x-api-key/);
    assert.match(e.message, /Authorization/);
    const rev = await chat(gw, { model: 'm', messages: userMsg() }, { headers: { authorization: 'Bearer gwk_other', 'x-api-key': acme.key } });
    assert.equal(openAiError(assert, rev, 400).code, 'conflicting_credentials');
    assert.equal(raw.requests.length, n0, 'no upstream call');
    const same = await chat(gw, { model: 'm', messages: userMsg() }, { headers: { authorization: `Bearer ${acme.key}`, 'x-api-key': acme.key } });
    assert.equal(same.status, 200, same.text);
  });
});

describe('admin endpoints and /metrics', () => {
  let raw;
  let acme;
  before(async () => {
    raw = await startRawUpstream();
    acme = await mintKey('acme', 'k1');
  });
  after(async () => raw?.close());

  function config(server = {}) {
    const c = defaultConfig();
    Object.assign(c.server, server);
    c.providers = { raw: { type: 'openai_compatible', base_url: raw.baseUrl, api_key_env: 'RAW_KEY' } };
    c.models = { m: ['raw/ok'] };
    c.tenants = { acme: { keys: [acme.entry], budget: { daily_usd: 5 } } };
    return c;
  }

  test('no admin key, non-loopback listener: /admin/* is 403 and the start-up log says so', async () => {
    const gw = await startGateway({ config: config({ listen: '0.0.0.0:0' }), env: { RAW_KEY } });
    try {
      assert.match(gw.stderr, /admin endpoints are disabled \(403\) on the non-loopback listener 0\.0\.0\.0/);
      const base = `http://127.0.0.1:${gw.port}`;
      for (const [method, p] of [['GET', '/admin/spend'], ['POST', '/admin/reload'], ['POST', '/admin/explain'], ['GET', '/ui'], ['GET', '/ui/app.js']]) {
        const res = await request(base + p, { method, body: method === 'POST' ? { model: 'm', messages: userMsg() } : undefined });
        const e = openAiError(assert, res, 403);
        assert.equal(e.code, 'admin_disabled', `${p}: ${JSON.stringify(e)}`);
      }
      const ok = await chat({ url: base }, { model: 'm', messages: userMsg() }, { headers: { authorization: `Bearer ${acme.key}` } });
      assert.equal(ok.status, 200, 'the API itself is served');
    } finally {
      await gw.stop();
    }
  });

  test('no admin key, loopback listener: admin answers there, and the log says loopback only', async () => {
    const gw = await startGateway({ config: config(), env: { RAW_KEY } });
    try {
      assert.match(gw.stderr, /admin endpoints answer without a key, on this loopback listener only/);
      const res = await request(gw.url + '/admin/spend');
      assert.notEqual(res.status, 403);
      assert.notEqual(res.status, 401);
      const page = await request(gw.url + '/ui');
      assert.equal(page.status, 200, 'the status page follows the admin rule');
      assert.equal(page.headers['www-authenticate'], undefined);
    } finally {
      await gw.stop();
    }
  });

  test('admin key set: /admin/* needs it, on any listener; the body of a refused POST is not read', async () => {
    const gw = await startGateway({ config: config({ listen: '0.0.0.0:0', admin_key_env: 'GW_ADMIN' }), env: { RAW_KEY, GW_ADMIN: 'adm-key-0123456789' } });
    try {
      const text = await rawExchange(gw.port, 'POST /admin/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n\r\n', { untilText: '}}' });
      assert.equal(statusOf(text), 401, text);
      assert.equal(bodyOf(text).error.code, 'invalid_admin_key');
      const res = await request(`http://127.0.0.1:${gw.port}/admin/spend`, { headers: { authorization: 'Bearer adm-key-0123456789' } });
      assert.notEqual(res.status, 401);
      assert.notEqual(res.status, 403);
    } finally {
      await gw.stop();
    }
  });

  test('server.metrics_key_env: /metrics needs the key; an unset variable refuses to start', async () => {
    const gw = await startGateway({ config: config({ metrics_key_env: 'GW_METRICS' }), env: { RAW_KEY, GW_METRICS: 'met-key-0123456789' } });
    try {
      assert.match(gw.stderr, /\/metrics needs the metrics key \(GW_METRICS\)/);
      const none = await request(gw.url + '/metrics');
      assert.equal(openAiError(assert, none, 401).code, 'invalid_metrics_key');
      const wrong = await request(gw.url + '/metrics', { headers: { authorization: 'Bearer nope' } });
      assert.equal(wrong.status, 401);
      const ok = await request(gw.url + '/metrics', { headers: { authorization: 'Bearer met-key-0123456789' } });
      assert.equal(ok.status, 200);
      assert.match(ok.text, /gateway_requests_total|gateway_open_connections/);
    } finally {
      await gw.stop();
    }
    const dir = tmpDir();
    const cfg = path.join(dir, 'g.yaml');
    fs.writeFileSync(cfg, toYaml(config({ metrics_key_env: 'GW_METRICS_UNSET' })));
    const r = await run(GATEWAY_BIN, ['serve', '--config', cfg], { timeoutMs: 15000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /GW_METRICS_UNSET.*not set/);
  });

  test('server.metrics_tenant_labels: false -> no tenant name in /metrics; true (default) -> there', async () => {
    for (const labels of [true, false]) {
      const gw = await startGateway({ config: config({ metrics_tenant_labels: labels }), env: { RAW_KEY } });
      try {
        const ok = await chat(gw, { model: 'm', messages: userMsg() }, { headers: { authorization: `Bearer ${acme.key}` } });
        assert.equal(ok.status, 200);
        const m = await request(gw.url + '/metrics');
        assert.equal(m.status, 200);
        if (labels) assert.match(m.text, /tenant="acme"/, 'per-tenant budget series by default');
        else assert.ok(!m.text.includes('acme'), 'no tenant name anywhere in /metrics');
      } finally {
        await gw.stop();
      }
    }
  });
});

describe('pooled upstream connections, 1xx, error text', () => {
  let raw, gw, a, b;
  before(async () => {
    raw = await startRawUpstream();
    a = await mintKey('tenant-a', 'ka');
    b = await mintKey('tenant-b', 'kb');
    const c = defaultConfig();
    c.server.workers = 1; // one pool: every request could reuse the connection the last one left
    c.providers = { raw: { type: 'openai_compatible', base_url: raw.baseUrl, api_key_env: 'RAW_KEY' } };
    c.models = {
      ok: ['raw/ok'],
      unsolicited: ['raw/unsolicited'],
      extra: ['raw/extra-bytes'],
      cont: ['raw/continue'],
      hints: ['raw/early-hints'],
      echo: ['raw/echo-key'],
      refused: ['dead/ok'],
    };
    c.providers.dead = { type: 'openai_compatible', base_url: 'http://127.0.0.1:1/v1' };
    c.tenants = { 'tenant-a': { keys: [a.entry] }, 'tenant-b': { keys: [b.entry] } };
    gw = await startGateway({ config: c, env: { RAW_KEY } });
  });
  after(async () => {
    await gw?.stop();
    await raw?.close();
  });
  const as = (k) => ({ headers: { authorization: `Bearer ${k.key}` } });
  const content = (res) => res.json?.choices?.[0]?.message?.content;

  test('an unsolicited response on an idle pooled connection is not the next request\'s answer (another tenant)', async () => {
    for (const stream of [false, true]) {
      const unsolicited = raw.nextEvent('unsolicited');
      const first = await chat(gw, { model: 'unsolicited', messages: userMsg() }, as(a));
      assert.equal(first.status, 200, first.text);
      const n1 = raw.requests.at(-1);
      assert.equal(content(first), `answer ${n1.n}`);
      await unsolicited; // the poison sits in the idle connection's socket now
      if (stream) {
        const s = await chatStream(gw, { model: 'ok', messages: userMsg(), stream: true }, as(b));
        assert.equal(s.status, 200);
        const text = s.chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join('');
        assert.equal(text, `answer ${raw.requests.at(-1).n}`);
        assert.ok(!s.raw.includes('POISON'));
      } else {
        const second = await chat(gw, { model: 'ok', messages: userMsg() }, as(b));
        assert.equal(second.status, 200, second.text);
        assert.equal(content(second), `answer ${raw.requests.at(-1).n}`, 'the genuine answer, not the unsolicited one');
      }
      assert.notEqual(raw.requests.at(-1).connId, n1.connId, 'the connection that received unsolicited bytes was not reused');
    }
  });

  test('bytes after the declared end of a response: the connection is closed, not reused', async () => {
    for (const stream of [false, true]) {
      const first = stream
        ? await chatStream(gw, { model: 'extra', messages: userMsg(), stream: true }, as(a))
        : await chat(gw, { model: 'extra', messages: userMsg() }, as(a));
      assert.equal(first.status, 200);
      const n1 = raw.requests.at(-1);
      const second = await chat(gw, { model: 'ok', messages: userMsg() }, as(b));
      assert.equal(content(second), `answer ${raw.requests.at(-1).n}`, second.text);
      assert.notEqual(raw.requests.at(-1).connId, n1.connId, 'a fresh connection');
    }
  });

  test('a clean keep-alive connection is still reused (the checks do not disable pooling)', async () => {
    await chat(gw, { model: 'ok', messages: userMsg() }, as(a));
    const c1 = raw.requests.at(-1).connId;
    await chat(gw, { model: 'ok', messages: userMsg() }, as(a));
    assert.equal(raw.requests.at(-1).connId, c1);
  });

  test('a stream whose whole body arrived by [DONE] leaves its connection to the next request', async () => {
    const s = await chatStream(gw, { model: 'ok', messages: userMsg(), stream: true }, as(a));
    assert.equal(s.status, 200);
    assert.ok(s.done, 'the stream ends with [DONE]');
    const c1 = raw.requests.at(-1).connId;
    const next = await chat(gw, { model: 'ok', messages: userMsg() }, as(a));
    assert.equal(next.status, 200, next.text);
    assert.equal(raw.requests.at(-1).connId, c1, 'the stream\'s connection was pooled, not closed');
  });

  test('100 Continue and 103 Early Hints before the final response are skipped, stream and non-stream', async () => {
    for (const model of ['cont', 'hints']) {
      const res = await chat(gw, { model, messages: userMsg() }, as(a));
      assert.equal(res.status, 200, `${model}: ${res.text}`);
      assert.equal(content(res), `answer ${raw.requests.at(-1).n}`);
      const s = await chatStream(gw, { model, messages: userMsg(), stream: true }, as(a));
      assert.equal(s.status, 200, model);
      assert.equal(s.chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join(''), `answer ${raw.requests.at(-1).n}`);
      assert.ok(s.done, `${model}: the stream ends with [DONE]`);
    }
  });

  test('an upstream that echoes the key: neither the client nor the log sees it; the text is capped', async () => {
    const res = await chat(gw, { model: 'echo', messages: userMsg() }, as(a));
    assert.ok(res.status >= 400, res.text);
    const e = res.json.error;
    assert.ok(!res.text.includes(RAW_KEY), `key in the client error: ${res.text}`);
    assert.ok(!res.text.includes(RAW_KEY.slice(3)), 'not even without its prefix');
    assert.match(e.message, /Incorrect API key provided/, 'the vendor\'s words survive');
    assert.match(e.message, /\[redacted\]/);
    assert.ok(e.message.length < 600, `message capped (${e.message.length} chars)`);
    await sleep(100);
    assert.ok(!gw.stderr.includes(RAW_KEY) && !gw.stdout.includes(RAW_KEY), 'key absent from the logs');
    assert.ok(!gw.stderr.includes(RAW_KEY.slice(3)));
  });

  test('client errors do not name the upstream host:port; the access log does', async () => {
    const res = await chat(gw, { model: 'refused', messages: userMsg() }, as(a));
    assert.ok(res.status >= 500, res.text);
    assert.ok(!res.text.includes('127.0.0.1'), `host in the client error: ${res.text}`);
    assert.ok(!/:1\b/.test(res.json.error.message), res.text);
    const rid = res.headers['x-request-id'];
    await sleep(100);
    const line = gw.stderr.split('\n').find((l) => l.includes(rid) && l.includes('"status"'));
    assert.ok(line, 'an access log line');
    assert.match(line, /127\.0\.0\.1:1/, 'the operator sees where it failed');
  });
});

describe('a port already in use', () => {
  test('a second `gateway serve` on the same port exits non-zero naming the address; the first keeps serving', async () => {
    const c = defaultConfig();
    delete c.models;
    delete c.providers;
    const first = await startGateway({ config: c });
    try {
      const dir = tmpDir();
      const cfg = path.join(dir, 'second.yaml');
      const c2 = defaultConfig();
      delete c2.models;
      delete c2.providers;
      c2.server.listen = `127.0.0.1:${first.port}`;
      fs.writeFileSync(cfg, toYaml(c2));
      const r = await run(GATEWAY_BIN, ['serve', '--config', cfg], { timeoutMs: 15000 });
      assert.notEqual(r.code, 0, `second gateway exit code: ${r.code}\n${r.stderr}`);
      assert.ok(r.stderr.includes(`127.0.0.1:${first.port}`), r.stderr);
      assert.match(r.stderr, /already in use/i);
      assert.ok(!r.stdout.includes('listening on'), r.stdout);
      const h = await request(first.url + '/healthz');
      assert.equal(h.status, 200);
    } finally {
      await first.stop();
    }
  });

  test('a port held by another (non-gateway) process is a start-up error too', async () => {
    const holder = net.createServer(() => {});
    await new Promise((r) => holder.listen(0, '127.0.0.1', r));
    try {
      const dir = tmpDir();
      const cfg = path.join(dir, 'g.yaml');
      const c = defaultConfig();
      delete c.models;
      delete c.providers;
      c.server.listen = `127.0.0.1:${holder.address().port}`;
      fs.writeFileSync(cfg, toYaml(c));
      const r = await run(GATEWAY_BIN, ['serve', '--config', cfg], { timeoutMs: 15000 });
      assert.notEqual(r.code, 0);
      assert.ok(r.stderr.includes(`127.0.0.1:${holder.address().port}`), r.stderr);
    } finally {
      holder.close();
    }
  });
});
