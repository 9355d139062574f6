// End to end, the native Anthropic relay: POST /v1/messages through the real gateway to each vendor
// fake's Anthropic-compatible endpoint (lib/fake_anthropic.mjs), for DeepSeek, Qwen, Kimi, GLM and
// MiniMax, streamed and not. What must hold:
//   - the request body reaches the vendor byte for byte except the value of `model` (unknown
//     top-level fields, odd spacing, escapes and thinking signatures kept); anthropic-beta passed;
//   - the client receives the vendor's events in order, `: x-gateway-cost-usd` before message_stop,
//     message_stop last; a whole answer is the vendor's message;
//   - the cost (header, comment, ledger row) is the catalog price times the vendor's usage, cache
//     reads and cache writes included, computed here from `gateway catalog --format json`;
//   - faults: GLM 1113 is out of balance and fails over, 529 and an error event before content fail
//     over, an error mid-stream reaches the SDK and is accounted, a client that leaves gets one
//     ledger row, a native answer is never served from the response cache, and a usage larger than
//     the deployment's window is refused and the attempt counted at the gateway's estimate.
// Catalog models are used throughout (priced, with known windows); the fake plays a fault scenario
// for some of them (startFake's anthropicScenarios).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import { startGateway, defaultConfig, providerFor, tmpDir, request, chatStream, run, sleep, KEY_ENV, DEFAULT_REGION, GATEWAY_BIN } from './lib/gateway.mjs';
import { startFake } from './lib/fake_upstream.mjs';
import { ANTHROPIC_PATHS, ANTHROPIC_USAGE, anthropicCoreUsage, anthropicStreamEvents, ANTHROPIC_TEXT, ANTHROPIC_THINKING } from './lib/fake_anthropic.mjs';
import { scrape, metricValue } from './lib/prometheus.mjs';
import { user } from './lib/anthropic.mjs';

const SQLITE = '/usr/bin/sqlite3';
// The catalog model each vendor serves normally; MiniMax-M2.7 prices cache writes above input.
const MODEL = { deepseek: 'deepseek-flash', qwen: 'qwen3.8-max', kimi: 'kimi-k2.6', glm: 'glm-5.3', minimax: 'MiniMax-M2.7' };
// Catalog models that play a fault scenario on the Anthropic path.
const FAULTS = {
  deepseek: { 'deepseek-v4-pro': 'error-mid-stream', 'deepseek-v4-flash': 'stall-mid-stream', 'deepseek-v4-flash-vision-exp': 'huge-usage' },
  glm: { 'glm-5.1': 'no-balance' },
  kimi: { 'kimi-k3': 'overloaded', 'kimi-k2.5': 'error-before-content' },
};
const VENDORS = Object.keys(MODEL);
const KEY = 'gwk_native_' + crypto.randomBytes(12).toString('hex');
const vendorKey = (d) => `sk-${d}-native-0123456789`;
const dep = (d, model = MODEL[d]) => `${d}@${DEFAULT_REGION[d]}/${model}`;

const fakes = {};
let gw, ledgerPath, catalog;

