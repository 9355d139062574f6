#pragma once
// The catalog: dated facts about every deployment the router may choose (prices, limits,
// capabilities, jurisdiction, sanctions and data-use flags). Immutable once built and shared
// by compiled policies; YAML overrides produce a new catalog, never mutate one in place.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/money.h"
#include "routing/deployment.h"

namespace routing {

struct Capabilities {
  bool tools = false;
  bool json = false;
  bool vision = false;
  bool reasoning = false;
  // An embedding model: it serves POST /v1/embeddings and never chat (the router keeps the two apart).
  bool embeddings = false;

  bool covers(const Capabilities& need) const {
    return (!need.tools || tools) && (!need.json || json) && (!need.vision || vision) &&
           (!need.reasoning || reasoning) && (!need.embeddings || embeddings);
  }
  bool any() const { return tools || json || vision || reasoning || embeddings; }
  // Names of the capabilities in `need` this set lacks, comma-separated ("" if none).
  std::string missing(const Capabilities& need) const;
  std::string to_string() const;  // "tools,json"
  // Sets one capability by name; false if the name is unknown.
  bool set(std::string_view name);
};
inline const std::vector<std::string>& capability_names() {
  static const std::vector<std::string> names{"tools", "json", "vision", "reasoning", "embeddings"};
  return names;
}

// Prices of one input-length tier. Prices are list (peak) prices; a schedule may discount them.
struct PriceTier {
  int64_t up_to_input_tokens = std::numeric_limits<int64_t>::max();  // inclusive upper bound
  core::TokenPrice input;
  core::TokenPrice cached_input;
  core::TokenPrice cache_write;
  core::TokenPrice output;
  core::TokenPrice reasoning_output;
};

// A weekly UTC window in which list price applies (e.g. DeepSeek peak hours).
struct PeakWindow {
  uint8_t weekdays = 0;       // bit 0 = Monday ... bit 6 = Sunday
  int16_t start_minute = 0;   // minutes after 00:00 UTC, inclusive
  int16_t end_minute = 0;     // exclusive
};

// Peak/off-peak schedule. Empty `peak` = no schedule, list price always.
struct PriceSchedule {
  std::vector<PeakWindow> peak;
  std::vector<int32_t> offpeak_days;  // UTC days since epoch that are off-peak all day (holidays)
  double offpeak_factor = 1.0;        // multiplier outside peak windows (DeepSeek: 0.5)

  bool empty() const { return peak.empty(); }
};

struct Pricing {
  std::vector<PriceTier> tiers;  // ascending by up_to_input_tokens; the last one covers the rest
  PriceSchedule schedule;
  std::string as_of;   // date the price was observed, "YYYY-MM-DD"
  std::string source;  // where it came from
  // Thinking-mode billing (Qwen's qwen-plus): a call that produced reasoning tokens ran in thinking
  // mode, and the vendor bills every output token of it, answer included, at reasoning_output.
  bool thinking_bills_all_output = false;

  const PriceTier& tier_for(int64_t input_tokens) const;
};

enum class SanctionsRisk : uint8_t { none = 0, low = 1, medium = 2, high = 3, blocked = 4 };
const char* to_string(SanctionsRisk r);
std::optional<SanctionsRisk> parse_sanctions_risk(std::string_view s);

// Who runs it and where, and what lists it is on. Field names follow reference/compliance.md.
struct RiskFacts {
  std::string company;              // parent company, for messages
  std::string jurisdiction;         // company (parent) jurisdiction: "CN", "US", ..., "self" for local
  std::string contracting_country;  // entity the operator contracts with
  // Where inference may run: ISO 3166-1 alpha-2 codes; "*" = anywhere (minus inference_excluded);
  // "self" = the operator's own site. Empty = unknown (fails every residency check: fail closed).
  std::vector<std::string> inference_countries;
  std::vector<std::string> inference_excluded;
  std::vector<std::string> storage_countries;  // same conventions
  // List memberships and other flags: us_entity_list, us_entity_list_pending, dod_1260h,
  // dod_1260h_pending, ofac_sdn, ndaa26_1532_covered_ai, gov_device_bans, distillation_allegation.
  std::vector<std::string> flags;
  std::vector<std::string> gov_device_bans;  // e.g. "us_fed:dod", "au_pspf"
  std::optional<SanctionsRisk> sanctions_risk_override;
  std::string trains_on_customer_data = "unknown";  // no|opt_in|opt_out|yes|unknown
  std::string doj_dsp_covered_person = "likely";    // yes|likely|no
  bool cac_genai_filed = false;
  std::string verified_at;  // "YYYY-MM-DD" of the list check

