// End to end with only the embedded engine (provider "local"): the OpenAI SDK unchanged, streaming
// and not, several clients at once, and generation cancelled when a client disconnects.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import OpenAI from 'openai';
import { startGateway, defaultConfig, tmpDir, run, REPO, sleep, userMsg } from './lib/gateway.mjs';

const TOOL = process.env.GGUF_TOOL || path.join(REPO, 'build', 'local_backend', 'gguf-make-test-model');
let gw;
let client;
let dir;

async function metric(name) {
  const r = await fetch(gw.url + '/metrics');
  const text = await r.text();
  const line = text.split('\n').find((l) => l.startsWith(name + '{') || l.startsWith(name + ' '));
  return line ? Number(line.split(' ').pop()) : NaN;
}

// Generation ends at max_tokens ("length", exactly max tokens) or earlier at an end-of-turn
// token ("stop", fewer tokens, possibly none: a random-weight model may end its turn at once).
function assertFinish(finish, tokens, max) {
  assert.ok(Number.isInteger(tokens) && tokens >= 0 && tokens <= max, `completion_tokens ${tokens} within 0..${max}`);
  if (finish === 'length') assert.equal(tokens, max);
  else assert.equal(finish, 'stop', `finish_reason ${finish}`);
}

before(async () => {
  assert.ok(fs.existsSync(TOOL), `model tool missing at ${TOOL}: build the gguf-make-test-model target`);
  dir = tmpDir('gw-local-');
  // Big enough that a long generation takes seconds (so cancellation is observable), small enough to load fast.
  const model = path.join(dir, 'slow.gguf');
  const r = await run(TOOL, ['--embd', '1024', '--layers', '4', '--experts', '16', '--experts-used', '4',
    '--expert-ff', '512', '--heads', '8', '--kv-heads', '2', '--head-dim', '128', '--context', '8192', '--out', model]);
  assert.equal(r.code, 0, r.stderr);
  const c = defaultConfig();
  c.providers = {};
  c.local = { model_path: model, model_name: 'tiny-moe', threads: 2, max_queue: 16, max_context: 8192 };
  c.models = { local: ['local/tiny-moe'], 'remote-first': ['deepseek/deepseek-flash', 'local/tiny-moe'] };
  gw = await startGateway({ config: c, env: {} });
  client = new OpenAI({ baseURL: gw.url + '/v1', apiKey: 'unused', maxRetries: 0, timeout: 60000 });
});

