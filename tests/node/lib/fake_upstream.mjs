// In-process fake upstreams speaking each provider's real wire format, as each vendor's API
// documentation describes it. One fake serves many scenarios: the behaviour is chosen by
// the upstream `model` the gateway sends (the model id of the deployment), so a test config maps
// aliases to deployments such as `deepseek/keepalive` or `glm/no-balance`.
//
// Scenarios (upstream model name; a suffix after ':' is ignored, so 'ok:2' is a second deployment
// that behaves like 'ok'):
//   ok                  normal answer in the dialect's exact shape (reasoning_content + content, usage
//                       in the dialect's own fields)
//   keepalive           DeepSeek queueing: ': keep-alive' SSE comments (stream) or blank lines
//                       (non-stream) for ~450 ms, then the normal answer
//   keepalive-forever   200 + keep-alive comments / blank lines every 200 ms, never any content
//   no-balance          the dialect's out-of-balance error (DeepSeek 402, Qwen 403 Arrearage,
//                       Kimi 403 exceeded_current_quota_error, GLM 429 code 1113)
//   rate-limit          429 with Retry-After: 1, dialect-shaped
//   server-error        500, dialect-shaped
//   bad-request         400, dialect-shaped (the client's fault: must not fail over)
//   bad-key / wrong-region  401, dialect-shaped (Qwen: region-bound key mismatch)
//   hang                accepts the request, never answers
//   close-mid-stream    stream: 2 content chunks then the socket is destroyed;
//                       non-stream: headers + half a body, then destroyed
//   close-before-headers  socket destroyed as soon as the request is read
//   trickle             5 content chunks, one every 300 ms
//   fragmented          the normal stream written 5 bytes at a time (events split across TCP reads)
//   sse-variants        the normal stream in other legal SSE spellings: CRLF line ends, 'data:'
//                       without a space, id:/event: fields, unrelated comment lines
//   stall-mid-stream    stream: 2 content chunks, then only ': keep-alive' comments every 200 ms
//   garbage             200 with a body that is not JSON (non-stream) / not JSON events (stream)
//   rate-limit-long     429 with Retry-After: 7, dialect-shaped
//   stall-body          non-stream: 200 headers and half the body, then silence (no byte, ever);
//                       stream: role chunk + one content chunk, then silence (not even keep-alives)
//   usage-then-cut      stream: role + content chunks, a usage-only chunk (choices: []), then the
//                       socket is destroyed before the finish chunk; non-stream: like close-mid-stream
//   context-too-long    400, the dialect's "prompt longer than the model's context" error (what a
//                       deployment whose real window is smaller than the catalog says answers)
//
// Worst realistic cases reproduced on purpose (documented per dialect below):
//   DeepSeek: usage has prompt_cache_hit_tokens / prompt_cache_miss_tokens and NO prompt_tokens_details;
//             with include_usage a usage-only chunk with `choices: []` precedes [DONE]; keep-alive comments.
//   Qwen:     every chunk carries "usage": null; usage-only last chunk (choices: []) only with include_usage;
//             cache hits in prompt_tokens_details.cached_tokens.
//   Kimi:     streaming usage ONLY inside choices[0].usage of the finish chunk, never at top level,
//             even when include_usage is set (the reference says the top-level form needs include_usage,
//             client libraries had to be fixed for the choices[0].usage form; we emit only the form the
//             gateway must translate). That nested usage carries `cached_tokens` at its own top level
//             (no prompt_tokens_details). Non-stream usage has both cached_tokens and prompt_tokens_details.
//   GLM:      usage rides on the finish chunk (choices non-empty) regardless of include_usage; ids are
//             numeric strings; no "object" field in responses or chunks (as in bigmodel's examples);
//             errors are {"error":{"code":"1113","message":...}} with business codes.
//
// The fakes of vendors with a Responses API (Qwen, DeepSeek, Kimi, GLM) serve it too, in its wire format:
// see fake_responses.mjs (scenarios per model in responsesScenarios).
// Each vendor fake also serves its Anthropic-compatible endpoint (POST <anthropicBaseUrl>/v1/messages)
// in the Anthropic Messages wire format, with its own scenarios and quirks: see fake_anthropic.mjs.

import http from 'node:http';
import https from 'node:https';
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import { anthropicBaseUrlFor, isAnthropicPath, serveAnthropic } from './fake_anthropic.mjs';
import { answerEmbeddings, isEmbeddingsPath } from './fake_embeddings.mjs';
import { isResponsesPath, responsesBaseUrlFor, serveResponses } from './fake_responses.mjs';

