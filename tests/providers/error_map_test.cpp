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
