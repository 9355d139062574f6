// Response cache: `cache: {enabled: true}` (in memory), two tenants with keys.
//
// The upstream is a programmable fake (lib/routing_upstream.mjs) behind a priced policy catalog
// deployment `pa/m` (input 10, output 20 USD per 1M tokens; usage 1000 + 200 -> $0.014). Every upstream
// answer carries a fresh random id, so a byte-identical repeat proves the answer came from the cache.
// Contract tested: temperature 0 (or header `x-gateway-cache: on`) is cacheable; a hit is served
// byte-identically (non-stream body; stream data events), with `x-gateway-cache: hit`,
// `x-gateway-cost-usd` 0 (and the trailing `: x-gateway-cost-usd:` comment before `data: [DONE]`),
// no upstream call; lookups counted by gateway_cache_lookups_total{result}; tenants never share.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startGateway, defaultConfig, tmpDir, chat, chatStream, userMsg } from './lib/gateway.mjs';
import { startUpstream, pricedPolicy } from './lib/routing_upstream.mjs';
import { scrape, metricValue } from './lib/prometheus.mjs';

const USAGE = { prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200 };
const POLICY = pricedPolicy('state-cache');
const KEY1 = 'gwk_cache_tenant_one_' + crypto.randomBytes(8).toString('hex');
const KEY2 = 'gwk_cache_tenant_two_' + crypto.randomBytes(8).toString('hex');
const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');

let up, gw;
before(async () => {
  up = await startUpstream({ name: 'pa', usage: USAGE });
  const dir = tmpDir('gw-state-cache-');
  fs.writeFileSync(path.join(dir, 'policy.yaml'), POLICY);
  const c = defaultConfig();
  delete c.models;
  c.providers = { pa: { type: 'openai_compatible', base_url: up.baseUrl } };
  c.policy = path.join(dir, 'policy.yaml');
  c.routing = { policy_poll_ms: 0 };
  c.tenants = { one: { keys: [{ id: 'k1', sha256: sha(KEY1) }] }, two: { keys: [{ id: 'k2', sha256: sha(KEY2) }] } };
  c.cache = { enabled: true };
  gw = await startGateway({ config: c });
});
after(async () => {
  await up?.close();
  await gw?.stop();
});

const H1 = { authorization: `Bearer ${KEY1}` };
const H2 = { authorization: `Bearer ${KEY2}` };
const body = (text, extra = {}) => ({ model: 'priced', messages: userMsg(text), max_tokens: 50, ...extra });
const upCalls = () => up.requests.length;
const dataEvents = (s) => s.events.filter((e) => e.data !== null).map((e) => e.data);
const costComment = (s) => s.events.flatMap((e) => e.comments).find((c) => c.startsWith('x-gateway-cost-usd:'));
let hits = 0;
let misses = 0;

