// POST /v1/messages as a hostile client uses it: bodies readable two ways (repeated member names at
// any depth, loose spellings of the names the gateway reads), wrong types, a body far over the
// limit, and a client that leaves in the middle of a stream, whose attempt must still be accounted
// (one ledger row, the budget and the cost counter moved by the same figure). Every refusal must
// come in Anthropic's error shape, before any upstream call, and the gateway must keep serving.
//
// Setup: the priced catalog deployment pa/m (input 10, output 20 USD per 1M tokens) behind the
// scripted fake, tenant `acct` with a daily hard budget of $1 and a ledger read with the sqlite3 CLI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import { startGateway, defaultConfig, tmpDir, request, chatStream, run, sleep } from './lib/gateway.mjs';
import { pricedPolicy } from './lib/routing_upstream.mjs';
import { startScripted } from './lib/scripted_upstream.mjs';
import { scrape, metricValue } from './lib/prometheus.mjs';

const SQLITE = '/usr/bin/sqlite3';
const KEY = 'gwk_acct_' + crypto.randomBytes(12).toString('hex');
const IN_PICO = 10_000_000n; // $10 per 1M tokens
const OUT_PICO = 20_000_000n; // $20 per 1M tokens
const DAILY_USD = 1;
const MAX_BODY = 1048576;

let up, gw, ledgerPath;

before(async () => {
  assert.ok(fs.existsSync(SQLITE), 'sqlite3 CLI (Debian package sqlite3) needed to read the ledger');
  up = await startScripted({ name: 'pa' });
  const dir = tmpDir('gw-anthropic-hostile-');
  fs.writeFileSync(path.join(dir, 'policy.yaml'), pricedPolicy('anthropic-hostile'));
  ledgerPath = path.join(dir, 'ledger.db');
  const c = defaultConfig();
  delete c.models;
  c.server.max_body_bytes = MAX_BODY;
  // The slow stream below pauses a second between pieces.
  Object.assign(c.upstream, { stream_idle_timeout_ms: 5000, total_timeout_ms: 30000 });
  c.providers = { pa: { type: 'openai_compatible', base_url: up.baseUrl } };
  c.policy = path.join(dir, 'policy.yaml');
  c.routing = { policy_poll_ms: 0 };
  c.tenants = { acct: { keys: [{ id: 'a1', sha256: crypto.createHash('sha256').update(KEY).digest('hex') }], budget: { daily_usd: DAILY_USD, hard: true } } };
  c.state = { ledger_path: ledgerPath };
  gw = await startGateway({ config: c });
});

after(async () => {
  await up?.close();
  await gw?.stop();
});

