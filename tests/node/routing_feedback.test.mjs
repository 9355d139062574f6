// Routing feedback through the real gateway: live figures move traffic away from a deployment
// that becomes slow or starts failing, and bring it back after it recovers.
//
// Two pairs of fake OpenAI-compatible upstreams (lib/routing_upstream.mjs, behaviour switchable at
// run time), each pair behind one route of a cheapest_within_slo policy: the `a` deployment is
// cheaper, so it is primary while it meets the TTFT SLO and its circuit is closed.
//
// Figures from routing/live_stats.{h,cpp} and policies/README.md these tests rely on:
//   EWMA alpha 0.2; figures not refreshed decay toward the prior as tau/(tau+age), tau = 120 s;
//   breaker: 5 consecutive faults open the circuit for 10 s, then one half-open probe; a
//   successful probe closes it. Neither is configurable in the policy, so the failure test waits
//   the real 10 s open period.
//
// Bounds asserted (derivations next to each test):
//   slow:    traffic leaves `sa` after at most 15 slow requests; it returns within 12 s of the
//            switch once `sa` is fast again (decay of its TTFT under the SLO, expected ~4-6 s).
//   failing: `fa` is tried by at most 5 requests (each still answered by `fb`, attempts 2), then
//            skipped (circuit open); the half-open probe comes back 9.5-13 s after the circuit
//            opened, succeeds, and `fa` is primary again.
//   failed probe: a probe that fails re-opens the circuit for 20 s (doubled); no second probe.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chat, chatStream, userMsg, sleep } from './lib/gateway.mjs';
import { startUpstream, startPolicyGateway, explain } from './lib/routing_upstream.mjs';
import { scrape, metricValue } from './lib/prometheus.mjs';

// The SLO and the slow delay are large next to what a busy 2-core machine adds to a fast answer
// (tens of ms): a fast deployment stays far below the SLO, a slow one far above a fast one.
const SLO_MS = 800;
const PRIOR_TTFT_MS = 20;
const SLOW_MS = 920;

const POLICY = `
version: 1
name: feedback
catalog:
  - {ref: fa/m, context_window: 100000, price: {input: 1, output: 1}, latency_prior: {ttft_ms: ${PRIOR_TTFT_MS}, tokens_per_second: 1000}}
  - {ref: fb/m, context_window: 100000, price: {input: 2, output: 2}, latency_prior: {ttft_ms: ${PRIOR_TTFT_MS}, tokens_per_second: 1000}}
  - {ref: ga/m, context_window: 100000, price: {input: 1, output: 1}, latency_prior: {ttft_ms: ${PRIOR_TTFT_MS}, tokens_per_second: 1000}}
  - {ref: gb/m, context_window: 100000, price: {input: 2, output: 2}, latency_prior: {ttft_ms: ${PRIOR_TTFT_MS}, tokens_per_second: 1000}}
  - {ref: ra/m, context_window: 100000, price: {input: 1, output: 1}, latency_prior: {ttft_ms: ${PRIOR_TTFT_MS}, tokens_per_second: 1000}}
  - {ref: rb/m, context_window: 100000, price: {input: 2, output: 2}, latency_prior: {ttft_ms: ${PRIOR_TTFT_MS}, tokens_per_second: 1000}}
  - {ref: broke@global/m, context_window: 100000, price: {input: 1, output: 1}}
  - {ref: ta/m, context_window: 100000, price: {input: 1, output: 1}, latency_prior: {ttft_ms: ${PRIOR_TTFT_MS}, tokens_per_second: 1000}}
  - {ref: tb/m, context_window: 100000, price: {input: 2, output: 2}, latency_prior: {ttft_ms: ${PRIOR_TTFT_MS}, tokens_per_second: 1000}}
  - {ref: sa/m, context_window: 100000, price: {input: 1, output: 1}, latency_prior: {ttft_ms: ${PRIOR_TTFT_MS}, tokens_per_second: 1000}}
  - {ref: sb/m, context_window: 100000, price: {input: 2, output: 2}, latency_prior: {ttft_ms: ${PRIOR_TTFT_MS}, tokens_per_second: 1000}}
routes:
  - name: failing
    match: {model: fail-test}
    objective: {type: cheapest_within_slo, ttft_slo_ms: ${SLO_MS}}
    max_attempts: 2
    candidates: [fa/m, fb/m]
  - name: probe-fail
    match: {model: probe-test}
    objective: {type: cheapest_within_slo, ttft_slo_ms: ${SLO_MS}}
    max_attempts: 2
    candidates: [ga/m, gb/m]
  - name: cooldown
    match: {model: cooldown-test}
    objective: {type: cheapest_within_slo, ttft_slo_ms: ${SLO_MS}}
    max_attempts: 2
    candidates: [ra/m, rb/m]
  - name: balance
    match: {model: balance-test}
    objective: ordered
    max_attempts: 2
    candidates: [broke@global/m, rb/m]
  - name: slow-stream
    match: {model: slow-stream-test}
    objective: {type: cheapest_within_slo, ttft_slo_ms: ${SLO_MS}}
    max_attempts: 2
    candidates: [ta/m, tb/m]
  - name: slow
    match: {model: slow-test}
    objective: {type: cheapest_within_slo, ttft_slo_ms: ${SLO_MS}}
    max_attempts: 2
    candidates: [sa/m, sb/m]
`;

