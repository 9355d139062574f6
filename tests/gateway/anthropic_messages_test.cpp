#include "gateway/api/anthropic_messages.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "gateway/api/openai_chat.h"
#include "tests/gateway/golden.h"

// Golden cases under tests/gateway/anthropic_golden/ (see README.md there):
//   request/NAME.in.json   Anthropic request  -> NAME.out.json (OpenAI body) or NAME.err.txt (param + error JSON)
//   response/NAME.openai.json  OpenAI completion -> NAME.anthropic.json or NAME.err.txt
//   stream/NAME.chunks     OpenAI chunks, one per line, then FINISH or FAIL <kind> -> NAME.events (SSE text)
// GOLDEN_UPDATE=1 rewrites the expected files from the current output (review the diff before committing).

namespace fs = std::filesystem;
using gateway::AnthropicStreamEncoder;
using gateway::SseEvent;
using gateway::TranslatedRequest;

namespace {

const fs::path kGolden = GW_ANTHROPIC_GOLDEN_DIR;

using golden::read_file;
using golden::sibling;
using golden::trim_newline;
using golden::expect_golden;

std::vector<fs::path> cases(const std::string& dir, const std::string& suffix) { return golden::cases(kGolden / dir, suffix); }

std::string error_text(const core::Error& e) {
  return "param: " + e.param + "\nstatus: " + std::to_string(gateway::anthropic_status(e)) + "\n" +
         gateway::anthropic_error_json(e) + "\n";
}

const char* kDefaultRequest =
    R"({"model":"claude-sonnet-4-5","max_tokens":1024,"stop_sequences":["STOP"],"messages":[{"role":"user","content":"hi"}]})";

TranslatedRequest request_for(const fs::path& input, const std::string& suffix) {
  const fs::path req = sibling(input, suffix, ".request.json");
  auto r = gateway::anthropic_to_openai(fs::exists(req) ? trim_newline(read_file(req)) : kDefaultRequest);
  EXPECT_TRUE(r.ok()) << req;
  return r.ok() ? std::move(r).value() : TranslatedRequest{};
}

std::string sse(const std::vector<SseEvent>& events) {
  std::string s;
  for (const auto& e : events) s += "event: " + e.name + "\ndata: " + e.data + "\n\n";
  return s;
}

core::ErrorKind kind_named(const std::string& k) {
  if (k == "overloaded") return core::ErrorKind::overloaded;
  if (k == "rate_limited") return core::ErrorKind::rate_limited;
  if (k == "timeout") return core::ErrorKind::timeout;
  return core::ErrorKind::server_error;
}

// Runs a stream case: the encoder's events as SSE text, a feed error as a "# feed error:" line.
std::string run_stream(const fs::path& chunks, const TranslatedRequest& req) {
  AnthropicStreamEncoder enc(req, 42);
  std::istringstream in(read_file(chunks));
  std::string line, out;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line == "FINISH") {
      out += sse(enc.finish());
    } else if (line.rfind("FAIL ", 0) == 0) {
      out += sse(enc.fail(core::make_error(kind_named(line.substr(5)), "upstream broke", core::ErrorSource::upstream)));
    } else {
      // A chunk the encoder refuses ends the stream the way the pipeline ends it: fail(error).
      auto r = enc.feed(line);
      if (r.ok()) {
        out += sse(*r);
      } else {
        out += "# feed error: " + r.error().message + "\n";
        out += sse(enc.fail(r.error()));
      }
    }
  }
  return out;
}

