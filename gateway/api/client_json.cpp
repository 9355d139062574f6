#include "gateway/api/client_json.h"

#include <charconv>

#include "core/json_scan.h"
#include "core/json_writer.h"

namespace gateway::client_json {

namespace {
constexpr size_t kMaxDepth = 64;
}  // namespace

core::Error bad(std::string msg, std::string param, std::string code) {
  return core::make_error(core::ErrorKind::bad_request, std::move(msg), core::ErrorSource::client, std::move(code),
                          std::move(param));
}

core::Error upstream_fault(std::string msg) {
  return core::make_error(core::ErrorKind::server_error, std::move(msg), core::ErrorSource::upstream,
                          "bad_translation");
}

std::string shown(std::string_view s, size_t limit) {
  if (s.size() <= limit) return std::string(s);
  size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n)) + "...";
}

std::string json_quoted(std::string_view s) {
  std::string q;
  core::append_json_string(q, shown(s));
  return q;
}

core::Error ambiguity_error(const core::json::Ambiguity& a, std::string_view base) {
  const auto [path, param] = core::json::ambiguity_place(a, base);
  if (a.kind == core::json::Ambiguity::Kind::duplicate)
    return bad("The request body has a duplicate member " + json_quoted(a.key) + " at " + shown(path, 256) +
                   ": a member name may appear only once in an object.",
               shown(param, 256), "duplicate_member");
  return bad("The request body has a member " + json_quoted(a.key) + " at " + shown(path, 256) + " that differs from " +
                 json_quoted(a.like) + " only in letter case or separators. Use " + json_quoted(a.like) + ".",
             shown(param, 256), "ambiguous_member");
}

void append_int(std::string& s, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  s.append(buf, r.ptr);
}

simdjson::dom::parser make_parser() {
  simdjson::dom::parser p(simdjson::SIMDJSON_MAXSIZE_BYTES);
  [[maybe_unused]] auto e = p.allocate(4096, kMaxDepth);  // the depth bound: deeper bodies fail to parse
  return p;
}

core::Status parse_client_body(simdjson::dom::parser& parser, std::string_view body, simdjson::dom::element& root) {
  auto padded = core::json::padded_copy(body, simdjson::SIMDJSON_PADDING);
  auto err = parser.parse(padded.data(), padded.size(), false).get(root);
  if (err == simdjson::UTF8_ERROR) return bad("The request body is not valid UTF-8.", "");
  if (err == simdjson::DEPTH_ERROR) return bad("The request body is nested more than 64 levels deep.", "");
  if (err) {
    std::string why = simdjson::error_message(err);
    while (!why.empty() && why.back() == '.') why.pop_back();
    return bad("The request body is not valid JSON: " + why + ".", "");
  }
  if (!root.is_object()) return bad("The request body must be a JSON object.", "");
  return core::ok_status();
}

}  // namespace gateway::client_json
