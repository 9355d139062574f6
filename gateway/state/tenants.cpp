#include "gateway/state/tenants.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <yaml-cpp/yaml.h>

#include "gateway/state/yaml_checks.h"
#include "routing/policy.h"
#include "routing/vocabulary.h"

#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

namespace gateway {
namespace {

using namespace yaml_checks;

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

void sha256(std::string_view data, unsigned char out[32]) {
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
}

std::string to_hex(const unsigned char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = digits[p[i] >> 4];
    s[2 * i + 1] = digits[p[i] & 15];
  }
  return s;
}

int hex_val(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

core::Money usd(const std::string& file, const YAML::Node& n, const std::string& what) {
  double v = scalar<double>(file, n, what);
  if (!std::isfinite(v) || v < 0 || v > 1e6) fail(file, n, what + " must be a number of USD in 0..1000000");
  return core::Money::from_usd(v);
}

std::optional<int64_t> positive(const std::string& file, const YAML::Node& n, const std::string& what) {
  if (!n) return std::nullopt;
  auto v = scalar<int64_t>(file, n, what);
  if (v <= 0) fail(file, n, what + " must be > 0");
  return v;
}

// A string or a list of strings, each entry with its own node (for error positions).
std::vector<YAML::Node> entries(const std::string& file, const YAML::Node& n, const std::string& what) {
  std::vector<YAML::Node> out;
  if (n.IsScalar()) out.push_back(n);
  else if (n.IsSequence()) for (const YAML::Node& e : n) out.push_back(e);
  else fail(file, n, what + " must be a string or a list of strings");
  return out;
}

// The tenant's routing settings, read through routing's vocabulary so that they are spelt the way
// requests and policies are. Classifications and tags are checked against the built-in vocabulary
// (the policy's own `vocabulary:` is not known when the config loads: declare a tenant that needs
// custom tags under the policy's `tenants:`).
void parse_routing_settings(const std::string& file, const std::string& sec, const YAML::Node& v, Tenant& t) {
  static const routing::DataVocabulary vocabulary;
  routing::TenantSettings& rs = t.routing;
  if (auto n = v["client_region"]) {
    t.client_region = scalar<std::string>(file, n, sec + ".client_region");
    std::string why;
    auto r = routing::parse_region(t.client_region, &why);
    if (!r) fail(file, n, "invalid_client_region: " + sec + ".client_region: " + why);
    rs.client_region = r->text();
  }
  if (auto n = v["data_classification"]) {
    t.data_classification = scalar<std::string>(file, n, sec + ".data_classification");
    rs.data_classification = routing::normalize_tag(t.data_classification);
    if (!rs.data_classification.empty() && !vocabulary.known_classification(rs.data_classification))
      fail(file, n, sec + ".data_classification: unknown data classification '" + t.data_classification + "'");
  }
  if (auto n = v["data_tags"])
    for (const YAML::Node& e : entries(file, n, sec + ".data_tags")) {
      std::string tag = routing::normalize_tag(scalar<std::string>(file, e, sec + ".data_tags[]"));
      if (!vocabulary.known_tag(tag)) fail(file, e, sec + ".data_tags: unknown data tag '" + e.Scalar() + "'");
      rs.data_tags.push_back(std::move(tag));
    }
  // `compliance_profile` (one) is the older spelling of `compliance_profiles` (a list); both read the same.
  if (v["compliance_profile"] && v["compliance_profiles"])
    fail(file, v["compliance_profile"], "use either compliance_profile or compliance_profiles, not both");
  for (const char* key : {"compliance_profile", "compliance_profiles"})
    if (auto n = v[key])
      for (const YAML::Node& e : entries(file, n, sec + "." + key)) {
        std::string name = scalar<std::string>(file, e, sec + "." + key + "[]");
        auto bit = routing::preset_bit(name);
        if (!bit) {
          std::string known;
          for (const auto& [p, b] : routing::preset_names()) known += (known.empty() ? "" : ", ") + p;
          fail(file, e, sec + "." + key + ": unknown compliance preset '" + name + "' (known: " + known + ")");
        }
        rs.presets |= *bit;
        t.compliance_profiles.push_back(name);
      }
  if (auto n = v["allow_header_overrides"])
    for (const YAML::Node& e : entries(file, n, sec + ".allow_header_overrides")) {
      std::string h = scalar<std::string>(file, e, sec + ".allow_header_overrides[]");
      for (char& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (h == "x-gateway-client-region") rs.override_region = true;
      else if (h == "x-gateway-data-classification") rs.override_classification = true;
      else if (h == "x-gateway-data-tags") rs.override_tags = true;
      else
        fail(file, e, sec + ".allow_header_overrides: '" + e.Scalar() +
                          "' is not one of x-gateway-client-region, x-gateway-data-classification, x-gateway-data-tags");
    }
}

Tenant parse_tenant(const std::string& file, const std::string& name, const YAML::Node& v) {
  Tenant t;
  t.name = name;
  const std::string sec = "tenants." + name;
  if (v.IsNull()) return t;
  check_keys(file, v, sec,
             {"keys", "models", "client_region", "data_classification", "data_tags", "compliance_profile",
              "compliance_profiles", "allow_header_overrides", "budget", "limits"});
  if (auto keys = v["keys"]) {
    if (!keys.IsSequence()) fail(file, keys, sec + ".keys must be a list of {id, sha256}");
    std::set<std::string> ids;
    for (const YAML::Node& k : keys) {
      if (k.IsMap() && (k["key"] || k["secret"]))
        fail(file, k, "keys are stored as hashes only: use `gateway keys new --tenant " + name +
                          "` and paste the {id, sha256} line it prints");
      check_keys(file, k, sec + ".keys[]", {"id", "sha256"});
      if (!k["id"] || !k["sha256"]) fail(file, k, sec + ".keys[] needs id and sha256");
      KeyEntry e;
      e.id = scalar<std::string>(file, k["id"], sec + ".keys[].id");
      if (!valid_name(e.id)) fail(file, k["id"], "key id '" + e.id + "' must be 1-64 of [A-Za-z0-9_.-]");
      if (!ids.insert(e.id).second) fail(file, k["id"], "duplicate key id '" + e.id + "' in " + sec);
      std::string h = scalar<std::string>(file, k["sha256"], sec + ".keys[].sha256");
      if (h.rfind("sha256:", 0) == 0) h = h.substr(7);
      bool ok = h.size() == 64;
      for (char& c : h) {
        ok &= hex_val(c) >= 0;
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      if (!ok) fail(file, k["sha256"], "sha256 must be 64 hex digits (the output of `gateway keys new`)");
      e.sha256_hex = h;
      t.keys.push_back(std::move(e));
    }
  }
  if (auto m = v["models"]) {
    if (!m.IsSequence()) fail(file, m, sec + ".models must be a list of model aliases or globs");
    for (const YAML::Node& g : m) {
      auto s = scalar<std::string>(file, g, sec + ".models[]");
      if (s.empty()) fail(file, g, sec + ".models[] must not be empty");
      t.allowed_models.push_back(s);
    }
  }
  parse_routing_settings(file, sec, v, t);
  if (auto b = v["budget"]) {
    check_keys(file, b, sec + ".budget", {"daily_usd", "monthly_usd", "hard"});
    if (b["daily_usd"]) t.budget.daily = usd(file, b["daily_usd"], sec + ".budget.daily_usd");
    if (b["monthly_usd"]) t.budget.monthly = usd(file, b["monthly_usd"], sec + ".budget.monthly_usd");
    if (b["hard"]) t.budget.hard = scalar<bool>(file, b["hard"], sec + ".budget.hard");
    if (t.budget.daily && t.budget.monthly && *t.budget.daily > *t.budget.monthly)
      fail(file, b, sec + ".budget.daily_usd is larger than monthly_usd");
  }
  if (auto l = v["limits"]) {
    check_keys(file, l, sec + ".limits", {"rpm", "tpm", "concurrency"});
    t.limits.rpm = positive(file, l["rpm"], sec + ".limits.rpm");
    t.limits.tpm = positive(file, l["tpm"], sec + ".limits.tpm");
    t.limits.concurrency = positive(file, l["concurrency"], sec + ".limits.concurrency");
  }
  return t;
}

}  // namespace

bool glob_match(std::string_view p, std::string_view s) {
  // Iterative matcher with single back-tracking point: linear in practice, no recursion.
  size_t pi = 0, si = 0, star = std::string_view::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si])) {
      ++pi;
      ++si;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = si;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

bool model_allowed(const Tenant& t, std::string_view model) {
  if (t.allowed_models.empty()) return true;
  for (const auto& g : t.allowed_models)
    if (glob_match(g, model)) return true;
  return false;
}

core::Result<TenantDirectory> TenantDirectory::from_yaml(const YAML::Node& node, const std::string& file) {
  TenantDirectory d;
  if (!node || node.IsNull()) return d;
  try {
    if (!node.IsMap()) fail(file, node, "tenants must be a mapping of tenant name to settings");
    std::map<std::string, std::string> hash_owner;  // hash -> "tenant/key id"
    for (auto it = node.begin(); it != node.end(); ++it) {
      std::string name = scalar<std::string>(file, it->first, "tenant name");
      if (!valid_name(name)) fail(file, it->first, "tenant name '" + name + "' must be 1-64 of [A-Za-z0-9_.-]");
      YAML::Node v = it->second;  // a copy: the iterator yields a temporary proxy
      Tenant t = parse_tenant(file, name, v);
      if (v.IsMap() && v["keys"]) {
        size_t i = 0;
        for (const YAML::Node& k : v["keys"]) {
          const auto& e = t.keys[i++];
          auto [pos, fresh] = hash_owner.emplace(e.sha256_hex, name + "/" + e.id);
          if (!fresh) fail(file, k["sha256"], "the same key hash is already used by " + pos->second);
        }
      }
      d.tenants_.push_back(std::move(t));
    }
  } catch (const ConfigError& e) {
    return core::make_error(core::ErrorKind::bad_request, e.message, core::ErrorSource::gateway, "config_invalid");
  } catch (const YAML::Exception& e) {
    return core::make_error(core::ErrorKind::bad_request, file + ": " + e.what(), core::ErrorSource::gateway,
                            "config_invalid");
  }
  for (size_t ti = 0; ti < d.tenants_.size(); ++ti) {
    const auto& t = d.tenants_[ti];
    for (size_t ki = 0; ki < t.keys.size(); ++ki) {
      StoredKey sk{};
      for (size_t i = 0; i < 32; ++i)
        sk.hash[i] = static_cast<unsigned char>(hex_val(t.keys[ki].sha256_hex[2 * i]) * 16 +
                                                hex_val(t.keys[ki].sha256_hex[2 * i + 1]));
      sk.tenant = ti;
      sk.key = ki;
      d.keys_.push_back(sk);
    }
  }
  return d;
}

const Tenant* TenantDirectory::authenticate(std::string_view presented_key, std::string* key_id) const {
  unsigned char h[32];
  sha256(presented_key, h);
  // Compare against every stored hash, without early exit, and select the match without a branch
  // on secret data: timing reveals neither whether nor which key matched.
  size_t found = keys_.size();
  for (size_t i = 0; i < keys_.size(); ++i) {
    size_t eq = static_cast<size_t>(CRYPTO_memcmp(h, keys_[i].hash, 32) == 0);
    size_t mask = 0 - eq;
    found = (i & mask) | (found & ~mask);
  }
  if (found == keys_.size()) return nullptr;
  const auto& sk = keys_[found];
  if (key_id) *key_id = tenants_[sk.tenant].keys[sk.key].id;
  return &tenants_[sk.tenant];
}

const Tenant* TenantDirectory::find(std::string_view name) const {
  for (const auto& t : tenants_)
    if (t.name == name) return &t;
  return nullptr;
}

std::string mint_key() {
  static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string out = "gwk_";
  while (out.size() < 4 + 40) {
    unsigned char buf[64];
    if (RAND_bytes(buf, sizeof buf) != 1) throw std::runtime_error("RAND_bytes failed: no entropy for a new key");
    for (unsigned char b : buf) {
      if (b >= 248) continue;  // 248 = 4 * 62: rejection keeps the distribution uniform
      out.push_back(alphabet[b % 62]);
      if (out.size() == 4 + 40) break;
    }
  }
  return out;
}

std::string hash_key(std::string_view key) {
  unsigned char h[32];
  sha256(key, h);
  return "sha256:" + to_hex(h, 32);
}

std::string key_config_line(std::string_view tenant, std::string_view key, std::string_view key_id) {
  std::string hex = hash_key(key).substr(7);
  std::string id = key_id.empty() ? "k-" + hex.substr(0, 8) : std::string(key_id);
  return "# add under tenants." + std::string(tenant) + ".keys in the gateway config:\n- {id: " + id +
         ", sha256: \"" + hex + "\"}\n";
}

}  // namespace gateway
