#include "local_backend/test_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <utility>

#include "local_backend/arch.h"
#include "local_backend/gguf.h"
#include "local_backend/quants.h"
#include "local_backend/tokenizer.h"
#include "local_backend/unicode.h"

namespace local_backend {
namespace {

core::Error spec_error(std::string m) {
  return core::make_error(core::ErrorKind::bad_request, std::move(m), core::ErrorSource::local, "test_model_spec");
}

// Small, fast, seedable generator (splitmix64).
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }  // [0, 1)
};

uint64_t hash_name(const std::string& s, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

const char* kTrainingText =
    "The quick brown fox jumps over the lazy dog. A gateway routes each request to the model that "
    "serves it best: the local engine when the data must stay on our own hardware, a remote provider "
    "when it is faster or cheaper. Hello world! How are you today? I am fine, thank you. This is a "
    "test of the tokenizer and the inference engine, which reads weights from a file and answers in "
    "the language of the question. The assistant should be helpful, honest and harmless. What is the "
    "weather like in the city where you live? It is sunny and warm, with a light wind from the west. "
    "def main(): return 0  # code is text too; for (int i = 0; i < n; ++i) { sum += x[i]; } "
    "user assistant system tool function call result content message role name";

}  // namespace

VocabSpec synthetic_vocab(int n_merges) {
  VocabSpec v;
  for (int b = 0; b < 256; ++b) {
    v.tokens.push_back(unicode::byte_to_token_text(static_cast<uint8_t>(b)));
    v.types.push_back(static_cast<int32_t>(TokenType::normal));
  }
  // Learn merges the BPE way on the built-in text, words split like the qwen2 pre-tokenizer
  // (a word keeps its leading space).
  std::vector<std::vector<std::string>> words;
  {
    std::string text = kTrainingText;
    std::vector<std::string> cur;
    std::string w;
    for (size_t i = 0; i <= text.size(); ++i) {
      const bool boundary = i == text.size() || text[i] == ' ';
      if (boundary) {
        if (!w.empty()) {
          std::vector<std::string> syms;
          for (char c : w) syms.push_back(unicode::byte_to_token_text(static_cast<uint8_t>(c)));
          words.push_back(syms);
        }
        w = i < text.size() ? " " : "";
      } else {
        w += text[i];
      }
    }
  }
  std::set<std::string> have(v.tokens.begin(), v.tokens.end());
  for (int m = 0; m < n_merges; ++m) {
    std::map<std::pair<std::string, std::string>, int> counts;
    for (const auto& w : words)
      for (size_t i = 0; i + 1 < w.size(); ++i) ++counts[{w[i], w[i + 1]}];
    if (counts.empty()) break;
    auto best = counts.begin();
    for (auto it = counts.begin(); it != counts.end(); ++it)
      if (it->second > best->second) best = it;
    if (best->second < 2) break;
    const auto [l, r] = best->first;
    v.merges.push_back(l + " " + r);
    if (have.insert(l + r).second) {
      v.tokens.push_back(l + r);
      v.types.push_back(static_cast<int32_t>(TokenType::normal));
    }
    for (auto& w : words) {
      std::vector<std::string> nw;
      for (size_t i = 0; i < w.size(); ++i) {
        if (i + 1 < w.size() && w[i] == l && w[i + 1] == r) {
          nw.push_back(l + r);
          ++i;
        } else {
          nw.push_back(w[i]);
        }
      }
      w = std::move(nw);
    }
  }
  for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    v.tokens.push_back(s);
    v.types.push_back(static_cast<int32_t>(TokenType::control));
  }
  const int32_t n = static_cast<int32_t>(v.tokens.size());
  v.pad = n - 3;  // <|endoftext|>
  v.bos = n - 3;
  v.eos = n - 1;  // <|im_end|>, as in Qwen3 chat GGUFs
  return v;
}

VocabSpec synthetic_spm_vocab() {
  VocabSpec v;
  v.model = "llama";
  v.pre.clear();
  auto add = [&](const std::string& t, TokenType type, float score) {
    v.tokens.push_back(t);
    v.types.push_back(static_cast<int32_t>(type));
    v.scores.push_back(score);
  };
  add("<unk>", TokenType::unknown, 0);
  add("<s>", TokenType::control, 0);
  add("</s>", TokenType::control, 0);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    add(name, TokenType::byte, 0);
  }
  const std::string sp = "\xE2\x96\x81";  // U+2581
  std::set<std::string> have;
  add(sp, TokenType::normal, -1000);
  have.insert(sp);
  for (int c = 0x21; c < 0x7F; ++c) {
    add(std::string(1, static_cast<char>(c)), TokenType::normal, -900);
    have.insert(std::string(1, static_cast<char>(c)));
  }
  std::string text = kTrainingText;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    size_t j = i;
    while (j < text.size() && text[j] != ' ') ++j;
    const std::string word = text.substr(i, j - i);
    std::string piece = sp;
    for (size_t k = 0; k < word.size(); ++k) {
      piece += word[k];
      if (have.insert(piece).second) add(piece, TokenType::normal, static_cast<float>(k + 1));
    }
    i = j;
  }
  v.unk = 0;
  v.bos = 1;
  v.eos = 2;
  return v;
}

