// The legacy block types Q4_0, Q4_1, Q5_0, Q5_1: dequantisation of hand-made blocks, the dot
// kernels against dequantise-then-dot, and small models written in these types.
#include "local_backend/quants_legacy.h"

#include <gtest/gtest.h>

#include "test_dir.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "local_backend/gguf.h"
#include "local_backend/model.h"
#include "local_backend/test_model.h"

namespace local_backend {
namespace {

constexpr TensorType kLegacy[] = {TensorType::q4_0, TensorType::q4_1, TensorType::q5_0, TensorType::q5_1};

constexpr uint16_t kHalf = 0x3800, kQuarter = 0x3400, kMinusOne = 0xBC00, kTwo = 0x4000;

// Nibble n at quant j of a 16-byte qs array (j < 16: low nibble of byte j, else high of j - 16).
void put_nibble(uint8_t* qs, int j, int n) {
  if (j < 16) qs[j] = static_cast<uint8_t>((qs[j] & 0xF0) | n);
  else qs[j - 16] = static_cast<uint8_t>((qs[j - 16] & 0x0F) | (n << 4));
}

TEST(LegacyDequant, Q4_0NibbleOrderAndOffset) {
  BlockQ4_0 b{};
  b.d = kHalf;
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  ASSERT_TRUE(dequantize_row(TensorType::q4_0, &b, y, 32));
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * static_cast<float>(j - 8)) << j;            // low nibbles: quants 0..15
    EXPECT_EQ(y[16 + j], 0.5f * static_cast<float>(7 - j)) << j;       // high nibbles: 16..31
  }
  EXPECT_EQ(y[0], -4.0f);
  EXPECT_EQ(y[16], 3.5f);
}

TEST(LegacyDequant, Q4_1AddsTheMin) {
  BlockQ4_1 b{};
  b.d = kHalf;
  b.m = kMinusOne;
  for (int j = 0; j < 32; ++j) put_nibble(b.qs, j, (j * 7) % 16);
  float y[32];
  ASSERT_TRUE(dequantize_row(TensorType::q4_1, &b, y, 32));
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.5f * static_cast<float>((j * 7) % 16) - 1.0f) << j;
  EXPECT_EQ(y[0], -1.0f);
  EXPECT_EQ(y[17], 0.5f * 7 - 1.0f);  // 17 * 7 % 16 = 7
}

TEST(LegacyDequant, Q5_0FifthBitFromQh) {
  BlockQ5_0 b{};
  b.d = kQuarter;
  b.qs[3] = 0x5A;  // quant 3: nibble 10, quant 19: nibble 5
  // Bits 3 and 19 of the little-endian word: byte 0 bit 3, byte 2 bit 3; bit 31: byte 3 bit 7.
  b.qh[0] = 0x08;
  b.qh[2] = 0x08;
  b.qh[3] = 0x80;
  float y[32];
  ASSERT_TRUE(dequantize_row(TensorType::q5_0, &b, y, 32));
  EXPECT_EQ(y[3], 0.25f * 10);   // (10 | 16) - 16
  EXPECT_EQ(y[19], 0.25f * 5);   // (5 | 16) - 16
  EXPECT_EQ(y[31], 0.0f);        // (0 | 16) - 16
  for (int j : {0, 1, 2, 4, 15, 16, 18, 20, 30}) EXPECT_EQ(y[j], 0.25f * -16) << j;
}

TEST(LegacyDequant, Q5_1EveryQuantWithMin) {
  BlockQ5_1 b{};
  b.d = kHalf;
  b.m = kTwo;
  const uint32_t qh = 0xA5C30F01u;  // every byte of qh exercised
  std::memcpy(b.qh, &qh, 4);
  for (int j = 0; j < 32; ++j) put_nibble(b.qs, j, (j * 5 + 3) % 16);
  float y[32];
  ASSERT_TRUE(dequantize_row(TensorType::q5_1, &b, y, 32));
  for (int j = 0; j < 32; ++j) {
    const int q = ((j * 5 + 3) % 16) | static_cast<int>((qh >> j) & 1) << 4;
    EXPECT_EQ(y[j], 0.5f * static_cast<float>(q) + 2.0f) << j;
  }
  EXPECT_EQ(y[0], 0.5f * (3 | 16) + 2.0f);   // qh bit 0 set
  EXPECT_EQ(y[31], 0.5f * (14 | 16) + 2.0f);  // qh bit 31 set; nibble (31*5+3)%16 = 14
  EXPECT_EQ(y[1], 0.5f * 8 + 2.0f);           // qh bit 1 clear
}

