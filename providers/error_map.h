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