// Checks Anthropic's event grammar independently of the golden text:
// message_start ping (block_start delta* [signature_delta for thinking] block_stop)* message_delta message_stop,
// or an error event anywhere, after which nothing follows; block indexes count up from 0.
std::string grammar_violation(const std::string& sse_text) {
  std::istringstream in(sse_text);
  std::string line, prev = "begin";
  int open_index = -1, next_index = 0;
  std::string open_type;
  bool signed_thinking = false;
  simdjson::dom::parser parser;
  while (std::getline(in, line)) {
    if (line.rfind("event: ", 0) != 0) continue;
    const std::string name = line.substr(7);
    std::string data;
    std::getline(in, data);
    simdjson::dom::element doc;
    if (data.rfind("data: ", 0) != 0 || parser.parse(data.substr(6)).get(doc)) return "bad data line after " + name;
    std::string_view type;
    if (doc["type"].get(type) || type != name) return "event " + name + " has data type " + std::string(type);
    if (prev == "error" || prev == "message_stop") return name + " after " + prev;
    if (name == "error") { prev = name; continue; }
    if (prev == "begin" && name != "message_start") return "first event is " + name;
    if (name == "ping" && prev != "message_start") return "ping not right after message_start";
    if (name == "content_block_start") {
      if (open_index >= 0) return "block opened while block " + std::to_string(open_index) + " is open";
      int64_t idx;
      if (doc["index"].get(idx) || idx != next_index) return "block index " + std::to_string(idx) + " out of order";
      open_index = static_cast<int>(idx);
      ++next_index;
      std::string_view bt;
      if (doc["content_block"]["type"].get(bt)) return "block without type";
      open_type = std::string(bt);
      signed_thinking = false;
    }
    if (name == "content_block_delta" || name == "content_block_stop") {
      int64_t idx;
      if (doc["index"].get(idx) || idx != open_index) return name + " for a block that is not open";
    }
    if (name == "content_block_delta") {
      std::string_view dt;
      if (doc["delta"]["type"].get(dt)) return "delta without type";
      const std::map<std::string, std::string> allowed{{"text", "text_delta"}, {"tool_use", "input_json_delta"}};
      if (open_type == "thinking") {
        if (signed_thinking) return "thinking delta after the signature";
        if (dt == "signature_delta") signed_thinking = true;
        else if (dt != "thinking_delta") return std::string(dt) + " in a thinking block";
      } else if (allowed.at(open_type) != dt) {
        return std::string(dt) + " in a " + open_type + " block";
      }
    }
    if (name == "content_block_stop") {
      if (open_type == "thinking" && !signed_thinking) return "thinking block stopped without signature_delta";
      open_index = -1;
    }
    if (name == "message_delta" && open_index >= 0) return "message_delta while a block is open";
    if (name == "message_stop" && prev != "message_delta") return "message_stop not after message_delta";
    prev = name;
  }
  if (prev != "message_stop" && prev != "error" && prev != "begin") return "stream ends after " + prev;
  return "";
}

}  // namespace

// --- Golden files ------------------------------------------------------------------------------------

TEST(AnthropicGolden, Requests) {
  const auto all = cases("request", ".in.json");
  ASSERT_GE(all.size(), 20u);
  for (const auto& in : all) {
    SCOPED_TRACE(in.filename().string());
    auto r = gateway::anthropic_to_openai(trim_newline(read_file(in)));
    if (r.ok()) {
      expect_golden(sibling(in, ".in.json", ".out.json"), r->chat.raw_body + "\n");
      EXPECT_FALSE(fs::exists(sibling(in, ".in.json", ".err.txt")));
      // The body must be one the OpenAI surface accepts (the translation parsed it once already).
      EXPECT_TRUE(gateway::parse_chat_request(r->chat.raw_body).ok());
    } else {
      expect_golden(sibling(in, ".in.json", ".err.txt"), error_text(r.error()));
      EXPECT_FALSE(fs::exists(sibling(in, ".in.json", ".out.json")));
      EXPECT_EQ(r.error().kind, core::ErrorKind::bad_request);
      EXPECT_EQ(gateway::anthropic_status(r.error()), 400);
    }
  }
}

TEST(AnthropicGolden, Responses) {
  const auto all = cases("response", ".openai.json");
  ASSERT_GE(all.size(), 8u);
  for (const auto& in : all) {
    SCOPED_TRACE(in.filename().string());
    const TranslatedRequest req = request_for(in, ".openai.json");
    auto r = gateway::openai_to_anthropic_response(trim_newline(read_file(in)), req);
    if (r.ok()) {
      expect_golden(sibling(in, ".openai.json", ".anthropic.json"), *r + "\n");
      simdjson::dom::parser p;
      EXPECT_FALSE(p.parse(*r).error()) << "not JSON: " << *r;
    } else {
      expect_golden(sibling(in, ".openai.json", ".err.txt"), error_text(r.error()));
    }
  }
}

