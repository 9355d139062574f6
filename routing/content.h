#pragma once
// What a prompt is written in and whether it is code: the features behind the content-aware route
// match conditions (`match.script`, `match.code`; policies/README.md). One pass over the first
// kContentScanBytes of the prompt's system and user text; nothing here allocates.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/chat.h"

namespace routing {

// The writing systems a policy can name. Letters of other scripts (Georgian, Ethiopic, ...) are
// not counted at all; digits, punctuation, symbols, emoji, combining marks and spaces are not letters.
enum class Script : uint8_t { cjk, latin, cyrillic, greek, arabic, hebrew, devanagari, thai };
inline constexpr size_t kScriptCount = 8;
// "cjk", "latin", ... (the policy spelling); nullopt for any other name.
std::optional<Script> script_from_name(std::string_view name);
const char* to_string(Script s);
std::span<const std::string_view> script_names();

// The scan stops after this many bytes of prompt text (a longer prompt is judged on its start).
inline constexpr size_t kContentScanBytes = 64 * 1024;

struct ContentFeatures {
  uint32_t letters = 0;  // letters of the scripts above
  std::array<uint32_t, kScriptCount> script_letters{};
  bool code = false;
  bool fenced = false;        // a line opening a ``` block was seen
  uint32_t code_lines = 0;    // lines that look like source code
  uint32_t text_lines = 0;    // non-blank lines
  size_t scanned_bytes = 0;
  bool truncated = false;     // the prompt was longer than kContentScanBytes

  // The script's share of the letters; 0 when there are none.
  double share(Script s) const {
    return letters == 0 ? 0.0 : static_cast<double>(script_letters[static_cast<size_t>(s)]) / letters;
  }
};

// Feeds text piece by piece (each piece whole code points) and classifies it.
class ContentScanner {
 public:
  explicit ContentScanner(size_t max_bytes = kContentScanBytes) : budget_(max_bytes) {}
  // False once the byte budget is spent: the rest of the prompt is not looked at (`truncated`).
  bool feed(std::string_view text);
  ContentFeatures finish();

 private:
  void letter_of(uint32_t cp);
  void end_line();
  void line_byte(unsigned char c);

  size_t budget_;
  ContentFeatures f_;
  // The current line: its first bytes (for keyword prefixes), its last non-blank byte, signals.
  std::array<char, 16> head_{};
  size_t head_len_ = 0;
  size_t indent_ = 0;
  bool in_indent_ = true;
  char last_ = 0;  // the line's last non-blank byte (0: blank so far)
  bool operator_seen_ = false;  // "=>", "->", "::", "&&", "||", "==", "!=" inside the line
};

// The features of a request's system and user messages (assistant and tool turns are the
// conversation's past, not what the client is asking now).
ContentFeatures scan_messages(std::span<const core::ChatMessage> messages, size_t max_bytes = kContentScanBytes);

// The code rule, on counted lines: a ``` fence, or at least 3 code-like lines making up at least a
// quarter of the non-blank lines.
inline bool looks_like_code(bool fenced, uint32_t code_lines, uint32_t text_lines) {
  return fenced || (code_lines >= 3 && code_lines * 4 >= text_lines);
}

}  // namespace routing
