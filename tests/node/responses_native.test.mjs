// End to end, POST /v1/responses relayed natively to the vendors whose Responses API the reference
// verifies (Qwen /compatible-mode/v1/responses, DeepSeek /responses, GLM's Coding Plan on its own base
// /api/v1/responses) and to Kimi's [S] only when its provider opts in (`responses: true`), through the real gateway to lib/fake_responses.mjs, with the
// pinned `openai` SDK. What must hold:
//   - the vendor sees the client's body with only `model` rewritten, `store: false` and no
//     previous_response_id (a continuation is expanded into `input` by the gateway);
//   - the client sees the gateway's response id and its model alias, one sequence_number sequence
//     from 0 (the vendor numbers its own from 7), usage as the vendor reported it;
//   - the ledger has the vendor's usage (input, cached, output, reasoning), the header its cost;
//   - a function tool round trip continues across a native and a translated turn, both ways, and
//     retrieve / input_items see the native turn as they see a translated one;
//   - GLM's Coding Plan region behind a proxied base_url without responses_base_url is translated;
//   - an error event before content fails over to a translated deployment with nothing sent; a
//     failure after content ends in response.failed; a usage larger than any window is refused.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import OpenAI from 'openai';
import { startGateway, defaultConfig, providerFor, tmpDir, toYaml, run, sleep, KEY_ENV, DEFAULT_REGION, GATEWAY_BIN } from './lib/gateway.mjs';
import { startFake, USAGE, CONTENT_PIECES, REASONING_PIECES } from './lib/fake_upstream.mjs';
import { RESPONSES_PATHS, RESPONSES_TOOL_CALL, responsesUsage } from './lib/fake_responses.mjs';

