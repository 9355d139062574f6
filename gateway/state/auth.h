#pragma once
// Client authentication: a gateway API key (Authorization: Bearer, or x-api-key as Anthropic
// clients send it) maps to a tenant. No tenants configured = open mode.
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "gateway/state/tenants.h"

namespace gateway {

struct Caller {
  const Tenant* tenant = nullptr;  // nullptr in open mode
  std::string key_id;
  std::string tenant_name() const { return tenant ? tenant->name : std::string(); }
};

// `authorization` is the raw Authorization header value, `api_key` the x-api-key header value.
// Two different keys in `authorization` and `api_key` are refused (400 conflicting_credentials).
core::Result<Caller> authenticate(const TenantDirectory& tenants, std::string_view authorization, std::string_view api_key);

// Whether a listen address (an IP literal) is a loopback address: 127.0.0.0/8, ::1, ::ffff:127.x.
// Without an admin key, admin endpoints answer only on such a listener.
bool is_loopback_host(std::string_view host);

// Whether an Authorization header carries `key` (the admin key): as `Bearer <key>`, or as HTTP
// Basic credentials whose password is the key (any user name), which is what a browser sends
// after its login prompt. The scheme name is case-insensitive (RFC 9110). The secret is compared
// as SHA-256 digests with CRYPTO_memcmp, so the time taken says nothing about it, not even its
// length. An empty key matches nothing.
bool admin_credentials_match(std::string_view authorization, std::string_view key);

// Standard base64 (RFC 4648 section 4) with its padding, strictly: any other byte, a missing or
// misplaced '=', or non-zero bits left over is a failure (nullopt).
std::optional<std::string> decode_base64(std::string_view text);

}  // namespace gateway
