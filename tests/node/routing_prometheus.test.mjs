// Fleet-wide routing figures from a real Prometheus server.
//
// Three gateway replicas run the same policy: deployments d1@default/m and d2@default/m, equal
// prices, weighted objective with a latency weight (so the lower expected latency wins; on a tie
// the candidate order puts d1 first).
//   A: routing.prometheus_url = the test's Prometheus, prometheus_interval_ms 1000. d1 -> fast fake.
//   B: no prometheus_url. d1 -> a SLOW fake (400 ms before headers). d2 -> fast fake.
//   C: control, exactly A's config without prometheus_url, same traffic as A. Not scraped.
// Prometheus (Debian package, /usr/bin/prometheus) scrapes A and B every second.
//
// Only B ever sees d1 slow. A must keep d1 while the fleet figures are only its own (feed already
// running), then move to d2 once Prometheus has B's figures (attempt-weighted mean over the fleet),
// while C, with the same local history as A, keeps d1.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chat, userMsg, sleep } from './lib/gateway.mjs';
import { startUpstream, startPolicyGateway, explain } from './lib/routing_upstream.mjs';
import { startPrometheus, freePort, scrape, metricValue } from './lib/prometheus.mjs';

const D1 = 'd1@default/m';
const D2 = 'd2@default/m';
const SLOW_MS = 400;

const POLICY = `
version: 1
name: fleet
catalog:
  - {ref: d1/m, context_window: 100000, price: {input: 1, output: 1}, latency_prior: {ttft_ms: 100, tokens_per_second: 1000}}
  - {ref: d2/m, context_window: 100000, price: {input: 1, output: 1}, latency_prior: {ttft_ms: 100, tokens_per_second: 1000}}
routes:
  - name: fleet
    match: {model: m}
    objective: {type: weighted, weights: {cost: 1, latency: 1, error_risk: 2}}
    candidates: [d1/m, d2/m]
`;

const up = {};
let A, B, C, prom;
const body = { model: 'm', messages: userMsg('fleet'), max_tokens: 16 };

before(async () => {
  up.fast1 = await startUpstream({ name: 'fast-d1' });
  up.slow1 = await startUpstream({ name: 'slow-d1', delayMs: SLOW_MS });
  up.fast2 = await startUpstream({ name: 'fast-d2' });
  const promPort = await freePort();
  const prov = (d1) => ({ d1: { type: 'openai_compatible', base_url: d1.baseUrl }, d2: { type: 'openai_compatible', base_url: up.fast2.baseUrl } });
  A = await startPolicyGateway({
    policy: POLICY,
    providers: prov(up.fast1),
    routing: { policy_poll_ms: 0, prometheus_url: `http://127.0.0.1:${promPort}`, prometheus_interval_ms: 1000 },
  });
  B = await startPolicyGateway({ policy: POLICY, providers: prov(up.slow1), routing: { policy_poll_ms: 0 } });
  C = await startPolicyGateway({ policy: POLICY, providers: prov(up.fast1), routing: { policy_poll_ms: 0 } });
  prom = await startPrometheus({ port: promPort, targets: [`127.0.0.1:${A.port}`, `127.0.0.1:${B.port}`], scrapeIntervalMs: 1000 });
});

after(async () => {
  await prom?.stop();
  await Promise.all(Object.values(up).map((u) => u.close()));
  await Promise.all([A, B, C].filter(Boolean).map((g) => g.stop()));
});

