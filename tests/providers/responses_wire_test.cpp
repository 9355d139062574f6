// The OpenAI Responses wire format of the native relay: the upstream body, usage from Response
// objects and stream events, which events commit an attempt, in-band errors mapped as chat
// completions map them, and which regions speak the API.
#include "providers/responses_wire.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "providers/dialect.h"
#include "providers/openai_compatible.h"

namespace {

using core::ErrorKind;
using providers::NativeAction;
using providers::ResponsesStream;

const providers::Dialect& dialect(const char* name) { return *providers::find_dialect(name); }

TEST(ResponsesBody, ModelStoreAndPreviousIdRewrittenTheRestKept) {
  auto out = providers::rewrite_responses_body(
      R"({"model":"auto","input":[{"type":"message","role":"user","content":"hi"}],"store":true,)"
      R"("previous_response_id":"resp_1","tools":[{"type":"web_search","model":"keep"}],"x":1.50})",
      "qwen3.8-max");
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, R"({"model":"qwen3.8-max","input":[{"type":"message","role":"user","content":"hi"}],)"
                  R"("store":false,"tools":[{"type":"web_search","model":"keep"}],"x":1.50})");
}

TEST(ResponsesBody, MissingMembersAreInsertedAndDuplicatesCannotSurvive) {
  auto out = providers::rewrite_responses_body(R"({"input":"hi"})", "deepseek-flash");
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, R"({"model":"deepseek-flash","store":false,"input":"hi"})");
  auto dup = providers::rewrite_responses_body(R"({"store":true,"input":"x","st\u006fre":true})", "m");
  ASSERT_TRUE(dup);
  EXPECT_EQ(*dup, R"({"model":"m","store":false,"input":"x","st\u006fre":false})");
  EXPECT_FALSE(providers::rewrite_responses_body("[1]", "m"));
  EXPECT_FALSE(providers::rewrite_responses_body("{\"a\":", "m"));
}

TEST(ResponsesUsage, EveryFigureAndTheBoundsOfTheParts) {
  auto u = providers::read_responses_usage(
      R"({"usage":{"input_tokens":50,"input_tokens_details":{"cached_tokens":24},"output_tokens":18,)"
      R"("output_tokens_details":{"reasoning_tokens":6},"total_tokens":68}})");
  EXPECT_TRUE(u.present);
  EXPECT_FALSE(u.malformed);
  EXPECT_EQ(u.prompt_tokens, 50);
  EXPECT_EQ(u.cached_tokens, 24);
  EXPECT_EQ(u.completion_tokens, 18);
  EXPECT_EQ(u.reasoning_tokens, 6);
  EXPECT_FALSE(providers::read_responses_usage(R"({"usage":null})").present);
  EXPECT_TRUE(providers::read_responses_usage(R"({"usage":{"input_tokens":-1,"output_tokens":2}})").malformed);
  EXPECT_TRUE(providers::read_responses_usage(R"({"usage":{"input_tokens":1.5,"output_tokens":2}})").malformed);
  // A part larger than its whole is a lie: not priced.
  EXPECT_TRUE(providers::read_responses_usage(
                  R"({"usage":{"input_tokens":5,"input_tokens_details":{"cached_tokens":9},"output_tokens":2}})")
                  .malformed);
  EXPECT_TRUE(providers::read_responses_usage(
                  R"({"usage":{"input_tokens":5,"output_tokens":2,"output_tokens_details":{"reasoning_tokens":3}}})")
                  .malformed);
}

TEST(ResponsesAnswer, ResponseObjectErrorObjectAndGarbage) {
  auto ok = providers::read_responses_answer(
      dialect("qwen"), R"({"id":"x","object":"response","status":"incomplete","output":[],"usage":{"input_tokens":3,"output_tokens":4}})");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, "incomplete");
  EXPECT_EQ(ok->usage.completion_tokens, 4);
  auto failed = providers::read_responses_answer(
      dialect("deepseek"), R"({"object":"response","status":"failed","error":{"code":"rate_limit_exceeded","message":"slow"}})");
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().kind, ErrorKind::rate_limited);
  auto error_only = providers::read_responses_answer(dialect("deepseek"), R"({"error":{"code":"server_error","message":"x"}})");
  ASSERT_FALSE(error_only);
  EXPECT_TRUE(error_only.error().retryable());
  EXPECT_FALSE(providers::read_responses_answer(dialect("qwen"), "<html>"));
  EXPECT_FALSE(providers::read_responses_answer(dialect("qwen"), R"({"object":"chat.completion"})"));
}

