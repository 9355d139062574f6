#include "gateway/api/openai_responses.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "gateway/api/openai_chat.h"
#include "tests/gateway/golden.h"

// Golden cases under tests/gateway/responses_golden/ (see README.md there):
//   request/NAME.in.json (+ NAME.prior.json)  -> NAME.out.txt (chat body, input items, echo) or NAME.err.txt
//   response/NAME.chat.json (+ NAME.request.json) -> NAME.response.json or NAME.err.txt
//   stream/NAME.chunks (+ NAME.request.json)  -> NAME.events (SSE text)

namespace fs = std::filesystem;
using gateway::ResponsesRequest;
using gateway::ResponsesStreamEncoder;
using gateway::SseEvent;
using golden::read_file;
using golden::sibling;
using golden::trim_newline;

namespace {

const fs::path kGolden = GW_RESPONSES_GOLDEN_DIR;
constexpr const char* kId = "resp_test";
constexpr int64_t kCreated = 1700000000;

std::string error_text(const core::Error& e) {
  return "param: " + e.param + "\nstatus: " + std::to_string(e.http_status()) + "\n" + gateway::error_json(e) + "\n";
}

std::string optional_file(const fs::path& p) { return fs::exists(p) ? trim_newline(read_file(p)) : std::string(); }

const char* kDefaultRequest = R"({"model":"gpt-alias","input":"hi"})";

ResponsesRequest request_for(const fs::path& input, const std::string& suffix) {
  const std::string body = optional_file(sibling(input, suffix, ".request.json"));
  auto r = gateway::responses_to_chat(body.empty() ? kDefaultRequest : body, "", kId);
  EXPECT_TRUE(r.ok()) << input << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : ResponsesRequest{};
}

std::string sse_text(const std::vector<SseEvent>& events) {
  std::string s;
  for (const auto& e : events) s += "event: " + e.name + "\ndata: " + e.data + "\n\n";
  return s;
}

core::Error upstream_error(const std::string& kind) {
  const core::ErrorKind k = kind == "rate_limited" ? core::ErrorKind::rate_limited
                            : kind == "timeout"    ? core::ErrorKind::timeout
                                                   : core::ErrorKind::server_error;
  return core::make_error(k, "upstream broke", core::ErrorSource::upstream);
}

// A stream case: the encoder's events as SSE text, a feed error as a "# feed error:" line.
std::string run_stream(const fs::path& chunks, const ResponsesRequest& req) {
  ResponsesStreamEncoder enc(req, kCreated);
  std::istringstream in(read_file(chunks));
  std::string line, out;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line == "FINISH") {
      out += sse_text(enc.finish());
    } else if (line.rfind("FAIL ", 0) == 0) {
      out += sse_text(enc.fail(upstream_error(line.substr(5))));
    } else if (auto r = enc.feed(line); r.ok()) {
      out += sse_text(*r);
    } else {
      out += "# feed error: " + r.error().message + "\n";
      out += sse_text(enc.fail(r.error()));
    }
  }
  return out;
}

// The sub-events of one output item, by item type, in order; `true`: may repeat (or be absent).
using Pattern = std::vector<std::pair<std::string, bool>>;
const std::map<std::string, Pattern>& item_patterns() {
  static const std::map<std::string, Pattern> p{
      {"message",
       {{"response.content_part.added", false}, {"response.output_text.delta", true},
        {"response.output_text.done", false}, {"response.content_part.done", false}}},
      {"reasoning",
       {{"response.reasoning_summary_part.added", false}, {"response.reasoning_summary_text.delta", true},
        {"response.reasoning_summary_text.done", false}, {"response.reasoning_summary_part.done", false}}},
      {"function_call", {{"response.function_call_arguments.delta", true}, {"response.function_call_arguments.done", false}}},
  };
  return p;
}

// Where an item's sub-event `name` fits its pattern from position `pos`: the next position, or -1.
int advance(const Pattern& p, size_t pos, const std::string& name) {
  while (pos < p.size()) {
    if (p[pos].first == name) return int(p[pos].second ? pos : pos + 1);
    if (!p[pos].second) return -1;
    ++pos;
  }
  return -1;
}

bool pattern_done(const Pattern& p, size_t pos) {
  while (pos < p.size() && p[pos].second) ++pos;
  return pos == p.size();
}

