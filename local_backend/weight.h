#pragma once
// A stack of weight matrices as the forward pass multiplies them: the file's rows (mmap views), and
// where this CPU has matrix kernels for the type, a repacked copy of 16-row groups (quants_repack.h)
// that the model owns for its lifetime.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "local_backend/quants.h"
#include "local_backend/quants_repack.h"

namespace local_backend {

// n_mat matrices of [rows][cols] (ggml ne = [cols, rows, n_mat]).
struct Weight {
  const uint8_t* data = nullptr;
  TensorType type = TensorType::f32;
  int64_t cols = 0, rows = 0, n_mat = 1;
  size_t row_bytes = 0;
  ActFormat act = ActFormat::f32;  // the activation this weight's kernels multiply
  // Repacked copy, or nullptr: matrix m's group g (rows 16g..16g+15) at packed + (m * groups + g) * group_bytes.
  const uint8_t* packed = nullptr;
  size_t group_bytes = 0;
  int64_t groups = 0;
  GemmGroupFn gemm = nullptr;

  const uint8_t* row(int64_t mat, int64_t r) const {
    return data + (static_cast<size_t>(mat) * static_cast<size_t>(rows) + static_cast<size_t>(r)) * row_bytes;
  }
  const uint8_t* group(int64_t mat, int64_t g) const {
    return packed + (static_cast<size_t>(mat) * static_cast<size_t>(groups) + static_cast<size_t>(g)) * group_bytes;
  }
  explicit operator bool() const { return data != nullptr; }
};

// Owns the repacked copies of a model's weights (anonymous memory, huge pages where the kernel
// gives them).
class PackedWeights {
 public:
  PackedWeights() = default;
  PackedWeights(const PackedWeights&) = delete;
  PackedWeights& operator=(const PackedWeights&) = delete;
  ~PackedWeights();

  // Repacks w when this CPU has matrix kernels for its type (pack_kernels, consulted now: the choice
  // holds for the model's lifetime) and sets its packed fields; otherwise leaves it multiplied row
  // by row. Unless keep_rows (w's rows are also read one by one: tied embeddings), the file's bytes
  // of w are given back to the OS afterwards, so the copy costs no memory; they read as zeros from
  // then on and must not be used. Returns false only when memory for the copy cannot be had (w is
  // then left as it was).
  bool pack(Weight& w, bool keep_rows = false);
  size_t bytes() const { return bytes_; }

 private:
  struct Region {
    void* p;
    size_t n;
  };
  std::vector<Region> regions_;
  size_t bytes_ = 0;
};

}  // namespace local_backend
