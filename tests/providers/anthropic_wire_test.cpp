// The Anthropic Messages wire format of the native relay: model rewrite, usage from messages and
// stream events, which events commit an attempt, and errors mapped as chat completions map them.
#include "providers/anthropic_wire.h"

#include <gtest/gtest.h>

#include "providers/dialect.h"
#include "providers/error_map.h"
#include "providers/openai_compatible.h"

namespace {

using core::ErrorKind;
using providers::AnthropicStream;
using providers::find_dialect;
using providers::rewrite_anthropic_model;

const providers::Dialect& dialect(const char* name) { return *find_dialect(name); }

// ---- model rewrite ------------------------------------------------------------------------------

TEST(AnthropicModelRewrite, OnlyTheTopLevelModelValueChanges) {
  const std::string body =
      "{ \"model\" :  \"claude-sonnet-4\" ,\"max_tokens\":1e3,\"system\":\"caf\\u00e9\",\n"
      " \"tools\":[{\"name\":\"t\",\"input_schema\":{\"properties\":{\"model\":{\"type\":\"string\"}}}}],"
      "\"metadata\":{\"model\":\"keep\"},\"x_unknown\":[1,2.50,null]}";
  auto out = rewrite_anthropic_model(body, "deepseek-flash");
  ASSERT_TRUE(out);
  EXPECT_EQ(*out,
            "{ \"model\" :  \"deepseek-flash\" ,\"max_tokens\":1e3,\"system\":\"caf\\u00e9\",\n"
            " \"tools\":[{\"name\":\"t\",\"input_schema\":{\"properties\":{\"model\":{\"type\":\"string\"}}}}],"
            "\"metadata\":{\"model\":\"keep\"},\"x_unknown\":[1,2.50,null]}");
}

TEST(AnthropicModelRewrite, EscapedKeyAndNonStringValueAreReplacedToo) {
  auto out = rewrite_anthropic_model(R"({"mod\u0065l":42,"stream":true})", "glm-5.2");
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, R"({"mod\u0065l":"glm-5.2","stream":true})");
}

TEST(AnthropicModelRewrite, EveryDuplicateIsReplaced) {
  // The gateway refuses duplicate keys; should one reach here, no client value may survive.
  auto out = rewrite_anthropic_model(R"({"model":"a","x":1,"model":"b"})", "m");
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, R"({"model":"m","x":1,"model":"m"})");
}

TEST(AnthropicModelRewrite, AbsentModelIsInsertedFirst) {
  auto out = rewrite_anthropic_model("  {\"max_tokens\":5}", "kimi-k3");
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, "  {\"model\":\"kimi-k3\",\"max_tokens\":5}");
  auto empty = rewrite_anthropic_model("{ }", "kimi-k3");
  ASSERT_TRUE(empty);
  EXPECT_EQ(*empty, "{\"model\":\"kimi-k3\" }");
}

TEST(AnthropicModelRewrite, ModelIdIsEscaped) {
  auto out = rewrite_anthropic_model(R"({"model":"x"})", "we\"ird\\id\n");
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, R"({"model":"we\"ird\\id\n"})");
}

TEST(AnthropicModelRewrite, AnythingButAnObjectIsABadRequest) {
  for (const char* bad : {"", "[]", "\"model\"", "{\"model\":", "{\"model\":\"x\"", "{\"model\" \"x\"}", "nul"}) {
    auto out = rewrite_anthropic_model(bad, "m");
    ASSERT_FALSE(out) << bad;
    EXPECT_EQ(out.error().kind, ErrorKind::bad_request) << bad;
  }
}

// ---- usage --------------------------------------------------------------------------------------