TEST(LegacyDequant, TypeTableSaysSupported) {
  for (TensorType t : kLegacy) {
    EXPECT_TRUE(type_traits(t).supported) << type_name(t);
    EXPECT_EQ(type_traits(t).block_size, 32);
    EXPECT_EQ(act_format_for(t), ActFormat::q8_0) << type_name(t);
  }
  EXPECT_EQ(type_traits(TensorType::q4_0).type_size, sizeof(BlockQ4_0));
  EXPECT_EQ(type_traits(TensorType::q4_1).type_size, sizeof(BlockQ4_1));
  EXPECT_EQ(type_traits(TensorType::q5_0).type_size, sizeof(BlockQ5_0));
  EXPECT_EQ(type_traits(TensorType::q5_1).type_size, sizeof(BlockQ5_1));
}

std::vector<float> random_vec(int64_t n, uint32_t seed, float scale = 1.0f, float shift = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(shift, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

// Quantise -> dequantise: RMS error relative to the data's spread. The _1 types span each
// block's [min, max], so a shifted block costs them nothing (error relative to the RMS about the
// shift); the _0 types are symmetric about 0, so there it is relative to the RMS of x.
// Measured (shift 0 / 3): Q4_0 0.084 / 0.058, Q4_1 0.078 / 0.078, Q5_0 0.041 / 0.028,
// Q5_1 0.037 / 0.037 (a 4-bit step is about 1/15 of a block's range, a 5-bit one half that).
TEST(LegacyQuantise, RoundTripErrorWithinBound) {
  const int64_t n = 1024;
  for (TensorType t : kLegacy) {
    const bool five = t == TensorType::q5_0 || t == TensorType::q5_1;
    const bool has_min = t == TensorType::q4_1 || t == TensorType::q5_1;
    for (float shift : {0.0f, 3.0f}) {
      auto x = random_vec(n, 11, 1.0f, shift);
      std::vector<uint8_t> q(row_size(t, n));
      ASSERT_TRUE(quantize_row(t, x.data(), q.data(), n));
      std::vector<float> y(n);
      ASSERT_TRUE(dequantize_row(t, q.data(), y.data(), n));
      double err = 0, ref = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double centred = has_min ? x[i] - shift : x[i];
        err += (x[i] - y[i]) * double(x[i] - y[i]);
        ref += centred * centred;
      }
      const double rel = std::sqrt(err / ref);
      EXPECT_LE(rel, five ? 0.06 : 0.12) << type_name(t) << " shift " << shift;
      std::printf("[ legacy ] %s shift %.0f round trip rms error / rms %.3f\n", type_name(t), shift, rel);
    }
  }
}

// A quantised activation whose Q8_0 scale is exactly 1 (amax 127): the kernels' result is the
// integer sum times the weight scales, so the scalar kernel must equal dequantise-then-dot to
// float rounding, and the AVX2 kernel must too (extreme quants: no int16 saturation).
TEST(LegacyDot, ExtremeQuantsExact) {
  for (TensorType t : kLegacy) {
    const int64_t n = 64;
    std::vector<float> x(n);
    for (int64_t i = 0; i < n; ++i) x[i] = i % 3 == 0 ? -127.0f : 127.0f;
    std::vector<uint8_t> act(act_row_bytes(t, n));
    prepare_activation(t, x.data(), n, act.data());
    std::vector<uint8_t> wq(row_size(t, n), 0xFF);  // every quant at its maximum
    // Scales and mins: d = 0.5 (and m = -1 for _1 types) in every block.
    const size_t bs = type_traits(t).type_size;
    for (size_t b = 0; b < wq.size() / bs; ++b) {
      std::memcpy(&wq[b * bs], &kHalf, 2);
      if (t == TensorType::q4_1 || t == TensorType::q5_1) std::memcpy(&wq[b * bs + 2], &kMinusOne, 2);
    }
    std::vector<float> wd(n);
    ASSERT_TRUE(dequantize_row(t, wq.data(), wd.data(), n));
    double ref = 0;
    for (int64_t i = 0; i < n; ++i) ref += double(wd[i]) * x[i];
    EXPECT_EQ(vec_dot_scalar(t)(n, wq.data(), act.data()), static_cast<float>(ref)) << type_name(t);
    if (VecDotFn f = vec_dot_avx2(t)) {
      EXPECT_EQ(f(n, wq.data(), act.data()), static_cast<float>(ref)) << type_name(t);
    }
  }
}

// Random rows of widths that are not multiples of 256. Bound against dequantise-then-dot (f64):
// the Q8_0 activation is off by at most half a step (block amax / 254) per element, so
// |dot - ref| <= sum_i |w_i| * amax_b(i) / 254; allowed twice that plus 1e-4 of sum |w_i x_i|.
// SIMD vs scalar: the same integer sums, other float order: 1e-5 of sum |w_i x_i|.
TEST(LegacyDot, KernelsMatchDequantiseThenF32) {
  for (TensorType t : kLegacy) {
    ASSERT_NE(vec_dot_scalar(t), nullptr) << type_name(t);
    for (int64_t n : {32, 96, 320, 1408}) {
      for (uint32_t seed = 1; seed <= 8; ++seed) {
        auto w = random_vec(n, seed, 1.0f, seed % 2 ? 0.5f : 0.0f);
        auto x = random_vec(n, seed + 1000, seed % 3 == 0 ? 100.0f : 1.0f);
        std::vector<uint8_t> wq(row_size(t, n));
        ASSERT_TRUE(quantize_row(t, w.data(), wq.data(), n));
        std::vector<float> wd(n);
        ASSERT_TRUE(dequantize_row(t, wq.data(), wd.data(), n));
        double ref = 0, mag = 0, bound = 0;
        for (int64_t i = 0; i < n; ++i) {
          ref += double(wd[i]) * x[i];
          mag += std::fabs(double(wd[i]) * x[i]);
        }
        for (int64_t b = 0; b < n / 32; ++b) {
          float amax = 0;
          for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
          for (int i = 0; i < 32; ++i) bound += 2.0 * std::fabs(wd[b * 32 + i]) * amax / 254.0;
        }
        bound += 1e-4 * mag;
        std::vector<uint8_t> act(act_row_bytes(t, n));
        prepare_activation(t, x.data(), n, act.data());
        const float scalar = vec_dot_scalar(t)(n, wq.data(), act.data());
        EXPECT_NEAR(scalar, ref, bound) << type_name(t) << " n=" << n << " seed " << seed;
        if (VecDotFn avx = vec_dot_avx2(t)) {
          const float simd = avx(n, wq.data(), act.data());
          EXPECT_NEAR(simd, scalar, 1e-5 * mag + 1e-6) << type_name(t) << " n=" << n << " seed " << seed;
          EXPECT_NEAR(simd, ref, bound) << type_name(t) << " n=" << n << " seed " << seed;
        }
      }
    }
  }
}

// The four-row (prefill) kernels are checked bit for bit against the single-row ones in
// quants_test.cpp (DotKernel.FourRowKernelsAreBitIdenticalToSingleRow), with the other types.
TEST(LegacyDot, AvxKernelsChosenWhenPresent) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2";
  for (TensorType t : kLegacy) {
    EXPECT_NE(vec_dot4_fn(t), nullptr) << type_name(t);
    EXPECT_EQ(vec_dot_fn(t), vec_dot_avx2(t)) << type_name(t);
    EXPECT_EQ(vec_dot8_fn(t), nullptr) << type_name(t);  // no AVX-512 kernels: prefill uses dot4
  }
}

