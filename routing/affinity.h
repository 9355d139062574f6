#pragma once
// Prompt-cache affinity: which deployment served a prompt prefix recently. Bounded (LRU per
// shard) and sharded, so concurrent decisions rarely meet on the same small mutex.
#include <array>
#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "core/clock.h"

namespace routing {

class AffinityMap {
 public:
  AffinityMap(size_t capacity, std::chrono::milliseconds ttl);

  // The deployment key that served `prefix` within the TTL, if any.
  std::optional<uint64_t> get(uint64_t prefix, core::SteadyTime now) const;
  void put(uint64_t prefix, uint64_t deployment_key, core::SteadyTime now);
  size_t size() const;

 private:
  static constexpr size_t kShards = 16;
  struct Entry {
    uint64_t prefix;
    uint64_t deployment;
    core::SteadyTime at;
  };
  struct Shard {
    mutable std::mutex mu;
    std::list<Entry> lru;  // front = most recent
    std::unordered_map<uint64_t, std::list<Entry>::iterator> index;
  };
  size_t per_shard_;
  std::chrono::milliseconds ttl_;
  std::array<Shard, kShards> shards_;
};

}  // namespace routing
