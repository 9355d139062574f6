#pragma once
// Maps an upstream HTTP error (status + body, in each vendor's own shape) to a core::Error whose
// kind decides retry and fail-over. The provider's own code is kept in the message and in Error::code.
#include <chrono>
#include <string>
#include <string_view>

#include "core/error.h"

namespace providers {

struct Dialect;

core::Error classify_upstream_error(const Dialect& dialect, int http_status, std::string_view body,
                                    std::string_view retry_after_header);

// The same for an answer of a vendor's Anthropic-compatible endpoint, whose errors are
// {"type":"error","error":{"type":"rate_limit_error","message":...}} (GLM adds its business code:
// "code":"1113"). The vendor's own codes decide first, as for chat completions; where they say
// nothing beyond the HTTP status, Anthropic's error type refines it (overloaded_error,
// billing_error, "prompt is too long"), so that the same condition fails over the same way on
// both APIs.
core::Error classify_anthropic_error(const Dialect& dialect, int http_status, std::string_view body,
                                     std::string_view retry_after_header);
// The HTTP status Anthropic documents for an error type (an `event: error` in a stream carries only
// the type): invalid_request_error 400, authentication_error 401, billing_error 402,
// permission_error 403, not_found_error 404, request_too_large 413, rate_limit_error 429,
// api_error 500, timeout_error 504, overloaded_error 529; anything else 500.
int anthropic_error_status(std::string_view error_type);

// An error classified as if the upstream had answered HTTP `status`, when it came in band (an error
// event or object in a 200 answer): "returned HTTP <status>" in its message becomes `said`, and its
// upstream status is 200.
core::Error in_band(core::Error e, int status, std::string_view said);

// "Retry-After: 5" -> 5 s; an HTTP date is also accepted; 0 if absent or unparsable. Capped at 1 hour.
std::chrono::milliseconds parse_retry_after(std::string_view value);

// A credential value (upstream API key, admin key) that sanitize_upstream_text removes wherever it
// appears. Register at start-up, before serving threads start; values shorter than 8 bytes are ignored.
void register_secret(std::string_view value);

// Text an upstream chose (error messages, codes) made fit for a client or a log: credentials of
// any shape removed (Bearer tokens, sk-... keys, key=/token=/secret=/password= values, long
// mixed-case tokens such as JWTs, every registered secret), control characters turned into
// spaces, cut to at most `max_bytes` on a UTF-8 character boundary ("..." marks the cut).
std::string sanitize_upstream_text(std::string_view text, size_t max_bytes = 300);

}  // namespace providers
