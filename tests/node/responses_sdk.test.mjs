// The official OpenAI SDK (`openai`, pinned in package.json) used unchanged against POST /v1/responses,
// translated onto the chat pipeline: an openai_compatible deployment (the scripted fake of
// lib/scripted_upstream.mjs, so each answer can be checked against what the fake sent and what it
// was sent), the local engine (random weights: only shapes are checked), and a priced deployment
// with a spend ledger (sqlite) to check that answers, vanished clients and cut streams are charged.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import OpenAI from 'openai';
import { startGateway, defaultConfig, tmpDir, toYaml, run, request, sleep, REPO } from './lib/gateway.mjs';
import { startScripted } from './lib/scripted_upstream.mjs';
import { startUpstream, pricedPolicy } from './lib/routing_upstream.mjs';

const TOOL = process.env.GGUF_TOOL || path.join(REPO, 'build', 'local_backend', 'gguf-make-test-model');
const SQLITE = '/usr/bin/sqlite3';
const KEY = 'gwk_dev_' + crypto.randomBytes(12).toString('hex');
const ACCT = 'gwk_acct_' + crypto.randomBytes(12).toString('hex');
const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');
const USAGE = { prompt_tokens: 33, completion_tokens: 7, total_tokens: 40, prompt_tokens_details: { cached_tokens: 16 } };
const PRICED_USAGE = { prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200 };
const PROVIDER_COST = 14_000_000_000n; // 1000 * $10/M + 200 * $20/M, in pico-dollars

let gw, up, priced, pricedGw, ledgerPath;
const sdk = (g, key = KEY) => new OpenAI({ baseURL: g.url + '/v1', apiKey: key, maxRetries: 0, timeout: 60000 });

before(async () => {
  assert.ok(fs.existsSync(TOOL), `model tool missing at ${TOOL}: build the gguf-make-test-model target`);
  assert.ok(fs.existsSync(SQLITE), 'sqlite3 CLI (Debian package sqlite3) needed to read the ledger');
  const dir = tmpDir('gw-responses-sdk-');
  const model = path.join(dir, 'tiny.gguf');
  const made = await run(TOOL, ['--seed', '5', '--out', model]);
  assert.equal(made.code, 0, made.stderr);
  up = await startScripted({ name: 'main' });
  const c = defaultConfig();
  c.providers = { main: { type: 'openai_compatible', base_url: up.baseUrl } };
  c.local = { model_path: model, model_name: 'tiny-moe', threads: 2, max_queue: 16, max_context: 4096 };
  c.models = { trans: ['main/m1'], local: ['local/tiny-moe'] };
  c.tenants = { dev: { keys: [{ id: 'd1', sha256: sha(KEY) }] } };
  gw = await startGateway({ config: c });

  priced = await startUpstream({ name: 'pa', usage: PRICED_USAGE });
  fs.writeFileSync(path.join(dir, 'policy.yaml'), pricedPolicy('responses-sdk'));
  ledgerPath = path.join(dir, 'ledger.db');
  const p = defaultConfig();
  delete p.models;
  p.providers = { pa: { type: 'openai_compatible', base_url: priced.baseUrl } };
  p.policy = path.join(dir, 'policy.yaml');
  p.routing = { policy_poll_ms: 0 };
  p.tenants = { acct: { keys: [{ id: 'a1', sha256: sha(ACCT) }] } };
  p.state = { ledger_path: ledgerPath };
  const cfgPath = path.join(dir, 'priced.yaml');
  fs.writeFileSync(cfgPath, toYaml(p));
  pricedGw = await startGateway({ configPath: cfgPath });
});

after(async () => {
  await gw?.stop();
  await pricedGw?.stop();
  await up?.close();
  await priced?.close();
});

// Every event of a stream, in order; asserts the sequence numbers count from 0.
async function collect(stream) {
  const events = [];
  for await (const ev of stream) events.push(ev);
  events.forEach((ev, i) => assert.equal(ev.sequence_number, i, `event ${i} (${ev.type})`));
  return events;
}