const SQLITE = '/usr/bin/sqlite3';
const MODEL = { deepseek: 'deepseek-flash', qwen: 'qwen3.8-max', glm: 'glm-5.1' };
// GLM's Responses API exists for its Coding Plan region only.
const REGION = { ...DEFAULT_REGION, glm: 'intl-coding' };
const NATIVE = Object.keys(MODEL);
const KEY = 'gwk_rnative_' + crypto.randomBytes(12).toString('hex');
const vendorKey = (d) => `sk-${d}-rnative-0123456789`;
const dep = (d, model = MODEL[d], provider = d) => `${provider}@${REGION[d]}/${model}`;
const TOOLS = [{ type: 'function', name: 'get_weather', description: 'Weather of a city',
                 parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];

const fakes = {};
let gw, ledgerPath, client;

before(async () => {
  assert.ok(fs.existsSync(SQLITE), 'sqlite3 CLI (Debian package sqlite3) needed to read the ledger');
  fakes.qwen = await startFake({
    dialect: 'qwen', key: vendorKey('qwen'), nativeModels: [MODEL.qwen],
    responsesScenarios: { 'qwen-flash': 'garbage', 'qwen3-max': 'close-mid-stream', 'qwen-plus': 'slow' },
  });
  fakes.deepseek = await startFake({
    dialect: 'deepseek', key: vendorKey('deepseek'), nativeModels: [MODEL.deepseek],
    responsesScenarios: { 'deepseek-v4-flash': 'error-before-content', 'deepseek-v4-pro': 'fail-mid-stream',
                          'deepseek-v4-flash-vision-exp': 'huge-usage' },
  });
  fakes.kimi = await startFake({ dialect: 'kimi', key: vendorKey('kimi'), nativeModels: ['kimi-k2.6'] });
  fakes.glm = await startFake({ dialect: 'glm', key: vendorKey('glm'), nativeModels: [MODEL.glm] });
  // The Coding Plan region, its chat and Responses bases both pointed at the fake.
  const glmCoding = { type: 'glm', region: 'intl-coding', api_key_env: KEY_ENV.glm, base_urls: { 'intl-coding': fakes.glm.baseUrl } };
  const dir = tmpDir('gw-responses-native-');
  ledgerPath = path.join(dir, 'ledger.db');
  const c = defaultConfig();
  Object.assign(c.upstream, { stream_idle_timeout_ms: 5000, total_timeout_ms: 30000, max_attempts: 3 });
  c.providers = {
    qwen: providerFor(fakes.qwen),
    deepseek: providerFor(fakes.deepseek),
    // The same DeepSeek account with its Responses API turned off: every attempt is translated.
    'deepseek-t': providerFor(fakes.deepseek, { type: 'deepseek', responses: false }),
    kimi: providerFor(fakes.kimi),
    'kimi-r': providerFor(fakes.kimi, { type: 'kimi', responses: true }),
    glm: { ...glmCoding, responses_base_urls: { 'intl-coding': fakes.glm.responsesBaseUrl } },
    // An egress proxy in base_urls and no responses_base_urls: the built-in api.z.ai/api/v1 is off.
    'glm-proxied': glmCoding,
  };
  c.models = {
    'n-qwen': ['qwen/qwen3.8-max'],
    'n-deepseek': ['deepseek/deepseek-flash'],
    't-deepseek': ['deepseek-t/deepseek-flash'],
    fo: ['deepseek/deepseek-v4-flash', 'deepseek-t/deepseek-flash'],
    midfail: ['deepseek/deepseek-v4-pro'],
    huge: ['deepseek/deepseek-v4-flash-vision-exp'],
    garbage: ['qwen/qwen-flash', 'deepseek-t/deepseek-flash'],
    cut: ['qwen/qwen3-max'],
    slow: ['qwen/qwen-plus'],
    mixed: ['deepseek-t/deepseek-flash', 'qwen/qwen3.8-max'],
    'kimi-off': ['kimi/kimi-k2.6'],
    'kimi-on': ['kimi-r/kimi-k2.6'],
    'n-glm': [`glm/${MODEL.glm}`],
    'glm-proxied': [`glm-proxied/${MODEL.glm}`],
  };
  c.tenants = { acct: { keys: [{ id: 'a1', sha256: crypto.createHash('sha256').update(KEY).digest('hex') }] } };
  c.state = { ledger_path: ledgerPath };
  const env = Object.fromEntries(['qwen', 'deepseek', 'kimi', 'glm'].map((d) => [KEY_ENV[d], vendorKey(d)]));
  gw = await startGateway({ config: c, env });
  client = new OpenAI({ baseURL: gw.url + '/v1', apiKey: KEY, maxRetries: 0, timeout: 30000 });
});

after(async () => {
  for (const f of Object.values(fakes)) await f?.close();
  await gw?.stop();
});

async function rowsFor(clientId, count = 1, timeoutMs = 10000) {
  const until = performance.now() + timeoutMs;
  let r = [];
  while (performance.now() < until) {
    const q = await run(SQLITE, ['-json', ledgerPath, `SELECT * FROM spend WHERE client_request_id = '${clientId}' ORDER BY attempt`], { timeoutMs: 10000 });
    assert.equal(q.code, 0, q.stderr);
    r = q.stdout.trim() ? JSON.parse(q.stdout) : [];
    if (r.length >= count) break;
    await sleep(50);
  }
  return r;
}

const rid = (what) => `rnative-${what}-${crypto.randomBytes(4).toString('hex')}`;
const opts = (id) => ({ headers: { 'x-request-id': id } });
const usd = (pico) => {
  const nano = Math.round(pico / 1000);
  return (nano / 1e9).toFixed(9).replace(/0+$/, '').replace(/\.$/, '.0');
};

// Every event of a stream, in order; asserts one sequence from 0 and the gateway's id throughout.
async function collect(stream) {
  const events = [];
  for await (const ev of stream) events.push(ev);
  events.forEach((ev, i) => assert.equal(ev.sequence_number, i, `event ${i} (${ev.type})`));
  const ids = new Set(events.filter((e) => e.response).map((e) => e.response.id));
  assert.equal(ids.size, 1, `one response id: ${[...ids]}`);
  assert.match([...ids][0], /^resp_[0-9a-f]{32}$/);
  return events;
}

function assertLedger(row, d, what) {
  const u = USAGE[d];
  assert.equal(row.usage_source, 'provider', what);
  assert.deepEqual([row.prompt_tokens, row.cached_tokens, row.completion_tokens, row.reasoning_tokens],
                   [u.prompt, u.cached, u.completion, u.reasoning], what);
  assert.ok(Number(row.cost_pico) > 0, what + ': priced');
}

describe('each verified vendor, relayed natively', () => {
  for (const d of NATIVE) {
    test(`${d}: whole answer: model rewritten, store false upstream; gateway id and alias; usage into the ledger`, async () => {
      const fake = fakes[d];
      const n0 = fake.requests.length;
      const id = rid(`${d}-whole`);
      const { data: r, response } = await client.responses
        .create({ model: `n-${d}`, input: 'Hi', instructions: 'Be brief.', metadata: { t: '1' }, max_output_tokens: 64 }, opts(id))
        .withResponse();
      assert.equal(fake.requests.length, n0 + 1, 'one upstream call');
      const sent = fake.requests[n0];
      assert.equal(sent.path, RESPONSES_PATHS[d][0]);
      assert.equal(sent.headers.authorization, 'Bearer ' + vendorKey(d));
      assert.deepEqual(sent.body, { model: MODEL[d], store: false, input: 'Hi', instructions: 'Be brief.', metadata: { t: '1' }, max_output_tokens: 64 });
      assert.equal(response.headers.get('x-gateway-deployment'), dep(d));
      assert.match(r.id, /^resp_[0-9a-f]{32}$/);
      assert.equal(r.model, `n-${d}`);
      assert.equal(r.store, true);
      assert.equal(r.output_text, CONTENT_PIECES(d).join(''));
      assert.equal(r.output[0].type, 'reasoning');
      assert.deepEqual(r.usage, responsesUsage(d));
      const rows = await rowsFor(id);
      assert.equal(rows.length, 1);
      assertLedger(rows[0], d, `${d} ledger`);
      assert.equal(response.headers.get('x-gateway-cost-usd'), usd(Number(rows[0].cost_pico)));
      // Stored like a translated answer.
      const got = await client.responses.retrieve(r.id);
      assert.equal(got.id, r.id);
      assert.equal(got.output_text, r.output_text);
    });

    test(`${d}: stream: one sequence from 0, the gateway's id, text and reasoning assembled, usage in response.completed`, async () => {
      const id = rid(`${d}-stream`);
      const events = await collect(await client.responses.create({ model: `n-${d}`, input: 'Stream', stream: true }, opts(id)));
      const types = events.map((e) => e.type);
      assert.deepEqual(types.slice(0, 3), ['response.created', 'response.in_progress', 'response.output_item.added']);
      assert.equal(types.at(-1), 'response.completed');
      assert.equal(events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join(''), CONTENT_PIECES(d).join(''));
      assert.equal(events.filter((e) => e.type === 'response.reasoning_summary_text.delta').map((e) => e.delta).join(''), REASONING_PIECES.join(''));
      const done = events.at(-1).response;
      assert.equal(done.model, `n-${d}`);
      assert.deepEqual(done.usage, responsesUsage(d));
      const rows = await rowsFor(id);
      assert.equal(rows.length, 1);
      assertLedger(rows[0], d, `${d} stream ledger`);
      const stored = await client.responses.retrieve(done.id);
      assert.equal(stored.status, 'completed');
      assert.equal(stored.output_text, CONTENT_PIECES(d).join(''));
    });
  }
});

describe('a conversation across native and translated turns', () => {
  test('function_call natively, its output through a translated turn, then natively again with the whole history', async () => {
    // Turn 1, native (Qwen): the vendor asks for the tool.
    const t1 = await client.responses.create({ model: 'n-qwen', input: 'Weather in Paris?', tools: TOOLS });
    const call = t1.output.find((o) => o.type === 'function_call');
    assert.ok(call, JSON.stringify(t1.output));
    assert.equal(call.name, RESPONSES_TOOL_CALL.name);
    // Turn 2, translated (DeepSeek chat): the stored call and its output become chat messages.
    const d0 = fakes.deepseek.requests.length;
    const t2 = await client.responses.create({
      model: 't-deepseek', previous_response_id: t1.id, tools: TOOLS,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"temp":21}' }],
    });
    const chat = fakes.deepseek.requests[d0];
    assert.ok(chat.path.endsWith('/chat/completions'), chat.path);
    const assistant = chat.body.messages.find((m) => m.role === 'assistant');
    assert.equal(assistant.tool_calls[0].id, call.call_id);
    assert.equal(assistant.tool_calls[0].function.arguments, RESPONSES_TOOL_CALL.args.join(''));
    const tool = chat.body.messages.find((m) => m.role === 'tool');
    assert.deepEqual([tool.tool_call_id, tool.content], [call.call_id, '{"temp":21}']);
    assert.equal(t2.output_text, CONTENT_PIECES('deepseek').join(''));
    // Turn 3, native again (Qwen): the vendor gets the whole conversation in `input`, no ids it cannot know.
    const q0 = fakes.qwen.requests.length;
    const t3 = await client.responses.create({ model: 'n-qwen', previous_response_id: t2.id, input: 'Thanks!', stream: true });
    const events = [];
    for await (const ev of t3) events.push(ev);
    assert.equal(events.at(-1).type, 'response.completed');
    assert.equal(events.at(-1).response.previous_response_id, t2.id);
    const sent = fakes.qwen.requests[q0].body;
    assert.ok(!('previous_response_id' in sent));
    assert.equal(sent.store, false);
    const kinds = sent.input.map((i) => i.type + (i.role ? ':' + i.role : ''));
    // The translated turn's answer: DeepSeek's reasoning, then its text.
    assert.deepEqual(kinds, ['message:user', 'function_call', 'function_call_output', 'reasoning', 'message:assistant', 'message:user'],
                     JSON.stringify(sent.input));
    assert.equal(sent.input[1].call_id, call.call_id);
    // input_items of a native turn list its own input as a translated turn's do.
    const items = await client.responses.inputItems.list(events.at(-1).response.id);
    assert.equal(items.data.length, 1);
    assert.equal(items.data[0].type, 'message');
  });
});

