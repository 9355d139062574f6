#pragma once
// Quantized block layouts of the GGUF ecosystem (byte-exact: Q8_0, Q4_K, Q5_K, Q6_K, Q8_K), dequantisation, reference
// quantisers (used by the test-model writer and for activations), and dot-product kernels.
//
// Activations: like llama.cpp's CPU backend, the activation vector multiplied with a
// quantized weight is itself quantised first -- to Q8_0 (blocks of 32) for Q8_0 weights and
// to Q8_K (blocks of 256, f32 scale, 16-element sums) for Q4_K/Q5_K/Q6_K weights -- so the inner
// products are integer. F32/F16/BF16 weights are multiplied with the F32 activation as is.
// The legacy Q4_0/Q4_1/Q5_0/Q5_1 weights (quants_legacy.h) meet a Q8_0 activation; the functions
// below dispatch to them like to the other types.
#include <cstddef>
#include <cstdint>

#include "local_backend/tensor_types.h"

namespace local_backend {

inline constexpr int kQK8_0 = 32;
inline constexpr int kQK_K = 256;
inline constexpr int kKScaleSize = 12;

struct BlockQ8_0 {
  uint16_t d;  // fp16 scale
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ4_K {
  uint16_t d;     // fp16 super-block scale for scales
  uint16_t dmin;  // fp16 super-block scale for mins
  uint8_t scales[kKScaleSize];  // 8 x (6-bit scale, 6-bit min), packed
  uint8_t qs[kQK_K / 2];        // 4-bit quants
};
static_assert(sizeof(BlockQ4_K) == 144);

// Q5_K: Q4_K's scales and mins with a fifth bit per quant. Value e of sub-block j:
// d*sc[j]*q - dmin*m[j], q = low nibble (as in Q4_K) | bit j of qh[e % 32] << 4.
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qh[kQK_K / 8];  // fifth bits: bit j of byte l belongs to sub-block j, element l
  uint8_t qs[kQK_K / 2];  // low 4 bits, laid out as in Q4_K
};
static_assert(sizeof(BlockQ5_K) == 176);

struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];      // low 4 bits
  uint8_t qh[kQK_K / 4];      // high 2 bits
  int8_t scales[kQK_K / 16];  // 8-bit scales of 16-element groups
  uint16_t d;                 // fp16 super-block scale
};
static_assert(sizeof(BlockQ6_K) == 210);

struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];  // sums of each group of 16 quants
};
static_assert(sizeof(BlockQ8_K) == 292);

// Unpacks the 6-bit scale and min of sub-block j (0..7) of a Q4_K block.
inline void q4k_scale_min(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
  }
}

// Dequantises n elements (a multiple of the block size) of type t into y.
// Returns false for a type this engine does not support.
bool dequantize_row(TensorType t, const void* x, float* y, int64_t n);

// Reference quantisers (n a multiple of the block size).
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n);
void quantize_row_q8_k(const float* x, BlockQ8_K* y, int64_t n);
void quantize_row_q4_k(const float* x, BlockQ4_K* y, int64_t n);
void quantize_row_q5_k(const float* x, BlockQ5_K* y, int64_t n);
void quantize_row_q6_k(const float* x, BlockQ6_K* y, int64_t n);
// Quantises/converts a float row into type t (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K,
// Q5_K, Q6_K).
bool quantize_row(TensorType t, const float* x, void* y, int64_t n);

// ---- dot products of one weight row with a prepared activation

// q8_0_sum: Q8_0 with an f32 scale and the quant sum, for repacked Q8_0 weights (quants_repack.h).
enum class ActFormat { f32, q8_0, q8_k, q8_0_sum };
ActFormat act_format_for(TensorType weight_type);
// Bytes of one prepared activation row of n elements for a weight type.
size_t act_row_bytes(TensorType weight_type, int64_t n);
// Prepares (quantises) an activation row for multiplication with weights of weight_type.
void prepare_activation(TensorType weight_type, const float* x, int64_t n, void* out);
// The same by activation format.
size_t act_format_row_bytes(ActFormat f, int64_t n);
void prepare_activation_as(ActFormat f, const float* x, int64_t n, void* out);

using VecDotFn = float (*)(int64_t n, const void* w_row, const void* act);

// One weight row times four prepared activation rows (prefill): the weight bytes are loaded and
// unpacked once. Results are bit-identical to four VecDotFn calls. nullptr when there is no
// such kernel for the type/CPU (callers fall back to VecDotFn).
using VecDot4Fn = void (*)(int64_t n, const void* w_row, const void* const act[4], float out[4]);
VecDot4Fn vec_dot4_fn(TensorType weight_type);

// One weight row times eight prepared activation rows (prefill) with AVX-512 (F, BW, VL, VNNI):
// Q8_0, Q4_K, Q5_K, Q6_K, F32, F16 and BF16 (quants_float.h). Results are bit-identical to eight
// calls of the AVX2 VecDotFn (same integer lanes, same float summation order), so logits do not
// depend on which path ran.
// nullptr when the CPU lacks the features, for other types, or when disabled.
using VecDot8Fn = void (*)(int64_t n, const void* w_row, const void* const act[8], float out[8]);
VecDot8Fn vec_dot8_fn(TensorType weight_type);
// The AVX-512 kernel regardless of disable_avx512_kernels (tests); nullptr without the CPU features.
VecDot8Fn vec_dot8_avx512(TensorType weight_type);
bool cpu_has_avx512_vnni();
// Turns the AVX-512 kernels (eight-row and single-row) off: the AVX2 ones are used, for
// before/after benchmarks.
void disable_avx512_kernels(bool on);
// False while force_scalar_kernels or disable_avx512_kernels is on.
bool avx512_kernels_enabled();

// Kernel for the weight type chosen at run time: AVX-512 for Q4_K/Q6_K/F32/F16/BF16 when the CPU
// has F, BW, VL and VNNI (bit-identical to AVX2), else AVX2+FMA+F16C when present, else scalar.
VecDotFn vec_dot_fn(TensorType weight_type);
// Explicit variants, for tests and benchmarks; avx2/avx512 return nullptr when unavailable
// (avx512 also for types without a single-row AVX-512 kernel).
VecDotFn vec_dot_scalar(TensorType weight_type);
VecDotFn vec_dot_avx2(TensorType weight_type);
VecDotFn vec_dot_avx512(TensorType weight_type);
bool cpu_has_avx2();
// y += a * x over n floats (attention's weighted sum of values), AVX2 when available.
void axpy_f32(int64_t n, float a, const float* x, float* y);
// y += a * x for a row x of type F32, F16 or Q8_0 (n a multiple of the block size): the values of
// a KV cache that stores them in that type.
void axpy_row(TensorType t, int64_t n, float a, const void* x, float* y);
// Forces the scalar kernels (tests/benchmarks); affects later vec_dot_fn calls.
void force_scalar_kernels(bool on);

}  // namespace local_backend