export const PATHS = {
  deepseek: ['/chat/completions', '/v1/chat/completions'],
  qwen: ['/compatible-mode/v1/chat/completions'],
  kimi: ['/v1/chat/completions'],
  glm: ['/api/paas/v4/chat/completions'],
  openai: ['/v1/chat/completions'],
  minimax: ['/v1/chat/completions'],
};

// Base URL (as the gateway config's base_urls wants it) for a fake of the dialect.
export function baseUrlFor(dialect, origin) {
  switch (dialect) {
    case 'deepseek':
      return origin;
    case 'qwen':
      return origin + '/compatible-mode/v1';
    case 'kimi':
    case 'openai':
      return origin + '/v1';
    case 'glm':
      return origin + '/api/paas/v4';
    case 'minimax':
      return origin + '/v1';
    default:
      throw new Error('unknown dialect ' + dialect);
  }
}

// Fixed token figures per dialect so tests can assert normalisation exactly.
export const USAGE = {
  deepseek: { prompt: 40, cached: 32, completion: 20, reasoning: 8 },
  qwen: { prompt: 50, cached: 24, completion: 18, reasoning: 6 },
  kimi: { prompt: 60, cached: 48, completion: 16, reasoning: 0 },
  glm: { prompt: 70, cached: 64, completion: 22, reasoning: 5 },
  openai: { prompt: 30, cached: 0, completion: 12, reasoning: 0 },
  minimax: { prompt: 80, cached: 40, completion: 24, reasoning: 6 },
};

export const CONTENT_PIECES = (dialect) => ['Hello', ' from', ' ' + dialect, '!'];
export const REASONING_PIECES = ['Let me', ' think.'];
export const TRICKLE = { count: 5, intervalMs: 300 };

const nowS = () => Math.floor(Date.now() / 1000);

// u: {prompt, cached, completion, reasoning}; the dialect's fixed USAGE figures unless given.
export function dialectUsage(dialect, where, u = USAGE[dialect]) {
  const total = u.prompt + u.completion;
  switch (dialect) {
    case 'deepseek':
      return {
        prompt_tokens: u.prompt,
        completion_tokens: u.completion,
        total_tokens: total,
        completion_tokens_details: { reasoning_tokens: u.reasoning },
        prompt_cache_hit_tokens: u.cached,
        prompt_cache_miss_tokens: u.prompt - u.cached,
      };
    case 'qwen':
      return {
        prompt_tokens: u.prompt,
        completion_tokens: u.completion,
        total_tokens: total,
        prompt_tokens_details: { cached_tokens: u.cached },
        completion_tokens_details: { reasoning_tokens: u.reasoning },
      };
    case 'kimi':
      if (where === 'stream') {
        return { prompt_tokens: u.prompt, completion_tokens: u.completion, total_tokens: total, cached_tokens: u.cached };
      }
      return {
        prompt_tokens: u.prompt,
        completion_tokens: u.completion,
        total_tokens: total,
        cached_tokens: u.cached,
        prompt_tokens_details: { cached_tokens: u.cached },
      };
    case 'glm':
      return {
        prompt_tokens: u.prompt,
        completion_tokens: u.completion,
        total_tokens: total,
        prompt_tokens_details: { cached_tokens: u.cached },
        completion_tokens_details: { reasoning_tokens: u.reasoning },
      };
    // MiniMax: the reference documents no usage shape of its own; the OpenAI-compatible form with
    // cache hits and reasoning tokens in the details objects, as the gateway's generic dialect reads it.
    case 'minimax':
      return {
        prompt_tokens: u.prompt,
        completion_tokens: u.completion,
        total_tokens: total,
        prompt_tokens_details: { cached_tokens: u.cached },
        completion_tokens_details: { reasoning_tokens: u.reasoning },
      };
    default:
      return {
        prompt_tokens: u.prompt,
        completion_tokens: u.completion,
        total_tokens: total,
        prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
      };
  }
}

function newId(dialect) {
  switch (dialect) {
    case 'deepseek':
      return crypto.randomUUID();
    case 'glm':
      return String(BigInt('0x' + crypto.randomBytes(8).toString('hex')) % 10n ** 19n);
    case 'kimi':
      return 'chatcmpl-' + crypto.randomBytes(12).toString('hex');
    case 'qwen':
      return 'chatcmpl-' + crypto.randomUUID();
    default:
      return 'chatcmpl-' + crypto.randomBytes(14).toString('base64url');
  }
}