describe('a built-in tool only the native relay can carry', () => {
  const body = { input: 'Search the news', tools: [{ type: 'web_search' }, TOOLS[0]], tool_choice: { type: 'web_search' } };

  test('a translated candidate is skipped (not tried), the native one gets the tools as sent', async () => {
    const d0 = fakes.deepseek.requests.length, q0 = fakes.qwen.requests.length;
    const { data, response } = await client.responses.create({ model: 'mixed', ...body }).withResponse();
    assert.equal(response.headers.get('x-gateway-deployment'), dep('qwen'));
    assert.equal(response.headers.get('x-gateway-attempts'), '1');
    assert.equal(fakes.deepseek.requests.length, d0, 'the translated candidate was not tried');
    const sent = fakes.qwen.requests[q0].body;
    assert.deepEqual(sent.tools, body.tools);
    assert.deepEqual(sent.tool_choice, body.tool_choice);
    assert.equal(data.status, 'completed');
  });

  test('with no native candidate the translation refuses it with a 400 naming the tool', async () => {
    await assert.rejects(client.responses.create({ model: 't-deepseek', ...body }), (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.code, 'unsupported_tool');
      assert.equal(e.param, 'tools[0].type');
      return true;
    });
  });
});

describe('faults', () => {
  for (const stream of [false, true]) {
    test(`an error before content at the native attempt fails over to a translated one (stream: ${stream})`, async () => {
      const id = rid(`fo-${stream}`);
      const d0 = fakes.deepseek.requests.length;
      const { data, response } = await client.responses.create({ model: 'fo', input: 'Hi', ...(stream ? { stream: true } : {}) }, opts(id)).withResponse();
      assert.equal(response.headers.get('x-gateway-deployment'), dep('deepseek', 'deepseek-flash', 'deepseek-t'));
      assert.equal(response.headers.get('x-gateway-attempts'), '2');
      const paths = fakes.deepseek.requests.slice(d0).map((r) => r.path);
      assert.deepEqual(paths, ['/responses', '/chat/completions']);
      let text;
      if (stream) {
        const events = await collect(data);
        assert.equal(events.filter((e) => e.type === 'response.created').length, 1);
        assert.equal(events.at(-1).type, 'response.completed');
        text = events.at(-1).response.output.find((o) => o.type === 'message').content[0].text;
      } else {
        text = data.output_text;
      }
      assert.equal(text, CONTENT_PIECES('deepseek').join(''));
      // A native attempt refused with HTTP 500 billed nothing: no row. One whose stream was accepted
      // (200) and then failed may have started work: a row, at the gateway's estimate.
      const rows = await rowsFor(id, stream ? 2 : 1);
      assert.equal(rows.length, stream ? 2 : 1, JSON.stringify(rows));
      assert.equal(rows.at(-1).deployment, dep('deepseek', 'deepseek-flash', 'deepseek-t'));
      if (stream) assert.equal(rows[0].deployment, dep('deepseek', 'deepseek-v4-flash'));
    });
  }

  test('a failure after content ends in response.failed with what was sent; the attempt is accounted', async () => {
    const id = rid('midfail');
    const events = await collect(await client.responses.create({ model: 'midfail', input: 'Hi', stream: true }, opts(id)));
    const last = events.at(-1);
    assert.equal(last.type, 'response.failed');
    assert.equal(last.response.status, 'failed');
    assert.match(last.response.error.message, /crashed mid-answer/);
    assert.equal(events.filter((e) => e.type === 'response.completed').length, 0);
    assert.ok(events.some((e) => e.type === 'response.output_text.delta'));
    const rows = await rowsFor(id);
    assert.equal(rows.length, 1);
    const stored = await client.responses.retrieve(last.response.id);
    assert.equal(stored.status, 'failed');
  });

  for (const stream of [false, true]) {
    test(`an answer that is not JSON fails over with nothing sent (stream: ${stream})`, async () => {
      const { data, response } = await client.responses.create({ model: 'garbage', input: 'Hi', ...(stream ? { stream: true } : {}) }).withResponse();
      assert.equal(response.headers.get('x-gateway-attempts'), '2');
      assert.equal(response.headers.get('x-gateway-deployment'), dep('deepseek', 'deepseek-flash', 'deepseek-t'));
      if (stream) assert.equal((await collect(data)).at(-1).type, 'response.completed');
      else assert.equal(data.output_text, CONTENT_PIECES('deepseek').join(''));
    });
  }

  test('a stream cut after content ends in response.failed, never a fabricated completion', async () => {
    const id = rid('cut');
    const events = await collect(await client.responses.create({ model: 'cut', input: 'Hi', stream: true }, opts(id)));
    assert.equal(events.at(-1).type, 'response.failed');
    assert.equal(events.filter((e) => e.type === 'response.completed').length, 0);
    const rows = await rowsFor(id);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].usage_source, 'estimated');
  });

  test('a client that leaves mid-stream: the upstream request ends, one ledger row', async () => {
    const id = rid('leave');
    const q0 = fakes.qwen.requests.length;
    const stream = await client.responses.create({ model: 'slow', input: 'Hi', stream: true }, opts(id));
    let deltas = 0;
    for await (const ev of stream) {
      if (ev.type === 'response.output_text.delta' && ++deltas === 2) break;  // the SDK aborts the request
    }
    const upstream = fakes.qwen.requests[q0];
    await Promise.race([upstream.socketClosed, sleep(10000).then(() => assert.fail('the upstream request stayed open'))]);
    const rows = await rowsFor(id);
    assert.equal(rows.length, 1, JSON.stringify(rows));
    assert.ok(rows[0].completion_tokens > 0, 'the output relayed is accounted');
  });

  test('a usage larger than any window is refused; the attempt is accounted at the estimate', async () => {
    const id = rid('huge');
    await assert.rejects(client.responses.create({ model: 'huge', input: 'count me' }, opts(id)), (e) => {
      assert.equal(e.status, 502);
      assert.match(e.message, /impossible usage/);
      return true;
    });
    const rows = await rowsFor(id);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].usage_source, 'estimated');
    assert.ok(rows[0].completion_tokens < 1000, `completion ${rows[0].completion_tokens}: an estimate, not the claim`);
  });
});

