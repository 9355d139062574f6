#include "providers/error_map.h"

#include <gtest/gtest.h>

#include "providers/dialect.h"

using core::ErrorKind;
using providers::classify_upstream_error;
using providers::find_dialect;

namespace {
struct Case {
  const char* dialect;
  int status;
  const char* body;
  ErrorKind kind;
  bool retryable;
};
}  // namespace

TEST(ErrorMap, EachVendorsOutOfBalanceAndOtherCodes) {
  const Case cases[] = {
      // Out of money, four different ways: all mean "take this account out of rotation".
      {"deepseek", 402, R"({"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}})", ErrorKind::out_of_balance, true},
      {"qwen", 403, R"({"error":{"message":"Access denied, please make sure your account is in good standing.","type":"Arrearage","param":null,"code":"Arrearage"}})", ErrorKind::out_of_balance, true},
      {"kimi", 403, R"({"error":{"type":"exceeded_current_quota_error","message":"Your account is suspended"}})", ErrorKind::out_of_balance, true},
      {"kimi", 429, R"({"error":{"type":"rate_limit_reached_error","message":"Your account is suspended due to insufficient balance"}})", ErrorKind::out_of_balance, true},
      {"glm", 429, R"({"error":{"code":"1113","message":"Insufficient balance or no resource package. Please recharge."}})", ErrorKind::out_of_balance, true},
      // Rate limits and overload.
      {"glm", 429, R"({"error":{"code":"1302","message":"concurrency"}})", ErrorKind::rate_limited, true},
      {"qwen", 429, R"({"error":{"code":"Throttling.RateQuota","message":"Requests rate limit exceeded"}})", ErrorKind::rate_limited, true},
      {"kimi", 429, R"({"error":{"type":"engine_overloaded_error","message":"busy"}})", ErrorKind::overloaded, true},
      {"deepseek", 503, R"({"error":{"message":"Server overloaded"}})", ErrorKind::overloaded, true},
      // The client's fault: never fail over.
      {"deepseek", 400, R"({"error":{"message":"Invalid request","type":"invalid_request_error"}})", ErrorKind::bad_request, false},
      {"glm", 400, R"({"error":{"code":"1261","message":"Prompt too long"}})", ErrorKind::context_too_long, false},
      // Longer than the window: not retryable as such (the gateway only tries a larger window).
      {"openai_compatible", 400, R"({"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}})", ErrorKind::context_too_long, false},
      {"openai_compatible", 400, R"({"object":"error","message":"This model's maximum context length is 4096 tokens.","type":"BadRequestError","code":400})", ErrorKind::context_too_long, false},
      {"openai_compatible", 400, R"({"error":{"message":"Invalid type","type":"invalid_request_error","code":"invalid_type"}})", ErrorKind::bad_request, false},
      {"glm", 400, R"({"error":{"code":"1301","message":"unsafe content"}})", ErrorKind::content_filter, false},
      {"qwen", 400, R"({"error":{"code":"data_inspection_failed","message":"Input data may contain inappropriate content."}})", ErrorKind::content_filter, false},
      // Key problems: a deployment fault, fail over to another account.
      {"qwen", 401, R"({"error":{"code":"invalid_api_key","message":"Incorrect API key provided."}})", ErrorKind::auth, true},
      {"glm", 401, R"({"error":{"code":"1002","message":"Authorization Token invalid"}})", ErrorKind::auth, true},
      {"deepseek", 500, "<html>oops</html>", ErrorKind::server_error, true},
      {"openai_compatible", 529, "", ErrorKind::overloaded, true},
  };
  for (const auto& c : cases) {
    const auto* d = find_dialect(c.dialect);
    ASSERT_NE(d, nullptr);
    core::Error e = classify_upstream_error(*d, c.status, c.body, "");
    EXPECT_EQ(e.kind, c.kind) << c.dialect << " " << c.status << " " << c.body;
    EXPECT_EQ(e.retryable(), c.retryable) << c.dialect << " " << c.body;
    EXPECT_EQ(e.source, core::ErrorSource::upstream);
    EXPECT_NE(e.message.find(std::to_string(c.status)), std::string::npos) << e.message;
  }
}

TEST(ErrorMap, ProviderCodeIsKeptInMessageAndCode) {
  core::Error e = classify_upstream_error(*find_dialect("glm"), 429,
                                          R"({"error":{"code":"1113","message":"Insufficient balance"}})", "");
  EXPECT_EQ(e.code, "1113");
  EXPECT_NE(e.message.find("1113"), std::string::npos);
  EXPECT_NE(e.message.find("Insufficient balance"), std::string::npos);
  EXPECT_EQ(e.http_status(), 503);  // the client is told the service is unavailable, not to slow down
}

