// Request pass-through (unknown fields, model replacement), upstream authentication (Bearer from
// env, GLM legacy JWT), missing keys, and secrets never reaching the gateway's output.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFake, verifyGlmJwt, CONTENT_PIECES } from './lib/fake_upstream.mjs';
import { startGateway, defaultConfig, providerFor, chat, chatStream, userMsg, openAiError } from './lib/gateway.mjs';

const DS_KEY = 'sk-ds-SECRET-a1b2c3d4e5f6a7b8';
const KIMI_KEY = 'sk-kimi-SECRET-99887766554433';
const GLM_JWT_KEY = 'glmkeyid42.SECRETglmsigningpart0123456789';
const QWEN_ENV_KEY = 'sk-qwen-SECRET-singapore-only';
const QWEN_EXPECTED = 'sk-qwen-SECRET-beijing-key';
const SECRETS = [DS_KEY, KIMI_KEY, GLM_JWT_KEY, GLM_JWT_KEY.split('.')[1], QWEN_ENV_KEY];

let gw;
const f = {};

before(async () => {
  f.deepseek = await startFake({ dialect: 'deepseek', key: DS_KEY });
  f.kimi = await startFake({ dialect: 'kimi', key: KIMI_KEY });
  f.glmJwt = await startFake({ dialect: 'glm', key: GLM_JWT_KEY, auth: 'jwt' });
  f.glmBearer = await startFake({ dialect: 'glm', key: GLM_JWT_KEY });
  f.qwen = await startFake({ dialect: 'qwen', key: QWEN_EXPECTED });
  f.vllm = await startFake({ dialect: 'openai' });
  const c = defaultConfig();
  c.providers = {
    deepseek: providerFor(f.deepseek),
    kimi: { ...providerFor(f.kimi), api_key_env: 'MY_KIMI_KEY_VAR' },
    'glm-jwt': { type: 'glm', api_key_env: 'ZAI_API_KEY', base_urls: { intl: f.glmJwt.baseUrl }, auth: 'jwt' },
    glm: { api_key_env: 'ZAI_API_KEY', base_urls: { intl: f.glmBearer.baseUrl }, auth: 'bearer' },
    qwen: providerFor(f.qwen),
    'qwen-nokey': { type: 'qwen', api_key_env: 'QWEN_KEY_NOT_SET_ANYWHERE', base_urls: { 'ap-southeast-1': f.qwen.baseUrl } },
    'my-vllm': { type: 'openai_compatible', base_url: f.vllm.baseUrl },
  };
  c.models = {
    ds: ['deepseek/ok'],
    kimi: ['kimi/ok'],
    'glm-jwt': ['glm-jwt/ok'],
    'glm-bearer': ['glm/ok'],
    'qwen-wrong-region': ['qwen/ok'],
    nokey: ['qwen-nokey/ok'],
    vllm: ['my-vllm/ok'],
  };
  gw = await startGateway({ config: c, env: { DEEPSEEK_API_KEY: DS_KEY, MY_KIMI_KEY_VAR: KIMI_KEY, ZAI_API_KEY: GLM_JWT_KEY, DASHSCOPE_API_KEY: QWEN_ENV_KEY } });
});

after(async () => {
  // Fakes first: stop() throws if the gateway died during the tests.
  await Promise.all(Object.values(f).map((x) => x.close()));
  await gw?.stop();
});

describe('pass-through', () => {
  test('unknown fields reach the upstream unchanged; model replaced by the deployment model id', async () => {
    const body = {
      model: 'ds',
      messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi ünïcödé 你好 🙂' }],
      foo_vendor_param: { x: 1, nested: [true, null, 'z'] },
      enable_thinking: true,
      thinking_budget: 1024,
      thinking: { type: 'enabled' },
      reasoning_effort: 'high',
      user_id: 'end-user_42',
      temperature: 0.25,
      max_tokens: 77,
      response_format: { type: 'json_object' },
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
      big_number: 12345678901234567890,
    };
    const next = f.deepseek.nextRequest();
    const res = await chat(gw, body);
    assert.equal(res.status, 200, res.text);
    const up = (await next).body;
    assert.equal(up.model, 'ok');
    for (const k of Object.keys(body)) {
      if (k === 'model') continue;
      assert.deepEqual(up[k], body[k], `field ${k} passes through unchanged`);
    }
  });

  test('stream: stream_options.include_usage forced true upstream, other stream_options kept', async () => {
    const next = f.deepseek.nextRequest();
    const r = await chatStream(gw, { model: 'ds', messages: userMsg(), stream: true, stream_options: { include_usage: false }, foo_vendor_param: 'keep-me' });
    assert.equal(r.status, 200);
    const up = (await next).body;
    assert.equal(up.stream_options.include_usage, true);
    assert.equal(up.foo_vendor_param, 'keep-me');
    assert.equal(r.chunks.filter((c) => c.choices?.length === 0).length, 0, 'client asked include_usage:false -> no usage chunk');
    assert.ok(r.done);
  });
});

