#include "gateway/state/auth.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <array>
#include <cctype>
#include <cstring>
#include <string>

namespace gateway {

namespace {

std::string_view trim_spaces(std::string_view v) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  return v;
}

// The value of a "<scheme> <credentials>" header when its scheme is `scheme` (any case), else nullopt.
std::optional<std::string_view> credentials_for(std::string_view authorization, std::string_view scheme) {
  if (authorization.size() <= scheme.size() || authorization[scheme.size()] != ' ') return std::nullopt;
  for (size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i]) return std::nullopt;
  return authorization.substr(scheme.size() + 1);
}

// Equal secrets, compared in time that depends on neither: both are hashed first.
bool same_secret(std::string_view given, std::string_view expected) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> a{}, b{};
  SHA256(reinterpret_cast<const unsigned char*>(given.data()), given.size(), a.data());
  SHA256(reinterpret_cast<const unsigned char*>(expected.data()), expected.size(), b.data());
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

std::optional<std::string> decode_base64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  const size_t data = text.size() - pad;
  for (size_t i = 0; i < data; ++i) {
    const int v = base64_value(text[i]);
    if (v < 0) return std::nullopt;  // a stray '=' inside, a space, a URL-safe '-' or '_'
    acc = (acc << 6) | static_cast<uint32_t>(v);
    if (i % 4 == 3) {
      out += static_cast<char>(acc >> 16), out += static_cast<char>(acc >> 8), out += static_cast<char>(acc);
      acc = 0;
    }
  }
  // The last group: 3 characters carry 2 bytes (2 spare bits), 2 carry 1 byte (4 spare bits).
  if (pad == 1) {
    if (acc & 0x3) return std::nullopt;
    out += static_cast<char>(acc >> 10), out += static_cast<char>(acc >> 2);
  } else if (pad == 2) {
    if (acc & 0xf) return std::nullopt;
    out += static_cast<char>(acc >> 4);
  }
  return out;
}

bool admin_credentials_match(std::string_view authorization, std::string_view key) {
  if (key.empty()) return false;
  if (auto bearer = credentials_for(authorization, "bearer")) return same_secret(*bearer, key);
  auto basic = credentials_for(authorization, "basic");
  if (!basic) return false;
  auto decoded = decode_base64(*basic);
  if (!decoded) return false;
  // "user:password": the user name cannot hold a colon, the password can (RFC 7617).
  const size_t colon = decoded->find(':');
  if (colon == std::string::npos) return false;
  return same_secret(std::string_view(*decoded).substr(colon + 1), key);
}

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