// ---- error bodies, per dialect ---------------------------------------------------------------
const ERRORS = {
  deepseek: {
    'no-balance': [402, { error: { message: 'Insufficient Balance', type: 'unknown_error', param: null, code: 'invalid_request_error' } }],
    'rate-limit': [429, { error: { message: 'Rate Limit Reached', type: 'rate_limit_error', param: null, code: 'rate_limit_reached' } }],
    'server-error': [500, { error: { message: 'Internal Server Error', type: 'server_error', param: null, code: 'internal_error' } }],
    'bad-request': [400, { error: { message: 'Invalid max_tokens value, the valid range of max_tokens is [1, 393216]', type: 'invalid_request_error', param: null, code: 'invalid_request_error' } }],
    'bad-key': [401, { error: { message: 'Authentication Fails, Your api key: ****cdef is invalid', type: 'authentication_error', param: null, code: 'invalid_request_error' } }],
  },
  qwen: {
    'no-balance': [403, { error: { message: 'Access denied, please make sure your account is in good standing.', type: 'Arrearage', param: null, code: 'Arrearage' }, request_id: 'REQID' }],
    'rate-limit': [429, { error: { message: 'Requests rate limit exceeded, please try again later.', type: 'Throttling.RateQuota', param: null, code: 'Throttling.RateQuota' }, request_id: 'REQID' }],
    'server-error': [500, { error: { message: 'An internal error has occured, please try again later or contact service support.', type: 'InternalError', param: null, code: 'InternalError' }, request_id: 'REQID' }],
    'bad-request': [400, { error: { message: '<400> InternalError.Algo.InvalidParameter: Range of max_tokens should be [1, 8192]', type: 'InvalidParameter', param: null, code: 'InvalidParameter' }, request_id: 'REQID' }],
    'bad-key': [401, { error: { message: 'Incorrect API key provided. ', type: 'invalid_request_error', param: null, code: 'invalid_api_key' }, request_id: 'REQID' }],
  },
  kimi: {
    'no-balance': [403, { error: { message: 'Your account org-3c4b is suspended, please check your plan and billing details', type: 'exceeded_current_quota_error' } }],
    'rate-limit': [429, { error: { message: 'Your account org-3c4b request reached organization max RPM: 3, please try again after 1 seconds', type: 'rate_limit_reached_error' } }],
    'server-error': [500, { error: { message: 'server error', type: 'server_error' } }],
    'bad-request': [400, { error: { message: 'Invalid request: Your request exceeded model token limit: 262144', type: 'invalid_request_error' } }],
    'bad-key': [401, { error: { message: 'Invalid Authentication', type: 'invalid_authentication_error' } }],
  },
  glm: {
    'no-balance': [429, { error: { code: '1113', message: 'Insufficient balance or no resource package. Please recharge.' } }],
    'rate-limit': [429, { error: { code: '1302', message: 'High concurrency usage of this API, please reduce concurrency or contact customer service to increase limits' } }],
    'server-error': [500, { error: { code: '500', message: 'Internal Error' } }],
    'bad-request': [400, { error: { code: '1261', message: 'Prompt exceeds max length' } }],
    'bad-key': [401, { error: { code: '1000', message: 'Authentication Failed' } }],
  },
  openai: {
    'no-balance': [429, { error: { message: 'You exceeded your current quota, please check your plan and billing details.', type: 'insufficient_quota', param: null, code: 'insufficient_quota' } }],
    'rate-limit': [429, { error: { message: 'Rate limit reached for requests', type: 'requests', param: null, code: 'rate_limit_exceeded' } }],
    'server-error': [500, { error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } }],
    'bad-request': [400, { error: { message: "Invalid type for 'max_tokens'.", type: 'invalid_request_error', param: 'max_tokens', code: 'invalid_type' } }],
    'bad-key': [401, { error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } }],
  },
};