const up = {};
let gw;

before(async () => {
  for (const n of ['fa', 'fb', 'ga', 'gb', 'ra', 'rb', 'broke', 'sa', 'sb', 'ta', 'tb']) up[n] = await startUpstream({ name: n });
  const providers = {};
  for (const n of Object.keys(up)) providers[n] = { type: 'openai_compatible', base_url: up[n].baseUrl };
  // A DeepSeek-type instance (402 = out of balance in DeepSeek's dialect).
  providers.broke = { type: 'deepseek', api_key_env: 'DEEPSEEK_API_KEY', base_urls: { global: up.broke.origin } };
  gw = await startPolicyGateway({ policy: POLICY, providers, env: { DEEPSEEK_API_KEY: 'sk-test' }, routing: { policy_poll_ms: 0 }, upstream: { first_byte_timeout_ms: 5000, stream_idle_timeout_ms: 5000, total_timeout_ms: 15000 } });
});

after(async () => {
  await Promise.all(Object.values(up).map((u) => u.close()));
  await gw?.stop();
});

const body = (model) => ({ model, messages: userMsg('route me'), max_tokens: 16 });
async function send(model) {
  const r = await chat(gw, body(model));
  assert.equal(r.status, 200, `${model}: client must never see a failure: ${r.status} ${r.text.slice(0, 300)}`);
  return { dep: r.headers['x-gateway-deployment'], attempts: Number(r.headers['x-gateway-attempts']), res: r };
}

