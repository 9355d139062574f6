#include "providers/openai_normalize.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include "providers/dialect.h"

using providers::find_dialect;
using providers::StreamNormalizer;

namespace {
simdjson::dom::element parse(simdjson::dom::parser& p, const std::string& s) { return p.parse(s).value(); }
}  // namespace

TEST(Normalize, DeepSeekCacheHitAndReasoningFilledInOpenAIFields) {
  const std::string body = R"({"id":"x","object":"chat.completion","created":1,"model":"deepseek-flash",
    "choices":[{"index":0,"message":{"role":"assistant","content":"hi","reasoning_content":"think"},"finish_reason":"stop"}],
    "usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,"prompt_cache_hit_tokens":64,
             "prompt_cache_miss_tokens":36,"completion_tokens_details":{"reasoning_tokens":7}}})";
  auto r = providers::normalize_response(*find_dialect("deepseek"), body);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->usage.prompt_tokens, 100);
  EXPECT_EQ(r->usage.cached_tokens, 64);
  EXPECT_EQ(r->usage.reasoning_tokens, 7);
  simdjson::dom::parser p;
  auto root = parse(p, r->body);
  EXPECT_EQ(int64_t(root["usage"]["prompt_tokens_details"]["cached_tokens"]), 64);
  EXPECT_EQ(int64_t(root["usage"]["completion_tokens_details"]["reasoning_tokens"]), 7);
  EXPECT_EQ(std::string_view(root["choices"].at(0)["message"]["reasoning_content"]), "think");
  EXPECT_EQ(std::string_view(root["choices"].at(0)["finish_reason"]), "stop");
}

TEST(Normalize, GlmFinishReasonsMapped) {
  const std::string body = R"({"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"sensitive"}]})";
  auto r = providers::normalize_response(*find_dialect("glm"), body);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish_reason, "content_filter");
  auto bad = providers::normalize_response(
      *find_dialect("glm"), R"({"choices":[{"index":0,"message":{"content":"x"},"finish_reason":"network_error"}]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, core::ErrorKind::server_error);
}

TEST(Normalize, NotAChatCompletionIsAnUpstreamError) {
  EXPECT_FALSE(providers::normalize_response(*find_dialect("qwen"), "not json").ok());
  EXPECT_FALSE(providers::normalize_response(*find_dialect("qwen"), R"({"output":{}})").ok());
}

TEST(StreamNormalize, UnchangedChunksPassThroughByteForByte) {
  StreamNormalizer n(*find_dialect("qwen"), false);
  std::string chunk = R"({"id":"c","object":"chat.completion.chunk","created":5,"model":"qwen-flash","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]})";
  auto s = n.process(chunk);
  EXPECT_EQ(s.action, StreamNormalizer::Action::forward);
  EXPECT_TRUE(s.content);
  EXPECT_EQ(s.out, chunk);
}

TEST(StreamNormalize, RoleOnlyChunkIsNotContent) {
  StreamNormalizer n(*find_dialect("deepseek"), false);
  auto s = n.process(R"({"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})");
  EXPECT_EQ(s.action, StreamNormalizer::Action::forward);
  EXPECT_FALSE(s.content);
}

TEST(StreamNormalize, UsageOnlyChunkDroppedAndReEmittedNormalised) {
  StreamNormalizer n(*find_dialect("deepseek"), true);
  n.process(R"({"id":"c1","created":9,"model":"deepseek-flash","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]})");
  auto s = n.process(R"({"id":"c1","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3,"prompt_cache_hit_tokens":8}})");
  EXPECT_EQ(s.action, StreamNormalizer::Action::drop);
  EXPECT_EQ(n.usage().cached_tokens, 8);
  std::string u = n.usage_chunk();
  simdjson::dom::parser p;
  auto root = parse(p, u);
  EXPECT_EQ(std::string_view(root["id"]), "c1");
  EXPECT_EQ(simdjson::dom::array(root["choices"]).size(), 0u);
  EXPECT_EQ(int64_t(root["usage"]["prompt_tokens_details"]["cached_tokens"]), 8);
  EXPECT_EQ(int64_t(root["usage"]["total_tokens"]), 13);
  EXPECT_EQ(n.process("[DONE]").action, StreamNormalizer::Action::done);
}