// MiniMax: the reference knows no error dialect [U]; the fake answers OpenAI-shaped errors.
ERRORS.minimax = {
  'no-balance': [429, { error: { message: 'insufficient balance', type: 'insufficient_quota', param: null, code: 'insufficient_quota' } }],
  'rate-limit': [429, { error: { message: 'rate limit exceeded', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' } }],
  'server-error': [500, { error: { message: 'internal error', type: 'server_error', param: null, code: null } }],
  'bad-request': [400, { error: { message: 'invalid params', type: 'invalid_request_error', param: null, code: 'invalid_request_error' } }],
  'bad-key': [401, { error: { message: 'invalid api key', type: 'authentication_error', param: null, code: 'invalid_api_key' } }],
};

// The dialect's context-window refusal, as each vendor words it.
const CONTEXT_ERRORS = {
  deepseek: [400, { error: { message: "This model's maximum context length is 131072 tokens. However, you requested 140000 tokens (140000 in the messages, 0 in the completion). Please reduce the length of the messages or completion.", type: 'invalid_request_error', param: null, code: 'invalid_request_error' } }],
  qwen: [400, { error: { message: '<400> InternalError.Algo.InvalidParameter: Range of input length should be [1, 129024]', type: 'invalid_request_error', param: null, code: 'invalid_parameter_error' }, request_id: 'REQID' }],
  kimi: [400, { error: { message: 'Invalid request: Your request exceeded model token limit: 262144', type: 'invalid_request_error' } }],
  glm: [400, { error: { code: '1261', message: 'Prompt exceeds max length' } }],
  openai: [400, { error: { message: "This model's maximum context length is 128000 tokens. However, your messages resulted in 140000 tokens. Please reduce the length of the messages.", type: 'invalid_request_error', param: 'messages', code: 'context_length_exceeded' } }],
};
for (const [dialect, e] of Object.entries(CONTEXT_ERRORS)) ERRORS[dialect]['context-too-long'] = e;

export function errorFor(dialect, kind) {
  const [status, body] = ERRORS[dialect][kind];
  const b = structuredClone(body);
  if (b.request_id === 'REQID') b.request_id = crypto.randomUUID();
  if (dialect === 'glm') b.request_id = newId('glm');
  return [status, b];
}

// ---- GLM legacy JWT ---------------------------------------------------------------------------
// Verifies a token produced from an "id.secret" key: HS256, header {"alg":"HS256","sign_type":"SIGN"},
// payload {"api_key": id, "exp": ms, "timestamp": ms}. Returns {ok, reason, header, payload}.
export function verifyGlmJwt(token, key, now = Date.now()) {
  const [id, secret] = key.split('.');
  const parts = String(token).split('.');
  if (parts.length !== 3) return { ok: false, reason: 'not three dot-separated parts' };
  let header, payload;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch (e) {
    return { ok: false, reason: 'undecodable header/payload: ' + e.message };
  }
  const expect = crypto.createHmac('sha256', secret).update(parts[0] + '.' + parts[1]).digest();
  let sig;
  try {
    sig = Buffer.from(parts[2], 'base64url');
  } catch {
    return { ok: false, reason: 'bad signature encoding', header, payload };
  }
  if (sig.length !== expect.length || !crypto.timingSafeEqual(sig, expect)) return { ok: false, reason: 'signature mismatch', header, payload };
  if (header.alg !== 'HS256') return { ok: false, reason: 'alg is not HS256', header, payload };
  if (header.sign_type !== 'SIGN') return { ok: false, reason: 'header.sign_type is not SIGN', header, payload };
  if (payload.api_key !== id) return { ok: false, reason: 'payload.api_key is not the key id', header, payload };
  if (typeof payload.timestamp !== 'number' || Math.abs(payload.timestamp - now) > 5 * 60_000)
    return { ok: false, reason: 'payload.timestamp is not a current time in ms', header, payload };
  if (typeof payload.exp !== 'number' || payload.exp <= now || payload.exp > now + 30 * 24 * 3600_000)
    return { ok: false, reason: 'payload.exp is not a future time in ms', header, payload };
  return { ok: true, header, payload };
}

// ---- the server -----------------------------------------------------------------------------
// nativeModels: vendor model IDs (e.g. 'qwen-plus') answered like the 'ok' scenario, for tests of
// clients that keep their vendor's model names.
// anthropicScenarios: {vendor model ID: scenario} for the Anthropic path, so that a catalog model
// (priced, with a known window) can play a fault scenario there.
export async function startFake({ dialect, tls, key, auth = 'bearer', host = '127.0.0.1', keepAliveTimeoutMs = 30_000, nativeModels = [], anthropicScenarios = {}, responsesScenarios = {}, shaper, keepRequests = true } = {}) {
  if (!PATHS[dialect]) throw new Error('unknown dialect ' + dialect);
  const requests = [];
  const events = new EventEmitter();
  const sockets = new Set();
  const timers = new Set();
  const stats = { connections: 0, closedConnections: 0, requests: 0 };
  const embeddings = { scenario: 'ok' };  // lib/fake_embeddings.mjs

  const handler = (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      let body = null;
      try {
        body = raw.length ? JSON.parse(raw.toString('utf8')) : null;
      } catch {
        body = undefined;
      }
      const sock = req.socket;
      const rec = {
        method: req.method,
        path: req.url,
        headers: req.headers,
        rawBody: raw,
        body,
        scenario: null,
        at: performance.now(),
        socketClosedAt: null,
        finished: false,
      };
      rec.socketClosed = new Promise((resolve) => {
        if (sock.destroyed) {
          rec.socketClosedAt = performance.now();
          resolve();
        } else {
          sock.once('close', () => {
            rec.socketClosedAt = performance.now();
            resolve();
          });
        }
      });
      res.on('finish', () => (rec.finished = true));
      stats.requests++;
      if (keepRequests) requests.push(rec); // off for long runs: bodies are not kept
      events.emit('request', rec);
      try {
        route(rec, req, res);
      } catch (e) {
        res.destroy(e);
      }
    });
  };

  const later = (ms, fn) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
    return t;
  };
  const every = (ms, fn) => {
    const t = setInterval(fn, ms);
    timers.add(t);
    return t;
  };
  const stop = (t) => {
    clearTimeout(t);
    clearInterval(t);
    timers.delete(t);
  };

  function sendJson(res, status, obj, extraHeaders = {}) {
    const text = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extraHeaders });
    res.end(text);
  }

  function sendError(res, kind, extraHeaders = {}) {
    const [status, body] = errorFor(dialect, kind);
    sendJson(res, status, body, extraHeaders);
  }

  function checkAuth(rec) {
    if (!key) return true;
    const h = rec.headers.authorization || '';
    if (auth === 'jwt') {
      const m = /^Bearer (.+)$/.exec(h);
      rec.jwt = m ? verifyGlmJwt(m[1], key) : { ok: false, reason: 'no Bearer token' };
      return rec.jwt.ok;
    }
    return h === 'Bearer ' + key;
  }

  function route(rec, req, res) {
    if (req.method === 'POST' && isAnthropicPath(dialect, req.url)) {
      const checkJwt = (token) => (rec.jwt = verifyGlmJwt(token, key)).ok;
      return serveAnthropic(dialect, rec, req, res, { key, auth, nativeModels, scenarios: anthropicScenarios, checkJwt, later, every, stop });
    }
    if (req.method === 'POST' && isEmbeddingsPath(dialect, req.url)) {
      if (!checkAuth(rec)) return sendError(res, 'bad-key');
      const [status, body] = answerEmbeddings(dialect, rec, embeddings);
      if (typeof body === 'string') {
        res.writeHead(status, { 'content-type': 'text/html' });
        return res.end(body);
      }
      return sendJson(res, status, body);
    }
    if (req.method === 'POST' && isResponsesPath(dialect, req.url))
      return serveResponses(dialect, rec, req, res, { key, nativeModels, scenarios: responsesScenarios, later, every, stop });
    if (req.method !== 'POST' || !PATHS[dialect].includes(req.url.split('?')[0])) {
      if (dialect === 'glm') return sendJson(res, 404, { timestamp: new Date().toISOString(), status: 404, error: 'Not Found', path: req.url });
      return sendJson(res, 404, { error: { message: `Unknown path ${req.method} ${req.url}`, type: 'invalid_request_error', param: null, code: 'not_found' } });
    }
    if (!checkAuth(rec)) return sendError(res, 'bad-key');
    if (rec.body === undefined || rec.body === null || typeof rec.body !== 'object') return sendError(res, 'bad-request');
    const model = String(rec.body.model ?? '');
    const scenario = nativeModels.includes(model) ? 'ok' : model.split(':')[0];
    rec.scenario = scenario;
    const stream = rec.body.stream === true;
    const includeUsage = stream && rec.body.stream_options?.include_usage === true;
    if (shaper) return answerShaped(rec, res, { id: newId(dialect), created: nowS(), model, stream, includeUsage }, shaper(rec));

    switch (scenario) {
      case 'ok':
      case 'trickle':
      case 'keepalive':
      case 'close-mid-stream':
      case 'fragmented':
      case 'sse-variants':
      case 'stall-mid-stream':
      case 'stall-body':
      case 'usage-then-cut':
        break;
      case 'garbage':
        if (stream) {
          res.writeHead(200, sseHeaders());
          res.end('data: {this is not json\n\ndata: [DONE]\n\n');
        } else {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('<html><body>502 Bad Gateway (cloudflare)</body></html>');
        }
        return;
      case 'keepalive-forever':
        res.writeHead(200, stream ? sseHeaders() : { 'content-type': 'application/json' });
        res.flushHeaders();
        {
          const t = every(200, () => res.write(stream ? ': keep-alive\n\n' : '\n'));
          res.on('close', () => stop(t));
        }
        return;
      case 'no-balance':
      case 'server-error':
      case 'bad-request':
      case 'context-too-long':
        return sendError(res, scenario);
      case 'bad-key':
      case 'wrong-region':
        return sendError(res, 'bad-key');
      case 'rate-limit':
        return sendError(res, 'rate-limit', { 'retry-after': '1' });
      case 'rate-limit-long':
        return sendError(res, 'rate-limit', { 'retry-after': '7' });
      case 'hang':
        return; // never answer; the socket stays open until the peer or close() ends it
      case 'close-before-headers':
        req.socket.destroy();
        return;
      default:
        return sendError(res, 'bad-request');
    }

    const id = newId(dialect);
    const created = nowS();
    const model_ = model;
    if (!stream) return answerNonStream(rec, res, { id, created, model: model_, scenario });
    return answerStream(rec, res, { id, created, model: model_, scenario, includeUsage });
  }

  function sseHeaders() {
    const h = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' };
    if (dialect !== 'glm') h.connection = 'keep-alive';
    return h;
  }

  function completionObject(ctx) {
    const { id, created, model } = ctx;
    const message = { role: 'assistant', content: CONTENT_PIECES(dialect).join('') };
    if (dialect !== 'openai') message.reasoning_content = REASONING_PIECES.join('');
    const choice = { index: 0, message, finish_reason: 'stop' };
    if (dialect === 'deepseek' || dialect === 'qwen' || dialect === 'openai') choice.logprobs = null;
    const obj = { id, object: 'chat.completion', created, model, choices: [choice], usage: dialectUsage(dialect, 'nonstream', ctx.usage) };
    if (dialect === 'deepseek') obj.system_fingerprint = 'fp_8802369eaa_prod0623';
    if (dialect === 'qwen') obj.system_fingerprint = null;
    if (dialect === 'glm') {
      obj.request_id = id;
      delete obj.object; // bigmodel/Z.ai examples carry no "object" field
    }
    return obj;
  }

  function answerNonStream(rec, res, ctx) {
    const text = JSON.stringify(completionObject(ctx));
    if (ctx.scenario === 'keepalive') {
      // DeepSeek non-streaming while queued: 200 + blank lines, then the JSON body.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      let n = 0;
      const t = every(150, () => {
        if (++n <= 3) return res.write('\n');
        stop(t);
        res.end(text);
      });
      res.on('close', () => stop(t));
      return;
    }
    if (ctx.scenario === 'stall-body') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.write(text.slice(0, Math.floor(text.length / 2)));
      return; // the rest never comes; the socket stays open until the peer or close() ends it
    }
    if (ctx.scenario === 'close-mid-stream' || ctx.scenario === 'usage-then-cut') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.write(text.slice(0, Math.floor(text.length / 2)));
      later(50, () => res.socket?.destroy());
      return;
    }
    if (ctx.scenario === 'trickle') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      later(TRICKLE.intervalMs, () => res.end(text));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  function chunk(ctx, delta, finish = null, extra = {}) {
    const choice = { index: 0, delta };
    if (dialect !== 'glm') {
      choice.logprobs = null;
      choice.finish_reason = finish;
    } else if (finish) {
      choice.finish_reason = finish;
    }
    const c = { id: ctx.id, object: 'chat.completion.chunk', created: ctx.created, model: ctx.model, choices: [choice] };
    if (dialect === 'deepseek') c.system_fingerprint = 'fp_8802369eaa_prod0623';
    if (dialect === 'qwen') {
      c.usage = null;
      c.system_fingerprint = null;
    }
    if (dialect === 'openai' && ctx.includeUsage) c.usage = null;
    if (dialect === 'glm') delete c.object; // bigmodel/Z.ai stream examples carry no "object" field
    return Object.assign(c, extra);
  }

  // The SSE payloads (strings, without the 'data: ' prefix) for a normal stream, in three parts:
  // head (role + reasoning chunks), body (content chunks), tail (finish, usage, [DONE]).
  function streamParts(ctx) {
    const evs = [];
    const pieces = CONTENT_PIECES(dialect);
    if (dialect === 'glm') evs.push(chunk(ctx, { role: 'assistant', reasoning_content: REASONING_PIECES[0] }));
    else evs.push(chunk(ctx, { role: 'assistant', content: '' }));
    const reasoning = dialect === 'openai' ? [] : dialect === 'glm' ? REASONING_PIECES.slice(1) : REASONING_PIECES;
    for (const r of reasoning) evs.push(chunk(ctx, dialect === 'deepseek' ? { content: null, reasoning_content: r } : { reasoning_content: r }));
    const headLen = evs.length;
    for (const p of pieces) evs.push(chunk(ctx, dialect === 'deepseek' ? { content: p, reasoning_content: null } : { content: p }));
    const bodyLen = evs.length;
    // Finish chunk.
    if (dialect === 'kimi') {
      const f = chunk(ctx, {}, 'stop');
      f.choices[0].usage = dialectUsage('kimi', 'stream', ctx.usage);
      evs.push(f);
    } else if (dialect === 'glm') {
      evs.push(chunk(ctx, { role: 'assistant', content: '' }, 'stop', { usage: dialectUsage('glm', undefined, ctx.usage) }));
    } else {
      evs.push(chunk(ctx, dialect === 'deepseek' ? { content: '', reasoning_content: null } : {}, 'stop'));
      if (ctx.includeUsage) {
        const u = { id: ctx.id, object: 'chat.completion.chunk', created: ctx.created, model: ctx.model, choices: [], usage: dialectUsage(dialect, undefined, ctx.usage) };
        if (dialect === 'deepseek') u.system_fingerprint = 'fp_8802369eaa_prod0623';
        if (dialect === 'qwen') u.system_fingerprint = null;
        evs.push(u);
      }
    }
    const all = evs.map((e) => JSON.stringify(e)).concat(['[DONE]']);
    return { head: all.slice(0, headLen), body: all.slice(headLen, bodyLen), tail: all.slice(bodyLen) };
  }

  function streamEvents(ctx) {
    const p = streamParts(ctx);
    return [...p.head, ...p.body, ...p.tail];
  }

  // shaper(rec) plans each answer (the replay benchmark): {error: kind, headers, delayMs} answers the
  // dialect's error of that kind (the ERRORS table) after delayMs; otherwise {ttftMs, durationMs,
  // usage: {prompt, cached, completion, reasoning}}: the header at once, reasoning and the first
  // content chunk after ttftMs, the other content chunks spread over durationMs, then the finish and
  // the usage (as given) in the dialect's own shape. Non-stream: the body after ttftMs + durationMs.
  function answerShaped(rec, res, ctx, plan) {
    let closed = false;
    res.on('close', () => (closed = true));
    const at = (ms, fn) => later(ms, () => closed || fn());
    if (plan.error) return at(plan.delayMs ?? 0, () => sendError(res, plan.error, plan.headers));
    ctx.usage = plan.usage;
    if (!ctx.stream) return at(plan.ttftMs + plan.durationMs, () => answerNonStream(rec, res, { ...ctx, scenario: 'ok' }));
    res.writeHead(200, sseHeaders());
    res.flushHeaders();
    const p = streamParts(ctx);
    const steps = [[...p.head, p.body[0]], ...p.body.slice(1).map((b) => [b]), p.tail];
    const gap = plan.durationMs / (steps.length - 1);
    steps.forEach((payloads, i) =>
      at(plan.ttftMs + gap * i, () => {
        for (const e of payloads) res.write(`data: ${e}\n\n`);
        if (i === steps.length - 1) res.end();
      }),
    );
  }

  function answerStream(rec, res, ctx) {
    res.writeHead(200, sseHeaders());
    res.flushHeaders();
    const evs = streamEvents(ctx);
    const write = (payload) => res.write(`data: ${payload}\n\n`);
    let closed = false;
    res.on('close', () => (closed = true));
    if (ctx.scenario === 'ok') {
      // Separate writes so the gateway sees them as they come (still fast).
      for (const e of evs) write(e);
      res.end();
      return;
    }
    if (ctx.scenario === 'stall-mid-stream') {
      const head = [chunk(ctx, { role: 'assistant', content: '' }), chunk(ctx, { content: 'partial' }), chunk(ctx, { content: ' answer' })];
      for (const c of head) write(JSON.stringify(c));
      const t = every(200, () => (closed ? stop(t) : res.write(': keep-alive\n\n')));
      return;
    }
    if (ctx.scenario === 'fragmented') {
      const text = evs.map((e) => `data: ${e}\n\n`).join('');
      let i = 0;
      const step = () => {
        if (closed) return;
        if (i >= text.length) return res.end();
        res.write(text.slice(i, i + 5));
        i += 5;
        later(1, step);
      };
      step();
      return;
    }
    if (ctx.scenario === 'sse-variants') {
      let n = 0;
      const text = evs
        .map((e) => (n++ % 2 ? `id: ${n}\r\nevent: message\r\ndata:${e}\r\n\r\n` : `: ping ${n}\r\ndata: ${e}\r\n\r\n`))
        .join('');
      res.end(text);
      return;
    }
    if (ctx.scenario === 'keepalive') {
      let n = 0;
      const t = every(150, () => {
        if (closed) return stop(t);
        if (++n <= 3) return res.write(': keep-alive\n\n');
        stop(t);
        for (const e of evs) write(e);
        res.end();
      });
      return;
    }
    if (ctx.scenario === 'stall-body') {
      write(JSON.stringify(chunk(ctx, { role: 'assistant', content: '' })));
      write(JSON.stringify(chunk(ctx, { content: 'partial' })));
      return; // then silence: no event, no comment
    }
    if (ctx.scenario === 'usage-then-cut') {
      write(JSON.stringify(chunk(ctx, { role: 'assistant', content: '' })));
      for (const p of CONTENT_PIECES(dialect)) write(JSON.stringify(chunk(ctx, { content: p })));
      write(JSON.stringify({ id: ctx.id, object: 'chat.completion.chunk', created: ctx.created, model: ctx.model, choices: [], usage: dialectUsage(dialect) }));
      later(100, () => res.socket?.destroy());
      return;
    }
    if (ctx.scenario === 'close-mid-stream') {
      // role chunk + 2 content chunks, then the socket dies.
      const head = [chunk(ctx, { role: 'assistant', content: '' }), chunk(ctx, { content: 'partial' }), chunk(ctx, { content: ' answer' })];
      for (const c of head) write(JSON.stringify(c));
      later(100, () => res.socket?.destroy());
      return;
    }
    if (ctx.scenario === 'trickle') {
      write(JSON.stringify(chunk(ctx, { role: 'assistant', content: '' })));
      let n = 0;
      const t = every(TRICKLE.intervalMs, () => {
        if (closed) return stop(t);
        n++;
        write(JSON.stringify(chunk(ctx, { content: `tick${n} ` })));
        if (n >= TRICKLE.count) {
          stop(t);
          // Finish + usage in this dialect's form, then [DONE].
          for (const e of streamParts(ctx).tail) write(e);
          res.end();
        }
      });
      return;
    }
  }

  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, handler) : http.createServer(handler);
  server.keepAliveTimeout = keepAliveTimeoutMs;
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  const connEvent = tls ? 'secureConnection' : 'connection';
  server.on(connEvent, (sock) => {
    stats.connections++;
    sockets.add(sock);
    events.emit('connection', sock);
    sock.on('close', () => {
      sockets.delete(sock);
      stats.closedConnections++;
      events.emit('connection-closed', sock);
    });
  });
  const tlsErrors = [];
  server.on('tlsClientError', (err) => {
    tlsErrors.push(err);
    events.emit('tls-error', err);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const port = server.address().port;
  const origin = `${tls ? 'https' : 'http'}://${tls?.hostname ?? '127.0.0.1'}:${port}`;
  return {
    dialect,
    port,
    origin,
    url: origin,
    baseUrl: baseUrlFor(dialect, origin),
    anthropicBaseUrl: anthropicBaseUrlFor(dialect, origin),  // null: the dialect has none (openai)
    responsesBaseUrl: responsesBaseUrlFor(dialect, origin),  // null: none of its own (GLM's Coding Plan has one)
    requests,
    events,
    stats,
    embeddings,  // {scenario}: how the /embeddings endpoint behaves (lib/fake_embeddings.mjs)
    tlsErrors,
    get closedConnections() {
      return stats.closedConnections;
    },
    // Requests whose upstream model (scenario) is `model` (exact, suffix included).
    byModel(model) {
      return requests.filter((r) => r.body && r.body.model === model);
    },
    // Resolves with the next request record (optionally matching pred) or rejects after timeoutMs.
    nextRequest(pred = () => true, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const on = (rec) => {
          if (!pred(rec)) return;
          clearTimeout(t);
          events.off('request', on);
          resolve(rec);
        };
        const t = setTimeout(() => {
          events.off('request', on);
          reject(new Error(`fake ${dialect}: no matching request within ${timeoutMs} ms`));
        }, timeoutMs);
        events.on('request', on);
      });
    },
    async close() {
      for (const t of timers) {
        clearTimeout(t);
        clearInterval(t);
      }
      timers.clear();
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
