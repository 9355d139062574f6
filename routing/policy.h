#pragma once
// The compiled form of a YAML routing policy (language reference: policies/README.md).
// compile_policy validates once and returns an immutable, shared CompiledPolicy; everything
// that does not depend on the request (static constraint checks, candidate expansion, catalog
// overrides) is resolved here, so a decision only evaluates what the request changes.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/result.h"
#include "routing/catalog.h"
#include "routing/content_match.h"
#include "routing/diversify.h"
#include "routing/router.h"
#include "routing/savings.h"
#include "routing/suspensions.h"
#include "routing/vocabulary.h"

namespace routing {

// A provider as configured in the gateway: which deployments exist and whether they can be used.
struct ProviderInstance {
  std::string name;  // instance name used in deployment ids ("deepseek", "qwen-us", "my-vllm", "local")
  std::string type;  // deepseek | qwen | kimi | glm | openai_compatible | local
  std::vector<std::string> regions;  // endpoint regions available; empty = every catalog region of the type
  bool has_credentials = true;
  std::string credential_hint;  // "set DEEPSEEK_API_KEY"
  // For local / openai_compatible instances: the models served (local default: {"local"}).
  std::vector<std::string> models;
  // The regions the operator configured (`region:` and `base_urls:` keys): what a policy candidate
  // written without a region ("qwen/qwen-flash") means. Empty = every region in `regions`.
  std::vector<std::string> configured_regions;
  // Tokens per sequence the instance really serves, when it knows (the local engine: the smaller of
  // local.max_context and the model's trained context); 0 = unknown, the catalog's figure stands.
  int64_t context_window = 0;
};

// Compliance presets (reference/compliance.md §5). sanctioned-origin-block is always on.
enum Preset : uint32_t {
  kPresetUsFederal = 1u << 0,
  kPresetUsRegulatedEnterprise = 1u << 1,
  kPresetEuGdpr = 1u << 2,
  kPresetChinaDomestic = 1u << 3,
  kPresetPrcModelsLocalOnly = 1u << 4,
};
const std::vector<std::pair<std::string, uint32_t>>& preset_names();  // includes "sanctioned-origin-block" = 0
// The bit of a preset name, or nullopt if the name is unknown.
std::optional<uint32_t> preset_bit(std::string_view name);

struct Constraints {
  std::vector<std::string> allowed_jurisdictions;  // empty = any
  std::vector<std::string> denied_jurisdictions;
  std::vector<std::string> required_inference_regions;  // expanded country codes; empty = no requirement
  std::vector<std::string> denied_inference_regions;
  std::vector<std::string> required_storage_regions;
  std::vector<std::string> denied_storage_regions;
  std::optional<SanctionsRisk> max_sanctions_risk;
  std::vector<std::string> denied_flags;
  Capabilities required_capabilities;
  bool context_fit = true;
  std::vector<std::string> trains_on_customer_data;  // allowed values; empty = any
  uint32_t presets = 0;
  std::optional<double> max_cost_usd;  // expected cost of one attempt
};

enum class ObjectiveKind : uint8_t { weighted, cheapest_within_slo, ordered };
const char* to_string(ObjectiveKind k);

struct Objective {
  ObjectiveKind kind = ObjectiveKind::weighted;
  double cost_weight = 1.0;
  double latency_weight = 0.3;
  double error_weight = 2.0;
  std::optional<double> latency_slo_ms;  // expected total latency (ttft + output / tokens-per-second)
  std::optional<double> ttft_slo_ms;     // expected time to first token
  bool strict_slo = false;               // exclude (rather than demote) candidates missing the SLO
};

struct Match {
  std::vector<std::string> models;  // literal, glob, "auto", or "$catalog" (any model the catalog serves)
  std::vector<std::string> tenants;
  std::vector<std::string> paths;   // globs
  std::vector<std::pair<std::string, std::string>> headers;  // lower-cased name -> value glob
  std::vector<std::string> data_classifications;
  ContentMatch content;  // script, code, input_tokens, tools, reasoning_effort
};

enum class ExclusionKind : uint8_t {
  policy,       // a hard constraint of the route or a preset (403)
  request,      // the request needs what the deployment lacks: capability, context (400)
  unavailable,  // not configured, no credentials, circuit open, cooldown (503)
  suspended,    // the kill switch: a suspension covers it (503, permanent)
};

struct RouteCandidate {
  uint32_t deployment = 0;          // index into CompiledPolicy::deployments
  std::string static_exclusion;     // non-empty: excluded for every request, with this reason
  ExclusionKind static_kind = ExclusionKind::policy;
  bool fallback = false;  // ranked after every non-fallback candidate (e.g. the local engine)
};

struct Route {
  std::string name;
  int line = 0;  // where it is defined, for explain
  Match match;
  // Candidates in policy order. A route whose candidates use `$request` has one list per model
  // name (key = requested model); otherwise the single list is under key "".
  std::unordered_map<std::string, std::vector<RouteCandidate>> candidates;
  bool per_model = false;
  Constraints constraints;
  Objective objective;
  int max_attempts = 3;
  bool affinity = true;
  // The counterfactual price of this route's traffic (`baseline:`, else `defaults.baseline`), for
  // the ledger's baseline_cost and the savings counter; nullopt = no baseline, no saving reckoned.
  std::optional<Pricing> baseline;
  std::string baseline_source;  // "price" or the reference deployment's id, for explain
  // max_share, spread, canary (routing/diversify.h), else the defaults'.
  DiversifySettings diversify;
};

// The policy's `defaults:` for requests and tenants that say nothing (normalized spellings).
struct TenantDefaults {
  std::string client_region;
  std::string data_classification;
  std::vector<std::string> data_tags;
};

struct CompiledPolicy {
  std::string name;
  std::string file;
  std::vector<DeploymentFacts> deployments;  // builtin + instances + YAML overrides
  std::unordered_map<std::string, uint32_t> deployment_index;
  std::vector<Route> routes;
  // The policy's `tenants:`: authoritative like the gateway config's tenant settings (a header only
  // adds restrictions unless the tenant lists it in allow_header_overrides).
  std::map<std::string, TenantSettings> tenants;
  TenantDefaults defaults;  // when neither request nor tenant says
  DataVocabulary vocabulary;  // built-in data tags and classifications + the policy's `vocabulary:`
  int64_t default_output_tokens = 256;
  std::string operator_region = "US";  // "EU"/"UK" adds UA-23, UA-65 to sanctioned-origin-block
  std::vector<std::string> model_names;  // what GET /v1/models lists
  std::vector<std::string> catalog_models;  // sorted model ids served by any deployment ($catalog)
  std::vector<std::string> warnings;     // non-fatal findings, for `gateway check`
  // The policy's `suspended:` list (routing/suspensions.h): excluded from every plan.
  SuspensionList suspended;

