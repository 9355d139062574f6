#pragma once
// Maps an upstream HTTP error (status + body, in each vendor's own shape) to a core::Error whose
// kind decides retry and fail-over. The provider's own code is kept in the message and in Error::code.
#include <chrono>
#include <string_view>

#include "core/error.h"

namespace providers {

struct Dialect;

core::Error classify_upstream_error(const Dialect& dialect, int http_status, std::string_view body,
                                    std::string_view retry_after_header);

// "Retry-After: 5" -> 5 s; an HTTP date is also accepted; 0 if absent or unparsable. Capped at 1 hour.
std::chrono::milliseconds parse_retry_after(std::string_view value);

}  // namespace providers
