#include "gateway/state/response_cache.h"

#include <openssl/evp.h>

#include <cstring>

#include "gateway/state/redis_client.h"

namespace gateway {
namespace {

constexpr size_t kEntryOverhead = 128;  // list node, index slot, strings' headers: roughly
constexpr char kMagic[4] = {'G', 'W', 'C', '1'};

size_t footprint(const std::string& key, const CachedResponse& v) {
  size_t n = kEntryOverhead + key.size() + v.body.size() + v.deployment.size();
  for (const auto& c : v.chunks) n += c.size() + sizeof(std::string);
  return n;
}

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_str(std::string& out, std::string_view s) {
  put_u64(out, s.size());
  out.append(s);
}

struct Reader {
  std::string_view in;
  bool ok = true;
  uint64_t u64() {
    if (in.size() < 8) return ok = false, 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    in.remove_prefix(8);
    return v;
  }
  std::string str() {
    uint64_t n = u64();
    if (!ok || n > in.size()) return ok = false, std::string();
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
};

}  // namespace

std::string encode_cached(const CachedResponse& v) {
  std::string out(kMagic, 4);
  put_str(out, v.body);
  put_str(out, v.deployment);
  for (int64_t x : {v.usage.prompt_tokens, v.usage.cached_tokens, v.usage.cache_write_tokens,
                    v.usage.completion_tokens, v.usage.reasoning_tokens, static_cast<int64_t>(v.usage.present)})
    put_u64(out, static_cast<uint64_t>(x));
  put_u64(out, v.chunks.size());
  for (const auto& c : v.chunks) put_str(out, c);
  return out;
}

std::optional<CachedResponse> decode_cached(std::string_view bytes) {
  if (bytes.size() < 4 || std::memcmp(bytes.data(), kMagic, 4) != 0) return std::nullopt;
  Reader r{bytes.substr(4)};
  CachedResponse v;
  v.body = r.str();
  v.deployment = r.str();
  v.usage.prompt_tokens = static_cast<int64_t>(r.u64());
  v.usage.cached_tokens = static_cast<int64_t>(r.u64());
  v.usage.cache_write_tokens = static_cast<int64_t>(r.u64());
  v.usage.completion_tokens = static_cast<int64_t>(r.u64());
  v.usage.reasoning_tokens = static_cast<int64_t>(r.u64());
  v.usage.present = r.u64() != 0;
  uint64_t n = r.u64();
  if (!r.ok || n > r.in.size() / 8) return std::nullopt;  // each chunk needs at least its length
  v.chunks.reserve(n);
  for (uint64_t i = 0; i < n && r.ok; ++i) v.chunks.push_back(r.str());
  if (!r.ok || !r.in.empty()) return std::nullopt;
  return v;
}

std::string cache_key(std::string_view tenant, std::string_view canonical_request_json) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char h[32];
  unsigned int len = 0;
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, tenant.data(), tenant.size());
  EVP_DigestUpdate(ctx, "\0", 1);  // "ab"+"c" and "a"+"bc" must differ
  EVP_DigestUpdate(ctx, canonical_request_json.data(), canonical_request_json.size());
  EVP_DigestFinal_ex(ctx, h, &len);
  EVP_MD_CTX_free(ctx);
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char b : h) out += {digits[b >> 4], digits[b & 15]};
  return out;
}

bool cacheable(const core::ChatRequest& r, bool opted_in_by_header) {
  if (opted_in_by_header) return true;
  return r.temperature.has_value() && *r.temperature == 0.0;
}

// ---- MemoryResponseCache ----

MemoryResponseCache::MemoryResponseCache(size_t max_bytes, const core::Clock& clock)
    : max_bytes_(max_bytes), clock_(clock) {}

void MemoryResponseCache::erase(std::list<Entry>::iterator it) {
  index_.erase(std::string_view(it->key));
  bytes_ -= it->bytes;
  lru_.erase(it);
}

std::optional<CachedResponse> MemoryResponseCache::get(const std::string& key) {
  std::lock_guard lk(mu_);
  auto it = index_.find(std::string_view(key));
  if (it == index_.end()) {
    ++stats_.misses;
    return std::nullopt;
  }
  if (clock_.steady_now() >= it->second->expires) {
    erase(it->second);
    ++stats_.misses;
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  ++stats_.hits;
  return it->second->value;
}

void MemoryResponseCache::put(const std::string& key, CachedResponse v, std::chrono::seconds ttl) {
  size_t size = footprint(key, v);
  std::lock_guard lk(mu_);
  if (size > max_bytes_ / 4 || ttl.count() <= 0) {
    ++stats_.rejected;
    return;
  }
  if (auto it = index_.find(std::string_view(key)); it != index_.end()) erase(it->second);
  lru_.push_front(Entry{key, std::move(v), clock_.steady_now() + ttl, size});
  index_.emplace(std::string_view(lru_.front().key), lru_.begin());
  bytes_ += size;
  ++stats_.puts;
  while (bytes_ > max_bytes_ && !lru_.empty()) {
    erase(std::prev(lru_.end()));
    ++stats_.evictions;
  }
}

ResponseCache::Stats MemoryResponseCache::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

size_t MemoryResponseCache::bytes() const {
  std::lock_guard lk(mu_);
  return bytes_;
}

size_t MemoryResponseCache::entries() const {
  std::lock_guard lk(mu_);
  return lru_.size();
}

// ---- RedisResponseCache ----

RedisResponseCache::RedisResponseCache(std::shared_ptr<RedisClient> redis, size_t max_value_bytes,
                                       std::string key_prefix)
    : redis_(std::move(redis)), max_value_bytes_(max_value_bytes), prefix_(std::move(key_prefix)) {}

std::optional<CachedResponse> RedisResponseCache::get(const std::string& key) {
  auto r = redis_->command({"GET", prefix_ + key});
  std::lock_guard lk(mu_);
  if (!r.ok() || r->is_error()) {
    ++stats_.errors;
    ++stats_.misses;
    return std::nullopt;
  }
  if (r->type != RedisReply::Type::string) {
    ++stats_.misses;
    return std::nullopt;
  }
  auto v = decode_cached(r->str);
  if (!v) {
    ++stats_.errors;  // written by an incompatible version, or damaged: treat as a miss
    ++stats_.misses;
    return std::nullopt;
  }
  ++stats_.hits;
  return v;
}

void RedisResponseCache::put(const std::string& key, CachedResponse v, std::chrono::seconds ttl) {
  std::string bytes = encode_cached(v);
  if (bytes.size() > max_value_bytes_ || ttl.count() <= 0) {
    std::lock_guard lk(mu_);
    ++stats_.rejected;
    return;
  }
  auto r = redis_->command({"SET", prefix_ + key, std::move(bytes), "EX", std::to_string(ttl.count())});
  std::lock_guard lk(mu_);
  if (!r.ok() || r->is_error()) ++stats_.errors;
  else ++stats_.puts;
}

ResponseCache::Stats RedisResponseCache::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

}  // namespace gateway