TEST(ResponsesStreamEvents, WhatCommitsAnAttempt) {
  ResponsesStream s(dialect("qwen"));
  auto held = [&](std::string_view data) {
    auto step = s.process("", data);
    EXPECT_EQ(step.action, NativeAction::forward) << data;
    return !step.content;
  };
  EXPECT_TRUE(held(R"({"type":"response.created","response":{"id":"v"}})"));
  EXPECT_TRUE(held(R"({"type":"response.in_progress","response":{"id":"v"}})"));
  EXPECT_TRUE(held(R"({"type":"response.output_item.added","item":{"type":"message","content":[]}})"));
  EXPECT_TRUE(held(R"({"type":"response.output_item.added","item":{"type":"reasoning","summary":[]}})"));
  EXPECT_TRUE(held(R"({"type":"response.content_part.added","part":{"type":"output_text","text":""}})"));
  EXPECT_TRUE(held(R"({"type":"response.some_future_event"})"));
  EXPECT_FALSE(held(R"({"type":"response.output_item.added","item":{"type":"function_call","name":"f"}})"));
  auto delta = s.process("", R"({"type":"response.output_text.delta","delta":"Hello world, this is text"})");
  EXPECT_TRUE(delta.content);
  EXPECT_GT(delta.est_tokens, 0);
  EXPECT_FALSE(held(R"({"type":"response.output_text.done","text":"x"})"));
  // The SSE event name stands in for a missing type.
  EXPECT_EQ(s.process("response.output_text.delta", R"({"delta":"x"})").name, "response.output_text.delta");
}

TEST(ResponsesStreamEvents, CompletedStopsWithTheUsage) {
  ResponsesStream s(dialect("deepseek"));
  auto step = s.process("response.completed", R"({"type":"response.completed","response":{"status":"completed",)"
                                              R"("usage":{"input_tokens":40,"input_tokens_details":{"cached_tokens":32},)"
                                              R"("output_tokens":20,"output_tokens_details":{"reasoning_tokens":8}}}})");
  EXPECT_EQ(step.action, NativeAction::stop);
  EXPECT_EQ(s.status(), "completed");
  EXPECT_TRUE(s.usage().present);
  EXPECT_EQ(s.usage().prompt_tokens, 40);
  EXPECT_EQ(s.usage().cached_tokens, 32);
  EXPECT_EQ(s.usage().reasoning_tokens, 8);
  ResponsesStream t(dialect("qwen"));
  EXPECT_EQ(t.process("", R"({"type":"response.incomplete","response":{"status":"incomplete"}})").action, NativeAction::stop);
  EXPECT_EQ(t.status(), "incomplete");
  EXPECT_FALSE(t.usage().present);
}

TEST(ResponsesStreamEvents, ErrorsMapAsChatCompletionsMapThem) {
  ResponsesStream s(dialect("qwen"));
  auto e = s.process("", R"({"type":"error","code":"rate_limit_exceeded","message":"slow down"})");
  ASSERT_EQ(e.action, NativeAction::error);
  EXPECT_EQ(e.error->kind, ErrorKind::rate_limited);
  EXPECT_EQ(e.error->upstream_status, 200);
  auto f = s.process("", R"({"type":"response.failed","response":{"error":{"code":"server_error","message":"boom"}}})");
  ASSERT_EQ(f.action, NativeAction::error);
  EXPECT_TRUE(f.error->retryable());
  EXPECT_NE(f.error->message.find("boom"), std::string::npos);
  for (const char* bad : {"{nope", "[1]", R"({"no_type":1})"})
    EXPECT_EQ(s.process("", bad).action, NativeAction::error) << bad;
}

std::unique_ptr<providers::Provider> make(providers::ProviderConfig c) {
  auto p = providers::make_openai_compatible(c);
  EXPECT_TRUE(p) << (p ? "" : p.error().message);
  return p ? std::move(p).value() : nullptr;
}

TEST(ResponsesEndpoints, VerifiedVendorsOnUnverifiedOnlyWhenConfigured) {
  auto qwen = make({.name = "qwen"});
  for (const char* r : {"cn-beijing", "ap-southeast-1", "us-east-1", "cn-hongkong", "global"})
    EXPECT_TRUE(qwen->speaks_responses(r)) << r;
  EXPECT_TRUE(make({.name = "deepseek"})->speaks_responses(""));
  // Kimi's /responses is a secondary source's listing: off unless configured.
  EXPECT_FALSE(make({.name = "kimi"})->speaks_responses("intl"));
  EXPECT_TRUE(make({.name = "kimi", .responses = true})->speaks_responses("intl"));
  EXPECT_TRUE(make({.name = "glm"})->speaks_responses("intl-coding"));
  for (const char* r : {"intl", "cn", "cn-coding"}) EXPECT_FALSE(make({.name = "glm"})->speaks_responses(r)) << r;
  EXPECT_FALSE(make({.name = "minimax"})->speaks_responses("intl"));
  EXPECT_FALSE(make({.name = "qwen", .responses = false})->speaks_responses("ap-southeast-1"));
  // The endpoint follows an overridden base URL (a proxy or a fake sees every request).
  providers::ProviderConfig proxied{.name = "qwen"};
  proxied.base_urls["ap-southeast-1"] = "http://127.0.0.1:9/compatible-mode/v1";
  EXPECT_TRUE(make(proxied)->speaks_responses(""));
  EXPECT_FALSE(make({.name = "vllm", .type = "openai_compatible", .base_url = "http://127.0.0.1:9/v1"})->speaks_responses(""));
  EXPECT_TRUE(make({.name = "vllm", .type = "openai_compatible", .base_url = "http://127.0.0.1:9/v1", .responses = true})
                  ->speaks_responses(""));
}

