#include "gateway/api/openai_responses_surface.h"

#include <chrono>
#include <cstdio>
#include <random>

#include "core/money.h"
#include "core/offload.h"
#include "gateway/api/openai_chat.h"

namespace gateway {

std::string new_response_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id = "resp_";
  for (int half = 0; half < 2; ++half)
    for (uint64_t v = rng(), i = 0; i < 16; ++i, v >>= 4) id += "0123456789abcdef"[v & 15];
  return id;
}

// Each chat chunk a provider relays becomes the Responses events it implies. A chunk that breaks
// the stream's shape ends the stream with response.failed; the provider then sees a closed sink.
class OpenAiResponsesSurface::TranslatingSink final : public providers::ChatSink {
 public:
  explicit TranslatingSink(OpenAiResponsesSurface& s) : s_(s) {}
  core::Task<bool> send(std::string_view data) override {
    auto events = s_.encoder_->feed(data);
    if (!events) {
      co_await s_.send_all(s_.encoder_->fail(events.error()));
      co_return false;
    }
    co_return co_await s_.send_all(*events);
  }

 private:
  OpenAiResponsesSurface& s_;
};

// A native attempt's events, rewritten with the gateway's ids and sequence numbers on their way out.
class OpenAiResponsesSurface::NativeSink final : public providers::EventSink {
 public:
  explicit NativeSink(OpenAiResponsesSurface& s) : s_(s) {}
  core::Task<bool> send_event(std::string_view event, std::string_view data) override {
    // The provider relays only events it parsed as JSON objects: a rewrite cannot fail on them.
    auto out = s_.rewriter_->rewrite(data);
    if (!out) co_return false;
    co_return co_await s_.io_.send_event(event, *out);
  }

 private:
  OpenAiResponsesSurface& s_;
};

OpenAiResponsesSurface::OpenAiResponsesSurface(ClientIo& io, ResponseStoreAccess store)
    : io_(io), store_(std::move(store)) {}

OpenAiResponsesSurface::~OpenAiResponsesSurface() = default;

core::Result<core::ChatRequest> OpenAiResponsesSurface::decode(std::string body) {
  created_at_ = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto previous = responses_previous_id(body);
  if (!previous) return std::move(previous).error();
  if (!*previous) return translate(body, "");
  // The stored conversation is loaded off the I/O thread (load_continuation), then translated.
  previous_id_ = std::move(**previous);
  body_ = std::move(body);
  return core::ChatRequest{};
}

core::Task<core::Result<core::ChatRequest>> OpenAiResponsesSurface::load_continuation() {
  if (!store_.store)
    co_return core::make_error(core::ErrorKind::bad_request,
                               "Previous response with id '" + previous_id_.substr(0, 128) +
                                   "' not found: this gateway stores no responses (state.responses.store off).",
                               core::ErrorSource::client, "previous_response_not_found", "previous_response_id");
  auto prior = co_await core::offload(store_.pool, [this] {
    return conversation_items(*store_.store, store_.tenant, previous_id_, store_.max_conversation_bytes);
  });
  if (!prior) co_return std::move(prior).error();
  co_return translate(body_, *prior);
}

core::Result<core::ChatRequest> OpenAiResponsesSurface::translate(std::string_view body, std::string_view prior_items) {
  std::string id = new_response_id();
  auto t = responses_to_chat(body, prior_items, id);
  if (!t && t.error().code == "unsupported_tool") {
    // Built-in tools: a deployment that speaks the Responses API can carry them; routing and the
    // translated attempts read the body without them, and are refused with this error (attempts.cpp).
    if (auto routable = without_builtin_tools(body)) {
      core::Error refusal = t.error();
      t = responses_to_chat(*routable, prior_items, id);
      if (t) refusal_ = std::move(refusal);
    }
  }
  if (!t) return std::move(t).error();
  request_ = std::move(t).value();
  core::ChatRequest chat = std::move(request_.chat);
  if (request_.stream) {
    encoder_ = std::make_unique<ResponsesStreamEncoder>(request_, created_at_);
    sink_ = std::make_unique<TranslatingSink>(*this);
  }
  if (auto native = responses_native_body(body, prior_items, request_.input_items_json)) {
    native_body_ = std::move(*native);
    native_.api = providers::NativeApi::openai_responses;
    native_.body = native_body_;
    if (request_.stream) {
      rewriter_ = std::make_unique<NativeEventRewriter>(identity());
      native_sink_ = std::make_unique<NativeSink>(*this);
    }
  }
  return chat;
}

core::Task<void> OpenAiResponsesSurface::keep() {
  if (!store_.store || !request_.store) co_return;
  StoredResponse r;
  r.id = request_.response_id;
  r.tenant = store_.tenant;
  r.previous_id = previous_id_;
  r.created_at = created_at_;
  r.response_json = response_json();
  r.input_items_json = request_.input_items_json;
  r.output_items_json = output_items_json();
  if (r.response_json.empty()) co_return;
  auto s = co_await core::offload(store_.pool, [this, &r] { return store_.store->put(r); });
  if (!s) std::fprintf(stderr, "gateway: response %s not stored: %s\n", r.id.c_str(), s.error().message.c_str());
}

