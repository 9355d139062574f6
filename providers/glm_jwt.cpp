#include "providers/glm_jwt.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/json_writer.h"

namespace providers {

std::string base64url(std::string_view in) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  auto b = [&](size_t k) { return static_cast<unsigned char>(in[k]); };
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (b(i) << 16) | (b(i + 1) << 8) | b(i + 2);
    out += tbl[v >> 18]; out += tbl[(v >> 12) & 63]; out += tbl[(v >> 6) & 63]; out += tbl[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = b(i) << 16;
    out += tbl[v >> 18]; out += tbl[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    uint32_t v = (b(i) << 16) | (b(i + 1) << 8);
    out += tbl[v >> 18]; out += tbl[(v >> 12) & 63]; out += tbl[(v >> 6) & 63];
  }
  return out;
}

core::Result<std::string> glm_jwt(std::string_view api_key, int64_t now_ms, int64_t ttl_ms) {
  auto dot = api_key.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == api_key.size())
    return core::make_error(core::ErrorKind::auth,
                            "GLM jwt auth needs an API key of the form <id>.<secret>", core::ErrorSource::gateway);
  std::string_view id = api_key.substr(0, dot), secret = api_key.substr(dot + 1);
  std::string header = R"({"alg":"HS256","sign_type":"SIGN"})";
  std::string payload = "{\"api_key\":" + core::json_string(id) + ",\"exp\":" + std::to_string(now_ms + ttl_ms) +
                        ",\"timestamp\":" + std::to_string(now_ms) + "}";
  std::string signing_input = base64url(header) + "." + base64url(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac, &mac_len))
    return core::make_error(core::ErrorKind::internal, "HMAC-SHA256 failed", core::ErrorSource::gateway);
  return signing_input + "." + base64url(std::string_view(reinterpret_cast<char*>(mac), mac_len));
}

}  // namespace providers