after(async () => {
  await gw?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('non-streaming completion through the SDK', async () => {
  const { data, response } = await client.chat.completions
    .create({ model: 'local', messages: userMsg('Hello there'), max_tokens: 12, temperature: 0 })
    .withResponse();
  assert.equal(response.headers.get('x-gateway-deployment'), 'local@self/tiny-moe');
  assert.equal(data.object, 'chat.completion');
  assert.equal(typeof data.choices[0].message.content, 'string');
  // Random weights may end the turn early (end-of-turn token); usage must match either way.
  assertFinish(data.choices[0].finish_reason, data.usage.completion_tokens, 12);
  assert.ok(data.usage.prompt_tokens > 3, `prompt tokens counted: ${data.usage.prompt_tokens}`);
});

test('greedy decoding is deterministic', async () => {
  const a = await client.chat.completions.create({ model: 'local', messages: userMsg('abc'), max_tokens: 10, temperature: 0 });
  const b = await client.chat.completions.create({ model: 'local', messages: userMsg('abc'), max_tokens: 10, temperature: 0 });
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
});

test('streaming through the SDK, usage in the final chunk', async () => {
  const stream = await client.chat.completions.create({
    model: 'local', messages: userMsg('Stream please'), max_tokens: 16, stream: true,
    stream_options: { include_usage: true }, seed: 42,
  });
  let text = '';
  let usage = null;
  let finish = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    const ch = chunk.choices[0];
    if (ch?.delta?.content) text += ch.delta.content;
    if (ch?.finish_reason) finish = ch.finish_reason;
  }
  assert.ok(chunks >= 3, `role, finish and usage chunks at least (${chunks})`);
  assertFinish(finish, usage?.completion_tokens, 16);
  assert.ok(usage, 'usage chunk arrived');
  assert.equal(typeof text, 'string'); // what a random model says, and how much, is not asserted
});

test('a provider without a key is skipped and the local engine answers', async () => {
  const { response } = await client.chat.completions
    .create({ model: 'remote-first', messages: userMsg('x'), max_tokens: 2 })
    .withResponse();
  assert.equal(response.headers.get('x-gateway-deployment'), 'local@self/tiny-moe');
});

test('several clients at once all complete', async () => {
  const jobs = [];
  for (let i = 0; i < 6; i++) {
    jobs.push(client.chat.completions.create({ model: 'local', messages: userMsg('client ' + i), max_tokens: 24, seed: i }));
  }
  const results = await Promise.all(jobs);
  for (const r of results) assertFinish(r.choices[0].finish_reason, r.usage.completion_tokens, 24);
});

test('client disconnect mid-stream cancels the generation', async () => {
  // 6000 tokens take many seconds on this model. Greedy decoding of a fixed prompt on a fixed model
  // is deterministic, so whether this generation runs long is not left to chance: the access log
  // line below says whether it was cancelled (499) or had ended on its own (200).
  const accessLines = () => gw.stderr.split('\n').filter((l) => l.includes('"model":"local"') && l.includes('"stream":true'));
  const before = accessLines().length;
  const body = JSON.stringify({ model: 'local', messages: userMsg('long'), max_tokens: 6000, stream: true, temperature: 0 });
  await new Promise((resolve, reject) => {
    const req = http.request(gw.url + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      res.on('data', (d) => {
        if (String(d).includes('"content":"') && !String(d).includes('"content":""')) {
          req.destroy(); // after the first content chunk
          resolve();
        }
      });
      res.on('end', () => reject(new Error('the stream ended before any content chunk')));
      res.on('error', () => {});
    });
    req.on('error', () => {});
    req.setTimeout(20000, () => reject(new Error('no data within 20 s')));
    req.end(body);
  });
  let depth = NaN;
  for (let i = 0; i < 100; i++) {
    depth = await metric('gateway_local_queue_depth');
    if (depth === 0) break;
    await sleep(50);
  }
  assert.equal(depth, 0, 'the engine dropped the generation within 5 s of the client leaving');
  let line;
  for (let i = 0; i < 40 && !line; i++) {
    line = accessLines()[before];
    if (!line) await sleep(50);
  }
  assert.ok(line, 'the request was logged');
  assert.match(line, /"status":499/, `cancelled, not finished on its own: ${line}`);
  // And it still serves.
  const r = await client.chat.completions.create({ model: 'local', messages: userMsg('still there?'), max_tokens: 3 });
  assertFinish(r.choices[0].finish_reason, r.usage.completion_tokens, 3);
});

test('a full local queue is back-pressure, not a fault: the engine is not cooled down or cut off', async () => {
  // max_queue 1: one long generation fills it; the requests refused meanwhile must not count
  // against the engine (the static router cools a deployment down after 3 consecutive faults).
  const c = defaultConfig();
  c.providers = {};
  c.local = { model_path: path.join(dir, 'slow.gguf'), model_name: 'tiny-moe', threads: 2, max_queue: 1, max_context: 8192 };
  c.models = { local: ['local/tiny-moe'] };
  const g = await startGateway({ config: c, env: {} });
  try {
    const long = new AbortController();
    const held = fetch(g.url + '/v1/chat/completions', {
      method: 'POST', headers: { 'content-type': 'application/json' }, signal: long.signal,
      body: JSON.stringify({ model: 'local', messages: userMsg('long'), max_tokens: 6000, stream: true, temperature: 0 }),
    }).then(async (r) => {
      const reader = r.body.getReader();
      for (;;) if ((await reader.read()).done) break;
    }).catch(() => {});
    let depth = 0;
    for (let i = 0; i < 100 && depth < 1; i++) {
      const m = await (await fetch(g.url + '/metrics')).text();
      depth = Number(m.split('\n').find((l) => l.startsWith('gateway_local_queue_depth'))?.split(' ').pop() ?? 0);
      if (depth < 1) await sleep(50);
    }
    assert.equal(depth, 1, 'the long generation holds the only queue slot');
    for (let i = 0; i < 5; i++) {
      const r = await fetch(g.url + '/v1/chat/completions', {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'local', messages: userMsg('x'), max_tokens: 2 }),
      });
      const j = await r.json();
      assert.equal(r.status, 503, JSON.stringify(j));
      assert.match(j.error.message, /queue is full/);
    }
    long.abort();
    await held;
    for (let i = 0; i < 100 && depth > 0; i++) {
      const m = await (await fetch(g.url + '/metrics')).text();
      depth = Number(m.split('\n').find((l) => l.startsWith('gateway_local_queue_depth'))?.split(' ').pop() ?? 0);
      if (depth > 0) await sleep(50);
    }
    assert.equal(depth, 0, 'the long generation was cancelled');
    const r = await fetch(g.url + '/v1/chat/completions', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'local', messages: userMsg('y'), max_tokens: 2 }),
    });
    assert.equal(r.status, 200, `served at once, not cooling down: ${await r.text()}`);
  } finally {
    await g.stop();
  }
});

