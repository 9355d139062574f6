// Route `match.path` sees the API path of the request: the same model name can go to different
// deployments from /v1/messages (Anthropic clients) and /v1/chat/completions (OpenAI clients), and
// the unprefixed /chat/completions counts as /v1/chat/completions.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chat, userMsg, request } from './lib/gateway.mjs';
import { startUpstream, startPolicyGateway } from './lib/routing_upstream.mjs';

const POLICY = `
version: 1
name: paths
catalog:
  - {ref: agents/agent-model, context_window: 100000, price: {input: 1, output: 2}}
  - {ref: chatbox/chat-model, context_window: 100000, price: {input: 1, output: 2}}
routes:
  - name: agents
    match: {model: "claude-*", path: "/v1/messages"}
    candidates: [agents/agent-model]
  - name: chat
    match: {model: "claude-*", path: "/v1/chat/*"}
    candidates: [chatbox/chat-model]
`;

let gw;
const up = {};
before(async () => {
  up.agents = await startUpstream({ name: 'agents' });
  up.chat = await startUpstream({ name: 'chatbox' });
  gw = await startPolicyGateway({
    policy: POLICY,
    providers: {
      agents: { type: 'openai_compatible', base_url: up.agents.origin + '/v1' },
      chatbox: { type: 'openai_compatible', base_url: up.chat.origin + '/v1' },
    },
  });
});
after(async () => {
  await gw?.stop();
  for (const u of Object.values(up)) await u.close?.();
});

test('the same alias routes by API path', async () => {
  const m = await request(gw.url + '/v1/messages', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: userMsg() }),
  });
  assert.equal(m.status, 200, m.text);
  assert.equal(m.headers['x-gateway-route'], 'agents');
  assert.equal(m.headers['x-gateway-deployment'], 'agents@default/agent-model');
  assert.equal(m.json.type, 'message');

  for (const p of ['/v1/chat/completions', '/chat/completions']) {
    const c = await request(gw.url + p, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', messages: userMsg() }),
    });
    assert.equal(c.status, 200, `${p}: ${c.text}`);
    assert.equal(c.headers['x-gateway-route'], 'chat', p);
    assert.equal(c.headers['x-gateway-deployment'], 'chatbox@default/chat-model', p);
    assert.equal(c.json.object, 'chat.completion');
  }
});

test('a path no route matches is a 404 in the API\'s own error shape', async () => {
  const r = await request(gw.url + '/v1/messages', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o', max_tokens: 16, messages: userMsg() }),
  });
  assert.equal(r.status, 404, r.text);
  assert.equal(r.json.type, 'error');
  assert.equal(r.json.error.type, 'not_found_error');
});