void pad_vocab(VocabSpec* v, int n) {
  while (static_cast<int>(v->tokens.size()) < n) {
    v->tokens.push_back("[PAD" + std::to_string(v->tokens.size()) + "]");
    v->types.push_back(static_cast<int32_t>(TokenType::unused));
    if (!v->scores.empty()) v->scores.push_back(-1e9f);
  }
}

core::Status validate_spec(const TestModelSpec& s) {
  if (s.arch != "mixtral" && !find_arch(s.arch)) return spec_error("unknown --arch '" + s.arch + "' (qwen3moe, qwen2moe, mixtral/llama)");
  static const std::set<std::string> types = {"f32",  "f16",  "bf16", "q8_0", "q4_0",   "q4_1",  "q5_0",
                                            "q5_1", "q4_k", "q5_k", "q6_k", "q4_k_m", "q5_k_m"};
  if (!types.count(s.type)) return spec_error("unknown --type '" + s.type + "'");
  auto pos = [](int v, const char* what) -> core::Status {
    if (v <= 0 || v > 1 << 20) return spec_error(std::string(what) + " must be positive");
    return core::ok_status();
  };
  for (auto [v, w] : {std::pair{s.n_layer, "--layers"}, {s.n_embd, "--embd"}, {s.n_head, "--heads"},
                      {s.n_head_kv, "--kv-heads"}, {s.head_dim, "--head-dim"}, {s.n_expert, "--experts"},
                      {s.n_expert_used, "--experts-used"}, {s.n_ff_exp, "--expert-ff"}, {s.n_ff_shexp, "--shared-ff"}}) {
    if (auto st = pos(v, w); !st.ok()) return st;
  }
  if (s.n_head % s.n_head_kv) return spec_error("--heads must be a multiple of --kv-heads");
  if (s.head_dim % 2) return spec_error("--head-dim must be even");
  if (s.n_expert_used > s.n_expert) return spec_error("--experts-used must be <= --experts");
  if (s.n_embd % 32 || s.n_ff_exp % 32 || (s.n_head * s.head_dim) % 32) {
    return spec_error("--embd, --expert-ff and heads*head-dim must be multiples of 32");
  }
  return core::ok_status();
}

namespace {

// llama-quantize's choice for a row that is not a multiple of a K-quant's 256: a 32-element type
// of at least the same bits (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0), so test files have the
// mixes real files have (e.g. Qwen1.5-MoE's expert FFN of 1408).
TensorType fallback_type(TensorType t) {
  switch (t) {
    case TensorType::q4_k: return TensorType::q5_0;
    case TensorType::q5_k: return TensorType::q5_1;
    default: return TensorType::q8_0;
  }
}

}  // namespace

TensorType tensor_type_for(const TestModelSpec& spec, const std::string& name, int64_t row_len) {
  const bool is_vec = name.find("norm") != std::string::npos || name.find(".bias") != std::string::npos ||
                      name.find("ffn_gate_inp") != std::string::npos;
  if (is_vec) return TensorType::f32;  // norms, biases and routers stay F32, as llama.cpp keeps them
  TensorType t = TensorType::f32;
  if (spec.type == "f16") t = TensorType::f16;
  else if (spec.type == "bf16") t = TensorType::bf16;
  else if (spec.type == "q8_0") t = TensorType::q8_0;
  else if (spec.type == "q4_0") t = TensorType::q4_0;
  else if (spec.type == "q4_1") t = TensorType::q4_1;
  else if (spec.type == "q5_0") t = TensorType::q5_0;
  else if (spec.type == "q5_1") t = TensorType::q5_1;
  else if (spec.type == "q4_k") t = TensorType::q4_k;
  else if (spec.type == "q5_k") t = TensorType::q5_k;
  else if (spec.type == "q6_k") t = TensorType::q6_k;
  else if (spec.type == "q4_k_m" || spec.type == "q5_k_m") {
    // Close to the mix llama-quantize writes, not equal to it: it puts Q6_K on attn_v and ffn_down
    // only in some layers (the first and last eighth, every third between), and with exactly 8
    // experts writes attn_k and attn_v as Q8_0 and attn_output as Q5_K. Here: Q6_K for the output,
    // every attn_v and ffn_down; attn_output Q5_K from 8 experts up. A file in llama-quantize's
    // exact types: gguf-make-test-model --types-like FILE.
    const bool hi = name == "output.weight" || name.find("attn_v") != std::string::npos ||
                    name.find("ffn_down") != std::string::npos;
    const bool q5 = spec.type == "q5_k_m" || (spec.n_expert >= 8 && name.find("attn_output") != std::string::npos);
    t = hi ? TensorType::q6_k : q5 ? TensorType::q5_k : TensorType::q4_k;
  }
  if (row_len % type_traits(t).block_size != 0) t = fallback_type(t);
  if (row_len % type_traits(t).block_size != 0) t = TensorType::f16;
  return t;
}