describe('GLM (a Responses base of its own, Coding Plan only)', () => {
  test('a proxied base_url without responses_base_url: translated to chat completions, never to api.z.ai', async () => {
    const g0 = fakes.glm.requests.length;
    const { data: r, response } = await client.responses.create({ model: 'glm-proxied', input: 'Hi' }).withResponse();
    assert.deepEqual(fakes.glm.requests.slice(g0).map((q) => q.path), ['/api/paas/v4/chat/completions']);
    assert.equal(response.headers.get('x-gateway-deployment'), dep('glm', MODEL.glm, 'glm-proxied'));
    assert.equal(r.output_text, CONTENT_PIECES('glm').join(''));
  });
});

describe('Kimi (a secondary source lists /responses)', () => {
  test('translated by default; natively only when the provider says responses: true', async () => {
    const k0 = fakes.kimi.requests.length;
    const off = await client.responses.create({ model: 'kimi-off', input: 'Hi' });
    const on = await client.responses.create({ model: 'kimi-on', input: 'Hi' });
    assert.deepEqual(fakes.kimi.requests.slice(k0).map((r) => r.path), ['/v1/chat/completions', '/v1/responses']);
    assert.equal(off.output_text, CONTENT_PIECES('kimi').join(''));
    assert.equal(on.output_text, CONTENT_PIECES('kimi').join(''));
  });

  test('gateway catalog lists openai_responses where a deployment speaks it, as configured', async () => {
    const surfaces = async (providers) => {
      const cfg = path.join(tmpDir('gw-rnative-cat-'), 'gateway.yaml');
      fs.writeFileSync(cfg, toYaml({ ...defaultConfig(), providers, models: { a: ['deepseek/deepseek-flash'] } }));
      const cat = await run(GATEWAY_BIN, ['catalog', '--config', cfg, '--format', 'json'], { timeoutMs: 15000 });
      assert.equal(cat.code, 0, cat.stderr);
      return (id) => JSON.parse(cat.stdout).deployments.find((x) => x.id === id).surfaces;
    };
    const built = await surfaces({ qwen: {}, deepseek: {}, kimi: {} });
    assert.ok(built(dep('qwen')).includes('openai_responses'));
    assert.ok(built(dep('deepseek')).includes('openai_responses'));
    assert.ok(!built('kimi@intl/kimi-k2.6').includes('openai_responses'));
    const flipped = await surfaces({ deepseek: { responses: false }, kimi: { responses: true } });
    assert.ok(!flipped(dep('deepseek')).includes('openai_responses'));
    assert.ok(flipped('kimi@intl/kimi-k2.6').includes('openai_responses'));
  });
});

