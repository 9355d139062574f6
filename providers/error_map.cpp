#include "providers/error_map.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "providers/dialect.h"

namespace providers {
namespace {

using core::ErrorKind;

struct ParsedBody {
  std::string code;     // vendor code: error.code, else error.type, else top-level code
  std::string type;     // error.type
  std::string message;  // error.message, else top-level message
};

std::string get_string_or_number(simdjson::dom::element e) {
  if (e.is_string()) return std::string(std::string_view(e.get_string().value_unsafe()));
  if (e.is_int64()) return std::to_string(int64_t(e.get_int64().value_unsafe()));
  return {};
}

ParsedBody parse_body(std::string_view body) {
  ParsedBody out;
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  simdjson::dom::element root;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS || !root.is_object()) {
    out.message = std::string(body.substr(0, 300));
    return out;
  }
  simdjson::dom::element err;
  if (root["error"].get(err) == simdjson::SUCCESS && err.is_object()) {
    simdjson::dom::element v;
    if (err["code"].get(v) == simdjson::SUCCESS) out.code = get_string_or_number(v);
    if (err["type"].get(v) == simdjson::SUCCESS) out.type = get_string_or_number(v);
    if (err["message"].get(v) == simdjson::SUCCESS) out.message = get_string_or_number(v);
  } else if (root["error"].get(err) == simdjson::SUCCESS && err.is_string()) {
    out.message = get_string_or_number(err);
  }
  simdjson::dom::element v;
  // DashScope native shape: {"code":"Arrearage","message":"...","request_id":...}
  if (out.code.empty() && root["code"].get(v) == simdjson::SUCCESS) out.code = get_string_or_number(v);
  if (out.message.empty() && root["message"].get(v) == simdjson::SUCCESS) out.message = get_string_or_number(v);
  if (out.code.empty()) out.code = out.type;
  return out;
}

bool contains_ci(std::string_view hay, std::string_view needle) {
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(),
                        [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b)); });
  return it != hay.end();
}

ErrorKind by_status(int status) {
  switch (status) {
    case 400: case 413: case 422: return ErrorKind::bad_request;
    case 401: case 403: return ErrorKind::auth;
    case 402: return ErrorKind::out_of_balance;
    case 404: return ErrorKind::not_found;
    case 408: case 504: return ErrorKind::timeout;
    case 429: return ErrorKind::rate_limited;
    case 503: case 529: return ErrorKind::overloaded;
    default: return status >= 500 ? ErrorKind::server_error : ErrorKind::bad_request;
  }
}

ErrorKind classify_qwen(int status, const ParsedBody& b) {
  const std::string& c = b.code;
  if (c == "Arrearage") return ErrorKind::out_of_balance;
  if (c == "data_inspection_failed" || c == "DataInspectionFailed") return ErrorKind::content_filter;
  if (c.rfind("Throttling", 0) == 0 || c == "insufficient_quota") return ErrorKind::rate_limited;
  if (c == "InvalidApiKey" || c == "invalid_api_key" || c == "AccessDenied") return ErrorKind::auth;
  if (c == "ModelNotFound" || c == "model_not_found") return ErrorKind::not_found;
  if (status == 400 && (contains_ci(b.message, "range of input length") || contains_ci(b.message, "context length")))
    return ErrorKind::context_too_long;
  return by_status(status);
}

ErrorKind classify_kimi(int status, const ParsedBody& b) {
  const std::string& t = b.type.empty() ? b.code : b.type;
  if (t == "exceeded_current_quota_error" || contains_ci(b.message, "insufficient balance"))
    return ErrorKind::out_of_balance;
  if (t == "engine_overloaded_error") return ErrorKind::overloaded;
  if (t == "rate_limit_reached_error") return ErrorKind::rate_limited;
  if (t == "content_filter") return ErrorKind::content_filter;
  if (t == "invalid_authentication_error" || t == "incorrect_api_key_error" || t == "permission_denied_error")
    return ErrorKind::auth;
  if (t == "invalid_request_error" && contains_ci(b.message, "token limit")) return ErrorKind::context_too_long;
  return by_status(status);
}