before(async () => {
  assert.ok(fs.existsSync(SQLITE), 'sqlite3 CLI (Debian package sqlite3) needed to read the ledger');
  for (const d of VENDORS)
    fakes[d] = await startFake({ dialect: d, key: vendorKey(d), nativeModels: [MODEL[d]], anthropicScenarios: FAULTS[d] ?? {} });
  const dir = tmpDir('gw-anthropic-native-');
  ledgerPath = path.join(dir, 'ledger.db');
  const c = defaultConfig();
  // The stall scenario pings every 200 ms: the idle timeout never fires, the client leaves first.
  Object.assign(c.upstream, { stream_idle_timeout_ms: 5000, total_timeout_ms: 30000, max_attempts: 3 });
  c.providers = Object.fromEntries(VENDORS.map((d) => [d, providerFor(fakes[d])]));
  // DeepSeek without its Anthropic endpoint (an OpenAI base URL override only): translated.
  c.providers['deepseek-t'] = { type: 'deepseek', api_key_env: KEY_ENV.deepseek, base_urls: { global: fakes.deepseek.baseUrl } };
  c.models = {
    ...Object.fromEntries(VENDORS.map((d) => [`n-${d}`, [`${d}/${MODEL[d]}`]])),
    'glm-broke': ['glm/glm-5.1', 'deepseek/deepseek-flash'],
    busy: ['kimi/kimi-k3', 'qwen/qwen3.8-max'],
    'busy-sse': ['kimi/kimi-k2.5', 'qwen/qwen3.8-max'],
    midfail: ['deepseek/deepseek-v4-pro'],
    stall: ['deepseek/deepseek-v4-flash'],
    huge: ['deepseek/deepseek-v4-flash-vision-exp'],
    mixed: ['deepseek-t/deepseek-flash', 'kimi/kimi-k2.6'],
    'translated-only': ['deepseek-t/deepseek-flash'],
  };
  c.tenants = { acct: { keys: [{ id: 'a1', sha256: crypto.createHash('sha256').update(KEY).digest('hex') }] } };
  c.state = { ledger_path: ledgerPath };
  c.cache = { enabled: true };
  const env = Object.fromEntries(VENDORS.map((d) => [KEY_ENV[d], vendorKey(d)]));
  gw = await startGateway({ config: c, env });
  const cat = await run(GATEWAY_BIN, ['catalog', '--config', gw.cfgPath, '--format', 'json'], { timeoutMs: 15000 });
  assert.equal(cat.code, 0, cat.stderr);
  catalog = JSON.parse(cat.stdout);
});

after(async () => {
  for (const f of Object.values(fakes)) await f?.close();
  await gw?.stop();
});

// ---- the expected cost, from the catalog's facts (routing/pricing.cpp's rules, restated) --------
const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

function isPeak(schedule, ms) {
  if (!schedule || schedule.peak_utc.length === 0) return true;
  const d = new Date(ms);
  if (schedule.offpeak_dates.includes(d.toISOString().slice(0, 10))) return false;
  const day = DAYS[(d.getUTCDay() + 6) % 7];
  const minute = d.getUTCHours() * 60 + d.getUTCMinutes();
  return schedule.peak_utc.some((w) => {
    const [days, span] = w.split(' ');
    const [from, to] = span.split('-').map((t) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3)));
    return days.split(',').includes(day) && minute >= from && minute < to;
  });
}

const perToken = (usdPerMillion) => Math.round(usdPerMillion * 1e6); // pico-USD per token

// usage: {prompt, cached, cacheWrite, completion}; `at`: the wall-clock ms of the accounting.
function expectedPico(deploymentId, usage, at) {
  const facts = catalog.deployments.find((x) => x.id === deploymentId);
  assert.ok(facts, `${deploymentId} in the catalog`);
  const tier = facts.price.tiers.find((t) => t.up_to_input_tokens === 'max' || usage.prompt <= t.up_to_input_tokens);
  const uncached = usage.prompt - usage.cached - usage.cacheWrite;
  const base = uncached * perToken(tier.input) + usage.cached * perToken(tier.cached_input) +
    usage.cacheWrite * perToken(tier.cache_write) + usage.completion * perToken(tier.output);
  return isPeak(facts.price.schedule, at) ? base : Math.round(base * facts.price.schedule.offpeak_factor);
}

// The figure for a request accounted between t0 and t1: exact, unless a peak window edge fell
// between them (then either side's figure).
function assertCost(actualPico, deploymentId, usage, t0, t1, what) {
  const a = expectedPico(deploymentId, usage, t0);
  const b = expectedPico(deploymentId, usage, t1);
  assert.ok(actualPico === a || actualPico === b, `${what}: ${actualPico} pico-USD, expected ${a}${a === b ? '' : ' or ' + b}`);
}

const usd = (pico) => {
  const nano = Math.round(pico / 1000);
  return (nano / 1e9).toFixed(9).replace(/0+$/, '').replace(/\.$/, '.0');
};

