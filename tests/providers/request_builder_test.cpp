#include "providers/request_builder.h"

#include <gtest/gtest.h>
#include <simdjson.h>

TEST(RequestBuilder, UnknownFieldsPassThroughModelReplacedUsageForced) {
  std::string client = R"({"model":"auto","messages":[{"role":"user","content":"hi"}],"foo_vendor_param":{"x":[1,2]},
    "enable_thinking":true,"stream":true,"stream_options":{"include_usage":false,"other":1},"temperature":0.2})";
  auto body = providers::build_upstream_body(client, "qwen-flash", true);
  ASSERT_TRUE(body.ok());
  simdjson::dom::parser p;
  auto root = p.parse(*body).value();
  EXPECT_EQ(std::string_view(root["model"]), "qwen-flash");
  EXPECT_EQ(simdjson::minify(root["foo_vendor_param"]), R"({"x":[1,2]})");
  EXPECT_TRUE(bool(root["enable_thinking"]));
  EXPECT_TRUE(bool(root["stream"]));
  EXPECT_TRUE(bool(root["stream_options"]["include_usage"]));
  EXPECT_EQ(int64_t(root["stream_options"]["other"]), 1);
  EXPECT_DOUBLE_EQ(double(root["temperature"]), 0.2);
  // No duplicated keys.
  EXPECT_EQ(body->find("\"model\"", body->find("\"model\"") + 1), std::string::npos);
}

TEST(RequestBuilder, NonStreamHasNoStreamOptions) {
  auto body = providers::build_upstream_body(R"({"model":"m","messages":[],"stream_options":{"include_usage":true}})", "x", false);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->find("stream_options"), std::string::npos);
  EXPECT_NE(body->find("\"stream\":false"), std::string::npos);
}

TEST(RequestBuilder, ValuesAreCopiedVerbatimAndEscapedKeysRecognised) {
  // Numbers keep their spelling, strings their escapes; a "model" key spelled with an escape is
  // still the model (never two model keys upstream).
  std::string client = R"({ "mod\u0065l" : "auto", "messages":[{"role":"user","content":"caf\u00e9 \"q\""}],
    "temperature": 1.0e-1, "seed": 12345678901234567890, "stream": false })";
  auto body = providers::build_upstream_body(client, "deepseek-chat", true);
  ASSERT_TRUE(body.ok());
  EXPECT_NE(body->find(R"("temperature":1.0e-1)"), std::string::npos) << *body;
  EXPECT_NE(body->find(R"("seed":12345678901234567890)"), std::string::npos) << *body;
  EXPECT_NE(body->find(R"(caf\u00e9 \"q\")"), std::string::npos) << *body;
  EXPECT_EQ(body->find("mod\\u0065l"), std::string::npos) << *body;
  simdjson::dom::parser p;
  auto root = p.parse(*body).value();
  EXPECT_EQ(std::string_view(root["model"]), "deepseek-chat");
  EXPECT_TRUE(bool(root["stream"]));
}

TEST(RequestBuilder, NotAnObjectIsAnError) {
  EXPECT_FALSE(providers::build_upstream_body("[1,2]", "m", false).ok());
  EXPECT_FALSE(providers::build_upstream_body("{\"a\":", "m", false).ok());
}