const HEADERS = { 'x-api-key': KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' };
const post = (body, headers = {}) => request(gw.url + '/v1/messages', { method: 'POST', headers: { ...HEADERS, ...headers }, body });
const good = (extra = {}) => ({ model: 'priced', max_tokens: 200, messages: [{ role: 'user', content: 'count me' }], ...extra });

// Anthropic's error shape; returns the inner error.
function anthropicError(res, status, type = 'invalid_request_error') {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text?.slice(0, 400)}`);
  assert.match(String(res.headers['content-type']), /application\/json/);
  assert.equal(res.json?.type, 'error', res.text?.slice(0, 400));
  assert.equal(res.json.error?.type, type, res.text?.slice(0, 400));
  assert.equal(typeof res.json.error.message, 'string');
  assert.ok(res.json.error.message.length > 0);
  assert.ok(res.headers['x-request-id'], 'error responses carry x-request-id');
  return res.json.error;
}

async function assertStillServes() {
  up.queue.push({ text: ['still', ' here'] });
  const res = await post(good());
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json.content, [{ type: 'text', text: 'still here' }]);
}

test('credentials: none, wrong, two different keys: refused in Anthropic shape before the body, upstream untouched', async () => {
  const n0 = up.requests.length;
  anthropicError(await post(good(), { 'x-api-key': '' }), 401, 'authentication_error');
  anthropicError(await post(good(), { 'x-api-key': KEY + 'x' }), 401, 'authentication_error');
  anthropicError(await post(good(), { authorization: 'Bearer ' + KEY.slice(1) }), 400);
  // The same key in both headers is one credential.
  up.queue.push({ text: ['both'] });
  const res = await post(good(), { authorization: 'Bearer ' + KEY });
  assert.equal(res.status, 200, res.text);
  assert.equal(up.requests.length, n0 + 1);
});

// Bodies written by hand: JSON.stringify cannot repeat a key.
const MSG = '[{"role":"user","content":"hi"}]';
const DUPLICATES = [
  ['max_tokens at the top', `{"model":"priced","max_tokens":1,"messages":${MSG},"max_tokens":100000}`, /max_tokens/],
  ['model at the top', `{"model":"priced","model":"other","max_tokens":8,"messages":${MSG}}`, /model/],
  ['stream at the top', `{"model":"priced","max_tokens":8,"stream":false,"messages":${MSG},"stream":true}`, /stream/],
  ['messages twice', `{"model":"priced","max_tokens":8,"messages":${MSG},"messages":[{"role":"user","content":"other"}]}`, /messages/],
  ['role in a message', '{"model":"priced","max_tokens":8,"messages":[{"role":"user","role":"assistant","content":"hi"}]}', /role/],
  ['text in a content block', '{"model":"priced","max_tokens":8,"messages":[{"role":"user","content":[{"type":"text","text":"a","text":"b"}]}]}', /text/],
  ['type in a system block', '{"model":"priced","max_tokens":8,"system":[{"type":"text","type":"image","text":"s"}],"messages":' + MSG + '}', /type/],
  ['name in a tool', '{"model":"priced","max_tokens":8,"messages":' + MSG + ',"tools":[{"name":"a","name":"b","input_schema":{"type":"object"}}]}', /name/],
  ['a key inside a tool input_schema', '{"model":"priced","max_tokens":8,"messages":' + MSG + ',"tools":[{"name":"a","input_schema":{"type":"object","type":"string"}}]}', /type/],
  ['type in tool_choice', '{"model":"priced","max_tokens":8,"messages":' + MSG + ',"tools":[{"name":"a","input_schema":{"type":"object"}}],"tool_choice":{"type":"auto","type":"none"}}', /type/],
  ['budget_tokens in thinking', '{"model":"priced","max_tokens":4096,"messages":' + MSG + ',"thinking":{"type":"enabled","budget_tokens":1024,"budget_tokens":2048}}', /budget_tokens/],
  [
    'a key inside a tool_use input',
    '{"model":"priced","max_tokens":8,"tools":[{"name":"bash","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"run"},' +
      '{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"bash","input":{"command":"ls","command":"rm -rf /"}}]},' +
      '{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}]}',
    /command/,
  ],
];

for (const [what, body, names] of DUPLICATES) {
  test(`a repeated member (${what}) is a 400 that names it; nothing sent upstream`, async () => {
    const n0 = up.requests.length;
    const e = anthropicError(await post(body), 400);
    assert.match(e.message, names);
    assert.match(e.message, /duplicate/);
    assert.equal(up.requests.length, n0, 'upstream not called');
  });
}

test('loose spellings of the names the gateway reads are refused (MAX_TOKENS, maxTokens, Model)', async () => {
  for (const body of [
    `{"model":"priced","max_tokens":8,"MAX_TOKENS":100000,"messages":${MSG}}`,
    `{"model":"priced","max_tokens":8,"maxTokens":100000,"messages":${MSG}}`,
    `{"model":"priced","Model":"other","max_tokens":8,"messages":${MSG}}`,
  ]) {
    const n0 = up.requests.length;
    anthropicError(await post(body), 400);
    assert.equal(up.requests.length, n0, body);
  }
  await assertStillServes();
});

test('stream of the wrong type ("yes", 1, {}) is a 400 naming stream; null is the default (not streamed)', async () => {
  for (const stream of ['yes', 1, {}, 'true']) {
    const e = anthropicError(await post(good({ stream })), 400);
    assert.match(e.message, /stream/, JSON.stringify(stream));
  }
  up.queue.push({ text: ['plain'] });
  const res = await post(good({ stream: null }));
  assert.equal(res.status, 200, res.text);
  assert.match(String(res.headers['content-type']), /application\/json/);
  assert.equal(res.json.type, 'message');
});

test('a 5 MB body: 413 request_too_large in Anthropic shape, raw and through the SDK; the gateway keeps serving', async () => {
  const big = JSON.stringify(good({ messages: [{ role: 'user', content: 'x'.repeat(5 * 1024 * 1024) }] }));
  const n0 = up.requests.length;
  anthropicError(await post(big), 413, 'request_too_large');
  const client = new Anthropic({ baseURL: gw.url, apiKey: KEY, maxRetries: 0, timeout: 30000 });
  await assert.rejects(client.messages.create(JSON.parse(big)), (e) => {
    assert.ok(e instanceof Anthropic.APIError, `${e?.constructor?.name}: ${e}`);
    assert.equal(e.status, 413);
    assert.equal(e.error?.error?.type, 'request_too_large');
    return true;
  });
  assert.equal(up.requests.length, n0);
  await assertStillServes();
});

// ---- a client that leaves mid-stream --------------------------------------------------------

async function rows(where) {
  const q = await run(SQLITE, ['-json', ledgerPath, `SELECT * FROM spend WHERE ${where} ORDER BY id`], { timeoutMs: 10000 });
  assert.equal(q.code, 0, q.stderr);
  return q.stdout.trim() ? JSON.parse(q.stdout) : [];
}

async function rowsFor(clientId, timeoutMs = 10000) {
  const until = performance.now() + timeoutMs;
  let r = [];
  while (performance.now() < until) {
    r = await rows(`client_request_id = '${clientId}'`);
    if (r.length) break;
    await sleep(50);
  }
  return r;
}

// The budget left and the cost counter agree with the ledger (polled: they settle after the row).
async function assertBudgetMatchesLedger() {
  const until = performance.now() + 10000;
  let left, counted, spent;
  while (performance.now() < until) {
    spent = (await rows(`tenant = 'acct'`)).reduce((a, r) => a + BigInt(r.cost_pico), 0n);
    const { samples } = await scrape(gw);
    left = metricValue(samples, 'gateway_budget_remaining_usd', { tenant: 'acct', period: 'daily' });
    counted = metricValue(samples, 'gateway_cost_usd_total', { tenant: 'acct' }) ?? 0;
    if (Math.abs(left - (DAILY_USD - Number(spent) / 1e12)) < 1e-9 && Math.abs(counted - Number(spent) / 1e12) < 1e-9) return;
    await sleep(50);
  }
  assert.fail(`budget left ${left} / cost counter ${counted} do not match the ledger's ${Number(spent) / 1e12}`);
}

