#pragma once
// The little Unicode the tokenizer needs: UTF-8 decoding, the categories used by the
// pre-tokenizer regexes (\p{L}, \p{N}, \s as JavaScript defines them), and GPT-2's
// byte-to-unicode map of byte-level BPE.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace local_backend::unicode {

struct CodepointRange {
  uint32_t first, last;
};

bool is_letter(uint32_t cp);
bool is_number(uint32_t cp);
bool is_whitespace(uint32_t cp);

inline constexpr uint32_t kInvalid = 0xFFFFFFFFu;  // an invalid byte in the input

// Decodes one code point at s[i]; sets *len. Invalid or truncated sequences decode to
// kInvalid with *len = 1, so every byte is covered exactly once.
uint32_t decode_utf8(std::string_view s, size_t i, size_t* len);
void append_utf8(uint32_t cp, std::string* out);
// True if s is complete, valid UTF-8 (used to hold back partial characters while streaming).
size_t valid_utf8_prefix(std::string_view s);

// GPT-2 byte-level BPE: each byte has a printable code point; tokens are stored that way.
const std::string& byte_to_token_text(uint8_t b);
// Inverse: code point -> byte, or -1 if the code point is not a byte-level symbol.
int token_codepoint_to_byte(uint32_t cp);

}  // namespace local_backend::unicode
