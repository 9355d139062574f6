#include "gateway/api/openai_chat.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

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

namespace {
const std::string kMsgs = R"("messages":[{"role":"user","content":"x"}])";
std::string with(const std::string& members) { return "{\"model\":\"m\"," + kMsgs + "," + members + "}"; }
}  // namespace

// A repeated member name anywhere in the body is refused with the key and the path of the object
// holding it: decoders keep different copies (simdjson the first, most upstreams the last).
TEST(ParseChat, DuplicateMembersRefusedWithKeyAndPath) {
  struct Case {
    std::string body, path, param;
  };
  const std::vector<Case> cases = {
      {with(R"("max_tokens":1,"max_tokens":40000)"), "$", "max_tokens"},
      {R"({"model":"a","model":"b",)" + kMsgs + "}", "$", "model"},
      {R"({"model":"m",)" + kMsgs + "," + kMsgs + "}", "$", "messages"},
      {with(R"("tools":[],"tools":[{"type":"function","function":{"name":"f"}}])"), "$", "tools"},
      {with(R"("stream":false,"stream":true)"), "$", "stream"},
      {with(R"("stream_options":{"include_usage":false},"stream_options":{"include_usage":true})"), "$", "stream_options"},
      {with(R"("stream_options":{"include_usage":false,"include_usage":true})"), "$.stream_options", "stream_options.include_usage"},
      {R"({"model":"m","messages":[{"role":"system","content":"a"},{"role":"user","content":"x","role":"tool"}]})", "$.messages[1]", "messages[1].role"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","text":"b"}]}]})", "$.messages[0].content[0]", "messages[0].content[0].text"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"a","url":"b"}}]}]})", "$.messages[0].content[0].image_url", "messages[0].content[0].image_url.url"},
      {with(R"("tools":[{"type":"function","function":{"name":"f","name":"g"}}])"), "$.tools[0].function", "tools[0].function.name"},
      {with(R"("tool_choice":{"type":"function","type":"none"})"), "$.tool_choice", "tool_choice.type"},
      {with(R"("response_format":{"type":"text","type":"json_object"})"), "$.response_format", "response_format.type"},
      {with(R"("thinking":{"type":"disabled","type":"enabled"})"), "$.thinking", "thinking.type"},
      // Opaque pass-through members are checked too, at any depth.
      {with(R"("metadata":{"a":[{"b":{"c":1,"c":2}}]})"), "$.metadata.a[0].b", "metadata.a[0].b.c"},
      {with(R"("x":{"odd key":{"k":1,"k":2}})"), "$.x[\"odd key\"]", "x[\"odd key\"].k"},
      // Escapes are decoded before names are compared.
      {with(R"("max_tokens":1,"max\u005ftokens":40000)"), "$", "max_tokens"},
      {with(R"("":1,"":2)"), "$", "[\"\"]"},
  };
  for (const auto& c : cases) {
    const core::Error e = err_of(c.body);
    EXPECT_EQ(e.code, "duplicate_member") << c.body;
    EXPECT_EQ(e.param, c.param) << c.body;
    EXPECT_NE(e.message.find(" at " + c.path + ":"), std::string::npos) << e.message;
    EXPECT_EQ(e.http_status(), 400);
  }
  EXPECT_NE(err_of(with(R"("max_tokens":1,"max_tokens":40000)")).message.find(R"(duplicate member "max_tokens" at $:)"),
            std::string::npos);
}

// Objects with many members switch from pairwise comparison to a sort: still exact, still found.
TEST(ParseChat, DuplicatesFoundInLargeObjects) {
  std::string props;
  for (int i = 0; i < 5000; ++i) props += "\"p" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  const std::string unique = props + "\"last\":0";
  EXPECT_TRUE(parse_chat_request(with(R"("schema":{)" + unique + "}")).ok());
  const core::Error e = err_of(with(R"("schema":{)" + props + "\"p4321\":0}"));
  EXPECT_EQ(e.param, "schema.p4321");
  EXPECT_EQ(err_of(with(props + "\"p17\":0")).param, "p17");  // unknown top-level members, many of them
  // Names that differ are not duplicates, whatever their length or prefix.
  EXPECT_TRUE(parse_chat_request(with(R"("x":{"a":1,"ab":2,"b":3,"A":4}, "y":[{"a":1},{"a":2}])")).ok());
}

