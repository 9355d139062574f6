#include "gateway/auth.h"

namespace gateway {

core::Result<Caller> authenticate(const TenantDirectory& tenants, std::string_view authorization,
                                  std::string_view api_key) {
  Caller c;
  if (tenants.empty()) return c;
  std::string_view key = api_key;
  if (key.empty() && authorization.size() > 7 &&
      (authorization.substr(0, 7) == "Bearer " || authorization.substr(0, 7) == "bearer "))
    key = authorization.substr(7);
  while (!key.empty() && key.front() == ' ') key.remove_prefix(1);
  while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
  if (key.empty())
    return core::make_error(core::ErrorKind::auth,
                            "You didn't provide an API key. Send your gateway key as 'Authorization: Bearer <key>'.",
                            core::ErrorSource::client, "missing_api_key");
  const Tenant* t = tenants.authenticate(key, &c.key_id);
  if (!t)
    return core::make_error(core::ErrorKind::auth, "Incorrect API key provided.", core::ErrorSource::client,
                            "invalid_api_key");
  c.tenant = t;
  return c;
}

}  // namespace gateway
