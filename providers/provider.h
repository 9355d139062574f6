#pragma once
// The provider interface: one attempt of one chat request at one deployment. The gateway owns the
// client connection (ChatSink); providers own wire formats. No policies here.
#include "core/task.h"
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/chat.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/usage.h"
#include "providers/upstream_client.h"

namespace providers {

struct Dialect;

struct Target {
  std::string provider;  // provider instance name
  std::string region;    // empty = provider's default region
  std::string model;     // upstream model id
};

// Where a streamed answer goes. Implemented by the gateway's session.
class ChatSink {
 public:
  virtual ~ChatSink() = default;
  // Sends one SSE data event (a chat.completion.chunk JSON). The first call commits the HTTP 200
  // response. Returns false when the client is gone.
  virtual core::Task<bool> send(std::string_view data) = 0;
};

// Where a natively relayed stream goes (the Anthropic Messages API): whole SSE events, named as the
// upstream named them. Implemented by the gateway's API surface.
class EventSink {
 public:
  virtual ~EventSink() = default;
  // Sends one event ("event: <name>\ndata: <data>\n\n"). Returns false when the client is gone.
  virtual core::Task<bool> send_event(std::string_view event, std::string_view data) = 0;
};

// The client APIs some endpoints speak natively.
enum class NativeApi { anthropic_messages, openai_responses };

// A request relayed natively to an endpoint that speaks the client's API (Anthropic Messages,
// OpenAI Responses): the client's body as it came (the provider rewrites only what the API's relay
// documents: `model`; for Responses also `store` and `previous_response_id`) and the API's own headers.
struct NativeRequest {
  std::string_view body;
  std::string_view anthropic_version;  // empty: not sent
  std::string_view anthropic_beta;     // empty: not sent
  NativeApi api = NativeApi::anthropic_messages;
};

struct AttemptContext {
  const core::ChatRequest* request = nullptr;
  const NativeRequest* native = nullptr;  // set for Provider::anthropic_messages / openai_responses
  const core::EmbeddingRequest* embedding = nullptr;  // set for Provider::embeddings
  Target target;
  UpstreamTimeouts timeouts;
  core::SteadyTime total_deadline{};
  // The gateway's request id: a view of the request's own (which outlives its attempts), not a copy
  // per attempt.
  std::string_view request_id;
  UpstreamClient* client = nullptr;  // this worker thread's pool
  CancelHook* cancel = nullptr;
};

struct AttemptResult {
  std::optional<core::Error> error;
  bool content_sent = false;         // something reached the client (stream only)
  core::Usage usage;
  std::string finish_reason;
  std::string body;                  // non-stream: OpenAI-shaped chat.completion JSON (Anthropic
                                     // message JSON from anthropic_messages)
  std::string usage_chunk;           // stream: final usage-only chunk for clients that asked for usage
  // Stream: the id, model and created time its chunks carried, so that a closing error chunk
  // looks like the chunks before it (empty / 0 when no chunk was seen).
  std::string stream_id;
  std::string stream_model;
  int64_t stream_created = 0;
  std::chrono::microseconds ttft{0}; // to first content (stream) or to the whole answer
  int upstream_status = 0;
  int keepalives = 0;                // SSE comments seen (DeepSeek queueing)
  // For accounting an attempt that consumed tokens without usage (client gone, stream cut):
  bool request_sent = false;         // the upstream may have started work (and billing) for it
  int64_t relayed_tokens = 0;        // completion tokens relayed to the client so far (estimated
                                     // from the text; the local engine counts exactly)
  int64_t counted_prompt_tokens = -1;  // exact prompt count when the provider knows it (local; a native
                                       // Anthropic stream cut before its final usage), else -1
  // anthropic_messages stream: the answer is complete: the upstream's message_stop was seen and
  // withheld, or the body ended cleanly after message_delta's stop_reason without one (the gateway
  // sends message_stop after accounting either way, as it sends [DONE] on the OpenAI surface).
  bool native_complete = false;
};

class Provider {
 public:
  virtual ~Provider() = default;
  virtual const std::string& name() const = 0;
  virtual const Dialect& dialect() const = 0;
  virtual std::vector<std::string> regions() const = 0;
  virtual const std::string& default_region() const = 0;
  // False when the provider cannot be used (e.g. its API key is not set); reason says how to fix it.
  virtual bool available() const = 0;
  virtual std::string unavailable_reason() const = 0;
  // One attempt, its outcome written into `res` as it goes (a default AttemptResult of the caller's:
  // not a value returned, which would be kept twice in the frames of a relayed stream). With
  // sink == nullptr the answer is returned whole in AttemptResult::body.
  virtual core::Task<void> chat(const AttemptContext& ctx, ChatSink* sink, AttemptResult& res) = 0;
  // Whether `region` (empty: the default) has an Anthropic Messages endpoint the provider can relay
  // to natively (built in per dialect region, or configured: ProviderConfig::anthropic_base_url(s)).
  virtual bool speaks_anthropic(const std::string& region) const { (void)region; return false; }
  // One attempt relayed natively to the Anthropic-compatible endpoint (ctx.native set): the body
  // with only `model` rewritten to ctx.target.model, unknown fields kept; the answer relayed event
  // by event to `sink` (nullptr: returned whole in body) except the final message_stop, which the
  // gateway sends after accounting. The caller passes a sink exactly when the body asks for a
  // stream ("stream": true): the body's stream flag is not rewritten. Events before the first
  // content (message_start, a ping, an empty block start) are held back until content comes, so
  // that an error before content (`event: error` included) still fails over with nothing sent.
  // Usage is read from message_start / message_delta (or the message's usage) into
  // AttemptResult::usage, present only once the final figures came (message_delta's usage); a stream
  // that ends before them reports message_start's prompt count in counted_prompt_tokens and the
  // output relayed in relayed_tokens. finish_reason is Anthropic's stop_reason ("end_turn",
  // "tool_use", ...). An error is mapped to core::Error as chat() maps the same condition, so
  // fail-over rules are the same.
  virtual core::Task<void> anthropic_messages(const AttemptContext& ctx, EventSink* sink, AttemptResult& res);
  // One embeddings attempt (ctx.embedding set): the rows sent in sub-requests of at most the
  // dialect's embedding_batch_rows, one after another, and the vectors re-assembled in input order
  // into an OpenAI embeddings list in AttemptResult::body (upstream model name, usage summed;
  // usage.present only when every sub-request reported it). Any sub-request failing fails the whole
  // attempt (nothing reached the client, so the pipeline fails over): never a partial answer.
  // A provider without an embeddings API answers a retryable `unavailable` error.
  virtual core::Task<void> embeddings(const AttemptContext& ctx, AttemptResult& res);
  // Whether `region` (empty: the default) speaks the OpenAI Responses API (POST <base URL>/responses):
  // built in per dialect region where the vendor documents it, or configured (ProviderConfig::responses).
  virtual bool speaks_responses(const std::string& region) const { (void)region; return false; }
  // One attempt relayed natively to that endpoint (ctx.native set, its body already carrying the
  // whole conversation in `input`): rewrite_responses_body (providers/responses_wire.h) makes the
  // upstream body; the answer is relayed event by event to `sink` (nullptr: returned whole in body)
  // except the final response.completed / response.incomplete, whose data is left in body for the
  // gateway to send after accounting. Events before the first content are held as for
  // anthropic_messages, so an error before content fails over. Usage comes from the final event or
  // the Response object; finish_reason is the Response's status. Errors map as chat() maps them.
  virtual core::Task<void> openai_responses(const AttemptContext& ctx, EventSink* sink, AttemptResult& res);
  // Live load figures of providers that run inference themselves (the local engine); 0 otherwise.
  virtual size_t queue_depth() const { return 0; }
  virtual double decode_tokens_per_second() const { return 0; }
  // Tokens per sequence (prompt + completion) it really serves, when it knows (the local engine);
  // 0 = unknown, the routing catalog's figure stands.
  virtual int64_t context_window() const { return 0; }
  // One line on what was loaded, for the start-up log (the local engine: model, context, KV cache
  // type and its memory per token); empty when there is nothing to say.
  virtual std::string load_summary() const { return {}; }
};

}  // namespace providers
