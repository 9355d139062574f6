// A Claude-Code-like session through the gateway, with the official Anthropic SDK: a long system
// prompt in text blocks with cache_control, three tools (read_file, bash, edit), anthropic-beta
// headers and metadata.user_id as Claude Code sends them, and a streamed multi-turn agent loop in
// which the client runs each tool the model asks for and sends the results back. A policy routes
// the claude-* aliases: claude-sonnet-4-5 to the main model, claude-haiku-4-5 to the small fast
// one (what Claude Code uses for titles and summaries). Both are scripted OpenAI-compatible fakes,
// so every event the client receives is checked against what the fake sent, and every request the
// fakes receive against what the client said.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import fs from 'node:fs';
import path from 'node:path';
import { REPO } from './lib/gateway.mjs';
import { startPolicyGateway, explain } from './lib/routing_upstream.mjs';
import { startScripted } from './lib/scripted_upstream.mjs';
import { recordingFetch, assertEventGrammar, blocksOf, user } from './lib/anthropic.mjs';

const POLICY = `version: 1
name: claude-code-test
catalog:
  - {ref: main/big-coder, context_window: 200000, capabilities: [tools, json, reasoning], price: {input: 1, output: 4}}
  - {ref: fast/small-coder, context_window: 100000, capabilities: [tools, json], price: {input: 0.1, output: 0.4}}
routes:
  - name: claude-main
    match: {model: ["claude-sonnet-*", "claude-opus-*"]}
    objective: ordered
    candidates: [main/big-coder]
  - name: claude-fast
    match: {model: "claude-haiku-*"}
    objective: ordered
    candidates: [fast/small-coder]
`;

// Several KiB of system prompt in three text blocks, the last marked for caching, as Claude Code does.
const SYSTEM = [
  { type: 'text', text: 'You are an interactive CLI tool that helps users with software engineering tasks.' },
  {
    type: 'text',
    text: Array.from({ length: 80 }, (_, i) => `Rule ${i + 1}: prefer small, reviewable edits; run the tests after each change; quote paths exactly.`).join('\n'),
  },
  { type: 'text', text: 'Working directory: /repo\nPlatform: linux\nToday: 2026-12-02', cache_control: { type: 'ephemeral' } },
];
const SYSTEM_TEXT = SYSTEM.map((b) => b.text);

