// The built-in catalog: facts from reference/providers.md and reference/compliance.md as compiled
// on 2026-11-23. Every price and list membership is dated data; YAML (`catalog:` in a policy)
// overrides any of it without a release. Quirks are tables: one row per provider, region, model.
//
// Facts marked [U] in the references are kept but noted here; where a fact is missing we leave
// it unknown (empty), which fails closed in residency checks.
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "routing/catalog.h"

namespace routing {
namespace {

constexpr const char* kVerifiedAt = kBuiltinCatalogDate;
constexpr int64_t kMaxTokens = std::numeric_limits<int64_t>::max();

struct ProviderRow {
  const char* provider;
  const char* company;
  const char* jurisdiction;
  std::vector<std::string> flags;
  std::vector<std::string> gov_device_bans;
  double prior_ttft_ms;
  double prior_tps;
};

struct RegionRow {
  const char* provider;
  const char* region;
  const char* contracting_country;
  std::vector<std::string> inference;  // "*" = anywhere
  std::vector<std::string> inference_excluded;
  std::vector<std::string> storage;
  const char* trains_on_customer_data;
  const char* doj_dsp_covered_person;
  bool cac_genai_filed;
};

struct TierRow {
  int64_t up_to;
  double in, cached, write, out;  // USD per 1M tokens; write < 0 = same as input
  double thinking_out = -1;       // < 0: no separate thinking-mode price
};

struct ModelRow {
  const char* provider;
  const char* model;
  int64_t context_window;
  int64_t max_output;
  const char* caps;
  std::vector<TierRow> tiers;
  int64_t concurrency;
  const char* source;
  const char* alias_of = nullptr;  // legacy ID: the model that serves it
};

const std::vector<ProviderRow>& provider_rows() {
  static const std::vector<ProviderRow> rows{
      // DeepSeek: Entity List listing approved but withheld (Reuters, Jun 2026) [S]; NDAA FY26 §1532 names it.
      // Government actions as compliance.md lists them [S]: foreign governments, the US agencies that blocked
      // it (Navy, DISA/DoD, NASA, House, Commerce) and the 17 US states with a state-device ban.
      {"deepseek", "Hangzhou DeepSeek Artificial Intelligence Co., Ltd.", "CN",
       {"us_entity_list_pending", "ndaa26_1532_covered_ai", "gov_device_bans", "distillation_allegation"},
       {"it_garante", "kr_pipc", "au_pspf", "tw_public", "nl_central_gov", "de_berlin_dsa_notice", "cz_public",
        "in_finance_ministry", "us_fed:dod", "us_fed:disa", "us_fed:navy", "us_fed:nasa", "us_fed:house",
        "us_fed:commerce", "us_state:TX", "us_state:NY", "us_state:VA", "us_state:IA", "us_state:TN", "us_state:AL",
        "us_state:OK", "us_state:SD", "us_state:ND", "us_state:NC", "us_state:NE", "us_state:AR", "us_state:KS",
        "us_state:GA", "us_state:PA", "us_state:OR", "us_state:NV"},
       1500, 40},
      // Alibaba: DoD §1260H update posted and withdrawn twice (Feb 2026): pending [S].
      {"qwen", "Alibaba Group (Alibaba Cloud Model Studio)", "CN", {"dod_1260h_pending"}, {}, 1000, 60},
      // Moonshot: no list membership found [U]; named in distillation allegations [S].
      {"kimi", "Moonshot AI", "CN", {"distillation_allegation"}, {}, 1200, 45},
      // Zhipu: BIS Entity List, 90 FR 4617, added 2025-01-15 [V]; Z.ai's Singapore operator inherits the
      // parent's risk for routing purposes (Affiliates Rule status uncertain [U]).
      {"glm", "Beijing Zhipu Huazhang Technology", "CN", {"us_entity_list"}, {}, 1000, 50},
      // MiniMax: HQ Shanghai; not listed [S/U]; named in the distillation allegations (13M exchanges) [S].
      // Latency priors: none published; the same neutral figures as the other vendors.
      {"minimax", "MiniMax (Shanghai)", "CN", {"distillation_allegation"}, {}, 1200, 45},
  };
  return rows;
}

// cac_genai_filed is false everywhere: neither reference records a CAC generative-AI filing for any
// endpoint, and the china-domestic preset must not pass on a fact nobody checked (set it in YAML
// `catalog:` with the filing number's date once verified).
const std::vector<RegionRow>& region_rows() {
  static const std::vector<RegionRow> rows{
      {"deepseek", "global", "CN", {"CN"}, {}, {"CN"}, "opt_out", "yes", false},
      {"qwen", "cn-beijing", "CN", {"CN"}, {}, {"CN"}, "unknown", "yes", false},
      // International scope: data in Singapore, inference worldwide excluding mainland China [V].
      {"qwen", "ap-southeast-1", "SG", {"*"}, {"CN"}, {"SG"}, "no", "likely", false},
      // US scope: Virginia, US-only inference [V]. The same endpoint also serves Global-mode workspaces,
      // which may run on China nodes: those are region `global` below, not this one.
      {"qwen", "us-east-1", "SG", {"US"}, {}, {"US"}, "no", "likely", false},
      {"qwen", "cn-hongkong", "SG", {"HK"}, {}, {"HK"}, "no", "likely", false},
      // Global scope: data in Virginia or Frankfurt, inference worldwide including China [V].
      {"qwen", "global", "SG", {"*"}, {}, {"US", "DE"}, "no", "likely", false},
      // EU scope: Frankfurt, EU-only inference [V] (the region name eu-central-1 is inferred [U]). Operators
      // still need SCCs/TIA for access from SG/CN [U].
      {"qwen", "eu-central-1", "SG", {"EU"}, {}, {"DE"}, "no", "likely", false},
      // Tokyo: a workspace region [V]; its deployment scope is not documented in the reference, so inference
      // and storage stay unknown (fail closed in residency checks).
      {"qwen", "ap-northeast-1", "SG", {}, {}, {}, "no", "likely", false},
      // api.moonshot.ai: residency not stated [S] -> unknown, fails residency checks.
      {"kimi", "intl", "SG", {}, {}, {}, "opt_out", "likely", false},
      {"kimi", "cn", "CN", {"CN"}, {}, {"CN"}, "yes", "yes", false},
      // api.z.ai: Singapore, content not stored [S]. The Coding Plan endpoints are the same company and
      // hosts, a different key and billing (a subscription; pay-as-you-go prices are kept as the estimate).
      {"glm", "intl", "SG", {"SG"}, {}, {"SG"}, "opt_in", "likely", false},
      {"glm", "intl-coding", "SG", {"SG"}, {}, {"SG"}, "opt_in", "likely", false},
      {"glm", "cn", "CN", {"CN"}, {}, {"CN"}, "opt_out", "yes", false},
      {"glm", "cn-coding", "CN", {"CN"}, {}, {"CN"}, "opt_out", "yes", false},
      // api.minimax.io: Nanonoble Pte. Ltd. (SG), data in the US [S]; training on data not addressed [S].
      {"minimax", "intl", "SG", {"US"}, {}, {"US"}, "unknown", "likely", false},
      // api.minimaxi.com: Shanghai entity, CN [U].
      {"minimax", "cn", "CN", {"CN"}, {}, {"CN"}, "unknown", "yes", false},
  };
  return rows;
}

// Where the reference gives no capability list for a model, `caps` holds only what its row states
// (e.g. thinking); missing capabilities fail closed. Where it gives no max output, max_output is the
// context window [U], so context_fit still bounds the request.
const std::vector<ModelRow>& model_rows() {
  static const std::vector<ModelRow> rows{
      // DeepSeek list (peak) prices; off-peak is half (schedule below).
      {"deepseek", "deepseek-flash", 1000000, 384000, "tools,json,reasoning,vision", {{kMaxTokens, 0.30, 0.006, -1, 1.20}},
       2500, "api-docs.deepseek.com pricing, as of 2026-10 [V]"},
      {"deepseek", "deepseek-v4-pro", 1000000, 384000, "tools,json,reasoning", {{kMaxTokens, 1.32, 0.044, -1, 3.96}}, 500,
       "api-docs.deepseek.com pricing, as of 2026-10 [V]"},
      // Legacy IDs the vendor still accepts, served by V4.1-Flash at the Flash price [V]; they share
      // deepseek-flash's account concurrency.
      {"deepseek", "deepseek-v4-flash", 1000000, 384000, "tools,json,reasoning,vision",
       {{kMaxTokens, 0.30, 0.006, -1, 1.20}}, 2500, "legacy ID of deepseek-flash, as of 2026-10 [V]", "deepseek-flash"},
      {"deepseek", "deepseek-v4-flash-vision-exp", 1000000, 384000, "tools,json,reasoning,vision",
       {{kMaxTokens, 0.30, 0.006, -1, 1.20}}, 2500, "legacy ID of deepseek-flash, as of 2026-10 [V]", "deepseek-flash"},
      // Qwen international prices, applied to every region (CNY list prices in Beijing differ [U]).
      // Cached input: listed where known, else the implicit-cache 20% (10% for coder-plus, as listed);
      // cache write: explicit-cache creation at 125% of input [V].
      {"qwen", "qwen-flash", 1000000, 32768, "tools,json,reasoning",
       {{256000, 0.05, 0.01, 0.0625, 0.40}, {kMaxTokens, 0.25, 0.05, 0.3125, 2.00}}, 0, "LiteLLM dashscope/qwen-flash"},
      {"qwen", "qwen3.7-plus", 1000000, 65536, "tools,json,reasoning,vision",
       {{256000, 0.50, 0.05, 0.625, 3.00}, {kMaxTokens, 2.00, 0.20, 2.50, 6.00}}, 0, "models.dev 2026-07-02"},
      {"qwen", "qwen3-coder-plus", 1000000, 65536, "tools,json",
       {{32000, 1.0, 0.10, 1.25, 5.0}, {128000, 1.8, 0.18, 2.25, 9.0}, {256000, 3.0, 0.30, 3.75, 15.0},
        {kMaxTokens, 6.0, 0.60, 7.50, 60.0}},
       0, "LiteLLM (cache read = 10%)"},
      {"qwen", "qwen3-max", 262144, 65536, "tools,json",
       {{32000, 1.2, 0.24, 1.50, 6.0}, {128000, 2.4, 0.48, 3.00, 12.0}, {kMaxTokens, 3.0, 0.60, 3.75, 15.0}}, 0,
       "LiteLLM (tiers 0-32K, 32-128K, 128-252K)"},
      // qwen-plus: thinking mode bills all output at the thinking price (4.00, 12 above 256K); a call
      // with reasoning tokens ran in thinking mode. Cached input: implicit 20%.
      {"qwen", "qwen-plus", 1000000, 32768, "reasoning",
       {{256000, 0.40, 0.08, 0.50, 1.20, 4.00}, {kMaxTokens, 1.20, 0.24, 1.50, 3.60, 12.00}}, 0,
       "LiteLLM (capabilities other than thinking [U])"},
      {"qwen", "qwen3.7-max", 1000000, 65536, "", {{kMaxTokens, 2.50, 0.50, 3.125, 7.50}}, 0,
       "models.dev 2026-07-02 (capabilities [U])"},
      // qwen3.8-max: max output 65K-131K in conflicting sources, the smaller kept; cached price unknown,
      // implicit 20% assumed [U].
      {"qwen", "qwen3.8-max", 1000000, 65536, "reasoning", {{kMaxTokens, 2.00, 0.40, 2.50, 6.00}}, 0,
       "secondary sources [S] (cached price [U])"},
      {"qwen", "qwen3.8-flash", 1000000, 131072, "", {{kMaxTokens, 0.15, 0.016, 0.1875, 0.47}}, 0,
       "secondary sources [S] (capabilities [U])"},
      {"kimi", "kimi-k2.6", 262144, 262144, "tools,json,reasoning,vision", {{kMaxTokens, 0.95, 0.16, -1, 4.00}}, 0,
       "LiteLLM moonshot/kimi-k2.6, models.dev"},
      {"kimi", "kimi-k3", 1048576, 131072, "tools,json,reasoning,vision", {{kMaxTokens, 3.00, 0.30, -1, 15.00}}, 0,
       "secondary sources [S]"},
      {"kimi", "kimi-k2.5", 262144, 262144, "tools,json,reasoning", {{kMaxTokens, 0.60, 0.10, -1, 3.00}}, 0,
       "LiteLLM (max output [U])"},
      // K2.7-Code always thinks [S].
      {"kimi", "kimi-k2.7-code", 262144, 262144, "reasoning", {{kMaxTokens, 0.95, 0.19, -1, 4.00}}, 0,
       "models.dev (max output, capabilities [U])"},
      {"kimi", "kimi-k2.7-code-highspeed", 262144, 262144, "reasoning", {{kMaxTokens, 1.90, 0.38, -1, 8.00}}, 0,
       "models.dev (max output, capabilities [U])"},
      // kimi-k3.1 (2026-10-24): 1M context; the reference has no price [U]. kimi-k3's price is the
      // placeholder, so routing and spend are estimates until a price is set in YAML `catalog:`.
      {"kimi", "kimi-k3.1-pro", 1000000, 1000000, "", {{kMaxTokens, 3.00, 0.30, -1, 15.00}}, 0,
       "price unverified [U]: kimi-k3 placeholder"},
      {"kimi", "kimi-k3.1-highspeed", 1000000, 1000000, "", {{kMaxTokens, 3.00, 0.30, -1, 15.00}}, 0,
       "price unverified [U]: kimi-k3 placeholder"},
      // moonshot-v1: no cached price listed; cached input billed at the input price [U].
      {"kimi", "moonshot-v1-8k", 8192, 8192, "", {{kMaxTokens, 0.2, 0.2, -1, 2.0}}, 0, "LiteLLM (cached price [U])"},
      {"kimi", "moonshot-v1-32k", 32768, 32768, "", {{kMaxTokens, 1.0, 1.0, -1, 3.0}}, 0, "LiteLLM (cached price [U])"},
      {"kimi", "moonshot-v1-128k", 131072, 131072, "", {{kMaxTokens, 2.0, 2.0, -1, 5.0}}, 0,
       "LiteLLM (cached price [U])"},
      {"glm", "glm-5.2", 1000000, 131072, "tools,json,reasoning", {{kMaxTokens, 1.40, 0.26, -1, 4.40}}, 0,
       "models.dev 2026-07-02"},
      {"glm", "glm-4.7", 204800, 131072, "tools,json,reasoning", {{kMaxTokens, 0.60, 0.11, -1, 2.20}}, 0,
       "models.dev 2026-07-02"},
      {"glm", "glm-4.7-flashx", 200000, 131072, "tools,json", {{kMaxTokens, 0.07, 0.01, -1, 0.40}}, 0,
       "models.dev 2026-07-02 (capabilities [U])"},
      {"glm", "glm-4.5-air", 131072, 98304, "tools,json,reasoning", {{kMaxTokens, 0.20, 0.03, -1, 1.10}}, 0,
       "models.dev 2026-07-02"},
      // glm-5.3 (2026-08-18): thinking cannot be disabled.
      {"glm", "glm-5.3", 1000000, 131072, "reasoning", {{kMaxTokens, 1.40, 0.26, -1, 4.40}}, 0,
       "secondary sources [S] (capabilities other than thinking [U])"},
      {"glm", "glm-5.1", 200000, 131072, "reasoning", {{kMaxTokens, 1.40, 0.26, -1, 4.40}}, 0,
       "models.dev 2026-07-02 (capabilities other than thinking [U])"},
      // glm-5: no context window in the reference; glm-5.1's 200K assumed [U].
      {"glm", "glm-5", 200000, 131072, "reasoning", {{kMaxTokens, 1.00, 0.20, -1, 3.20}}, 0,
       "models.dev 2026-07-02 (context window [U])"},
      {"glm", "glm-5-turbo", 200000, 131072, "reasoning", {{kMaxTokens, 1.20, 0.24, -1, 4.00}}, 0,
       "models.dev 2026-07-02 (capabilities other than thinking [U])"},
      {"glm", "glm-4.7-flash", 200000, 131072, "", {{kMaxTokens, 0.0, 0.0, -1, 0.0}}, 0,
       "models.dev 2026-07-02: free (max output, capabilities [U])"},
      // MiniMax-M3 (2026-06-01): tiers by input length at 512K; cache write not given (input price) [S].
      {"minimax", "MiniMax-M3", 1000000, 131072, "",
       {{512000, 0.30, 0.06, -1, 1.20}, {kMaxTokens, 0.60, 0.12, -1, 2.40}}, 0,
       "secondary sources [S] (capabilities [U])"},
      {"minimax", "MiniMax-M2.7", 204800, 204800, "", {{kMaxTokens, 0.30, 0.06, 0.375, 1.20}}, 0,
       "models.dev (max output, capabilities [U])"},
      {"minimax", "MiniMax-M2.7-highspeed", 204800, 204800, "", {{kMaxTokens, 0.60, 0.12, 0.75, 2.40}}, 0,
       "models.dev: 2x M2.7 (max output, capabilities [U])"},
  };
  return rows;
}

Capabilities parse_caps(const char* s) {
  Capabilities c;
  std::string cur;
  for (const char* p = s;; ++p) {
    if (*p == ',' || *p == '\0') {
      if (!cur.empty()) c.set(cur);
      cur.clear();
      if (*p == '\0') break;
    } else {
      cur.push_back(*p);
    }
  }
  return c;
}

// DeepSeek: peak Mon-Fri 01:00-04:00 and 06:00-10:00 UTC; off-peak (rest, weekends) half price; Chinese
// public holidays are off-peak all day [V]. The reference states the rule but lists no dates; the
// built-in list holds only the date we can source (National Day, fixed on 1 October), so
// `gateway check` warns that it does not cover the next 12 months. A policy's
// `schedule.offpeak_dates` replaces the whole schedule, holidays included.
constexpr const char* kDeepseekHolidays[] = {"2026-10-01"};

int32_t days_from_iso(const char* s) {
  // YYYY-MM-DD to days since 1970-01-01 (civil-from-days inverse, proleptic Gregorian).
  int y = std::atoi(s), m = std::atoi(s + 5), d = std::atoi(s + 8);
  y -= m <= 2;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

PriceSchedule deepseek_schedule() {
  PriceSchedule s;
  constexpr uint8_t kMonFri = 0x1F;
  s.peak.push_back({kMonFri, 60, 240});
  s.peak.push_back({kMonFri, 360, 600});
  s.offpeak_factor = 0.5;
  for (const char* d : kDeepseekHolidays) s.offpeak_days.push_back(days_from_iso(d));
  return s;
}

std::vector<DeploymentFacts> build() {
  std::vector<DeploymentFacts> out;
  for (const auto& p : provider_rows()) {
    for (const auto& r : region_rows()) {
      if (std::string(r.provider) != p.provider) continue;
      for (const auto& m : model_rows()) {
        if (std::string(m.provider) != p.provider) continue;
        DeploymentFacts f;
        f.deployment.provider = p.provider;
        f.deployment.region = r.region;
        f.deployment.model = m.model;
        f.deployment.id = deployment_id(p.provider, r.region, m.model);
        f.provider_type = p.provider;
        f.developer_country = "CN";
        for (const auto& t : m.tiers) {
          PriceTier tier;
          tier.up_to_input_tokens = t.up_to;
          tier.input = core::TokenPrice::per_million_usd(t.in);
          tier.cached_input = core::TokenPrice::per_million_usd(t.cached);
          tier.cache_write = core::TokenPrice::per_million_usd(t.write < 0 ? t.in : t.write);
          tier.output = core::TokenPrice::per_million_usd(t.out);
          tier.reasoning_output = tier.output;
          if (t.thinking_out >= 0) {
            tier.reasoning_output = core::TokenPrice::per_million_usd(t.thinking_out);
            f.pricing.thinking_bills_all_output = true;
          }
          f.pricing.tiers.push_back(tier);
        }
        if (f.provider_type == "deepseek") f.pricing.schedule = deepseek_schedule();
        f.pricing.as_of = kVerifiedAt;
        f.pricing.source = m.source;
        f.context_window = m.context_window;
        f.max_output = m.max_output;
        f.caps = parse_caps(m.caps);
        f.concurrency_limit = m.concurrency;
        if (m.alias_of) f.alias_of = m.alias_of;
        f.prior_ttft_ms = p.prior_ttft_ms;
        f.prior_tokens_per_second = p.prior_tps;
        RiskFacts& risk = f.risk;
        risk.company = p.company;
        risk.jurisdiction = p.jurisdiction;
        risk.contracting_country = r.contracting_country;
        for (const auto& c : r.inference) {
          auto expanded = expand_country_group(c);
          risk.inference_countries.insert(risk.inference_countries.end(), expanded.begin(), expanded.end());
        }
        risk.inference_excluded = r.inference_excluded;
        risk.storage_countries = r.storage;
        risk.flags = p.flags;
        risk.gov_device_bans = p.gov_device_bans;
        risk.trains_on_customer_data = r.trains_on_customer_data;
        risk.doj_dsp_covered_person = r.doj_dsp_covered_person;
        risk.cac_genai_filed = r.cac_genai_filed;
        risk.verified_at = kVerifiedAt;
        out.push_back(std::move(f));
      }
    }
  }
  return out;
}

}  // namespace

std::string builtin_holidays_through(std::string_view provider) {
  if (provider != "deepseek") return "";
  std::string last;
  for (const char* d : kDeepseekHolidays)
    if (last < d) last = d;
  return last;
}

std::shared_ptr<const Catalog> builtin_catalog() {
  static const std::shared_ptr<const Catalog> catalog = std::make_shared<const Catalog>(build());
  return catalog;
}

}  // namespace routing