async function waitFor(what, fn, timeoutMs, stepMs = 200) {
  const t0 = performance.now();
  for (;;) {
    const v = await fn();
    if (v) return { value: v, ms: performance.now() - t0 };
    if (performance.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(stepMs);
  }
}

const feedOk = async (gw) => metricValue((await scrape(gw)).samples, 'gateway_prometheus_feed_total', { result: 'ok' }) ?? 0;
const cand = (ex, id) => ex.candidates.find((c) => c.deployment === id);

describe('routing on fleet figures from Prometheus', () => {
  test('latency seen only by replica B changes the routing of replica A (and not of the control C)', async () => {
    // Same local history on A and C: three fast answers from d1.
    for (const gw of [A, C])
      for (let i = 0; i < 3; i++) {
        const r = await chat(gw, body);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers['x-gateway-deployment'], D1, 'd1 first on a tie and when fast');
      }

    // Prometheus has scraped A's figures and A's feed has applied them at least once since:
    // the fleet view is then A's own view, and A keeps d1.
    await waitFor('Prometheus has A\'s d1 attempts', async () => {
      const r = await prom.query(`routing_attempts_total{deployment="${D1}"}`);
      return r.some((s) => Number(s.value[1]) >= 3);
    }, 10000);
    const okBefore = await feedOk(A);
    await waitFor('two more successful feed polls on A', async () => (await feedOk(A)) >= okBefore + 2, 8000);
    let exA = await explain(A, body);
    assert.equal(exA.plan[0], D1, `before B's traffic A prefers d1: ${JSON.stringify(exA.candidates)}`);
    assert.equal(cand(exA, D1).external_stats, true, 'A routes on figures from Prometheus (external_stats) once the feed runs');
    assert.ok(cand(exA, D1).ttft_ms < 50, `fleet d1 TTFT is A's own fast figure: ${cand(exA, D1).ttft_ms} ms`);
    const m = await scrape(A);
    assert.equal(metricValue(m.samples, 'routing_external_active', { deployment: D1 }), 1, 'routing_external_active{d1} = 1 on A');

    // B alone sees d1 slow: its first request measures 400 ms on d1, after which B itself prefers d2.
    for (let i = 0; i < 6; i++) {
      const r = await chat(B, body);
      assert.equal(r.status, 200, r.text);
    }
    const bm = await scrape(B);
    const bD1 = metricValue(bm.samples, 'routing_attempts_total', { deployment: D1 });
    const bTtft = metricValue(bm.samples, 'routing_ttft_seconds_ewma', { deployment: D1 });
    assert.ok(bD1 >= 1 && bTtft >= SLOW_MS / 1000 * 0.9, `B measured d1 slow (attempts ${bD1}, ttft ewma ${bTtft} s)`);
    assert.ok(metricValue(bm.samples, 'routing_attempts_total', { deployment: D2 }) >= 1, 'B used d2');
    const tB = performance.now();

    // A moves to d2 once a scrape of B and a feed poll have happened (1 s + 1 s + query time).
    const moved = await waitFor('A prefers d2', async () => {
      const ex = await explain(A, body);
      return ex.plan[0] === D2 ? ex : null;
    }, 12000, 100);
    console.log(`# prometheus: A switched to d2 ${(moved.ms / 1000).toFixed(1)} s after B's traffic ended`);
    exA = moved.value;
    const d1 = cand(exA, D1);
    assert.equal(d1.external_stats, true);
    // Attempt-weighted fleet TTFT of d1: (3 x fast + bD1 x ~400 ms) / (3 + bD1) > 50 ms.
    assert.ok(d1.ttft_ms > 50, `A's d1 TTFT now carries B's slow figure: ${d1.ttft_ms} ms`);
    assert.ok(moved.ms <= 10000, `A moved ${moved.ms} ms after B's traffic (bound 10 s)`);
    // The figure A uses is the attempt-weighted fleet mean, as Prometheus computes it.
    const q = await prom.query(`sum by (deployment) (routing_ttft_seconds_ewma * routing_attempts_total) / sum by (deployment) (routing_attempts_total)`);
    const fleetD1 = Number(q.find((x) => x.metric.deployment === D1)?.value[1]) * 1000;
    const exNow = cand(await explain(A, body), D1);
    console.log(`# prometheus: fleet d1 TTFT ${fleetD1.toFixed(1)} ms (PromQL), A routes on ${exNow.ttft_ms.toFixed(1)} ms`);
    assert.ok(Math.abs(exNow.ttft_ms - fleetD1) <= 0.05 * fleetD1 + 1, `A's d1 TTFT ${exNow.ttft_ms} ms = fleet PromQL ${fleetD1} ms`);
    const r = await chat(A, body);
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-gateway-deployment'], D2, 'A really sends to d2 now');
    assert.equal(up.slow1.requests.length, bD1, 'only B ever reached the slow fake');

    // Control: C has exactly A's local history and no fleet feed: still d1.
    const exC = await explain(C, body);
    assert.equal(exC.plan[0], D1, `control replica C still prefers d1: ${JSON.stringify(exC.candidates)}`);
    assert.equal(cand(exC, D1).external_stats, false);
    const rc = await chat(C, body);
    assert.equal(rc.headers['x-gateway-deployment'], D1);
    console.log(`# prometheus: total ${((performance.now() - tB) / 1000).toFixed(1)} s from B's traffic to the end`);
  });

  test('Prometheus down: the feed failure is counted and A keeps serving (routing on its last or local figures)', async () => {
    const err0 = metricValue((await scrape(A)).samples, 'gateway_prometheus_feed_total', { result: 'error' }) ?? 0;
    await prom.stop();
    const ms = await waitFor('feed error counted', async () => (metricValue((await scrape(A)).samples, 'gateway_prometheus_feed_total', { result: 'error' }) ?? 0) > err0, 6000);
    console.log(`# prometheus: feed failure counted ${(ms.ms / 1000).toFixed(1)} s after Prometheus stopped`);
    assert.match(A.stderr, /Prometheus feed failed/);
    for (let i = 0; i < 3; i++) {
      const r = await chat(A, body);
      assert.equal(r.status, 200, r.text);
    }
    assert.equal(A.exited, null);
  });
});