std::map<std::string, std::string> bases(const providers::ProviderConfig& c) {
  auto b = providers::responses_bases(c);
  EXPECT_TRUE(b) << (b ? "" : b.error().message);
  return b ? std::move(b).value() : std::map<std::string, std::string>{};
}

TEST(ResponsesEndpoints, GlmCodingPlanOnItsOwnBase) {
  // Not the chat base (api/coding/paas/v4): the Coding Plan's Responses API is at api/v1 [V].
  auto glm = bases({.name = "glm"});
  EXPECT_EQ(glm, (std::map<std::string, std::string>{{"intl-coding", "https://api.z.ai:443/api/v1"}}));
  EXPECT_TRUE(bases({.name = "glm", .responses = false}).empty());
  // responses: true adds the chat bases; the own base still wins for intl-coding.
  auto all = bases({.name = "glm", .responses = true});
  EXPECT_EQ(all.at("intl-coding"), "https://api.z.ai:443/api/v1");
  EXPECT_EQ(all.at("intl"), "https://api.z.ai:443/api/paas/v4");
  // The chat base follows an overridden URL; a base of its own never does.
  EXPECT_EQ(bases({.name = "qwen", .base_url = "http://127.0.0.1:9/cm/v1"}).at("ap-southeast-1"),
            "http://127.0.0.1:9/cm/v1");
}

TEST(ResponsesEndpoints, AnOverriddenBaseUrlTurnsTheBuiltInOwnBaseOff) {
  // An egress proxy: the key must not go to api.z.ai around it.
  EXPECT_TRUE(bases({.name = "glm", .base_url = "http://127.0.0.1:9/c", .default_region = "intl-coding"}).empty());
  providers::ProviderConfig per_region{.name = "glm"};
  per_region.base_urls["intl-coding"] = "http://127.0.0.1:9/api/coding/paas/v4";
  EXPECT_TRUE(bases(per_region).empty());
  EXPECT_FALSE(make(per_region)->speaks_responses("intl-coding"));
  per_region.responses_base_urls["intl-coding"] = "http://127.0.0.1:9/api/v1";
  EXPECT_EQ(bases(per_region), (std::map<std::string, std::string>{{"intl-coding", "http://127.0.0.1:9/api/v1"}}));
  EXPECT_TRUE(make(per_region)->speaks_responses("intl-coding"));
  // Overriding another region keeps intl-coding's built-in base.
  providers::ProviderConfig other{.name = "glm"};
  other.base_urls["intl"] = "http://127.0.0.1:9/api/paas/v4";
  EXPECT_EQ(bases(other).count("intl-coding"), 1u);
  // responses_base_url is the default region's.
  auto vllm = bases({.name = "vllm", .type = "openai_compatible", .base_url = "http://127.0.0.1:9/v1",
                     .responses_base_url = "http://127.0.0.1:8/r"});
  EXPECT_EQ(vllm, (std::map<std::string, std::string>{{"default", "http://127.0.0.1:8/r"}}));
}

TEST(ResponsesEndpoints, BadSettingsAreRefused) {
  providers::ProviderConfig unknown_region{.name = "glm"};
  unknown_region.responses_base_urls["mars"] = "https://example.com/api/v1";
  auto r = providers::check_provider_config(unknown_region);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("responses_base_urls names region 'mars'"), std::string::npos) << r.error().message;
  auto bad_url = providers::check_provider_config({.name = "glm", .responses_base_url = "ftp://example.com"});
  ASSERT_FALSE(bad_url);
  EXPECT_NE(bad_url.error().message.find("(Responses)"), std::string::npos) << bad_url.error().message;
  auto contradiction =
      providers::check_provider_config({.name = "glm", .responses = false, .responses_base_url = "http://127.0.0.1:9"});
  ASSERT_FALSE(contradiction);
  EXPECT_NE(contradiction.error().message.find("contradicts"), std::string::npos) << contradiction.error().message;
}

}  // namespace