test('gateway explain names the surfaces each planned deployment speaks natively', async () => {
  const dir = tmpDir('gw-rnative-explain-');
  fs.writeFileSync(path.join(dir, 'policy.yaml'), 'version: 1\nname: rnative\nroutes:\n  - name: all\n    match: {model: r}\n' +
    '    objective: ordered\n    candidates: [qwen/qwen3.8-max, kimi/kimi-k2.6]\n');
  const c = defaultConfig();
  delete c.models;
  const keyFile = path.join(dir, 'key');
  fs.writeFileSync(keyFile, 'sk-explain-0123456789\n');
  c.providers = { qwen: { api_key_file: keyFile }, kimi: { api_key_file: keyFile } };
  c.policy = path.join(dir, 'policy.yaml');
  const cfg = path.join(dir, 'gateway.yaml');
  fs.writeFileSync(cfg, toYaml(c));
  const req = path.join(dir, 'req.json');
  fs.writeFileSync(req, JSON.stringify({ model: 'r', messages: [{ role: 'user', content: 'hi' }] }));
  const r = await run(GATEWAY_BIN, ['explain', '--config', cfg, '--request', req], { timeoutMs: 15000 });
  assert.equal(r.code, 0, r.stderr);
  const e = JSON.parse(r.stdout);
  assert.deepEqual(e.plan, [dep('qwen'), 'kimi@intl/kimi-k2.6']);
  assert.deepEqual(e.surfaces[dep('qwen')], ['openai_chat', 'anthropic_messages', 'openai_responses']);
  assert.deepEqual(e.surfaces['kimi@intl/kimi-k2.6'], ['openai_chat', 'anthropic_messages']);
});