describe('upstream authentication', () => {
  test('Authorization: Bearer <key from the env var named in config>', async () => {
    const next = f.kimi.nextRequest();
    const res = await chat(gw, { model: 'kimi', messages: userMsg() });
    assert.equal(res.status, 200, res.text);
    assert.equal((await next).headers.authorization, `Bearer ${KIMI_KEY}`);
  });

  test('client Authorization header is not forwarded upstream in place of the key', async () => {
    const next = f.deepseek.nextRequest();
    const res = await chat(gw, { model: 'ds', messages: userMsg() }, { headers: { authorization: 'Bearer client-supplied-token' } });
    assert.equal(res.status, 200, res.text);
    assert.equal((await next).headers.authorization, `Bearer ${DS_KEY}`);
  });

  test('GLM auth: bearer sends the raw key', async () => {
    const next = f.glmBearer.nextRequest();
    const res = await chat(gw, { model: 'glm-bearer', messages: userMsg() });
    assert.equal(res.status, 200, res.text);
    assert.equal((await next).headers.authorization, `Bearer ${GLM_JWT_KEY}`);
  });

  test('GLM auth: jwt sends a valid HS256 JWT (sign_type SIGN; api_key, exp, timestamp in ms)', async () => {
    const next = f.glmJwt.nextRequest();
    const res = await chat(gw, { model: 'glm-jwt', messages: userMsg() });
    const rec = await next;
    const m = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/.exec(rec.headers.authorization || '');
    assert.ok(m, `Authorization is "Bearer <jwt>": ${rec.headers.authorization}`);
    const v = verifyGlmJwt(m[1], GLM_JWT_KEY);
    assert.ok(v.ok, `JWT verifies: ${v.reason} header=${JSON.stringify(v.header)} payload=${JSON.stringify(v.payload)}`);
    assert.equal(v.header.alg, 'HS256');
    assert.equal(v.header.sign_type, 'SIGN');
    assert.equal(v.payload.api_key, 'glmkeyid42');
    assert.ok(v.payload.timestamp > 1e12, 'timestamp is in milliseconds');
    assert.ok(v.payload.exp > v.payload.timestamp && v.payload.exp > 1e12, 'exp is in milliseconds and after timestamp');
    assert.ok(!rec.headers.authorization.includes(GLM_JWT_KEY.split('.')[1]), 'secret half never sent');
    assert.equal(res.status, 200, res.text);
    assert.match(String(res.headers['x-gateway-deployment']), /^glm-jwt@intl\/ok$/);
  });

  test('openai_compatible without api_key_env sends no key and works', async () => {
    const next = f.vllm.nextRequest();
    const res = await chat(gw, { model: 'vllm', messages: userMsg() });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.choices[0].message.content, CONTENT_PIECES('openai').join(''));
    const auth = (await next).headers.authorization;
    assert.ok(auth === undefined || auth === 'Bearer ' || auth === '', `no real key sent: ${auth}`);
  });

  test('provider without its key env var -> 503 naming the variable to set', async () => {
    const before0 = f.qwen.requests.length;
    const res = await chat(gw, { model: 'nokey', messages: userMsg() });
    const e = openAiError(assert, res, 503);
    assert.match(e.message, /QWEN_KEY_NOT_SET_ANYWHERE/, `message says which env var to set: ${e.message}`);
    assert.equal(f.qwen.requests.length, before0, 'upstream not called');
  });

  test('Qwen region-bound key rejected upstream (401 invalid_api_key) -> OpenAI-shaped error, key not echoed', async () => {
    const res = await chat(gw, { model: 'qwen-wrong-region', messages: userMsg() });
    assert.ok([401, 502, 503].includes(res.status), `auth failure surfaces as 401/502/503, got ${res.status}: ${res.text}`);
    openAiError(assert, res, res.status);
    assert.ok(!res.text.includes(QWEN_ENV_KEY), 'key not echoed to the client');
  });
});

describe('secrets and access log', () => {
  test('access log has one JSON line per request with its request id; no key anywhere in stdout/stderr', async () => {
    const res = await chat(gw, { model: 'ds', messages: userMsg('PROMPT-TEXT-MARKER-1234') });
    assert.equal(res.status, 200);
    const rid = res.headers['x-request-id'];
    assert.ok(rid);
    let line;
    for (let i = 0; i < 20 && !line; i++) {
      line = gw.stderr.split('\n').find((l) => l.includes(rid));
      if (!line) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(line, `an access log line on stderr carries request id ${rid}`);
    const j = JSON.parse(line);
    assert.equal(typeof j, 'object');
    const flat = JSON.stringify(j);
    assert.ok(flat.includes('deepseek@global/ok'), `access log names the deployment: ${line}`);
    assert.ok(Object.values(j).includes(200), `access log has the status 200: ${line}`);
    assert.ok(Object.values(j).includes(1) || flat.includes('"attempts"'), `access log has the attempts: ${line}`);
    const out = gw.stdout + gw.stderr;
    for (const s of SECRETS) assert.ok(!out.includes(s), `secret ${s.slice(0, 8)}... never appears in gateway output`);
    assert.ok(!out.includes('PROMPT-TEXT-MARKER-1234'), 'no prompt text in the logs');
  });
});