TEST(AnthropicGolden, Streams) {
  const auto all = cases("stream", ".chunks");
  ASSERT_GE(all.size(), 8u);
  for (const auto& in : all) {
    SCOPED_TRACE(in.filename().string());
    const TranslatedRequest req = request_for(in, ".chunks");
    const std::string out = run_stream(in, req);
    expect_golden(sibling(in, ".chunks", ".events"), out);
    EXPECT_EQ(grammar_violation(out), "") << out;
  }
}

// The checker itself must catch broken sequences, or the stream goldens above prove little.
TEST(AnthropicGolden, GrammarCheckerRefusesBadOrders) {
  const std::string start =
      "event: message_start\ndata: {\"type\":\"message_start\"}\n\nevent: ping\ndata: {\"type\":\"ping\"}\n\n";
  const std::string open_text =
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\"}}\n\n";
  const std::string end = "event: message_delta\ndata: {\"type\":\"message_delta\"}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
  EXPECT_EQ(grammar_violation(start + end), "");
  EXPECT_NE(grammar_violation(start + open_text + end), "");  // block never stopped
  EXPECT_NE(grammar_violation(end), "");
  const std::string open_thinking =
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\"}}\n\n";
  const std::string stop0 = "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n";
  EXPECT_NE(grammar_violation(start + open_thinking + stop0 + end), "");  // no signature_delta
}

// --- Requests: features and hostile inputs beyond the goldens ----------------------------------------

TEST(AnthropicRequest, FeaturesReachTheOpenAIParse) {
  auto r = gateway::anthropic_to_openai(R"({"model":"claude-opus-4","max_tokens":4096,"stream":true,
    "thinking":{"type":"enabled","budget_tokens":2048},"tools":[{"name":"ls","input_schema":{"type":"object"}}],
    "messages":[{"role":"user","content":[{"type":"text","text":"你好"},
      {"type":"image","source":{"type":"url","url":"https://example.com/a.png"}}]}]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->model, "claude-opus-4");
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->thinking);
  EXPECT_TRUE(r->chat.stream);
  EXPECT_TRUE(r->chat.include_usage);
  EXPECT_TRUE(r->chat.wants_reasoning);
  EXPECT_EQ(r->chat.reasoning_effort, "default");  // a budget is no level
  EXPECT_TRUE(r->chat.has_tools);
  EXPECT_TRUE(r->chat.has_images);
  EXPECT_EQ(r->chat.max_tokens, 4096);
  EXPECT_EQ(r->chat.prompt_cjk_chars, 2);
}

