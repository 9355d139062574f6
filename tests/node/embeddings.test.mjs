// POST /v1/embeddings through the official openai SDK (pinned major 6), on the shipped default policy
// (its `embeddings` route) plus a catalog entry for a self-hosted OpenAI-compatible embedding model:
// Qwen (DashScope compatible-mode, 10 rows per request) and GLM (bigmodel, region cn) fakes speak the
// vendors' /embeddings wire format and refuse batches over their limit (lib/fake_embeddings.mjs).
// Checked: one string, a batch split and re-assembled in order, dimensions, base64 and float,
// errors, fail-over (a whole upstream down, and one failing sub-batch after others succeeded),
// chat and embedding models kept apart, the ledger and the budget, hostile bodies.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { startFake } from './lib/fake_upstream.mjs';
import { embeddingFor, tokensFor, EMBEDDING_LIMITS } from './lib/fake_embeddings.mjs';
import { startGateway, defaultConfig, tmpDir, request, run, sleep, userMsg, REPO } from './lib/gateway.mjs';

const SQLITE = '/usr/bin/sqlite3';
const KEYS = { emb: 'gwk_emb_' + crypto.randomBytes(12).toString('hex'), tight: 'gwk_tight_' + crypto.randomBytes(12).toString('hex') };
const QWEN_DEP = 'qwen@ap-southeast-1/text-embedding-v4';
const GLM_DEP = 'glm@cn/embedding-3';
const BOX_DEP = 'box@default/embed-small';
const PRICE = { [QWEN_DEP]: 0.07, [GLM_DEP]: 0.07, [BOX_DEP]: 0.5 };  // USD per 1M input tokens (catalog)

let qwen, glm, box, gw, ledgerPath, client;
const fakes = () => [qwen, glm, box];

before(async () => {
  qwen = await startFake({ dialect: 'qwen', key: 'sk-qwen-emb' });
  glm = await startFake({ dialect: 'glm', key: 'id.glmsecret' });
  box = await startFake({ dialect: 'openai' });
  const dir = tmpDir('gw-embeddings-');
  // The shipped policy, with the self-hosted model's facts as an operator states them.
  const policy = fs.readFileSync(path.join(REPO, 'policies', 'default.yaml'), 'utf8') +
    '\ncatalog:\n  - {ref: box/embed-small, context_window: 8192, max_output: 8192, capabilities: [embeddings],' +
    ' jurisdiction: self, price: {input: 0.5, output: 0}}\n';
  fs.writeFileSync(path.join(dir, 'policy.yaml'), policy);
  ledgerPath = path.join(dir, 'ledger.db');
  const c = defaultConfig();
  delete c.models;
  c.providers = {
    // Every region a route may reach points at a fake: no request may leave the machine.
    qwen: { api_key_env: 'DASHSCOPE_API_KEY', base_urls: { 'ap-southeast-1': qwen.baseUrl, 'cn-beijing': qwen.baseUrl, 'us-east-1': qwen.baseUrl } },
    glm: { api_key_env: 'ZAI_API_KEY', region: 'cn', base_urls: { cn: glm.baseUrl, intl: glm.baseUrl } },
    box: { type: 'openai_compatible', base_url: box.baseUrl },
  };
  c.policy = path.join(dir, 'policy.yaml');
  c.routing = { policy_poll_ms: 0 };
  const hash = (k) => crypto.createHash('sha256').update(k).digest('hex');
  c.tenants = {
    emb: { keys: [{ id: 'e1', sha256: hash(KEYS.emb) }], budget: { daily_usd: 1, hard: true } },
    tight: { keys: [{ id: 't1', sha256: hash(KEYS.tight) }], budget: { daily_usd: 0.000001, hard: true } },
  };
  c.state = { ledger_path: ledgerPath };
  gw = await startGateway({ config: c, env: { DASHSCOPE_API_KEY: 'sk-qwen-emb', ZAI_API_KEY: 'id.glmsecret' } });
  client = new OpenAI({ baseURL: gw.url + '/v1', apiKey: KEYS.emb, maxRetries: 0, timeout: 10000 });
});

