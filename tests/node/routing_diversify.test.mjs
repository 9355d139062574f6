// Diversification through the real gateway (policies/README.md, *Diversification*): a vendor share
// cap and canary traffic at work over a few hundred requests, against fake OpenAI-compatible
// upstreams (each instance is a vendor of its own).
//
// What is asserted and why it is deterministic:
//   cap: requests are sent one at a time and every upstream answers, so the order follows the rule
//     exactly: the first 20 (min_requests) go to the cheapest, `da`; from then on `da` is demoted
//     while its share of the window is >= 0.5. After 300 requests its share is 0.5 +- 0.01, `dc`
//     (the third) never answers, and /metrics and explain show the same share.
//   canary 0.1 to each of two fall-backs over 300 requests: each gets 30 expected (sigma 5.2); the
//     bound 8..60 fails with probability < 1e-4 for a fair draw. Exact: every request counted by
//     gateway_canary_requests_total is one a fall-back answered first, and vice versa.
//   failover: once `cb` fails, a canary to it is answered by `ca` on attempt 2 (the normal order);
//     at most 200 requests are sent to see one (0.9^200 < 1e-9 that none is a canary to cb).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chat, userMsg, run, GATEWAY_BIN } from './lib/gateway.mjs';
import { startUpstream, startPolicyGateway, explain } from './lib/routing_upstream.mjs';
import { scrape, metricValue } from './lib/prometheus.mjs';

const entry = (ref, price) =>
  `  - {ref: ${ref}/m, context_window: 100000, price: {input: ${price}, output: ${price}}, latency_prior: {ttft_ms: 20, tokens_per_second: 1000}}`;

const POLICY = `
version: 1
name: diversify
catalog:
${entry('da', 1)}
${entry('db', 2)}
${entry('dc', 3)}
${entry('ca', 1)}
${entry('cb', 2)}
${entry('cc', 3)}
routes:
  - name: cap
    match: {model: cap-test}
    max_share: {vendor: 0.5, window: 10m, min_requests: 20}
    candidates: [da/m, db/m, dc/m]
  - name: canary
    match: {model: canary-test}
    canary: 0.1
    max_attempts: 3
    candidates: [ca/m, cb/m, cc/m]
`;

const NAMES = ['da', 'db', 'dc', 'ca', 'cb', 'cc'];
const up = {};
let gw;

before(async () => {
  for (const n of NAMES) up[n] = await startUpstream({ name: n });
  const providers = {};
  for (const n of NAMES) providers[n] = { type: 'openai_compatible', base_url: up[n].baseUrl };
  gw = await startPolicyGateway({ policy: POLICY, providers, routing: { policy_poll_ms: 0 } });
});

after(async () => {
  await Promise.all(Object.values(up).map((u) => u.close()));
  await gw?.stop();
});

const body = (model) => ({ model, messages: userMsg('spread me'), max_tokens: 16 });
async function send(model) {
  const r = await chat(gw, body(model));
  assert.equal(r.status, 200, `${model}: ${r.status} ${r.text.slice(0, 300)}`);
  return { dep: r.headers['x-gateway-deployment'], attempts: Number(r.headers['x-gateway-attempts']) };
}

