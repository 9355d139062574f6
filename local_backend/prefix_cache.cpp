#include "local_backend/prefix_cache.h"

#include <algorithm>

namespace local_backend {
namespace {

uint64_t mix(uint64_t h, uint64_t v) {  // splitmix64 finaliser over the running hash
  uint64_t z = h ^ (v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2));
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

std::vector<uint64_t> PrefixCache::block_hashes(std::span<const int32_t> tokens) {
  std::vector<uint64_t> out;
  out.reserve(tokens.size() / kBlock);
  uint64_t h = 0x5EED;
  for (size_t b = 0; (b + 1) * kBlock <= tokens.size(); ++b) {
    for (size_t i = b * kBlock; i < (b + 1) * kBlock; ++i) h = mix(h, static_cast<uint32_t>(tokens[i]));
    out.push_back(h);
  }
  return out;
}

// Tokens shared by the entry and `tokens`: whole blocks by hash, confirmed exactly, then the
// tokens after them one by one.
size_t PrefixCache::common_prefix(const Entry& e, std::span<const int32_t> tokens, std::span<const uint64_t> hashes) {
  const size_t nb = std::min(e.block_hashes.size(), hashes.size());
  size_t blocks = 0;
  while (blocks < nb && e.block_hashes[blocks] == hashes[blocks]) ++blocks;
  const size_t verified = blocks * kBlock;
  if (!std::equal(tokens.begin(), tokens.begin() + static_cast<ptrdiff_t>(verified), e.tokens.begin())) return 0;
  size_t n = verified;
  const size_t limit = std::min(e.tokens.size(), tokens.size());
  while (n < limit && e.tokens[n] == tokens[n]) ++n;
  return n;
}

int PrefixCache::reuse(std::span<const int32_t> prompt, KvCache* into) {
  if (!enabled() || prompt.size() < 2) return 0;
  ++stats_.lookups;
  const std::vector<uint64_t> hashes = block_hashes(prompt);
  auto best = lru_.end();
  size_t best_n = 0;
  for (auto it = lru_.begin(); it != lru_.end(); ++it) {
    const size_t n = common_prefix(*it, prompt, hashes);
    if (n > best_n) best_n = n, best = it;
  }
  best_n = std::min(best_n, prompt.size() - 1);
  if (best_n < static_cast<size_t>(kBlock)) return 0;
  if (!into->copy_prefix(*best->cache, static_cast<int>(best_n))) return 0;
  lru_.splice(lru_.begin(), lru_, best);
  ++stats_.hits;
  stats_.tokens_reused += best_n;
  return static_cast<int>(best_n);
}

void PrefixCache::insert(std::vector<int32_t> tokens, std::unique_ptr<KvCache> cache) {
  if (!enabled() || !cache || tokens.size() < static_cast<size_t>(kBlock)) return;
  const size_t bytes = cache->bytes();
  if (bytes > max_bytes_) return;
  Entry fresh{std::move(tokens), {}, std::move(cache)};
  fresh.block_hashes = block_hashes(fresh.tokens);
  for (auto it = lru_.begin(); it != lru_.end();) {
    const size_t n = common_prefix(*it, fresh.tokens, fresh.block_hashes);
    if (n == fresh.tokens.size()) {  // already covered by a longer (or equal) entry
      lru_.splice(lru_.begin(), lru_, it);
      return;
    }
    auto next = std::next(it);
    if (n == it->tokens.size()) erase(it);  // the new entry extends it
    it = next;
  }
  evict_until_fits(bytes);
  lru_.push_front(std::move(fresh));
  stats_.bytes += bytes;
  stats_.entries = lru_.size();
}

void PrefixCache::evict_until_fits(size_t incoming) {
  while (!lru_.empty() && stats_.bytes + incoming > max_bytes_) {
    erase(std::prev(lru_.end()));
    ++stats_.evictions;
  }
}

void PrefixCache::erase(List::iterator it) {
  stats_.bytes -= it->cache->bytes();
  lru_.erase(it);
  stats_.entries = lru_.size();
}

void PrefixCache::clear() {
  lru_.clear();
  stats_.bytes = 0;
  stats_.entries = 0;
}

}  // namespace local_backend