  bool has_flag(std::string_view f) const;
  // Derived from flags unless overridden: ofac_sdn -> blocked; us_entity_list -> high;
  // us_entity_list_pending, dod_1260h, ndaa26_1532_covered_ai -> medium;
  // dod_1260h_pending, gov_device_bans -> low; else none.
  SanctionsRisk sanctions_risk() const;
};

struct DeploymentFacts {
  Deployment deployment;      // id, provider instance, region, upstream model id
  std::string provider_type;  // deepseek|qwen|kimi|glm|openai_compatible|local
  std::string developer_country;  // of the model weights (applies to local weights too)
  Pricing pricing;
  int64_t context_window = 0;  // tokens (input + output)
  int64_t max_output = 0;      // tokens
  Capabilities caps;
  RiskFacts risk;
  int64_t concurrency_limit = 0;  // 0 = unknown
  // For a vendor-documented legacy model ID the vendor still accepts: the current model serving it
  // (e.g. deepseek-v4-flash -> deepseek-flash). Empty for a model's own ID.
  std::string alias_of;
  // Which reference tag stands behind each fact, by catalog key ("price", "price.schedule",
  // "context_window", "flags", ...): verified|secondary|unverified, or "policy" for a value a
  // policy's `catalog:` set without a tag.
  std::map<std::string, std::string> sources;
  // Priors used until live figures exist (and toward which stale figures decay).
  double prior_ttft_ms = 1000;
  double prior_tokens_per_second = 50;
  // Availability as configured (filled when a policy is compiled against provider instances).
  bool configured = true;
  bool has_credentials = true;
  std::string credential_hint;  // "set DEEPSEEK_API_KEY"
  // A price reference for savings baselines (policy catalog `reference_only: true`): it stays in the
  // catalog so a baseline can name it, and is never a candidate.
  bool reference_only = false;
  bool is_local() const { return provider_type == "local"; }
  // Context window + max output: a generous ceiling on what one answer can really bill (0: unknown).
  int64_t max_usage_tokens() const { return context_window > 0 ? context_window + std::max<int64_t>(max_output, 0) : 0; }
};

class Catalog {
 public:
  Catalog() = default;
  explicit Catalog(std::vector<DeploymentFacts> deployments);

  const std::vector<DeploymentFacts>& deployments() const { return deployments_; }
  const DeploymentFacts* find(std::string_view id) const;
  size_t size() const { return deployments_.size(); }

 private:
  // Looked up by string_view without building a std::string (find runs per planned attempt).
  struct IdHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::vector<DeploymentFacts> deployments_;
  std::unordered_map<std::string, size_t, IdHash, std::equal_to<>> index_;
};

// The built-in catalog: routing/catalog/builtin.yaml (facts from reference/providers.md and
// reference/compliance.md), compiled into the binary and read once at first use; provider names
// "deepseek", "qwen", "kimi", "glm", "minimax". An invalid file aborts with its errors (the build's
// tests read it first, so that never reaches an operator).
std::shared_ptr<const Catalog> builtin_catalog();
// The file's catalog_date: when the built-in facts were compiled.
const std::string& builtin_catalog_date();

// The last date ("YYYY-MM-DD") of the built-in off-peak holiday list of a provider type with a
// holiday rule (DeepSeek); "" for providers without one. `gateway check` warns when it is less
// than 12 months ahead.
std::string builtin_holidays_through(std::string_view provider);

// Country groups usable wherever a country list is accepted: EU, EEA, PRC (CN, HK, MO),
// GDPR_ADEQUATE, OFAC_COMPREHENSIVE. Returns the expansion, or the code itself upper-cased.
std::vector<std::string> expand_country_group(std::string_view code);
bool is_country_group(std::string_view code);

}  // namespace routing