describe('max_share: {vendor: 0.5}', () => {
  test('300 requests: the cheapest vendor answers half, the cap shows in /metrics and explain', async () => {
    const seen = {};
    for (let i = 0; i < 300; i++) {
      const { dep, attempts } = await send('cap-test');
      assert.equal(attempts, 1);
      if (i < 20) assert.equal(dep, 'da@default/m', `request ${i}: below min_requests the cap waits`);
      seen[dep] = (seen[dep] ?? 0) + 1;
    }
    const share = (seen['da@default/m'] ?? 0) / 300;
    assert.ok(Math.abs(share - 0.5) <= 0.01, `da share ${share}: ${JSON.stringify(seen)}`);
    // A key at its cap is demoted too ("at or above"): when da and db both sit at exactly 0.5 the
    // third vendor answers, which happens only on those ties.
    assert.ok((seen['dc@default/m'] ?? 0) <= 3, `the cap moves traffic to the next best, bar ties: ${JSON.stringify(seen)}`);

    const { text, samples } = await scrape(gw);
    const gauge = metricValue(samples, 'gateway_route_share', { route: 'cap', kind: 'vendor', key: 'da' });
    assert.ok(Math.abs(gauge - share) < 1e-9, `gateway_route_share ${gauge} vs observed ${share}`);
    assert.match(text, /^# TYPE gateway_route_share gauge$/m);
    const file = path.join(gw.policyDir, 'metrics.txt');
    fs.writeFileSync(file, text);
    const pc = await run('sh', ['-c', `promtool check metrics < '${file}'`]);
    assert.equal(pc.code, 0, `promtool check metrics failed:\n${pc.stdout}${pc.stderr}`);

    const ex = await explain(gw, body('cap-test'));
    const d = ex.diversify;
    assert.equal(d.caps_active, true);
    assert.equal(d.window_requests, 300);
    const reading = d.shares.find((s) => s.kind === 'vendor' && s.key === 'da');
    assert.equal(reading.cap, 0.5);
    assert.ok(Math.abs(reading.share - share) < 1e-6);
    if (share >= 0.5) {
      assert.ok(d.notes.some((n) => n.startsWith(`vendor da at ${share.toFixed(2)} share over cap 0.5: demoted da@default/m`)), JSON.stringify(d));
      assert.equal(ex.plan[0], 'db@default/m');
    } else {
      assert.equal(ex.plan[0], 'da@default/m');
    }
  });
});

describe('canary: 0.1', () => {
  test('300 requests: each fall-back answers its share first, counted per deployment', async () => {
    const seen = {};
    for (let i = 0; i < 300; i++) {
      const { dep, attempts } = await send('canary-test');
      assert.equal(attempts, 1);
      seen[dep] = (seen[dep] ?? 0) + 1;
    }
    const { samples } = await scrape(gw);
    for (const fb of ['cb@default/m', 'cc@default/m']) {
      const n = seen[fb] ?? 0;
      assert.ok(n >= 8 && n <= 60, `${fb} was primary ${n} times of 300: ${JSON.stringify(seen)}`);
      assert.equal(metricValue(samples, 'gateway_canary_requests_total', { route: 'canary', deployment: fb }), n);
    }
    assert.equal(metricValue(samples, 'gateway_canary_requests_total', { route: 'canary', deployment: 'ca@default/m' }), undefined);
  });

  test('a canary to a failing fall-back is answered by the normal order', async () => {
    up.cb.set({ status: 500 });
    const before = up.cb.requests.length;
    let answered = null;
    for (let i = 0; i < 200 && up.cb.requests.length === before; i++) answered = await send('canary-test');
    up.cb.set({ status: 200 });
    assert.ok(up.cb.requests.length > before, 'no canary reached cb in 200 requests');
    assert.deepEqual(answered, { dep: 'ca@default/m', attempts: 2 });
  });
});

describe('gateway check', () => {
  test('refuses an out-of-range canary and warns about a cap one vendor can never satisfy', async () => {
    const bad = path.join(gw.policyDir, 'bad-canary.yaml');
    fs.writeFileSync(bad, 'version: 1\nroutes:\n  - name: r\n    match: {model: m}\n    canary: 0.9\n    candidates: [deepseek/deepseek-flash, qwen/qwen-flash]\n');
    const r = await run(GATEWAY_BIN, ['check', bad]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /bad-canary\.yaml:5:13: canary share must be a number in \[0, 0\.5\], got '0\.9'/);

    const one = path.join(gw.policyDir, 'one-vendor.yaml');
    fs.writeFileSync(one, 'version: 1\nroutes:\n  - name: r\n    match: {model: m}\n    max_share: {vendor: 0.5}\n    candidates: ["deepseek@*/*"]\n');
    const w = await run(GATEWAY_BIN, ['check', one]);
    assert.equal(w.code, 0, w.stdout + w.stderr);
    assert.match(w.stdout + w.stderr, /warning: .*route 'r': max_share\.vendor 0\.5 can never be satisfied: the candidates have 1 vendor \(deepseek\)/);
  });
});