TEST(ErrorMap, RetryAfterSecondsAndDates) {
  using std::chrono::milliseconds;
  EXPECT_EQ(providers::parse_retry_after("5"), milliseconds(5000));
  EXPECT_EQ(providers::parse_retry_after(" 0.5 "), milliseconds(500));
  EXPECT_EQ(providers::parse_retry_after(""), milliseconds(0));
  EXPECT_EQ(providers::parse_retry_after("soon"), milliseconds(0));
  EXPECT_EQ(providers::parse_retry_after("99999999"), milliseconds(3600 * 1000));  // capped
  EXPECT_EQ(providers::parse_retry_after("1e300"), milliseconds(3600 * 1000));     // capped before conversion
  EXPECT_EQ(providers::parse_retry_after("nan"), milliseconds(0));                 // found by the fuzzer
  EXPECT_EQ(providers::parse_retry_after("inf"), milliseconds(0));
  EXPECT_EQ(providers::parse_retry_after("-inf"), milliseconds(0));
  EXPECT_EQ(providers::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), milliseconds(0));  // in the past
  core::Error e = classify_upstream_error(*find_dialect("deepseek"), 429, "{}", "2");
  EXPECT_EQ(e.retry_after, milliseconds(2000));
}

TEST(ErrorMap, SanitiseRemovesCredentialsOfEveryShape) {
  using providers::sanitize_upstream_text;
  auto clean = [](std::string_view in) { return sanitize_upstream_text(in, 1000); };
  EXPECT_EQ(clean("Incorrect API key provided: Bearer abc.def-ghi"), "Incorrect API key provided: Bearer [redacted]");
  EXPECT_EQ(clean("bad key sk-0123456789abcdef0123456789abcdef here"), "bad key sk-[redacted] here");
  EXPECT_EQ(clean("GET /x?api_key=s3cr3t&y=2"), "GET /x?api_key=[redacted]&y=2");
  EXPECT_EQ(clean("{\"token\": \"tok_1\", \"password\":\"hunter2\"}"), "{\"token\": \"[redacted]\", \"password\":\"[redacted]\"}");
  EXPECT_EQ(clean("key=abc"), "key=[redacted]");
  EXPECT_EQ(clean("cfg.api_key=abc123 x"), "cfg.api_key=[redacted] x");  // a name inside a token
  // A JWT-like mixed-case token; ids (hex, UUIDs) and ordinary words are kept.
  EXPECT_EQ(clean("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcDEF123"), "jwt [redacted]");
  EXPECT_EQ(clean("request 7f3a9c2e-1b4d-4e8f-9a0b-123456789abc failed"), "request 7f3a9c2e-1b4d-4e8f-9a0b-123456789abc failed");
  EXPECT_EQ(clean("task-force asked for tokens"), "task-force asked for tokens");
  EXPECT_EQ(clean("line\r\nbreak\x01"), "line  break ");
}

TEST(ErrorMap, SanitiseRemovesRegisteredSecretsAndCaps) {
  using providers::sanitize_upstream_text;
  providers::register_secret("plainsecretvalue42");
  EXPECT_EQ(sanitize_upstream_text("your key plainsecretvalue42 is wrong", 1000), "your key [redacted] is wrong");
  EXPECT_EQ(sanitize_upstream_text("xplainsecretvalue42x", 1000), "x[redacted]x");
  providers::register_secret("short");  // under 8 bytes: ignored (would redact ordinary words)
  EXPECT_EQ(sanitize_upstream_text("short answer", 1000), "short answer");
  std::string longtext(5000, 'a');
  std::string capped = sanitize_upstream_text(longtext, 300);
  EXPECT_EQ(capped.size(), 300u);
  EXPECT_EQ(capped.substr(297), "...");
  // Cut on a character boundary: "é" is two bytes.
  std::string accents;
  for (int i = 0; i < 200; ++i) accents += "\xc3\xa9";
  std::string cut = sanitize_upstream_text(accents, 100);
  EXPECT_LE(cut.size(), 100u);
  EXPECT_EQ(cut.substr(cut.size() - 3), "...");
  EXPECT_EQ((cut.size() - 3) % 2, 0u);
}

TEST(ErrorMap, ClassifiedMessagesAreSanitised) {
  core::Error e = classify_upstream_error(*find_dialect("deepseek"), 401,
                                          R"({"error":{"message":"Authentication Fails, Your api key: sk-abcdef0123456789 is invalid","code":"invalid_request_error"}})",
                                          "");
  EXPECT_EQ(e.message.find("abcdef0123456789"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("Authentication Fails"), std::string::npos);
}