test('a client that leaves after 2 of 10 text deltas: upstream cancelled, one estimated ledger row, budget and counter agree', async () => {
  // A second between pieces: the client is long gone before a third could be relayed.
  up.queue.push({ text: Array(10).fill('abcd'), pieceDelayMs: 1000 });
  const n0 = up.requests.length;
  const id = `anth-leave-${crypto.randomBytes(4).toString('hex')}`;
  let deltas = 0;
  const names = [];
  const s = await chatStream(gw, good({ stream: true }), {
    path: '/v1/messages',
    headers: { ...HEADERS, 'x-request-id': id },
    onEvent: (ev) => {
      names.push(ev.event);
      return ev.event === 'content_block_delta' && ++deltas === 2 ? 'abort' : undefined;
    },
  });
  assert.equal(s.status, 200);
  assert.ok(s.aborted, 'the client left');
  assert.deepEqual(names, ['message_start', 'ping', 'content_block_start', 'content_block_delta', 'content_block_delta']);
  const left = performance.now();
  const upstream = up.requests[n0];
  const closedAt = await Promise.race([upstream.closed, sleep(5000).then(() => null)]);
  assert.ok(closedAt !== null, 'the upstream request was cancelled');
  const r = await rowsFor(id);
  assert.equal(r.length, 1, JSON.stringify(r));
  assert.equal(r[0].usage_source, 'estimated');
  assert.equal(r[0].status, 'error:cancelled', JSON.stringify(r[0]));
  // The 2 deltas the client read and at most the one in flight when it left (each 'abcd' is a token).
  assert.ok(r[0].completion_tokens >= 2 && r[0].completion_tokens <= 3, `completion ${r[0].completion_tokens}`);
  assert.ok(r[0].prompt_tokens > 0);
  assert.equal(BigInt(r[0].cost_pico), BigInt(r[0].prompt_tokens) * IN_PICO + BigInt(r[0].completion_tokens) * OUT_PICO);
  assert.ok(performance.now() - left < 10000);
  await assertBudgetMatchesLedger();
  await assertStillServes();
});

test('a whole answer is billed at the upstream usage: x-gateway-cost-usd and the ledger agree', async () => {
  up.queue.push({ text: ['ok'], usage: { prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200 } });
  const id = `anth-whole-${crypto.randomBytes(4).toString('hex')}`;
  const res = await post(good(), { 'x-request-id': id });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers['x-gateway-cost-usd'], '0.014');
  assert.equal(res.json.usage.input_tokens, 1000);
  assert.equal(res.json.usage.output_tokens, 200);
  const r = await rowsFor(id);
  assert.equal(r.length, 1);
  assert.equal(r[0].usage_source, 'provider');
  assert.equal(BigInt(r[0].cost_pico), 14_000_000_000n);
});

test('a stream that completes is billed at the upstream usage, and its cost comment precedes message_stop', async () => {
  up.queue.push({ text: ['ab', 'cd'], usage: { prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200 } });
  const id = `anth-full-${crypto.randomBytes(4).toString('hex')}`;
  const s = await chatStream(gw, good({ stream: true }), { path: '/v1/messages', headers: { ...HEADERS, 'x-request-id': id } });
  assert.equal(s.status, 200);
  const named = s.events.filter((e) => e.event);
  assert.equal(named.at(-1).event, 'message_stop');
  const costAt = s.events.findIndex((e) => e.comments.some((c) => c.startsWith('x-gateway-cost-usd: ')));
  assert.ok(costAt >= 0 && costAt < s.events.indexOf(named.at(-1)), 'the cost comment comes before message_stop');
  const cost = s.events[costAt].comments.find((c) => c.startsWith('x-gateway-cost-usd: ')).split(': ')[1];
  assert.equal(cost, '0.014');
  const r = await rowsFor(id);
  assert.equal(r.length, 1);
  assert.equal(r[0].usage_source, 'provider');
  assert.equal(BigInt(r[0].cost_pico), 14_000_000_000n);
  await assertBudgetMatchesLedger();
});
