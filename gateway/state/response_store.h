#pragma once
// Stored responses of the OpenAI Responses API (`store: true`): what GET /v1/responses/{id} returns,
// what its input_items lists, and what `previous_response_id` continues. Each response is stored
// under its tenant: a lookup with another tenant finds nothing, so ids never leak across tenants.
//
// A response keeps only its own items (this request's input, its output) and the id of the one it
// continued; a conversation is that chain walked back (conversation_items). Storage stays linear in
// the conversation's length, and deleting a response ends the conversations that pass through it.
//
// Implementations block (a disk write, a Redis round trip): the I/O threads call them through
// core::offload.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace gateway {

class RedisClient;

struct StoredResponse {
  std::string id;                 // resp_...
  std::string tenant;             // empty in open mode
  std::string previous_id;        // the response this one continued; empty if none
  int64_t created_at = 0;         // unix seconds
  std::string response_json;      // the Response object, as GET returns it
  std::string input_items_json;   // this request's input items (a JSON array), as input_items lists them
  std::string output_items_json;  // its output items (a JSON array)

  size_t bytes() const {
    return id.size() + tenant.size() + previous_id.size() + response_json.size() + input_items_json.size() +
           output_items_json.size();
  }
};

struct ResponseStoreLimits {
  std::chrono::seconds max_age{std::chrono::hours(24 * 30)};  // older responses are forgotten
  uint64_t max_bytes = 256ull << 20;  // beyond it the oldest are dropped (SQLite; Redis uses its maxmemory)
};

class ResponseStore {
 public:
  virtual ~ResponseStore() = default;
  virtual core::Status put(const StoredResponse& r) = 0;
  // nullopt: no such response for this tenant (never stored, expired, deleted, or another tenant's).
  virtual core::Result<std::optional<StoredResponse>> get(std::string_view tenant, std::string_view id) = 0;
  // False when there was nothing to delete for this tenant.
  virtual core::Result<bool> remove(std::string_view tenant, std::string_view id) = 0;
  virtual std::string describe() const = 0;  // for the start-up log: where responses go
};

// SQLite file (WAL); ":memory:" keeps them in the process only.
core::Result<std::unique_ptr<ResponseStore>> open_sqlite_response_store(const std::string& path,
                                                                        ResponseStoreLimits limits);
// Redis (state.mode: redis): every replica sees every response; max_age becomes each key's TTL.
std::unique_ptr<ResponseStore> make_redis_response_store(std::shared_ptr<RedisClient> redis, ResponseStoreLimits limits);

// The items a response continuing `id` starts from: the input and output items of `id` and of every
// response before it in its chain, oldest first, as one JSON array. bad_request, as OpenAI answers (code
// previous_response_not_found, param previous_response_id) when `id` or one it continued is not
// stored for this tenant; payload_too_large when the conversation exceeds `max_bytes`.
core::Result<std::string> conversation_items(ResponseStore& store, std::string_view tenant, std::string_view id,
                                             size_t max_bytes);

}  // namespace gateway