// Checks the documented event order independently of the golden text: sequence_number counts from
// 0, response.created then response.in_progress, items one at a time in output_index order, each
// with its sub-events, and exactly one terminal event, last (response.failed may cut an item short).
std::string grammar_violation(const std::string& sse) {
  std::istringstream in(sse);
  std::string line, stage = "begin", item_type;
  int64_t seq = 0, items = 0, pos = 0;
  simdjson::dom::parser parser;
  while (std::getline(in, line)) {
    if (line.rfind("event: ", 0) != 0) continue;
    const std::string name = line.substr(7);
    std::string data;
    std::getline(in, data);
    simdjson::dom::element doc;
    if (data.rfind("data: ", 0) != 0 || parser.parse(data.substr(6)).get(doc)) return "bad data line after " + name;
    std::string_view type;
    int64_t n = -1, index = -1;
    if (doc["type"].get(type) || type != name) return "event " + name + " has data type " + std::string(type);
    if (doc["sequence_number"].get(n) || n != seq++) return name + " has sequence_number " + std::to_string(n);
    if (stage == "end") return name + " after the terminal event";
    const bool has_index = !doc["output_index"].get(index);
    if (stage == "begin") {
      if (name != "response.created") return "first event is " + name;
      stage = "created";
    } else if (stage == "created") {
      if (name != "response.in_progress") return "response.created not followed by response.in_progress";
      stage = "between";
    } else if (name == "response.failed") {
      stage = "end";
    } else if (stage == "between") {
      if (name == "response.completed" || name == "response.incomplete") {
        stage = "end";
      } else if (name == "response.output_item.added") {
        std::string_view t;
        if (index != items) return "item added at output_index " + std::to_string(index);
        if (doc["item"]["type"].get(t) || !item_patterns().count(std::string(t))) return "item of unknown type";
        item_type = std::string(t);
        stage = "item";
        pos = 0;
      } else {
        return name + " outside an item";
      }
    } else {  // in an item
      const Pattern& p = item_patterns().at(item_type);
      if (!has_index || index != items) return name + " for output_index " + std::to_string(index);
      if (name == "response.output_item.done") {
        if (!pattern_done(p, size_t(pos))) return "item " + item_type + " done early";
        stage = "between";
        ++items;
      } else if (int next = advance(p, size_t(pos), name); next < 0) {
        return name + " out of order in a " + item_type + " item";
      } else {
        pos = next;
      }
    }
  }
  return stage == "end" ? "" : "stream ends in stage " + stage;
}

}  // namespace

// --- Golden files ------------------------------------------------------------------------------------

TEST(ResponsesGolden, Requests) {
  const auto all = golden::cases(kGolden / "request", ".in.json");
  ASSERT_GE(all.size(), 20u);
  for (const auto& in : all) {
    SCOPED_TRACE(in.filename().string());
    const std::string prior = optional_file(sibling(in, ".in.json", ".prior.json"));
    auto r = gateway::responses_to_chat(trim_newline(read_file(in)), prior, kId);
    if (r.ok()) {
      golden::expect_golden(sibling(in, ".in.json", ".out.txt"),
                            "chat: " + r->chat.raw_body + "\ninput_items: " + r->input_items_json +
                                "\nstore: " + (r->store ? "true" : "false") + "\nprevious_response_id: " +
                                r->previous_response_id + "\nmetadata: " + r->metadata_json + "\necho: " +
                                r->echo_json + "\n");
      EXPECT_FALSE(fs::exists(sibling(in, ".in.json", ".err.txt")));
      simdjson::dom::parser p;
      EXPECT_FALSE(p.parse(r->input_items_json).error()) << r->input_items_json;
      EXPECT_FALSE(p.parse("{" + r->echo_json + "}").error()) << r->echo_json;
    } else {
      golden::expect_golden(sibling(in, ".in.json", ".err.txt"), error_text(r.error()));
      EXPECT_FALSE(fs::exists(sibling(in, ".in.json", ".out.txt")));
      EXPECT_EQ(r.error().http_status(), 400);
    }
  }
}

TEST(ResponsesGolden, Responses) {
  const auto all = golden::cases(kGolden / "response", ".chat.json");
  ASSERT_GE(all.size(), 6u);
  for (const auto& in : all) {
    SCOPED_TRACE(in.filename().string());
    const ResponsesRequest req = request_for(in, ".chat.json");
    auto r = gateway::chat_to_response(trim_newline(read_file(in)), req, kCreated);
    if (r.ok()) {
      golden::expect_golden(sibling(in, ".chat.json", ".response.json"), r->json + "\n");
      simdjson::dom::parser p;
      simdjson::dom::element doc;
      ASSERT_FALSE(p.parse(r->json).get(doc)) << "not JSON: " << r->json;
      EXPECT_EQ(simdjson::minify(doc["output"]), r->output_items_json);
    } else {
      golden::expect_golden(sibling(in, ".chat.json", ".err.txt"), error_text(r.error()));
    }
  }
}

