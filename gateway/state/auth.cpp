#include "gateway/state/auth.h"

#include <arpa/inet.h>

#include <cstring>
#include <string>

namespace gateway {

namespace {

std::string_view trim_spaces(std::string_view v) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  return v;
}

}  // namespace

core::Result<Caller> authenticate(const TenantDirectory& tenants, std::string_view authorization,
                                  std::string_view api_key) {
  Caller c;
  if (tenants.empty()) return c;
  std::string_view bearer;
  if (authorization.size() > 7 && (authorization.substr(0, 7) == "Bearer " || authorization.substr(0, 7) == "bearer "))
    bearer = trim_spaces(authorization.substr(7));
  api_key = trim_spaces(api_key);
  // Two different keys: which one the client meant is a guess, and guessing lets one key's
  // failure hide behind the other's success. Refuse instead of picking one.
  if (!bearer.empty() && !api_key.empty() && bearer != api_key)
    return core::make_error(core::ErrorKind::bad_request,
                            "Conflicting credentials: the 'Authorization: Bearer' key and the 'x-api-key' header "
                            "differ. Send one key (or the same key in both).",
                            core::ErrorSource::client, "conflicting_credentials");
  std::string_view key = api_key.empty() ? bearer : api_key;
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

bool is_loopback_host(std::string_view host) {
  std::string h(host);
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) != 1) return false;
  static const unsigned char loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  if (std::memcmp(v6.s6_addr, loop6, 16) == 0) return true;
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(v6.s6_addr, mapped, 12) == 0 && v6.s6_addr[12] == 127;
}

}  // namespace gateway
