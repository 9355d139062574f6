// Incremental Server-Sent Events parser (https://html.spec.whatwg.org/multipage/server-sent-events.html)
// used by the tests to look at what the gateway streams, event by event, with arrival times.
//
// An event is {data, event, id, comments, t}: `data` is the joined data lines (or null when the
// block only held comments), `t` the performance.now() at which the block's terminating blank line
// arrived. `comments` are the comment lines (': keep-alive' -> 'keep-alive') seen in the block.

export class SseParser {
  constructor() {
    this.buf = '';
    this.events = [];
    this._reset();
  }

  _reset() {
    this.cur = { data: [], event: null, id: null, comments: [] };
  }

  // Feeds a decoded text chunk; returns the events completed by it.
  push(text, t = performance.now()) {
    this.buf += text;
    const out = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) break;
      // A lone '\r' at the end of the buffer may be the first half of '\r\n'; wait for more.
      if (m[0] === '\r' && m.index === this.buf.length - 1) break;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      if (line === '') {
        if (this.cur.data.length || this.cur.comments.length || this.cur.event !== null) {
          const ev = {
            data: this.cur.data.length ? this.cur.data.join('\n') : null,
            event: this.cur.event,
            id: this.cur.id,
            comments: this.cur.comments,
            t,
          };
          out.push(ev);
          this.events.push(ev);
        }
        this._reset();
        continue;
      }
      if (line.startsWith(':')) {
        this.cur.comments.push(line.slice(1).trimStart());
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') this.cur.data.push(value);
      else if (field === 'event') this.cur.event = value;
      else if (field === 'id') this.cur.id = value;
    }
    return out;
  }

  // Bytes left over that never formed a complete event (a cut stream).
  get remainder() {
    return this.buf;
  }
}

// Classifies parsed SSE events from an OpenAI-style stream.
// Returns {chunks: parsed JSON chunks in order, done: saw [DONE], errors: `data: {"error":..}` events,
// afterDone: events after [DONE], comments: number of comment-only events, order: ['chunk'|'error'|'done'|'comment']}.
export function classify(events) {
  const res = { chunks: [], done: false, errors: [], afterDone: [], comments: 0, order: [], bad: [] };
  for (const ev of events) {
    if (ev.data === null) {
      res.comments++;
      res.order.push('comment');
      continue;
    }
    if (res.done) {
      res.afterDone.push(ev);
      continue;
    }
    if (ev.data === '[DONE]') {
      res.done = true;
      res.order.push('done');
      continue;
    }
    let obj;
    try {
      obj = JSON.parse(ev.data);
    } catch {
      res.bad.push(ev.data);
      res.order.push('bad');
      continue;
    }
    if (obj && typeof obj === 'object' && obj.error && !obj.choices) {
      res.errors.push(obj);
      res.order.push('error');
    } else {
      res.chunks.push(Object.assign(obj, { __t: ev.t }));
      res.order.push('chunk');
    }
  }
  return res;
}

// Concatenates delta.content / delta.reasoning_content over chunks (choice 0).
export function assemble(chunks) {
  let content = '';
  let reasoning = '';
  let finish = null;
  for (const c of chunks) {
    const ch = c.choices && c.choices[0];
    if (!ch) continue;
    if (ch.delta?.content) content += ch.delta.content;
    if (ch.delta?.reasoning_content) reasoning += ch.delta.reasoning_content;
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  return { content, reasoning, finish };
}
