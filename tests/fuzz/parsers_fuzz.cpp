// libFuzzer target for the gateway's own parsers: the first byte picks one, the rest is its input.
//   0: SSE reader + stream normaliser (vendor dialects)   1: chat request parser
//   2: gateway config (YAML)                              3: upstream error classification
//   4: non-stream response normalisation                  5: upstream body builder
//   6: client region and data tag vocabulary (routing/vocabulary.h)
//   7: Anthropic Messages: model rewrite, SSE reader + event classifier, message usage, error mapping
// Invariants beyond "no crash": a parsed request re-validates and its upstream body (cut verbatim by
// core/json_scan) is a JSON object naming the deployment's model; neither an accepted body nor its
// upstream body repeats a member name in any object (checked on the text, independently of the
// parser's simdjson reading); normaliser output is JSON; a rewritten Anthropic body is a JSON object
// whose top-level model is the deployment's, and repeats no name the client's did not.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "core/json_scan.h"
#include "gateway/app/config.h"
#include "gateway/api/embeddings.h"
#include "gateway/api/openai_chat.h"
#include "gateway/api/responses_native.h"
#include "providers/anthropic_wire.h"
#include "providers/dialect.h"
#include "providers/embeddings_wire.h"
#include "providers/error_map.h"
#include "providers/openai_normalize.h"
#include "providers/request_builder.h"
#include "providers/responses_wire.h"
#include "providers/sse_reader.h"
#include "routing/iso3166.h"
#include "routing/vocabulary.h"

