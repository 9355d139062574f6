// Request bodies that could be read two ways are refused before anything is routed, priced or
// sent: a repeated member name (upstreams keep the last copy, the gateway would have validated
// the first), or a loose variant of a name the gateway reads ("MAX_TOKENS", "maxTokens": Go's
// encoding/json matches names case-insensitively). Also: the off forms of the thinking switches
// keep deployments without reasoning eligible, and every numeric parameter is range-checked.
//
// Two programmable upstreams behind a policy: `pa/m` has no reasoning capability, `pb/m` has it.
// Route `plain` -> [pa/m]; route `think` -> [pa/m, pb/m] (ordered: pa first when it qualifies).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request, chat, userMsg, openAiError } from './lib/gateway.mjs';
import { startUpstream, startPolicyGateway } from './lib/routing_upstream.mjs';

const POLICY = `version: 1
name: body-strictness
catalog:
  - {ref: pa/m, context_window: 100000, capabilities: [tools, json], price: {input: 10, output: 20}}
  - {ref: pb/m, context_window: 100000, capabilities: [tools, json, reasoning], price: {input: 10, output: 20}}
routes:
  - name: plain
    match: {model: plain}
    objective: ordered
    candidates: [pa/m]
  - name: think
    match: {model: think}
    objective: ordered
    candidates: [pa/m, pb/m]
`;

let pa, pb, gw;
before(async () => {
  pa = await startUpstream({ name: 'pa' });
  pb = await startUpstream({ name: 'pb' });
  gw = await startPolicyGateway({
    policy: POLICY,
    providers: { pa: { type: 'openai_compatible', base_url: pa.baseUrl }, pb: { type: 'openai_compatible', base_url: pb.baseUrl } },
    routing: { policy_poll_ms: 0 },
  });
});
after(async () => {
  await pa?.close();
  await pb?.close();
  await gw?.stop();
});

const upstreamCalls = () => pa.requests.length + pb.requests.length;
const MSGS = '"messages":[{"role":"user","content":"hi"}]';
const TOOL = '{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{}}}}';

async function post(text) {
  return request(gw.url + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.from(text, 'utf8') });
}

// Sends a raw body and checks the refusal: 400, the code, the param, the key and path in the message,
// nothing upstream; then a good request still works.
async function assertRefused(text, { code, param, message }) {
  const before0 = upstreamCalls();
  const res = await post(text);
  const e = openAiError(assert, res, 400);
  assert.equal(e.code, code, JSON.stringify(e));
  assert.equal(e.param, param, JSON.stringify(e));
  assert.ok(e.message.includes(message), `message ${JSON.stringify(e.message)} includes ${JSON.stringify(message)}`);
  assert.equal(upstreamCalls(), before0, 'nothing reached an upstream');
  const ok = await chat(gw, { model: 'plain', messages: userMsg() });
  assert.equal(ok.status, 200, ok.text);
}