// ---- ledger -------------------------------------------------------------------------------------
async function rows(clientId) {
  const q = await run(SQLITE, ['-json', ledgerPath, `SELECT * FROM spend WHERE client_request_id = '${clientId}' ORDER BY attempt`], { timeoutMs: 10000 });
  assert.equal(q.code, 0, q.stderr);
  return q.stdout.trim() ? JSON.parse(q.stdout) : [];
}

// Rows of a request once `count` are there (the row of a stream the client left is written after).
async function rowsFor(clientId, count = 1, timeoutMs = 10000) {
  const until = performance.now() + timeoutMs;
  let r = [];
  while (performance.now() < until) {
    r = await rows(clientId);
    if (r.length >= count) break;
    await sleep(50);
  }
  return r;
}

const rid = (what) => `native-${what}-${crypto.randomBytes(4).toString('hex')}`;
const HEADERS = { 'x-api-key': KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' };
const post = (body, headers = {}) =>
  request(gw.url + '/v1/messages', { method: 'POST', headers: { ...HEADERS, ...headers }, body, timeoutMs: 20000 });
const sdk = () => new Anthropic({ baseURL: gw.url, apiKey: KEY, maxRetries: 0, timeout: 20000 });

// A body as a hostile-but-valid client writes it: spacing, escapes, an unknown top-level field, a
// thinking block with its signature in the history, cache_control, metadata.
function rawBody(alias, stream) {
  return `{ "model" : "${alias}",\n  "max_tokens":64, "x_vendor_ext" : {"k":[1, 2.50, {"z":null}], "s":"caf\\u00e9 \\ud83d\\ude00"},
  "system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],
  "messages":[{"role":"user","content":"2+2?"},
    {"role":"assistant","content":[{"type":"thinking","thinking":"Add them.","signature":"EqQBCkYIARgCIkD+/=="},{"type":"text","text":"4"}]},
    {"role":"user","content":[{"type":"text","text":"Sure?  "}]}],
  "metadata":{"user_id":"u-\\u00e9"}${stream ? ', "stream" : true' : ''} }`;
}

// The bytes the vendor must see: the client's, with only the model's value replaced.
const asForwarded = (body, alias, model) => body.replace(`"model" : "${alias}"`, `"model" : "${model}"`);

const named = (events) => events.filter((e) => e.event !== null);
const parsed = (e) => ({ event: e.event, data: JSON.parse(e.data) });
// A message id is the fake's random one: compared apart.
function withoutIds(ev) {
  const c = structuredClone(ev);
  if (c.event === 'message_start') delete c.data.message.id;
  if (c.data?.content_block?.id) delete c.data.content_block.id;
  return c;
}

describe('each vendor, relayed natively', () => {
  for (const d of VENDORS) {
    test(`${d}: whole answer: body byte for byte but model, anthropic-beta, the vendor's message, cost = catalog x usage`, async () => {
      const fake = fakes[d];
      const n0 = fake.requests.length;
      const id = rid(`${d}-whole`);
      const body = rawBody(`n-${d}`, false);
      const t0 = Date.now();
      const res = await post(body, { 'x-request-id': id, 'anthropic-beta': 'interleaved-thinking-2025-05-14,prompt-caching-2024-07-31' });
      const t1 = Date.now();
      assert.equal(res.status, 200, res.text);
      assert.equal(fake.requests.length, n0 + 1, 'one upstream call');
      const r = fake.requests[n0];
      assert.equal(r.path, ANTHROPIC_PATHS[d], 'the vendor was reached on its Anthropic path');
      assert.equal(r.rawBody.toString('utf8'), asForwarded(body, `n-${d}`, MODEL[d]));
      assert.equal(r.headers['anthropic-beta'], 'interleaved-thinking-2025-05-14,prompt-caching-2024-07-31');
      assert.equal(r.headers['anthropic-version'], '2023-06-01');
      assert.equal(res.headers['x-gateway-deployment'], dep(d));
      const m = res.json;
      assert.match(m.id, /^msg_/);
      assert.equal(m.model, MODEL[d]);
      assert.deepEqual(m.content, [
        { type: 'thinking', thinking: ANTHROPIC_THINKING.join(''), signature: 'sig-' + d },
        { type: 'text', text: ANTHROPIC_TEXT(d).join('') },
      ]);
      const u = ANTHROPIC_USAGE[d];
      assert.deepEqual(m.usage, { input_tokens: u.input, cache_creation_input_tokens: u.cache_creation, cache_read_input_tokens: u.cache_read, output_tokens: u.output });
      const [row] = await rowsFor(id);
      assert.ok(row, 'a ledger row');
      assert.equal(row.usage_source, 'provider');
      assert.equal(row.status, 'ok');
      const core = anthropicCoreUsage(d);
      assert.deepEqual([row.prompt_tokens, row.cached_tokens, row.cache_write_tokens, row.completion_tokens], [core.prompt, core.cached, core.cacheWrite, core.completion]);
      assertCost(Number(row.cost_pico), dep(d), core, t0, t1, `${d} ledger`);
      assert.equal(res.headers['x-gateway-cost-usd'], usd(Number(row.cost_pico)), 'the header states the ledger figure');
    });

    test(`${d}: stream: body byte for byte but model, the vendor's events in order, cost comment before message_stop`, async () => {
      const fake = fakes[d];
      const n0 = fake.requests.length;
      const id = rid(`${d}-stream`);
      const body = rawBody(`n-${d}`, true);
      const t0 = Date.now();
      // chatStream sends JSON.stringify(body): a parsed copy would lose the spacing under test.
      const s = await rawStream(body, { 'x-request-id': id, 'anthropic-beta': 'fine-grained-tool-streaming-2025-05-14' });
      const t1 = Date.now();
      assert.equal(s.status, 200, s.raw);
      const r = fake.requests[n0];
      assert.equal(r.path, ANTHROPIC_PATHS[d]);
      assert.equal(r.rawBody.toString('utf8'), asForwarded(body, `n-${d}`, MODEL[d]));
      assert.equal(r.headers['anthropic-beta'], 'fine-grained-tool-streaming-2025-05-14');
      const got = named(s.events).map(parsed).map(withoutIds);
      const sent = anthropicStreamEvents(d, MODEL[d]).map(([event, data]) => withoutIds({ event, data }));
      assert.deepEqual(got, sent, 'the events as the vendor sent them');
      const stopAt = s.events.findIndex((e) => e.event === 'message_stop');
      assert.equal(stopAt, s.events.length - 1, 'message_stop is last');
      const costAt = s.events.findIndex((e) => e.comments.some((c) => c.startsWith('x-gateway-cost-usd: ')));
      assert.ok(costAt >= 0 && costAt < stopAt, 'the cost comment comes before message_stop');
      const [row] = await rowsFor(id);
      assert.ok(row, 'a ledger row');
      assert.equal(row.usage_source, 'provider');
      const core = anthropicCoreUsage(d);
      assert.deepEqual([row.prompt_tokens, row.cached_tokens, row.cache_write_tokens, row.completion_tokens], [core.prompt, core.cached, core.cacheWrite, core.completion]);
      assertCost(Number(row.cost_pico), dep(d), core, t0, t1, `${d} stream ledger`);
      const comment = s.events[costAt].comments.find((c) => c.startsWith('x-gateway-cost-usd: ')).split(': ')[1];
      assert.equal(comment, usd(Number(row.cost_pico)), 'the comment states the ledger figure');
    });
  }

  test('the expected figure is not trivial: MiniMax cache writes are priced apart from input', () => {
    const facts = catalog.deployments.find((x) => x.id === dep('minimax'));
    const t = facts.price.tiers[0];
    assert.notEqual(t.cache_write, t.input, 'the catalog prices MiniMax-M2.7 cache writes differently');
    assert.ok(ANTHROPIC_USAGE.minimax.cache_creation > 0, 'the MiniMax fake reports cache writes');
  });
});

// A raw streamed POST of an exact body string (chatStream re-encodes objects).
function rawStream(body, headers = {}, opts = {}) {
  return chatStream(gw, undefined, { path: '/v1/messages', headers: { ...HEADERS, ...headers }, rawPayload: body, ...opts });
}

describe('faults on the native path', () => {
  test('GLM 429 rate_limit_error code 1113 is out of balance: fail-over to the next candidate, the deployment benched', async () => {
    const id = rid('glm-1113');
    const g0 = fakes.glm.requests.length;
    const res = await post({ model: 'glm-broke', max_tokens: 32, messages: [user('hi')] }, { 'x-request-id': id });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['x-gateway-deployment'], dep('deepseek'));
    assert.equal(res.headers['x-gateway-attempts'], '2');
    assert.equal(fakes.glm.requests[g0].body.model, 'glm-5.1', 'GLM was tried first');
    const { samples } = await scrape(gw);
    assert.equal(metricValue(samples, 'gateway_upstream_attempts_total', { deployment: dep('glm', 'glm-5.1'), outcome: 'out_of_balance' }), 1);
    // Out of balance benches the deployment for minutes: the next request does not try it.
    const g1 = fakes.glm.requests.length;
    const again = await post({ model: 'glm-broke', max_tokens: 32, messages: [user('hi again')] });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.headers['x-gateway-attempts'], '1');
    assert.equal(fakes.glm.requests.length, g1, 'GLM not called while out of balance');
    // The refused attempt cost nothing (no usage, no content): the ledger has the answering one.
    const r = await rowsFor(id);
    assert.equal(r.length, 1, JSON.stringify(r));
    assert.equal(r[0].attempt, 2);
    assert.equal(r[0].deployment, dep('deepseek'));
  });

  test('529 overloaded before any content, streamed and not: fail-over, the SDK sees the next deployment answer', async () => {
    const client = sdk();
    const k0 = fakes.kimi.byModel('kimi-k3').length;
    const { data, response } = await client.messages.create({ model: 'busy', max_tokens: 32, messages: [user('hi')] }).withResponse();
    assert.equal(response.headers.get('x-gateway-deployment'), dep('qwen'));
    assert.equal(response.headers.get('x-gateway-attempts'), '2');
    assert.equal(data.content.at(-1).text, ANTHROPIC_TEXT('qwen').join(''));
    const msg = await client.messages.stream({ model: 'busy', max_tokens: 32, messages: [user('hi')] }).finalMessage();
    assert.equal(msg.content.at(-1).text, ANTHROPIC_TEXT('qwen').join(''));
    assert.equal(fakes.kimi.byModel('kimi-k3').length, k0 + 2, 'the overloaded deployment was tried each time');
  });

  test('an error event before any content block: fail-over, the client sees one clean stream', async () => {
    const k0 = fakes.kimi.byModel('kimi-k2.5').length;
    const s = await chatStream(gw, { model: 'busy-sse', max_tokens: 32, stream: true, messages: [user('hi')] }, { path: '/v1/messages', headers: HEADERS });
    assert.equal(s.status, 200);
    assert.equal(fakes.kimi.byModel('kimi-k2.5').length, k0 + 1, 'kimi was tried');
    const names = named(s.events).map((e) => e.event);
    assert.equal(names.filter((n) => n === 'message_start').length, 1, `one message_start: ${names.join(' ')}`);
    assert.ok(!names.includes('error'), names.join(' '));
    assert.equal(names.at(-1), 'message_stop');
    assert.equal(JSON.parse(named(s.events)[0].data).message.model, MODEL.qwen, 'the message came from qwen');
  });

  test('an error event mid-stream: the SDK raises it, the events before it arrived, the attempt is in the ledger', async () => {
    const id = rid('midfail');
    const client = new Anthropic({ baseURL: gw.url, apiKey: KEY, maxRetries: 0, timeout: 20000, defaultHeaders: { 'x-request-id': id } });
    const stream = client.messages.stream({ model: 'midfail', max_tokens: 32, messages: [user('go')] });
    const texts = [];
    stream.on('text', (t) => texts.push(t));
    await assert.rejects(stream.finalMessage(), (e) => {
      assert.ok(e instanceof Anthropic.APIError, `APIError, got ${e?.constructor?.name}: ${e}`);
      assert.equal(e.error?.error?.type, 'overloaded_error', JSON.stringify(e.error));
      return true;
    });
    assert.deepEqual(texts, ['partial']);
    const r = await rowsFor(id);
    assert.equal(r.length, 1, JSON.stringify(r));
    assert.match(r[0].status, /^error/, JSON.stringify(r[0]));
    assert.equal(r[0].deployment, dep('deepseek', 'deepseek-v4-pro'));
    assert.ok(r[0].prompt_tokens > 0, 'input counted');
    assert.ok(r[0].completion_tokens >= 1, 'the relayed text counted');
    assert.ok(Number(r[0].cost_pico) > 0, 'the attempt is charged');
  });

  test('a client that leaves mid-stream: the upstream request ends, one ledger row', async () => {
    const id = rid('leave');
    const n0 = fakes.deepseek.requests.length;
    const s = await chatStream(gw, { model: 'stall', max_tokens: 32, stream: true, messages: [user('go')] }, {
      path: '/v1/messages',
      headers: { ...HEADERS, 'x-request-id': id },
      onEvent: (ev) => (ev.event === 'content_block_delta' ? 'abort' : undefined),
    });
    assert.ok(s.aborted, 'the client left');
    const upstream = fakes.deepseek.requests[n0];
    assert.equal(upstream.body.model, 'deepseek-v4-flash');
    const closed = await Promise.race([upstream.socketClosed.then(() => true), sleep(10000).then(() => false)]);
    assert.ok(closed, 'the gateway hung up on the vendor');
    const r = await rowsFor(id);
    await sleep(300); // a second row, were one written, would be there by now
    assert.equal((await rows(id)).length, 1, JSON.stringify(r));
    assert.equal(r[0].status, 'error:cancelled', JSON.stringify(r[0]));
  });

  test('a cacheable request (temperature 0) relayed natively is not answered from the cache', async () => {
    const b = { model: 'n-kimi', max_tokens: 32, temperature: 0, messages: [user(`cache? ${crypto.randomUUID()}`)] };
    const n0 = fakes.kimi.requests.length;
    const first = await post(b);
    const second = await post(b);
    assert.equal(first.status, 200, first.text);
    assert.equal(second.status, 200, second.text);
    assert.equal(fakes.kimi.requests.length, n0 + 2, 'two upstream calls');
    assert.notEqual(second.headers['x-gateway-cache'], 'hit');
    assert.notEqual(first.json.id, second.json.id, 'each answer is the vendor\'s own');
    const s1 = await chatStream(gw, { ...b, stream: true }, { path: '/v1/messages', headers: HEADERS });
    const s2 = await chatStream(gw, { ...b, stream: true }, { path: '/v1/messages', headers: HEADERS });
    assert.equal(named(s1.events).at(-1).event, 'message_stop');
    assert.equal(named(s2.events).at(-1).event, 'message_stop');
    assert.equal(fakes.kimi.requests.length, n0 + 4, 'streamed: two more upstream calls');
  });

  for (const stream of [false, true]) {
    test(`a usage above the deployment's window (${stream ? 'streamed' : 'whole'}) is refused as implausible and counted at the estimate`, async () => {
      const id = rid(`huge-${stream}`);
      const { samples: before } = await scrape(gw);
      const invalid0 = metricValue(before, 'gateway_errors_total', { reason: 'upstream_usage_invalid' }) ?? 0;
      const b = { model: 'huge', max_tokens: 32, messages: [user('count me')], ...(stream ? { stream: true } : {}) };
      const res = stream
        ? await chatStream(gw, b, { path: '/v1/messages', headers: { ...HEADERS, 'x-request-id': id } })
        : await post(b, { 'x-request-id': id });
      if (stream) {
        // The content was relayed already: the stream ends in-band with an error, never message_stop.
        assert.equal(res.status, 200);
        const names = named(res.events).map((e) => e.event);
        assert.equal(names.at(-1), 'error', names.join(' '));
        assert.ok(!names.includes('message_stop'), names.join(' '));
      } else {
        assert.equal(res.status, 502, res.text);
        assert.equal(res.json.error.type, 'api_error');
        assert.match(res.json.error.message, /impossible usage/);
      }
      const r = await rowsFor(id);
      assert.equal(r.length, 1, JSON.stringify(r));
      assert.equal(r[0].usage_source, 'estimated', JSON.stringify(r[0]));
      const facts = catalog.deployments.find((x) => x.id === r[0].deployment);
      assert.ok(r[0].completion_tokens <= facts.context_window + facts.max_output, `completion ${r[0].completion_tokens} is an estimate`);
      assert.ok(r[0].completion_tokens < 1000, `completion ${r[0].completion_tokens}: the text relayed, not the claim`);
      const { samples: after } = await scrape(gw);
      assert.equal(metricValue(after, 'gateway_errors_total', { reason: 'upstream_usage_invalid' }), invalid0 + 1);
    });
  }
});

