#include "routing/content.h"

#include <algorithm>

namespace routing {
namespace {

constexpr std::array<std::string_view, kScriptCount> kScriptNames{"cjk",    "latin",  "cyrillic",   "greek",
                                                                   "arabic", "hebrew", "devanagari", "thai"};

struct ScriptRange {
  uint32_t lo, hi;
  Script script;
};

// Letter ranges outside ASCII, sorted and disjoint (Unicode blocks, minus their digits, marks and
// punctuation where those sit in runs of their own). CJK is Han, Hiragana, Katakana, Bopomofo, Hangul.
constexpr ScriptRange kRanges[] = {
    {0x00AA, 0x00AA, Script::latin},      {0x00BA, 0x00BA, Script::latin},      {0x00C0, 0x00D6, Script::latin},
    {0x00D8, 0x00F6, Script::latin},      {0x00F8, 0x024F, Script::latin},      {0x0386, 0x03FF, Script::greek},
    {0x0400, 0x0482, Script::cyrillic},   {0x048A, 0x052F, Script::cyrillic},   {0x05D0, 0x05EA, Script::hebrew},
    {0x05EF, 0x05F2, Script::hebrew},     {0x0620, 0x064A, Script::arabic},     {0x066E, 0x066F, Script::arabic},
    {0x0671, 0x06D3, Script::arabic},     {0x06D5, 0x06D5, Script::arabic},     {0x06EE, 0x06EF, Script::arabic},
    {0x06FA, 0x06FF, Script::arabic},     {0x0750, 0x077F, Script::arabic},     {0x08A0, 0x08C9, Script::arabic},
    {0x0904, 0x0939, Script::devanagari}, {0x093D, 0x093D, Script::devanagari}, {0x0950, 0x0950, Script::devanagari},
    {0x0958, 0x0961, Script::devanagari}, {0x0971, 0x097F, Script::devanagari}, {0x0E01, 0x0E30, Script::thai},
    {0x0E32, 0x0E33, Script::thai},       {0x0E40, 0x0E46, Script::thai},       {0x1100, 0x11FF, Script::cjk},
    {0x1E00, 0x1EFF, Script::latin},      {0x1F00, 0x1FFF, Script::greek},      {0x3005, 0x3007, Script::cjk},
    {0x3041, 0x3096, Script::cjk},        {0x309D, 0x309F, Script::cjk},        {0x30A1, 0x30FA, Script::cjk},
    {0x30FC, 0x30FF, Script::cjk},        {0x3105, 0x312F, Script::cjk},        {0x3131, 0x318E, Script::cjk},
    {0x31F0, 0x31FF, Script::cjk},        {0x3400, 0x4DBF, Script::cjk},        {0x4E00, 0x9FFF, Script::cjk},
    {0xA960, 0xA97F, Script::cjk},        {0xAC00, 0xD7A3, Script::cjk},        {0xD7B0, 0xD7FF, Script::cjk},
    {0xF900, 0xFAFF, Script::cjk},        {0xFB50, 0xFDFF, Script::arabic},     {0xFE70, 0xFEFC, Script::arabic},
    {0xFF21, 0xFF3A, Script::latin},      {0xFF41, 0xFF5A, Script::latin},      {0xFF66, 0xFF9D, Script::cjk},
    {0xFFA0, 0xFFDC, Script::cjk},        {0x20000, 0x323AF, Script::cjk},
};

const ScriptRange* range_of(uint32_t cp) {
  const auto it = std::upper_bound(std::begin(kRanges), std::end(kRanges), cp,
                                   [](uint32_t v, const ScriptRange& r) { return v < r.lo; });
  if (it == std::begin(kRanges)) return nullptr;
  const ScriptRange* r = std::prev(it);
  return cp <= r->hi ? r : nullptr;
}

// Line starts that are statements or declarations in common languages (C/C++, Python, JS/TS,
// Java, Go, Rust, PHP, shell, SQL), case-sensitive so capitalised prose does not count.
constexpr std::string_view kCodeStarts[] = {
    "#include", "#define", "#!/",     "def ",    "class ",    "import ",  "function ", "func ",   "fn ",
    "const ",   "let ",    "var ",    "public ", "private ",  "static ",  "package ",  "return ", "return;",
    "if (",     "for (",   "while (", "elif ",   "except",    "try:",     "struct ",   "template<", "using ",
    "namespace ", "SELECT ", "<?php", "//",     "/*",        "print(",   "console.",  "async ",  "export ",
    "} else",   "echo ",   "impl ",   "pub ",    "#[",        "@Override",
};

bool starts_code(std::string_view head) {
  return std::any_of(std::begin(kCodeStarts), std::end(kCodeStarts),
                     [&](std::string_view k) { return head.substr(0, k.size()) == k; });
}

inline uint32_t is_ascii_letter(unsigned char c) { return static_cast<unsigned char>((c | 0x20) - 'a') < 26; }
inline bool is_word_byte(unsigned char c) { return is_ascii_letter(c) || (c >= '0' && c <= '9'); }

bool is_operator(char a, char b) {
  return (b == '>' && (a == '=' || a == '-')) || (a == ':' && b == ':') || (a == '&' && b == '&') ||
         (a == '|' && b == '|') || (b == '=' && (a == '=' || a == '!'));
}

}  // namespace

std::optional<Script> script_from_name(std::string_view name) {
  for (size_t i = 0; i < kScriptNames.size(); ++i)
    if (kScriptNames[i] == name) return static_cast<Script>(i);
  return std::nullopt;
}

const char* to_string(Script s) { return kScriptNames[static_cast<size_t>(s)].data(); }

std::span<const std::string_view> script_names() { return kScriptNames; }

void ContentScanner::letter_of(uint32_t cp) {
  if (cp - 0x4E00 < 0x5200) {  // the common Han block, without the search
    ++f_.letters;
    ++f_.script_letters[static_cast<size_t>(Script::cjk)];
    return;
  }
  if (const ScriptRange* r = range_of(cp)) {
    ++f_.letters;
    ++f_.script_letters[static_cast<size_t>(r->script)];
  }
}

// One byte of the current line, for the code signals (non-ASCII bytes count as "some letter").
void ContentScanner::line_byte(unsigned char c) {
  const bool blank = c == ' ' || c == '\t' || c == '\r';
  if (blank && in_indent_) {
    if (c != '\r') indent_ += c == '\t' ? 4 : 1;
    return;
  }
  in_indent_ = false;
  if (head_len_ < head_.size()) head_[head_len_++] = static_cast<char>(c);
  if (blank) return;
  const char ch = c < 0x80 ? static_cast<char>(c) : 'a';
  if (last_ != 0 && is_operator(last_, ch)) operator_seen_ = true;
  last_ = ch;
}

void ContentScanner::end_line() {
  if (last_ != 0) {
    ++f_.text_lines;
    const std::string_view head(head_.data(), head_len_);
    if (indent_ <= 3 && head.substr(0, 3) == "```") f_.fenced = true;
    const bool ends_like_code = last_ == ';' || last_ == '{' || last_ == '}' || (head_len_ <= 2 && (last_ == ')' || last_ == ']'));
    const bool indented_code = indent_ >= 2 && (operator_seen_ || last_ == ')' || last_ == ':');
    if (starts_code(head) || ends_like_code || indented_code) ++f_.code_lines;
  }
  head_len_ = indent_ = 0;
  in_indent_ = true;
  last_ = 0;
  operator_seen_ = false;
}

bool ContentScanner::feed(std::string_view text) {
  if (text.size() > budget_) {
    text = text.substr(0, budget_);
    f_.truncated = true;
  }
  budget_ -= text.size();
  f_.scanned_bytes += text.size();
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  uint32_t latin = 0;  // ASCII letters, counted locally (the byte stores below alias the members)
  while (p < end) {
    const unsigned char c = *p;
    // Fast path: a run of ASCII letters and digits past the line's head changes no code signal
    // except "the last byte is a word character".
    if (head_len_ == head_.size() && is_word_byte(c)) {
      do {
        latin += is_ascii_letter(*p);
        ++p;
      } while (p < end && is_word_byte(*p));
      last_ = 'a';
      continue;
    }
    if (c < 0x80) {
      if (c == '\n') end_line();
      else line_byte(c);
      latin += is_ascii_letter(c);
      ++p;
      continue;
    }
    // A multi-byte sequence; a malformed or cut one is skipped a byte at a time.
    const int n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (n == 0 || end - p < n) {
      ++p;
      continue;
    }
    uint32_t cp = c & (0x7F >> n);
    bool ok = true;
    for (int i = 1; i < n; ++i) {
      ok &= (p[i] & 0xC0) == 0x80;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (!ok) {
      ++p;
      continue;
    }
    line_byte(c);
    letter_of(cp);
    p += n;
  }
  f_.letters += latin;
  f_.script_letters[static_cast<size_t>(Script::latin)] += latin;
  return budget_ > 0;
}

ContentFeatures ContentScanner::finish() {
  end_line();
  f_.code = looks_like_code(f_.fenced, f_.code_lines, f_.text_lines);
  return f_;
}

ContentFeatures scan_messages(std::span<const core::ChatMessage> messages, size_t max_bytes) {
  ContentScanner s(max_bytes);
  for (const auto& m : messages) {
    if (m.role != "system" && m.role != "user") continue;
    s.feed(m.content);
    s.feed("\n");
  }
  return s.finish();
}

}  // namespace routing
