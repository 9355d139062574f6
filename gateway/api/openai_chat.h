#pragma once
// The OpenAI API surface: request parsing/validation into core types and OpenAI-shaped JSON out.
#include <string>
#include <string_view>
#include <vector>

#include "core/chat.h"
#include "core/error.h"
#include "core/result.h"

namespace gateway {

// Validates and parses a /v1/chat/completions body. The raw body is kept for pass-through.
core::Result<core::ChatRequest> parse_chat_request(std::string body);

// {"error":{"message","type","param","code"}}
std::string error_json(const core::Error& e);

}  // namespace gateway
