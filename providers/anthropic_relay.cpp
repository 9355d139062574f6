#include "providers/anthropic_relay.h"

#include <string>
#include <vector>

#include "providers/anthropic_wire.h"
#include "providers/responses_wire.h"
#include "providers/dialect.h"
#include "providers/sse_reader.h"

namespace providers {
namespace {

using core::ErrorKind;
using Micros = std::chrono::microseconds;

// Events held before the first content: message_start, a ping, content_block_start of an empty text
// block, events of types this relay does not know. Past this many the stream is committed instead
// (nothing is dropped: the client must see every event of the sequence).
constexpr size_t kMaxHeld = 32;

struct HeldEvent {
  std::string name, data;
};

void client_gone(AttemptResult& res) {
  res.error = core::make_error(ErrorKind::cancelled, "client disconnected", core::ErrorSource::client);
}

core::Error read_failure(const AttemptContext& ctx, const Dialect& dialect, core::Error e, core::SteadyTime deadline) {
  if (e.kind != ErrorKind::timeout && std::chrono::steady_clock::now() < deadline) return e;
  const bool total = std::chrono::steady_clock::now() >= ctx.total_deadline;
  return core::make_error(ErrorKind::timeout,
                          dialect.name + (total ? " exceeded the total deadline of " +
                                                      std::to_string(ctx.timeouts.total.count()) + " ms"
                                                : " sent no stream event for " +
                                                      std::to_string(ctx.timeouts.idle.count()) + " ms"),
                          core::ErrorSource::upstream);
}

// What a finished stream leaves in the result, per API. Anthropic: the usage once message_delta
// reported it (else message_start's prompt count), the stop reason; a body that ended cleanly after
// the stop reason lacks only the message_stop, which the gateway sends anyway: the answer is
// complete (as a chat stream is after its finish chunk without [DONE]).
void finish(const AnthropicStream& stream, AttemptResult& res) {
  res.usage = stream.usage();
  if (!res.usage.present) res.counted_prompt_tokens = stream.input_tokens_reported();
  res.finish_reason = stream.stop_reason();
  if (!res.error && !res.native_complete && stream.saw_message_delta() && !stream.stop_reason().empty())
    res.native_complete = true;
}

// Responses: the usage and status of the final event, which is the answer's end.
void finish(const ResponsesStream& stream, AttemptResult& res) {
  res.usage = stream.usage();
  res.finish_reason = stream.status();
}

// One relay loop for every native API. The event that stops the stream is withheld and its data
// kept in res.body (the gateway sends its own end after accounting).
template <class Stream>
core::Task<void> relay_native(const AttemptContext& ctx, const Dialect& dialect, UpstreamExchange& ex,
                              EventSink& sink, std::chrono::steady_clock::time_point started, AttemptResult& res) {
  SseReader reader;
  SseEvent ev;  // reused from event to event
  Stream stream(dialect);
  std::vector<HeldEvent> held;
  bool held_ping = false;
  auto last_event = std::chrono::steady_clock::now();
  // Sends one event; false (and the attempt marked cancelled) when the client is gone.
  auto send = [&](std::string_view name, std::string_view data) -> core::Task<bool> {
    if (co_await sink.send_event(name, data)) co_return true;
    client_gone(res);
    co_return false;
  };
  auto commit = [&]() -> core::Task<bool> {
    res.ttft = std::chrono::duration_cast<Micros>(std::chrono::steady_clock::now() - started);
    res.content_sent = true;
    for (const auto& h : held)
      if (!co_await send(h.name, h.data)) co_return false;
    held.clear();
    co_return true;
  };
  bool stop = false;
  while (!stop) {
    const auto deadline = std::min(ctx.total_deadline, last_event + ctx.timeouts.idle);
    reader.release_idle(ev);
    auto piece = co_await ex.read_some(deadline);
    if (!piece) {
      res.error = read_failure(ctx, dialect, std::move(piece).error(), deadline);
      break;
    }
    if (piece->empty()) break;  // body complete
    if (!reader.feed(*piece)) {
      res.error = core::make_error(ErrorKind::server_error, dialect.name + " sent an oversized stream event",
                                   core::ErrorSource::upstream);
      break;
    }
    while (!stop && reader.next(ev)) {
      if (ev.comment_only) {
        ++res.keepalives;
        continue;
      }
      if (ev.data.empty()) continue;
      auto step = stream.process(ev.event, ev.data);
      if (step.keepalive) ++res.keepalives;  // a ping proves the socket lives, not progress
      else last_event = std::chrono::steady_clock::now();
      switch (step.action) {
        case NativeAction::stop:
          res.native_complete = true;
          res.body = ev.data;
          stop = true;
          break;
        case NativeAction::error:
          res.error = std::move(step.error);
          stop = true;
          break;
        case NativeAction::forward:
          if (!res.content_sent && !step.content) {
            if (step.keepalive && held_ping) break;  // one ping says all the later ones would
            held_ping |= step.keepalive;
            if (held.size() < kMaxHeld) {
              held.push_back({std::string(step.name), ev.data});
              break;
            }
          }
          if (!res.content_sent && !co_await commit()) {
            stop = true;
            break;
          }
          if (!co_await send(step.name, ev.data)) {
            stop = true;
            break;
          }
          res.relayed_tokens += step.est_tokens;
          break;
      }
    }
  }
  finish(stream, res);
  if (!res.error && !res.native_complete)
    res.error = core::make_error(ErrorKind::server_error,
                                 dialect.name + " closed the stream before the answer was complete",
                                 core::ErrorSource::upstream);
  if (!res.error && !res.content_sent && !held.empty()) {
    // A finished stream that never carried content: flush what was held.
    co_await commit();
  }
  co_return;
}

}  // namespace

// Unlike chat completions there is no usage grace after the client leaves: the final usage comes
// with the event that ends the answer (Anthropic's message_delta, Responses' response.completed),
// so once the answer is finished its usage is known.
core::Task<void> relay_anthropic_stream(const AttemptContext& ctx, const Dialect& dialect, UpstreamExchange& ex,
                                        EventSink& sink, std::chrono::steady_clock::time_point started,
                                        AttemptResult& res) {
  co_await relay_native<AnthropicStream>(ctx, dialect, ex, sink, started, res);
}

core::Task<void> relay_responses_stream(const AttemptContext& ctx, const Dialect& dialect, UpstreamExchange& ex,
                                        EventSink& sink, std::chrono::steady_clock::time_point started,
                                        AttemptResult& res) {
  co_await relay_native<ResponsesStream>(ctx, dialect, ex, sink, started, res);
}

}  // namespace providers
