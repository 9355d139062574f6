#pragma once
// Weights repacked at load for the AVX-512 VNNI matrix kernels: 16 rows are interleaved so that one
// 512-bit vector holds four consecutive quants of each of the 16 rows, and one `vpdpbusd` with a
// broadcast group of four activation quants advances all 16 row sums at once. The 16 int32 lanes are
// 16 rows, so a tile of tokens needs no horizontal sums, and each weight vector is loaded once per
// tile of up to eight tokens.
//
// Numerics: every result equals the scalar kernel's (vec_dot_scalar) for that row and activation,
// bit for bit: the integer sums are exact and the float steps are the scalar kernel's, in its order,
// lane by lane (this file is compiled without floating-point contraction). So prefill (many tokens
// per tile) and decode (one) compute every token alike, which the prefix cache's reuse relies on.
//
// Layout: a matrix of `rows` rows is stored as ceil(rows / 16) groups of `group_bytes(cols)` bytes,
// 64-byte aligned; the rows past `rows` in the last group are zero weights (their outputs are
// dropped by the caller).
#include <cstddef>
#include <cstdint>

#include "local_backend/quants.h"

namespace local_backend {

inline constexpr int kPackRows = 16;
// Most tokens one kernel call multiplies (accumulators held in registers).
inline constexpr int kPackMaxTokens = 8;

// Q8_0 activation for repacked Q8_0 weights: the scale already in f32, and -128 x the block's quant
// sum, which cancels the +128 bias of the weights (stored as unsigned bytes for vpdpbusd).
struct BlockQ8_0Sum {
  float d;
  int32_t neg128_sum;
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0Sum) == 40);
void quantize_row_q8_0_sum(const float* x, BlockQ8_0Sum* y, int64_t n);

// Packs the 16 rows of one group (rows[k] points at a row of `cols` elements in the file's layout,
// nullptr for a padding row) into dst (group_bytes(cols) bytes).
using PackGroupFn = void (*)(const uint8_t* const rows[kPackRows], int64_t cols, uint8_t* dst);
// out[t][k] = row k of the group times activation act[t], for t < n_tok (1..kPackMaxTokens).
using GemmGroupFn = void (*)(int64_t cols, const uint8_t* group, int n_tok, const void* const act[],
                             float (*out)[kPackRows]);

struct PackKernels {
  size_t (*group_bytes)(int64_t cols) = nullptr;
  PackGroupFn pack = nullptr;
  GemmGroupFn gemm = nullptr;
  ActFormat act = ActFormat::f32;  // the activation the gemm expects
  explicit operator bool() const { return gemm != nullptr; }
};

// The repacked kernels for a weight type on this CPU (empty when the CPU lacks AVX-512
// F/BW/VL/VNNI, for types without them, or when disabled by disable_avx512_kernels /
// force_scalar_kernels at the time of the call: the weights are then not repacked).
PackKernels pack_kernels(TensorType weight_type);
// The same regardless of those switches (tests); empty without the CPU features.
PackKernels pack_kernels_any(TensorType weight_type);
// Turns repacking off for models loaded afterwards (before/after benchmarks): their weights stay in
// the file's layout and the row kernels multiply them.
void disable_weight_repack(bool on);

// Per type (internal to the dispatch above; each requires the CPU features).
PackKernels pack_kernels_q8_0();
PackKernels pack_kernels_q4_k();  // quants_repack_k.cpp
PackKernels pack_kernels_q5_k();  // quants_repack_k.cpp
PackKernels pack_kernels_q6_k();  // quants_repack_k.cpp

}  // namespace local_backend