describe('a member only the native relay can carry', () => {
  test('a translated candidate is skipped (not tried, not counted), the native one gets the body as sent', async () => {
    const d0 = fakes.deepseek.requests.length;
    const k0 = fakes.kimi.requests.length;
    const body = rawBody('mixed', false);
    const res = await post(body);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['x-gateway-deployment'], dep('kimi'));
    assert.equal(res.headers['x-gateway-attempts'], '1');
    assert.equal(fakes.deepseek.requests.length, d0, 'the translated deployment was not called');
    assert.equal(fakes.kimi.requests[k0].rawBody.toString('utf8'), asForwarded(body, 'mixed', MODEL.kimi));
  });

  test('with only translated candidates it is refused by name, before any upstream call', async () => {
    const d0 = fakes.deepseek.requests.length;
    const res = await post(rawBody('translated-only', false));
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.type, 'error');
    assert.equal(res.json.error.type, 'invalid_request_error');
    assert.match(res.json.error.message, /'x_vendor_ext' is not a Messages API parameter/);
    for (const member of ['"container":{"id":"c1"}', '"mcp_servers":[{"type":"url","url":"https://x","name":"x"}]']) {
      const r = await post(`{"model":"translated-only","max_tokens":8,"messages":[{"role":"user","content":"hi"}],${member}}`);
      assert.equal(r.status, 400, `${member}: ${r.text}`);
      assert.equal(r.json.error.type, 'invalid_request_error');
    }
    assert.equal(fakes.deepseek.requests.length, d0);
    // The same request without it is translated and served.
    const ok = await post({ model: 'translated-only', max_tokens: 8, messages: [user('hi')] });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(fakes.deepseek.requests.at(-1).path.endsWith('/chat/completions'), true);
  });

  test('it is relayed natively streamed too, and a repeat at temperature 0 is not served from the cache', async () => {
    const k0 = fakes.kimi.requests.length;
    const body = `{"model":"mixed","max_tokens":16,"temperature":0,"x_vendor_ext":1,"messages":[{"role":"user","content":"${crypto.randomUUID()}"}],"stream":true}`;
    for (let i = 0; i < 2; i++) {
      const s = await rawStream(body);
      assert.equal(s.status, 200, s.raw);
      assert.equal(named(s.events).at(-1).event, 'message_stop');
    }
    assert.equal(fakes.kimi.requests.length, k0 + 2);
    assert.equal(fakes.kimi.requests[k0 + 1].rawBody.toString('utf8'), body.replace('"model":"mixed"', `"model":"${MODEL.kimi}"`));
  });
});
