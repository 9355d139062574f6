#include "local_backend/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <queue>

#include "local_backend/unicode.h"

namespace local_backend {
namespace {

core::Error tok_error(std::string msg) {
  return core::make_error(core::ErrorKind::internal, "tokenizer: " + std::move(msg), core::ErrorSource::local,
                          "tokenizer_invalid");
}

struct Cp {
  uint32_t cp;
  size_t off, len;
};

std::vector<Cp> decode_all(std::string_view s) {
  std::vector<Cp> v;
  v.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t len = 1;
    const uint32_t cp = unicode::decode_utf8(s, i, &len);
    v.push_back({cp, i, len});
    i += len;
  }
  return v;
}

// The Qwen2 / Llama-3 pre-tokenizer regex, written out by hand (as llama.cpp does):
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// The case-insensitive contractions are ASCII-only, as in the JS and llama.cpp versions.
std::vector<std::string_view> split_llama3_style(std::string_view text, int max_digits) {
  const auto cps = decode_all(text);
  const size_t n = cps.size();
  std::vector<std::string_view> out;
  auto cpt = [&](size_t i) -> uint32_t { return i < n ? cps[i].cp : unicode::kInvalid; };
  auto in = [&](size_t i) { return i < n; };
  auto letter = [&](size_t i) { return i < n && unicode::is_letter(cps[i].cp); };
  auto number = [&](size_t i) { return i < n && unicode::is_number(cps[i].cp); };
  auto space = [&](size_t i) { return i < n && unicode::is_whitespace(cps[i].cp); };
  auto lower = [](uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; };
  size_t start = 0, pos = 0;
  auto emit = [&](size_t end) {
    const size_t b = cps[start].off;
    const size_t e = end < n ? cps[end].off : text.size();
    out.push_back(text.substr(b, e - b));
    start = pos = end;
  };
  while (pos < n) {
    const uint32_t c = cpt(pos);
    // (?i:'s|'t|'re|'ve|'m|'ll|'d)
    if (c == '\'' && in(pos + 1)) {
      const uint32_t c1 = lower(cpt(pos + 1));
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
        emit(pos + 2);
        continue;
      }
      if (in(pos + 2)) {
        const uint32_t c2 = lower(cpt(pos + 2));
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
          emit(pos + 3);
          continue;
        }
      }
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!(c == '\r' || c == '\n' || number(pos))) {
      if (letter(pos) || letter(pos + 1)) {
        size_t p = pos + 1;
        while (letter(p)) ++p;
        emit(p);
        continue;
      }
    }
    // \p{N}{1,max_digits}
    if (number(pos)) {
      size_t p = pos;
      while (number(p) && static_cast<int>(p - pos) < max_digits) ++p;
      emit(p);
      continue;
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    {
      const size_t q = c == ' ' ? pos + 1 : pos;
      if (in(q) && !(space(q) || letter(q) || number(q))) {
        size_t p = q;
        while (in(p) && !(space(p) || letter(p) || number(p))) ++p;
        while (cpt(p) == '\r' || cpt(p) == '\n') ++p;
        emit(p);
        continue;
      }
    }
    // \s*[\r\n]+ | \s+(?!\S) | \s+
    size_t nws = 0, last_rn = 0;
    while (space(pos + nws)) {
      const uint32_t w = cpt(pos + nws);
      if (w == '\r' || w == '\n') last_rn = pos + nws + 1;
      ++nws;
    }
    if (last_rn > 0) {
      emit(last_rn);
      continue;
    }
    if (nws > 1 && in(pos + nws)) {
      emit(pos + nws - 1);
      continue;
    }
    if (nws > 0) {
      emit(pos + nws);
      continue;
    }
    emit(pos + 1);  // no rule matched (e.g. an invalid byte): a piece of its own
  }
  return out;
}

