// The Anthropic-compatible endpoint of each fake vendor (POST <anthropic base>/v1/messages), in the
// Anthropic Messages wire format: message JSON, or the SSE sequence message_start, ping,
// content_block_start / _delta / _stop, message_delta, message_stop, and `event: error`.
// startFake (fake_upstream.mjs) routes a request here when its path is the dialect's Anthropic path.
//
// Scenarios, by the upstream `model` (suffix after ':' ignored), as for the OpenAI path:
//   ok                 a thinking block (thinking_delta + signature_delta) then a text block
//   tool-use           a text block then a tool_use block (input_json_delta), stop_reason tool_use
//   no-balance         the dialect's out-of-balance error (GLM: 429 rate_limit_error code "1113")
//   rate-limit         429 rate_limit_error, Retry-After: 1 (GLM code "1302")
//   overloaded         529 overloaded_error
//   server-error       500 api_error
//   bad-request        400 invalid_request_error (the client's fault)
//   context-too-long   400 invalid_request_error "prompt is too long" (GLM code "1261")
//   bad-key            401 authentication_error (also any request without the right key)
//   hang               accepts the request, never answers
//   close-before-headers  socket destroyed as soon as the request is read
//   close-mid-stream   message_start + some text, then the socket is destroyed (non-stream: half a body)
//   stall-mid-stream   message_start + some text, then only `event: ping` every 200 ms
//   error-before-content  message_start, ping, then `event: error` overloaded_error
//   error-mid-stream   message_start + some text, then `event: error` overloaded_error
//   usage-then-cut     the whole answer up to message_delta (usage included), then the socket is destroyed
//   no-message-stop    the whole answer but message_stop, then a clean end of the body
//   lying-usage        message_delta reports fewer input tokens than message_start did
//   bad-usage          message_delta reports a negative output count
//   huge-usage         the whole answer, but usage claims HUGE_OUTPUT_TOKENS output tokens, more than
//                      any catalog deployment's window (non-stream: in the message's usage)
//   garbage            200 and a body that is not JSON (non-stream) / an event that is not JSON (stream)
//
// Usage placement. The reference (shared/reference/providers.md) documents none of these vendors'
// Anthropic usage [U]; the fakes spread the shapes a relay must handle over the dialects:
//   deepseek, glm  Anthropic's own: input and cache figures in message_start, message_delta only
//                  output_tokens
//   kimi           message_start input_tokens 0 and no cache fields; message_delta carries input,
//                  cache read and output (cumulative)
//   qwen, minimax  both: message_delta repeats every figure cumulatively; MiniMax also reports
//                  cache_creation_input_tokens (it prices cache writes)
// Auth: DeepSeek's guide sets ANTHROPIC_API_KEY, so its fake wants `x-api-key: <key>`; the others
// want `Authorization: Bearer <key>` (GLM: or its JWT), what their Claude Code setups send
// (ANTHROPIC_AUTH_TOKEN) [U for Qwen, Kimi, MiniMax].

import crypto from 'node:crypto';

export const ANTHROPIC_PATHS = {
  deepseek: '/anthropic/v1/messages',
  qwen: '/apps/anthropic/v1/messages',
  kimi: '/anthropic/v1/messages',
  glm: '/api/anthropic/v1/messages',
  minimax: '/anthropic/v1/messages',
};

// The value for the gateway config's anthropic_base_url, for a fake of the dialect (null: none).
export function anthropicBaseUrlFor(dialect, origin) {
  const path = ANTHROPIC_PATHS[dialect];
  return path ? origin + path.slice(0, -'/v1/messages'.length) : null;
}

export const ANTHROPIC_USAGE = {
  deepseek: { input: 8, cache_read: 32, cache_creation: 0, output: 20 },
  qwen: { input: 26, cache_read: 24, cache_creation: 0, output: 18 },
  kimi: { input: 12, cache_read: 48, cache_creation: 0, output: 16 },
  glm: { input: 6, cache_read: 64, cache_creation: 0, output: 22 },
  minimax: { input: 30, cache_read: 40, cache_creation: 10, output: 24 },
};