const TOOLS = [
  { name: 'read_file', description: 'Read a file from the local filesystem.', input_schema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'], additionalProperties: false, $schema: 'http://json-schema.org/draft-07/schema#' } },
  { name: 'bash', description: 'Run a shell command.', input_schema: { type: 'object', properties: { command: { type: 'string' }, timeout: { type: 'number' } }, required: ['command'] } },
  { name: 'edit', description: 'Replace text in a file.', input_schema: { type: 'object', properties: { path: { type: 'string' }, old_string: { type: 'string' }, new_string: { type: 'string' } }, required: ['path', 'old_string', 'new_string'] }, cache_control: { type: 'ephemeral' } },
];

// The main model's turns, in order: each the fake's scripted answer.
const TURNS = [
  { text: ["I'll look", ' at the test first.'], toolCalls: [{ id: 'call_read_1', name: 'read_file', args: ['{"path":', ' "test/sum.test.js"}'] }] },
  {
    reasoning: ['The test expects 5;', ' run it and read the code.'],
    toolCalls: [
      { id: 'call_bash_2', name: 'bash', args: ['{"command": "npm test', ' -- sum", "timeout": 120000}'] },
      { id: 'call_read_3', name: 'read_file', args: ['{"path": "src/sum.js"}'] },
    ],
  },
  { text: ['Found it: `a - b`.'], toolCalls: [{ id: 'call_edit_4', name: 'edit', args: ['{"path": "src/sum.js", "old_string": "a - b", ', '"new_string": "a + b"}'] }] },
  { text: ['Fixed:', ' `sum` now adds.', ' The test passes.'] },
];

// What the client's tools "return" for each call.
const RESULTS = {
  call_read_1: "test('sum', () => expect(sum(2, 3)).toBe(5));",
  call_bash_2: 'FAIL test/sum.test.js\n  expected 5, received -1',
  call_read_3: 'export const sum = (a, b) => a - b;',
  call_edit_4: 'The file src/sum.js has been updated.',
};

let gw, main, fast, rec, client;

before(async () => {
  main = await startScripted({ name: 'main' });
  fast = await startScripted({ name: 'fast' });
  gw = await startPolicyGateway({
    policy: POLICY,
    providers: { main: { type: 'openai_compatible', base_url: main.baseUrl }, fast: { type: 'openai_compatible', base_url: fast.baseUrl } },
  });
  rec = recordingFetch();
  // ANTHROPIC_BASE_URL pointing at the gateway is all Claude Code needs; the SDK is given it directly.
  client = new Anthropic({
    baseURL: gw.url, apiKey: 'unused-in-open-mode', maxRetries: 0, timeout: 30000, fetch: rec.fetch,
    defaultHeaders: { 'anthropic-beta': 'claude-code-20250219,interleaved-thinking-2025-05-14' },
  });
});

after(async () => {
  await main?.close();
  await fast?.close();
  await gw?.stop();
});

// The content blocks the gateway must stream for a scripted answer, in order: thinking (closed by
// an empty signature), text, then one tool_use block per call with the arguments' fragments.
function expectedBlocks(a) {
  const blocks = [];
  if (a.reasoning) blocks.push({ type: 'thinking', thinking: '', signature: '', deltas: [...a.reasoning.map((thinking) => ({ type: 'thinking_delta', thinking })), { type: 'signature_delta', signature: '' }] });
  if (a.text) blocks.push({ type: 'text', text: '', deltas: a.text.map((text) => ({ type: 'text_delta', text })) });
  for (const t of a.toolCalls ?? []) blocks.push({ type: 'tool_use', id: t.id, name: t.name, input: {}, deltas: t.args.map((partial_json) => ({ type: 'input_json_delta', partial_json })) });
  return blocks;
}

// One streamed request; returns the SDK's final message, the raw events and the response.
async function turn(params) {
  const stream = client.messages.stream(params);
  const { response } = await stream.withResponse();
  const message = await stream.finalMessage();
  return { message, events: await rec.last(), response };
}

test('a streamed agent loop: main and fast aliases routed by the policy, every event as the fakes sent it', async () => {
  // Claude Code first asks the small model for a title, streamed.
  fast.queue.push({ text: ['Fix', ' failing sum test'], usage: { prompt_tokens: 40, completion_tokens: 4, total_tokens: 44 } });
  const title = await turn({ model: 'claude-haiku-4-5', max_tokens: 32, system: [{ type: 'text', text: 'Write a 3-word title.' }], messages: [user('The sum test fails, fix it')] });
  assert.equal(title.response.headers.get('x-gateway-deployment'), 'fast@default/small-coder');
  assertEventGrammar(title.events);
  assert.deepEqual(blocksOf(title.events), expectedBlocks({ text: ['Fix', ' failing sum test'] }));
  assert.equal(title.message.content[0].text, 'Fix failing sum test');
  assert.equal(fast.requests.length, 1);
  assert.equal(fast.requests[0].model, 'small-coder');

  const messages = [user('The sum test fails, fix it')];
  for (let i = 0; i < TURNS.length; i++) {
    const script = TURNS[i];
    main.queue.push(script);
    const n0 = main.requests.length;
    const { message, events, response } = await turn({
      model: 'claude-sonnet-4-5', max_tokens: 8192, system: SYSTEM, tools: TOOLS, tool_choice: { type: 'auto' },
      thinking: { type: 'enabled', budget_tokens: 4096 }, metadata: { user_id: 'user_abc_session_1' }, messages,
    });
    const where = `turn ${i + 1}`;
    assert.equal(response.headers.get('x-gateway-deployment'), 'main@default/big-coder', where);
    assert.equal(main.requests.length, n0 + 1, `${where}: one upstream call`);

    // The events, against the script.
    assertEventGrammar(events);
    assert.deepEqual(blocksOf(events), expectedBlocks(script), where);
    const stop = script.toolCalls ? 'tool_use' : 'end_turn';
    assert.equal(events.at(-2).data.delta.stop_reason, stop, where);
    assert.equal(message.stop_reason, stop, where);
    const uses = message.content.filter((b) => b.type === 'tool_use');
    assert.deepEqual(uses.map((u) => [u.id, u.name, u.input]), (script.toolCalls ?? []).map((t) => [t.id, t.name, JSON.parse(t.args.join(''))]), where);

    // The request, against what the client sent.
    const sent = main.requests.at(-1).body;
    assert.equal(sent.model, 'big-coder', where);
    assert.equal(sent.stream, true, where);
    assert.equal(sent.user, 'user_abc_session_1', where);
    assert.deepEqual(sent.thinking, { type: 'enabled', budget_tokens: 4096 }, where);
    assert.equal(sent.tool_choice, 'auto', where);
    assert.deepEqual(sent.tools.map((t) => [t.function.name, t.function.parameters]), TOOLS.map((t) => [t.name, t.input_schema]), where);
    assert.equal(sent.messages[0].role, 'system', where);
    assert.deepEqual(sent.messages[0].content.map((p) => p.text), SYSTEM_TEXT, `${where}: the whole system prompt, block by block`);
    checkHistory(sent.messages.slice(1), messages, where);

    // The client runs the tools and answers every call in one user message.
    messages.push({ role: 'assistant', content: message.content });
    // Claude Code adds reminders after the results of a turn: text after the tool_result blocks.
    const results = uses.map((u) => ({ type: 'tool_result', tool_use_id: u.id, content: RESULTS[u.id] }));
    if (i === 1) results.push({ type: 'text', text: '<system-reminder>The user edited test/sum.test.js.</system-reminder>' });
    // ... and marks the newest block for caching; results may also come as text blocks, or as errors.
    if (results.length) results.at(-1).cache_control = { type: 'ephemeral' };
    if (i === 2) results[0] = { type: 'tool_result', tool_use_id: results[0].tool_use_id, content: [{ type: 'text', text: RESULTS.call_edit_4 }], is_error: false, cache_control: { type: 'ephemeral' } };
    if (uses.length) messages.push({ role: 'user', content: results });
  }
  assert.equal(fast.requests.length, 1, 'the main loop never reached the fast model');
  assert.equal(main.requests.length, TURNS.length);
});

// The OpenAI messages the main fake received mirror the Anthropic history: user text, assistant
// text + reasoning + tool_calls (same ids, same arguments), one tool message per tool_result.
function checkHistory(sent, history, where) {
  const want = [];
  for (const m of history) {
    if (typeof m.content === 'string') {
      want.push({ role: m.role, content: m.content });
      continue;
    }
    if (m.role === 'user') {
      // Tool messages first (OpenAI wants them right after the assistant's tool_calls), then the text.
      for (const b of m.content.filter((b) => b.type === 'tool_result'))
        want.push({ role: 'tool', tool_call_id: b.tool_use_id, content: typeof b.content === 'string' ? b.content : b.content.map((t) => t.text).join('\n') });
      const text = m.content.filter((b) => b.type === 'text');
      if (text.length === 1) want.push({ role: 'user', content: text[0].text });
      continue;
    }
    const text = m.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
    const reasoning = m.content.filter((b) => b.type === 'thinking').map((b) => b.thinking).join('\n');
    const calls = m.content.filter((b) => b.type === 'tool_use');
    // OpenAI's form of an assistant turn that only calls tools: content null.
    const a = { role: 'assistant', content: text || (calls.length ? null : '') };
    if (reasoning) a.reasoning_content = reasoning;
    if (calls.length) a.tool_calls = calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, input: c.input } }));
    want.push(a);
  }
  const got = sent.map((m) => {
    if (!m.tool_calls) return m;
    return { ...m, tool_calls: m.tool_calls.map((c) => ({ id: c.id, type: c.type, function: { name: c.function.name, input: JSON.parse(c.function.arguments) } })) };
  });
  assert.deepEqual(got, want, `${where}: the history as the upstream saw it`);
}

