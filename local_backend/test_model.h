#pragma once
// Writes GGUF models with random weights (fixed seed) for every supported architecture and
// weight type, following the published GGUF conventions (key names, tensor names, shapes,
// alignment), so tests, benchmarks and the demo configuration run anywhere.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/result.h"
#include "local_backend/tensor_types.h"

namespace local_backend {

struct VocabSpec {
  std::string model = "gpt2";  // tokenizer.ggml.model: gpt2 (byte-level BPE) | llama (SentencePiece-style)
  std::vector<std::string> tokens;
  std::vector<float> scores;   // llama only
  std::vector<int32_t> types;  // TokenType values
  std::vector<std::string> merges;
  int32_t bos = -1, eos = -1, pad = -1, unk = -1;
  std::string pre = "qwen2";
};

// A small byte-level BPE vocabulary: 256 byte tokens, merges learned from a built-in English
// text, and the ChatML control tokens <|endoftext|>, <|im_start|>, <|im_end|>.
VocabSpec synthetic_vocab(int n_merges = 300);
// A small SentencePiece-style vocabulary (tokenizer.ggml.model = "llama", as Mistral/Mixtral):
// <unk>, <s>, </s>, the 256 <0xXX> byte tokens, "\u2581", printable ASCII, and "\u2581word"
// pieces (with all their prefixes) from the built-in text, scored by length.
VocabSpec synthetic_spm_vocab();
// Pads a vocabulary with "[PAD<i>]" unused tokens up to n (as converters do for Qwen).
void pad_vocab(VocabSpec* v, int n);

struct TestModelSpec {
  std::string arch = "qwen3moe";  // qwen3moe | qwen2moe | llama (Mixtral-style)
  std::string type = "q8_0";      // f32 | f16 | bf16 | q8_0 | q4_0 | q4_1 | q5_0 | q5_1 | q4_k | q5_k | q6_k | q4_k_m | q5_k_m
  int n_layer = 2;
  int n_embd = 256;
  int n_head = 4;
  int n_head_kv = 2;
  int head_dim = 64;
  int n_expert = 8;
  int n_expert_used = 2;
  int n_ff_exp = 256;
  int n_ff_shexp = 512;
  int context_length = 4096;
  float rope_base = 1000000.0f;
  float rms_eps = 1e-6f;
  bool tied_embeddings = false;
  uint64_t seed = 42;
  std::string name = "gateway-test-model";
  // Per-tensor types that replace the mix of `type` (e.g. copied from a llama-quantize file, so
  // both files hold the same weights in the same types).
  std::map<std::string, TensorType> type_overrides;
};

core::Status validate_spec(const TestModelSpec& spec);
// Type used for a tensor under the spec's type (Q4_K_M/Q5_K_M mix K-quants like llama-quantize);
// rows that are not a multiple of 256 fall back as in llama-quantize (Q4_K -> Q5_0, Q5_K -> Q5_1,
// Q6_K -> Q8_0), and to F16 when not a multiple of 32.
TensorType tensor_type_for(const TestModelSpec& spec, const std::string& name, int64_t row_len);
core::Status write_test_model(const TestModelSpec& spec, const VocabSpec& vocab, const std::string& path);

}  // namespace local_backend