  const DeploymentFacts* find(std::string_view id) const;
};

// Compiles a policy. Errors (all of them, one per line, up to 50) read
//   "policies/x.yaml:12:5: unknown constraint 'max_sanction_risk' (did you mean 'max_sanctions_risk'?)"
// and come back as ErrorKind::bad_request with code "invalid_policy".
core::Result<std::shared_ptr<const CompiledPolicy>> compile_policy(std::string_view yaml_text, std::string_view file_name,
                                                                    const Catalog& builtin,
                                                                    const std::vector<ProviderInstance>& providers);

// The built-in catalog file (routing/catalog/builtin.yaml) read by the same fact parser and checks as
// a policy's `catalog:` entries, plus a source tag on every fact. Errors as for a policy, with code
// "invalid_catalog". builtin_catalog() compiles the embedded copy once; tests compile the text.
struct BuiltinCatalogData {
  std::string catalog_date;  // "YYYY-MM-DD"
  std::vector<DeploymentFacts> deployments;
};
core::Result<BuiltinCatalogData> compile_builtin_catalog(std::string_view yaml_text, std::string_view file_name);
// The embedded text of routing/catalog/builtin.yaml, as compiled into this binary.
std::string_view builtin_catalog_text();

// Reads the file and compiles it (file errors are reported the same way).
core::Result<std::shared_ptr<const CompiledPolicy>> compile_policy_file(const std::string& path, const Catalog& builtin,
                                                                         const std::vector<ProviderInstance>& providers);

}  // namespace routing