test('the aliases route by the policy: an unknown claude-* model is a 404 in Anthropic shape, for messages and count_tokens', async () => {
  await assert.rejects(client.messages.create({ model: 'claude-3-nonesuch', max_tokens: 8, messages: [user('hi')] }), (e) => {
    assert.ok(e instanceof Anthropic.NotFoundError, `${e?.constructor?.name}: ${e}`);
    assert.equal(e.error.error.type, 'not_found_error');
    return true;
  });
  // count_tokens answers for the names the policy routes (without planning) and 404s the others.
  const counted = await client.messages.countTokens({ model: 'claude-sonnet-4-5', system: SYSTEM, tools: TOOLS, messages: [user('hi')] });
  assert.ok(counted.input_tokens > 1000, `the long system prompt is counted: ${counted.input_tokens}`);
  await assert.rejects(client.messages.countTokens({ model: 'claude-3-nonesuch', messages: [user('hi')] }), (e) => e instanceof Anthropic.NotFoundError);
  fast.queue.push({ text: ['short'] });
  const { data, response } = await client.messages.create({ model: 'claude-haiku-4-5-20251001', max_tokens: 8, messages: [user('hi')] }).withResponse();
  assert.equal(response.headers.get('x-gateway-deployment'), 'fast@default/small-coder');
  assert.equal(data.model, 'claude-haiku-4-5-20251001', 'the alias the client sent is echoed');
});

test('policies/examples/claude-code.yaml: haiku names take the fast route, every other claude-* name the main one', async () => {
  const policy = fs.readFileSync(path.join(REPO, 'policies', 'examples', 'claude-code.yaml'), 'utf8');
  const ex = await startPolicyGateway({ policy, providers: {} });
  try {
    const route = async (model) => (await explain(ex, { model, messages: [user('hi')] })).route;
    for (const m of ['claude-haiku-4-5', 'claude-haiku-4-5-20251001', 'claude-3-5-haiku-20241022']) assert.equal(await route(m), 'claude-fast', m);
    for (const m of ['claude-sonnet-4-5', 'claude-opus-4-1', 'claude-sonnet-4-5-20250929']) assert.equal(await route(m), 'claude-main', m);
    const main = await explain(ex, { model: 'claude-sonnet-4-5', messages: [user('hi')] });
    assert.deepEqual(main.candidates.map((c) => c.deployment), ['kimi@intl/kimi-k2.7-code', 'glm@intl-coding/glm-5.1', 'deepseek@global/deepseek-v4-pro', 'qwen@ap-southeast-1/qwen3-coder-plus']);
  } finally {
    await ex.stop();
  }
});
