#pragma once
// Token counts as the natively relayed APIs report them (providers/anthropic_wire.cpp,
// providers/responses_wire.cpp).
#include <simdjson.h>

#include <cstdint>
#include <optional>

namespace providers {

// A token count: a non-negative integer (an integral JSON number up to 2^53 counts too). Null:
// nullopt (the figure is not reported). Anything else sets `bad` and reads as 0.
std::optional<int64_t> token_count(simdjson::dom::element v, bool& bad);

}  // namespace providers