TEST(LegacyDot, ScalarFallbackWhenForced) {
  force_scalar_kernels(true);
  for (TensorType t : kLegacy) {
    EXPECT_EQ(vec_dot_fn(t), vec_dot_scalar(t)) << type_name(t);
    EXPECT_EQ(vec_dot4_fn(t), nullptr) << type_name(t);
  }
  force_scalar_kernels(false);
}

// ---- small models in the legacy types (hidden 320, expert FFN 96: neither a multiple of 256)

TestModelSpec legacy_spec(const std::string& type) {
  TestModelSpec s;
  s.arch = "qwen2moe";  // shared expert, as Qwen1.5-MoE
  s.type = type;
  s.n_layer = 2;
  s.n_embd = 320;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.head_dim = 64;
  s.n_expert = 8;
  s.n_expert_used = 2;
  s.n_ff_exp = 96;
  s.n_ff_shexp = 192;
  s.seed = 9;
  return s;
}

// Logits after each token: the first 8 tokens as one prefill batch (the four-row kernels),
// the rest decoded one at a time.
std::vector<float> run_logits(const Model& m, const std::vector<int32_t>& toks, int threads) {
  ThreadPool pool(threads);
  KvCache cache(m.hparams(), 64, KvType::f32);
  std::vector<BatchEntry> batch;
  for (int p = 0; p < 8; ++p) batch.push_back({toks[static_cast<size_t>(p)], p, &cache, true});
  std::vector<float> logits;  // forward appends
  EXPECT_TRUE(m.forward(batch, pool, &logits).ok());
  for (size_t p = 8; p < toks.size(); ++p) {
    BatchEntry e{toks[p], static_cast<int32_t>(p), &cache, true};
    EXPECT_TRUE(m.forward(std::span<const BatchEntry>(&e, 1), pool, &logits).ok());
  }
  EXPECT_EQ(logits.size(), toks.size() * static_cast<size_t>(m.hparams().n_vocab));
  return logits;
}