TEST(ResponsesGolden, Streams) {
  const auto all = golden::cases(kGolden / "stream", ".chunks");
  ASSERT_GE(all.size(), 6u);
  for (const auto& in : all) {
    SCOPED_TRACE(in.filename().string());
    const ResponsesRequest req = request_for(in, ".chunks");
    const std::string out = run_stream(in, req);
    golden::expect_golden(sibling(in, ".chunks", ".events"), out);
    EXPECT_EQ(grammar_violation(out), "") << out;
  }
}

// The checker must catch broken sequences, or the stream goldens above prove little.
TEST(ResponsesGolden, GrammarCheckerRefusesBadOrders) {
  auto ev = [](const std::string& type, int seq, const std::string& rest = "") {
    return "event: " + type + "\ndata: {\"type\":\"" + type + "\",\"sequence_number\":" + std::to_string(seq) + rest +
           "}\n\n";
  };
  const std::string start = ev("response.created", 0) + ev("response.in_progress", 1);
  EXPECT_EQ(grammar_violation(start + ev("response.completed", 2)), "");
  EXPECT_NE(grammar_violation(start + ev("response.completed", 3)), "");  // a gap in the numbers
  EXPECT_NE(grammar_violation(ev("response.in_progress", 0) + ev("response.completed", 1)), "");
  const std::string added = ev("response.output_item.added", 2, ",\"output_index\":0,\"item\":{\"type\":\"message\"}");
  EXPECT_NE(grammar_violation(start + added + ev("response.completed", 3)), "");  // item never done
  EXPECT_NE(grammar_violation(start + added + ev("response.output_item.done", 3, ",\"output_index\":0") +
                              ev("response.completed", 4)),
            "");  // a message without its content part
  EXPECT_EQ(grammar_violation(start + added + ev("response.failed", 3)), "");
  EXPECT_NE(grammar_violation(start + ev("response.completed", 2) + ev("response.failed", 3)), "");
}

// --- Requests beyond the goldens -----------------------------------------------------------------------

TEST(ResponsesRequest, FeaturesReachTheChatParse) {
  auto r = gateway::responses_to_chat(R"({"model":"m","stream":true,"reasoning":{"effort":"high"},
    "tools":[{"type":"function","name":"ls","parameters":{"type":"object"}}],"text":{"format":{"type":"json_object"}},
    "max_output_tokens":300,"input":[{"role":"user","content":[{"type":"input_text","text":"你好"},
      {"type":"input_image","image_url":"https://example.com/a.png"}]}]})",
                                      "", kId);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->model, "m");
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->chat.stream);
  EXPECT_TRUE(r->chat.include_usage);
  EXPECT_TRUE(r->chat.wants_reasoning);
  EXPECT_TRUE(r->chat.has_tools);
  EXPECT_TRUE(r->chat.has_images);
  EXPECT_TRUE(r->chat.wants_json);
  EXPECT_EQ(r->chat.max_tokens, 300);
  EXPECT_EQ(r->chat.prompt_cjk_chars, 2);
  EXPECT_GT(r->estimated_input_tokens, 0);
}

TEST(ResponsesRequest, EffortNoneDoesNotAskForReasoning) {
  auto r = gateway::responses_to_chat(R"({"model":"m","input":"x","reasoning":{"effort":"none"}})", "", kId);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->chat.wants_reasoning);
  EXPECT_EQ(r->chat.reasoning_effort, "none");
  // The level itself reaches routing, though the chat body carries only the switch.
  auto high = gateway::responses_to_chat(R"({"model":"m","input":"x","reasoning":{"effort":"xhigh"}})", "", kId);
  ASSERT_TRUE(high.ok()) << high.error().message;
  EXPECT_EQ(high->chat.reasoning_effort, "xhigh");
  auto unset = gateway::responses_to_chat(R"({"model":"m","input":"x"})", "", kId);
  ASSERT_TRUE(unset.ok()) << unset.error().message;
  EXPECT_EQ(unset->chat.reasoning_effort, "");
}

