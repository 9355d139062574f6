#pragma once
// POST /v1/responses as an API surface: an attempt at a deployment that speaks the Responses API
// is relayed natively (native_request(): the client's body, a continuation's conversation expanded
// into `input`; responses_native.h rewrites the answer's ids and sequence numbers); any other is
// translated to OpenAI chat (openai_responses.h) and its answer translated back, event by event
// for streams. Either way the answer is stored the same. The response id is minted at decode. Once the request is done the surface hands
// back what a response store keeps: the id, the final Response object, the input and output items.
#include <memory>
#include <string>
#include <string_view>

#include "gateway/api/openai_responses.h"
#include "gateway/api/responses_native.h"
#include "gateway/api/surface.h"
#include "gateway/state/response_store.h"

namespace boost::asio {
class thread_pool;
}

namespace gateway {

// Where this request's responses are kept (state.responses) and whose they are. A null store keeps
// nothing: `previous_response_id` is then unknown and `store: true` has no effect.
struct ResponseStoreAccess {
  ResponseStore* store = nullptr;
  boost::asio::thread_pool* pool = nullptr;  // the store blocks: its calls run here
  std::string tenant;
  size_t max_conversation_bytes = 0;         // a continued conversation's bound (the body limit)
};

class OpenAiResponsesSurface final : public Surface {
 public:
  OpenAiResponsesSurface(ClientIo& io, ResponseStoreAccess store);
  ~OpenAiResponsesSurface() override;

  core::Result<core::ChatRequest> decode(std::string body) override;
  std::string error_body(const core::Error& e) const override;
  bool continues() const override { return !previous_id_.empty(); }
  core::Task<core::Result<core::ChatRequest>> load_continuation() override;
  core::Task<core::Result<std::string>> answer_body(std::string body, bool native) override;
  providers::ChatSink& stream_sink() override;
  core::Task<bool> close_stream(providers::ChatSink& head, const StreamClose& c) override;
  core::Task<bool> fail_stream(const StreamClose& c, const core::Error& e) override;
  core::Task<bool> close_replayed_stream() override;
  const providers::NativeRequest* native_request() const override { return native_.body.empty() ? nullptr : &native_; }
  bool keeps_client_body() const override { return true; }
  providers::EventSink* native_sink() override;
  const core::Error* translation_refusal() const override { return refusal_ ? &*refusal_ : nullptr; }

  // For a response store (valid after decode succeeded).
  const std::string& response_id() const { return request_.response_id; }
  bool store() const { return request_.store; }
  const std::string& previous_response_id() const { return request_.previous_response_id; }
  const std::string& metadata_json() const { return request_.metadata_json; }
  const std::string& input_items_json() const { return request_.input_items_json; }
  // The final Response object and its output items: a non-stream answer, or a stream's last event
  // (completed, incomplete or failed). Empty strings while there is none.
  std::string response_json() const;
  std::string output_items_json() const;

 private:
  class TranslatingSink;
  class NativeSink;
  ResponseIdentity identity() const;
  // The stream's end for a native attempt: the withheld final event, rewritten.
  core::Task<bool> close_native_stream(const StreamClose& c);
  core::Task<bool> send_all(const std::vector<SseEvent>& events);
  core::Result<core::ChatRequest> translate(std::string_view body, std::string_view prior_items);
  // Keeps the final response (store: true) before the client can ask for it; a store that fails
  // is logged, and the answer still goes out.
  core::Task<void> keep();

  ClientIo& io_;
  ResponseStoreAccess store_;
  std::string body_;         // kept for a continuation's translation
  std::string previous_id_;  // previous_response_id, when the request continues one
  int64_t created_at_ = 0;
  ResponsesRequest request_;  // what the encoders need (the chat request moves to the pipeline)
  std::optional<ResponseObject> answer_;
  std::unique_ptr<ResponsesStreamEncoder> encoder_;
  std::unique_ptr<TranslatingSink> sink_;
  std::string native_body_;  // the body a native attempt relays
  std::optional<core::Error> refusal_;  // why a translated attempt cannot carry the request
  providers::NativeRequest native_;
  std::unique_ptr<NativeEventRewriter> rewriter_;  // streams
  std::unique_ptr<NativeSink> native_sink_;
};

// "resp_" and 32 random hex digits.
std::string new_response_id();

}  // namespace gateway
