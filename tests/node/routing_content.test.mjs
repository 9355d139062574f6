// Content-aware routing end to end: the worked example policy (policies/examples/content_aware.yaml)
// in the real binary against fakes for DeepSeek, Qwen, Kimi and GLM. A Chinese prompt, a code prompt,
// a long prompt and a request asking for high reasoning effort each land on their route's
// deployments (x-gateway-deployment / x-gateway-route); hostile prompts (only emoji and combining
// marks, invalid UTF-8, 10 MB of text) are handled without surprises, and explain says which match
// conditions held.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chat, request, KEY_ENV, REPO } from './lib/gateway.mjs';
import { startUpstream, startPolicyGateway, explain } from './lib/routing_upstream.mjs';

const POLICY = fs.readFileSync(path.join(REPO, 'policies', 'examples', 'content_aware.yaml'), 'utf8');
const ROUTES = {
  'long-context': ['deepseek@global/deepseek-flash', 'qwen@ap-southeast-1/qwen-flash', 'glm@intl/glm-5.2'],
  code: ['qwen@ap-southeast-1/qwen3-coder-plus', 'kimi@intl/kimi-k2.7-code'],
  cjk: ['qwen@ap-southeast-1/qwen-flash', 'glm@intl/glm-4.7'],
  'deep-reasoning': ['deepseek@global/deepseek-v4-pro', 'glm@intl/glm-5.2'],
  default: ['deepseek@global/deepseek-flash', 'qwen@ap-southeast-1/qwen-flash'],
};

const up = {};
let gw, scanFirst;

before(async () => {
  for (const v of ['deepseek', 'qwen', 'kimi', 'glm']) up[v] = await startUpstream({ name: v });
  const providers = {
    deepseek: { api_key_env: KEY_ENV.deepseek, base_urls: { global: up.deepseek.baseUrl } },
    qwen: { api_key_env: KEY_ENV.qwen, base_urls: { 'ap-southeast-1': up.qwen.baseUrl } },
    kimi: { api_key_env: KEY_ENV.kimi, base_urls: { intl: up.kimi.baseUrl } },
    glm: { api_key_env: KEY_ENV.glm, base_urls: { intl: up.glm.baseUrl } },
  };
  const env = { [KEY_ENV.deepseek]: 'sk-1', [KEY_ENV.qwen]: 'sk-2', [KEY_ENV.kimi]: 'sk-3', [KEY_ENV.glm]: 'sk-4' };
  // Room for the 10 MB prompt.
  const big = 12 * 1024 * 1024;
  gw = await startPolicyGateway({ policy: POLICY, providers, env, routing: { policy_poll_ms: 0 },
                                  server: { max_body_bytes: big, max_buffered_body_bytes: big } });
  const scanPolicy = `version: 1
routes:
  - {name: cjk, match: {script: {cjk: {min: 0.3}}}, candidates: [qwen@ap-southeast-1/qwen-flash]}
  - {name: rest, candidates: [deepseek/deepseek-flash]}
`;
  scanFirst = await startPolicyGateway({ policy: scanPolicy, providers, env, routing: { policy_poll_ms: 0 },
                                         server: { max_body_bytes: big, max_buffered_body_bytes: big } });
});

after(async () => {
  await Promise.all(Object.values(up).map((u) => u.close()));
  await gw?.stop();
  await scanFirst?.stop();
});

const body = (content, extra = {}) => ({ model: 'auto', messages: [{ role: 'user', content }], max_tokens: 50, ...extra });
const total = () => Object.values(up).reduce((a, u) => a + u.requests.length, 0);

async function routedTo(res, route) {
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers['x-gateway-route'], route, res.text);
  assert.ok(ROUTES[route].includes(res.headers['x-gateway-deployment']), res.headers['x-gateway-deployment']);
  return res.headers['x-gateway-deployment'];
}

const CODE = [
  'Why does this return undefined?',
  '```js',
  'function total(items) {',
  '  items.reduce((a, b) => a + b.price, 0);',
  '}',
  '```',
].join('\n');
const CODE_UNFENCED = 'def area(r):\n    return 3.14159 * r * r\n\nprint(area(2))\n';