core::Status write_test_model(const TestModelSpec& spec, const VocabSpec& vocab, const std::string& path) {
  if (auto st = validate_spec(spec); !st.ok()) return st;
  const ArchInfo* a = find_arch(spec.arch == "mixtral" ? "llama" : spec.arch);
  if (!a) return spec_error("unknown arch");
  HParams hp;
  hp.arch = a->arch;
  hp.n_vocab = static_cast<int32_t>(vocab.tokens.size());
  hp.n_embd = spec.n_embd;
  hp.n_layer = spec.n_layer;
  hp.n_head = spec.n_head;
  hp.n_head_kv = spec.n_head_kv;
  hp.head_dim = spec.head_dim;
  hp.n_expert = spec.n_expert;
  hp.n_expert_used = spec.n_expert_used;
  hp.n_ff_exp = spec.n_ff_exp;
  hp.n_ff_shexp = spec.n_ff_shexp;

  gguf::Writer w;
  w.set_string("general.architecture", a->name);
  w.set_string("general.name", spec.name);
  w.set_u32("general.quantization_version", 2);
  uint32_t file_type = 0;  // llama_ftype values
  if (spec.type == "f16") file_type = 1;
  else if (spec.type == "q8_0") file_type = 7;
  else if (spec.type == "q4_0") file_type = 2;
  else if (spec.type == "q4_1") file_type = 3;
  else if (spec.type == "q5_0") file_type = 8;
  else if (spec.type == "q5_1") file_type = 9;
  else if (spec.type == "q4_k") file_type = 14;  // Q4_K_S
  else if (spec.type == "q4_k_m") file_type = 15;
  else if (spec.type == "q5_k") file_type = 16;  // Q5_K_S
  else if (spec.type == "q5_k_m") file_type = 17;
  else if (spec.type == "q6_k") file_type = 18;
  else if (spec.type == "bf16") file_type = 32;
  w.set_u32("general.file_type", file_type);
  w.set_u32(arch_key(*a, "context_length"), static_cast<uint32_t>(spec.context_length));
  w.set_u32(arch_key(*a, "embedding_length"), static_cast<uint32_t>(spec.n_embd));
  w.set_u32(arch_key(*a, "block_count"), static_cast<uint32_t>(spec.n_layer));
  w.set_u32(arch_key(*a, "attention.head_count"), static_cast<uint32_t>(spec.n_head));
  w.set_u32(arch_key(*a, "attention.head_count_kv"), static_cast<uint32_t>(spec.n_head_kv));
  if (a->arch == Arch::llama) {
    w.set_u32(arch_key(*a, "feed_forward_length"), static_cast<uint32_t>(spec.n_ff_exp));
    w.set_u32(arch_key(*a, "rope.dimension_count"), static_cast<uint32_t>(spec.head_dim));
    if (spec.head_dim * spec.n_head != spec.n_embd) {
      w.set_u32(arch_key(*a, "attention.key_length"), static_cast<uint32_t>(spec.head_dim));
      w.set_u32(arch_key(*a, "attention.value_length"), static_cast<uint32_t>(spec.head_dim));
    }
  } else {
    w.set_u32(arch_key(*a, "feed_forward_length"), static_cast<uint32_t>(spec.n_ff_exp * spec.n_expert_used));
    w.set_u32(arch_key(*a, "expert_feed_forward_length"), static_cast<uint32_t>(spec.n_ff_exp));
    w.set_u32(arch_key(*a, "attention.key_length"), static_cast<uint32_t>(spec.head_dim));
    w.set_u32(arch_key(*a, "attention.value_length"), static_cast<uint32_t>(spec.head_dim));
  }
  if (a->shared_expert) w.set_u32(arch_key(*a, "expert_shared_feed_forward_length"), static_cast<uint32_t>(spec.n_ff_shexp));
  w.set_u32(arch_key(*a, "expert_count"), static_cast<uint32_t>(spec.n_expert));
  w.set_u32(arch_key(*a, "expert_used_count"), static_cast<uint32_t>(spec.n_expert_used));
  w.set_f32(arch_key(*a, "attention.layer_norm_rms_epsilon"), spec.rms_eps);
  w.set_f32(arch_key(*a, "rope.freq_base"), spec.rope_base);

  w.set_string("tokenizer.ggml.model", vocab.model);
  if (vocab.model == "gpt2") w.set_string("tokenizer.ggml.pre", vocab.pre);
  w.set_string_array("tokenizer.ggml.tokens", vocab.tokens);
  if (!vocab.scores.empty()) w.set_f32_array("tokenizer.ggml.scores", vocab.scores);
  w.set_i32_array("tokenizer.ggml.token_type", vocab.types);
  if (vocab.model == "gpt2") w.set_string_array("tokenizer.ggml.merges", vocab.merges);
  if (vocab.unk >= 0) w.set_u32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(vocab.unk));
  if (vocab.eos >= 0) w.set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(vocab.eos));
  if (vocab.pad >= 0) w.set_u32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(vocab.pad));
  if (vocab.bos >= 0) w.set_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(vocab.bos));
  w.set_bool("tokenizer.ggml.add_bos_token", vocab.model == "llama");
  if (vocab.model == "llama") {
    w.set_string("tokenizer.chat_template",
                 "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
                 "message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + "
                 "eos_token}}{% endif %}{% endfor %}");
  } else {
    w.set_string("tokenizer.chat_template",
               "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
               "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}");
  }

  // Tensors, in llama.cpp's usual order, with shapes from the architecture table.
  const uint32_t bit = arch_bit(a->arch);
  for (int pass = 0; pass < 2; ++pass) {  // global tensors first, then per layer
    for (int l = 0; l < (pass == 0 ? 1 : spec.n_layer); ++l) {
      for (const TensorSpec& ts : tensor_specs()) {
        if (!(ts.arch_mask & bit) || ts.per_layer != (pass == 1)) continue;
        if (std::string(ts.name) == "output.weight" && spec.tied_embeddings) continue;
        char name_buf[128];
        std::snprintf(name_buf, sizeof name_buf, ts.name, l);
        const std::string name = name_buf;
        std::vector<int64_t> ne;
        for (Dim d : ts.shape) ne.push_back(dim_value(d, hp));
        const auto over = spec.type_overrides.find(name);
        const TensorType type = over != spec.type_overrides.end() ? over->second : tensor_type_for(spec, name, ne[0]);
        static const std::set<TensorType> writable = {TensorType::f32,  TensorType::f16,  TensorType::bf16, TensorType::q8_0,
                                                      TensorType::q4_0, TensorType::q4_1, TensorType::q5_0, TensorType::q5_1,
                                                      TensorType::q4_k, TensorType::q5_k, TensorType::q6_k};
        if (!writable.count(type) || ne[0] % type_traits(type).block_size != 0) {
          return spec_error("cannot write " + name + " as " + type_name(type));
        }
        const uint64_t seed = hash_name(name, spec.seed);
        const bool is_norm = name.find("norm") != std::string::npos;
        const bool is_bias = name.find(".bias") != std::string::npos;
        const bool is_router = name.find("ffn_gate_inp") != std::string::npos;
        w.add_tensor_lazy(name, type, ne, [ne, type, seed, is_norm, is_bias, is_router]() {
          Rng rng(seed);
          int64_t rows = 1;
          for (size_t d = 1; d < ne.size(); ++d) rows *= ne[d];
          const int64_t cols = ne[0];
          // Uniform weights with variance 1/cols keep activations O(1) through the layers;
          // routers are scaled up so expert choice is decisive; norms are near 1.
          const float amp = std::sqrt(3.0f / static_cast<float>(cols)) * (is_router ? 4.0f : 1.0f);
          std::vector<uint8_t> out(row_size(type, cols) * static_cast<size_t>(rows));
          std::vector<float> row(static_cast<size_t>(cols));
          for (int64_t r = 0; r < rows; ++r) {
            for (auto& x : row) {
              const float u = rng.uniform() * 2.0f - 1.0f;
              x = is_norm ? 1.0f + 0.2f * u : is_bias ? 0.1f * u : amp * u;
            }
            quantize_row(type, row.data(), out.data() + static_cast<size_t>(r) * row_size(type, cols), cols);
          }
          return out;
        });
      }
    }
  }
  return w.write_file(path);
}

}  // namespace local_backend