TEST(AnthropicUsage, MapsOntoCoreUsage) {
  providers::AnthropicUsage u;
  u.merge(R"({"input_tokens":100,"cache_read_input_tokens":30,"cache_creation_input_tokens":20,"output_tokens":1})");
  u.merge(R"({"output_tokens":50})");
  core::Usage c = u.to_core();
  EXPECT_TRUE(c.present);
  EXPECT_FALSE(c.malformed);
  EXPECT_EQ(c.prompt_tokens, 150);
  EXPECT_EQ(c.cached_tokens, 30);
  EXPECT_EQ(c.cache_write_tokens, 20);
  EXPECT_EQ(c.uncached_prompt_tokens(), 100);
  EXPECT_EQ(c.completion_tokens, 50);
}

TEST(AnthropicUsage, InputReportedOnlyInTheDeltaCounts) {
  providers::AnthropicUsage u;
  u.merge(R"({"input_tokens":0,"output_tokens":0})");
  u.merge(R"({"input_tokens":70,"cache_read_input_tokens":64,"output_tokens":22})");
  EXPECT_EQ(u.to_core().prompt_tokens, 134);
  EXPECT_EQ(u.to_core().cached_tokens, 64);
}

TEST(AnthropicUsage, ALaterSmallerFigureNeverLowersTheBill) {
  providers::AnthropicUsage u;
  u.merge(R"({"input_tokens":500,"cache_read_input_tokens":100,"output_tokens":1})");
  u.merge(R"({"input_tokens":3,"cache_read_input_tokens":0,"output_tokens":40})");
  EXPECT_EQ(u.to_core().prompt_tokens, 600);
  EXPECT_EQ(u.to_core().completion_tokens, 40);
}

TEST(AnthropicUsage, HostileCountsAreMalformedNotPriced) {
  for (const char* bad : {R"({"input_tokens":-5})", R"({"output_tokens":2.5})", R"({"output_tokens":"12"})",
                          R"({"input_tokens":18446744073709551615})", R"({"cache_read_input_tokens":{}})",
                          R"({"output_tokens":1e300})"}) {
    providers::AnthropicUsage u;
    u.merge(bad);
    EXPECT_TRUE(u.to_core().malformed) << bad;
    EXPECT_EQ(u.to_core().total_tokens(), 0) << bad;
  }
  providers::AnthropicUsage nulls;
  nulls.merge(R"({"input_tokens":null,"cache_read_input_tokens":null,"output_tokens":7})");
  EXPECT_FALSE(nulls.to_core().malformed);
  EXPECT_EQ(nulls.to_core().total_tokens(), 7);
  providers::AnthropicUsage none;
  none.merge("not json");
  EXPECT_FALSE(none.to_core().present);
}

TEST(AnthropicMessage, NonStreamUsageAndStopReason) {
  auto info = providers::read_anthropic_message(
      dialect("deepseek"),
      R"({"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"hi"}],)"
      R"("stop_reason":"end_turn","usage":{"input_tokens":8,"cache_read_input_tokens":32,"output_tokens":20}})");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->stop_reason, "end_turn");
  EXPECT_EQ(info->usage.prompt_tokens, 40);
  EXPECT_EQ(info->usage.cached_tokens, 32);
  EXPECT_EQ(info->usage.completion_tokens, 20);
}

TEST(AnthropicMessage, GarbageAndErrorObjectsAreErrors) {
  auto garbage = providers::read_anthropic_message(dialect("kimi"), "<html>502 Bad Gateway</html>");
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().kind, ErrorKind::server_error);
  auto err = providers::read_anthropic_message(
      dialect("kimi"), R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");
  ASSERT_FALSE(err);
  EXPECT_EQ(err.error().kind, ErrorKind::overloaded);
  EXPECT_NE(err.error().message.find("answered HTTP 200 with an error"), std::string::npos) << err.error().message;
}

// ---- stream events ------------------------------------------------------------------------------

