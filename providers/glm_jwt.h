#pragma once
// Zhipu's legacy JWT auth (still used by older bigmodel SDKs): the API key "id.secret" signs an
// HS256 token with header {"alg":"HS256","sign_type":"SIGN"} and payload
// {"api_key":id,"exp":<ms>,"timestamp":<ms>}; the token is sent as a Bearer credential.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace providers {

core::Result<std::string> glm_jwt(std::string_view api_key, int64_t now_ms, int64_t ttl_ms);
std::string base64url(std::string_view bytes);

}  // namespace providers
