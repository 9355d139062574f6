#pragma once
// Prompt (prefix) cache: the KV of recently finished sequences, kept so a new prompt that
// starts with the same tokens (a system prompt, earlier agent turns) copies those rows instead
// of recomputing them. Bounded in bytes, least recently used entries evicted first.
//
// Entries are found by chained hashes of kBlock-token blocks, confirmed token by token (a hash
// collision can never reuse wrong rows), then extended token by token into the next block.
// A cache belongs to one Engine, which owns one model file and one KV type, so rows are never
// reused across models or element types. Not thread-safe: the engine's scheduler thread owns it.
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <vector>

#include "local_backend/kv_cache.h"

namespace local_backend {

struct PrefixCacheStats {
  uint64_t lookups = 0;        // prompts looked up
  uint64_t hits = 0;           // prompts that reused rows
  uint64_t tokens_reused = 0;  // prompt tokens whose KV was copied instead of computed
  uint64_t evictions = 0;
  size_t entries = 0;
  size_t bytes = 0;            // KV bytes held
};

class PrefixCache {
 public:
  static constexpr int kBlock = 64;  // a match must cover at least one whole block

  explicit PrefixCache(size_t max_bytes) : max_bytes_(max_bytes) {}
  bool enabled() const { return max_bytes_ > 0; }

  // Copies the KV rows of the longest cached prefix of `prompt` into `into` (at most
  // prompt.size() - 1 tokens, so the last prompt token is always computed and yields logits).
  // Returns the number of positions copied (0 on a miss).
  int reuse(std::span<const int32_t> prompt, KvCache* into);
  // Keeps `cache`, whose first tokens.size() positions hold the KV of `tokens`. An entry that
  // is a prefix of it is replaced; if it is itself a prefix of an entry, that entry is kept
  // instead. Entries larger than the bound are not kept.
  void insert(std::vector<int32_t> tokens, std::unique_ptr<KvCache> cache);
  void clear();
  const PrefixCacheStats& stats() const { return stats_; }

 private:
  struct Entry {
    std::vector<int32_t> tokens;
    std::vector<uint64_t> block_hashes;  // chained: block i's hash covers tokens [0, (i+1)*kBlock)
    std::unique_ptr<KvCache> cache;
  };
  using List = std::list<Entry>;  // most recently used first

  static std::vector<uint64_t> block_hashes(std::span<const int32_t> tokens);
  static size_t common_prefix(const Entry& e, std::span<const int32_t> tokens, std::span<const uint64_t> hashes);
  void evict_until_fits(size_t incoming);
  void erase(List::iterator it);

  size_t max_bytes_;
  List lru_;
  PrefixCacheStats stats_;
};

}  // namespace local_backend
