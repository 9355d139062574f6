#pragma once
// POST /v1/chat/completions as an API surface: the client's body is already the core form, answers
// go out as the providers produced them, streams end with the usage chunk (when asked), the cost
// comment and [DONE], and a stream that fails after content ends with a finish_reason "error" chunk
// and the error event, never a fabricated [DONE].
#include "gateway/api/surface.h"

namespace gateway {

class OpenAiChatSurface final : public Surface {
 public:
  explicit OpenAiChatSurface(ClientIo& io) : io_(io) {}
  core::Result<core::ChatRequest> decode(std::string body) override;
  std::string error_body(const core::Error& e) const override;
  core::Task<core::Result<std::string>> answer_body(std::string body, bool) override { co_return body; }
  providers::ChatSink& stream_sink() override { return io_; }
  core::Task<bool> close_stream(providers::ChatSink& head, const StreamClose& c) override;
  core::Task<bool> fail_stream(const StreamClose& c, const core::Error& e) override;
  core::Task<bool> close_replayed_stream() override;

 private:
  ClientIo& io_;
  bool include_usage_ = false;  // the client asked stream_options.include_usage
  std::string model_;           // the model name the client asked for
};

}  // namespace gateway