after(async () => {
  for (const f of fakes()) await f?.close();
  await gw?.stop();
});

const fakeFor = (dep) => (dep.startsWith('qwen@') ? qwen : dep === GLM_DEP ? glm : box);
const embRequests = (f) => f.requests.filter((r) => r.path.endsWith('/embeddings'));
const allEmbRequests = () => fakes().reduce((n, f) => n + embRequests(f).length, 0);
function setScenario(s) {
  for (const f of fakes()) f.embeddings.scenario = s;
}
const auth = (k = KEYS.emb) => ({ authorization: `Bearer ${k}`, 'content-type': 'application/json' });
const post = (body, k) => request(gw.url + '/v1/embeddings', { method: 'POST', headers: auth(k), body: typeof body === 'string' ? body : JSON.stringify(body) });

async function ledgerRows(clientId) {
  const until = performance.now() + 10000;
  for (;;) {
    const q = await run(SQLITE, ['-json', ledgerPath, `SELECT * FROM spend WHERE client_request_id = '${clientId}' ORDER BY id`]);
    assert.equal(q.code, 0, q.stderr);
    const rows = q.stdout.trim() ? JSON.parse(q.stdout) : [];
    if (rows.length || performance.now() > until) return rows;
    await sleep(50);
  }
}

test('one string: the OpenAI list shape, the vector the upstream computed (SDK default = base64, decoded), usage and headers', async () => {
  const { data, response } = await client.embeddings.create({ model: 'auto', input: 'hello embeddings' }).withResponse();
  const dep = response.headers.get('x-gateway-deployment');
  assert.ok([QWEN_DEP, GLM_DEP, BOX_DEP].includes(dep), `an embedding deployment serves: ${dep}`);
  const up = embRequests(fakeFor(dep)).at(-1);
  assert.equal(up.body.encoding_format, 'float', 'the gateway reads floats upstream and encodes base64 itself');
  assert.equal(data.object, 'list');
  assert.equal(data.data.length, 1);
  assert.equal(data.data[0].object, 'embedding');
  assert.equal(data.data[0].index, 0);
  const dims = EMBEDDING_LIMITS[fakeFor(dep).dialect].defaultDims;
  assert.deepEqual(data.data[0].embedding, embeddingFor('hello embeddings', dims));
  assert.equal(data.usage.prompt_tokens, tokensFor('hello embeddings'));
  assert.equal(data.usage.total_tokens, tokensFor('hello embeddings'));
  assert.equal(response.headers.get('x-gateway-attempts'), '1');
  assert.ok(response.headers.get('x-request-id'));
  assert.ok(Number(response.headers.get('x-gateway-cost-usd')) > 0, 'priced');
});

test('a batch of 25 to Qwen (10 rows per request): three sub-requests, 25 vectors in input order with their index', async () => {
  const rows = Array.from({ length: 25 }, (_, i) => `row ${i} ` + 'x'.repeat(i));
  const before = embRequests(qwen).length;
  const { data, response } = await client.embeddings.create({ model: 'text-embedding-v4', input: rows, encoding_format: 'float' }).withResponse();
  assert.equal(response.headers.get('x-gateway-deployment'), QWEN_DEP);
  const sent = embRequests(qwen).slice(before);
  assert.deepEqual(sent.map((r) => r.body.input.length), [10, 10, 5]);
  assert.ok(sent.every((r) => r.headers.authorization === 'Bearer sk-qwen-emb'));
  assert.equal(data.data.length, 25);
  data.data.forEach((d, i) => {
    assert.equal(d.index, i);
    assert.deepEqual(d.embedding, embeddingFor(rows[i], 1024), `row ${i}`);
  });
  assert.equal(data.usage.prompt_tokens, rows.reduce((n, r) => n + tokensFor(r), 0), 'usage summed over the sub-requests');
  // The fake really refuses an unsplit batch, as DashScope does.
  const direct = await request(qwen.baseUrl + '/embeddings', { method: 'POST', headers: { authorization: 'Bearer sk-qwen-emb', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'text-embedding-v4', input: rows }) });
  assert.equal(direct.status, 400);
  assert.match(direct.text, /not be larger than 10/);
});