describe('a chat deployment behind /v1/responses (translated)', () => {
  let client;
  before(() => (client = sdk(gw)));

  test('responses.create: text, echoed members, usage as the upstream reported it', async () => {
    up.queue.push({ text: ['Hello', ' world'], usage: USAGE });
    const { data: r, response } = await client.responses
      .create({ model: 'trans', input: 'Hi', instructions: 'Be kind.', metadata: { ticket: 'T-9' }, max_output_tokens: 64, temperature: 0.5 })
      .withResponse();
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-gateway-deployment'), 'main@default/m1');
    assert.match(r.id, /^resp_[0-9a-f]{32}$/);
    assert.equal(r.object, 'response');
    assert.equal(r.status, 'completed');
    assert.equal(r.model, 'trans');
    assert.equal(r.output_text, 'Hello world');
    assert.equal(r.output.length, 1);
    assert.equal(r.output[0].type, 'message');
    assert.deepEqual(r.output[0].content, [{ type: 'output_text', annotations: [], text: 'Hello world' }]);
    assert.deepEqual(r.metadata, { ticket: 'T-9' });
    assert.equal(r.instructions, 'Be kind.');
    assert.equal(r.max_output_tokens, 64);
    assert.equal(r.temperature, 0.5);
    assert.deepEqual(r.usage, {
      input_tokens: 33,
      input_tokens_details: { cached_tokens: 16 },
      output_tokens: 7,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 40,
    });
    const sent = up.requests.at(-1).body;
    assert.deepEqual(sent.messages, [{ role: 'system', content: 'Be kind.' }, { role: 'user', content: 'Hi' }]);
    assert.equal(sent.max_tokens, 64);
    assert.equal(sent.model, 'm1');
  });

  test('stream: true, deltas assembled; events in order with usage in response.completed', async () => {
    up.queue.push({ text: ['Str', 'eam', 'ed'], usage: USAGE });
    const events = await collect(await client.responses.create({ model: 'trans', input: 'Stream', stream: true }));
    const types = events.map((e) => e.type);
    assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed']);
    const text = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
    assert.equal(text, 'Streamed');
    const done = events.at(-1).response;
    assert.equal(done.status, 'completed');
    assert.equal(done.output[0].content[0].text, 'Streamed');
    assert.equal(done.usage.input_tokens, 33);
    assert.equal(done.usage.output_tokens, 7);
    assert.equal(events[0].response.id, done.id);
    assert.equal(up.requests.at(-1).body.stream_options.include_usage, true);
  });

  test('responses.stream helper: reasoning then text, finalResponse()', async () => {
    up.queue.push({ reasoning: ['Think', ' twice.'], text: ['42'], usage: { ...USAGE, completion_tokens_details: { reasoning_tokens: 5 } } });
    const stream = client.responses.stream({ model: 'trans', input: 'Answer?', reasoning: { effort: 'high', summary: 'auto' } });
    const deltas = [];
    stream.on('response.reasoning_summary_text.delta', (e) => deltas.push(e.delta));
    const final = await stream.finalResponse();
    assert.equal(final.status, 'completed');
    assert.deepEqual(final.output.map((o) => o.type), ['reasoning', 'message']);
    assert.deepEqual(final.output[0].summary, [{ type: 'summary_text', text: 'Think twice.' }]);
    assert.equal(deltas.join(''), 'Think twice.');
    assert.equal(final.output_text, '42');
    assert.equal(final.usage.output_tokens_details.reasoning_tokens, 5);
    assert.deepEqual(final.reasoning, { effort: 'high', summary: 'auto' });
    assert.deepEqual(up.requests.at(-1).body.thinking, { type: 'enabled' });
  });

  test('a function tool round trip: function_call out, function_call_output back in `input`', async () => {
    const tools = [{ type: 'function', name: 'get_weather', description: 'Weather now', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: false }];
    up.queue.push({ toolCalls: [{ id: 'call_w1', name: 'get_weather', args: ['{"city"', ':"Paris"}'] }] });
    const first = await client.responses.create({ model: 'trans', input: 'Weather in Paris?', tools });
    const call = first.output.find((o) => o.type === 'function_call');
    assert.ok(call, JSON.stringify(first.output));
    assert.equal(call.call_id, 'call_w1');
    assert.equal(call.name, 'get_weather');
    assert.equal(call.arguments, '{"city":"Paris"}');
    assert.equal(call.status, 'completed');
    assert.equal(up.requests.at(-1).body.tools[0].function.name, 'get_weather');

    up.queue.push({ text: ['It is 21C.'] });
    const second = await client.responses.create({
      model: 'trans',
      tools,
      input: [{ role: 'user', content: 'Weather in Paris?' }, ...first.output, { type: 'function_call_output', call_id: 'call_w1', output: '21C' }],
    });
    assert.equal(second.output_text, 'It is 21C.');
    const sent = up.requests.at(-1).body.messages;
    assert.equal(sent.length, 3);
    assert.deepEqual(sent[1].tool_calls, [{ id: 'call_w1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }]);
    assert.deepEqual(sent[2], { role: 'tool', tool_call_id: 'call_w1', content: '21C' });
  });

  test('text.format json_schema becomes response_format and is echoed', async () => {
    up.queue.push({ text: ['{"name":"Ada"}'] });
    const format = { type: 'json_schema', name: 'person', schema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'], additionalProperties: false }, strict: true };
    const r = await client.responses.create({ model: 'trans', input: 'A person', text: { format } });
    assert.deepEqual(r.text, { format });
    assert.deepEqual(JSON.parse(r.output_text), { name: 'Ada' });
    assert.deepEqual(up.requests.at(-1).body.response_format, {
      type: 'json_schema',
      json_schema: { name: 'person', schema: format.schema, strict: true },
    });
  });

  test('typed errors: BadRequestError for a built-in tool, previous_response_id and background; AuthenticationError for a bad key', async () => {
    const sentBefore = up.requests.length;
    await assert.rejects(client.responses.create({ model: 'trans', input: 'x', tools: [{ type: 'web_search' }] }), (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, String(e));
      assert.equal(e.param, 'tools[0].type');
      assert.equal(e.code, 'unsupported_tool');
      assert.match(e.message, /web_search/);
      return true;
    });
    await assert.rejects(client.responses.create({ model: 'trans', input: 'x', previous_response_id: 'resp_0' }), (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, String(e));
      assert.equal(e.code, 'previous_response_not_found');
      return true;
    });
    await assert.rejects(client.responses.create({ model: 'trans', input: 'x', background: true }), (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, String(e));
      assert.match(e.message, /background mode is not supported/);
      return true;
    });
    await assert.rejects(sdk(gw, 'gwk_wrong').responses.create({ model: 'trans', input: 'x' }), (e) => {
      assert.ok(e instanceof OpenAI.AuthenticationError, String(e));
      return true;
    });
    assert.equal(up.requests.length, sentBefore, 'nothing refused reached the upstream');
  });

  test('hostile: a duplicate member is a 400 duplicate_member; GET is 405', async () => {
    const raw = '{"model":"trans","input":"a","input":"b"}';
    const r = await request(gw.url + '/v1/responses', { method: 'POST', body: raw, headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' } });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.code, 'duplicate_member');
    assert.equal(r.json.error.param, 'input');
    const g = await request(gw.url + '/v1/responses', { headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(g.status, 405);
  });

  test('hostile: an upstream cut mid-stream ends in response.failed with the text sent so far', async () => {
    up.queue.push({ text: ['one ', 'two ', 'three'], cutAfter: 2 });
    const events = await collect(await client.responses.create({ model: 'trans', input: 'cut me', stream: true }));
    const last = events.at(-1);
    assert.equal(last.type, 'response.failed');
    assert.equal(last.response.status, 'failed');
    assert.equal(last.response.error.code, 'server_error');
    assert.ok(last.response.error.message.length > 0);
    assert.equal(last.response.output[0].content[0].text, 'one two ');
    assert.equal(last.response.output[0].status, 'incomplete');
    assert.equal(events.filter((e) => e.type.startsWith('response.completed')).length, 0);
  });
});

describe('the local engine behind /v1/responses (random weights, shapes only)', () => {
  test('responses.create and the stream helper, no key needed upstream', async () => {
    const client = sdk(gw);
    const { data: r, response } = await client.responses.create({ model: 'local', input: 'Hello there', max_output_tokens: 8, temperature: 0 }).withResponse();
    assert.equal(response.headers.get('x-gateway-deployment'), 'local@self/tiny-moe');
    assert.ok(['completed', 'incomplete'].includes(r.status), r.status);
    assert.equal(r.model, 'local');
    assert.equal(r.output.at(-1).type, 'message');
    assert.ok(r.usage.input_tokens > 0 && r.usage.output_tokens > 0 && r.usage.output_tokens <= 8, JSON.stringify(r.usage));
    const final = await client.responses.stream({ model: 'local', input: 'Stream please', max_output_tokens: 8, temperature: 0 }).finalResponse();
    assert.ok(['completed', 'incomplete'].includes(final.status), final.status);
    assert.ok(final.usage.output_tokens > 0);
  });
});

describe('spend: a priced deployment with a ledger', () => {
  let client;
  before(() => (client = sdk(pricedGw, ACCT)));
  const rid = (what) => `resp-${what}-${crypto.randomBytes(4).toString('hex')}`;

  async function rowsFor(clientId, timeoutMs = 10000) {
    const until = performance.now() + timeoutMs;
    while (performance.now() < until) {
      const q = await run(SQLITE, ['-json', ledgerPath, `SELECT * FROM spend WHERE client_request_id = '${clientId}'`], { timeoutMs: 10000 });
      assert.equal(q.code, 0, q.stderr);
      if (q.stdout.trim()) return JSON.parse(q.stdout);
      await sleep(50);
    }
    return [];
  }

  test('a non-stream answer: one ledger row with the provider usage, equal to the Response usage', async () => {
    priced.set({ pieces: undefined, pieceDelayMs: 0, usage: PRICED_USAGE });
    const id = rid('plain');
    const r = await client.responses.create({ model: 'priced', input: 'count me' }, { headers: { 'x-request-id': id } });
    assert.equal(r.usage.input_tokens, 1000);
    assert.equal(r.usage.output_tokens, 200);
    const rows = await rowsFor(id);
    assert.equal(rows.length, 1, JSON.stringify(rows));
    assert.equal(rows[0].usage_source, 'provider');
    assert.equal(BigInt(rows[0].cost_pico), PROVIDER_COST);
    assert.equal(rows[0].tenant, 'acct');
  });

  test('a client that leaves mid-stream is charged as chat streams are (estimate: prompt + tokens relayed)', async () => {
    priced.set({ pieces: Array(10).fill('abcd'), pieceDelayMs: 300, usage: PRICED_USAGE });
    const id = rid('vanish');
    const stream = await client.responses.create({ model: 'priced', input: 'count me', stream: true }, { headers: { 'x-request-id': id } });
    let seen = 0;
    for await (const ev of stream) if (ev.type === 'response.output_text.delta' && ++seen === 3) break; // leaves
    const rows = await rowsFor(id);
    assert.equal(rows.length, 1, JSON.stringify(rows));
    assert.equal(rows[0].usage_source, 'estimated');
    assert.ok(rows[0].completion_tokens >= 3 && rows[0].completion_tokens <= 4, `completion ${rows[0].completion_tokens}`);
    assert.ok(rows[0].prompt_tokens > 0);
    assert.ok(BigInt(rows[0].cost_pico) > 0n);
    priced.set({ pieces: undefined, pieceDelayMs: 0 });
  });
});