// Names the gateway reads, written so that a case-insensitive upstream decoder (Go's
// encoding/json) would read them as the member the gateway validated, are refused.
TEST(ParseChat, LooseVariantsOfInterpretedNamesRefused) {
  struct Case {
    std::string body, param, like;
  };
  const std::vector<Case> cases = {
      {with(R"("max_tokens":1,"MAX_TOKENS":40000)"), "MAX_TOKENS", "max_tokens"},
      {with(R"("maxTokens":40000)"), "maxTokens", "max_tokens"},
      {with(R"("Model":"expensive")"), "Model", "model"},
      {with(R"("stream-options":{})"), R"(["stream-options"])", "stream_options"},
      {with("\"max_to\\u212Aens\":5"), "[\"max_to\xE2\x84\xAA" "ens\"]", "max_tokens"},  // KELVIN SIGN
      {R"({"model":"m","messages":[{"role":"user","content":"x","Role":"tool"}]})", "messages[0].Role", "role"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","TEXT":"b"}]}]})", "messages[0].content[0].TEXT", "text"},
      {with(R"("thinking":{"type":"disabled","Type":"enabled"})"), "thinking.Type", "type"},
  };
  for (const auto& c : cases) {
    const core::Error e = err_of(c.body);
    EXPECT_EQ(e.code, "ambiguous_member") << c.body;
    EXPECT_EQ(e.param, c.param) << c.body;
    EXPECT_NE(e.message.find("\"" + c.like + "\""), std::string::npos) << e.message;
  }
  // Opaque objects may use any names (a JSON schema with "Name" and "name" is fine).
  EXPECT_TRUE(parse_chat_request(with(R"("tools":[{"type":"function","function":{"name":"f","parameters":{"properties":{"Name":{},"name":{}}}}}])")).ok());
  EXPECT_TRUE(parse_chat_request(with(R"("metadata":{"Model":"x","MAX_TOKENS":1})")).ok());
}

// What an accepted body forwards is what was read: one copy of every member.
TEST(ParseChat, AcceptedBodyKeepsEveryMemberOnce) {
  const std::string body = with(R"("user":"u","tool_choice":"auto","metadata":{"a":{"b":[1,{"c":2}]}},"max_tokens":5)");
  auto r = parse_chat_request(body);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->raw_body, body);
  EXPECT_EQ(r->max_tokens, 5);
}

// The off forms of every thinking switch leave the request eligible for deployments without
// reasoning; the on forms require it.
TEST(ParseChat, ThinkingSwitchesOnAndOff) {
  for (const std::string off : {R"("enable_thinking":false)", R"("thinking":{"type":"disabled"})", R"("thinking":null)",
                                R"("reasoning_effort":null)", R"("reasoning_effort":"none")", R"("enable_thinking":null)",
                                R"("thinking_budget":null)",
                                R"("enable_thinking":false,"thinking":{"type":"disabled"},"reasoning_effort":null)"}) {
    auto r = parse_chat_request(with(off));
    ASSERT_TRUE(r.ok()) << off << ": " << r.error().message;
    EXPECT_FALSE(r->wants_reasoning) << off;
  }
  for (const std::string on : {R"("enable_thinking":true)", R"("thinking":{"type":"enabled"})",
                               R"("thinking":{"type":"enabled","budget_tokens":2048})", R"("reasoning_effort":"high")",
                               R"("reasoning_effort":"low")", R"("thinking_budget":512)",
                               R"("enable_thinking":false,"reasoning_effort":"high")"}) {
    auto r = parse_chat_request(with(on));
    ASSERT_TRUE(r.ok()) << on << ": " << r.error().message;
    EXPECT_TRUE(r->wants_reasoning) << on;
  }
  EXPECT_FALSE(parse_chat_request(with(R"("temperature":1)"))->wants_reasoning);
  // The level routing's match.reasoning_effort sees: as sent, else default (on) / none (off) / unset.
  const std::pair<const char*, const char*> levels[] = {
      {R"("reasoning_effort":"high")", "high"},       {R"("reasoning_effort":"minimal")", "minimal"},
      {R"("reasoning_effort":"none")", "none"},       {R"("enable_thinking":false,"reasoning_effort":"low")", "low"},
      {R"("thinking":{"type":"enabled"})", "default"}, {R"("thinking_budget":512)", "default"},
      {R"("enable_thinking":false)", "none"},         {R"("thinking":{"type":"disabled"})", "none"},
      {R"("reasoning_effort":null)", ""},             {R"("temperature":1)", ""}};
  for (const auto& [body, level] : levels) EXPECT_EQ(parse_chat_request(with(body))->reasoning_effort, level) << body;
  // Malformed switches are refused, not guessed.
  EXPECT_EQ(err_of(with(R"("enable_thinking":"false")")).param, "enable_thinking");
  EXPECT_EQ(err_of(with(R"("thinking":true)")).param, "thinking");
  EXPECT_EQ(err_of(with(R"("thinking":{})")).param, "thinking.type");
  EXPECT_EQ(err_of(with(R"("reasoning_effort":3)")).param, "reasoning_effort");
  EXPECT_EQ(err_of(with(R"("reasoning_effort":"")")).param, "reasoning_effort");
  EXPECT_EQ(err_of(with(R"("thinking_budget":0)")).param, "thinking_budget");
}