// The gateway's core usage for the dialect's figures: prompt = input + cache read + cache creation.
export function anthropicCoreUsage(dialect) {
  const u = ANTHROPIC_USAGE[dialect];
  return { prompt: u.input + u.cache_read + u.cache_creation, cached: u.cache_read, cacheWrite: u.cache_creation, completion: u.output };
}

const PLACEMENT = { deepseek: 'start', glm: 'start', kimi: 'delta', qwen: 'both', minimax: 'both' };

export const HUGE_OUTPUT_TOKENS = 50_000_000;

export const ANTHROPIC_TEXT = (dialect) => ['Hello', ' from', ' ' + dialect, '!'];
export const ANTHROPIC_THINKING = ['Let me', ' think.'];
export const TOOL_CALL = { name: 'read_file', json: ['{"path": ', '"/etc/hosts"}'] };

function fullUsage(u) {
  return { input_tokens: u.input, cache_creation_input_tokens: u.cache_creation, cache_read_input_tokens: u.cache_read, output_tokens: u.output };
}

function startUsage(dialect) {
  const u = ANTHROPIC_USAGE[dialect];
  if (PLACEMENT[dialect] === 'delta') return { input_tokens: 0, output_tokens: 0 };
  const s = { input_tokens: u.input, cache_read_input_tokens: u.cache_read, output_tokens: 0 };
  if (u.cache_creation) s.cache_creation_input_tokens = u.cache_creation;
  return s;
}

function deltaUsage(dialect) {
  const u = ANTHROPIC_USAGE[dialect];
  if (PLACEMENT[dialect] === 'start') return { output_tokens: u.output };
  return fullUsage(u);
}

// ---- errors, Anthropic-shaped, per dialect ------------------------------------------------------
const err = (type, message, code) => ({ type: 'error', error: code ? { type, code, message } : { type, message } });

const COMMON_ERRORS = {
  'rate-limit': [429, err('rate_limit_error', 'Rate limit reached, please slow down')],
  overloaded: [529, err('overloaded_error', 'Overloaded')],
  'server-error': [500, err('api_error', 'Internal server error')],
  'bad-request': [400, err('invalid_request_error', 'max_tokens: Field required')],
  'context-too-long': [400, err('invalid_request_error', 'prompt is too long: 140000 tokens > 131072 maximum')],
  'bad-key': [401, err('authentication_error', 'invalid x-api-key')],
};

// Out of balance: GLM's is [V] (shared/reference/providers.md); the others follow each vendor's
// OpenAI-side status and code [U].
const NO_BALANCE = {
  deepseek: [402, err('invalid_request_error', 'Insufficient Balance')],
  qwen: [403, err('permission_error', 'Access denied, please make sure your account is in good standing.', 'Arrearage')],
  kimi: [403, err('exceeded_current_quota_error', 'Your account org-3c4b is suspended, please check your plan and billing details')],
  glm: [429, err('rate_limit_error', 'Insufficient balance or no resource package. Please recharge.', '1113')],
  minimax: [429, err('rate_limit_error', 'insufficient balance')],
};

const GLM_CODES = { 'rate-limit': '1302', 'context-too-long': '1261', 'bad-key': '1000', 'server-error': '500' };

export function anthropicErrorFor(dialect, kind) {
  const [status, body] = kind === 'no-balance' ? NO_BALANCE[dialect] : COMMON_ERRORS[kind];
  const b = structuredClone(body);
  if (dialect === 'glm' && GLM_CODES[kind]) b.error.code = GLM_CODES[kind];
  return [status, b];
}

// ---- answers ------------------------------------------------------------------------------------
function messageId() {
  return 'msg_' + crypto.randomBytes(12).toString('hex');
}

