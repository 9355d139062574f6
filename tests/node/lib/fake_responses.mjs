// The Responses API endpoint of the fake vendors that document one (POST <base>/responses on the
// OpenAI-compatible base): Qwen /compatible-mode/v1/responses [V], DeepSeek /responses (and
// /v1/responses) [V], Kimi /v1/responses [S]; GLM's Coding Plan on a base of its own, /api/v1/responses
// (https://api.z.ai/api/v1) [V], with the same Bearer key. The OpenAI Responses wire format: a Response object,
// or the SSE sequence response.created, response.in_progress, per output item
// response.output_item.added ... response.output_item.done, then response.completed; `error` and
// response.failed events on faults. Each event carries the vendor's own sequence_number and response
// id, which the gateway must replace with its own. The reference documents no quirk of these
// endpoints [U]: the fakes differ only in ids (Qwen a UUID-like id, the others resp_...) and in the
// usage figures (lib/fake_upstream.mjs USAGE).
// startFake (fake_upstream.mjs) routes a request here when its path is the dialect's Responses path.
//
// The request is checked as the gateway must send it: model set, `store: false`, no
// `previous_response_id` (the vendor does not know the gateway's ids), `input` a string or an array.
// A request with tools whose last input item is not a function_call_output is answered with a
// function call (TOOL_CALL), any other with reasoning then text.
//
// Scenarios, by upstream model (responsesScenarios, else nativeModels -> ok, else the model's prefix):
//   ok                    as above
//   server-error          HTTP 500 (OpenAI-shaped error)
//   error-before-content  response.created, response.in_progress, then an `error` event (server_error)
//   fail-mid-stream       some text, then response.failed (non-stream: a failed Response object)
//   huge-usage            the whole answer, output_tokens HUGE_OUTPUT_TOKENS
//   garbage               200 and a body that is not JSON (stream: an event that is not JSON)
//   close-mid-stream      some text, then the socket is destroyed (non-stream: half a body)
//   slow                  stream: one text delta every 200 ms, 50 of them (for a client that leaves)
import crypto from 'node:crypto';
import { USAGE, CONTENT_PIECES, REASONING_PIECES } from './fake_upstream.mjs';

export const RESPONSES_PATHS = {
  qwen: ['/compatible-mode/v1/responses'],
  deepseek: ['/responses', '/v1/responses'],
  kimi: ['/v1/responses'],
  glm: ['/api/v1/responses'],
};

// The value for the gateway config's responses_base_url(s), for a fake whose Responses API is not on
// its chat base (GLM); null: on the chat base, or none.
export function responsesBaseUrlFor(dialect, origin) {
  return dialect === 'glm' ? origin + '/api/v1' : null;
}
export const HUGE_OUTPUT_TOKENS = 50_000_000;
export const RESPONSES_TOOL_CALL = { name: 'get_weather', args: ['{"city":', '"Paris"}'] };

export function isResponsesPath(dialect, url) {
  return (RESPONSES_PATHS[dialect] ?? []).includes(url.split('?')[0]);
}

const hex = (n) => crypto.randomBytes(n).toString('hex');
const vendorId = (dialect) => (dialect === 'qwen' ? `${hex(4)}-${hex(2)}-${hex(2)}-${hex(2)}-${hex(6)}` : 'resp_' + hex(12));

export function responsesUsage(dialect, output = USAGE[dialect].completion) {
  const u = USAGE[dialect];
  return {
    input_tokens: u.prompt,
    input_tokens_details: { cached_tokens: u.cached },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: u.reasoning },
    total_tokens: u.prompt + output,
  };
}

function wantsTool(body) {
  if (!Array.isArray(body.tools) || body.tools.length === 0) return false;
  const last = Array.isArray(body.input) ? body.input[body.input.length - 1] : null;
  return !(last && last.type === 'function_call_output');
}

function outputItems(dialect, body) {
  if (wantsTool(body))
    return [{ type: 'function_call', id: 'fc_' + hex(8), call_id: 'call_' + hex(8), name: RESPONSES_TOOL_CALL.name,
              arguments: RESPONSES_TOOL_CALL.args.join(''), status: 'completed' }];
  return [
    { type: 'reasoning', id: 'rs_' + hex(8), summary: [{ type: 'summary_text', text: REASONING_PIECES.join('') }] },
    { type: 'message', id: 'msg_' + hex(8), status: 'completed', role: 'assistant',
      content: [{ type: 'output_text', text: CONTENT_PIECES(dialect).join(''), annotations: [] }] },
  ];
}

function responseObject(dialect, body, id, status, output, usage) {
  return { id, object: 'response', created_at: Math.floor(Date.now() / 1000), status, error: null, model: body.model,
           output, usage, store: false, previous_response_id: null, temperature: 1, tools: body.tools ?? [] };
}

