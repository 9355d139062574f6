#include "gateway/openai_api.h"

#include <gtest/gtest.h>

using gateway::parse_chat_request;

namespace {
core::Error err_of(const std::string& body) {
  auto r = parse_chat_request(body);
  EXPECT_FALSE(r.ok()) << body;
  return r.ok() ? core::Error{} : r.error();
}
}  // namespace

TEST(ParseChat, GoodRequestFillsFeatures) {
  auto r = parse_chat_request(R"({"model":"auto","stream":true,"stream_options":{"include_usage":true},
    "max_completion_tokens":50,"temperature":0,"seed":7,"stop":["\n\n"],"tools":[{"type":"function"}],
    "response_format":{"type":"json_object"},"reasoning_effort":"high",
    "messages":[{"role":"developer","content":"be brief"},
                {"role":"user","content":[{"type":"text","text":"你好 world"},{"type":"image_url","image_url":{"url":"x"}}]}]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->model, "auto");
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  EXPECT_EQ(r->max_tokens, 50);
  EXPECT_EQ(r->seed, 7);
  EXPECT_EQ(r->stop.size(), 1u);
  EXPECT_TRUE(r->has_tools);
  EXPECT_TRUE(r->wants_json);
  EXPECT_TRUE(r->has_images);
  EXPECT_TRUE(r->wants_reasoning);
  ASSERT_EQ(r->messages.size(), 2u);
  EXPECT_EQ(r->messages[0].role, "system");
  EXPECT_EQ(r->messages[1].content, "你好 world");
  EXPECT_EQ(r->prompt_cjk_chars, 2);
  EXPECT_GT(core::estimate_prompt_tokens(*r), 2);
  EXPECT_FALSE(r->raw_body.empty());
}

TEST(ParseChat, ClearErrorsWithParam) {
  EXPECT_EQ(err_of("{").kind, core::ErrorKind::bad_request);
  EXPECT_EQ(err_of("[]").message, "The request body must be a JSON object.");
  EXPECT_EQ(err_of(R"({"messages":[]})").param, "model");
  EXPECT_EQ(err_of(R"({"model":"m"})").param, "messages");
  EXPECT_EQ(err_of(R"({"model":"m","messages":"hi"})").param, "messages");
  EXPECT_EQ(err_of(R"({"model":"m","messages":[]})").param, "messages");
  EXPECT_EQ(err_of(R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":"10"})").param, "max_tokens");
  EXPECT_EQ(err_of(R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"})").param, "stream");
  EXPECT_EQ(err_of(R"({"model":"m","messages":[{"role":"user","content":"x"}],"temperature":3})").param, "temperature");
  EXPECT_EQ(err_of(R"({"model":"m","messages":[{"role":"wizard","content":"x"}]})").param, "messages[0].role");
  EXPECT_EQ(err_of(R"({"model":"m","messages":[{"role":"user","content":5}]})").param, "messages[0].content");
  EXPECT_EQ(err_of(R"({"model":7,"messages":[]})").param, "model");
}

TEST(ParseChat, InvalidUtf8AndDeepNesting) {
  std::string bad = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\xC3\x28\"}]}";
  EXPECT_NE(err_of(bad).message.find("UTF-8"), std::string::npos);
  std::string deep = R"({"model":"m","messages":[{"role":"user","content":"x"}],"x":)" + std::string(100, '[') +
                     std::string(100, ']') + "}";
  EXPECT_NE(err_of(deep).message.find("nested"), std::string::npos);
}

// The body may nest 64 levels (the object itself is the first), not 65; brackets inside strings
// do not count.
TEST(ParseChat, DepthLimitIsExactly64Levels) {
  auto nested = [](int levels) {  // the body object + "x": levels - 1 arrays
    return R"({"model":"m","messages":[{"role":"user","content":"x"}],"x":)" + std::string(levels - 1, '[') +
           std::string(levels - 1, ']') + "}";
  };
  EXPECT_TRUE(parse_chat_request(nested(64)).ok());
  EXPECT_EQ(err_of(nested(65)).message, "The request body is nested more than 64 levels deep.");
  std::string brackets(200, '[');
  EXPECT_TRUE(parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":")" + brackets + R"("}]})").ok());
}

// The first of duplicate members is the one read (as with a lookup by name); the others pass through.
TEST(ParseChat, FirstOfDuplicateMembersWins) {
  auto r = parse_chat_request(R"({"model":"a","model":"b","messages":[{"role":"user","content":"x","role":"tool"}],"stream":true,"stream":false})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->model, "a");
  EXPECT_EQ(r->messages[0].role, "user");
  EXPECT_TRUE(r->stream);
}

TEST(ErrorJson, OpenAIShape) {
  core::Error e = core::make_error(core::ErrorKind::not_found, "no \"such\" model", core::ErrorSource::client,
                                   "model_not_found", "model");
  EXPECT_EQ(gateway::error_json(e),
            R"({"error":{"message":"no \"such\" model","type":"invalid_request_error","param":"model","code":"model_not_found"}})");
  EXPECT_EQ(e.http_status(), 404);
}
