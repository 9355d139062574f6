// The built-in catalog: facts from reference/providers.md and reference/compliance.md as compiled
// on 2026-11-23. Every price and list membership is dated data; YAML (`catalog:` in a policy)
// overrides any of it without a release. Quirks are tables: one row per provider, region, model.
//
// Facts marked [U] in the references are kept but noted here; where a fact is missing we leave
// it unknown (empty), which fails closed in residency checks.
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "routing/catalog.h"

namespace routing {
namespace {

constexpr const char* kVerifiedAt = "2026-11-23";
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
};

const std::vector<ProviderRow>& provider_rows() {
  static const std::vector<ProviderRow> rows{
      // DeepSeek: Entity List listing approved but withheld (Reuters, Jun 2026) [S]; NDAA FY26 §1532 names it;
      // government-device bans in many places [S].
      {"deepseek", "Hangzhou DeepSeek Artificial Intelligence Co., Ltd.", "CN",
       {"us_entity_list_pending", "ndaa26_1532_covered_ai", "gov_device_bans", "distillation_allegation"},
       {"it_garante", "kr_pipc", "au_pspf", "tw_public", "nl_central_gov", "cz_public", "us_fed:dod", "us_fed:navy",
        "us_fed:nasa", "us_fed:house", "us_state:TX", "us_state:NY", "us_state:VA"},
       1500, 40},
      // Alibaba: DoD §1260H update posted and withdrawn twice (Feb 2026): pending [S].
      {"qwen", "Alibaba Group (Alibaba Cloud Model Studio)", "CN", {"dod_1260h_pending"}, {}, 1000, 60},
      // Moonshot: no list membership found [U]; named in distillation allegations [S].
      {"kimi", "Moonshot AI", "CN", {"distillation_allegation"}, {}, 1200, 45},
      // Zhipu: BIS Entity List, 90 FR 4617, added 2025-01-15 [V]; Z.ai's Singapore operator inherits the
      // parent's risk for routing purposes (Affiliates Rule status uncertain [U]).
      {"glm", "Beijing Zhipu Huazhang Technology", "CN", {"us_entity_list"}, {}, 1000, 50},
  };
  return rows;
}

const std::vector<RegionRow>& region_rows() {
  static const std::vector<RegionRow> rows{
      {"deepseek", "global", "CN", {"CN"}, {}, {"CN"}, "opt_out", "yes", true},
      {"qwen", "cn-beijing", "CN", {"CN"}, {}, {"CN"}, "unknown", "yes", true},
      // International scope: data in Singapore, inference worldwide excluding mainland China [V].
      {"qwen", "ap-southeast-1", "SG", {"*"}, {"CN"}, {"SG"}, "no", "likely", false},
      // US scope: Virginia, US-only inference [V].
      {"qwen", "us-east-1", "SG", {"US"}, {}, {"US"}, "no", "likely", false},
      {"qwen", "cn-hongkong", "SG", {"HK"}, {}, {"HK"}, "no", "likely", false},
      // api.moonshot.ai: residency not stated [S] -> unknown, fails residency checks.
      {"kimi", "intl", "SG", {}, {}, {}, "opt_out", "likely", false},
      {"kimi", "cn", "CN", {"CN"}, {}, {"CN"}, "yes", "yes", true},
      // api.z.ai: Singapore, content not stored [S].
      {"glm", "intl", "SG", {"SG"}, {}, {"SG"}, "opt_in", "likely", false},
      {"glm", "cn", "CN", {"CN"}, {}, {"CN"}, "opt_out", "yes", true},
  };
  return rows;
}

const std::vector<ModelRow>& model_rows() {
  static const std::vector<ModelRow> rows{
      // DeepSeek list (peak) prices; off-peak is half (schedule below).
      {"deepseek", "deepseek-flash", 1000000, 384000, "tools,json,reasoning,vision", {{kMaxTokens, 0.30, 0.006, -1, 1.20}},
       2500, "api-docs.deepseek.com pricing, as of 2026-10 [V]"},
      {"deepseek", "deepseek-v4-pro", 1000000, 384000, "tools,json,reasoning", {{kMaxTokens, 1.32, 0.044, -1, 3.96}}, 500,
       "api-docs.deepseek.com pricing, as of 2026-10 [V]"},
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
      {"kimi", "kimi-k2.6", 262144, 262144, "tools,json,reasoning,vision", {{kMaxTokens, 0.95, 0.16, -1, 4.00}}, 0,
       "LiteLLM moonshot/kimi-k2.6, models.dev"},
      {"kimi", "kimi-k3", 1048576, 131072, "tools,json,reasoning,vision", {{kMaxTokens, 3.00, 0.30, -1, 15.00}}, 0,
       "secondary sources [S]"},
      {"kimi", "kimi-k2.5", 262144, 262144, "tools,json,reasoning", {{kMaxTokens, 0.60, 0.10, -1, 3.00}}, 0,
       "LiteLLM (max output [U])"},
      {"glm", "glm-5.2", 1000000, 131072, "tools,json,reasoning", {{kMaxTokens, 1.40, 0.26, -1, 4.40}}, 0,
       "models.dev 2026-07-02"},
      {"glm", "glm-4.7", 204800, 131072, "tools,json,reasoning", {{kMaxTokens, 0.60, 0.11, -1, 2.20}}, 0,
       "models.dev 2026-07-02"},
      {"glm", "glm-4.7-flashx", 200000, 131072, "tools,json", {{kMaxTokens, 0.07, 0.01, -1, 0.40}}, 0,
       "models.dev 2026-07-02 (capabilities [U])"},
      {"glm", "glm-4.5-air", 131072, 98304, "tools,json,reasoning", {{kMaxTokens, 0.20, 0.03, -1, 1.10}}, 0,
       "models.dev 2026-07-02"},
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

// DeepSeek: peak Mon-Fri 01:00-04:00 and 06:00-10:00 UTC; off-peak (rest, weekends) half price.
// Chinese public holidays are off-peak too; add their dates in YAML (`schedule.offpeak_dates`).
PriceSchedule deepseek_schedule() {
  PriceSchedule s;
  constexpr uint8_t kMonFri = 0x1F;
  s.peak.push_back({kMonFri, 60, 240});
  s.peak.push_back({kMonFri, 360, 600});
  s.offpeak_factor = 0.5;
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
          f.pricing.tiers.push_back(tier);
        }
        if (f.provider_type == "deepseek") f.pricing.schedule = deepseek_schedule();
        f.pricing.as_of = kVerifiedAt;
        f.pricing.source = m.source;
        f.context_window = m.context_window;
        f.max_output = m.max_output;
        f.caps = parse_caps(m.caps);
        f.concurrency_limit = m.concurrency;
        f.prior_ttft_ms = p.prior_ttft_ms;
        f.prior_tokens_per_second = p.prior_tps;
        RiskFacts& risk = f.risk;
        risk.company = p.company;
        risk.jurisdiction = p.jurisdiction;
        risk.contracting_country = r.contracting_country;
        risk.inference_countries = r.inference;
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

std::shared_ptr<const Catalog> builtin_catalog() {
  static const std::shared_ptr<const Catalog> catalog = std::make_shared<const Catalog>(build());
  return catalog;
}

}  // namespace routing