// The events of one output item, as the API streams it.
function itemEvents(dialect, item, index) {
  const ev = [];
  if (item.type === 'function_call') {
    ev.push({ type: 'response.output_item.added', output_index: index, item: { ...item, arguments: '', status: 'in_progress' } });
    for (const d of RESPONSES_TOOL_CALL.args) ev.push({ type: 'response.function_call_arguments.delta', item_id: item.id, output_index: index, delta: d });
    ev.push({ type: 'response.function_call_arguments.done', item_id: item.id, output_index: index, arguments: item.arguments });
  } else if (item.type === 'reasoning') {
    ev.push({ type: 'response.output_item.added', output_index: index, item: { ...item, summary: [] } });
    ev.push({ type: 'response.reasoning_summary_part.added', item_id: item.id, output_index: index, summary_index: 0, part: { type: 'summary_text', text: '' } });
    for (const d of REASONING_PIECES) ev.push({ type: 'response.reasoning_summary_text.delta', item_id: item.id, output_index: index, summary_index: 0, delta: d });
    ev.push({ type: 'response.reasoning_summary_text.done', item_id: item.id, output_index: index, summary_index: 0, text: item.summary[0].text });
    ev.push({ type: 'response.reasoning_summary_part.done', item_id: item.id, output_index: index, summary_index: 0, part: item.summary[0] });
  } else {
    ev.push({ type: 'response.output_item.added', output_index: index, item: { ...item, status: 'in_progress', content: [] } });
    ev.push({ type: 'response.content_part.added', item_id: item.id, output_index: index, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
    for (const d of CONTENT_PIECES(dialect)) ev.push({ type: 'response.output_text.delta', item_id: item.id, output_index: index, content_index: 0, delta: d });
    ev.push({ type: 'response.output_text.done', item_id: item.id, output_index: index, content_index: 0, text: item.content[0].text });
    ev.push({ type: 'response.content_part.done', item_id: item.id, output_index: index, content_index: 0, part: item.content[0] });
  }
  ev.push({ type: 'response.output_item.done', output_index: index, item });
  return ev;
}

export function responsesStreamEvents(dialect, body, scenario = 'ok') {
  const id = vendorId(dialect);
  const output = outputItems(dialect, body);
  const usage = responsesUsage(dialect, scenario === 'huge-usage' ? HUGE_OUTPUT_TOKENS : undefined);
  const head = [{ type: 'response.created', response: responseObject(dialect, body, id, 'in_progress', [], null) },
                { type: 'response.in_progress', response: responseObject(dialect, body, id, 'in_progress', [], null) }];
  if (scenario === 'error-before-content')
    return [...head, { type: 'error', code: 'server_error', message: 'The server had an error while processing your request.', param: null }];
  const items = output.flatMap((item, i) => itemEvents(dialect, item, i));
  if (scenario === 'fail-mid-stream') {
    const cut = items.findIndex((e) => e.type === 'response.output_text.delta' || e.type === 'response.function_call_arguments.delta');
    const failed = responseObject(dialect, body, id, 'failed', [], null);
    failed.error = { code: 'server_error', message: 'The model crashed mid-answer.' };
    return [...head, ...items.slice(0, cut + 1), { type: 'response.failed', response: failed }];
  }
  return [...head, ...items, { type: 'response.completed', response: responseObject(dialect, body, id, 'completed', output, usage) }];
}

// tools: { key, nativeModels, scenarios ({model: scenario}) }
export function serveResponses(dialect, rec, req, res, tools) {
  rec.api = 'responses';
  const sendJson = (status, obj) => {
    const text = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const refuse = (status, message, code) => sendJson(status, { error: { message, type: 'invalid_request_error', param: null, code } });
  if (tools.key && rec.headers.authorization !== 'Bearer ' + tools.key) return refuse(401, 'Incorrect API key provided.', 'invalid_api_key');
  const body = rec.body;
  if (!body || typeof body !== 'object' || Array.isArray(body) || typeof body.model !== 'string' ||
      !(typeof body.input === 'string' || Array.isArray(body.input)))
    return refuse(400, 'model and input are required', 'invalid_request');
  if (body.store !== false) return refuse(400, 'this fake wants store:false from the gateway', 'store_not_false');
  if ('previous_response_id' in body) return refuse(400, `Previous response with id '${body.previous_response_id}' not found.`, 'previous_response_not_found');
  const model = body.model;
  const scenario = tools.scenarios?.[model] ?? (tools.nativeModels.includes(model) ? 'ok' : model.split(':')[0]);
  rec.scenario = scenario;
  if (scenario === 'server-error')
    return sendJson(500, { error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: 'server_error' } });
  if (!['ok', 'error-before-content', 'fail-mid-stream', 'huge-usage', 'garbage', 'close-mid-stream', 'slow'].includes(scenario))
    return refuse(400, 'unknown model ' + model, 'model_not_found');
  if (scenario === 'garbage') {
    res.writeHead(200, { 'content-type': body.stream === true ? 'text/event-stream' : 'application/json' });
    return res.end(body.stream === true ? 'event: response.created\ndata: {this is not json\n\n' : '<html>502 Bad Gateway</html>');
  }
  if (body.stream !== true) {
    const events = responsesStreamEvents(dialect, body, scenario);
    const last = events[events.length - 1];
    if (last.type === 'error') return sendJson(500, { error: { message: last.message, type: 'server_error', param: null, code: last.code } });
    return sendJson(200, last.response);
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const write = (e, i) => res.write(`event: ${e.type}\ndata: ${JSON.stringify({ ...e, sequence_number: i + 7 })}\n\n`);
  const events = responsesStreamEvents(dialect, body, scenario);
  if (scenario === 'close-mid-stream') {
    events.slice(0, events.findIndex((e) => e.type === 'response.output_text.delta') + 1).forEach(write);
    return tools.later(100, () => res.socket?.destroy());
  }
  if (scenario === 'slow') {
    events.slice(0, 4).forEach(write);
    let n = 0;
    const t = tools.every(200, () => {
      if (res.destroyed || ++n > 50) return tools.stop(t);
      write({ type: 'response.output_text.delta', item_id: 'msg_slow', output_index: 1, content_index: 0, delta: 'tick ' }, 4 + n);
    });
    return;
  }
  events.forEach(write);
  res.end();
}