describe('one value per member name', () => {
  const DUPLICATES = [
    { name: 'max_tokens 1 then 40000', body: `{"model":"plain",${MSGS},"max_tokens":1,"max_tokens":40000}`, param: 'max_tokens', message: 'duplicate member "max_tokens" at $:' },
    { name: 'two messages members', body: `{"model":"plain",${MSGS},"messages":[{"role":"user","content":"${'x'.repeat(5000)}"}]}`, param: 'messages', message: 'duplicate member "messages" at $:' },
    { name: '"tools":[] then real tools', body: `{"model":"plain",${MSGS},"tools":[],"tools":[${TOOL}]}`, param: 'tools', message: 'duplicate member "tools" at $:' },
    { name: 'stream false then true', body: `{"model":"plain",${MSGS},"stream":false,"stream":true}`, param: 'stream', message: 'duplicate member "stream" at $:' },
    { name: 'two stream_options', body: `{"model":"plain",${MSGS},"stream":true,"stream_options":{"include_usage":true},"stream_options":{"include_usage":false}}`, param: 'stream_options', message: 'duplicate member "stream_options" at $:' },
    { name: 'include_usage twice inside stream_options', body: `{"model":"plain",${MSGS},"stream":true,"stream_options":{"include_usage":true,"include_usage":false}}`, param: 'stream_options.include_usage', message: 'duplicate member "include_usage" at $.stream_options:' },
    { name: 'model cheap then expensive', body: `{"model":"plain",${MSGS},"model":"think"}`, param: 'model', message: 'duplicate member "model" at $:' },
    { name: 'role twice in a message', body: '{"model":"plain","messages":[{"role":"system","content":"a"},{"role":"user","content":"b","role":"assistant"}]}', param: 'messages[1].role', message: 'duplicate member "role" at $.messages[1]:' },
    { name: 'text twice in a content part', body: '{"model":"plain","messages":[{"role":"user","content":[{"type":"text","text":"short","text":"long"}]}]}', param: 'messages[0].content[0].text', message: 'duplicate member "text" at $.messages[0].content[0]:' },
    { name: 'function name twice inside tools', body: `{"model":"plain",${MSGS},"tools":[{"type":"function","function":{"name":"a","name":"b"}}]}`, param: 'tools[0].function.name', message: 'duplicate member "name" at $.tools[0].function:' },
    { name: 'thinking.type disabled then enabled', body: `{"model":"think",${MSGS},"thinking":{"type":"disabled","type":"enabled"}}`, param: 'thinking.type', message: 'duplicate member "type" at $.thinking:' },
    { name: 'response_format.type twice', body: `{"model":"plain",${MSGS},"response_format":{"type":"text","type":"json_object"}}`, param: 'response_format.type', message: 'duplicate member "type" at $.response_format:' },
    { name: 'escaped spelling of the same name', body: `{"model":"plain",${MSGS},"max_tokens":1,"max\\u005ftokens":40000}`, param: 'max_tokens', message: 'duplicate member "max_tokens" at $:' },
    { name: 'opaque pass-through member, nested', body: `{"model":"plain",${MSGS},"metadata":{"a":[{"b":1,"b":2}]}}`, param: 'metadata.a[0].b', message: 'duplicate member "b" at $.metadata.a[0]:' },
  ];
  for (const c of DUPLICATES) {
    test(`${c.name} -> 400 duplicate_member naming the key and path, upstream untouched`, async () => {
      await assertRefused(c.body, { code: 'duplicate_member', param: c.param, message: c.message });
    });
  }

  const VARIANTS = [
    { name: 'MAX_TOKENS beside max_tokens', body: `{"model":"plain",${MSGS},"max_tokens":1,"MAX_TOKENS":40000}`, param: 'MAX_TOKENS', like: 'max_tokens' },
    { name: 'maxTokens alone', body: `{"model":"plain",${MSGS},"maxTokens":40000}`, param: 'maxTokens', like: 'max_tokens' },
    { name: 'Model (would override the upstream model id)', body: `{"model":"plain",${MSGS},"Model":"gpt-expensive"}`, param: 'Model', like: 'model' },
    { name: 'Stream', body: `{"model":"plain",${MSGS},"Stream":true}`, param: 'Stream', like: 'stream' },
    { name: 'Kelvin sign for k', body: `{"model":"plain",${MSGS},"max_to\\u212Aens":40000}`, param: '["max_to\u212Aens"]', like: 'max_tokens' },
  ];
  for (const c of VARIANTS) {
    test(`${c.name} -> 400 ambiguous_member, upstream untouched`, async () => {
      await assertRefused(c.body, { code: 'ambiguous_member', param: c.param, message: `"${c.like}"` });
    });
  }

  test('40 concurrent clients with max_tokens 1 then 40000: every one refused, none reaches the upstream', async () => {
    const before0 = upstreamCalls();
    const body = `{"model":"plain",${MSGS},"max_tokens":1,"max_tokens":40000}`;
    const res = await Promise.all(Array.from({ length: 40 }, () => post(body)));
    assert.deepEqual(res.map((r) => r.status), Array(40).fill(400));
    assert.equal(upstreamCalls(), before0);
  });

  test('a body without repeats passes through with every member once, as sent', async () => {
    const sent = { model: 'plain', messages: userMsg('x'), max_tokens: 7, user: 'u1', tool_choice: 'auto', tools: [JSON.parse(TOOL)],
      metadata: { a: { Name: 1, name: 2 } }, response_format: { type: 'json_object' } };
    const n0 = pa.requests.length;
    const res = await chat(gw, sent);
    assert.equal(res.status, 200, res.text);
    assert.equal(pa.requests.length, n0 + 1);
    const got = pa.requests.at(-1).body;
    assert.equal(got.max_tokens, 7);
    assert.deepEqual(got.tools, sent.tools);
    assert.deepEqual(got.metadata, sent.metadata, 'opaque objects may use names differing in case');
    assert.equal(got.user, 'u1');
  });
});