// GPT-2's original regex: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
std::vector<std::string_view> split_gpt2(std::string_view text) {
  const auto cps = decode_all(text);
  const size_t n = cps.size();
  std::vector<std::string_view> out;
  auto cpt = [&](size_t i) -> uint32_t { return i < n ? cps[i].cp : unicode::kInvalid; };
  auto letter = [&](size_t i) { return i < n && unicode::is_letter(cps[i].cp); };
  auto number = [&](size_t i) { return i < n && unicode::is_number(cps[i].cp); };
  auto space = [&](size_t i) { return i < n && unicode::is_whitespace(cps[i].cp); };
  size_t start = 0, pos = 0;
  auto emit = [&](size_t end) {
    const size_t b = cps[start].off;
    const size_t e = end < n ? cps[end].off : text.size();
    out.push_back(text.substr(b, e - b));
    start = pos = end;
  };
  while (pos < n) {
    const uint32_t c = cpt(pos);
    if (c == '\'' && pos + 1 < n) {
      const uint32_t c1 = cpt(pos + 1);
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') { emit(pos + 2); continue; }
      if (pos + 2 < n) {
        const uint32_t c2 = cpt(pos + 2);
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) { emit(pos + 3); continue; }
      }
    }
    const size_t q = c == ' ' ? pos + 1 : pos;
    if (letter(q)) { size_t p = q; while (letter(p)) ++p; emit(p); continue; }
    if (number(q)) { size_t p = q; while (number(p)) ++p; emit(p); continue; }
    if (q < n && !(space(q) || letter(q) || number(q))) {
      size_t p = q;
      while (p < n && !(space(p) || letter(p) || number(p))) ++p;
      emit(p);
      continue;
    }
    size_t nws = 0;
    while (space(pos + nws)) ++nws;
    if (nws > 1 && pos + nws < n) { emit(pos + nws - 1); continue; }
    if (nws > 0) { emit(pos + nws); continue; }
    emit(pos + 1);
  }
  return out;
}

}  // namespace