ErrorKind classify_glm(int status, const ParsedBody& b) {
  int code = 0;
  std::from_chars(b.code.data(), b.code.data() + b.code.size(), code);
  if (code == 1113) return ErrorKind::out_of_balance;
  if (code >= 1000 && code <= 1004) return ErrorKind::auth;
  if (code == 1112 || code == 1121) return ErrorKind::auth;  // account locked: this key is unusable
  if (code == 1302 || code == 1303 || code == 1305) return ErrorKind::rate_limited;
  if (code == 1301) return ErrorKind::content_filter;
  if (code == 1261) return ErrorKind::context_too_long;
  if (code == 1211) return ErrorKind::not_found;  // model does not exist
  return by_status(status);
}

// OpenAI's own code, which OpenAI-compatible servers (vLLM, llama.cpp's server) copy or paraphrase.
ErrorKind classify_openai(int status, const ParsedBody& b) {
  if (status == 400 && (b.code == "context_length_exceeded" || contains_ci(b.message, "maximum context length")))
    return ErrorKind::context_too_long;
  return by_status(status);
}

ErrorKind classify_deepseek(int status, const ParsedBody& b) {
  if (status == 402) return ErrorKind::out_of_balance;
  if (status == 400 && contains_ci(b.message, "maximum context length")) return ErrorKind::context_too_long;
  return by_status(status);
}

constexpr std::string_view kRedacted = "[redacted]";

std::vector<std::string>& secrets() {
  static std::vector<std::string> s;
  return s;
}

bool token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '+' || c == '/' ||
         c == '=' || c == '~';
}
bool word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

bool iequals_at(std::string_view s, size_t i, std::string_view word) {
  if (s.size() - i < word.size()) return false;
  for (size_t k = 0; k < word.size(); ++k)
    if (std::tolower(static_cast<unsigned char>(s[i + k])) != word[k]) return false;
  return true;
}

// Names after which a value is a credential ("api_key=...", "\"token\": \"...\"", "password: ...").
constexpr std::string_view kSecretNames[] = {"api_key", "api-key", "apikey", "access_token", "refresh_token",
                                             "token", "secret", "password", "passwd", "key", "signature",
                                             "authorization"};

// Length of the run of token characters at i.
size_t token_run(std::string_view s, size_t i) {
  size_t j = i;
  while (j < s.size() && token_char(s[j])) ++j;
  return j - i;
}

// A long token mixing upper case, lower case and digits: a key or a JWT segment, not an id (ids are
// hex or single-case) or a word.
bool looks_like_credential(std::string_view t) {
  if (t.size() < 32) return false;
  bool upper = false, lower = false, digit = false;
  for (char c : t) {
    upper |= c >= 'A' && c <= 'Z';
    lower |= c >= 'a' && c <= 'z';
    digit |= c >= '0' && c <= '9';
  }
  return upper && lower && digit;
}

// Pass 1: the registered values, wherever they appear.
std::string remove_registered(std::string_view text) {
  std::string out(text);
  for (const auto& secret : secrets()) {
    for (size_t at = out.find(secret); at != std::string::npos; at = out.find(secret, at + kRedacted.size()))
      out.replace(at, secret.size(), kRedacted);
  }
  return out;
}

// A credential found at some position: `keep` bytes stay (the "Bearer " or "api_key=" before
// it), the next `drop` bytes are replaced by kRedacted.
struct Match {
  size_t keep = 0, drop = 0;
};

// "Bearer <token>"
std::optional<Match> bearer_at(std::string_view s, size_t i) {
  if (!iequals_at(s, i, "bearer ")) return std::nullopt;
  size_t j = i + 7;
  while (j < s.size() && s[j] == ' ') ++j;
  const size_t n = token_run(s, j);
  if (n == 0) return std::nullopt;
  return Match{j - i, n};
}