TEST(StreamNormalize, KimiUsageInsideChoiceIsLiftedOut) {
  StreamNormalizer n(*find_dialect("kimi"), true);
  auto s = n.process(R"({"id":"k","choices":[{"index":0,"delta":{},"finish_reason":"stop","usage":{"prompt_tokens":20,"completion_tokens":5,"total_tokens":25,"cached_tokens":16}}]})");
  EXPECT_EQ(s.action, StreamNormalizer::Action::forward);
  EXPECT_TRUE(s.content);
  EXPECT_EQ(std::string(s.out).find("usage"), std::string::npos) << s.out;
  EXPECT_NE(std::string(s.out).find("\"finish_reason\":\"stop\""), std::string::npos) << s.out;
  EXPECT_EQ(n.usage().prompt_tokens, 20);
  EXPECT_EQ(n.usage().cached_tokens, 16);
}

TEST(StreamNormalize, InBandErrorAndGarbage) {
  StreamNormalizer n(*find_dialect("glm"), false);
  auto e = n.process(R"({"error":{"code":"500","message":"boom"}})");
  EXPECT_EQ(e.action, StreamNormalizer::Action::error);
  ASSERT_TRUE(e.error);
  EXPECT_NE(e.error->message.find("boom"), std::string::npos);
  EXPECT_EQ(n.process("{not json").action, StreamNormalizer::Action::error);
  EXPECT_EQ(n.process(R"({"choices":[{"index":0,"delta":{},"finish_reason":"network_error"}]})").action,
            StreamNormalizer::Action::error);
}

TEST(Normalize, ImpossibleUsageCountsAreFlaggedNeverWrapped) {
  auto u = providers::parse_usage_json(R"({"prompt_tokens":12,"completion_tokens":3.0})");
  EXPECT_TRUE(u.present);
  EXPECT_FALSE(u.malformed) << "an integral JSON number is a count";
  EXPECT_EQ(u.completion_tokens, 3);
  for (const char* bad : {R"({"prompt_tokens":9.9e18,"completion_tokens":1})",
                          R"({"prompt_tokens":18446744073709551615,"completion_tokens":1})",
                          R"({"prompt_tokens":-5,"completion_tokens":1})",
                          R"({"prompt_tokens":10,"completion_tokens":2.5})",
                          R"({"prompt_tokens":"10","completion_tokens":1})",
                          R"({"prompt_tokens":10,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":-1}})",
                          R"({"prompt_tokens":10,"completion_tokens":1,"completion_tokens_details":{"reasoning_tokens":[]}})"}) {
    auto b = providers::parse_usage_json(bad);
    EXPECT_TRUE(b.present) << bad;
    EXPECT_TRUE(b.malformed) << bad;
    EXPECT_GE(b.prompt_tokens, 0) << bad;
    EXPECT_GE(b.cached_tokens, 0) << bad;
    EXPECT_LE(b.prompt_tokens, 10) << bad;
  }
  auto n = providers::parse_usage_json(R"({"prompt_tokens":10,"completion_tokens":null})");
  EXPECT_FALSE(n.malformed) << "null reads as absent";
}

TEST(StreamNormalize, ContentChunksCarryATokenEstimate) {
  StreamNormalizer n(*find_dialect("openai_compatible"), false);
  auto s = n.process(R"({"id":"a","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"abcdefgh"},"finish_reason":null}]})");
  EXPECT_TRUE(s.content);
  EXPECT_EQ(s.est_tokens, 2);
  auto cjk = n.process(R"({"id":"a","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"你好"},"finish_reason":null}]})");
  EXPECT_EQ(cjk.est_tokens, 2);
  auto role = n.process(R"({"id":"a","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]})");
  EXPECT_EQ(role.est_tokens, 0);
}