core::Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const gguf::File& f) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  auto model = f.get_string("tokenizer.ggml.model");
  if (!model.ok()) return tok_error(model.error().message);
  if (*model == "llama") {
    t->vocab_type_ = VocabType::spm;
  } else if (*model != "gpt2") {
    return tok_error("tokenizer.ggml.model '" + std::string(*model) +
                     "' is not supported (byte-level BPE 'gpt2' and SentencePiece-style 'llama')");
  }
  if (t->vocab_type_ == VocabType::spm) {
    // no pre-tokenizer
  } else if (const gguf::Value* pre = f.find("tokenizer.ggml.pre")) {
    if (pre->type != gguf::ValueType::string) return tok_error("tokenizer.ggml.pre must be a string");
    if (pre->str == "qwen2" || pre->str == "deepseek-r1-qwen") t->pre_ = PreTokenizer::qwen2;
    else if (pre->str == "llama3" || pre->str == "llama-bpe" || pre->str == "smaug-bpe") t->pre_ = PreTokenizer::llama3;
    else if (pre->str == "default" || pre->str == "gpt-2" || pre->str == "gpt2") t->pre_ = PreTokenizer::gpt2;
    else return tok_error("pre-tokenizer '" + std::string(pre->str) + "' is not supported (qwen2, llama3, gpt2)");
  } else {
    t->pre_ = PreTokenizer::gpt2;
  }
  const gguf::Value* toks = f.find("tokenizer.ggml.tokens");
  if (!toks || toks->type != gguf::ValueType::array || toks->elem_type != gguf::ValueType::string) {
    return tok_error("tokenizer.ggml.tokens (array of strings) is missing");
  }
  const size_t n = toks->strings.size();
  if (n == 0 || n > (1u << 24)) return tok_error("tokenizer.ggml.tokens has " + std::to_string(n) + " entries");
  t->tokens_.reserve(n);
  t->types_.assign(n, TokenType::normal);
  t->token_to_id_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    t->tokens_.emplace_back(toks->strings[i]);
    t->token_to_id_.emplace(t->tokens_.back(), static_cast<int32_t>(i));  // first occurrence wins
  }
  if (const gguf::Value* tt = f.find("tokenizer.ggml.token_type")) {
    if (tt->type != gguf::ValueType::array || tt->count != n || !tt->array_data) {
      return tok_error("tokenizer.ggml.token_type must be an integer array of " + std::to_string(n) + " entries");
    }
    for (size_t i = 0; i < n; ++i) {
      const int64_t v = tt->array_int(i);
      if (v < 0 || v > 6) return tok_error("token " + std::to_string(i) + " has invalid type " + std::to_string(v));
      t->types_[i] = static_cast<TokenType>(v);
    }
  }
  if (t->vocab_type_ == VocabType::gpt2) {
    const gguf::Value* merges = f.find("tokenizer.ggml.merges");
    if (!merges || merges->type != gguf::ValueType::array || merges->elem_type != gguf::ValueType::string) {
      return tok_error("tokenizer.ggml.merges (array of strings) is missing");
    }
    t->merge_rank_.reserve(merges->strings.size());
    for (size_t i = 0; i < merges->strings.size(); ++i) {
      const std::string_view m = merges->strings[i];
      const size_t sp = m.find(' ', 1);
      if (sp == std::string_view::npos || sp + 1 >= m.size()) {
        return tok_error("merge " + std::to_string(i) + " '" + std::string(m) + "' is not 'left right'");
      }
      t->merge_rank_.emplace(std::string(m), static_cast<int32_t>(i));
    }
    // Every byte must be encodable.
    for (int b = 0; b < 256; ++b) {
      if (!t->token_to_id_.count(unicode::byte_to_token_text(static_cast<uint8_t>(b)))) {
        return tok_error("vocabulary lacks the byte-level token for byte " + std::to_string(b));
      }
    }
  } else {
    t->scores_.assign(n, 0.0f);
    if (const gguf::Value* sc = f.find("tokenizer.ggml.scores")) {
      if (sc->type != gguf::ValueType::array || sc->count != n || !sc->array_data ||
          (sc->elem_type != gguf::ValueType::f32 && sc->elem_type != gguf::ValueType::f64)) {
        return tok_error("tokenizer.ggml.scores must be a float array of " + std::to_string(n) + " entries");
      }
      for (size_t i = 0; i < n; ++i) t->scores_[i] = static_cast<float>(sc->array_float(i));
    }
    int32_t unk = -1;
    if (f.find("tokenizer.ggml.unknown_token_id")) {
      auto u = f.get_u32("tokenizer.ggml.unknown_token_id");
      if (!u.ok() || *u >= n) return tok_error("tokenizer.ggml.unknown_token_id is invalid");
      unk = static_cast<int32_t>(*u);
    }
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      auto it = t->token_to_id_.find(name);
      t->byte_token_[b] = it != t->token_to_id_.end() ? it->second : unk;
      if (t->byte_token_[b] < 0) {
        return tok_error(std::string("vocabulary lacks the byte token ") + name + " and an unknown token");
      }
    }
    if (f.find("tokenizer.ggml.add_space_prefix")) {
      auto v = f.get_bool("tokenizer.ggml.add_space_prefix");
      if (!v.ok()) return tok_error(v.error().message);
      t->add_space_prefix_ = *v;
    }
    t->add_bos_ = true;  // llama.cpp's default for SentencePiece vocabularies
  }
  auto opt_id = [&](const char* key, int32_t* out) -> core::Status {
    if (!f.find(key)) return core::ok_status();
    auto v = f.get_u32(key);
    if (!v.ok()) return tok_error(v.error().message);
    if (*v >= n) return tok_error(std::string(key) + " = " + std::to_string(*v) + " is out of range");
    *out = static_cast<int32_t>(*v);
    return core::ok_status();
  };
  if (auto s = opt_id("tokenizer.ggml.bos_token_id", &t->bos_); !s.ok()) return s.error();
  if (auto s = opt_id("tokenizer.ggml.eos_token_id", &t->eos_); !s.ok()) return s.error();
  if (f.find("tokenizer.ggml.add_bos_token")) {
    auto v = f.get_bool("tokenizer.ggml.add_bos_token");
    if (!v.ok()) return tok_error(v.error().message);
    t->add_bos_ = *v;
  }
  if (t->bos_ < 0) t->add_bos_ = false;
  for (size_t i = 0; i < n; ++i) {
    if ((t->types_[i] == TokenType::control || t->types_[i] == TokenType::user_defined) && !t->tokens_[i].empty()) {
      t->specials_.push_back(static_cast<int32_t>(i));
    }
  }
  std::stable_sort(t->specials_.begin(), t->specials_.end(), [&](int32_t a, int32_t b) {
    return t->tokens_[static_cast<size_t>(a)].size() > t->tokens_[static_cast<size_t>(b)].size();
  });
  t->im_start_ = t->find("<|im_start|>");
  if (const gguf::Value* tmpl = f.find("tokenizer.chat_template");
      tmpl && tmpl->type == gguf::ValueType::string && tmpl->str.find("[INST]") != std::string_view::npos) {
    t->mistral_template_ = true;
  }
  t->im_end_ = t->find("<|im_end|>");
  if (t->eos_ >= 0) t->eog_.push_back(t->eos_);
  for (const char* s : {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "</s>"}) {
    const int32_t id = t->find(s);
    if (id >= 0 && t->types_[static_cast<size_t>(id)] == TokenType::control &&
        std::find(t->eog_.begin(), t->eog_.end(), id) == t->eog_.end()) {
      t->eog_.push_back(id);
    }
  }
  if (t->eog_.empty()) return tok_error("no end-of-generation token (eos_token_id, <|im_end|> or <|endoftext|>)");
  return t;
}