// "sk-<key>" / "sk_<key>", the prefix OpenAI-style vendors give their keys
std::optional<Match> sk_key_at(std::string_view s, size_t i) {
  if (!iequals_at(s, i, "sk-") && !iequals_at(s, i, "sk_")) return std::nullopt;
  const size_t n = token_run(s, i + 3);
  if (n < 4) return std::nullopt;
  return Match{3, n};
}

// A secret name, an optional closing quote, '=' or ':', an optional opening quote, the value.
std::optional<Match> named_value_at(std::string_view s, size_t i) {
  for (std::string_view name : kSecretNames) {
    if (!iequals_at(s, i, name) || (i + name.size() < s.size() && word_char(s[i + name.size()]))) continue;
    size_t j = i + name.size();
    if (j < s.size() && (s[j] == '"' || s[j] == '\'')) ++j;
    while (j < s.size() && s[j] == ' ') ++j;
    if (j >= s.size() || (s[j] != '=' && s[j] != ':')) continue;
    ++j;
    while (j < s.size() && s[j] == ' ') ++j;
    if (j < s.size() && (s[j] == '"' || s[j] == '\'')) ++j;
    const size_t n = token_run(s, j);
    if (n > 0) return Match{j - i, n};
  }
  return std::nullopt;
}

// Pass 2: credentials recognised by their shape or by the name before them.
std::string remove_credential_shapes(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (i == 0 || !word_char(s[i - 1])) {
      std::optional<Match> m = bearer_at(s, i);
      if (!m) m = sk_key_at(s, i);
      if (!m) m = named_value_at(s, i);
      if (m) {
        out.append(s.substr(i, m->keep));
        out.append(kRedacted);
        i += m->keep + m->drop;
        continue;
      }
    }
    // A whole token that looks like a credential on its own. Otherwise one character at a time, so
    // that a name inside a token ("x.api_key=...") is still seen at its word boundary.
    if (token_char(s[i]) && (i == 0 || !token_char(s[i - 1]))) {
      const size_t n = token_run(s, i);
      if (looks_like_credential(s.substr(i, n))) {
        out.append(kRedacted);
        i += n;
        continue;
      }
    }
    out.push_back(s[i]);
    ++i;
  }
  return out;
}

}  // namespace

void register_secret(std::string_view value) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.size() < 8) return;
  auto& s = secrets();
  if (std::find(s.begin(), s.end(), value) == s.end()) s.emplace_back(value);
  // Longest first, so that a key containing another registered key is removed whole.
  std::sort(s.begin(), s.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string sanitize_upstream_text(std::string_view text, size_t max_bytes) {
  // Bounded work whatever the upstream sent: only a prefix can survive the cut anyway.
  text = text.substr(0, std::min(text.size(), max_bytes * 4 + 1024));
  std::string s = remove_credential_shapes(remove_registered(text));
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  if (s.size() > max_bytes) {
    size_t cut = max_bytes >= 3 ? max_bytes - 3 : 0;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 sequence
    s.resize(cut);
    s += "...";
  }
  return s;
}

core::Error in_band(core::Error e, int status, std::string_view said) {
  const std::string returned = " returned HTTP " + std::to_string(status);
  if (auto at = e.message.find(returned); at != std::string::npos) e.message.replace(at, returned.size(), said);
  e.upstream_status = 200;
  return e;
}

std::chrono::milliseconds parse_retry_after(std::string_view v) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty()) return std::chrono::milliseconds{0};
  constexpr int64_t cap_ms = 3600 * 1000;
  double secs = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), secs);
  if (ec == std::errc() && p == v.data() + v.size()) {
    // "nan", "inf" and huge values parse as doubles too: bound before converting.
    if (!std::isfinite(secs) || !(secs > 0)) return std::chrono::milliseconds{0};
    if (secs >= cap_ms / 1000.0) return std::chrono::milliseconds{cap_ms};
    return std::chrono::milliseconds{static_cast<int64_t>(secs * 1000)};
  }
  // HTTP-date, e.g. "Wed, 21 Oct 2015 07:28:00 GMT"
  std::tm tm{};
  std::string s(v);
  if (strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) == nullptr) return std::chrono::milliseconds{0};
  time_t when = timegm(&tm);
  time_t now = time(nullptr);
  if (when <= now) return std::chrono::milliseconds{0};
  return std::chrono::milliseconds{std::min<int64_t>(cap_ms, int64_t(when - now) * 1000)};
}