describe('the example policy routes by content', () => {
  test('a Chinese prompt goes to Qwen or GLM (route cjk)', async () => {
    await routedTo(await chat(gw, body('请用三句话介绍一下长城的历史，并说明它为什么重要。')), 'cjk');
    // Japanese and Korean are CJK too; a mostly English prompt with a few characters is not.
    await routedTo(await chat(gw, body('東京でおすすめのラーメン屋を教えてください')), 'cjk');
    await routedTo(await chat(gw, body('한국어로 짧은 시를 써 주세요')), 'cjk');
    await routedTo(await chat(gw, body('Please translate the word 你好 into French, Spanish, German and Italian.')), 'default');
  });

  test('a code prompt goes to a coder model (route code), fenced or not', async () => {
    const d = await routedTo(await chat(gw, body(CODE)), 'code');
    assert.match(d, /coder|code/);
    await routedTo(await chat(gw, body(CODE_UNFENCED)), 'code');
    // Prose that talks about code is not code.
    await routedTo(await chat(gw, body('What is the difference between a function and a method in Python?')), 'default');
  });

  test('a long prompt (>= 128k estimated tokens) goes to a 1M-window model (route long-context)', async () => {
    const long = 'The committee reviewed the annual figures and agreed to meet again. '.repeat(8000); // ~540 KB
    const e = await explain(gw, body(long));
    assert.ok(e.request.est_input_tokens >= 128000, String(e.request.est_input_tokens));
    await routedTo(await chat(gw, body(long)), 'long-context');
  });

  test('reasoning effort: chat reasoning_effort and Responses reasoning.effort high go to deep-reasoning', async () => {
    await routedTo(await chat(gw, body('Prove that there are infinitely many primes.', { reasoning_effort: 'high' })), 'deep-reasoning');
    await routedTo(await chat(gw, body('Prove that there are infinitely many primes.', { reasoning_effort: 'low' })), 'default');
    const r = await request(gw.url + '/v1/responses', {
      method: 'POST',
      body: { model: 'auto', input: 'Prove that there are infinitely many primes.', reasoning: { effort: 'xhigh' } },
    });
    await routedTo(r, 'deep-reasoning');
  });

  test('explain lists the routes tried and which conditions held', async () => {
    const e = await explain(gw, body('请介绍一下长城'));
    assert.equal(e.route, 'cjk');
    assert.deepEqual(e.match.map((m) => [m.route, m.matched]), [['long-context', false], ['code', false], ['cjk', true]]);
    const cjk = e.match[2].conditions.find((c) => c.condition === 'script.cjk');
    assert.deepEqual(cjk, { condition: 'script.cjk', want: '>= 0.3', actual: '1', held: true });
    const long = e.match[0].conditions.find((c) => c.condition === 'input_tokens');
    assert.equal(long.held, false);
    assert.equal(e.request.content.scripts.cjk, 1);
    assert.equal(e.request.content.code, false);
    assert.equal(e.request.reasoning_effort, 'unset');
  });
});

describe('hostile prompts', () => {
  test('only emoji and combining marks: no letters, no script or code condition holds, the default serves', async () => {
    const text = '😀🎉👍🏽 \u0301\u0308\u0301 🇨🇳🇯🇵 ✨✨';
    const e = await explain(gw, body(text));
    assert.equal(e.route, 'default');
    assert.equal(e.request.content.letters, 0);
    const cjk = e.match.find((m) => m.route === 'cjk').conditions.find((c) => c.condition === 'script.cjk');
    assert.equal(cjk.actual, 'no letters');
    await routedTo(await chat(gw, body(text)), 'default');
  });

  test('invalid UTF-8 is refused (400) before routing; no upstream called', async () => {
    const n0 = total();
    const prefix = Buffer.from('{"model":"auto","max_tokens":5,"messages":[{"role":"user","content":"\u4e2d');
    const payload = Buffer.concat([prefix, Buffer.from([0xe4, 0xbd, 0x22]), Buffer.from('}]}')]);
    const res = await request(gw.url + '/v1/chat/completions', { method: 'POST', body: payload, headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 400, res.text);
    assert.match(res.json.error.message, /UTF-8/);
    assert.equal(total(), n0);
  });

  test('a 10 MB prompt: the scan stops at 64 KiB; the example policy does not even scan it', async () => {
    const tenMb = '中'.repeat(3_500_000); // 10.5 MB of UTF-8, ~3.5M estimated tokens
    const e = await explain(gw, body(tenMb));
    assert.equal(e.route, 'long-context');
    assert.equal(e.request.content, undefined, 'long-context matched on input_tokens, before any scan');
    // A policy whose first route scans: the scan reads 64 KiB and says the rest was not looked at.
    const s = await explain(scanFirst, body(tenMb));
    assert.equal(s.route, 'cjk');
    assert.equal(s.request.content.scanned_bytes, 65536);
    assert.equal(s.request.content.truncated, true);
    assert.equal(s.request.content.scripts.cjk, 1);
    // The request itself is answered: too long for every deployment's window, a 400 naming it.
    const res = await chat(gw, body(tenMb));
    assert.equal(res.status, 400, res.text.slice(0, 300));
    assert.ok(!gw.exited, JSON.stringify(gw.exited));
    await routedTo(await chat(gw, body('Still there?')), 'default');
  });
});
