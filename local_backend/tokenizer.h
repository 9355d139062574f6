#pragma once
// Byte-level BPE tokenizer read from GGUF metadata (tokenizer.ggml.model = "gpt2"), with the
// pre-tokenizer named by tokenizer.ggml.pre, special tokens matched before BPE, and the
// ChatML chat template of Qwen models built in.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/chat.h"
#include "core/result.h"
#include "local_backend/gguf.h"

namespace local_backend {

enum class TokenType : int32_t { undefined = 0, normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };
enum class PreTokenizer { qwen2, llama3, gpt2 };
// gpt2: byte-level BPE with merge ranks; spm: SentencePiece-style BPE by token score with
// byte fallback (<0xXX> tokens), as llama.cpp implements tokenizer.ggml.model = "llama".
enum class VocabType { gpt2, spm };

class Tokenizer {
 public:
  static core::Result<std::unique_ptr<Tokenizer>> from_gguf(const gguf::File& f);

  // parse_special: match control tokens (e.g. <|im_start|>) in the text. User-defined added
  // tokens (e.g. <think>) are always matched, as Hugging Face tokenizers do.
  std::vector<int32_t> encode(std::string_view text, bool parse_special) const;
  // Bytes of a token as it appears in generated text: control tokens give "" (they end or
  // structure a turn), other tokens their raw bytes (possibly part of a UTF-8 character).
  std::string token_bytes(int32_t id) const;
  std::string decode(const std::vector<int32_t>& ids) const;

  // Pre-tokenizer split of a plain-text span (exposed for tests).
  std::vector<std::string_view> pre_tokenize(std::string_view text) const;

  VocabType vocab_type() const { return vocab_type_; }
  int32_t n_vocab() const { return static_cast<int32_t>(tokens_.size()); }
  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }
  bool add_bos() const { return add_bos_; }
  bool is_end_of_generation(int32_t id) const;
  int32_t find(std::string_view token_text) const;  // -1 if absent
  TokenType type(int32_t id) const { return types_[static_cast<size_t>(id)]; }

  // ChatML: <|im_start|>{role}\n{content}<|im_end|>\n per message, then
  // <|im_start|>assistant\n. Message content is tokenized without control-token parsing so
  // text in a message cannot forge turn markers. Vocabularies without ChatML tokens but with
  // [INST] in their chat template (Mistral/Mixtral) get the Mistral template:
  // <s>[INST] {system}\n\n{user} [/INST]{assistant}</s>[INST] {user} [/INST]
  core::Result<std::vector<int32_t>> apply_chat_template(const std::vector<core::ChatMessage>& messages) const;

 private:
  Tokenizer() = default;
  void bpe(std::string_view piece, std::vector<int32_t>* out) const;
  void encode_plain(std::string_view text, bool after_special, std::vector<int32_t>* out) const;
  void spm(std::string_view text, std::vector<int32_t>* out) const;
  core::Result<std::vector<int32_t>> apply_mistral_template(const std::vector<core::ChatMessage>& messages) const;

  std::vector<std::string> tokens_;
  std::vector<TokenType> types_;
  std::unordered_map<std::string, int32_t> token_to_id_;
  std::unordered_map<std::string, int32_t> merge_rank_;  // "left right" -> rank
  std::vector<int32_t> specials_;  // control + user-defined, longest first
  std::vector<int32_t> eog_;
  PreTokenizer pre_ = PreTokenizer::qwen2;
  VocabType vocab_type_ = VocabType::gpt2;
  std::vector<float> scores_;          // spm
  int32_t byte_token_[256] = {};       // spm: <0xXX> tokens (or unk)
  bool add_space_prefix_ = true;       // spm
  bool mistral_template_ = false;
  int32_t bos_ = -1, eos_ = -1;
  bool add_bos_ = false;
  int32_t im_start_ = -1, im_end_ = -1;
};

}  // namespace local_backend
