#include "routing/affinity.h"

#include <algorithm>

namespace routing {

AffinityMap::AffinityMap(size_t capacity, std::chrono::milliseconds ttl)
    : per_shard_(std::max<size_t>(1, capacity / kShards)), ttl_(ttl) {}

std::optional<uint64_t> AffinityMap::get(uint64_t prefix, core::SteadyTime now) const {
  const Shard& s = shards_[(prefix * 0x9E3779B97F4A7C15ull) >> 60];
  std::lock_guard lock(s.mu);
  auto it = s.index.find(prefix);
  if (it == s.index.end() || now - it->second->at > ttl_) return std::nullopt;
  return it->second->deployment;
}

void AffinityMap::put(uint64_t prefix, uint64_t deployment_key, core::SteadyTime now) {
  Shard& s = shards_[(prefix * 0x9E3779B97F4A7C15ull) >> 60];
  std::lock_guard lock(s.mu);
  auto it = s.index.find(prefix);
  if (it != s.index.end()) {
    it->second->deployment = deployment_key;
    it->second->at = now;
    s.lru.splice(s.lru.begin(), s.lru, it->second);
    return;
  }
  s.lru.push_front({prefix, deployment_key, now});
  s.index.emplace(prefix, s.lru.begin());
  while (s.lru.size() > per_shard_) {
    s.index.erase(s.lru.back().prefix);
    s.lru.pop_back();
  }
}

size_t AffinityMap::size() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.lru.size();
  }
  return n;
}

}  // namespace routing
