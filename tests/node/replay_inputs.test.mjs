// The replay benchmark's inputs and fakes (tests/bench/replay; the benchmark itself is not run here):
// upstreams.yaml and scenario files are checked strictly, the shipped ones load, the fakes' shaped
// answers carry the planned usage in each dialect's own place, and the padded prompt meets the
// gateway's input estimate.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startFake } from './lib/fake_upstream.mjs';
import { tmpDir, REPO } from './lib/gateway.mjs';
import { SseParser, classify } from './lib/sse.mjs';
import { loadUpstreams, loadScenario, loadTrace, effectsAt } from '../bench/replay/lib/model.mjs';
import { prompt } from '../bench/replay/lib/drive.mjs';

const BENCH = path.join(REPO, 'tests', 'bench', 'replay');
const dir = tmpDir('gw-replay-inputs-');
const file = (name, text) => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
};
const VENDORS = 'vendors:\n  qwen: {dialect: qwen, default_region: ap-southeast-1}\n';
const DEPLOYMENT = '  qwen/qwen-flash: {ttft_ms: {median: 400, p99: 2000}, tokens_per_s: 100}\n';

test('the shipped trace window, upstreams.yaml and vendor_loss.yaml load', () => {
  const trace = loadTrace({ conv: path.join(BENCH, 'data/conv.csv'), code: path.join(BENCH, 'data/code.csv') }, 10);
  assert.equal(trace.length, 4910);
  assert.ok(trace.every((r, i) => i === 0 || r.t_ms >= trace[i - 1].t_ms), 'merged in time order');
  assert.ok(trace.at(-1).t_ms < 600_000);
  const up = loadUpstreams(path.join(BENCH, 'upstreams.yaml'));
  for (const ref of ['deepseek/deepseek-flash', 'qwen@ap-southeast-1/qwen-flash', 'glm@intl/glm-4.7-flashx', 'kimi@intl/kimi-k2.6']) assert.ok(up.deployments[ref], ref);
  assert.equal(up.deployments['deepseek/deepseek-flash'].region, 'global', 'a ref without @region takes the vendor default');
  const sc = loadScenario(path.join(BENCH, 'scenarios/vendor_loss.yaml'), up);
  const qwen = up.deployments['qwen@us-east-1/qwen-flash'];
  assert.deepEqual(effectsAt(sc, qwen, 299_999), { latencyFactor: 1, error: undefined });
  assert.deepEqual(effectsAt(sc, qwen, 300_000), { latencyFactor: 1, error: 'no-balance' });
  assert.equal(effectsAt(sc, up.deployments['glm@intl/glm-4.7'], 200_000).latencyFactor, 3);
});

test('upstreams.yaml: unknown keys, duplicate keys and bad values are refused, naming the place', () => {
  const bad = {
    'unknown key': [`${VENDORS}deployments:\n  qwen/qwen-flash: {ttft_ms: {median: 400, p99: 2000}, tokens_per_s: 100, speed: 3}\n`, /unknown key "speed"/],
    'duplicate key': [`${VENDORS}deployments:\n${DEPLOYMENT}${DEPLOYMENT}`, /unique|duplicate/i],
    'p99 below median': [`${VENDORS}deployments:\n  qwen/qwen-flash: {ttft_ms: {median: 400, p99: 20}, tokens_per_s: 100}\n`, /ttft_ms\.p99/],
    'rate above 1': [`${VENDORS}deployments:\n  qwen/qwen-flash: {ttft_ms: {median: 4, p99: 5}, tokens_per_s: 1, error_rate: 2}\n`, /error_rate/],
    'string number': [`${VENDORS}deployments:\n  qwen/qwen-flash: {ttft_ms: {median: "400", p99: 500}, tokens_per_s: 1}\n`, /median/],
    'unknown vendor': [`${VENDORS}deployments:\n  acme/x: {ttft_ms: {median: 4, p99: 5}, tokens_per_s: 1}\n`, /vendor "acme"/],
    'unknown dialect': ['vendors:\n  qwen: {dialect: openai, default_region: x}\ndeployments: {}\n', /dialect/],
    'no deployments': [`${VENDORS}deployments: {}\n`, /no deployments/],
  };
  for (const [name, [text, re]] of Object.entries(bad)) assert.throws(() => loadUpstreams(file('u.yaml', text)), re, name);
});