TEST(AnthropicRequest, DisabledThinkingDoesNotAskForReasoning) {
  auto r = gateway::anthropic_to_openai(
      R"({"model":"m","max_tokens":10,"thinking":{"type":"disabled"},"messages":[{"role":"user","content":"x"}]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->thinking);
  EXPECT_FALSE(r->chat.wants_reasoning);
  EXPECT_EQ(r->chat.reasoning_effort, "none");
}

TEST(AnthropicRequest, HostileBodiesAreRefusedWithAParam) {
  const std::vector<std::pair<std::string, std::string>> bad{
      {R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":"a"}],"max_tokens":2})", "max_tokens"},
      {R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":"a","role":"assistant"}]})", "messages[0].role"},
      {R"({"model":"m","max_tokens":1,"Max_Tokens":5,"messages":[{"role":"user","content":"a"}]})", "Max_Tokens"},
      {R"({"model":"m","max_tokens":1.5,"messages":[{"role":"user","content":"a"}]})", "max_tokens"},
      {R"({"model":"m","max_tokens":"10","messages":[{"role":"user","content":"a"}]})", "max_tokens"},
      {R"({"model":"m","max_tokens":18446744073709551615,"messages":[{"role":"user","content":"a"}]})", "max_tokens"},
      {R"({"model":"m","max_tokens":0,"messages":[{"role":"user","content":"a"}]})", "max_tokens"},
      {R"({"model":7,"max_tokens":1,"messages":[{"role":"user","content":"a"}]})", "model"},
      {R"({"model":"m","max_tokens":1,"messages":{}})", "messages"},
      {R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"text","text":"a","text":"b"}]}]})",
       "messages[0].content[0].text"},
      {R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":"a"}],"tools":[{"name":"t","input_schema":{"a":1,"a":2}}]})",
       "tools[0].input_schema.a"},
      {R"({"model":"m","max_tokens":1,"temperature":1.5,"messages":[{"role":"user","content":"a"}]})", "temperature"},
      {R"({"model":"m","max_tokens":1,"top_k":-1,"messages":[{"role":"user","content":"a"}]})", "top_k"},
      {R"({"model":"m","max_tokens":1,"metadata":{"user_id":"u","tags":[]},"messages":[{"role":"user","content":"a"}]})",
       "metadata.tags"},
      {R"({"model":"m","max_tokens":1,"stream":"yes","messages":[{"role":"user","content":"a"}]})", "stream"},
      {R"({"model":"m","max_tokens":1,"stop_sequences":[""],"messages":[{"role":"user","content":"a"}]})",
       "stop_sequences[0]"},
  };
  for (const auto& [body, param] : bad) {
    auto r = gateway::anthropic_to_openai(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().kind, core::ErrorKind::bad_request) << body;
    EXPECT_EQ(r.error().param, param) << body << " -> " << r.error().message;
  }
}

TEST(AnthropicRequest, ForRelayNamesWhatOnlyANativeRelayCarries) {
  const std::string body =
      R"({"model":"m","max_tokens":4,"x_vendor_ext":{"a":1},"messages":[{"role":"user","content":"a"}]})";
  EXPECT_FALSE(gateway::anthropic_to_openai(body).ok());
  auto r = gateway::anthropic_to_openai_for_relay(body);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->untranslatable.has_value());
  EXPECT_EQ(r->untranslatable->kind, core::ErrorKind::bad_request);
  EXPECT_EQ(r->untranslatable->param, "x_vendor_ext");
  EXPECT_EQ(r->chat.raw_body.find("x_vendor_ext"), std::string::npos) << "left out of the translation";
  auto mcp = gateway::anthropic_to_openai_for_relay(
      R"({"model":"m","max_tokens":4,"mcp_servers":[],"messages":[{"role":"user","content":"a"}]})");
  ASSERT_TRUE(mcp.ok());
  ASSERT_TRUE(mcp->untranslatable.has_value());
  EXPECT_EQ(mcp->untranslatable->param, "mcp_servers");
  auto plain = gateway::anthropic_to_openai_for_relay(R"({"model":"m","max_tokens":4,"messages":[{"role":"user","content":"a"}]})");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->untranslatable.has_value());
  // Everything else is still refused up front: loose spellings, duplicates, wrong types.
  for (const char* bad : {R"({"model":"m","max_tokens":1,"Max_Tokens":5,"messages":[{"role":"user","content":"a"}]})",
                          R"({"model":"m","max_tokens":1,"max_tokens":2,"messages":[{"role":"user","content":"a"}]})",
                          R"({"model":"m","max_tokens":"1","x":1,"messages":[{"role":"user","content":"a"}]})"})
    EXPECT_FALSE(gateway::anthropic_to_openai_for_relay(bad).ok()) << bad;
}

TEST(AnthropicRequest, InvalidUtf8AndDepthAreNamed) {
  auto r = gateway::anthropic_to_openai("{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":\"\xC3\x28\"}]}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("UTF-8"), std::string::npos);
  std::string deep = R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":"a"}],"x":)";
  for (int i = 0; i < 100; ++i) deep += "[";
  for (int i = 0; i < 100; ++i) deep += "]";
  deep += "}";
  r = gateway::anthropic_to_openai(deep);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("64 levels"), std::string::npos);
  for (std::string junk : {"", "null", "[]", "{", "\"text\""}) EXPECT_FALSE(gateway::anthropic_to_openai(junk).ok()) << junk;
}

