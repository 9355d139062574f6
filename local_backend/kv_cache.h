#pragma once
// Keys and values of one sequence, [n_layer][pos][n_head_kv * head_dim], stored as F32, F16 or
// Q8_0 (local.kv_type). Rows are converted when written; attention reads them through the
// dot and axpy kernels of quants.h, so no row is ever expanded back to F32 in memory.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "local_backend/arch.h"
#include "local_backend/tensor_types.h"

namespace local_backend {

enum class KvType { f32, f16, q8_0 };

const char* kv_type_name(KvType t);
std::optional<KvType> parse_kv_type(std::string_view s);  // "f32" | "f16" | "q8_0"
TensorType kv_tensor_type(KvType t);
// Whether the model's head size suits the type (Q8_0 needs head_dim to be a multiple of 32).
bool kv_type_fits(KvType t, const HParams& hp);
// K and V bytes of one position over all layers.
size_t kv_bytes_per_token(const HParams& hp, KvType t);

class KvCache {
 public:
  KvCache(const HParams& hp, int max_positions, KvType type);
  int max_positions() const { return max_positions_; }
  KvType type() const { return type_; }
  // Makes room for positions [0, n); false if n exceeds the bound.
  bool reserve(int n);
  // Converts and stores the K and V rows (kv_dim floats each) of one position.
  void store(int layer, int pos, const float* k, const float* v);
  const uint8_t* k(int layer, int pos) const { return k_[layer].data() + static_cast<size_t>(pos) * row_bytes_; }
  const uint8_t* v(int layer, int pos) const { return v_[layer].data() + static_cast<size_t>(pos) * row_bytes_; }
  // Byte offset of kv head h within a row.
  size_t head_offset(int64_t h) const { return static_cast<size_t>(h) * head_bytes_; }
  // Copies positions [0, n) of every layer from another cache of the same shape and type.
  bool copy_prefix(const KvCache& from, int n);
  size_t bytes() const;

 private:
  int max_positions_;
  int capacity_ = 0;
  KvType type_;
  int64_t kv_dim_;
  size_t row_bytes_, head_bytes_;
  std::vector<std::vector<uint8_t>> k_, v_;
};

}  // namespace local_backend