test('scenarios: exactly one target and one effect, known vendors and error kinds, no unknown keys', () => {
  const up = loadUpstreams(file('u.yaml', `${VENDORS}deployments:\n${DEPLOYMENT}`));
  const bad = {
    'two effects': ['events:\n  - {at_min: 1, vendor: qwen, latency_factor: 2, error: no-balance}\n', /exactly one of latency_factor, error/],
    'no target': ['events:\n  - {at_min: 1, latency_factor: 2}\n', /exactly one of vendor, deployment/],
    'unknown vendor': ['events:\n  - {at_min: 1, vendor: glm, latency_factor: 2}\n', /unknown vendor/],
    'unknown error': ['events:\n  - {at_min: 1, vendor: qwen, error: teapot}\n', /error must be one of/],
    'negative minute': ['events:\n  - {at_min: -1, vendor: qwen, error: no-balance}\n', /at_min/],
    'unknown key': ['events:\n  - {at_min: 1, vendor: qwen, error: no-balance, when: now}\n', /unknown key "when"/],
    'events not a list': ['events: {a: 1}\n', /events must be a list/],
  };
  for (const [name, [text, re]] of Object.entries(bad)) assert.throws(() => loadScenario(file('s.yaml', text), up), re, name);
});

test("the padded prompt meets the gateway's estimate (bytes / 4 + 4 per message + 3) within a token", () => {
  for (const n of [12, 91, 1083, 7930]) {
    const bytes = Buffer.byteLength(prompt(n, 50));
    const estimate = Math.floor((bytes + 3) / 4) + 4 + 3;
    assert.ok(Math.abs(estimate - n) <= 1, `${n} tokens -> estimate ${estimate}`);
  }
});

// Where each dialect reports streamed usage (fake_upstream.mjs header comment).
const streamUsage = {
  deepseek: (chunks) => chunks.find((c) => c.choices.length === 0)?.usage,
  qwen: (chunks) => chunks.find((c) => c.choices.length === 0)?.usage,
  kimi: (chunks) => chunks.find((c) => c.choices[0]?.usage)?.choices[0].usage,
  glm: (chunks) => chunks.find((c) => c.usage)?.usage,
};
const fakes = [];
after(async () => Promise.all(fakes.map((f) => f.close())));

for (const dialect of Object.keys(streamUsage)) {
  test(`${dialect} fake with a shaper: the planned usage, streamed and not; a planned error is the dialect's`, async () => {
    const usage = { prompt: 1234, cached: 0, completion: 56, reasoning: 0 };
    const fake = await startFake({ dialect, shaper: (rec) => (rec.body.model === 'down' ? { error: 'no-balance' } : { ttftMs: 5, durationMs: 20, usage }) });
    fakes.push(fake);
    const url = fake.baseUrl + '/chat/completions';
    const post = (body) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
    const body = { model: 'any', messages: [{ role: 'user', content: 'hi' }] };

    const plain = await (await post(body)).json();
    assert.equal(plain.usage.prompt_tokens, 1234);
    assert.equal(plain.usage.completion_tokens, 56);

    const res = await post({ ...body, stream: true, stream_options: { include_usage: true } });
    assert.equal(res.status, 200);
    const parser = new SseParser();
    parser.push(await res.text());
    const { chunks, done } = classify(parser.events);
    assert.ok(done, 'ends with [DONE]');
    assert.ok(chunks.some((c) => c.choices[0]?.finish_reason === 'stop'), 'a finish chunk');
    const u = streamUsage[dialect](chunks);
    assert.equal(u?.prompt_tokens, 1234, JSON.stringify(chunks.at(-1)));
    assert.equal(u.completion_tokens, 56);

    const down = await post({ ...body, model: 'down' });
    assert.equal(down.status, { deepseek: 402, qwen: 403, kimi: 403, glm: 429 }[dialect]);
  });
}