function messageObject(dialect, model) {
  return {
    id: messageId(),
    type: 'message',
    role: 'assistant',
    model,
    content: [
      { type: 'thinking', thinking: ANTHROPIC_THINKING.join(''), signature: 'sig-' + dialect },
      { type: 'text', text: ANTHROPIC_TEXT(dialect).join('') },
    ],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: fullUsage(ANTHROPIC_USAGE[dialect]),
  };
}

const ev = (type, fields = {}) => [type, { type, ...fields }];

function headEvents(dialect, model) {
  return [
    ev('message_start', {
      message: { id: messageId(), type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: startUsage(dialect) },
    }),
    ev('ping'),
  ];
}

function textBlock(index, pieces) {
  return [
    ev('content_block_start', { index, content_block: { type: 'text', text: '' } }),
    ...pieces.map((text) => ev('content_block_delta', { index, delta: { type: 'text_delta', text } })),
    ev('content_block_stop', { index }),
  ];
}

function thinkingBlock(index, dialect) {
  return [
    ev('content_block_start', { index, content_block: { type: 'thinking', thinking: '' } }),
    ...ANTHROPIC_THINKING.map((thinking) => ev('content_block_delta', { index, delta: { type: 'thinking_delta', thinking } })),
    ev('content_block_delta', { index, delta: { type: 'signature_delta', signature: 'sig-' + dialect } }),
    ev('content_block_stop', { index }),
  ];
}

function toolBlock(index) {
  return [
    ev('content_block_start', { index, content_block: { type: 'tool_use', id: 'toolu_' + crypto.randomBytes(8).toString('hex'), name: TOOL_CALL.name, input: {} } }),
    ...TOOL_CALL.json.map((partial_json) => ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json } })),
    ev('content_block_stop', { index }),
  ];
}

function tailEvents(dialect, stopReason, usage = deltaUsage(dialect)) {
  return [ev('message_delta', { delta: { stop_reason: stopReason, stop_sequence: null }, usage }), ev('message_stop')];
}

// The whole event list of a normal answer (scenario 'ok' or 'tool-use').
export function anthropicStreamEvents(dialect, model, scenario = 'ok') {
  if (scenario === 'tool-use')
    return [...headEvents(dialect, model), ...textBlock(0, ['Let me look.']), ...toolBlock(1), ...tailEvents(dialect, 'tool_use')];
  return [...headEvents(dialect, model), ...thinkingBlock(0, dialect), ...textBlock(1, ANTHROPIC_TEXT(dialect)), ...tailEvents(dialect, 'end_turn')];
}