TEST(AnthropicStreamEvents, OnlyEventsAfterTheFirstContentCommit) {
  AnthropicStream s(dialect("deepseek"));
  auto start = s.process("message_start",
                         R"({"type":"message_start","message":{"id":"m","type":"message","role":"assistant","content":[],)"
                         R"("usage":{"input_tokens":8,"cache_read_input_tokens":32,"output_tokens":1}}})");
  EXPECT_EQ(start.action, AnthropicStream::Action::forward);
  EXPECT_EQ(start.name, "message_start");
  EXPECT_FALSE(start.content);
  auto ping = s.process("ping", R"({"type":"ping"})");
  EXPECT_TRUE(ping.keepalive);
  EXPECT_FALSE(ping.content);
  auto block = s.process("content_block_start",
                         R"({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}})");
  EXPECT_FALSE(block.content);
  auto think = s.process("content_block_delta",
                         R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me think."}})");
  EXPECT_TRUE(think.content);
  EXPECT_EQ(think.est_tokens, 4);  // 13 bytes, about four a token
  auto sig = s.process("content_block_delta",
                       R"({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM"}})");
  EXPECT_EQ(sig.est_tokens, 0);
  auto tool = s.process("content_block_start",
                        R"({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t","name":"ls","input":{}}})");
  EXPECT_TRUE(tool.content);
  auto json = s.process("content_block_delta",
                        R"({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"path\": \"/tmp\"}"}})");
  EXPECT_EQ(json.est_tokens, 4);
  auto cjk = s.process("content_block_delta",
                       "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"text_delta\",\"text\":\"\xe4\xbd\xa0\xe5\xa5\xbd\"}}");
  EXPECT_EQ(cjk.est_tokens, 2);
  EXPECT_TRUE(s.process("content_block_stop", R"({"type":"content_block_stop","index":2})").content);
  auto delta = s.process("message_delta",
                         R"({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":20}})");
  EXPECT_TRUE(delta.content);
  EXPECT_EQ(s.stop_reason(), "tool_use");
  EXPECT_TRUE(s.saw_message_delta());
  EXPECT_EQ(s.process("message_stop", R"({"type":"message_stop"})").action, AnthropicStream::Action::stop);
  EXPECT_EQ(s.usage().prompt_tokens, 40);
  EXPECT_EQ(s.usage().cached_tokens, 32);
  EXPECT_EQ(s.usage().completion_tokens, 20);
}

TEST(AnthropicStreamEvents, UsageIsFinalOnlyOnceMessageDeltaReportsIt) {
  AnthropicStream s(dialect("glm"));
  EXPECT_EQ(s.input_tokens_reported(), -1);
  s.process("message_start", R"({"type":"message_start","message":{"usage":{"input_tokens":6,"cache_read_input_tokens":64}}})");
  s.process("content_block_delta", R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}})");
  EXPECT_FALSE(s.usage().present);  // cut here: the output is not known, the input is
  EXPECT_EQ(s.input_tokens_reported(), 70);
  s.process("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":null})");
  EXPECT_FALSE(s.usage().present);  // a null usage is no report
  s.process("message_delta", R"({"type":"message_delta","delta":{},"usage":{"output_tokens":9}})");
  EXPECT_TRUE(s.usage().present);
  EXPECT_EQ(s.usage().completion_tokens, 9);
  EXPECT_EQ(s.stop_reason(), "end_turn");  // kept from the first delta

  AnthropicStream bad(dialect("glm"));
  bad.process("message_start", R"({"type":"message_start","message":{"usage":{"input_tokens":-1}}})");
  EXPECT_EQ(bad.input_tokens_reported(), -1);
}

TEST(AnthropicStreamEvents, TextBlockOpenedWithTextIsContent) {
  AnthropicStream s(dialect("qwen"));
  auto b = s.process("", R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":"Hello there"}})");
  EXPECT_EQ(b.name, "content_block_start");  // named by its data when the SSE event had no name
  EXPECT_TRUE(b.content);
  EXPECT_EQ(b.est_tokens, 3);
}

