// Prompt-cache affinity through the real gateway: requests sharing a long prompt prefix (the
// gateway hashes the first 4 KiB, from 1 KiB on) prefer the deployment that served that prefix
// recently, when its cached-input discount outweighs the price difference; not otherwise.
//
// Route `cached`: c1 (input 1.0, cached 0.1) and c2 (input 0.9, cached 0.09), cost-only objective:
// without affinity c2 is cheaper. A request whose prefix c1 served (c2 failed once) is priced on c1
// with ~1024 prefix tokens at the cached price, which makes c1 cheaper for that prefix only.
// Route `nocache`: n1 (input 1.0, no discount) and n2 (input 0.9): affinity to n1 changes nothing.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chat } from './lib/gateway.mjs';
import { startUpstream, startPolicyGateway, explain } from './lib/routing_upstream.mjs';

const POLICY = `
version: 1
name: affinity
catalog:
  - {ref: c1/m, context_window: 100000, price: {input: 1.0, cached_input: 0.1, output: 0}}
  - {ref: c2/m, context_window: 100000, price: {input: 0.9, cached_input: 0.09, output: 0}}
  - {ref: n1/m, context_window: 100000, price: {input: 1.0, cached_input: 1.0, output: 0}}
  - {ref: n2/m, context_window: 100000, price: {input: 0.9, cached_input: 0.9, output: 0}}
routes:
  - name: cached
    match: {model: cached}
    objective: {type: weighted, weights: {cost: 1, latency: 0, error_risk: 0}}
    candidates: [c1/m, c2/m]
  - name: nocache
    match: {model: nocache}
    objective: {type: weighted, weights: {cost: 1, latency: 0, error_risk: 0}}
    candidates: [n1/m, n2/m]
`;

const up = {};
let gw;
before(async () => {
  for (const n of ['c1', 'c2', 'n1', 'n2']) up[n] = await startUpstream({ name: n });
  const providers = Object.fromEntries(Object.keys(up).map((n) => [n, { type: 'openai_compatible', base_url: up[n].baseUrl }]));
  gw = await startPolicyGateway({ policy: POLICY, providers, routing: { policy_poll_ms: 0 } });
});
after(async () => {
  await Promise.all(Object.values(up).map((u) => u.close()));
  await gw?.stop();
});

// A long system prompt (the shared prefix) + a short, varying question.
const prefix = (tag) => `You are assistant ${tag}. ` + 'Follow the house style guide carefully. '.repeat(200);
const req = (model, tag, q) => ({ model, max_tokens: 1, messages: [{ role: 'system', content: prefix(tag) }, { role: 'user', content: q }] });

async function servedBy(model, tag, q) {
  const r = await chat(gw, req(model, tag, q));
  assert.equal(r.status, 200, r.text);
  return r.headers['x-gateway-deployment'];
}

// Makes `first` serve prefix `tag` once: the cheaper `second` fails that one request.
async function seedAffinity(model, tag, cheaper, expensive) {
  up[cheaper].set({ status: 500 });
  try {
    const r = await chat(gw, req(model, tag, 'seed'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-gateway-deployment'], `${expensive}@default/m`);
    assert.equal(r.headers['x-gateway-attempts'], '2');
  } finally {
    up[cheaper].set({ status: 200 });
  }
}

describe('prompt-cache affinity', () => {
  test('a prefix served by c1 keeps going to c1 (cached discount outweighs the 10% price gap); other prefixes go to the cheaper c2', async () => {
    assert.equal(await servedBy('cached', 'fresh-1', 'q1'), 'c2@default/m', 'no affinity: cheaper c2');
    await seedAffinity('cached', 'seeded', 'c2', 'c1');
    const ex = await explain(gw, req('cached', 'seeded', 'another question'));
    const c1 = ex.candidates.find((c) => c.deployment === 'c1@default/m');
    assert.equal(ex.plan[0], 'c1@default/m', JSON.stringify(ex.candidates));
    assert.equal(c1.affinity, true);
    assert.ok(c1.est_cached_tokens >= 256, `prefix priced as cached input: ${c1.est_cached_tokens} tokens`);
    for (let i = 0; i < 3; i++) assert.equal(await servedBy('cached', 'seeded', `question ${i}`), 'c1@default/m', `same prefix, request ${i}`);
    assert.equal(await servedBy('cached', 'fresh-2', 'q2'), 'c2@default/m', 'a different prefix: cheaper c2');
  });

  test('no cache discount: affinity does not override a cheaper deployment', async () => {
    await seedAffinity('nocache', 'seeded-n', 'n2', 'n1');
    const ex = await explain(gw, req('nocache', 'seeded-n', 'again'));
    assert.equal(ex.candidates.find((c) => c.deployment === 'n1@default/m').affinity, true);
    assert.equal(ex.plan[0], 'n2@default/m', JSON.stringify(ex.candidates));
    assert.equal(await servedBy('nocache', 'seeded-n', 'again'), 'n2@default/m');
  });
});