describe('thinking switches', () => {
  const OFF = [
    { enable_thinking: false },
    { thinking: { type: 'disabled' } },
    { thinking: null },
    { reasoning_effort: null },
    { reasoning_effort: 'none' },
    { enable_thinking: false, thinking: { type: 'disabled' }, reasoning_effort: null },
  ];
  for (const off of OFF) {
    test(`${JSON.stringify(off)}: a deployment without reasoning stays eligible`, async () => {
      const n0 = pa.requests.length;
      const res = await chat(gw, { model: 'plain', messages: userMsg(), ...off });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers['x-gateway-deployment'], 'pa@default/m');
      assert.equal(pa.requests.length, n0 + 1);
      // The switch itself is forwarded as sent.
      for (const [k, v] of Object.entries(off)) assert.deepEqual(pa.requests.at(-1).body[k], v, k);
    });
  }
  const ON = [{ enable_thinking: true }, { thinking: { type: 'enabled' } }, { reasoning_effort: 'high' }, { thinking_budget: 1024 },
    { enable_thinking: false, reasoning_effort: 'high' }];
  for (const on of ON) {
    test(`${JSON.stringify(on)}: needs reasoning (plain route refuses, think route skips pa for pb)`, async () => {
      const n0 = upstreamCalls();
      const res = await chat(gw, { model: 'plain', messages: userMsg(), ...on });
      const e = openAiError(assert, res, 400);
      assert.match(e.message, /reasoning/, JSON.stringify(e));
      assert.equal(upstreamCalls(), n0, 'nothing sent');
      const nb = pb.requests.length;
      const ok = await chat(gw, { model: 'think', messages: userMsg(), ...on });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.headers['x-gateway-deployment'], 'pb@default/m');
      assert.equal(pb.requests.length, nb + 1);
    });
  }
  test('malformed switches are refused, not guessed', async () => {
    for (const [extra, param] of [[{ enable_thinking: 'false' }, 'enable_thinking'], [{ thinking: true }, 'thinking'], [{ thinking: {} }, 'thinking.type'], [{ reasoning_effort: 1 }, 'reasoning_effort']]) {
      const res = await chat(gw, { model: 'plain', messages: userMsg(), ...extra });
      assert.equal(openAiError(assert, res, 400).param, param, JSON.stringify(extra));
    }
  });
});

describe('numeric ranges', () => {
  const CASES = [
    [{ max_tokens: -5 }, 'max_tokens', "'max_tokens' must be a positive integer, not -5"],
    [{ max_completion_tokens: 0 }, 'max_completion_tokens', "'max_completion_tokens' must be a positive integer, not 0"],
    [{ temperature: 2.5 }, 'temperature', "'temperature' must be a number from 0 to 2, not 2.5"],
    [{ top_p: -5 }, 'top_p', "'top_p' must be a number from 0 to 1, not -5"],
    [{ presence_penalty: 3 }, 'presence_penalty', "'presence_penalty' must be a number from -2 to 2, not 3"],
    [{ frequency_penalty: -2.5 }, 'frequency_penalty', "'frequency_penalty' must be a number from -2 to 2, not -2.5"],
    [{ n: 0 }, 'n', "'n' must be an integer from 1 to 128, not 0"],
    [{ top_logprobs: 21, logprobs: true }, 'top_logprobs', "'top_logprobs' must be an integer from 0 to 20, not 21"],
    [{ top_k: -1 }, 'top_k', "'top_k' must be an integer from 0 to 2147483647, not -1"],
    [{ min_p: 2 }, 'min_p', "'min_p' must be a number from 0 to 1, not 2"],
    [{ seed: 0.5 }, 'seed', "'seed' must be an integer from -9223372036854775808 to 9223372036854775807, not 0.5"],
    [{ max_tokens: 10, max_completion_tokens: 40000 }, 'max_completion_tokens', "'max_tokens' and 'max_completion_tokens' are both set, to different values"],
  ];
  for (const [extra, param, message] of CASES) {
    test(`${JSON.stringify(extra)} -> 400 param ${param}`, async () => {
      const n0 = upstreamCalls();
      const res = await chat(gw, { model: 'plain', messages: userMsg(), ...extra });
      const e = openAiError(assert, res, 400);
      assert.equal(e.param, param);
      assert.ok(e.message.startsWith(message), e.message);
      assert.equal(upstreamCalls(), n0, 'nothing sent');
    });
  }
  test('the bounds themselves are accepted and forwarded', async () => {
    const edge = { temperature: 2, top_p: 1, presence_penalty: -2, frequency_penalty: 2, n: 1, top_logprobs: 20, logprobs: true, seed: -1, max_tokens: 5 };
    const res = await chat(gw, { model: 'plain', messages: userMsg(), ...edge });
    assert.equal(res.status, 200, res.text);
    for (const [k, v] of Object.entries(edge)) assert.equal(pa.requests.at(-1).body[k], v, k);
  });
});