std::vector<int32_t> greedy(const Model& m, std::vector<int32_t> toks, int n_new) {
  ThreadPool pool(2);
  KvCache cache(m.hparams(), 64, KvType::f16);
  std::vector<float> logits;
  std::vector<BatchEntry> batch;
  for (size_t p = 0; p < toks.size(); ++p) batch.push_back({toks[p], static_cast<int32_t>(p), &cache, p + 1 == toks.size()});
  EXPECT_TRUE(m.forward(batch, pool, &logits).ok());
  for (int k = 0; k < n_new; ++k) {
    const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    toks.push_back(next);
    logits.clear();  // forward appends
    BatchEntry e{next, static_cast<int32_t>(toks.size() - 1), &cache, true};
    const auto st = m.forward(std::span<const BatchEntry>(&e, 1), pool, &logits);
    EXPECT_TRUE(st.ok()) << st.error().message;
  }
  return toks;
}

struct ModelCase {
  const char* type;
  double max_rel_rms;  // bound on rms(logits - F32 model's logits) / rms(F32 model's logits)
  double max_abs;      // bound on max |logit - F32 model's logit|
  bool k_mix = false;  // a Q4_K_M/Q5_K_M mix whose 320-wide rows fell back to Q5_0/Q5_1
};

class LegacyModel : public ::testing::TestWithParam<ModelCase> {};

