// Routing knows each deployment's true context window, and a deployment that refuses a request as
// too long (its real window smaller than the catalog says) hands it to a larger one.
//
// The local engine: a model trained for 8192 tokens served with local.max_context 4096, first in an
// ordered route before a DeepSeek fake; a ~7.5k-token request must be planned past it (explain says
// why), a short one still goes local. Context fail-over: DeepSeek-fake deployments whose upstream
// model `context-too-long` answers DeepSeek's own 400 "maximum context length" error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startGateway, defaultConfig, tmpDir, run, REPO, chat, userMsg, openAiError, KEY_ENV } from './lib/gateway.mjs';
import { startFake } from './lib/fake_upstream.mjs';
import { explain } from './lib/routing_upstream.mjs';

const TOOL = process.env.GGUF_TOOL || path.join(REPO, 'build', 'local_backend', 'gguf-make-test-model');

const POLICY = `
version: 1
name: context-limits
catalog:
  - {ref: deepseek@global/context-too-long, context_window: 100000, max_output: 8000}
  - {ref: deepseek@global/context-too-long:2, context_window: 100000, max_output: 8000}
  - {ref: deepseek@global/ok:small, context_window: 50000, max_output: 8000}
  - {ref: deepseek@global/ok:big, context_window: 200000, max_output: 8000}
  # Claims more than the engine has: the engine's own window wins.
  - {ref: local/tiny-moe, context_window: 65536}
routes:
  - name: local-first
    match: {model: local-first}
    objective: ordered
    candidates: [local/tiny-moe, deepseek@global/ok:big]
  - name: too-long-then-larger
    match: {model: too-long-then-larger}
    objective: ordered
    candidates: [deepseek@global/context-too-long, deepseek@global/ok:small, deepseek@global/ok:big]
  - name: too-long-nothing-larger
    match: {model: too-long-nothing-larger}
    objective: ordered
    candidates: [deepseek@global/context-too-long, deepseek@global/context-too-long:2, deepseek@global/ok:small]
`;

let gw;
let ds;
let dir;

before(async () => {
  assert.ok(fs.existsSync(TOOL), `model tool missing at ${TOOL}: build the gguf-make-test-model target`);
  dir = tmpDir('gw-ctx-');
  const model = path.join(dir, 'ctx8k.gguf');
  const r = await run(TOOL, ['--context', '8192', '--out', model]);
  assert.equal(r.code, 0, r.stderr);
  ds = await startFake({ dialect: 'deepseek', key: 'sk-ds' });
  const policyPath = path.join(dir, 'policy.yaml');
  fs.writeFileSync(policyPath, POLICY);
  const c = defaultConfig();
  delete c.models;
  c.providers = { deepseek: { api_key_env: KEY_ENV.deepseek, base_urls: { global: ds.baseUrl } } };
  c.local = { model_path: model, model_name: 'tiny-moe', threads: 1, max_queue: 4, max_context: 4096 };
  c.policy = policyPath;
  c.routing = { policy_poll_ms: 0 };
  gw = await startGateway({ config: c, env: { [KEY_ENV.deepseek]: 'sk-ds' } });
});

after(async () => {
  await gw?.stop();
  await ds?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const long = (model, extra = {}) => ({ model, messages: userMsg('word '.repeat(6000)), max_tokens: 16, ...extra }); // ~7.5k tokens
const short = (model) => ({ model, messages: userMsg('Hi'), max_tokens: 4, temperature: 0 });

test('a request longer than local.max_context is planned past the local engine; explain names its real window', async () => {
  const ex = await explain(gw, long('local-first'));
  const local = ex.candidates.find((c) => c.deployment === 'local@self/tiny-moe');
  assert.ok(local, JSON.stringify(ex.candidates));
  assert.equal(local.status, 'excluded', JSON.stringify(local));
  assert.match(local.reason, /exceed context window 4096$/, local.reason);
  const n0 = ds.requests.length;
  const res = await chat(gw, long('local-first'));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers['x-gateway-deployment'], 'deepseek@global/ok:big');
  assert.equal(res.headers['x-gateway-attempts'], '1');
  assert.equal(ds.requests.length - n0, 1);
});

test('a short request still goes to the local engine first', async () => {
  const res = await chat(gw, short('local-first'));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers['x-gateway-deployment'], 'local@self/tiny-moe');
});

test('a 400 context_length_exceeded fails over past a smaller window to a larger one that fits', async () => {
  const before = { tooLong: ds.byModel('context-too-long').length, small: ds.byModel('ok:small').length, big: ds.byModel('ok:big').length };
  const res = await chat(gw, short('too-long-then-larger'));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers['x-gateway-deployment'], 'deepseek@global/ok:big');
  assert.equal(res.headers['x-gateway-attempts'], '2');
  assert.equal(ds.byModel('context-too-long').length - before.tooLong, 1);
  assert.equal(ds.byModel('ok:small').length - before.small, 0, 'a 50k window cannot hold what a 100k one refused');
  assert.equal(ds.byModel('ok:big').length - before.big, 1);
});

test('with no larger window in the plan the refusal is the answer: 400, nothing else tried', async () => {
  const n0 = ds.requests.length;
  const res = await chat(gw, short('too-long-nothing-larger'));
  const e = openAiError(assert, res, 400);
  assert.equal(e.type, 'invalid_request_error');
  assert.match(e.message, /maximum context length/);
  assert.equal(res.headers['x-gateway-attempts'], '1', 'an equal and a smaller window are skipped');
  assert.equal(ds.requests.length - n0, 1);
});

test('the gateway keeps serving after the refusals', async () => {
  const res = await chat(gw, short('local-first'));
  assert.equal(res.status, 200, res.text);
});
