#include "gateway/api/openai_chat_surface.h"

#include "core/json_writer.h"
#include "gateway/api/openai_chat.h"
#include "providers/openai_normalize.h"

namespace gateway {
namespace {

// The head of a chunk that closes a stream: the stream's own id, created time and model, as the
// chunks before it carried them (the request's when the attempt saw none).
std::string closing_chunk_head(const StreamClose& c, const std::string& alias) {
  const providers::AttemptResult& r = *c.result;
  std::string s = "{\"id\":";
  core::append_json_string(s, r.stream_id.empty() ? c.request_id : std::string_view(r.stream_id));
  s += ",\"object\":\"chat.completion.chunk\",\"created\":" +
       std::to_string(r.stream_created ? r.stream_created : c.created) + ",\"model\":";
  core::append_json_string(s, r.stream_model.empty() ? alias : r.stream_model);
  return s;
}

std::string error_chunk(const StreamClose& c, const std::string& alias) {
  return closing_chunk_head(c, alias) + ",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"error\"}]}";
}

// The usage-only chunk of a failed stream: what was counted for the attempt (the provider's usage,
// or the gateway's estimate when the provider sent none).
std::string failed_usage_chunk(const StreamClose& c, const std::string& alias) {
  const providers::AttemptResult& r = *c.result;
  if (r.usage.present && !r.usage_chunk.empty()) return r.usage_chunk;
  return closing_chunk_head(c, alias) + ",\"choices\":[],\"usage\":" + providers::usage_to_json(*c.counted) + "}";
}

}  // namespace

core::Result<core::ChatRequest> OpenAiChatSurface::decode(std::string body) {
  auto parsed = parse_chat_request(std::move(body));
  if (parsed) {
    include_usage_ = parsed->include_usage;
    model_ = parsed->model;
  }
  return parsed;
}

std::string OpenAiChatSurface::error_body(const core::Error& e) const { return error_json(e); }

core::Task<bool> OpenAiChatSurface::close_stream(providers::ChatSink& head, const StreamClose& c) {
  bool ok = true;
  if (include_usage_ && !c.result->usage_chunk.empty()) ok = co_await head.send(c.result->usage_chunk);
  if (ok && c.cost) ok = co_await io_.send_comment("x-gateway-cost-usd: " + core::format_usd(*c.cost));
  if (ok) ok = co_await io_.send("[DONE]");  // not recorded: a cache hit sends its own, after its cost
  if (ok) ok = co_await io_.end_stream();
  co_return ok;
}

core::Task<bool> OpenAiChatSurface::fail_stream(const StreamClose& c, const core::Error& e) {
  bool ok = true;
  if (include_usage_ && c.counted) ok = co_await io_.send(failed_usage_chunk(c, model_));
  if (ok) ok = co_await io_.send(error_chunk(c, model_));
  if (ok) ok = co_await io_.send(error_json(e));
  if (ok) ok = co_await io_.end_stream();
  co_return ok;
}

core::Task<bool> OpenAiChatSurface::close_replayed_stream() {
  bool ok = co_await io_.send_comment("x-gateway-cost-usd: 0.0");
  if (ok) ok = co_await io_.send("[DONE]");
  if (ok) ok = co_await io_.end_stream();
  co_return ok;
}

}  // namespace gateway
