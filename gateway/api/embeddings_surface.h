#pragma once
// POST /v1/embeddings as an API surface. It rides the chat Surface because every phase but the
// attempt itself is the same (auth, tenant settings, routing, budgets, fail-over, accounting, the
// access log); the attempts phase calls Provider::embeddings for a request with `embedding` set.
// An embeddings request is never streamed, so the stream members are never asked for.
#include "gateway/api/surface.h"

namespace gateway {

class EmbeddingsSurface final : public Surface {
 public:
  explicit EmbeddingsSurface(ClientIo& io) : io_(io) {}
  core::Result<core::ChatRequest> decode(std::string body) override;
  std::string error_body(const core::Error& e) const override;
  core::Task<core::Result<std::string>> answer_body(std::string body, bool native) override;
  providers::ChatSink& stream_sink() override { return io_; }
  core::Task<bool> close_stream(providers::ChatSink&, const StreamClose&) override { co_return false; }
  core::Task<bool> fail_stream(const StreamClose&, const core::Error&) override { co_return false; }
  core::Task<bool> close_replayed_stream() override { co_return false; }

 private:
  ClientIo& io_;
  bool base64_ = false;
};

}  // namespace gateway
