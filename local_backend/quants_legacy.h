#pragma once
// The legacy 32-element block types Q4_0, Q4_1, Q5_0, Q5_1 (byte-exact GGUF layouts):
// dequantisation, round-to-nearest quantisers, and dot kernels. llama-quantize writes them for
// tensors whose rows are not a multiple of 256 (its K-quant fallback: Q4_K -> Q5_0,
// Q5_K -> Q5_1), e.g. Qwen1.5-MoE's expert FFN of 1408.
//
// In every block, quant j (0..31) takes the low nibble of qs[j] for j < 16 and the high nibble
// of qs[j - 16] for j >= 16; Q5 types add bit j of qh (read as a little-endian uint32) as the
// fifth bit. Value j: _0 types d * (q - 8) (Q4) or d * (q - 16) (Q5); _1 types d * q + m.
//
// Activation: Q8_0, for all four. llama.cpp pairs the _1 types with Q8_1 (Q8_0 plus
// d * sum(qs) stored as fp16); here the kernels sum the Q8_0 quants of each block themselves, in
// integers, so one prepared activation serves Q8_0 and all legacy weights alike and the min term
// is exact (llama.cpp's fp16 block sum is rounded).
#include <cstdint>

#include "local_backend/quants.h"

namespace local_backend {

inline constexpr int kQK4 = 32;  // elements per legacy block

struct BlockQ4_0 {
  uint16_t d;  // fp16 scale
  uint8_t qs[kQK4 / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ4_1 {
  uint16_t d;  // fp16 scale
  uint16_t m;  // fp16 min (added)
  uint8_t qs[kQK4 / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);

struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];  // fifth bits, bit j of the little-endian uint32 for quant j
  uint8_t qs[kQK4 / 2];
};
static_assert(sizeof(BlockQ5_0) == 22);

struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK4 / 2];
};
static_assert(sizeof(BlockQ5_1) == 24);

inline bool is_legacy_quant(TensorType t) {
  return t == TensorType::q4_0 || t == TensorType::q4_1 || t == TensorType::q5_0 || t == TensorType::q5_1;
}

// n a multiple of 32; t one of the four legacy types (false otherwise).
bool legacy_dequantize_row(TensorType t, const void* x, float* y, int64_t n);
bool legacy_quantize_row(TensorType t, const float* x, void* y, int64_t n);

// Kernels against a Q8_0 activation; nullptr for other types (avx2 also without AVX2+FMA+F16C).
VecDotFn legacy_dot_scalar(TensorType t);
VecDotFn legacy_dot_avx2(TensorType t);
// Four activation rows per weight-row load, bit-identical to four legacy_dot_avx2 calls.
VecDot4Fn legacy_dot4_avx2(TensorType t);

}  // namespace local_backend