namespace {
bool is_json_object(std::string_view text) {
  static simdjson::dom::parser parser;
  simdjson::dom::element root;
  return parser.parse(simdjson::padded_string(text)).get(root) == simdjson::SUCCESS && root.is_object();
}
// True if some object in the JSON text `v` repeats a member name (escapes decoded), found by the
// byte scanner of core/json_scan rather than simdjson. Depth is bounded by the parser's 64 levels.
bool repeats_a_member(std::string_view v) {
  namespace json = core::json;
  v = json::trim(v);
  bool repeat = false;
  if (!v.empty() && v[0] == '{') {
    std::vector<std::string> names;
    json::for_each_member(v, [&](const json::Member& m) {
      std::string name;
      json::decode_string("\"" + std::string(m.key) + "\"", name);
      names.push_back(std::move(name));
      repeat = repeat || repeats_a_member(m.value);
    });
    std::sort(names.begin(), names.end());
    repeat = repeat || std::adjacent_find(names.begin(), names.end()) != names.end();
  } else if (!v.empty() && v[0] == '[') {
    json::for_each_element(v, [&](std::string_view e) { repeat = repeat || repeats_a_member(e); });
  }
  return repeat;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t which = data[0] % 10;
  const auto& dialects = providers::all_dialects();
  const auto& dialect = dialects[data[1] % dialects.size()];
  std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
  switch (which) {
    case 0: {
      providers::SseReader reader(1 << 16);
      providers::StreamNormalizer norm(dialect, true);
      // Feed in uneven pieces to exercise boundaries.
      size_t pos = 0, step = 1;
      while (pos < in.size()) {
        size_t n = std::min(step, in.size() - pos);
        if (!reader.feed(in.substr(pos, n))) break;
        pos += n;
        step = step * 3 % 17 + 1;
        providers::SseEvent ev;
        while (reader.next(ev)) {
          if (ev.comment_only || ev.data.empty()) continue;
          auto step = norm.process(ev.data);
          if (step.action == providers::StreamNormalizer::Action::forward && !is_json_object(step.out)) __builtin_trap();
        }
      }
      (void)norm.usage_chunk();
      break;
    }
    case 1: {
      auto r = gateway::parse_chat_request(std::string(in));
      if (r.ok()) {
        auto again = gateway::parse_chat_request(r->raw_body);
        if (!again.ok() || repeats_a_member(r->raw_body)) __builtin_trap();
        for (bool stream : {false, true}) {
          auto body = providers::build_upstream_body(r->raw_body, "up-model", stream);
          if (!body.ok() || !is_json_object(*body) || repeats_a_member(*body)) __builtin_trap();
          auto up = gateway::parse_chat_request(*body);
          if (!up.ok() || up->model != "up-model" || up->stream != stream || up->messages.size() != r->messages.size())
            __builtin_trap();
        }
      } else {
        (void)gateway::error_json(r.error());
      }
      break;
    }
    case 2: (void)gateway::parse_config(std::string(in), "fuzz.yaml"); break;
    case 3: {
      // Whatever the upstream sent: the message is bounded, has no control characters and never
      // carries a registered secret.
      static const bool registered = (providers::register_secret("fuzz-secret-0123456789"), true);
      (void)registered;
      auto e = providers::classify_upstream_error(dialect, 400 + data[1] % 200, in, in.substr(0, 8));
      if (e.message.size() > 512 || e.message.find("fuzz-secret-0123456789") != std::string::npos) __builtin_trap();
      for (char c : e.message)
        if (static_cast<unsigned char>(c) < 0x20) __builtin_trap();
      break;
    }
    case 4: {
      auto n = providers::normalize_response(dialect, in);
      if (n.ok() && !is_json_object(n->body)) __builtin_trap();
      break;
    }
    case 5: (void)providers::build_upstream_body(in, "m", data[1] & 1); break;
    case 6: {
      // A parsed region is a real ISO code and reads back as itself; normalising a tag is idempotent.
      auto r = routing::parse_region(in);
      if (r && !r->empty()) {
        if (!routing::is_iso3166_country(r->country)) __builtin_trap();
        if (!r->subdivision.empty() && !routing::is_iso3166_subdivision(r->subdivision)) __builtin_trap();
        auto again = routing::parse_region(r->text());
        if (!again || *again != *r) __builtin_trap();
      }
      const std::string t = routing::normalize_tag(in);
      if (routing::normalize_tag(t) != t) __builtin_trap();
      break;
    }
    case 7: {
      auto body = providers::rewrite_anthropic_model(in, "up-model");
      if (is_json_object(in) && !body.ok()) __builtin_trap();
      if (body.ok() && is_json_object(in)) {
        if (!is_json_object(*body) || (repeats_a_member(*body) && !repeats_a_member(in))) __builtin_trap();
        static simdjson::dom::parser parser;
        simdjson::dom::element root;
        std::string_view model;
        if (parser.parse(simdjson::padded_string(*body)).get(root) != simdjson::SUCCESS ||
            root["model"].get(model) != simdjson::SUCCESS || model != "up-model")
          __builtin_trap();
      }
      providers::SseReader reader(1 << 16);
      providers::AnthropicStream stream(dialect);
      providers::SseEvent ev;
      reader.feed(in);
      while (reader.next(ev)) {
        if (ev.comment_only || ev.data.empty()) continue;
        auto step = stream.process(ev.event, ev.data);
        if (step.action == providers::AnthropicStream::Action::error && !step.error) __builtin_trap();
        if (step.est_tokens < 0) __builtin_trap();
      }
      const core::Usage u = stream.usage();
      if (u.prompt_tokens < 0 || u.completion_tokens < 0 || u.cached_tokens > u.prompt_tokens) __builtin_trap();
      (void)providers::read_anthropic_message(dialect, in);
      auto e = providers::classify_anthropic_error(dialect, 400 + data[1] % 200, in, "");
      if (e.message.size() > 512) __builtin_trap();
      break;
    }
    case 8: {
      // The native Responses relay: the upstream body keeps every member but model/store/
      // previous_response_id and stays an object; events and answers never yield negative figures;
      // the gateway's rewrites of an object are objects.
      auto body = providers::rewrite_responses_body(in, "up-model");
      if (is_json_object(in) && !body.ok()) __builtin_trap();
      if (body.ok() && is_json_object(in) && !is_json_object(*body)) __builtin_trap();
      providers::SseReader reader(1 << 16);
      providers::ResponsesStream stream(dialect);
      gateway::NativeEventRewriter rewriter({"resp_fuzz", "m", true, ""});
      providers::SseEvent ev;
      reader.feed(in);
      while (reader.next(ev)) {
        if (ev.comment_only || ev.data.empty()) continue;
        auto step = stream.process(ev.event, ev.data);
        if (step.action == providers::NativeAction::error && !step.error) __builtin_trap();
        if (step.est_tokens < 0) __builtin_trap();
        // The rewriter sees only events the relay parsed as objects (core/json_scan's contract).
        if (step.action == providers::NativeAction::forward) {
          auto out = rewriter.rewrite(ev.data);
          if (!out || !is_json_object(*out)) __builtin_trap();
        }
      }
      const core::Usage u = stream.usage();
      if (u.prompt_tokens < 0 || u.completion_tokens < 0) __builtin_trap();
      (void)providers::read_responses_answer(dialect, in);
      (void)gateway::native_output_items(in);
      (void)gateway::without_builtin_tools(in);
      break;
    }
    case 9: {
      // Embeddings: a decoded request has rows, each with an estimate; every accepted upstream
      // answer re-assembles into a client answer that is a JSON object, float and base64 alike.
      auto req = gateway::parse_embeddings_request(std::string(in));
      if (req.ok() && (!req->embedding || req->embedding->rows.empty())) __builtin_trap();
      const size_t rows = 1 + data[1] % 4;
      auto batch = providers::parse_embeddings_answer(in, rows, dialect.name);
      if (batch.ok()) {
        if (batch->vectors.size() != rows) __builtin_trap();
        const std::string list = providers::embeddings_answer(batch->vectors, "m", batch->usage);
        for (bool b64 : {false, true}) {
          auto out = gateway::embeddings_client_answer(list, "m", b64);
          if (!out.ok() || !is_json_object(*out)) __builtin_trap();
        }
      }
      break;
    }
  }
  return 0;
}