describe('latency feedback (cheapest_within_slo, ttft_slo_ms 800)', () => {
  test('a deployment that turns slow loses traffic within 15 requests and gets it back after it recovers', async () => {
    // Warm-up: sa (cheaper, fast) is primary.
    for (let i = 0; i < 3; i++) assert.equal((await send('slow-test')).dep, 'sa@default/m');

    // sa turns slow (920 ms before headers). Its TTFT EWMA climbs 0.2 of the way per request:
    // v_k = 920 - 918*0.8^k crosses 800 ms at k = 10 (k = 9 gives 797). Bound: 15.
    up.sa.set({ delayMs: SLOW_MS });
    let slowRequests = 0;
    let moved = null;
    let sentAt = null;
    for (let i = 0; i < 30; i++) {
      sentAt = performance.now();
      const r = await send('slow-test');
      if (r.dep === 'sa@default/m') {
        slowRequests++;
        continue;
      }
      assert.equal(r.dep, 'sb@default/m');
      assert.equal(r.attempts, 1, 'moved by the objective, not by a fail-over');
      moved = performance.now();
      break;
    }
    console.log(`# slow: ${slowRequests} slow requests to sa before traffic moved to sb`);
    assert.ok(moved, `traffic never left the slow deployment (${slowRequests} requests)`);
    assert.ok(slowRequests >= 2 && slowRequests <= 15, `moved after ${slowRequests} slow requests (expected 2..15)`);
    const ex = await explain(gw, body('slow-test'));
    const sa = ex.candidates.find((c) => c.deployment === 'sa@default/m');
    // sa's figure was above the SLO when traffic moved and has only decayed since (toward the 20 ms
    // prior, time constant 120 s), so it is at least 20 + 180 * 120 / (120 + t) after t seconds,
    // t counted from before that decision. Whether it is still above the SLO depends on how far the
    // last slow request overshot: what explain says must merely agree with itself.
    const t = (performance.now() - sentAt) / 1000;
    const floor = 20 + ((SLO_MS - 20) * 120) / (120 + t);
    assert.ok(sa.ttft_ms >= floor - 0.01, `sa live TTFT ${sa.ttft_ms} ms >= ${floor.toFixed(3)} ms (above the SLO at the move, decayed for ${t.toFixed(2)} s)`);
    assert.equal(sa.meets_slo, sa.ttft_ms <= SLO_MS, `explain's meets_slo agrees with its TTFT: ${JSON.stringify(sa)}`);
    assert.equal(ex.plan[0], sa.meets_slo ? 'sa@default/m' : 'sb@default/m', JSON.stringify(ex));

    // sa recovers. Nobody sends it traffic, so its figure only decays toward the 20 ms prior:
    // ttft(age) = 20 + (V-20)*120/(120+age) with V in (800, 824] when it lost the SLO, so it meets
    // the SLO again after at most 120*24/780 = 3.7 s (+ jitter); asserted: within 12 s.
    up.sa.set({ delayMs: 0 });
    const saBefore = up.sa.requests.length;
    let back = null;
    while (performance.now() - moved < 15000) {
      const r = await send('slow-test');
      if (r.dep === 'sa@default/m') {
        back = performance.now();
        break;
      }
      assert.equal(r.dep, 'sb@default/m');
      await sleep(200);
    }
    assert.ok(back, 'traffic never came back to the recovered deployment within 15 s');
    const secs = (back - moved) / 1000;
    console.log(`# slow: traffic back on sa ${secs.toFixed(1)} s after it left`);
    assert.ok(secs <= 12, `came back after ${secs.toFixed(1)} s (expected <= 12 s)`);
    assert.equal(up.sa.requests.length, saBefore + 1, 'sa saw no traffic between leaving and coming back');
    // The fast answer refreshed its EWMA (0.8*V + 0.2*~2 ms < 800): it stays primary.
    for (let i = 0; i < 5; i++) assert.equal((await send('slow-test')).dep, 'sa@default/m', `request ${i} after recovery`);
  });
});

// The two breaker tests use separate deployments and run concurrently (each waits ~10 s).
describe('latency feedback on streams: TTFT is the first content byte, not the response header', () => {
  test('headers and role chunk at once, content after 920 ms: traffic moves within 15 requests', async () => {
    const sendStream = async () => {
      const r = await chatStream(gw, { ...body('slow-stream-test'), stream: true });
      assert.equal(r.status, 200, r.raw);
      assert.ok(r.done, r.raw.slice(-300));
      return r.headers['x-gateway-deployment'];
    };
    for (let i = 0; i < 3; i++) assert.equal(await sendStream(), 'ta@default/m');
    up.ta.set({ contentDelayMs: SLOW_MS });
    let n = 0;
    let dep;
    while (n < 30 && (dep = await sendStream()) === 'ta@default/m') n++;
    console.log(`# slow stream: ${n} slow streams to ta before traffic moved to tb`);
    assert.equal(dep, 'tb@default/m', `traffic never left ta after ${n} streams with a slow first content chunk`);
    assert.ok(n >= 2 && n <= 15, `moved after ${n} slow streams (expected 2..15)`);
    up.ta.set({ contentDelayMs: 0 });
  });
});