// Every prefix of valid bodies and chunks: an answer or an error, never a crash or a bad read
// (run under the sanitizers by tests/run_sanitizers.sh).
TEST(AnthropicRobustness, TruncatedInputsAreRefusedCleanly) {
  const fs::path rich = kGolden / "request" / "claude_code_turn.in.json";
  const std::string body = trim_newline(read_file(rich));
  ASSERT_TRUE(gateway::anthropic_to_openai(body).ok());
  for (size_t n = 0; n < body.size(); ++n) {
    auto r = gateway::anthropic_to_openai(body.substr(0, n));
    EXPECT_FALSE(r.ok()) << n;
  }
  const TranslatedRequest req = request_for(rich, ".in.json");
  const std::string chunk =
      R"({"id":"c","choices":[{"index":0,"delta":{"reasoning_content":"r","content":"t","tool_calls":[{"index":0,"id":"i","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":3}})";
  for (size_t n = 0; n <= chunk.size(); ++n) {
    AnthropicStreamEncoder enc(req, 1);
    auto r = enc.feed(chunk.substr(0, n));
    EXPECT_EQ(r.ok(), n == chunk.size()) << n;
    EXPECT_EQ(grammar_violation(sse(r.ok() ? *r : enc.fail(r.error())) + sse(enc.finish())), "") << n;
    auto whole = gateway::openai_to_anthropic_response(chunk.substr(0, n), req);
    EXPECT_FALSE(whole.ok());  // a chunk is not a completion, whole or cut
  }
}

// --- count_tokens --------------------------------------------------------------------------------------

TEST(AnthropicCountTokens, NeedsNoMaxTokensAndMatchesTheEstimate) {
  const std::string body = R"({"model":"m","system":"You are terse.","messages":[{"role":"user","content":"你好你好 hello world"}]})";
  EXPECT_FALSE(gateway::anthropic_to_openai(body).ok());  // max_tokens is required on /v1/messages
  auto r = gateway::anthropic_count_tokens_request(body);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const int64_t n = core::estimate_prompt_tokens(r->chat);
  EXPECT_GT(n, 4);
  EXPECT_EQ(gateway::count_tokens_json(*r), "{\"input_tokens\":" + std::to_string(n) + "}");
  // More text, more tokens (the estimate is not a constant).
  auto longer = gateway::anthropic_count_tokens_request(
      R"({"model":"m","system":"You are terse.","messages":[{"role":"user","content":"你好你好 hello world, and a much longer message than before"}]})");
  ASSERT_TRUE(longer.ok());
  EXPECT_GT(core::estimate_prompt_tokens(longer->chat), n);
  // Validation still applies.
  EXPECT_FALSE(gateway::anthropic_count_tokens_request(R"({"model":"m","messages":[]})").ok());
}

// --- Errors --------------------------------------------------------------------------------------------

TEST(AnthropicErrors, TypesAndStatuses) {
  using K = core::ErrorKind;
  using S = core::ErrorSource;
  struct Case {
    K kind;
    S source;
    bool permanent;
    const char* type;
    int status;
  };
  const Case cases[] = {
      {K::bad_request, S::client, false, "invalid_request_error", 400},
      {K::context_too_long, S::upstream, false, "invalid_request_error", 400},
      {K::auth, S::client, false, "authentication_error", 401},
      {K::auth, S::upstream, false, "api_error", 502},
      {K::forbidden, S::gateway, true, "permission_error", 403},
      {K::not_found, S::client, false, "not_found_error", 404},
      {K::not_found, S::upstream, false, "api_error", 502},
      {K::payload_too_large, S::client, false, "request_too_large", 413},
      {K::rate_limited, S::gateway, false, "rate_limit_error", 429},
      {K::overloaded, S::upstream, false, "overloaded_error", 529},
      {K::unavailable, S::gateway, false, "overloaded_error", 529},
      {K::unavailable, S::gateway, true, "api_error", 503},
      {K::out_of_balance, S::upstream, false, "api_error", 503},
      {K::server_error, S::upstream, false, "api_error", 502},
      {K::timeout, S::upstream, false, "api_error", 504},
      {K::internal, S::gateway, false, "api_error", 500},
  };
  for (const auto& c : cases) {
    core::Error e = core::make_error(c.kind, "m \"quoted\"", c.source);
    e.permanent = c.permanent;
    SCOPED_TRACE(core::to_string(c.kind));
    EXPECT_EQ(gateway::anthropic_status(e), c.status);
    EXPECT_EQ(gateway::anthropic_error_json(e),
              std::string("{\"type\":\"error\",\"error\":{\"type\":\"") + c.type + "\",\"message\":\"m \\\"quoted\\\"\"}}");
  }
}

