#include "gateway/api/anthropic_messages_surface.h"

#include "core/money.h"

namespace gateway {

// The translated path's stream sink: each OpenAI chunk a provider relays becomes the Anthropic
// events it implies. A chunk that breaks the stream's shape ends the stream with an error event;
// the provider then sees a closed sink and stops.
class AnthropicMessagesSurface::TranslatingSink final : public providers::ChatSink {
 public:
  explicit TranslatingSink(AnthropicMessagesSurface& s) : s_(s) {}
  core::Task<bool> send(std::string_view data) override {
    auto events = s_.encoder_->feed(data);
    if (!events) {
      co_await s_.send_all(s_.encoder_->fail(events.error()));
      co_return false;
    }
    co_return co_await s_.send_all(*events);
  }

 private:
  AnthropicMessagesSurface& s_;
};

AnthropicMessagesSurface::AnthropicMessagesSurface(ClientIo& io, std::string_view anthropic_version,
                                                   std::string_view anthropic_beta)
    : io_(io) {
  native_.anthropic_version = anthropic_version;
  native_.anthropic_beta = anthropic_beta;
}

AnthropicMessagesSurface::~AnthropicMessagesSurface() = default;

core::Result<core::ChatRequest> AnthropicMessagesSurface::decode(std::string body) {
  body_ = std::move(body);
  // Members only a native relay can carry are not refused here: the attempt decides (attempts.cpp).
  auto t = anthropic_to_openai_for_relay(body_);
  if (!t) return std::move(t).error();
  translated_ = std::move(t).value();
  native_.body = body_;
  core::ChatRequest chat = std::move(translated_.chat);
  if (translated_.stream) {
    encoder_ = std::make_unique<AnthropicStreamEncoder>(translated_, core::estimate_prompt_tokens(chat));
    sink_ = std::make_unique<TranslatingSink>(*this);
  }
  return chat;
}

core::Task<core::Result<std::string>> AnthropicMessagesSurface::answer_body(std::string body, bool native) {
  if (native) co_return body;
  co_return openai_to_anthropic_response(body, translated_);
}

providers::ChatSink& AnthropicMessagesSurface::stream_sink() { return *sink_; }

core::Task<bool> AnthropicMessagesSurface::send_all(const std::vector<SseEvent>& events) {
  for (const auto& e : events)
    if (!co_await io_.send_event(e.name, e.data)) co_return false;
  co_return true;
}

core::Task<bool> AnthropicMessagesSurface::close_stream(providers::ChatSink& head, const StreamClose& c) {
  bool ok = true;
  if (c.native) {
    // The upstream's events went out as they came; its message_stop was withheld until now.
    if (c.cost) ok = co_await io_.send_comment("x-gateway-cost-usd: " + core::format_usd(*c.cost));
    if (ok) ok = co_await io_.send_event("message_stop", "{\"type\":\"message_stop\"}");
  } else {
    // The usage chunk goes through `head` (recorded for the cache) into the encoder; without one,
    // what was counted stands in for it.
    const providers::AttemptResult& r = *c.result;
    if (!r.usage_chunk.empty()) ok = co_await head.send(r.usage_chunk);
    if (ok && c.cost) ok = co_await io_.send_comment("x-gateway-cost-usd: " + core::format_usd(*c.cost));
    std::optional<core::Usage> usage;
    if (!r.usage.present && c.counted) usage = *c.counted;
    if (ok) ok = co_await send_all(encoder_->finish(usage));
  }
  if (ok) ok = co_await io_.end_stream();
  co_return ok;
}

core::Task<bool> AnthropicMessagesSurface::fail_stream(const StreamClose& c, const core::Error& e) {
  bool ok = true;
  if (c.native || !encoder_) ok = co_await io_.send_event("error", anthropic_error_json(e));
  else ok = co_await send_all(encoder_->fail(e));
  if (ok) ok = co_await io_.end_stream();
  co_return ok;
}

core::Task<bool> AnthropicMessagesSurface::close_replayed_stream() {
  bool ok = co_await io_.send_comment("x-gateway-cost-usd: 0.0");
  if (ok) ok = co_await send_all(encoder_->finish());
  if (ok) ok = co_await io_.end_stream();
  co_return ok;
}

}  // namespace gateway
