#pragma once
// POST /v1/messages as an API surface. A deployment with an Anthropic-compatible endpoint gets the
// client's request natively (native_request(): only `model` is rewritten, by the provider); every
// other deployment (any OpenAI-compatible server, the local engine) gets it translated to OpenAI
// chat (anthropic_messages.h), and its answer is translated back, event by event. Either way a
// stream's final message_stop is the gateway's to send, after the attempt was accounted.
#include <memory>
#include <string>

#include "gateway/api/anthropic_messages.h"
#include "gateway/api/surface.h"

namespace gateway {

class AnthropicMessagesSurface final : public Surface {
 public:
  // `anthropic_version` / `anthropic_beta`: the client's headers (views valid for the request).
  AnthropicMessagesSurface(ClientIo& io, std::string_view anthropic_version, std::string_view anthropic_beta);
  ~AnthropicMessagesSurface() override;

  core::Result<core::ChatRequest> decode(std::string body) override;
  int error_status(const core::Error& e) const override { return anthropic_status(e); }
  std::string error_body(const core::Error& e) const override { return anthropic_error_json(e); }
  core::Task<core::Result<std::string>> answer_body(std::string body, bool native) override;
  providers::ChatSink& stream_sink() override;
  core::Task<bool> close_stream(providers::ChatSink& head, const StreamClose& c) override;
  core::Task<bool> fail_stream(const StreamClose& c, const core::Error& e) override;
  core::Task<bool> close_replayed_stream() override;
  const providers::NativeRequest* native_request() const override { return &native_; }
  bool keeps_client_body() const override { return true; }
  providers::EventSink* native_sink() override { return &io_; }
  const core::Error* translation_refusal() const override {
    return translated_.untranslatable ? &*translated_.untranslatable : nullptr;
  }

 private:
  class TranslatingSink;
  core::Task<bool> send_all(const std::vector<SseEvent>& events);

  ClientIo& io_;
  std::string body_;                 // the client's body, for native relay
  providers::NativeRequest native_;
  TranslatedRequest translated_;     // what the encoder needs (the chat request moves to the pipeline)
  std::unique_ptr<AnthropicStreamEncoder> encoder_;
  std::unique_ptr<TranslatingSink> sink_;
};

}  // namespace gateway
