// Block layouts, dequantisation on hand-made blocks, quantiser round trips, and dot kernels.
#include "local_backend/quants.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

namespace local_backend {
namespace {

TEST(Fp16, KnownValues) {
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xC000);
  EXPECT_EQ(fp32_to_fp16(0.5f), 0x3800);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7BFF);
  EXPECT_EQ(fp32_to_fp16(1e6f), 0x7C00);  // overflow to +inf
  EXPECT_FLOAT_EQ(fp16_to_fp32(0x3C00), 1.0f);
  EXPECT_FLOAT_EQ(fp16_to_fp32(0x3555), 0.333251953125f);
  EXPECT_FLOAT_EQ(fp16_to_fp32(0x0001), 5.9604644775390625e-08f);  // smallest subnormal
  EXPECT_FLOAT_EQ(fp16_to_fp32(0xFBFF), -65504.0f);
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(-3.0f), 0xC040);
  EXPECT_FLOAT_EQ(bf16_to_fp32(0x3FC0), 1.5f);
  // bf16 rounds to nearest even: 1 + 2^-8 is a tie between 1 and 1 + 2^-7.
  EXPECT_EQ(fp32_to_bf16(1.00390625f), 0x3F80);
}

TEST(Dequant, Q8_0HandMadeBlock) {
  BlockQ8_0 b{};
  b.d = 0x3800;  // 0.5
  for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(j * 8 - 128);
  float y[32];
  ASSERT_TRUE(dequantize_row(TensorType::q8_0, &b, y, 32));
  EXPECT_FLOAT_EQ(y[0], -64.0f);
  EXPECT_FLOAT_EQ(y[16], 0.0f);
  EXPECT_FLOAT_EQ(y[31], 0.5f * 120);
}

