#pragma once
// Reading a client's JSON body on a translated surface (Anthropic Messages, OpenAI Responses): the
// shared parser set-up, the error values and the way they show what the client wrote.
#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/json_members.h"
#include "core/result.h"

namespace gateway::client_json {

// A bad_request from the client, with `param` naming the offending member's path.
core::Error bad(std::string msg, std::string param, std::string code = "invalid_request_error");
// A server_error blamed on the upstream: its answer cannot be expressed on the client's surface.
core::Error upstream_fault(std::string msg);

// Text shown in an error message: at most `limit` bytes, cut on a UTF-8 character boundary.
std::string shown(std::string_view s, size_t limit = 64);
// shown(s) as a JSON string literal.
std::string json_quoted(std::string_view s);

// A repeated member name, or a loose variant of one the surface reads, in the object at `base`
// (paths and wording as the OpenAI chat surface reports them): duplicate_member / ambiguous_member.
core::Error ambiguity_error(const core::json::Ambiguity& a, std::string_view base);

void append_int(std::string& s, int64_t v);

// A parser whose depth bound (64) makes deeper bodies fail to parse.
simdjson::dom::parser make_parser();
// Parses a client body that must be a JSON object; UTF-8 and depth failures are named.
core::Status parse_client_body(simdjson::dom::parser& parser, std::string_view body, simdjson::dom::element& root);

}  // namespace gateway::client_json
