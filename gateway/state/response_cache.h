#pragma once
// Exact-match response cache for deterministic requests.
//
// What is cacheable (cacheable()): a request that asks for temperature 0 explicitly, or any request
// whose client opted in by header. A hit replays the stored response byte for byte: the whole
// non-stream body, or every stream data payload in order, so n > 1 is cached like anything else
// (all choices are replayed together and stay consistent). Hits cost nothing.
//
// The key (cache_key()) is the SHA-256 of the tenant and the canonical request JSON, so tenants never
// see each other's entries. The caller decides what "canonical" is; it must include everything that
// changes the answer or its wire form (model, messages, every sampling parameter, tools, response
// format, stream and stream_options), and exclude nothing else of substance.
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/chat.h"
#include "core/clock.h"
#include "core/usage.h"

namespace gateway {

class RedisClient;

struct CachedResponse {
  std::string body;                 // non-stream: the JSON body
  std::vector<std::string> chunks;  // stream: the data payloads in order
  core::Usage usage;
  std::string deployment;
};

class ResponseCache {
 public:
  struct Stats {
    uint64_t hits = 0, misses = 0, puts = 0, evictions = 0, rejected = 0 /* too big */, errors = 0;
  };
  virtual ~ResponseCache() = default;
  virtual std::optional<CachedResponse> get(const std::string& key) = 0;
  virtual void put(const std::string& key, CachedResponse v, std::chrono::seconds ttl) = 0;
  virtual Stats stats() const = 0;
};

// In process: LRU bounded in bytes (keys + payloads + a fixed overhead per entry), TTL per entry.
// An entry larger than max_bytes / 4 is not stored (one response must not flush the cache).
class MemoryResponseCache final : public ResponseCache {
 public:
  explicit MemoryResponseCache(size_t max_bytes, const core::Clock& clock = core::SystemClock::instance());
  std::optional<CachedResponse> get(const std::string& key) override;
  void put(const std::string& key, CachedResponse v, std::chrono::seconds ttl) override;
  Stats stats() const override;
  size_t bytes() const;
  size_t entries() const;

 private:
  struct Entry {
    std::string key;
    CachedResponse value;
    core::SteadyTime expires;
    size_t bytes;
  };
  void erase(std::list<Entry>::iterator it);

  size_t max_bytes_;
  const core::Clock& clock_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // front = most recently used
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;  // views into Entry::key
  size_t bytes_ = 0;
  Stats stats_;
};

// Shared by replicas: SET key value EX ttl. Values over max_value_bytes are not stored. Redis
// being unreachable is a miss (bounded by the client's deadlines), counted in stats().errors.
class RedisResponseCache final : public ResponseCache {
 public:
  RedisResponseCache(std::shared_ptr<RedisClient> redis, size_t max_value_bytes = 1 << 20,
                     std::string key_prefix = "gw:cache:");
  std::optional<CachedResponse> get(const std::string& key) override;
  void put(const std::string& key, CachedResponse v, std::chrono::seconds ttl) override;
  Stats stats() const override;

 private:
  std::shared_ptr<RedisClient> redis_;
  size_t max_value_bytes_;
  std::string prefix_;
  mutable std::mutex mu_;
  Stats stats_;
};

// SHA-256 hex of tenant, a NUL separator, and the canonical request JSON.
std::string cache_key(std::string_view tenant, std::string_view canonical_request_json);

// temperature explicitly 0, or opted in by header.
bool cacheable(const core::ChatRequest& r, bool opted_in_by_header);

// Versioned binary encoding used for Redis values; decode returns nullopt on anything malformed.
std::string encode_cached(const CachedResponse& v);
std::optional<CachedResponse> decode_cached(std::string_view bytes);

}  // namespace gateway