describe('error feedback: circuit breaker (5 consecutive faults, 10 s open, half-open probe)', { concurrency: true }, () => {
  test('a deployment that returns 500s is skipped after 5 requests and comes back through the half-open probe', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await send('fail-test')).dep, 'fa@default/m');

    up.fa.set({ status: 500 });
    const faBefore = up.fa.requests.length;
    let failedOver = 0;
    let openedAt = null;
    for (let i = 0; i < 12; i++) {
      const n0 = up.fa.requests.length;
      const r = await send('fail-test');
      assert.equal(r.dep, 'fb@default/m', 'answered by the healthy deployment');
      if (up.fa.requests.length > n0) {
        assert.equal(r.attempts, 2, 'fa tried first, then fb');
        failedOver++;
        openedAt = performance.now();
      } else {
        assert.equal(r.attempts, 1, 'fa skipped: fb directly');
      }
    }
    console.log(`# failing: fa tried by ${failedOver} requests before it was skipped`);
    assert.equal(up.fa.requests.length - faBefore, failedOver);
    assert.ok(failedOver >= 1 && failedOver <= 5, `fa was tried by ${failedOver} requests (bound: 5 = failures_to_open)`);
    // The last of the 12 requests did not touch fa: the circuit is open.
    const m = await scrape(gw);
    assert.equal(metricValue(m.samples, 'routing_circuit_state', { deployment: 'fa@default/m' }), 1, 'routing_circuit_state{fa} = 1 (open)');
    assert.ok(metricValue(m.samples, 'routing_failures_total', { deployment: 'fa@default/m' }) >= failedOver);
    const ex = await explain(gw, body('fail-test'));
    const fa = ex.candidates.find((c) => c.deployment === 'fa@default/m');
    assert.equal(fa.status, 'excluded', JSON.stringify(fa));
    assert.match(fa.reason, /circuit open/, fa.reason);

    // fa recovers; the circuit half-opens 10 s after it opened and one probe goes to fa first.
    up.fa.set({ status: 200 });
    let probeOkAt = null;
    while (performance.now() - openedAt < 16000) {
      const n0 = up.fa.requests.length;
      const r = await send('fail-test');
      if (r.dep === 'fa@default/m') {
        assert.equal(up.fa.requests.length, n0 + 1);
        probeOkAt = performance.now();
        break;
      }
      assert.equal(up.fa.requests.length, n0, 'no request reaches fa while its circuit is open');
      await sleep(250);
    }
    assert.ok(probeOkAt, 'fa never got traffic back within 16 s of its circuit opening');
    const secs = (probeOkAt - openedAt) / 1000;
    console.log(`# failing: half-open probe served by fa ${secs.toFixed(1)} s after the circuit opened`);
    assert.ok(secs >= 9.5 && secs <= 13, `probe after ${secs.toFixed(1)} s (expected 10 s open period, 9.5..13)`);
    const m2 = await scrape(gw);
    assert.equal(metricValue(m2.samples, 'routing_circuit_state', { deployment: 'fa@default/m' }), 0, 'circuit closed after the successful probe');
    for (let i = 0; i < 5; i++) {
      const r = await send('fail-test');
      assert.equal(r.dep, 'fa@default/m', `request ${i} after recovery`);
      assert.equal(r.attempts, 1);
    }
  });

  test('a failed half-open probe re-opens the circuit for twice as long (20 s), the client still served', async () => {
    up.ga.set({ status: 500 });
    let openedAt = null;
    for (let i = 0; i < 5; i++) {
      const r = await send('probe-test');
      assert.equal(r.dep, 'gb@default/m');
      assert.equal(r.attempts, 2);
      openedAt = performance.now();
    }
    assert.equal(up.ga.requests.length, 5);
    // While open: ga untouched. At ~10 s exactly one request probes ga (fails, served by gb).
    let probeAt = null;
    while (performance.now() - openedAt < 15000) {
      const n0 = up.ga.requests.length;
      const r = await send('probe-test');
      assert.equal(r.dep, 'gb@default/m', 'client served by the healthy deployment during the probe');
      if (up.ga.requests.length > n0) {
        assert.equal(up.ga.requests.length, n0 + 1, 'exactly one probe');
        assert.equal(r.attempts, 2, 'the probe went first, gb backed it up');
        probeAt = performance.now();
        break;
      }
      await sleep(250);
    }
    assert.ok(probeAt, 'no half-open probe within 15 s');
    const secs = (probeAt - openedAt) / 1000;
    console.log(`# failing: failed probe ${secs.toFixed(1)} s after the circuit opened`);
    assert.ok(secs >= 9.5 && secs <= 13, `probe after ${secs.toFixed(1)} s`);
    const ex = await explain(gw, body('probe-test'));
    const ga = ex.candidates.find((c) => c.deployment === 'ga@default/m');
    assert.equal(ga.status, 'excluded', JSON.stringify(ga));
    const m = /half-open in ([\d.]+) s/.exec(ga.reason);
    assert.ok(m, ga.reason);
    assert.ok(Number(m[1]) > 18 && Number(m[1]) <= 20.1, `re-opened for ~20 s (doubled): ${ga.reason}`);
    for (let i = 0; i < 3; i++) {
      const n0 = up.ga.requests.length;
      assert.equal((await send('probe-test')).dep, 'gb@default/m');
      assert.equal(up.ga.requests.length, n0, 'no second probe while re-opened');
    }
  });
});

