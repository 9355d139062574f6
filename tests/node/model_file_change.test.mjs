// The local model file changes under a serving gateway: truncated to nothing mid-stream, then
// replaced by another model (write + rename). The engine holds its own copy of the weights, so the
// running stream finishes, later local requests get the same greedy answers as before, remote
// deployments keep serving, and the process never dies (a file-backed mapping would SIGBUS). A
// restart with the truncated file leaves the local engine unavailable with a clean error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startGateway, defaultConfig, tmpDir, run, REPO, chat, chatStream, userMsg, openAiError, providerFor } from './lib/gateway.mjs';
import { startFake } from './lib/fake_upstream.mjs';

const TOOL = process.env.GGUF_TOOL || path.join(REPO, 'build', 'local_backend', 'gguf-make-test-model');

let gw;
let ds;
let dir;
let modelPath;

function config() {
  const c = defaultConfig();
  c.providers = { deepseek: providerFor(ds) };
  c.local = { model_path: modelPath, model_name: 'tiny-moe', threads: 1, max_queue: 8, max_context: 2048 };
  c.models = { local: ['local/tiny-moe'], remote: ['deepseek/ok'] };
  return c;
}

before(async () => {
  assert.ok(fs.existsSync(TOOL), `model tool missing at ${TOOL}: build the gguf-make-test-model target`);
  dir = tmpDir('gw-swap-');
  modelPath = path.join(dir, 'model.gguf');
  const r = await run(TOOL, ['--seed', '1', '--out', modelPath]);
  assert.equal(r.code, 0, r.stderr);
  ds = await startFake({ dialect: 'deepseek', key: 'sk-ds' });
  gw = await startGateway({ config: config(), env: { DEEPSEEK_API_KEY: 'sk-ds' } });
});

after(async () => {
  await gw?.stop(); // throws if the gateway died during the tests
  await ds?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const greedy = (text) => ({ model: 'local', messages: userMsg(text), max_tokens: 12, temperature: 0 });

async function localAnswer(text) {
  const res = await chat(gw, greedy(text));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers['x-gateway-deployment'], 'local@self/tiny-moe');
  return res.json.choices[0].message.content;
}

test('truncating the model file mid-stream: the stream finishes, local answers are unchanged, remote serves, no crash', async () => {
  const answers = {};
  for (const q of ['alpha', 'beta']) answers[q] = await localAnswer(q);
  let truncated = false;
  const s = await chatStream(gw, { model: 'local', messages: userMsg('gamma'), max_tokens: 64, temperature: 0, stream: true }, {
    onEvent: () => {
      if (!truncated) {
        fs.truncateSync(modelPath, 0);
        truncated = true;
      }
    },
  });
  assert.ok(truncated, 'the file was truncated while the stream ran');
  assert.equal(s.status, 200);
  assert.equal(s.errors.length, 0, `no error event: ${s.raw.slice(-500)}`);
  assert.ok(s.done, 'the stream ended with [DONE]');
  assert.equal(fs.statSync(modelPath).size, 0);
  for (const q of ['alpha', 'beta']) assert.equal(await localAnswer(q), answers[q], 'the loaded weights did not change');
  const remote = await chat(gw, { model: 'remote', messages: userMsg('hi'), max_tokens: 4 });
  assert.equal(remote.status, 200, remote.text);
  assert.equal(gw.exited, null, `gateway alive: ${gw.stderr.slice(-2000)}`);
});

test('replacing the model file (write, rename over) leaves the loaded model serving until a restart loads the new one', async () => {
  const before = await localAnswer('delta');
  const next = path.join(dir, 'model.gguf.new');
  const r = await run(TOOL, ['--seed', '2', '--out', next]);
  assert.equal(r.code, 0, r.stderr);
  fs.renameSync(next, modelPath);
  assert.equal(await localAnswer('delta'), before, 'still the model loaded at start-up');
  assert.equal(gw.exited, null);
  const g2 = await startGateway({ config: config(), env: { DEEPSEEK_API_KEY: 'sk-ds' } });
  try {
    const res = await chat(g2, greedy('delta'));
    assert.equal(res.status, 200, res.text);
  } finally {
    await g2.stop();
  }
});

test('a restart with a truncated model file: local refused cleanly (503), remote serves', async () => {
  fs.truncateSync(modelPath, 100);
  const g = await startGateway({ config: config(), env: { DEEPSEEK_API_KEY: 'sk-ds' } });
  try {
    const res = await chat(g, greedy('epsilon'));
    const e = openAiError(assert, res, 503);
    assert.match(e.message, /local model 'local' is unavailable \(the gateway's start-up log says why\)/);
    assert.ok(!e.message.includes(modelPath), 'the file path stays in the operator log');
    assert.match(g.stderr, /local engine not loaded: local model '.*model\.gguf': GGUF: /, 'the start-up log names the file and the fault');
    const remote = await chat(g, { model: 'remote', messages: userMsg('hi'), max_tokens: 4 });
    assert.equal(remote.status, 200, remote.text);
  } finally {
    await g.stop();
  }
});