// Every numeric parameter is range-checked; the message names the field, the range and the value.
TEST(ParseChat, NumericRangesNamedInErrors) {
  struct Case {
    std::string member, param, message;
  };
  const std::vector<Case> bad_cases = {
      {R"("max_tokens":-5)", "max_tokens", "'max_tokens' must be a positive integer, not -5"},
      {R"("max_tokens":0)", "max_tokens", "'max_tokens' must be a positive integer, not 0"},
      {R"("max_tokens":2.5)", "max_tokens", "'max_tokens' must be a positive integer, not 2.5"},
      {R"("max_tokens":"10")", "max_tokens", "'max_tokens' must be a positive integer, not a string"},
      {R"("max_tokens":18446744073709551615)", "max_tokens", "'max_tokens' must be a positive integer, not 18446744073709551615"},
      {R"("max_completion_tokens":-1)", "max_completion_tokens", "'max_completion_tokens' must be a positive integer, not -1"},
      {R"("temperature":3)", "temperature", "'temperature' must be a number from 0 to 2, not 3"},
      {R"("temperature":-0.1)", "temperature", "'temperature' must be a number from 0 to 2, not -0.1"},
      {R"("top_p":-5)", "top_p", "'top_p' must be a number from 0 to 1, not -5"},
      {R"("top_p":1.5)", "top_p", "'top_p' must be a number from 0 to 1, not 1.5"},
      {R"("top_p":"x")", "top_p", "'top_p' must be a number from 0 to 1, not a string"},
      {R"("presence_penalty":2.5)", "presence_penalty", "'presence_penalty' must be a number from -2 to 2, not 2.5"},
      {R"("frequency_penalty":-3)", "frequency_penalty", "'frequency_penalty' must be a number from -2 to 2, not -3"},
      {R"("n":0)", "n", "'n' must be an integer from 1 to 128, not 0"},
      {R"("n":129)", "n", "'n' must be an integer from 1 to 128, not 129"},
      {R"("top_k":-1)", "top_k", "'top_k' must be an integer from 0 to 2147483647, not -1"},
      {R"("top_k":4294967296)", "top_k", "'top_k' must be an integer from 0 to 2147483647, not 4294967296"},
      {R"("min_p":1.01)", "min_p", "'min_p' must be a number from 0 to 1, not 1.01"},
      {R"("seed":1.5)", "seed", "'seed' must be an integer from -9223372036854775808 to 9223372036854775807, not 1.5"},
      {R"("seed":9223372036854775808)", "seed", "'seed' must be an integer from -9223372036854775808 to 9223372036854775807, not 9223372036854775808"},
      {R"("top_logprobs":21)", "top_logprobs", "'top_logprobs' must be an integer from 0 to 20, not 21"},
      {R"("logprobs":1)", "logprobs", "'logprobs' must be a boolean, not an integer"},
      {R"("max_tokens":10,"max_completion_tokens":20)", "max_completion_tokens",
       "'max_tokens' and 'max_completion_tokens' are both set, to different values; set one of them"},
  };
  for (const auto& c : bad_cases) {
    const core::Error e = err_of(with(c.member));
    EXPECT_EQ(e.param, c.param) << c.member;
    EXPECT_EQ(e.message, c.message) << c.member;
    EXPECT_EQ(e.http_status(), 400) << c.member;
  }
  // The bounds themselves are allowed, and null means "not set".
  auto r = parse_chat_request(with(R"("temperature":2,"top_p":0,"presence_penalty":-2,"frequency_penalty":2,"n":128,
      "top_k":0,"min_p":1,"seed":-9223372036854775808,"top_logprobs":20,"logprobs":true,"max_tokens":1,
      "max_completion_tokens":1,"thinking_budget":1)"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->n, 128);
  EXPECT_EQ(r->max_tokens, 1);
  EXPECT_EQ(r->seed, INT64_MIN);
  auto nulls = parse_chat_request(with(R"("temperature":null,"top_p":null,"n":null,"max_tokens":null,"seed":null,
      "presence_penalty":null,"top_logprobs":null,"logprobs":null,"top_k":null,"min_p":null)"));
  ASSERT_TRUE(nulls.ok()) << nulls.error().message;
  EXPECT_FALSE(nulls->max_tokens.has_value());
  EXPECT_FALSE(nulls->temperature.has_value());
  EXPECT_EQ(nulls->n, 1);
}

TEST(ParseChat, ResponseFormatMustBeAnObjectWithAType) {
  EXPECT_EQ(err_of(with(R"("response_format":"json_object")")).param, "response_format");
  EXPECT_EQ(err_of(with(R"("response_format":{"json_schema":{}})")).param, "response_format.type");
  EXPECT_FALSE(parse_chat_request(with(R"("response_format":{"type":"text"})"))->wants_json);
  EXPECT_TRUE(parse_chat_request(with(R"("response_format":{"type":"json_schema","json_schema":{"name":"x"}})"))->wants_json);
}

TEST(ErrorJson, OpenAIShape) {
  core::Error e = core::make_error(core::ErrorKind::not_found, "no \"such\" model", core::ErrorSource::client,
                                   "model_not_found", "model");
  EXPECT_EQ(gateway::error_json(e),
            R"({"error":{"message":"no \"such\" model","type":"invalid_request_error","param":"model","code":"model_not_found"}})");
  EXPECT_EQ(e.http_status(), 404);
}
