#include "gateway/api/embeddings_surface.h"

#include "gateway/api/embeddings.h"
#include "gateway/api/openai_chat.h"

namespace gateway {

core::Result<core::ChatRequest> EmbeddingsSurface::decode(std::string body) {
  auto parsed = parse_embeddings_request(std::move(body));
  if (parsed) base64_ = parsed->embedding->base64;
  return parsed;
}

std::string EmbeddingsSurface::error_body(const core::Error& e) const { return error_json(e); }

core::Task<core::Result<std::string>> EmbeddingsSurface::answer_body(std::string body, bool) {
  co_return embeddings_client_answer(body, "", base64_);  // named by the model that served it, as chat answers
}

}  // namespace gateway
