// Stored Responses API responses through the pinned `openai` SDK: retrieve, input_items, delete,
// previous_response_id (a function tool round trip across two requests), tenant isolation (another
// tenant's id is a 404 exactly like an unknown one, and cannot be continued), a restart with the
// SQLite store, store: false, and in Redis mode a conversation continued on another replica.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import OpenAI from 'openai';
import { startGateway, defaultConfig, tmpDir, toYaml, request } from './lib/gateway.mjs';
import { startScripted } from './lib/scripted_upstream.mjs';
import { startRedis } from './lib/redis.mjs';

const keyOf = (name) => `gwk_${name}_` + crypto.randomBytes(12).toString('hex');
const A = keyOf('acme'), B = keyOf('beta');
const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');
const sdk = (g, key) => new OpenAI({ baseURL: g.url + '/v1', apiKey: key, maxRetries: 0, timeout: 60000 });
const TOOLS = [{ type: 'function', name: 'get_weather', description: 'Weather now', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: false }];

function config(upstream, state) {
  const c = defaultConfig();
  c.providers = { main: { type: 'openai_compatible', base_url: upstream.baseUrl } };
  c.models = { trans: ['main/m1'] };
  c.tenants = { acme: { keys: [{ id: 'a1', sha256: sha(A) }] }, beta: { keys: [{ id: 'b1', sha256: sha(B) }] } };
  if (state) c.state = state;
  return c;
}

async function startWith(upstream, state, dir, name) {
  const file = path.join(dir, name + '.yaml');
  fs.writeFileSync(file, toYaml(config(upstream, state)));
  return startGateway({ configPath: file });
}

describe('SQLite store (beside the ledger)', () => {
  let up, gw, dir, ledger;
  before(async () => {
    dir = tmpDir('gw-responses-store-');
    ledger = path.join(dir, 'spend.db');
    up = await startScripted({ name: 'main' });
    gw = await startWith(up, { ledger_path: ledger }, dir, 'gw');
  });
  after(async () => {
    if (process.env.DEBUG_GW) console.log(gw?.stderr);
    await gw?.stop();
    await up?.close();
  });

  test('retrieve, input_items and delete; the store file sits beside the ledger', async () => {
    const acme = sdk(gw, A);
    up.queue.push({ text: ['Hello there.'] });
    const r = await acme.responses.create({ model: 'trans', input: [{ role: 'user', content: 'Say hello' }], metadata: { run: '7' } });
    assert.equal(r.store, true);
    assert.ok(fs.existsSync(path.join(dir, 'spend-responses.db')));
    const got = await acme.responses.retrieve(r.id);
    assert.deepEqual(got, r);
    const items = [];
    for await (const it of acme.responses.inputItems.list(r.id)) items.push(it);
    assert.equal(items.length, 1);
    assert.equal(items[0].type, 'message');
    assert.equal(items[0].role, 'user');
    await acme.responses.delete(r.id);
    await assert.rejects(acme.responses.retrieve(r.id), (e) => e instanceof OpenAI.NotFoundError);
    await assert.rejects(acme.responses.delete(r.id), (e) => e instanceof OpenAI.NotFoundError);
  });

  test('previous_response_id continues a function tool round trip', async () => {
    const acme = sdk(gw, A);
    up.queue.push({ toolCalls: [{ id: 'call_w1', name: 'get_weather', args: ['{"city":"Paris"}'] }] });
    const first = await acme.responses.create({ model: 'trans', instructions: 'Be brief.', input: 'Weather in Paris?', tools: TOOLS });
    const call = first.output.find((o) => o.type === 'function_call');
    assert.ok(call, JSON.stringify(first.output));
    up.queue.push({ text: ['It is 21C.'] });
    const second = await acme.responses.create({
      model: 'trans',
      tools: TOOLS,
      previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: '21C' }],
    });
    assert.equal(second.output_text, 'It is 21C.');
    assert.equal(second.previous_response_id, first.id);
    // The upstream saw the whole conversation: user, the assistant's tool call, the tool's answer.
    // Instructions are not carried over from the earlier response (as OpenAI documents).
    const sent = up.requests.at(-1).body.messages;
    assert.deepEqual(sent.map((m) => m.role), ['user', 'assistant', 'tool']);
    assert.equal(sent[0].content, 'Weather in Paris?');
    assert.equal(sent[1].tool_calls[0].id, 'call_w1');
    assert.equal(sent[2].content, '21C');
    // A third turn continues the chain of two.
    up.queue.push({ text: ['Yes.'] });
    const third = await acme.responses.create({ model: 'trans', previous_response_id: second.id, input: 'Sure?' });
    assert.equal(third.output_text, 'Yes.');
    assert.deepEqual(up.requests.at(-1).body.messages.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant', 'user']);
    // input_items lists only that request's own input.
    const items = [];
    for await (const it of acme.responses.inputItems.list(second.id)) items.push(it);
    assert.deepEqual(items.map((i) => i.type), ['function_call_output']);
  });

  test('streamed responses are stored before response.completed reaches the client', async () => {
    const acme = sdk(gw, A);
    up.queue.push({ text: ['Stream', 'ed.'] });
    const stream = await acme.responses.create({ model: 'trans', input: 'Stream it', stream: true });
    let id;
    for await (const ev of stream) {
      if (ev.type === 'response.completed') {
        id = ev.response.id;
        const got = await acme.responses.retrieve(id);  // while the stream is still open
        assert.equal(got.output_text, 'Streamed.');
        assert.equal(got.status, 'completed');
      }
    }
    assert.ok(id);
  });

  test('another tenant: the same 404 as an unknown id, and it cannot continue the conversation', async () => {
    const acme = sdk(gw, A), beta = sdk(gw, B);
    up.queue.push({ text: ['Secret plan.'] });
    const r = await acme.responses.create({ model: 'trans', input: 'Plan' });
    const foreign = await request(gw.url + '/v1/responses/' + r.id, { headers: { authorization: 'Bearer ' + B } });
    const unknown = await request(gw.url + '/v1/responses/resp_0123456789abcdef0123456789abcdef', { headers: { authorization: 'Bearer ' + B } });
    assert.equal(foreign.status, 404);
    assert.equal(unknown.status, 404);
    assert.equal(foreign.text.replace(r.id, 'ID'), unknown.text.replace('resp_0123456789abcdef0123456789abcdef', 'ID'));
    await assert.rejects(beta.responses.inputItems.list(r.id), (e) => e instanceof OpenAI.NotFoundError);
    await assert.rejects(beta.responses.delete(r.id), (e) => e instanceof OpenAI.NotFoundError);
    const sentBefore = up.requests.length;
    await assert.rejects(beta.responses.create({ model: 'trans', previous_response_id: r.id, input: 'Tell me' }), (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, String(e));
      assert.equal(e.code, 'previous_response_not_found');
      assert.equal(e.param, 'previous_response_id');
      return true;
    });
    assert.equal(up.requests.length, sentBefore, 'nothing went upstream');
    assert.equal((await acme.responses.retrieve(r.id)).output_text, 'Secret plan.', 'the owner still reads it');
  });

  test('store: false keeps nothing; cancel is refused (no background mode)', async () => {
    const acme = sdk(gw, A);
    up.queue.push({ text: ['Ephemeral.'] });
    const r = await acme.responses.create({ model: 'trans', input: 'x', store: false });
    assert.equal(r.store, false);
    await assert.rejects(acme.responses.retrieve(r.id), (e) => e instanceof OpenAI.NotFoundError);
    await assert.rejects(acme.responses.create({ model: 'trans', previous_response_id: r.id, input: 'y' }),
      (e) => e instanceof OpenAI.BadRequestError && e.code === 'previous_response_not_found');
    await assert.rejects(acme.responses.cancel(r.id), (e) => e instanceof OpenAI.BadRequestError);
  });

  test('stored responses survive a restart', async () => {
    const acme = sdk(gw, A);
    up.queue.push({ text: ['Durable.'] });
    const r = await acme.responses.create({ model: 'trans', input: 'Keep me' });
    await gw.stop();
    gw = await startWith(up, { ledger_path: ledger }, dir, 'gw');
    assert.equal((await sdk(gw, A).responses.retrieve(r.id)).output_text, 'Durable.');
  });
});