const frame = ([type, data]) => `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;

// ---- the route ----------------------------------------------------------------------------------
export function isAnthropicPath(dialect, url) {
  return ANTHROPIC_PATHS[dialect] !== undefined && url.split('?')[0] === ANTHROPIC_PATHS[dialect];
}

// tools: { key, auth, nativeModels, scenarios ({model: scenario}), checkJwt(token) -> bool, later(ms, fn), every(ms, fn), stop(t) }
export function serveAnthropic(dialect, rec, req, res, tools) {
  rec.api = 'anthropic';
  const sendJson = (status, obj, extra = {}) => {
    const text = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extra });
    res.end(text);
  };
  const sendError = (kind, extra = {}) => {
    const [status, body] = anthropicErrorFor(dialect, kind);
    sendJson(status, body, extra);
  };
  if (!authorised(dialect, rec, tools)) return sendError('bad-key');
  const body = rec.body;
  // Anthropic requires model, max_tokens and messages: a relay that loses a field is caught here.
  if (!body || typeof body !== 'object' || Array.isArray(body) || typeof body.model !== 'string' ||
      !Number.isInteger(body.max_tokens) || !Array.isArray(body.messages))
    return sendError('bad-request');
  const model = body.model;
  const scenario = tools.scenarios?.[model] ?? (tools.nativeModels.includes(model) ? 'ok' : model.split(':')[0]);
  rec.scenario = scenario;
  const stream = body.stream === true;

  switch (scenario) {
    case 'no-balance':
    case 'overloaded':
    case 'server-error':
    case 'bad-request':
    case 'context-too-long':
    case 'bad-key':
      return sendError(scenario);
    case 'rate-limit':
      return sendError('rate-limit', { 'retry-after': '1' });
    case 'hang':
      return;
    case 'close-before-headers':
      req.socket.destroy();
      return;
    case 'garbage':
      if (stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end('event: message_start\ndata: {this is not json\n\n');
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('<html><body>502 Bad Gateway (cloudflare)</body></html>');
      }
      return;
    case 'ok':
    case 'tool-use':
    case 'close-mid-stream':
    case 'stall-mid-stream':
    case 'error-before-content':
    case 'error-mid-stream':
    case 'usage-then-cut':
    case 'no-message-stop':
    case 'lying-usage':
    case 'bad-usage':
    case 'huge-usage':
      break;
    default:
      return sendError('bad-request');
  }

  if (!stream) {
    const message = messageObject(dialect, model);
    if (scenario === 'huge-usage') message.usage.output_tokens = HUGE_OUTPUT_TOKENS;
    const text = JSON.stringify(message);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    if (scenario === 'close-mid-stream' || scenario === 'usage-then-cut') {
      res.write(text.slice(0, Math.floor(text.length / 2)));
      tools.later(50, () => res.socket?.destroy());
      return;
    }
    return res.end(text);
  }
  return answerStream(dialect, model, scenario, res, tools);
}

function authorised(dialect, rec, tools) {
  if (!tools.key) return true;
  if (dialect === 'deepseek') return rec.headers['x-api-key'] === tools.key;
  const h = rec.headers.authorization || '';
  if (tools.auth === 'jwt') {
    const m = /^Bearer (.+)$/.exec(h);
    return m ? tools.checkJwt(m[1]) : false;
  }
  return h === 'Bearer ' + tools.key;
}

function answerStream(dialect, model, scenario, res, tools) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
  let closed = false;
  res.on('close', () => (closed = true));
  const write = (e) => res.write(frame(e));
  const head = headEvents(dialect, model);
  const partial = [...head, ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'partial' } })];
  const all = anthropicStreamEvents(dialect, model, scenario === 'tool-use' ? 'tool-use' : 'ok');
  const overloaded = ev('error', { error: { type: 'overloaded_error', message: 'Overloaded' } });
  switch (scenario) {
    case 'close-mid-stream':
      partial.forEach(write);
      tools.later(100, () => res.socket?.destroy());
      return;
    case 'stall-mid-stream': {
      partial.forEach(write);
      const t = tools.every(200, () => (closed ? tools.stop(t) : write(ev('ping'))));
      return;
    }
    case 'error-before-content':
      [...head, overloaded].forEach(write);
      return res.end();
    case 'error-mid-stream':
      [...partial, overloaded].forEach(write);
      return res.end();
    case 'usage-then-cut':
      all.slice(0, -1).forEach(write);
      tools.later(100, () => res.socket?.destroy());
      return;
    case 'no-message-stop':
      all.slice(0, -1).forEach(write);
      return res.end();
    case 'lying-usage': {
      const u = ANTHROPIC_USAGE[dialect];
      const lie = { input_tokens: 1, cache_read_input_tokens: 0, output_tokens: u.output };
      const body = all.slice(0, -2);
      // The lie needs the truth first: message_start carries the real input figures here.
      body[0] = ev('message_start', { message: { ...body[0][1].message, usage: { input_tokens: u.input, cache_read_input_tokens: u.cache_read, output_tokens: 0 } } });
      [...body, ...tailEvents(dialect, 'end_turn', lie)].forEach(write);
      return res.end();
    }
    case 'bad-usage':
      [...all.slice(0, -2), ...tailEvents(dialect, 'end_turn', { output_tokens: -3 })].forEach(write);
      return res.end();
    case 'huge-usage':
      [...all.slice(0, -2), ...tailEvents(dialect, 'end_turn', { ...deltaUsage(dialect), output_tokens: HUGE_OUTPUT_TOKENS })].forEach(write);
      return res.end();
    default:
      all.forEach(write);
      return res.end();
  }
}
