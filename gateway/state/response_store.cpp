#include "gateway/state/response_store.h"

#include <vector>

#include "core/error.h"
#include "gateway/state/redis_client.h"
#include "gateway/state/response_cache.h"

namespace gateway {
namespace {

// The elements of a JSON array text ("[a,b]" -> "a,b"); the store wrote it, so it is well-formed.
std::string_view array_elements(std::string_view a) {
  while (!a.empty() && (a.front() == ' ' || a.front() == '\n')) a.remove_prefix(1);
  while (!a.empty() && (a.back() == ' ' || a.back() == '\n')) a.remove_suffix(1);
  if (a.size() < 2 || a.front() != '[' || a.back() != ']') return {};
  a = a.substr(1, a.size() - 2);
  while (!a.empty() && (a.front() == ' ' || a.front() == '\n')) a.remove_prefix(1);
  return a;
}

core::Error previous_not_found(std::string_view id) {
  return core::make_error(core::ErrorKind::bad_request,
                          "Previous response with id '" + std::string(id.substr(0, 128)) + "' not found.",
                          core::ErrorSource::client, "previous_response_not_found", "previous_response_id");
}

}  // namespace

core::Result<std::string> conversation_items(ResponseStore& store, std::string_view tenant, std::string_view id,
                                             size_t max_bytes) {
  std::vector<StoredResponse> chain;  // newest first
  size_t bytes = 0;
  std::string next(id);
  while (!next.empty()) {
    auto r = store.get(tenant, next);
    if (!r) return std::move(r).error();
    if (!*r) return previous_not_found(next);
    bytes += (*r)->input_items_json.size() + (*r)->output_items_json.size();
    if (bytes > max_bytes)
      return core::make_error(core::ErrorKind::payload_too_large,
                              "The conversation continued by previous_response_id is larger than the request limit of " +
                                  std::to_string(max_bytes) + " bytes.",
                              core::ErrorSource::client, "conversation_too_large", "previous_response_id");
    next = (*r)->previous_id;
    chain.push_back(std::move(**r));
  }
  std::string out = "[";
  for (auto it = chain.rbegin(); it != chain.rend(); ++it)
    for (std::string_view items : {std::string_view(it->input_items_json), std::string_view(it->output_items_json)}) {
      std::string_view e = array_elements(items);
      if (e.empty()) continue;
      if (out.size() > 1) out += ',';
      out += e;
    }
  out += ']';
  return out;
}

// ---- Redis: one hash per response, its key derived from (tenant, id), so another tenant's
// lookup of the same id reads a different key. ----

namespace {

class RedisResponseStore final : public ResponseStore {
 public:
  RedisResponseStore(std::shared_ptr<RedisClient> redis, ResponseStoreLimits limits)
      : redis_(std::move(redis)), limits_(limits) {}

  core::Status put(const StoredResponse& r) override {
    static const RedisScript script(
        "redis.call('DEL', KEYS[1]);"
        "redis.call('HSET', KEYS[1], 'previous', ARGV[1], 'created', ARGV[2], 'response', ARGV[3],"
        " 'input', ARGV[4], 'output', ARGV[5]);"
        "redis.call('EXPIRE', KEYS[1], ARGV[6]); return 1");
    auto reply = redis_->eval(script, {key(r.tenant, r.id)},
                              {r.previous_id, std::to_string(r.created_at), r.response_json, r.input_items_json,
                               r.output_items_json, std::to_string(limits_.max_age.count())});
    if (!reply) return std::move(reply).error();
    if (reply->is_error()) return redis_error(reply->str);
    return core::ok_status();
  }

  core::Result<std::optional<StoredResponse>> get(std::string_view tenant, std::string_view id) override {
    auto reply = redis_->command({"HGETALL", key(tenant, id)});
    if (!reply) return std::move(reply).error();
    if (reply->is_error()) return redis_error(reply->str);
    if (reply->type != RedisReply::Type::array || reply->elements.empty()) return std::optional<StoredResponse>{};
    StoredResponse r;
    r.id = id;
    r.tenant = tenant;
    int fields = 0;
    for (size_t i = 0; i + 1 < reply->elements.size(); i += 2) {
      const std::string& f = reply->elements[i].str;
      std::string& v = reply->elements[i + 1].str;
      if (f == "previous") r.previous_id = std::move(v), ++fields;
      else if (f == "created") r.created_at = std::atoll(v.c_str()), ++fields;
      else if (f == "response") r.response_json = std::move(v), ++fields;
      else if (f == "input") r.input_items_json = std::move(v), ++fields;
      else if (f == "output") r.output_items_json = std::move(v), ++fields;
    }
    if (fields != 5) return redis_error("stored response " + std::string(id) + " is incomplete");
    return std::optional<StoredResponse>(std::move(r));
  }

  core::Result<bool> remove(std::string_view tenant, std::string_view id) override {
    auto reply = redis_->command({"DEL", key(tenant, id)});
    if (!reply) return std::move(reply).error();
    if (reply->is_error()) return redis_error(reply->str);
    return reply->integer > 0;
  }

  std::string describe() const override {
    return "Redis " + redis_->endpoint() + " (TTL " + std::to_string(limits_.max_age.count()) + " s)";
  }

 private:
  static std::string key(std::string_view tenant, std::string_view id) {
    return "gw:resp:" + cache_key(tenant, id);  // SHA-256 of tenant NUL id
  }
  static core::Error redis_error(const std::string& what) {
    return core::make_error(core::ErrorKind::unavailable, "the response store (Redis) failed: " + what,
                            core::ErrorSource::gateway, "response_store_unavailable");
  }

  std::shared_ptr<RedisClient> redis_;
  ResponseStoreLimits limits_;
};

}  // namespace

std::unique_ptr<ResponseStore> make_redis_response_store(std::shared_ptr<RedisClient> redis, ResponseStoreLimits limits) {
  return std::make_unique<RedisResponseStore>(std::move(redis), limits);
}

}  // namespace gateway