TEST(Dequant, Q4_KHandMadeBlock) {
  // Layout per ggml: d, dmin (fp16), scales[12], qs[128]. Sub-block j (32 values) has a
  // 6-bit scale sc[j] and min m[j]: value = d*sc[j]*q - dmin*m[j]. Values 64c..64c+31 are the
  // low nibbles of qs[32c..32c+31], values 64c+32.. the high nibbles.
  const uint8_t sc[8] = {1, 2, 3, 63, 17, 33, 48, 62};
  const uint8_t m[8] = {0, 5, 63, 7, 40, 1, 32, 16};
  BlockQ4_K b{};
  b.d = 0x3C00;     // 1.0
  b.dmin = 0x3800;  // 0.5
  for (int j = 0; j < 4; ++j) {
    b.scales[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    b.scales[j + 4] = static_cast<uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
    b.scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
  }
  uint8_t q[256];
  for (int e = 0; e < 256; ++e) q[e] = static_cast<uint8_t>((e * 5 + 3) % 16);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) b.qs[32 * c + l] = static_cast<uint8_t>(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
  float y[256];
  ASSERT_TRUE(dequantize_row(TensorType::q4_k, &b, y, 256));
  for (int e = 0; e < 256; ++e) {
    const int j = e / 32;
    ASSERT_FLOAT_EQ(y[e], 1.0f * sc[j] * q[e] - 0.5f * m[j]) << e;
  }
}

TEST(Dequant, Q6_KHandMadeBlock) {
  // Layout per ggml: ql[128], qh[64], scales[16] (int8), d (fp16). Value e in 128-chunk c,
  // position p = e % 128, quarter k = p / 32, l = p % 32: low nibble from ql[64c + l + 32*(k&1)]
  // (upper nibble when k >= 2), 2 high bits from qh[32c + l] at bit 2k; value = d*sc[e/16]*(q-32).
  BlockQ6_K b{};
  b.d = 0x3400;  // 0.25
  for (int k = 0; k < 16; ++k) b.scales[k] = static_cast<int8_t>(k * 9 - 70);
  uint8_t q[256];
  for (int e = 0; e < 256; ++e) q[e] = static_cast<uint8_t>((e * 7 + 1) % 64);
  for (int e = 0; e < 256; ++e) {
    const int c = e / 128, p = e % 128, k = p / 32, l = p % 32;
    uint8_t& lo = b.ql[64 * c + l + 32 * (k & 1)];
    lo = static_cast<uint8_t>(lo | ((q[e] & 0xF) << (k >= 2 ? 4 : 0)));
    b.qh[32 * c + l] = static_cast<uint8_t>(b.qh[32 * c + l] | ((q[e] >> 4) << (2 * k)));
  }
  float y[256];
  ASSERT_TRUE(dequantize_row(TensorType::q6_k, &b, y, 256));
  for (int e = 0; e < 256; ++e) ASSERT_FLOAT_EQ(y[e], 0.25f * b.scales[e / 16] * (q[e] - 32)) << e;
}

TEST(Dequant, Q5_KHandMadeBlock) {
  // Layout per ggml: d, dmin (fp16), scales[12] (as Q4_K), qh[32], qs[128]. Value e of
  // sub-block j = e / 32: low nibble as in Q4_K, fifth bit = bit j of qh[e % 32];
  // value = d*sc[j]*q - dmin*m[j].
  const uint8_t sc[8] = {3, 9, 63, 1, 20, 45, 0, 31};
  const uint8_t m[8] = {7, 0, 12, 63, 33, 2, 50, 8};
  BlockQ5_K b{};
  b.d = 0x3800;     // 0.5
  b.dmin = 0x3400;  // 0.25
  for (int j = 0; j < 4; ++j) {
    b.scales[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    b.scales[j + 4] = static_cast<uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
    b.scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
  }
  uint8_t q[256];
  for (int e = 0; e < 256; ++e) q[e] = static_cast<uint8_t>((e * 11 + 5) % 32);
  for (int e = 0; e < 256; ++e) {
    const int j = e / 32, l = e % 32, c = j / 2;
    b.qs[32 * c + l] = static_cast<uint8_t>(b.qs[32 * c + l] | ((q[e] & 0xF) << (j % 2 ? 4 : 0)));
    b.qh[l] = static_cast<uint8_t>(b.qh[l] | ((q[e] >> 4) << j));
  }
  float y[256];
  ASSERT_TRUE(dequantize_row(TensorType::q5_k, &b, y, 256));
  for (int e = 0; e < 256; ++e) {
    const int j = e / 32;
    ASSERT_FLOAT_EQ(y[e], 0.5f * sc[j] * q[e] - 0.25f * m[j]) << e;
  }
}

TEST(Dequant, UnsupportedTypeIsRefused) {
  float y[256];
  uint8_t x[84] = {};  // one Q2_K block
  EXPECT_FALSE(dequantize_row(TensorType::q2_k, x, y, 256));
}

std::vector<float> random_vec(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

struct TypeCase {
  TensorType type;
  double max_rms_rel;  // quantise->dequantise RMS error relative to the data RMS
};

class QuantRoundTrip : public ::testing::TestWithParam<TypeCase> {};

TEST_P(QuantRoundTrip, ErrorWithinBound) {
  const auto c = GetParam();
  const int64_t n = 1024;
  auto x = random_vec(n, 7);
  std::vector<uint8_t> q(row_size(c.type, n));
  ASSERT_TRUE(quantize_row(c.type, x.data(), q.data(), n));
  std::vector<float> y(n);
  ASSERT_TRUE(dequantize_row(c.type, q.data(), y.data(), n));
  double err = 0, ref = 0;
  for (int64_t i = 0; i < n; ++i) {
    err += (x[i] - y[i]) * (x[i] - y[i]);
    ref += x[i] * x[i];
  }
  EXPECT_LE(std::sqrt(err / ref), c.max_rms_rel) << type_name(c.type);
}

INSTANTIATE_TEST_SUITE_P(Types, QuantRoundTrip,
                         ::testing::Values(TypeCase{TensorType::f32, 0.0}, TypeCase{TensorType::f16, 1e-3},
                                           TypeCase{TensorType::bf16, 4e-3}, TypeCase{TensorType::q8_0, 0.01},
                                           TypeCase{TensorType::q6_k, 0.04}, TypeCase{TensorType::q4_k, 0.15},
                                           TypeCase{TensorType::q5_k, 0.08}));

class DotKernel : public ::testing::TestWithParam<TensorType> {};

// Bound for a quantized dot: the activation is rounded to 8 bits per block (error at most
// half a step, step = block amax / 127), so |dot - dequant(w).x| <= sum_i |w_i| * amax_b(i) / 254
// plus float rounding. We allow twice that, plus 1e-4 relative to sum |w_i x_i|.
TEST_P(DotKernel, MatchesDequantiseThenF32) {
  const TensorType t = GetParam();
  const int64_t n = 2048;
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    auto w = random_vec(n, seed);
    auto x = random_vec(n, seed + 1000, seed % 3 == 0 ? 100.0f : 1.0f);
    std::vector<uint8_t> wq(row_size(t, n));
    ASSERT_TRUE(quantize_row(t, w.data(), wq.data(), n));
    std::vector<float> wd(n);
    ASSERT_TRUE(dequantize_row(t, wq.data(), wd.data(), n));
    double ref = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      ref += static_cast<double>(wd[i]) * x[i];
      mag += std::fabs(static_cast<double>(wd[i]) * x[i]);
    }
    const ActFormat af = act_format_for(t);
    const int blk = af == ActFormat::q8_0 ? 32 : af == ActFormat::q8_k ? 256 : 0;
    double bound = 1e-4 * mag;
    if (blk) {
      for (int64_t b = 0; b < n / blk; ++b) {
        float amax = 0;
        for (int i = 0; i < blk; ++i) amax = std::max(amax, std::fabs(x[b * blk + i]));
        for (int i = 0; i < blk; ++i) bound += 2.0 * std::fabs(wd[b * blk + i]) * amax / 254.0;
      }
    }
    std::vector<uint8_t> act(act_row_bytes(t, n));
    prepare_activation(t, x.data(), n, act.data());
    const float scalar = vec_dot_scalar(t)(n, wq.data(), act.data());
    EXPECT_NEAR(scalar, ref, bound) << type_name(t) << " seed " << seed;
    if (VecDotFn avx = vec_dot_avx2(t)) {
      const float simd = avx(n, wq.data(), act.data());
      // Same integer products; only float summation order differs.
      EXPECT_NEAR(simd, scalar, 1e-5 * mag + 1e-6) << type_name(t) << " seed " << seed;
      EXPECT_NEAR(simd, ref, bound) << type_name(t) << " seed " << seed;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, DotKernel,
                         ::testing::Values(TensorType::f32, TensorType::f16, TensorType::bf16,
                                           TensorType::q8_0, TensorType::q4_k, TensorType::q5_k, TensorType::q6_k,
                                           TensorType::q4_0, TensorType::q4_1, TensorType::q5_0, TensorType::q5_1),
                         [](const auto& info) { return std::string(type_name(info.param)); });

TEST(DotKernel, FourRowKernelsAreBitIdenticalToSingleRow) {
  for (TensorType t : {TensorType::q8_0, TensorType::q4_k, TensorType::q5_k, TensorType::q6_k, TensorType::q4_0,
                       TensorType::q4_1, TensorType::q5_0, TensorType::q5_1}) {
    VecDot4Fn f4 = vec_dot4_fn(t);
    if (!f4) GTEST_SKIP() << "no AVX2";
    const int64_t n = 1024;
    auto w = random_vec(n, 3);
    std::vector<uint8_t> wq(row_size(t, n));
    ASSERT_TRUE(quantize_row(t, w.data(), wq.data(), n));
    std::vector<std::vector<uint8_t>> acts;
    const void* a4[4];
    for (int r = 0; r < 4; ++r) {
      auto x = random_vec(n, 100 + r, r == 2 ? 50.0f : 1.0f);
      acts.emplace_back(act_row_bytes(t, n));
      prepare_activation(t, x.data(), n, acts.back().data());
    }
    for (int r = 0; r < 4; ++r) a4[r] = acts[static_cast<size_t>(r)].data();
    float out[4];
    f4(n, wq.data(), a4, out);
    for (int r = 0; r < 4; ++r) EXPECT_EQ(out[r], vec_dot_fn(t)(n, wq.data(), a4[r])) << type_name(t) << " row " << r;
  }
}

TEST(DotKernel, Q8_0HandlesMinus128Weights) {
  // Files from other quantisers may contain -128; the AVX2 sign trick must still be exact.
  BlockQ8_0 w{}, a{};
  w.d = a.d = 0x3C00;
  for (int j = 0; j < 32; ++j) {
    w.qs[j] = -128;
    a.qs[j] = static_cast<int8_t>(j % 2 ? 127 : -127);
  }
  a.qs[0] = 127;
  float s = vec_dot_scalar(TensorType::q8_0)(32, &w, &a);
  EXPECT_FLOAT_EQ(s, -128.0f * (127 * 17 - 127 * 15));
  if (auto f = vec_dot_avx2(TensorType::q8_0)) {
    EXPECT_FLOAT_EQ(f(32, &w, &a), s);
  }
}

// ---- AVX-512 eight-token kernels vs the scalar kernel

// Eight prepared activation rows of n elements; row 5 is all zeros (scale 0), row 2 is large.
// tol[r] (when given) is 1e-5 * sum |w_i x_i| + 1e-6 for the dequantised weights wd.
std::vector<std::vector<uint8_t>> eight_activations(TensorType t, int64_t n, uint32_t seed, const std::vector<float>& wd,
                                                    std::vector<double>* tol) {
  std::vector<std::vector<uint8_t>> acts;
  for (int r = 0; r < 8; ++r) {
    auto x = random_vec(n, seed * 16 + static_cast<uint32_t>(r), r == 2 ? 50.0f : 1.0f);
    if (r == 5) std::fill(x.begin(), x.end(), 0.0f);
    acts.emplace_back(act_row_bytes(t, n));
    prepare_activation(t, x.data(), n, acts.back().data());
    double mag = 0;
    for (size_t i = 0; i < x.size(); ++i) mag += std::fabs(static_cast<double>(wd[i]) * x[i]);
    tol->push_back(1e-5 * mag + 1e-6);
  }
  return acts;
}

// tol empty: bit-exact equality.
void expect_eight_agree(TensorType t, int64_t n, const uint8_t* w, const std::vector<std::vector<uint8_t>>& acts,
                        const std::vector<double>& tol, const char* what) {
  VecDot8Fn f8 = vec_dot8_avx512(t);
  const void* a8[8];
  for (int r = 0; r < 8; ++r) a8[r] = acts[static_cast<size_t>(r)].data();
  float out[8];
  f8(n, w, a8, out);
  for (int r = 0; r < 8; ++r) {
    const float want = vec_dot_scalar(t)(n, w, a8[r]);
    if (tol.empty()) {
      EXPECT_EQ(out[r], want) << type_name(t) << " n=" << n << " row " << r << " " << what;
    } else {
      EXPECT_NEAR(out[r], want, tol[static_cast<size_t>(r)]) << type_name(t) << " n=" << n << " row " << r << " " << what;
    }
    // Same integer lanes and float summation order as the AVX2 single-row kernel; so is the
    // AVX-512 single-row (decode) kernel.
    EXPECT_EQ(out[r], vec_dot_avx2(t)(n, w, a8[r])) << type_name(t) << " n=" << n << " row " << r << " " << what;
    if (VecDotFn f1 = vec_dot_avx512(t)) {
      EXPECT_EQ(f1(n, w, a8[r]), out[r]) << type_name(t) << " n=" << n << " row " << r << " " << what;
    }
  }
}

const std::vector<int64_t> kFloatRowLengths = {1, 7, 8, 15, 16, 17, 24, 31, 32, 33, 40, 47, 100, 2047, 2048, 2056};

// Against the scalar kernel, a float tolerance (as for the AVX2 kernels: the integer sums are
// equal, block terms are summed in another order, so 1e-5 of sum |w_i x_i|); against the AVX2
// single-row kernel, bit for bit.
TEST(DotKernel, Avx512EightRowKernelsMatchScalarOnRandomRows) {
  if (!vec_dot8_avx512(TensorType::q8_0)) GTEST_SKIP() << "no AVX-512 VNNI";
  const std::pair<TensorType, std::vector<int64_t>> cases[] = {
      {TensorType::q8_0, {32, 64, 96, 1408, 2048, 2080, 5632}},  // one block, a pair, an odd count, model widths
      {TensorType::q4_k, {256, 512, 768, 2048, 2304}},
      {TensorType::q5_k, {256, 512, 768, 2048, 2304}},
      {TensorType::q6_k, {256, 512, 768, 2048, 2304}},
      // F32/F16/BF16 rows may have any length: tails of 1..15 after the 16-wide steps (and for
      // F32 the 8-wide step after the 32-wide ones), rows shorter than one step.
      {TensorType::f32, kFloatRowLengths},
      {TensorType::f16, kFloatRowLengths},
      {TensorType::bf16, kFloatRowLengths}};
  for (const auto& [t, sizes] : cases) {
    for (int64_t n : sizes) {
      for (uint32_t seed = 1; seed <= 4; ++seed) {
        auto w = random_vec(n, seed + 77, seed == 3 ? 20.0f : 1.0f);
        std::vector<uint8_t> wq(row_size(t, n));
        ASSERT_TRUE(quantize_row(t, w.data(), wq.data(), n));
        std::vector<float> wd(static_cast<size_t>(n));
        ASSERT_TRUE(dequantize_row(t, wq.data(), wd.data(), n));
        std::vector<double> tol;
        const auto acts = eight_activations(t, n, seed, wd, &tol);
        expect_eight_agree(t, n, wq.data(), acts, tol, "random");
      }
    }
  }
}

void fill_bytes(uint8_t* p, size_t n, std::mt19937& rng) {
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(rng() & 0xFF);
}

// Eight Q8_K activation rows of nb blocks: scale 1.0, raw random quants -128..127, true bsums.
std::vector<std::vector<uint8_t>> raw_q8_k_activations(int64_t nb, std::mt19937& rng) {
  std::vector<std::vector<uint8_t>> acts(8, std::vector<uint8_t>(static_cast<size_t>(nb) * sizeof(BlockQ8_K)));
  for (auto& a : acts) {
    auto* blocks = reinterpret_cast<BlockQ8_K*>(a.data());
    for (int64_t b = 0; b < nb; ++b) {
      blocks[b].d = 1.0f;
      fill_bytes(reinterpret_cast<uint8_t*>(blocks[b].qs), sizeof blocks[b].qs, rng);
      for (int g = 0; g < kQK_K / 16; ++g) {
        int sum = 0;
        for (int l = 0; l < 16; ++l) sum += blocks[b].qs[16 * g + l];
        blocks[b].bsums[g] = static_cast<int16_t>(sum);
      }
    }
  }
  return acts;
}

// With all float scales 1.0 the result is the integer dot product itself, which the AVX-512
// kernels must reproduce exactly -- on raw random bytes, including -128 weights.
TEST(DotKernel, Avx512EightRowKernelsAreExactOnIntegerBlocks) {
  if (!vec_dot8_avx512(TensorType::q8_0)) GTEST_SKIP() << "no AVX-512 VNNI";
  std::mt19937 rng(42);
  auto byte = [&rng] { return static_cast<uint8_t>(rng() & 0xFF); };
  for (int64_t nb : {1, 2, 3, 64, 65}) {
    const int64_t n = nb * kQK8_0;
    std::vector<BlockQ8_0> w(static_cast<size_t>(nb));
    for (auto& b : w) {
      b.d = 0x3C00;
      for (auto& q : b.qs) q = static_cast<int8_t>(byte());
    }
    w[0].qs[0] = -128;
    for (auto& q : w.back().qs) q = -128;
    std::vector<std::vector<uint8_t>> acts(8, std::vector<uint8_t>(act_row_bytes(TensorType::q8_0, n)));
    for (auto& a : acts) {
      auto* blocks = reinterpret_cast<BlockQ8_0*>(a.data());
      for (int64_t b = 0; b < nb; ++b) {
        blocks[b].d = 0x3C00;
        for (auto& q : blocks[b].qs) q = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);  // -127..127
      }
    }
    expect_eight_agree(TensorType::q8_0, n, reinterpret_cast<const uint8_t*>(w.data()), acts, {}, "integer");
  }
  for (int64_t nb : {1, 2, 9}) {
    const auto acts = raw_q8_k_activations(nb, rng);
    std::vector<BlockQ4_K> w4(static_cast<size_t>(nb));
    for (auto& b : w4) {
      b.d = b.dmin = 0x3C00;
      fill_bytes(b.scales, sizeof b.scales, rng);
      fill_bytes(b.qs, sizeof b.qs, rng);
    }
    std::memset(w4[0].qs, 0xFF, sizeof w4[0].qs);          // all quants 15
    std::memset(w4[0].scales, 0xFF, sizeof w4[0].scales);  // all scales and mins 63
    expect_eight_agree(TensorType::q4_k, nb * kQK_K, reinterpret_cast<const uint8_t*>(w4.data()), acts, {}, "integer");
    std::vector<BlockQ5_K> w5(static_cast<size_t>(nb));
    for (auto& b : w5) {
      b.d = b.dmin = 0x3C00;
      fill_bytes(b.scales, sizeof b.scales, rng);
      fill_bytes(b.qh, sizeof b.qh, rng);
      fill_bytes(b.qs, sizeof b.qs, rng);
    }
    std::memset(w5[0].qs, 0xFF, sizeof w5[0].qs);  // all quants 31
    std::memset(w5[0].qh, 0xFF, sizeof w5[0].qh);
    std::memset(w5[0].scales, 0xFF, sizeof w5[0].scales);
    expect_eight_agree(TensorType::q5_k, nb * kQK_K, reinterpret_cast<const uint8_t*>(w5.data()), acts, {}, "integer");
    std::vector<BlockQ6_K> w6(static_cast<size_t>(nb));
    for (size_t k = 0; k < w6.size(); ++k) {
      BlockQ6_K& b = w6[k];
      b.d = 0x3C00;
      fill_bytes(b.ql, sizeof b.ql, rng);
      fill_bytes(b.qh, sizeof b.qh, rng);
      fill_bytes(reinterpret_cast<uint8_t*>(b.scales), sizeof b.scales, rng);  // -128..127
      if (k == 0) {  // all quants 63 - 32 = 31, all scales -128
        std::memset(b.ql, 0xFF, sizeof b.ql);
        std::memset(b.qh, 0xFF, sizeof b.qh);
        std::memset(b.scales, 0x80, sizeof b.scales);
      }
      if (k == 1) std::memset(b.ql, 0, sizeof b.ql);  // quants 0 - 32 = -32 where qh bits are 0
    }
    expect_eight_agree(TensorType::q6_k, nb * kQK_K, reinterpret_cast<const uint8_t*>(w6.data()), acts, {}, "integer");
  }
}

// Every finite F16 weight (and BF16 weights up to 2^20 in magnitude, so that the sums stay
// finite) widened by the AVX-512 kernels as by the AVX2 ones: subnormals, zeros of both signs.
TEST(DotKernel, Avx512HalfKernelsWidenEveryWeightLikeAvx2) {
  if (!vec_dot8_avx512(TensorType::f16)) GTEST_SKIP() << "no AVX-512";
  for (TensorType t : {TensorType::f16, TensorType::bf16}) {
    const uint16_t limit = t == TensorType::f16 ? 0x7C00 : 0x4980;  // F16 inf; BF16 2^20
    std::vector<uint16_t> w;
    for (uint32_t b = 0; b < limit; ++b) {
      w.push_back(static_cast<uint16_t>(b));
      w.push_back(static_cast<uint16_t>(b | 0x8000));
    }
    w.push_back(0x3C00);  // odd length: a tail too
    const int64_t n = static_cast<int64_t>(w.size());
    std::vector<std::vector<float>> acts;
    const void* a8[8];
    for (int r = 0; r < 8; ++r) {
      acts.push_back(random_vec(n, 500 + static_cast<uint32_t>(r)));
      a8[r] = acts.back().data();
    }
    float out[8];
    vec_dot8_avx512(t)(n, w.data(), a8, out);
    for (int r = 0; r < 8; ++r) {
      const float want = vec_dot_avx2(t)(n, w.data(), a8[r]);
      EXPECT_EQ(out[r], want) << type_name(t) << " row " << r;
      EXPECT_EQ(vec_dot_avx512(t)(n, w.data(), a8[r]), want) << type_name(t) << " row " << r;
    }
  }
}

// This machine (AVX-512 F/BW/VL/VNNI) must run the AVX-512 kernels for F32/F16/BF16 weights:
// eight tokens per weight-row load in prefill, and the single-row kernel for decode.
TEST(DotKernel, Avx512FloatKernelsAreChosenWhenTheCpuHasThem) {
  if (!cpu_has_avx512_vnni()) GTEST_SKIP() << "no AVX-512 F/BW/VL/VNNI on this CPU";
  for (TensorType t : {TensorType::f32, TensorType::f16, TensorType::bf16}) {
    ASSERT_NE(vec_dot8_avx512(t), nullptr) << type_name(t);
    ASSERT_NE(vec_dot_avx512(t), nullptr) << type_name(t);
    EXPECT_EQ(vec_dot8_fn(t), vec_dot8_avx512(t)) << type_name(t);
    EXPECT_EQ(vec_dot_fn(t), vec_dot_avx512(t)) << type_name(t);
    EXPECT_NE(vec_dot_fn(t), vec_dot_avx2(t)) << type_name(t);
    disable_avx512_kernels(true);
    EXPECT_EQ(vec_dot8_fn(t), nullptr) << type_name(t);
    EXPECT_EQ(vec_dot_fn(t), vec_dot_avx2(t)) << type_name(t);
    disable_avx512_kernels(false);
  }
}

TEST(DotKernel, Avx512KernelsAreChosenOnlyWhenEnabled) {
  EXPECT_EQ(vec_dot8_fn(TensorType::q4_0), nullptr);  // no eight-token kernel for this type
  EXPECT_EQ(vec_dot_avx512(TensorType::q4_0), nullptr);
  EXPECT_EQ(vec_dot_avx512(TensorType::q5_k), nullptr);  // measured slower than AVX2's
  if (!cpu_has_avx512_vnni()) {
    EXPECT_EQ(vec_dot8_fn(TensorType::q8_0), nullptr);
    EXPECT_EQ(vec_dot_avx512(TensorType::q6_k), nullptr);
    return;
  }
  EXPECT_NE(vec_dot8_fn(TensorType::q8_0), nullptr);
  EXPECT_NE(vec_dot_avx512(TensorType::q6_k), nullptr);
  EXPECT_EQ(vec_dot_fn(TensorType::q6_k), vec_dot_avx512(TensorType::q6_k));
  disable_avx512_kernels(true);
  EXPECT_EQ(vec_dot8_fn(TensorType::q4_k), nullptr);
  EXPECT_EQ(vec_dot_fn(TensorType::q6_k), vec_dot_avx2(TensorType::q6_k));
  disable_avx512_kernels(false);
  force_scalar_kernels(true);
  EXPECT_EQ(vec_dot8_fn(TensorType::q4_k), nullptr);
  EXPECT_EQ(vec_dot_fn(TensorType::q6_k), vec_dot_scalar(TensorType::q6_k));
  force_scalar_kernels(false);
  EXPECT_NE(vec_dot8_fn(TensorType::q4_k), nullptr);
  EXPECT_NE(vec_dot8_fn(TensorType::q6_k), nullptr);
  EXPECT_NE(vec_dot8_fn(TensorType::q5_k), nullptr);
}

TEST(Q8K, ActivationQuantisationMatchesGgml) {
  // d = max / -127 with max the signed element of largest magnitude; bsums are 16-sums.
  std::vector<float> x(256, 0.0f);
  x[3] = -2.54f;
  x[100] = 1.27f;
  BlockQ8_K b;
  quantize_row_q8_k(x.data(), &b, 256);
  EXPECT_FLOAT_EQ(b.d, 0.02f);
  EXPECT_EQ(b.qs[3], -127);
  EXPECT_EQ(b.qs[100], 64);  // 1.27 / 0.02 = 63.5 -> ties to even -> 64
  EXPECT_EQ(b.bsums[0], -127);
  EXPECT_EQ(b.bsums[6], 64);
}

}  // namespace
}  // namespace local_backend
