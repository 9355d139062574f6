// libFuzzer target for the GGUF reader and everything that interprets a parsed file at load
// time: hyper-parameters, tensor binding with shape checks, and the tokenizer loader. Any input
// must give either a loaded model or a clear error -- never a crash, a read out of bounds
// (AddressSanitizer) or undefined behaviour (UBSan).
//
// Build with -DGGUF_FUZZ_SEEDS to get a seed-corpus writer instead: gguf_fuzz_seeds DIR.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "local_backend/gguf.h"
#include "local_backend/model.h"
#include "local_backend/test_model.h"
#include "local_backend/tokenizer.h"

#ifndef GGUF_FUZZ_SEEDS

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace local_backend;
  auto f = gguf::File::parse(data, size);
  if (!f.ok()) {
    if (f.error().message.empty()) __builtin_trap();  // every error must say what is wrong
    return 0;
  }
  // Touch every metadata value and tensor view the parser handed out.
  uint64_t sink = 0;
  for (const auto& [k, v] : (*f)->metadata()) {
    sink += k.size() + v.str.size();
    for (auto s : v.strings) sink += s.size();
    if (v.type == gguf::ValueType::array && v.array_data) {
      for (uint64_t i = 0; i < v.count && i < 64; ++i) sink += static_cast<uint64_t>(v.array_int(i));
    }
  }
  for (const auto& t : (*f)->tensors()) {
    if (t.n_bytes) sink += t.data[0] + t.data[t.n_bytes - 1];
  }
  auto tok = Tokenizer::from_gguf(**f);
  if (tok.ok()) {
    auto ids = (*tok)->encode("Hello, world! <|im_start|>user\n你好 123", true);
    sink += (*tok)->decode(ids).size();
  }
  auto m = Model::from_file(std::move(*f));
  if (m.ok()) sink += static_cast<uint64_t>((*m)->hparams().n_vocab);
  if (sink == 0xFFFFFFFFFFFFFFFFull) std::puts("");
  return 0;
}

#else

int main(int argc, char** argv) {
  using namespace local_backend;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  VocabSpec vocab = synthetic_vocab(20);
  int n = 0;
  for (const char* arch : {"qwen3moe", "qwen2moe", "llama"}) {
    for (const char* type : {"f32", "f16", "bf16", "q8_0", "q4_k", "q6_k"}) {
      TestModelSpec s;
      s.arch = arch;
      s.type = type;
      s.n_layer = 1;
      s.n_embd = 32;
      s.n_head = 4;
      s.n_head_kv = 2;
      s.head_dim = 8;
      s.n_expert = 2;
      s.n_expert_used = 1;
      s.n_ff_exp = 32;
      s.n_ff_shexp = 32;
      const std::string path = dir + "/seed_" + arch + "_" + type + ".gguf";
      auto st = write_test_model(s, vocab, path);
      if (!st.ok()) {
        std::fprintf(stderr, "%s\n", st.error().message.c_str());
        return 1;
      }
      ++n;
    }
  }
  // Small files exercising every metadata value type.
  gguf::Writer w;
  w.set_u8("a", 1);
  w.set_i8("b", -1);
  w.set_u16("c", 2);
  w.set_i16("d", -2);
  w.set_u32("general.alignment", 64);
  w.set_i32("e", -3);
  w.set_u64("f", 4);
  w.set_i64("g", -4);
  w.set_f32("h", 0.5f);
  w.set_f64("i", 0.25);
  w.set_bool("j", true);
  w.set_string("k", "text");
  w.set_string_array("l", {"x", "yy"});
  w.set_i32_array("m", {1, 2, 3});
  w.add_tensor("t", TensorType::q8_0, {32, 2}, std::vector<uint8_t>(68, 1));
  FILE* f = std::fopen((dir + "/seed_values.gguf").c_str(), "wb");
  auto bytes = w.serialize();
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  std::fprintf(stderr, "wrote %d seed models and 1 value file to %s\n", n, dir.c_str());
  return 0;
}

#endif