describe('cooldowns', () => {
  test('429 with Retry-After: 2 -> the deployment is skipped for 2 s, then primary again', async () => {
    assert.equal((await send('cooldown-test')).dep, 'ra@default/m');
    up.ra.set({ status: 429, retryAfter: 2 });
    const r1 = await send('cooldown-test');
    const t429 = performance.now();
    assert.equal(r1.dep, 'rb@default/m');
    assert.equal(r1.attempts, 2);
    up.ra.set({ status: 200, retryAfter: undefined });
    const ex = await explain(gw, body('cooldown-test'));
    const ra = ex.candidates.find((c) => c.deployment === 'ra@default/m');
    assert.equal(ra.status, 'excluded');
    assert.match(ra.reason, /cooling down \(rate limited.*[12]\.\d s left\)/, ra.reason);
    const n0 = up.ra.requests.length;
    let back = null;
    while (performance.now() - t429 < 5000) {
      const r = await send('cooldown-test');
      if (r.dep === 'ra@default/m') {
        back = performance.now();
        break;
      }
      await sleep(100);
    }
    assert.ok(back, 'ra never came back after its Retry-After');
    assert.equal(up.ra.requests.length, n0 + 1, 'ra not called during its cooldown');
    const secs = (back - t429) / 1000;
    console.log(`# cooldown: ra back ${secs.toFixed(1)} s after a 429 with Retry-After: 2`);
    assert.ok(secs >= 1.9 && secs <= 3.5, `back after ${secs.toFixed(1)} s (Retry-After 2)`);
  });

  test('out of balance (HTTP 402 from a DeepSeek-type upstream) -> out of rotation for 15 minutes', async () => {
    up.broke.set({ status: 402 });
    const r = await send('balance-test');
    assert.equal(r.dep, 'rb@default/m');
    assert.equal(r.attempts, 2);
    const ex = await explain(gw, body('balance-test'));
    const b = ex.candidates.find((c) => c.deployment === 'broke@global/m');
    assert.equal(b.status, 'excluded', JSON.stringify(b));
    const m = /out of balance, ([\d.]+) s left/.exec(b.reason);
    assert.ok(m, b.reason);
    assert.ok(Number(m[1]) > 890 && Number(m[1]) <= 900, b.reason);
    up.broke.set({ status: 200 });
    for (let i = 0; i < 3; i++) assert.equal((await send('balance-test')).dep, 'rb@default/m');
    assert.equal(up.broke.requests.length, 1, 'not called again while out of balance');
    const mm = await scrape(gw);
    assert.ok(metricValue(mm.samples, 'routing_cooldown_seconds', { deployment: 'broke@global/m' }) > 890);
  });
});