describe('Redis store: any replica continues any conversation', () => {
  let up, redis, a, b, dir;
  before(async () => {
    dir = tmpDir('gw-responses-redis-');
    up = await startScripted({ name: 'main' });
    redis = await startRedis();
    const state = { mode: 'redis', redis: { host: '127.0.0.1', port: redis.port, timeout_ms: 500 }, responses: { max_age_days: 1 } };
    a = await startWith(up, state, dir, 'a');
    b = await startWith(up, state, dir, 'b');
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await redis?.stop();
    await up?.close();
  });

  test('created on A, retrieved and continued on B; the key expires with max_age', async () => {
    up.queue.push({ text: ['First answer.'] });
    const first = await sdk(a, A).responses.create({ model: 'trans', input: 'Start' });
    assert.equal((await sdk(b, A).responses.retrieve(first.id)).output_text, 'First answer.');
    up.queue.push({ text: ['Second answer.'] });
    const second = await sdk(b, A).responses.create({ model: 'trans', previous_response_id: first.id, input: 'Go on' });
    assert.equal(second.output_text, 'Second answer.');
    assert.deepEqual(up.requests.at(-1).body.messages.map((m) => m.role), ['user', 'assistant', 'user']);
    await assert.rejects(sdk(b, B).responses.retrieve(first.id), (e) => e instanceof OpenAI.NotFoundError);
    const keys = (await redis.cli('KEYS', 'gw:resp:*')).stdout.split('\n').filter(Boolean);
    assert.equal(keys.length, 2);
    for (const k of keys) {
      const ttl = Number((await redis.cli('TTL', k)).stdout);
      assert.ok(ttl > 0 && ttl <= 86400, `${k} TTL ${ttl}`);
    }
  });

  test('Redis down: a retrieve is a 503 naming Redis, never "not found"', async () => {
    up.queue.push({ text: ['Before the outage.'] });
    const r = await sdk(a, A).responses.create({ model: 'trans', input: 'x' });
    await redis.stop();
    try {
      const res = await request(b.url + '/v1/responses/' + r.id, { headers: { authorization: 'Bearer ' + A } });
      assert.equal(res.status, 503, res.text);
      assert.match(res.json.error.code, /redis_unavailable|response_store_unavailable/);
    } finally {
      await redis.restart();
    }
  });
});