// The same random weights (same seed) written in F32 and in the legacy type: the logits differ
// by the weights' quantisation error (and the Q8_0 rounding of activations), which grows with
// the quantisation step. Measured rms(diff)/rms(logits), max |diff| (max |logit| 3.5): Q4_0
// 0.26, 1.4; Q4_1 0.27, 1.5; Q5_0 0.15, 0.87; Q5_1 0.13, 0.54 (a Q8_0 file of the same model:
// 0.023, 0.11, so the error scales with the step as it should). The Q4_K_M/Q5_K_M mixes, whose
// 320-wide rows fall back to Q5_0/Q5_1 (and Q6_K's to Q8_0) as in llama-quantize while
// attn_output keeps Q5_K: 0.14, 0.83 and 0.10, 0.43. The bounds allow about 1.5x;
// a misread layout gives a relative error near 1. The exact check of the legacy kernels in a
// model is forward_test.cpp (engine vs a reference on the dequantised weights, 1e-3).
TEST_P(LegacyModel, LoadsAndRunsCloseToF32) {
  const ModelCase c = GetParam();
  const std::string qpath = test_dir() + "/legacy_" + c.type + ".gguf";
  const std::string fpath = test_dir() + "/legacy_f32_for_" + std::string(c.type) + ".gguf";
  ASSERT_TRUE(write_test_model(legacy_spec(c.type), synthetic_vocab(), qpath).ok());
  ASSERT_TRUE(write_test_model(legacy_spec("f32"), synthetic_vocab(), fpath).ok());
  auto qm = Model::load(qpath);
  ASSERT_TRUE(qm.ok()) << qm.error().message;
  auto fm = Model::load(fpath);
  ASSERT_TRUE(fm.ok()) << fm.error().message;
  {
    auto file = gguf::File::open(qpath);
    ASSERT_TRUE(file.ok());
    const gguf::TensorInfo* t = (*file)->find_tensor("blk.0.ffn_gate_exps.weight");  // rows of 320
    ASSERT_NE(t, nullptr);
    EXPECT_TRUE(is_legacy_quant(t->type)) << type_name(t->type);
    if (c.k_mix) {  // the K-quant mixes keep K types where rows allow (attn_output: rows of 256)
      const gguf::TensorInfo* o = (*file)->find_tensor("blk.0.attn_output.weight");
      ASSERT_NE(o, nullptr);
      EXPECT_EQ(o->type, TensorType::q5_k);
      EXPECT_EQ(t->type, std::string(c.type) == "q4_k_m" ? TensorType::q5_0 : TensorType::q5_1);
    }
  }
  const std::vector<int32_t> toks = {1, 200, 37, 255, 101, 7, 300, 42, 42, 9, 64, 128};
  const auto want = run_logits(**fm, toks, 1);
  double ref_max = 0;
  for (float v : want) ref_max = std::max(ref_max, double(std::fabs(v)));
  ASSERT_GT(ref_max, 0.1) << "degenerate model";
  double ref_ss = 0;
  for (float v : want) ref_ss += double(v) * v;
  for (int threads : {1, 2}) {
    const auto got = run_logits(**qm, toks, threads);
    ASSERT_EQ(got.size(), want.size());
    double max_diff = 0, ss = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      max_diff = std::max(max_diff, double(std::fabs(got[i] - want[i])));
      ss += double(got[i] - want[i]) * (got[i] - want[i]);
    }
    const double rel_rms = std::sqrt(ss / ref_ss);
    EXPECT_LE(rel_rms, c.max_rel_rms) << c.type << " threads " << threads;
    EXPECT_LE(max_diff, c.max_abs) << c.type << " threads " << threads;
    std::printf("[ legacy ] %s threads=%d vs F32 model: rms(diff)/rms(logits) %.3g, max|diff| %.3g (max|logit| %.3g)\n",
                c.type, threads, rel_rms, max_diff, ref_max);
  }
  const std::vector<int32_t> prompt = {1, 200, 37, 255, 101};
  const auto g1 = greedy(**qm, prompt, 10), g2 = greedy(**qm, prompt, 10);
  EXPECT_EQ(g1, g2) << "greedy decoding must be deterministic";
}

INSTANTIATE_TEST_SUITE_P(Types, LegacyModel,
                         ::testing::Values(ModelCase{"q4_0", 0.4, 2.0}, ModelCase{"q4_1", 0.4, 2.0}, ModelCase{"q5_0", 0.25, 1.2},
                                           ModelCase{"q5_1", 0.25, 1.2}, ModelCase{"q4_k_m", 0.25, 1.2, true},
                                           ModelCase{"q5_k_m", 0.2, 0.8, true}),
                         [](const auto& info) { return std::string(info.param.type); });

}  // namespace
}  // namespace local_backend
