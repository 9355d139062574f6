// An OpenAI-compatible upstream whose every answer the test scripts: reasoning, text, tool calls
// (arguments split into fragments), finish reason, usage, an HTTP error, or a stream cut after some
// events. For the Anthropic surface tests, which check each event the gateway translates against
// exactly what this fake sent.
//
//   const up = await startScripted({ name: 'main' });
//   up.answer = (rec) => ({ text: ['Hel', 'lo'] });          // every request, or:
//   up.queue.push({ toolCalls: [{ id: 'call_1', name: 'bash', args: ['{"cmd"', ':"ls"}'] }] });
//
// An answer (all fields optional):
//   reasoning  string[]   reasoning_content pieces, streamed before the text
//   text       string[]   content pieces
//   toolCalls  [{id, name, args: string[]}]   streamed as OpenAI does: the first fragment carries
//              index, id, type and name with empty arguments, then one fragment per args piece
//   finish     the finish_reason ('tool_calls' when toolCalls is set, else 'stop')
//   usage      the usage object (default DEFAULT_USAGE), sent in a usage-only chunk when the
//              request asked for stream_options.include_usage, and in non-stream answers
//   status     not 200: that status with an OpenAI-shaped error body (errorType, message)
//   cutAfter   streams: destroy the socket after this many content-bearing chunks
//   pieceDelayMs  streams: wait this long after each content-bearing chunk
// The queue is used first, one answer per request; then `answer(rec)`.
//
// Records every request: {model, stream, headers, body, path, closed (a promise), closedAt}.

import http from 'node:http';
import crypto from 'node:crypto';

export const DEFAULT_USAGE = { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 };

export async function startScripted({ name = 'scripted', host = '127.0.0.1' } = {}) {
  const requests = [];
  const sockets = new Set();
  const fake = {
    name,
    requests,
    queue: [],
    answer: () => ({ text: [`hello from ${name}`] }),
    // Requests whose upstream model is `model`.
    byModel: (model) => requests.filter((r) => r.model === model),
  };

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body = null;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = null;
      }
      const rec = { path: req.url, model: body?.model, stream: body?.stream === true, headers: req.headers, body, closedAt: null };
      rec.closed = new Promise((resolve) => res.on('close', () => resolve((rec.closedAt = performance.now()))));
      requests.push(rec);
      if (req.method !== 'POST' || !/\/chat\/completions(\?|$)/.test(req.url) || !body) return sendError(res, 404, 'invalid_request_error', `unknown ${req.method} ${req.url}`);
      const a = fake.queue.length ? fake.queue.shift() : fake.answer(rec);
      rec.answer = a;
      if (a.status && a.status !== 200) return sendError(res, a.status, a.errorType ?? 'server_error', a.message ?? `${name} failing with ${a.status}`);
      if (rec.stream) return stream(rec, res, a);
      return whole(rec, res, a);
    });
  });

  function sendError(res, status, type, message) {
    const text = JSON.stringify({ error: { message, type, param: null, code: null } });
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  const finishOf = (a) => a.finish ?? (a.toolCalls?.length ? 'tool_calls' : 'stop');

  function whole(rec, res, a) {
    const message = { role: 'assistant', content: (a.text ?? []).join('') || null };
    if (a.reasoning) message.reasoning_content = a.reasoning.join('');
    if (a.toolCalls?.length)
      message.tool_calls = a.toolCalls.map((t) => ({ id: t.id, type: 'function', function: { name: t.name, arguments: t.args.join('') } }));
    const text = JSON.stringify({
      id: 'chatcmpl-' + crypto.randomBytes(8).toString('hex'),
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: rec.model,
      choices: [{ index: 0, message, finish_reason: finishOf(a), logprobs: null }],
      usage: a.usage ?? DEFAULT_USAGE,
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  function stream(rec, res, a) {
    const id = 'chatcmpl-' + crypto.randomBytes(8).toString('hex');
    const created = Math.floor(Date.now() / 1000);
    const ch = (delta, finish = null) => ({ id, object: 'chat.completion.chunk', created, model: rec.model, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] });
    const content = [];
    for (const r of a.reasoning ?? []) content.push(ch({ reasoning_content: r }));
    for (const t of a.text ?? []) content.push(ch({ content: t }));
    (a.toolCalls ?? []).forEach((t, index) => {
      content.push(ch({ tool_calls: [{ index, id: t.id, type: 'function', function: { name: t.name, arguments: '' } }] }));
      for (const piece of t.args) content.push(ch({ tool_calls: [{ index, function: { arguments: piece } }] }));
    });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const write = (obj) => res.write(`data: ${JSON.stringify(obj)}\n\n`);
    write(ch({ role: 'assistant', content: '' }));
    const step = (i) => {
      if (res.destroyed) return;
      if (a.cutAfter !== undefined && i === a.cutAfter) return later(100, () => res.socket?.destroy());
      if (i === content.length) {
        write(ch({}, finishOf(a)));
        if (rec.body.stream_options?.include_usage) write({ id, object: 'chat.completion.chunk', created, model: rec.model, choices: [], usage: a.usage ?? DEFAULT_USAGE });
        return res.end('data: [DONE]\n\n');
      }
      write(content[i]);
      if (a.pieceDelayMs) later(a.pieceDelayMs, () => step(i + 1));
      else step(i + 1);
    };
    step(0);
  }

  // Every wait is a timer close() clears.
  const timers = new Set();
  function later(ms, fn) {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  }

  server.keepAliveTimeout = 30_000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  fake.origin = `http://${host}:${server.address().port}`;
  fake.baseUrl = fake.origin + '/v1';
  fake.close = async () => {
    for (const t of timers) clearTimeout(t);
    timers.clear();
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(() => resolve()));
  };
  return fake;
}