// --- Stream encoder edge cases -------------------------------------------------------------------------

TEST(AnthropicStream, NothingAfterTheEnd) {
  auto req = gateway::anthropic_to_openai(kDefaultRequest);
  ASSERT_TRUE(req.ok());
  AnthropicStreamEncoder enc(*req, 5);
  auto first = enc.feed(R"({"id":"c1","choices":[{"index":0,"delta":{"content":"a"}}]})");
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(enc.started());
  EXPECT_EQ(enc.finish().size(), 3u);  // content_block_stop, message_delta, message_stop; nothing twice
  EXPECT_TRUE(enc.ended());
  EXPECT_TRUE(enc.finish().empty());
  EXPECT_TRUE(enc.fail(core::make_error(core::ErrorKind::overloaded, "x")).empty());
  auto done = enc.feed("[DONE]");
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(done->empty());
  auto late = enc.feed(R"({"choices":[{"delta":{"content":"b"}}]})");
  ASSERT_TRUE(late.ok());
  EXPECT_TRUE(late->empty());
}

TEST(AnthropicStream, OutlivesTheRequestItWasMadeFrom) {
  std::optional<AnthropicStreamEncoder> enc;
  {
    auto req = gateway::anthropic_to_openai(
        R"({"model":"alias-x","max_tokens":5,"stop_sequences":["Z"],"messages":[{"role":"user","content":"a"}]})");
    ASSERT_TRUE(req.ok());
    enc.emplace(*req, 3);
  }
  auto first = enc->feed(R"({"id":"c","choices":[{"delta":{"content":"a"},"finish_reason":"stop","stop_reason":"Z"}]})");
  ASSERT_TRUE(first.ok());
  EXPECT_NE(first->front().data.find(R"("model":"alias-x")"), std::string::npos);
  auto end = enc->finish();
  EXPECT_NE(end[end.size() - 2].data.find(R"("stop_reason":"stop_sequence","stop_sequence":"Z")"), std::string::npos);
}

TEST(AnthropicStream, FinishUsageOverridesAndEstimatesWithoutIt) {
  auto req = gateway::anthropic_to_openai(kDefaultRequest);
  ASSERT_TRUE(req.ok());
  AnthropicStreamEncoder a(*req, 5);
  ASSERT_TRUE(a.feed(R"({"id":"c","choices":[{"delta":{"content":"12345678"}}]})").ok());
  core::Usage u;
  u.present = true;
  u.prompt_tokens = 100;
  u.cached_tokens = 60;
  u.completion_tokens = 9;
  auto end = a.finish(u);
  ASSERT_GE(end.size(), 2u);
  EXPECT_NE(end[end.size() - 2].data.find(
                R"("usage":{"input_tokens":40,"cache_creation_input_tokens":0,"cache_read_input_tokens":60,"output_tokens":9})"),
            std::string::npos)
      << end[end.size() - 2].data;
  AnthropicStreamEncoder b(*req, 5);
  ASSERT_TRUE(b.feed(R"({"id":"c","choices":[{"delta":{"content":"12345678"}}]})").ok());
  auto est = b.finish();
  EXPECT_NE(est[est.size() - 2].data.find(R"("input_tokens":5,)"), std::string::npos) << est[est.size() - 2].data;
  EXPECT_NE(est[est.size() - 2].data.find(R"("output_tokens":2})"), std::string::npos) << est[est.size() - 2].data;
}