test('local.kv_type picks the KV cache type; the start-up log states it with its memory per token', async () => {
  // Same model as above (head_dim 128, 4 layers, 2 KV heads): K+V per token and layer is
  // 2 * 2 * 128 elements; f16 2 bytes each = 4 KiB per token, q8_0 34/32 bytes = 2.1 KiB, f32 8 KiB.
  const expected = { f16: '4.0 KiB', q8_0: '2.1 KiB', f32: '8.0 KiB' };
  for (const [kv, perToken] of Object.entries(expected)) {
    const c = defaultConfig();
    c.providers = {};
    c.local = { model_path: path.join(dir, 'slow.gguf'), model_name: 'tiny-moe', threads: 1, max_queue: 2, max_context: 1024, kv_type: kv };
    c.models = { local: ['local/tiny-moe'] };
    const g = await startGateway({ config: c, env: {} });
    try {
      const line = g.stderr.split('\n').find((l) => l.includes('provider local: enabled'));
      assert.ok(line, g.stderr);
      assert.match(line, new RegExp(`KV cache ${kv}: ${perToken.replace('.', '\\.')} per token`), line);
      const r = await fetch(g.url + '/v1/chat/completions', {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'local', messages: userMsg('kv'), max_tokens: 2 }),
      });
      assert.equal(r.status, 200, `${kv}: ${await r.text()}`);
    } finally {
      await g.stop();
    }
  }
  const bad = defaultConfig();
  bad.providers = {};
  bad.local = { model_path: path.join(dir, 'slow.gguf'), kv_type: 'q4_0' };
  const cfgPath = path.join(dir, 'bad-kv.yaml');
  const { toYaml, GATEWAY_BIN } = await import('./lib/gateway.mjs');
  fs.writeFileSync(cfgPath, toYaml(bad));
  const chk = await run(GATEWAY_BIN, ['check', cfgPath]);
  assert.notEqual(chk.code, 0, 'an unknown kv_type is refused');
  assert.match(chk.stdout + chk.stderr, /local\.kv_type must be f16 \(the default\), q8_0 or f32, not 'q4_0'/);
});

