#pragma once
// Client authentication: a gateway API key (Authorization: Bearer, or x-api-key as Anthropic
// clients send it) maps to a tenant. No tenants configured = open mode.
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

}  // namespace gateway