TEST(ResponsesRequest, HostileBodiesAreRefusedWithAParam) {
  const std::vector<std::pair<std::string, std::string>> bad{
      {R"({"model":"m","input":"a","input":"b"})", "input"},
      {R"({"model":"m","input":"a","Max_Output_Tokens":5})", "Max_Output_Tokens"},
      {R"({"model":"m","input":[{"role":"user","content":"a","role":"system"}]})", "input[0].role"},
      {R"({"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"a","text":"b"}]}]})",
       "input[0].content[0].text"},
      {R"({"model":"m","input":"a","tools":[{"type":"function","name":"t","parameters":{"a":1,"a":2}}]})",
       "tools[0].parameters.a"},
      {R"({"model":"m","input":"a","metadata":{"k":"v","k":"w"}})", "metadata.k"},
      {R"({"model":"m","input":"a","max_output_tokens":1.5})", "max_output_tokens"},
      {R"({"model":"m","input":"a","temperature":3})", "temperature"},
      {R"({"model":"m","input":"a","stream":"yes"})", "stream"},
      {R"({"model":"m","input":"a","store":1})", "store"},
      {R"({"model":"m","input":7})", "input"},
      {R"({"model":"m"})", "input"},
      {R"({"model":"m","input":[]})", "input"},
      {R"({"input":"a"})", "model"},
      {R"({"model":"m","input":"a","metadata":{"k":1}})", "metadata.k"},
      {R"({"model":"m","input":"a","include":["reasoning.encrypted_content"]})", "include"},
      {R"({"model":"m","input":"a","tool_choice":"required"})", "tool_choice"},
      {R"({"model":"m","input":"a","previous_response_id":5})", "previous_response_id"},
  };
  for (const auto& [body, param] : bad) {
    auto r = gateway::responses_to_chat(body, "", kId);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().kind, core::ErrorKind::bad_request) << body;
    EXPECT_EQ(r.error().param, param) << body << " -> " << r.error().message;
  }
}

TEST(ResponsesRequest, PreviousIdIsReadBeforeTranslation) {
  auto none = gateway::responses_previous_id(R"({"model":"m","input":"a"})");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto some = gateway::responses_previous_id(R"({"model":"m","previous_response_id":"resp_1","input":"a"})");
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(some->value_or(""), "resp_1");
  EXPECT_FALSE(gateway::responses_previous_id(R"({"previous_response_id":"a","previous_response_id":"b"})").ok());
}

TEST(ResponsesRequest, PriorItemsGoBeforeTheInput) {
  const std::string prior =
      R"([{"id":"msg_1","type":"message","role":"user","content":[{"type":"input_text","text":"weather?"}]},)"
      R"({"id":"fc_1","type":"function_call","call_id":"call_1","name":"weather","arguments":"{}","status":"completed"}])";
  auto r = gateway::responses_to_chat(
      R"({"model":"m","previous_response_id":"resp_0","input":[{"type":"function_call_output","call_id":"call_1","output":"sunny"}]})",
      prior, kId);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->chat.messages.size(), 3u);
  EXPECT_EQ(r->chat.messages[2].role, "tool");
  EXPECT_EQ(r->previous_response_id, "resp_0");
  // Only this request's input is listed as its input items.
  EXPECT_EQ(r->input_items_json.find("weather?"), std::string::npos);
  EXPECT_NE(r->input_items_json.find("sunny"), std::string::npos);
  auto broken = gateway::responses_to_chat(R"({"model":"m","input":"a"})", "[{\"type\":\"oops\"}]", kId);
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.error().param, "previous_response_id[0].type");
}

// --- Streams beyond the goldens ------------------------------------------------------------------------

TEST(ResponsesStream, FinalResponseMatchesTheLastEvent) {
  auto req = gateway::responses_to_chat(R"({"model":"alias","input":"hi","stream":true})", "", kId);
  ASSERT_TRUE(req.ok());
  ResponsesStreamEncoder enc(*req, kCreated);
  ASSERT_TRUE(enc.feed(R"({"id":"c","choices":[{"index":0,"delta":{"content":"Hel"}}]})").ok());
  ASSERT_TRUE(enc.feed(R"({"id":"c","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]})").ok());
  core::Usage u;
  u.prompt_tokens = 12;
  u.completion_tokens = 3;
  u.present = true;
  const auto events = enc.finish(u);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().name, "response.completed");
  const auto final_response = enc.response();
  EXPECT_NE(events.back().data.find(final_response.json), std::string::npos);
  EXPECT_NE(final_response.json.find("\"input_tokens\":12"), std::string::npos);
  EXPECT_NE(final_response.output_items_json.find("\"text\":\"Hello\""), std::string::npos);
  EXPECT_TRUE(enc.finish().empty());
  EXPECT_TRUE(enc.fail(upstream_error("server_error")).empty());
}