TEST(AnthropicStreamEvents, UnknownTypesAreRelayedWithoutCommitting) {
  AnthropicStream s(dialect("minimax"));
  auto u = s.process("vendor_progress", R"({"type":"vendor_progress","pct":5})");
  EXPECT_EQ(u.action, AnthropicStream::Action::forward);
  EXPECT_EQ(u.name, "vendor_progress");
  EXPECT_FALSE(u.content);
  // The data's type wins over a different SSE name: clients dispatch on the type.
  auto m = s.process("ping", R"({"type":"message_stop"})");
  EXPECT_EQ(m.action, AnthropicStream::Action::stop);
}

TEST(AnthropicStreamEvents, BrokenEventsAreUpstreamErrors) {
  AnthropicStream s(dialect("kimi"));
  for (const char* bad : {"{not json", "[1,2]", "\"text\"", "{}"}) {
    auto step = s.process("", bad);
    ASSERT_EQ(step.action, AnthropicStream::Action::error) << bad;
    EXPECT_EQ(step.error->kind, ErrorKind::server_error) << bad;
    EXPECT_EQ(step.error->source, core::ErrorSource::upstream) << bad;
  }
}

TEST(AnthropicStreamEvents, ErrorEventsMapAsChatCompletionsWould) {
  struct Case {
    const char* dialect;
    const char* data;
    ErrorKind kind;
    bool retryable;
  } cases[] = {
      {"deepseek", R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})", ErrorKind::overloaded, true},
      {"glm", R"({"type":"error","error":{"type":"rate_limit_error","code":"1113","message":"Insufficient balance"}})",
       ErrorKind::out_of_balance, true},
      {"glm", R"({"type":"error","error":{"type":"rate_limit_error","code":"1302","message":"High concurrency"}})",
       ErrorKind::rate_limited, true},
      {"kimi", R"({"type":"error","error":{"type":"api_error","message":"boom"}})", ErrorKind::server_error, true},
      {"qwen", R"({"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 250000 tokens > 200000 maximum"}})",
       ErrorKind::context_too_long, false},
      {"minimax", R"({"type":"error","error":"just a string"})", ErrorKind::server_error, true},
      {"minimax", R"({"type":"error"})", ErrorKind::server_error, true},
  };
  for (const auto& c : cases) {
    AnthropicStream s(dialect(c.dialect));
    auto step = s.process("error", c.data);
    ASSERT_EQ(step.action, AnthropicStream::Action::error) << c.data;
    EXPECT_EQ(step.error->kind, c.kind) << c.data;
    EXPECT_EQ(step.error->retryable(), c.retryable) << c.data;
    EXPECT_EQ(step.error->upstream_status, 200) << c.data;
    EXPECT_NE(step.error->message.find("mid-stream"), std::string::npos) << step.error->message;
  }
}

// ---- HTTP errors --------------------------------------------------------------------------------

