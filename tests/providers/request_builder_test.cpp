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
