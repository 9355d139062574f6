#pragma once
// An API surface (OpenAI chat completions, Anthropic Messages, ...) as the request pipeline sees
// it: a decoder from the client's body to the core request, and an encoder of answers, errors and
// streams back into the surface's wire format. One object per request: it may keep what it learnt
// while decoding (the client's model name, what the client asked the stream to carry).
//
// Providers always produce OpenAI-shaped answers (chat.completion JSON, chat.completion.chunk
// events); a surface other than OpenAI's translates them. Everything else (routing, budgets,
// fail-over, accounting) is the pipeline's and the same for every surface.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/chat.h"
#include "core/error.h"
#include "core/money.h"
#include "core/result.h"
#include "core/task.h"
#include "core/usage.h"
#include "gateway/http/client_io.h"
#include "providers/provider.h"

namespace gateway {

// How a stream ends, as the pipeline knows it.
struct StreamClose {
  const providers::AttemptResult* result = nullptr;  // the attempt: stream ids, usage chunk
  const core::Usage* counted = nullptr;              // what was accounted; null: nothing was
  std::optional<core::Money> cost;                   // the attempt's cost, when priced
  std::string_view request_id;                       // the client-visible request id
  int64_t created = 0;                               // the request's creation time (seconds)
  bool native = false;  // the attempt was relayed natively (Provider::anthropic_messages)
};

class Surface {
 public:
  virtual ~Surface() = default;
  // The client's body as a core request, or the client's error.
  virtual core::Result<core::ChatRequest> decode(std::string body) = 0;
  // A refusal or a failure before any content reached the client.
  virtual int error_status(const core::Error& e) const { return e.http_status(); }
  virtual std::string error_body(const core::Error& e) const = 0;
  // A request that continues stored state (a Responses API previous_response_id): asked after
  // decode when continues() is true, before routing. The returned request replaces the decoded one.
  virtual bool continues() const { return false; }
  virtual core::Task<core::Result<core::ChatRequest>> load_continuation() {
    co_return core::make_error(core::ErrorKind::server_error, "this API surface continues nothing");
  }
  // A non-stream answer in the surface's form: the provider's chat.completion JSON, or with
  // `native` the body of a natively relayed attempt. An error when the answer cannot be expressed
  // (the pipeline then answers with it). A surface that keeps answers (stored responses) does so
  // here, before the client can ask for them.
  virtual core::Task<core::Result<std::string>> answer_body(std::string body, bool native) = 0;
  // Where a streamed attempt writes its chat.completion.chunk events (asked for streamed requests only).
  virtual providers::ChatSink& stream_sink() = 0;
  // The stream completed: its closing events. `head` is where data events go (the pipeline may
  // record them for the response cache). Returns false when the client is gone.
  virtual core::Task<bool> close_stream(providers::ChatSink& head, const StreamClose& c) = 0;
  // The stream failed after content reached the client: it ends in-band with the error.
  virtual core::Task<bool> fail_stream(const StreamClose& c, const core::Error& e) = 0;
  // A cache hit's recorded events were replayed through stream_sink(): end the stream (it cost 0).
  virtual core::Task<bool> close_replayed_stream() = 0;

  // A surface whose API some deployments speak natively (Anthropic Messages): the request to relay
  // as it came, and where the relayed events go. nullptr: every attempt is translated.
  virtual const providers::NativeRequest* native_request() const { return nullptr; }
  // Whether the surface keeps a copy of the client's body for the whole request (to relay it
  // natively, to store the conversation): then its share of the body budget is kept too.
  virtual bool keeps_client_body() const { return false; }
  virtual providers::EventSink* native_sink() { return nullptr; }
  // Why the request cannot be translated for a deployment that does not speak the surface's API
  // (a member only a native relay can carry); nullptr: it can. Such an attempt is skipped, and with
  // no native candidate the client gets this refusal.
  virtual const core::Error* translation_refusal() const { return nullptr; }
};

}  // namespace gateway