TEST(AnthropicErrors, StatusVendorCodeAndTypeDecideTheKind) {
  struct Case {
    const char* dialect;
    int status;
    const char* body;
    ErrorKind kind;
    bool retryable;
  } cases[] = {
      // GLM's Anthropic route says "rate limit" and means "no money" (code 1113).
      {"glm", 429, R"({"type":"error","error":{"type":"rate_limit_error","code":"1113","message":"Insufficient balance"}})",
       ErrorKind::out_of_balance, true},
      {"glm", 429, R"({"type":"error","error":{"type":"rate_limit_error","code":"1302","message":"High concurrency"}})",
       ErrorKind::rate_limited, true},
      {"glm", 401, R"({"type":"error","error":{"type":"authentication_error","code":"1000","message":"Authentication Failed"}})",
       ErrorKind::auth, true},
      {"deepseek", 402, R"({"type":"error","error":{"type":"invalid_request_error","message":"Insufficient Balance"}})",
       ErrorKind::out_of_balance, true},
      {"deepseek", 529, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})", ErrorKind::overloaded, true},
      {"kimi", 500, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})", ErrorKind::overloaded, true},
      {"kimi", 403, R"({"type":"error","error":{"type":"exceeded_current_quota_error","message":"suspended"}})",
       ErrorKind::out_of_balance, true},
      {"qwen", 403, R"({"type":"error","error":{"type":"Arrearage","message":"Access denied"}})", ErrorKind::out_of_balance, true},
      {"qwen", 400, R"({"type":"error","error":{"type":"billing_error","message":"no credit"}})", ErrorKind::out_of_balance, true},
      {"minimax", 429, R"({"type":"error","error":{"type":"rate_limit_error","message":"slow down"}})", ErrorKind::rate_limited, true},
      {"minimax", 400, R"({"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 300000 tokens > 204800 maximum"}})",
       ErrorKind::context_too_long, false},
      {"deepseek", 400, R"({"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: must be positive"}})",
       ErrorKind::bad_request, false},
      {"openai_compatible", 413, R"({"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum size"}})",
       ErrorKind::bad_request, false},
      {"openai_compatible", 404, R"({"type":"error","error":{"type":"not_found_error","message":"model: x"}})", ErrorKind::not_found, true},
      {"openai_compatible", 500, "<html>oops</html>", ErrorKind::server_error, true},
      {"openai_compatible", 504, "", ErrorKind::timeout, true},
  };
  for (const auto& c : cases) {
    auto e = providers::classify_anthropic_error(dialect(c.dialect), c.status, c.body, "");
    EXPECT_EQ(e.kind, c.kind) << c.dialect << " " << c.status << " " << c.body;
    EXPECT_EQ(e.retryable(), c.retryable) << c.dialect << " " << c.status << " " << c.body;
    EXPECT_EQ(e.upstream_status, c.status);
    EXPECT_EQ(e.source, core::ErrorSource::upstream);
  }
}

TEST(AnthropicErrors, RetryAfterAndVendorCodeAreKept) {
  auto e = providers::classify_anthropic_error(
      dialect("glm"), 429, R"({"type":"error","error":{"type":"rate_limit_error","code":"1302","message":"busy"}})", "3");
  EXPECT_EQ(e.retry_after, std::chrono::milliseconds(3000));
  EXPECT_EQ(e.code, "1302");
  EXPECT_NE(e.message.find("glm returned HTTP 429"), std::string::npos) << e.message;
}

TEST(AnthropicErrors, EchoedCredentialsNeverReachTheMessage) {
  auto e = providers::classify_anthropic_error(
      dialect("kimi"), 401,
      R"({"type":"error","error":{"type":"authentication_error","message":"bad x-api-key sk-abcdefghijklmnopqrstuv"}})", "");
  EXPECT_EQ(e.message.find("abcdefghijklmnop"), std::string::npos) << e.message;
}

TEST(AnthropicErrors, StatusOfEachDocumentedType) {
  EXPECT_EQ(providers::anthropic_error_status("invalid_request_error"), 400);
  EXPECT_EQ(providers::anthropic_error_status("authentication_error"), 401);
  EXPECT_EQ(providers::anthropic_error_status("billing_error"), 402);
  EXPECT_EQ(providers::anthropic_error_status("permission_error"), 403);
  EXPECT_EQ(providers::anthropic_error_status("not_found_error"), 404);
  EXPECT_EQ(providers::anthropic_error_status("request_too_large"), 413);
  EXPECT_EQ(providers::anthropic_error_status("rate_limit_error"), 429);
  EXPECT_EQ(providers::anthropic_error_status("api_error"), 500);
  EXPECT_EQ(providers::anthropic_error_status("timeout_error"), 504);
  EXPECT_EQ(providers::anthropic_error_status("overloaded_error"), 529);
  EXPECT_EQ(providers::anthropic_error_status("something_new"), 500);
  EXPECT_EQ(providers::anthropic_error_status(""), 500);
}

// ---- which regions speak Anthropic --------------------------------------------------------------

std::unique_ptr<providers::Provider> make(providers::ProviderConfig c) {
  auto p = providers::make_openai_compatible(c);
  EXPECT_TRUE(p) << (p ? "" : p.error().message);
  return p ? std::move(p).value() : nullptr;
}