ResponseIdentity OpenAiResponsesSurface::identity() const {
  return {request_.response_id, request_.model, request_.store, request_.previous_response_id};
}

providers::EventSink* OpenAiResponsesSurface::native_sink() { return native_sink_.get(); }

std::string OpenAiResponsesSurface::error_body(const core::Error& e) const { return error_json(e); }

core::Task<core::Result<std::string>> OpenAiResponsesSurface::answer_body(std::string body, bool native) {
  if (native) {
    auto json = rewrite_native_response(body, identity());
    if (!json)
      co_return core::make_error(core::ErrorKind::server_error, "the upstream's answer is not a Response object",
                                 core::ErrorSource::upstream);
    answer_ = ResponseObject{*json, native_output_items(*json)};
    co_await keep();
    co_return answer_->json;
  }
  auto r = chat_to_response(body, request_, created_at_);
  if (!r) co_return std::move(r).error();
  answer_ = std::move(r).value();
  co_await keep();
  co_return answer_->json;
}

std::string OpenAiResponsesSurface::response_json() const {
  if (answer_) return answer_->json;
  return encoder_ && encoder_->ended() ? encoder_->response().json : std::string();
}

std::string OpenAiResponsesSurface::output_items_json() const {
  if (answer_) return answer_->output_items_json;
  return encoder_ && encoder_->ended() ? encoder_->response().output_items_json : std::string();
}

providers::ChatSink& OpenAiResponsesSurface::stream_sink() { return *sink_; }

core::Task<bool> OpenAiResponsesSurface::send_all(const std::vector<SseEvent>& events) {
  for (const auto& e : events)
    if (!co_await io_.send_event(e.name, e.data)) co_return false;
  co_return true;
}

core::Task<bool> OpenAiResponsesSurface::close_native_stream(const StreamClose& c) {
  const providers::AttemptResult& r = *c.result;
  bool ok = true;
  if (c.cost) ok = co_await io_.send_comment("x-gateway-cost-usd: " + core::format_usd(*c.cost));
  auto last = rewriter_->rewrite(r.body);
  if (!ok || !last) co_return false;
  answer_ = ResponseObject{rewriter_->response(), native_output_items(rewriter_->response())};
  co_await keep();
  const std::string_view name = r.finish_reason == "incomplete" ? "response.incomplete" : "response.completed";
  ok = co_await io_.send_event(name, *last);
  if (ok) ok = co_await io_.end_stream();
  co_return ok;
}

core::Task<bool> OpenAiResponsesSurface::close_stream(providers::ChatSink& head, const StreamClose& c) {
  if (c.native) co_return co_await close_native_stream(c);
  // The usage chunk goes through `head` (recorded for the cache) into the encoder; without one,
  // what was counted stands in for it.
  const providers::AttemptResult& r = *c.result;
  bool ok = true;
  if (!r.usage_chunk.empty()) ok = co_await head.send(r.usage_chunk);
  if (ok && c.cost) ok = co_await io_.send_comment("x-gateway-cost-usd: " + core::format_usd(*c.cost));
  std::optional<core::Usage> usage;
  if (!r.usage.present && c.counted) usage = *c.counted;
  if (!ok) co_return false;
  auto events = encoder_->finish(usage);
  co_await keep();
  ok = co_await send_all(events);
  if (ok) ok = co_await io_.end_stream();
  co_return ok;
}

core::Task<bool> OpenAiResponsesSurface::fail_stream(const StreamClose& c, const core::Error& e) {
  // The failed response carries what was counted for the attempt.
  std::optional<core::Usage> usage;
  if (c.counted) usage = *c.counted;
  if (c.native) {
    const std::string failed = rewriter_->failed(e, usage);
    answer_ = ResponseObject{rewriter_->response(), native_output_items(rewriter_->response())};
    co_await keep();
    bool ok = co_await io_.send_event("response.failed", failed);
    if (ok) ok = co_await io_.end_stream();
    co_return ok;
  }
  auto events = encoder_->fail(e, usage);
  co_await keep();
  bool ok = co_await send_all(events);
  if (ok) ok = co_await io_.end_stream();
  co_return ok;
}

core::Task<bool> OpenAiResponsesSurface::close_replayed_stream() {
  bool ok = co_await io_.send_comment("x-gateway-cost-usd: 0.0");
  if (!ok) co_return false;
  auto events = encoder_->finish();
  co_await keep();
  ok = co_await send_all(events);
  if (ok) ok = co_await io_.end_stream();
  co_return ok;
}

}  // namespace gateway
