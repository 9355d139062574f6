// The response cache behind POST /v1/messages: a deterministic request (temperature 0) is answered
// from the cache the second time, non-stream byte for byte, streamed as the same Anthropic events
// (the cache keeps the upstream's OpenAI chunks; the replay goes through the same translation), with
// x-gateway-cache: hit, cost 0 and no upstream call. Tenants never share an entry.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startGateway, defaultConfig, request, chatStream } from './lib/gateway.mjs';
import { startScripted } from './lib/scripted_upstream.mjs';
import { assertEventGrammar } from './lib/anthropic.mjs';

const KEYS = { one: 'gwk_c1_' + crypto.randomBytes(10).toString('hex'), two: 'gwk_c2_' + crypto.randomBytes(10).toString('hex') };
const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');
let up, gw;

before(async () => {
  up = await startScripted({ name: 'main' });
  // A fresh answer per upstream call: a repeat of one proves the cache answered.
  let n = 0;
  up.answer = () => ({ reasoning: ['think ', `#${++n}`], text: ['answer ', `#${n}`], toolCalls: [{ id: `call_${n}`, name: 'bash', args: ['{"command":', `"echo ${n}"}`] }] });
  const c = defaultConfig();
  c.providers = { main: { type: 'openai_compatible', base_url: up.baseUrl } };
  c.models = { trans: ['main/m1'] };
  c.tenants = { one: { keys: [{ id: 'k1', sha256: sha(KEYS.one) }] }, two: { keys: [{ id: 'k2', sha256: sha(KEYS.two) }] } };
  c.cache = { enabled: true };
  gw = await startGateway({ config: c });
});

after(async () => {
  await up?.close();
  await gw?.stop();
});

const headers = (tenant) => ({ 'x-api-key': KEYS[tenant], 'anthropic-version': '2023-06-01' });
const body = (text, extra = {}) => ({
  model: 'trans', max_tokens: 64, temperature: 0, messages: [{ role: 'user', content: text }],
  tools: [{ name: 'bash', input_schema: { type: 'object', properties: { command: { type: 'string' } } } }], ...extra,
});
const post = (b, tenant = 'one') => request(gw.url + '/v1/messages', { method: 'POST', headers: headers(tenant), body: b });
const stream = (b, tenant = 'one') => chatStream(gw, { ...b, stream: true }, { path: '/v1/messages', headers: headers(tenant) });
const named = (s) => s.events.filter((e) => e.event).map((e) => ({ event: e.event, data: JSON.parse(e.data) }));

test('non-stream: the second identical request is a byte-identical hit, cost 0, no upstream call; another tenant misses', async () => {
  const b = body(`cache me ${crypto.randomUUID()}`);
  const a = await post(b);
  assert.equal(a.status, 200, a.text);
  assert.equal(a.headers['x-gateway-cache'], 'miss');
  const n0 = up.requests.length;
  const hit = await post(b);
  assert.equal(hit.status, 200, hit.text);
  assert.equal(hit.headers['x-gateway-cache'], 'hit');
  assert.equal(Number(hit.headers['x-gateway-cost-usd']), 0);
  assert.equal(hit.text, a.text);
  assert.equal(up.requests.length, n0);
  assert.deepEqual(hit.json.content.map((c) => c.type), ['thinking', 'text', 'tool_use']);
  const other = await post(b, 'two');
  assert.equal(other.headers['x-gateway-cache'], 'miss');
  assert.notEqual(other.json.content[1].text, a.json.content[1].text);
});

test('stream: the replay is the same Anthropic event sequence, ending with message_stop', async () => {
  const b = body(`stream me ${crypto.randomUUID()}`);
  const a = await stream(b);
  assert.equal(a.status, 200);
  assert.equal(a.headers['x-gateway-cache'], 'miss');
  const n0 = up.requests.length;
  const hit = await stream(b);
  assert.equal(hit.headers['x-gateway-cache'], 'hit');
  assert.equal(up.requests.length, n0, 'no upstream call');
  const first = named(a);
  const again = named(hit);
  assertEventGrammar(again);
  assert.deepEqual(again, first);
  assert.ok(hit.events.some((e) => e.comments.includes('x-gateway-cost-usd: 0.0')), 'cost comment 0 on the replay');
});

test('a cached non-stream answer also serves the streamed form of the request only if the cache says so (never a broken stream)', async () => {
  const b = body(`both ${crypto.randomUUID()}`);
  const whole = await post(b);
  assert.equal(whole.status, 200);
  const s = await stream(b);
  assert.equal(s.status, 200);
  // Whether or not the two forms share an entry, the stream must be a complete, valid one.
  assertEventGrammar(named(s));
});