namespace {

ErrorKind classify_vendor(const Dialect& dialect, int status, const ParsedBody& b) {
  if (dialect.name == "qwen") return classify_qwen(status, b);
  if (dialect.name == "kimi") return classify_kimi(status, b);
  if (dialect.name == "glm") return classify_glm(status, b);
  if (dialect.name == "deepseek") return classify_deepseek(status, b);
  return classify_openai(status, b);
}

// Anthropic's error types, for what the status alone does not say. 413 (request_too_large) stays
// bad_request, as chat completions classify it.
ErrorKind refine_by_anthropic_type(ErrorKind by_vendor, const ParsedBody& b) {
  const std::string& t = b.type;
  if (t == "overloaded_error") return ErrorKind::overloaded;
  if (t == "billing_error") return ErrorKind::out_of_balance;
  if (t == "rate_limit_error") return ErrorKind::rate_limited;
  if (t == "authentication_error" || t == "permission_error") return ErrorKind::auth;
  if (t == "not_found_error") return ErrorKind::not_found;
  if (t == "timeout_error") return ErrorKind::timeout;
  if (t == "api_error") return ErrorKind::server_error;
  if (t == "invalid_request_error" &&
      (contains_ci(b.message, "prompt is too long") || contains_ci(b.message, "context length") ||
       contains_ci(b.message, "context window") || contains_ci(b.message, "maximum context")))
    return ErrorKind::context_too_long;
  return by_vendor;
}

core::Error make_upstream_error(const Dialect& dialect, int status, const ParsedBody& b, ErrorKind kind,
                                std::string_view retry_after_header) {
  core::Error e;
  e.kind = kind;
  e.source = core::ErrorSource::upstream;
  e.upstream_status = status;
  // The vendor's text reaches the client and the access log: never a credential it echoed.
  e.code = sanitize_upstream_text(b.code, 64);
  e.retry_after = parse_retry_after(retry_after_header);
  std::string msg = dialect.name + " returned HTTP " + std::to_string(status);
  if (!e.code.empty()) msg += " (code " + e.code + ")";
  if (!b.message.empty()) msg += ": " + sanitize_upstream_text(b.message);
  e.message = std::move(msg);
  return e;
}

}  // namespace

core::Error classify_upstream_error(const Dialect& dialect, int status, std::string_view body,
                                    std::string_view retry_after_header) {
  ParsedBody b = parse_body(body);
  return make_upstream_error(dialect, status, b, classify_vendor(dialect, status, b), retry_after_header);
}

core::Error classify_anthropic_error(const Dialect& dialect, int status, std::string_view body,
                                     std::string_view retry_after_header) {
  ParsedBody b = parse_body(body);
  ErrorKind kind = classify_vendor(dialect, status, b);
  if (kind == by_status(status)) kind = refine_by_anthropic_type(kind, b);
  return make_upstream_error(dialect, status, b, kind, retry_after_header);
}

int anthropic_error_status(std::string_view t) {
  if (t == "invalid_request_error") return 400;
  if (t == "authentication_error") return 401;
  if (t == "billing_error") return 402;
  if (t == "permission_error") return 403;
  if (t == "not_found_error") return 404;
  if (t == "request_too_large") return 413;
  if (t == "rate_limit_error") return 429;
  if (t == "timeout_error") return 504;
  if (t == "overloaded_error") return 529;
  return 500;
}

}  // namespace providers