int32_t Tokenizer::find(std::string_view s) const {
  auto it = token_to_id_.find(std::string(s));
  return it == token_to_id_.end() ? -1 : it->second;
}

bool Tokenizer::is_end_of_generation(int32_t id) const {
  return std::find(eog_.begin(), eog_.end(), id) != eog_.end();
}

std::vector<std::string_view> Tokenizer::pre_tokenize(std::string_view text) const {
  switch (pre_) {
    case PreTokenizer::qwen2: return split_llama3_style(text, 1);
    case PreTokenizer::llama3: return split_llama3_style(text, 3);
    case PreTokenizer::gpt2: break;
  }
  return split_gpt2(text);
}

void Tokenizer::bpe(std::string_view piece, std::vector<int32_t>* out) const {
  // Map bytes to their byte-level symbols; one symbol per byte to start with.
  std::string mapped;
  mapped.reserve(piece.size() * 2);
  for (char ch : piece) mapped += unicode::byte_to_token_text(static_cast<uint8_t>(ch));
  if (auto it = token_to_id_.find(mapped); it != token_to_id_.end() && piece.size() == 1) {
    out->push_back(it->second);
    return;
  }
  struct Sym {
    size_t off, len;
    int prev, next;
  };
  std::vector<Sym> sym;
  for (size_t i = 0; i < mapped.size();) {
    size_t len = 1;
    unicode::decode_utf8(mapped, i, &len);
    sym.push_back({i, len, static_cast<int>(sym.size()) - 1, static_cast<int>(sym.size()) + 1});
    i += len;
  }
  sym.back().next = -1;
  struct Cand {
    int32_t rank;
    int left;
    size_t size;  // combined text size when queued, to detect stale entries
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> pq;
  std::string key;
  auto try_add = [&](int l) {
    if (l < 0) return;
    const int r = sym[static_cast<size_t>(l)].next;
    if (r < 0) return;
    const Sym& a = sym[static_cast<size_t>(l)];
    const Sym& b = sym[static_cast<size_t>(r)];
    key.assign(mapped, a.off, a.len);
    key += ' ';
    key.append(mapped, b.off, b.len);
    auto it = merge_rank_.find(key);
    if (it != merge_rank_.end()) pq.push({it->second, l, a.len + b.len});
  };
  for (int i = 0; i + 1 < static_cast<int>(sym.size()); ++i) try_add(i);
  while (!pq.empty()) {
    const Cand c = pq.top();
    pq.pop();
    Sym& a = sym[static_cast<size_t>(c.left)];
    if (a.len == 0 || a.next < 0) continue;
    Sym& b = sym[static_cast<size_t>(a.next)];
    if (a.len + b.len != c.size) continue;  // stale: one side changed since queued
    a.len += b.len;
    b.len = 0;
    a.next = b.next;
    if (a.next >= 0) sym[static_cast<size_t>(a.next)].prev = c.left;
    try_add(a.prev);
    try_add(c.left);
  }
  for (int i = 0; i >= 0; i = sym[static_cast<size_t>(i)].next) {
    const Sym& s = sym[static_cast<size_t>(i)];
    auto it = token_to_id_.find(mapped.substr(s.off, s.len));
    if (it != token_to_id_.end()) {
      out->push_back(it->second);
    } else {
      // A merge result missing from the vocabulary: fall back to the byte tokens.
      for (size_t k = s.off; k < s.off + s.len;) {
        size_t len = 1;
        const uint32_t cp = unicode::decode_utf8(mapped, k, &len);
        const int byte = unicode::token_codepoint_to_byte(cp);
        out->push_back(token_to_id_.at(unicode::byte_to_token_text(static_cast<uint8_t>(byte < 0 ? 0 : byte))));
        k += len;
      }
    }
  }
}

void Tokenizer::encode_plain(std::string_view text, bool after_special, std::vector<int32_t>* out) const {
  if (vocab_type_ == VocabType::spm) {
    if (text.empty()) return;
    // As llama.cpp: a space is prefixed to text at the start or after a special token, and
    // spaces become U+2581 before the merges.
    std::string escaped;
    if (add_space_prefix_ && after_special) escaped = "\xE2\x96\x81";
    for (char c : text) {
      if (c == ' ') escaped += "\xE2\x96\x81";
      else escaped += c;
    }
    spm(escaped, out);
    return;
  }
  for (std::string_view piece : pre_tokenize(text)) bpe(piece, out);
}

void Tokenizer::spm(std::string_view text, std::vector<int32_t>* out) const {
  struct Sym {
    size_t off, len;
    int prev, next;
  };
  std::vector<Sym> sym;
  for (size_t i = 0; i < text.size();) {
    size_t len = 1;
    unicode::decode_utf8(text, i, &len);
    sym.push_back({i, len, static_cast<int>(sym.size()) - 1, static_cast<int>(sym.size()) + 1});
    i += len;
  }
  if (sym.empty()) return;
  sym.back().next = -1;
  struct Bigram {
    int left, right;
    float score;
    size_t size;
  };
  // Highest score first; ties: leftmost first.
  auto cmp = [](const Bigram& a, const Bigram& b) { return a.score < b.score || (a.score == b.score && a.left > b.left); };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(cmp)> pq(cmp);
  auto try_add = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    const std::string s(text.substr(sym[static_cast<size_t>(l)].off, sym[static_cast<size_t>(l)].len + sym[static_cast<size_t>(r)].len));
    auto it = token_to_id_.find(s);
    if (it == token_to_id_.end()) return;
    pq.push({l, r, scores_[static_cast<size_t>(it->second)], s.size()});
  };
  for (int i = 1; i < static_cast<int>(sym.size()); ++i) try_add(i - 1, i);
  while (!pq.empty()) {
    const Bigram b = pq.top();
    pq.pop();
    Sym& l = sym[static_cast<size_t>(b.left)];
    Sym& r = sym[static_cast<size_t>(b.right)];
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.size) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[static_cast<size_t>(r.next)].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  for (int i = 0; i != -1; i = sym[static_cast<size_t>(i)].next) {
    const Sym& s = sym[static_cast<size_t>(i)];
    const std::string piece(text.substr(s.off, s.len));
    if (auto it = token_to_id_.find(piece); it != token_to_id_.end()) {
      out->push_back(it->second);
    } else {
      // Merges only create in-vocabulary symbols, so this is a single character: bytes.
      for (char c : piece) out->push_back(byte_token_[static_cast<uint8_t>(c)]);
    }
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  std::vector<int32_t> out;
  size_t plain_start = 0, i = 0;
  bool after_special = false;
  while (i < text.size()) {
    int32_t match = -1;
    for (int32_t id : specials_) {
      const std::string& s = tokens_[static_cast<size_t>(id)];
      if (!parse_special && types_[static_cast<size_t>(id)] == TokenType::control) continue;
      if (s[0] == text[i] && text.compare(i, s.size(), s) == 0) {
        match = id;
        break;
      }
    }
    if (match < 0) {
      ++i;
      continue;
    }
    encode_plain(text.substr(plain_start, i - plain_start), plain_start == 0 || after_special, &out);
    after_special = true;
    out.push_back(match);
    i += tokens_[static_cast<size_t>(match)].size();
    plain_start = i;
  }
  encode_plain(text.substr(plain_start), plain_start == 0 || after_special, &out);
  return out;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= n_vocab()) return {};
  const TokenType t = types_[static_cast<size_t>(id)];
  const std::string& s = tokens_[static_cast<size_t>(id)];
  if (t == TokenType::control || t == TokenType::unused) return {};
  if (t == TokenType::user_defined) return s;  // stored as literal text
  std::string out;
  if (vocab_type_ == VocabType::spm) {
    if (t == TokenType::byte && s.size() == 6 && s.compare(0, 3, "<0x") == 0) {
      return std::string(1, static_cast<char>(std::strtol(s.substr(3, 2).c_str(), nullptr, 16)));
    }
    for (size_t i = 0; i < s.size(); ++i) {
      if (s.compare(i, 3, "\xE2\x96\x81") == 0) {
        out += ' ';
        i += 2;
      } else {
        out += s[i];
      }
    }
    return out;
  }
  for (size_t i = 0; i < s.size();) {
    size_t len = 1;
    const uint32_t cp = unicode::decode_utf8(s, i, &len);
    const int b = unicode::token_codepoint_to_byte(cp);
    if (b >= 0) out.push_back(static_cast<char>(b));
    else out.append(s, i, len);
    i += len;
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += token_bytes(id);
  return out;
}

core::Result<std::vector<int32_t>> Tokenizer::apply_mistral_template(const std::vector<core::ChatMessage>& messages) const {
  // Mistral / Mixtral instruct: system text is prefixed to the first user turn; tool results
  // are given to the model as user turns.
  std::vector<int32_t> out;
  if (bos_ >= 0) out.push_back(bos_);
  std::string system;
  std::string user;
  bool have_user = false;
  auto flush_user = [&]() {
    if (!have_user) return;
    std::string text = "[INST] ";
    if (!system.empty()) {
      text += system + "\n\n";
      system.clear();
    }
    text += user + " [/INST]";
    auto v = encode(text, false);
    out.insert(out.end(), v.begin(), v.end());
    user.clear();
    have_user = false;
  };
  for (const auto& m : messages) {
    if (m.role == "system" || m.role == "developer") {
      system += (system.empty() ? "" : "\n\n") + m.content;
    } else if (m.role == "user" || m.role == "tool") {
      user += (have_user ? "\n\n" : "") + m.content;
      have_user = true;
    } else if (m.role == "assistant") {
      flush_user();
      auto v = encode(m.content, false);
      out.insert(out.end(), v.begin(), v.end());
      if (eos_ >= 0) out.push_back(eos_);
    } else {
      return core::make_error(core::ErrorKind::bad_request, "unsupported message role '" + m.role + "'",
                              core::ErrorSource::local, "invalid_role", "messages");
    }
  }
  if (!have_user && !system.empty()) have_user = true;  // a lone system prompt still gets a turn
  flush_user();
  return out;
}

core::Result<std::vector<int32_t>> Tokenizer::apply_chat_template(const std::vector<core::ChatMessage>& messages) const {
  if ((im_start_ < 0 || im_end_ < 0) && (mistral_template_ || vocab_type_ == VocabType::spm)) {
    return apply_mistral_template(messages);
  }
  if (im_start_ < 0 || im_end_ < 0) {
    return core::make_error(core::ErrorKind::bad_request, "the model's vocabulary has no ChatML tokens (<|im_start|>, <|im_end|>)",
                            core::ErrorSource::local, "chat_template");
  }
  std::vector<int32_t> out;
  if (add_bos_) out.push_back(bos_);
  // The rendered text between control tokens is tokenized as a whole (as Hugging Face
  // tokenizes a rendered template), but never parsed for control tokens.
  std::string pending;
  auto text = [&](std::string_view s) { pending += s; };
  auto control = [&](int32_t id) {
    auto v = encode(pending, false);
    out.insert(out.end(), v.begin(), v.end());
    pending.clear();
    out.push_back(id);
  };
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    std::string role = m.role;
    if (role == "developer") role = "system";
    if (role != "system" && role != "user" && role != "assistant" && role != "tool") {
      return core::make_error(core::ErrorKind::bad_request, "unsupported message role '" + m.role + "'",
                              core::ErrorSource::local, "invalid_role", "messages");
    }
    if (role == "tool") {
      // Qwen's template: consecutive tool results share one user turn, each wrapped in
      // <tool_response> tags.
      const bool first = i == 0 || messages[i - 1].role != "tool";
      const bool last = i + 1 == messages.size() || messages[i + 1].role != "tool";
      if (first) {
        control(im_start_);
        text("user");
      }
      text("\n<tool_response>\n");
      text(m.content);
      text("\n</tool_response>");
      if (last) {
        control(im_end_);
        text("\n");
      }
      continue;
    }
    control(im_start_);
    text(role + "\n");
    text(m.content);
    if (role == "assistant" && !m.tool_calls_json.empty()) {
      text("\n<tool_call>\n");
      text(m.tool_calls_json);
      text("\n</tool_call>");
    }
    control(im_end_);
    text("\n");
  }
  control(im_start_);
  text("assistant\n");
  control(-1);
  out.pop_back();  // the -1 sentinel only flushed the pending text
  return out;
}

}  // namespace local_backend