TEST(AnthropicEndpoints, BuiltInRegionsThatHaveOne) {
  auto deepseek = make({.name = "deepseek"});
  EXPECT_TRUE(deepseek->speaks_anthropic(""));
  EXPECT_TRUE(deepseek->speaks_anthropic("global"));
  auto glm = make({.name = "glm"});
  EXPECT_TRUE(glm->speaks_anthropic("intl"));
  EXPECT_TRUE(glm->speaks_anthropic("cn"));
  EXPECT_FALSE(glm->speaks_anthropic("intl-coding"));  // unverified: none assumed
  auto kimi = make({.name = "kimi"});
  EXPECT_TRUE(kimi->speaks_anthropic("intl"));
  EXPECT_FALSE(kimi->speaks_anthropic("cn"));
  auto qwen = make({.name = "qwen"});
  for (const char* r : {"cn-beijing", "ap-southeast-1", "us-east-1", "cn-hongkong", "global"})
    EXPECT_TRUE(qwen->speaks_anthropic(r)) << r;
  EXPECT_FALSE(qwen->speaks_anthropic("no-such-region"));
  auto minimax = make({.name = "minimax"});
  EXPECT_TRUE(minimax->speaks_anthropic("intl"));
  EXPECT_FALSE(minimax->speaks_anthropic("cn"));
}

TEST(AnthropicEndpoints, AnOverriddenBaseUrlTurnsTheBuiltInOneOff) {
  // An egress proxy or a fake in base_url: the Anthropic endpoint must not bypass it.
  auto proxied = make({.name = "deepseek", .base_url = "http://127.0.0.1:9/"});
  EXPECT_FALSE(proxied->speaks_anthropic(""));
  auto both = make({.name = "deepseek", .base_url = "http://127.0.0.1:9", .anthropic_base_url = "http://127.0.0.1:9/anthropic"});
  EXPECT_TRUE(both->speaks_anthropic(""));
  providers::ProviderConfig per_region{.name = "glm"};
  per_region.base_urls["cn"] = "http://127.0.0.1:9/api/paas/v4";
  auto glm = make(per_region);
  EXPECT_FALSE(glm->speaks_anthropic("cn"));
  EXPECT_TRUE(glm->speaks_anthropic("intl"));
  per_region.anthropic_base_urls["cn"] = "http://127.0.0.1:9/api/anthropic";
  per_region.anthropic_base_urls["intl-coding"] = "http://127.0.0.1:9/api/anthropic";
  auto glm2 = make(per_region);
  EXPECT_TRUE(glm2->speaks_anthropic("cn"));
  EXPECT_TRUE(glm2->speaks_anthropic("intl-coding"));
}

TEST(AnthropicEndpoints, OpenAICompatibleServersOnlyWhenConfigured) {
  auto plain = make({.name = "vllm", .type = "openai_compatible", .base_url = "http://127.0.0.1:9/v1"});
  EXPECT_FALSE(plain->speaks_anthropic(""));
  auto with = make({.name = "vllm", .type = "openai_compatible", .base_url = "http://127.0.0.1:9/v1",
                    .anthropic_base_url = "http://127.0.0.1:9"});
  EXPECT_TRUE(with->speaks_anthropic(""));
  EXPECT_TRUE(with->speaks_anthropic("default"));
}

TEST(AnthropicEndpoints, BadSettingsAreRefused) {
  providers::ProviderConfig unknown_region{.name = "kimi"};
  unknown_region.anthropic_base_urls["mars"] = "https://example.com/anthropic";
  auto r = providers::check_provider_config(unknown_region);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("mars"), std::string::npos) << r.error().message;
  auto bad_url = providers::check_provider_config({.name = "kimi", .anthropic_base_url = "ftp://example.com"});
  ASSERT_FALSE(bad_url);
  EXPECT_NE(bad_url.error().message.find("(Anthropic)"), std::string::npos) << bad_url.error().message;
}

}  // namespace