test('local.prefix_cache_mb: a repeated system prompt is reused, reported as cached_tokens, and changes nothing', async () => {
  // The default (small, fast) test model, one gateway with the default cache (256 MiB) and one
  // with it off. A system prompt of several 64-token blocks, then two different user turns.
  const model = path.join(dir, 'small-prefix.gguf');
  const made = await run(TOOL, ['--out', model]);
  assert.equal(made.code, 0, made.stderr);
  const start = (extra) => {
    const c = defaultConfig();
    c.providers = {};
    c.local = { model_path: model, model_name: 'small', threads: 2, max_queue: 4, max_context: 4096, ...extra };
    c.models = { local: ['local/small'] };
    c.upstream.total_timeout_ms = 60000;
    return startGateway({ config: c, env: {} });
  };
  const system = Array.from({ length: 60 }, (_, i) => `rule ${i}: answer briefly.`).join(' ');
  const ask = async (g, user) => {
    const r = await fetch(g.url + '/v1/chat/completions', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'local', temperature: 0, max_tokens: 6,
        messages: [{ role: 'system', content: system }, { role: 'user', content: user }] }),
    });
    const j = await r.json();
    assert.equal(r.status, 200, JSON.stringify(j));
    return j;
  };
  const turns = async (g) => [await ask(g, 'first question'), await ask(g, 'second question')];
  const on = await start({});
  const off = await start({ prefix_cache_mb: 0 });
  try {
    assert.match(on.stderr, /prefix cache 256 MiB/);
    assert.match(off.stderr, /prefix cache 0 MiB/);
    const [on1, on2] = await turns(on);
    const [off1, off2] = await turns(off);
    assert.ok(on1.usage.prompt_tokens > 300, `prompt tokens ${on1.usage.prompt_tokens}`);
    assert.equal(on1.usage.prompt_tokens_details.cached_tokens, 0);
    const cached = on2.usage.prompt_tokens_details.cached_tokens;
    assert.ok(cached >= 64 && cached < on2.usage.prompt_tokens, `cached ${cached} of ${on2.usage.prompt_tokens}`);
    assert.equal(off1.usage.prompt_tokens_details.cached_tokens, 0);
    assert.equal(off2.usage.prompt_tokens_details.cached_tokens, 0);
    assert.equal(on2.choices[0].message.content, off2.choices[0].message.content, 'same greedy answer, cache on or off');
    assert.equal(on2.usage.prompt_tokens, off2.usage.prompt_tokens);
    const metrics = await (await fetch(on.url + '/metrics')).text();
    const series = metrics.split('\n').find((l) => l.startsWith('gateway_tokens_total{') && l.includes('kind="cached_input"'));
    assert.ok(series && Number(series.split(' ').pop()) === cached, `cached input tokens counted: ${series}`);
  } finally {
    await on.stop();
    await off.stop();
  }
  const { toYaml, GATEWAY_BIN } = await import('./lib/gateway.mjs');
  for (const bad of [-1, 'lots', 2000000]) {
    const b = defaultConfig();
    b.providers = {};
    b.local = { model_path: model, prefix_cache_mb: bad };
    const cfgPath = path.join(dir, 'bad-prefix.yaml');
    fs.writeFileSync(cfgPath, toYaml(b));
    const chk = await run(GATEWAY_BIN, ['check', cfgPath]);
    assert.notEqual(chk.code, 0, `prefix_cache_mb ${bad} is refused`);
    assert.match(chk.stdout + chk.stderr, /local\.prefix_cache_mb/);
  }
});

test('a long prompt (tokenized off the I/O thread) is served and counted exactly', async () => {
  // The default (small, fast) test model: prefilling a few thousand tokens takes well under a second.
  const model = path.join(dir, 'small.gguf');
  const made = await run(TOOL, ['--out', model]);
  assert.equal(made.code, 0, made.stderr);
  const c = defaultConfig();
  c.providers = {};
  c.local = { model_path: model, model_name: 'small', threads: 2, max_queue: 4, max_context: 8192 };
  c.models = { local: ['local/small'] };
  c.upstream.total_timeout_ms = 60000;
  const g = await startGateway({ config: c, env: {} });
  try {
    const ask = async (content) => {
      const r = await fetch(g.url + '/v1/chat/completions', {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'local', messages: userMsg(content), max_tokens: 2, temperature: 0 }),
      });
      const j = await r.json();
      assert.equal(r.status, 200, JSON.stringify(j));
      return j.usage;
    };
    const long = 'abcdefghij '.repeat(300);  // 3.3 KB: above the provider's offload threshold (2 KiB)
    const a = await ask(long), b = await ask(long + 'x');
    assert.ok(a.prompt_tokens > 300, JSON.stringify(a));
    assert.ok(b.prompt_tokens >= a.prompt_tokens, `${b.prompt_tokens} vs ${a.prompt_tokens}`);
    // A short prompt (tokenized inline) is counted by the same template.
    const short = await ask('short');
    assert.ok(short.prompt_tokens > 0 && short.prompt_tokens < 50, JSON.stringify(short));
  } finally {
    await g.stop();
  }
});
