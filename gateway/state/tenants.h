#pragma once
// Tenants and their gateway API keys, budgets and limits, as declared in the config.
//
// YAML shape (the `tenants:` section of the gateway config):
//
//   tenants:
//     acme:                                  # tenant name: [A-Za-z0-9_.-]{1,64}
//       keys:                                # gateway API keys, stored as SHA-256 hashes only
//         - {id: k1, sha256: "9f86d0...0f00a08"}   # 64 hex digits, optionally "sha256:"-prefixed
//       models: ["qwen-*", auto]             # model aliases this tenant may ask for (globs: * ?)
//                                            # absent or empty = every model
//       client_region: DE                    # the tenant's region (ISO 3166-1 alpha-2 [+ -subdivision])
//       data_classification: internal        # classification of all its requests
//       data_tags: [eu_personal]             # data tags of all its requests
//       compliance_profiles: [eu-gdpr]       # presets enforced on every route for this tenant
//                                            # (compliance_profile: one preset, the older spelling)
//       allow_header_overrides: []           # x-gateway-client-region | -data-classification | -data-tags:
//                                            # headers that may replace (not only narrow) the above
//       budget: {daily_usd: 5, monthly_usd: 100, hard: true}   # hard: refuse (429) when spent
//                                                              # soft (hard: false): report only
//       limits: {rpm: 600, tpm: 200000, concurrency: 20}       # requests/min, tokens/min, in flight
//
// `gateway keys new --tenant T` mints a key with mint_key() and prints key_config_line(): the
// key is shown once to the operator, the config only ever holds its hash.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/money.h"
#include "core/result.h"
#include "routing/router.h"

namespace YAML {
class Node;
}

namespace gateway {

struct KeyEntry {
  std::string id;          // names the key in logs and the ledger (never the key itself)
  std::string sha256_hex;  // 64 lowercase hex digits
};

struct Budget {
  std::optional<core::Money> daily, monthly;  // UTC day / UTC calendar month
  bool hard = true;                           // hard: refuse when exhausted; soft: report only
};

struct Limits {
  std::optional<int64_t> rpm, tpm, concurrency;
};

struct Tenant {
  std::string name;
  std::vector<KeyEntry> keys;
  std::vector<std::string> allowed_models;  // globs; empty = all
  std::string client_region, data_classification;  // as written in the config
  std::vector<std::string> compliance_profiles;     // preset names, as written
  routing::TenantSettings routing;                  // validated and normalized, what routing applies
  Budget budget;
  Limits limits;
};

// True when `model` matches one of the tenant's allowed_models globs (or the list is empty).
bool model_allowed(const Tenant& t, std::string_view model);

// Shell-style glob: '*' any run, '?' one character; everything else literal.
bool glob_match(std::string_view pattern, std::string_view text);

class TenantDirectory {
 public:
  TenantDirectory() = default;

  // Validates the `tenants:` node; errors carry file:line:col. A null/absent node gives an empty
  // directory (open mode: the lead logs that at start-up).
  static core::Result<TenantDirectory> from_yaml(const YAML::Node& tenants_node, const std::string& file);

  // SHA-256 of the presented key compared in constant time (CRYPTO_memcmp) against every stored
  // hash: the time taken does not depend on which key, if any, matched. nullptr if none did.
  const Tenant* authenticate(std::string_view presented_key, std::string* key_id) const;

  const Tenant* find(std::string_view name) const;
  bool empty() const { return tenants_.empty(); }
  const std::vector<Tenant>& tenants() const { return tenants_; }

 private:
  struct StoredKey {
    unsigned char hash[32];
    size_t tenant;
    size_t key;
  };
  std::vector<Tenant> tenants_;  // element addresses stay valid when the directory is moved
  std::vector<StoredKey> keys_;
};

// A new gateway API key: "gwk_" + 40 base62 characters from RAND_bytes (~238 bits).
std::string mint_key();

// "sha256:<64 hex>" of the key.
std::string hash_key(std::string_view key);

// The YAML to paste under `tenants.<tenant>.keys` for a freshly minted key: its id and hash, never
// the key itself. key_id defaults to "k-" + the first 8 hex digits of the hash.
std::string key_config_line(std::string_view tenant, std::string_view key, std::string_view key_id = {});

}  // namespace gateway