test('token arrays, dimensions and explicit base64 (little-endian float32)', async () => {
  const input = [[1, 2, 3], [40, 50]];
  const data = await client.embeddings.create({ model: 'text-embedding-v4', input, dimensions: 64, encoding_format: 'base64' });
  const up = embRequests(qwen).at(-1);
  assert.equal(up.body.dimensions, 64);
  assert.deepEqual(up.body.input, input);
  assert.equal(data.data.length, 2);
  data.data.forEach((d, i) => {
    assert.equal(typeof d.embedding, 'string', 'base64 asked: the string as the gateway sent it');
    const buf = Buffer.from(d.embedding, 'base64');
    assert.equal(buf.length, 64 * 4);
    const floats = Array.from({ length: 64 }, (_, k) => buf.readFloatLE(k * 4));
    assert.deepEqual(floats, embeddingFor(input[i], 64));
  });
  assert.equal(data.usage.prompt_tokens, 5);
  // dimensions the vendor refuses: its 400 reaches the client, not retried elsewhere.
  const bad = await post({ model: 'text-embedding-v4', input: 'x', dimensions: 100 });
  assert.equal(bad.status, 400, bad.text);
  assert.match(JSON.parse(bad.text).error.message, /dimensions/);
});

test('client errors: OpenAI-shaped 400s naming the member, nothing sent upstream', async () => {
  const before = allEmbRequests();
  const cases = [
    [{ model: 'auto' }, /'input' is required/],
    [{ model: 'auto', input: '' }, /empty string/],
    [{ model: 'auto', input: [] }, /empty array/],
    [{ model: 'auto', input: ['a', ''] }, /input\[1\].*empty string/],
    [{ model: 'auto', input: ['a', [1, 2]] }, /input\[1\]/],
    [{ model: 'auto', input: [[1, -2]] }, /token id/],
    [{ model: 'auto', input: [[]] }, /empty array of token ids/],
    [{ model: 'auto', input: { text: 'x' } }, /'input' must be/],
    [{ model: 'auto', input: 'x', encoding_format: 'int8' }, /encoding_format/],
    [{ model: 'auto', input: 'x', dimensions: 0 }, /dimensions/],
    [{ model: 'auto', input: 'x', dimensions: 1.5 }, /dimensions/],
    [{ model: 'auto', input: 'x', user: 7 }, /'user' must be a string/],
    [{ input: 'x' }, /'model' is required/],
    [{ model: 'auto', input: 'x', truncate: 'END' }, /'truncate' is not a member/],
    [{ model: 'auto', input: Array.from({ length: 2049 }, () => 'a') }, /at most 2048/],
  ];
  for (const [body, re] of cases) {
    const r = await post(body);
    assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${r.text}`);
    const e = JSON.parse(r.text).error;
    assert.match(e.message, re, JSON.stringify(body).slice(0, 80));
    assert.equal(typeof e.type, 'string');
  }
  // Over the token bound: 413.
  // (CJK text: a token per character, so 300,100 tokens fit the 1 MiB body bound.)
  const huge = await post({ model: 'auto', input: Array.from({ length: 100 }, () => '你'.repeat(3001)) });
  assert.equal(huge.status, 413, huge.text);
  assert.match(JSON.parse(huge.text).error.message, /at most 300000/);
  // Through the SDK: a typed BadRequestError.
  await assert.rejects(client.embeddings.create({ model: 'auto', input: '' }), (e) => e instanceof OpenAI.BadRequestError);
  assert.equal(allEmbRequests(), before, 'no refused request reached an upstream');
});

test('hostile bodies: repeated member names (also loose variants and nested) refused before anything is sent', async () => {
  const before = allEmbRequests();
  for (const raw of [
    '{"model":"auto","input":"a","input":"b"}',
    '{"model":"auto","model":"text-embedding-v4","input":"a"}',
    '{"model":"auto","input":"a","Dimensions":64}',
    '{"model":"auto","input":"a","user":"u","user":"v"}',
    '{"model":"auto","input":"a" ',
  ]) {
    const r = await post(raw);
    assert.equal(r.status, 400, `${raw}: ${r.text}`);
  }
  const dup = JSON.parse((await post('{"model":"auto","input":"a","input":"b"}')).text).error;
  assert.equal(dup.code, 'duplicate_member');
  assert.match(dup.message, /"input"/);
  assert.equal(allEmbRequests(), before);
  // The gateway keeps serving.
  const ok = await client.embeddings.create({ model: 'text-embedding-v4', input: 'still here' });
  assert.equal(ok.data.length, 1);
});

test('chat models never serve embeddings and embedding models never serve chat', async () => {
  const e = await post({ model: 'qwen-flash', input: 'x' });
  assert.notEqual(e.status, 200, e.text);
  assert.match(JSON.parse(e.text).error.message, /embedding/i);
  const c = await request(gw.url + '/v1/chat/completions', { method: 'POST', headers: auth(),
    body: JSON.stringify({ model: 'text-embedding-v4', messages: userMsg('hi') }) });
  assert.notEqual(c.status, 200, c.text);
  assert.match(JSON.parse(c.text).error.message, /embedding/i);
  // `auto` chat never lands on an embedding model (whatever serves it, or nothing).
  const a = await request(gw.url + '/v1/chat/completions', { method: 'POST', headers: auth(),
    body: JSON.stringify({ model: 'auto', messages: userMsg('hi') }) });
  assert.doesNotMatch(a.headers['x-gateway-deployment'] ?? '', /embedding/);
  // DeepSeek, Kimi, MiniMax have no embeddings API: not in the catalog as embedding models.
  const cat = await run(process.env.GATEWAY_BIN || path.join(REPO, 'build', 'gateway', 'gateway'), ['catalog', '--format', 'json']);
  assert.equal(cat.code, 0, cat.stderr);
  const deps = JSON.parse(cat.stdout).deployments ?? JSON.parse(cat.stdout);
  const emb = deps.filter((d) => (d.capabilities ?? []).includes('embeddings')).map((d) => d.id).sort();
  assert.deepEqual(emb, [GLM_DEP, 'qwen@cn-beijing/text-embedding-v4', QWEN_DEP].sort());
});

test('fail-over: a down upstream, and one failing sub-batch after others succeeded: the next candidate answers whole', async () => {
  // All down but one: whichever the plan tries first fails, the request still gets one full answer.
  const first = (await client.embeddings.create({ model: 'auto', input: 'probe' }).withResponse()).response.headers.get('x-gateway-deployment');
  fakeFor(first).embeddings.scenario = 'server-error';
  try {
    const { data, response } = await client.embeddings.create({ model: 'auto', input: ['a', 'b'] }).withResponse();
    assert.notEqual(fakeFor(response.headers.get('x-gateway-deployment')), fakeFor(first));
    assert.ok(Number(response.headers.get('x-gateway-attempts')) >= 2);
    assert.equal(data.data.length, 2);
  } finally {
    fakeFor(first).embeddings.scenario = 'ok';
  }
  // Qwen's second sub-batch fails (row 12 is marked): never a partial answer. text-embedding-v4 has
  // only Qwen candidates (Singapore, then Beijing: the same fake), so the client gets the error;
  // `auto` goes on to GLM, which serves all 15.
  qwen.embeddings.scenario = 'fail-marked';
  try {
    const rows = Array.from({ length: 15 }, (_, i) => (i === 12 ? 'FAIL here' : `r${i}`));
    const before = embRequests(qwen).length;
    const only = await post({ model: 'text-embedding-v4', input: rows });
    assert.ok(only.status >= 500, only.text);
    assert.equal(JSON.parse(only.text).data, undefined, 'no partial list');
    assert.equal(embRequests(qwen).length - before, 4, 'per attempt: the first sub-batch succeeded, the second failed');
    const viaAuto = await client.embeddings.create({ model: 'auto', input: rows, encoding_format: 'float' }).withResponse();
    const dep = viaAuto.response.headers.get('x-gateway-deployment');
    assert.ok(!dep.startsWith('qwen@'), `served whole by the next candidate (${dep})`);
    assert.equal(viaAuto.data.data.length, 15);
    viaAuto.data.data.forEach((d, i) => {
      assert.equal(d.index, i);
      assert.deepEqual(d.embedding, embeddingFor(rows[i], EMBEDDING_LIMITS[fakeFor(dep).dialect].defaultDims));
    });
  } finally {
    qwen.embeddings.scenario = 'ok';
  }
  // Garbage from every upstream: a clean 5xx, never a partial list.
  setScenario('garbage');
  try {
    const r = await post({ model: 'auto', input: 'x' });
    assert.ok(r.status >= 500, r.text);
    assert.ok(JSON.parse(r.text).error);
  } finally {
    setScenario('ok');
  }
});

test('ledger and budget: one row per attempt, input tokens, output 0, cost = price x tokens; estimated when usage is missing; hard budget refuses', async () => {
  assert.ok(fs.existsSync(SQLITE), 'sqlite3 CLI needed to read the ledger');
  const id = 'emb-ledger-' + crypto.randomBytes(4).toString('hex');
  const rows = ['ledger one', 'ledger two'];
  const r = await request(gw.url + '/v1/embeddings', { method: 'POST', headers: { ...auth(), 'x-request-id': id },
    body: JSON.stringify({ model: 'text-embedding-v4', input: rows }) });
  assert.equal(r.status, 200, r.text);
  const tokens = rows.reduce((n, x) => n + tokensFor(x), 0);
  const [row] = await ledgerRows(id);
  assert.ok(row, 'a ledger row');
  assert.equal(row.tenant, 'emb');
  assert.equal(row.deployment, QWEN_DEP);
  assert.equal(row.prompt_tokens, tokens);
  assert.equal(row.completion_tokens, 0);
  assert.equal(row.usage_source, 'provider');
  assert.equal(BigInt(row.cost_pico), BigInt(Math.round(tokens * PRICE[QWEN_DEP] * 1e6)), 'pico-USD = tokens x $0.07/M');
  assert.ok(Math.abs(Number(r.headers['x-gateway-cost-usd']) - tokens * PRICE[QWEN_DEP] / 1e6) < 1e-12, r.headers['x-gateway-cost-usd']);

  // The upstream omits usage: accounted from the gateway's estimate.
  qwen.embeddings.scenario = 'no-usage';
  try {
    const id2 = 'emb-est-' + crypto.randomBytes(4).toString('hex');
    const r2 = await request(gw.url + '/v1/embeddings', { method: 'POST', headers: { ...auth(), 'x-request-id': id2 },
      body: JSON.stringify({ model: 'text-embedding-v4', input: 'estimate me please' }) });
    assert.equal(r2.status, 200, r2.text);
    const [est] = await ledgerRows(id2);
    assert.equal(est.usage_source, 'estimated');
    assert.ok(est.prompt_tokens > 0);
    assert.equal(JSON.parse(r2.text).usage.prompt_tokens, est.prompt_tokens, 'the client is shown the accounted estimate');
    assert.equal(est.completion_tokens, 0);
  } finally {
    qwen.embeddings.scenario = 'ok';
  }

  // A tenant whose budget cannot hold the worst case is refused before anything is sent.
  const before = allEmbRequests();
  const t = await post({ model: 'text-embedding-v4', input: 'x'.repeat(4000) }, KEYS.tight);
  assert.equal(t.status, 429, t.text);
  assert.equal(JSON.parse(t.text).error.code, 'budget_exceeded');
  assert.equal(allEmbRequests(), before);
});