describe('response cache', () => {
  test('non-stream, temperature 0: second request is a byte-identical hit, cost 0, one upstream call', async () => {
    const n0 = upCalls();
    const b = body('cache me', { temperature: 0 });
    const a = await chat(gw, b, { headers: H1 });
    assert.equal(a.status, 200, a.text);
    assert.equal(a.headers['x-gateway-cache'], 'miss');
    assert.equal(Number(a.headers['x-gateway-cost-usd']), 0.014);
    misses++;
    const h = await chat(gw, b, { headers: H1 });
    assert.equal(h.status, 200, h.text);
    assert.equal(h.headers['x-gateway-cache'], 'hit');
    hits++;
    assert.equal(h.text, a.text, 'byte-identical body');
    assert.ok(h.headers['x-gateway-cost-usd'] !== undefined, 'cost header on a hit');
    assert.equal(Number(h.headers['x-gateway-cost-usd']), 0, `a hit costs nothing: ${h.headers['x-gateway-cost-usd']}`);
    assert.equal(upCalls() - n0, 1, 'the upstream saw one call');
  });

  test('stream, temperature 0: the hit replays the identical sequence of data events, cost 0', async () => {
    const n0 = upCalls();
    const b = body('cache my stream', { temperature: 0, stream: true });
    const a = await chatStream(gw, b, { headers: H1 });
    assert.equal(a.status, 200);
    assert.ok(a.done, 'first stream complete');
    assert.equal(a.headers['x-gateway-cache'], 'miss');
    misses++;
    const h = await chatStream(gw, b, { headers: H1 });
    assert.equal(h.status, 200);
    assert.equal(h.headers['x-gateway-cache'], 'hit');
    hits++;
    assert.ok(h.done, 'hit stream ends with [DONE]');
    assert.match(String(h.headers['content-type']), /text\/event-stream/);
    assert.deepEqual(dataEvents(h), dataEvents(a), 'identical data events, [DONE] included');
    assert.equal(upCalls() - n0, 1, 'the upstream saw one call');
    assert.equal(Number(costComment(a).split(':')[1]), 0.014, 'miss carries its cost comment');
    const c = costComment(h);
    assert.ok(c, `hit carries a cost comment: ${h.raw.slice(-300)}`);
    assert.equal(Number(c.split(':')[1]), 0);
    assert.equal(Number(h.headers['x-gateway-cost-usd']), 0);
  });

  test('stream hit: the cost comment comes before data: [DONE], as on a miss', async () => {
    // Clients (SDKs) stop reading at [DONE]; anything after it is never seen.
    const b = body('cache my stream', { temperature: 0, stream: true });
    const h = await chatStream(gw, b, { headers: H1 });
    assert.equal(h.headers['x-gateway-cache'], 'hit');
    hits++;
    const order = h.order.filter((o) => o !== 'chunk');
    console.log(`# stream hit: non-chunk events in order: ${order.join(',')}; tail: ${JSON.stringify(h.raw.slice(-80))}`);
    assert.equal(h.afterDone.length, 0);
    const idxComment = h.events.findIndex((e) => e.comments.some((c) => c.startsWith('x-gateway-cost-usd:')));
    const idxDone = h.events.findIndex((e) => e.data === '[DONE]');
    assert.ok(idxComment >= 0 && idxComment < idxDone, `cost comment (event ${idxComment}) before [DONE] (event ${idxDone})`);
  });

  test('temperature > 0 is not cached; header x-gateway-cache: on opts in', async () => {
    let n0 = upCalls();
    const b = body('creative', { temperature: 0.7 });
    const a = await chat(gw, b, { headers: H1 });
    const a2 = await chat(gw, b, { headers: H1 });
    assert.equal(a.status, 200);
    assert.equal(a2.status, 200);
    assert.notEqual(a2.headers['x-gateway-cache'], 'hit');
    assert.notEqual(a2.text, a.text, 'a fresh answer');
    assert.equal(upCalls() - n0, 2, 'both went upstream');
    assert.equal(Number(a2.headers['x-gateway-cost-usd']), 0.014);

    n0 = upCalls();
    const o = await chat(gw, body('creative opted in', { temperature: 0.7 }), { headers: { ...H1, 'x-gateway-cache': 'on' } });
    assert.equal(o.headers['x-gateway-cache'], 'miss');
    misses++;
    const o2 = await chat(gw, body('creative opted in', { temperature: 0.7 }), { headers: { ...H1, 'x-gateway-cache': 'on' } });
    assert.equal(o2.headers['x-gateway-cache'], 'hit');
    hits++;
    assert.equal(o2.text, o.text);
    assert.equal(upCalls() - n0, 1);
  });

  test('different tenants never share entries', async () => {
    const n0 = upCalls();
    const b = body('cache me', { temperature: 0 }); // tenant one has this cached (first test)
    const t2 = await chat(gw, b, { headers: H2 });
    assert.equal(t2.status, 200);
    assert.equal(t2.headers['x-gateway-cache'], 'miss', 'tenant two does not see tenant one\'s entry');
    misses++;
    assert.equal(upCalls() - n0, 1);
    const t1 = await chat(gw, b, { headers: H1 });
    assert.equal(t1.headers['x-gateway-cache'], 'hit');
    hits++;
    const t2b = await chat(gw, b, { headers: H2 });
    assert.equal(t2b.headers['x-gateway-cache'], 'hit');
    hits++;
    assert.equal(t2b.text, t2.text);
    assert.notEqual(t1.text, t2.text, 'each tenant got its own upstream answer');
    assert.equal(upCalls() - n0, 1);
  });

  test('gateway_cache_lookups_total{result} counts every hit and miss', async () => {
    const { samples } = await scrape(gw);
    const h = metricValue(samples, 'gateway_cache_lookups_total', { result: 'hit' });
    const m = metricValue(samples, 'gateway_cache_lookups_total', { result: 'miss' });
    console.log(`# cache lookups: hit=${h} miss=${m} (expected ${hits}/${misses})`);
    assert.equal(h, hits);
    assert.equal(m, misses);
  });
});
