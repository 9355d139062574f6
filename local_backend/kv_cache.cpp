#include "local_backend/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "local_backend/quants.h"

namespace local_backend {

const char* kv_type_name(KvType t) {
  switch (t) {
    case KvType::f32: return "f32";
    case KvType::f16: return "f16";
    case KvType::q8_0: return "q8_0";
  }
  return "?";
}

std::optional<KvType> parse_kv_type(std::string_view s) {
  for (KvType t : {KvType::f32, KvType::f16, KvType::q8_0})
    if (s == kv_type_name(t)) return t;
  return std::nullopt;
}

TensorType kv_tensor_type(KvType t) {
  switch (t) {
    case KvType::f32: return TensorType::f32;
    case KvType::f16: return TensorType::f16;
    case KvType::q8_0: return TensorType::q8_0;
  }
  return TensorType::f32;
}

bool kv_type_fits(KvType t, const HParams& hp) {
  return hp.head_dim % type_traits(kv_tensor_type(t)).block_size == 0;
}

size_t kv_bytes_per_token(const HParams& hp, KvType t) {
  return 2 * static_cast<size_t>(hp.n_layer) * row_size(kv_tensor_type(t), static_cast<int64_t>(hp.n_head_kv) * hp.head_dim);
}

KvCache::KvCache(const HParams& hp, int max_positions, KvType type)
    : max_positions_(max_positions),
      type_(type),
      kv_dim_(static_cast<int64_t>(hp.n_head_kv) * hp.head_dim),
      row_bytes_(row_size(kv_tensor_type(type), kv_dim_)),
      head_bytes_(row_size(kv_tensor_type(type), hp.head_dim)),
      k_(static_cast<size_t>(hp.n_layer)),
      v_(static_cast<size_t>(hp.n_layer)) {}

bool KvCache::reserve(int n) {
  if (n > max_positions_) return false;
  if (n <= capacity_) return true;
  const int cap = std::min(max_positions_, std::max(n, std::max(64, capacity_ * 2)));
  for (auto& k : k_) k.resize(static_cast<size_t>(cap) * row_bytes_);
  for (auto& v : v_) v.resize(static_cast<size_t>(cap) * row_bytes_);
  capacity_ = cap;
  return true;
}

void KvCache::store(int layer, int pos, const float* k, const float* v) {
  const TensorType t = kv_tensor_type(type_);
  uint8_t* kd = k_[static_cast<size_t>(layer)].data() + static_cast<size_t>(pos) * row_bytes_;
  uint8_t* vd = v_[static_cast<size_t>(layer)].data() + static_cast<size_t>(pos) * row_bytes_;
  quantize_row(t, k, kd, kv_dim_);
  quantize_row(t, v, vd, kv_dim_);
}

bool KvCache::copy_prefix(const KvCache& from, int n) {
  if (from.type_ != type_ || from.row_bytes_ != row_bytes_ || from.k_.size() != k_.size() || n > from.capacity_ ||
      !reserve(n)) {
    return false;
  }
  const size_t bytes = static_cast<size_t>(n) * row_bytes_;
  for (size_t l = 0; l < k_.size(); ++l) {
    std::memcpy(k_[l].data(), from.k_[l].data(), bytes);
    std::memcpy(v_[l].data(), from.v_[l].data(), bytes);
  }
  return true;
}

size_t KvCache::bytes() const { return 2 * k_.size() * static_cast<size_t>(capacity_) * row_bytes_; }

}  // namespace local_backend
