// YAML -> CompiledPolicy. Validation happens once, here: every unknown key, wrong type, unknown
// reference or impossible value is an error with file:line:column (exceptions stay inside this
// file; callers get a core::Result). The language is documented in policies/README.md.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "routing/constraints.h"
#include "routing/content_match_parse.h"
#include "routing/diversify_parse.h"
#include "routing/policy.h"
#include "routing/text_util.h"

namespace routing {

const char* to_string(ObjectiveKind k) {
  switch (k) {
    case ObjectiveKind::weighted: return "weighted";
    case ObjectiveKind::cheapest_within_slo: return "cheapest_within_slo";
    case ObjectiveKind::ordered: return "ordered";
  }
  return "weighted";
}

const DeploymentFacts* CompiledPolicy::find(std::string_view id) const {
  auto it = deployment_index.find(std::string(id));
  return it == deployment_index.end() ? nullptr : &deployments[it->second];
}

namespace {

constexpr size_t kMaxErrors = 50;
const std::vector<std::string> kProviderTypes{"deepseek", "qwen", "kimi", "glm", "minimax", "openai_compatible", "local"};

class Compiler {
 public:
  Compiler(std::string_view file, const Catalog& builtin, const std::vector<ProviderInstance>& providers)
      : file_(file), builtin_(builtin), providers_(providers) {}

  core::Result<std::shared_ptr<const CompiledPolicy>> run(std::string_view text);
  core::Result<BuiltinCatalogData> run_builtin(std::string_view text);

 private:
  // ---- diagnostics ----
  void error(const YAML::Mark& m, const std::string& msg) {
    if (errors_.size() >= kMaxErrors) return;
    std::ostringstream o;
    o << file_;
    if (!m.is_null()) o << ':' << m.line + 1 << ':' << m.column + 1;
    o << ": " << msg;
    errors_.push_back(o.str());
  }
  void error(const YAML::Node& n, const std::string& msg) { error(n.Mark(), msg); }
  void warn(const YAML::Node& n, const std::string& msg) {
    std::ostringstream o;
    o << file_ << ':' << n.Mark().line + 1 << ':' << n.Mark().column + 1 << ": warning: " << msg;
    out_->warnings.push_back(o.str());
  }
  static std::string hint(const std::string& word, const std::vector<std::string>& known) {
    std::string best = closest_match(word, known);
    return best.empty() ? std::string() : " (did you mean '" + best + "'?)";
  }

  // Checks a mapping's keys; returns false (with an error) if `n` is not a mapping.
  bool check_map(const YAML::Node& n, const std::string& what, const std::string& key_noun,
                 const std::vector<std::string>& allowed) {
    if (!n.IsMap()) {
      error(n, what + " must be a mapping");
      return false;
    }
    std::set<std::string> seen;
    for (const auto& kv : n) {
      if (!kv.first.IsScalar()) {
        error(kv.first, what + ": keys must be strings");
        continue;
      }
      const std::string key = kv.first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
        error(kv.first, "unknown " + key_noun + " '" + key + "'" + hint(key, allowed));
      else if (!seen.insert(key).second)  // YAML readers differ on which one wins: refuse both
        error(kv.first, what + ": duplicate key '" + key + "'");
    }
    return true;
  }

  std::optional<std::string> str(const YAML::Node& n, const std::string& what) {
    if (!n.IsScalar()) {
      error(n, what + " must be a string");
      return std::nullopt;
    }
    return n.Scalar();
  }
  std::optional<double> num(const YAML::Node& n, const std::string& what, double min = -1e300, double max = 1e300) {
    if (!n.IsScalar()) {
      error(n, what + " must be a number");
      return std::nullopt;
    }
    double v = 0;
    if (!YAML::convert<double>::decode(n, v)) {
      error(n, what + " must be a number, got '" + n.Scalar() + "'");
      return std::nullopt;
    }
    if (v < min || v > max) {
      std::ostringstream o;
      o << what << " must be between " << min << " and " << max << ", got " << n.Scalar();
      error(n, o.str());
      return std::nullopt;
    }
    return v;
  }
  std::optional<int64_t> integer(const YAML::Node& n, const std::string& what, int64_t min = 0) {
    if (!n.IsScalar()) {
      error(n, what + " must be an integer");
      return std::nullopt;
    }
    int64_t v = 0;
    if (!YAML::convert<int64_t>::decode(n, v)) {
      error(n, what + " must be an integer, got '" + n.Scalar() + "'");
      return std::nullopt;
    }
    if (v < min) {
      error(n, what + " must be at least " + std::to_string(min));
      return std::nullopt;
    }
    return v;
  }
  std::optional<bool> boolean(const YAML::Node& n, const std::string& what) {
    bool v = false;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
      error(n, what + " must be true or false");
      return std::nullopt;
    }
    return v;
  }
  // A string or a list of strings.
  std::optional<std::vector<std::string>> strs(const YAML::Node& n, const std::string& what) {
    std::vector<std::string> out;
    if (n.IsScalar()) {
      out.push_back(n.Scalar());
      return out;
    }
    if (n.IsNull()) return out;
    if (!n.IsSequence()) {
      error(n, what + " must be a string or a list of strings");
      return std::nullopt;
    }
    for (const auto& e : n) {
      if (!e.IsScalar()) {
        error(e, what + ": entries must be strings");
        return std::nullopt;
      }
      out.push_back(e.Scalar());
    }
    return out;
  }
  // Country codes / groups, expanded and upper-cased; "self" and "*" allowed where `allow_special`.
  std::optional<std::vector<std::string>> countries(const YAML::Node& n, const std::string& what, bool allow_special) {
    auto list = strs(n, what);
    if (!list) return std::nullopt;
    std::vector<std::string> out;
    for (const auto& c : *list) {
      if (c == "self" || c == "*") {
        if (!allow_special) {
          error(n, what + ": '" + c + "' is not allowed here");
          return std::nullopt;
        }
        out.push_back(c);
        continue;
      }
      if (!is_country_group(c) && (c.size() != 2 || !std::isalpha(static_cast<unsigned char>(c[0])) ||
                                   !std::isalpha(static_cast<unsigned char>(c[1])))) {
        error(n, what + ": '" + c + "' is not an ISO 3166-1 alpha-2 code or a group (EU, EEA, PRC, GDPR_ADEQUATE)");
        return std::nullopt;
      }
      // In the order written (a group in its own order), each code once: what the author listed
      // is what `gateway catalog` and explain show.
      for (auto& e : expand_country_group(c))
        if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(e);
    }
    return out;
  }
  std::optional<std::string> one_of(const YAML::Node& n, const std::string& what, const std::vector<std::string>& allowed) {
    auto s = str(n, what);
    if (!s) return std::nullopt;
    if (std::find(allowed.begin(), allowed.end(), *s) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      error(n, what + " '" + *s + "' is not one of " + list + hint(*s, allowed));
      return std::nullopt;
    }
    return s;
  }

  // ---- the request vocabulary (routing/vocabulary.h) ----
  std::optional<std::string> region_value(const YAML::Node& n, const std::string& what) {
    auto s = str(n, what);
    if (!s) return std::nullopt;
    std::string why;
    auto r = parse_region(*s, &why);
    if (!r) {
      error(n, what + ": " + why);
      return std::nullopt;
    }
    return r->text();
  }
  std::optional<std::string> classification_value(const YAML::Node& n, const std::string& what) {
    auto s = str(n, what);
    if (!s) return std::nullopt;
    std::string c = normalize_tag(*s);
    if (c.empty()) return c;
    if (!out_->vocabulary.known_classification(c)) {
      std::vector<std::string> known = out_->vocabulary.classifications();
      known.insert(known.end(), out_->vocabulary.tags().begin(), out_->vocabulary.tags().end());
      error(n, what + ": unknown data classification '" + *s + "'" + hint(c, known) +
                   " (declare your own under vocabulary.data_classifications)");
      return std::nullopt;
    }
    return c;
  }
  // Each entry checked on its own node, so the error points at the misspelt tag.
  std::optional<std::vector<std::string>> tag_values(const YAML::Node& n, const std::string& what) {
    std::vector<YAML::Node> items;
    if (n.IsScalar()) items.push_back(n);
    else if (n.IsSequence()) for (const auto& e : n) items.push_back(e);
    else if (!n.IsNull()) {
      error(n, what + " must be a string or a list of strings");
      return std::nullopt;
    }
    std::vector<std::string> out;
    bool ok = true;
    for (const auto& e : items) {
      auto s = str(e, what + " entry");
      if (!s) { ok = false; continue; }
      std::string t = normalize_tag(*s);
      if (!out_->vocabulary.known_tag(t)) {
        error(e, what + ": unknown data tag '" + *s + "'" + hint(t, out_->vocabulary.tags()) +
                     " (declare your own under vocabulary.data_tags)");
        ok = false;
        continue;
      }
      out.push_back(std::move(t));
    }
    if (!ok) return std::nullopt;
    return out;
  }
  void parse_vocabulary(const YAML::Node& n);
  void parse_suspended(const YAML::Node& n);

  // ---- sections ----
  void build_deployments();
  void add_deployment(DeploymentFacts f);
  void apply_catalog(const YAML::Node& n);
  void apply_facts(const YAML::Node& n, DeploymentFacts& f);
  void record_sources(const YAML::Node& n, DeploymentFacts& f);
  void cap_to_instance_limits();
  void check_aliases();
  bool parse_price(const YAML::Node& n, Pricing& p);
  bool parse_tier(const YAML::Node& n, PriceTier& t, bool need_bound);
  bool parse_schedule(const YAML::Node& n, PriceSchedule& s);
  void parse_tenants(const YAML::Node& n);
  void parse_defaults(const YAML::Node& n);
  void parse_routes(const YAML::Node& n);
  bool parse_constraints(const YAML::Node& n, Constraints& c);
  bool parse_objective(const YAML::Node& n, Objective& o);
  bool parse_match(const YAML::Node& n, Match& m);
  bool parse_baseline(const YAML::Node& n, std::optional<Pricing>& out, std::string& source);
  void refuse_if_only_references(const Route& route, const YAML::Node& n);
  void finish_model_names();
  std::optional<YAML::Node> builtin_level(const YAML::Node& n, const char* what, const char* name_key,
                                          const std::vector<std::string>& extra_keys, std::string& name);
  void check_builtin(const BuiltinCatalogData& data);

  struct Selector {
    std::string provider = "*", type = "*", region = "*", model = "*";
    bool region_given = false;  // no region = the provider instance's configured region(s)
    bool fallback = false;
    YAML::Node node;
  };
  std::optional<Selector> parse_selector(const YAML::Node& n);
  void expand(const Selector& s, const std::string& request_model, std::vector<std::pair<uint32_t, bool>>& out);
  bool known_provider(const std::string& p) const;
  bool in_configured_region(const DeploymentFacts& d) const;
  void warn_if_dead(const Route& route, const YAML::Node& n);
  void refuse_if_everything_excluded(const YAML::Node& n);

  std::string file_;
  const Catalog& builtin_;
  const std::vector<ProviderInstance>& providers_;
  std::vector<std::string> errors_;
  std::shared_ptr<CompiledPolicy> out_;
  Constraints default_constraints_;
  Objective default_objective_;
  int default_max_attempts_ = 3;
  std::optional<Pricing> default_baseline_;
  std::string default_baseline_source_;
  DiversifySettings default_diversify_;
  PolicyDiagnostics diagnostics() {
    return {[this](const YAML::Node& n, const std::string& m) { error(n, m); },
            [this](const YAML::Node& n, const std::string& m) { warn(n, m); }};
  }
  static std::vector<std::string> with_diversify(std::vector<std::string> keys) {
    keys.insert(keys.end(), diversify_keys().begin(), diversify_keys().end());
    return keys;
  }
  std::set<std::string> catalog_models_;
  bool builtin_mode_ = false;  // reading routing/catalog/builtin.yaml: every fact needs a source tag
};

void Compiler::add_deployment(DeploymentFacts f) {
  f.deployment.id = deployment_id(f.deployment.provider, f.deployment.region, f.deployment.model);
  if (out_->deployment_index.count(f.deployment.id)) return;
  out_->deployment_index.emplace(f.deployment.id, static_cast<uint32_t>(out_->deployments.size()));
  out_->deployments.push_back(std::move(f));
}

DeploymentFacts self_hosted_facts(const ProviderInstance& inst, const std::string& region, const std::string& model) {
  DeploymentFacts f;
  f.deployment.provider = inst.name;
  f.deployment.region = region;
  f.deployment.model = model;
  f.provider_type = inst.type;
  f.pricing.tiers.push_back(PriceTier{});
  if (inst.type == "local") {
    // The embedded engine: runs in this process, costs nothing per token, slow-ish.
    f.risk.company = "operator";
    f.risk.jurisdiction = "self";
    f.risk.contracting_country = "self";
    f.risk.inference_countries = {"self"};
    f.risk.storage_countries = {"self"};
    f.risk.trains_on_customer_data = "no";
    f.risk.doj_dsp_covered_person = "no";
    // Its real window when the engine is loaded; a guess only for a local deployment that is not.
    f.context_window = inst.context_window > 0 ? inst.context_window : 32768;
    f.max_output = std::min<int64_t>(8192, f.context_window);
    f.prior_ttft_ms = 300;
    f.prior_tokens_per_second = 20;
  } else {
    // An OpenAI-compatible server we know nothing about: facts unknown until YAML says,
    // so residency and jurisdiction constraints fail closed.
    f.risk.trains_on_customer_data = "unknown";
    f.risk.doj_dsp_covered_person = "likely";
    f.context_window = 131072;
    f.max_output = 8192;
    f.caps.json = true;
  }
  f.has_credentials = inst.has_credentials;
  f.credential_hint = inst.credential_hint;
  return f;
}

void Compiler::build_deployments() {
  std::set<std::string> instance_names;
  for (const auto& inst : providers_) {
    if (std::find(kProviderTypes.begin(), kProviderTypes.end(), inst.type) == kProviderTypes.end()) {
      errors_.push_back("provider instance '" + inst.name + "': unknown type '" + inst.type + "'" + hint(inst.type, kProviderTypes));
      continue;
    }
    instance_names.insert(inst.name);
    if (inst.type == "local" || inst.type == "openai_compatible") {
      std::vector<std::string> regions = inst.regions;
      if (regions.empty()) regions.push_back(inst.type == "local" ? "local" : "default");
      std::vector<std::string> models = inst.models;
      if (models.empty() && inst.type == "local") models.push_back("local");
      for (const auto& r : regions)
        for (const auto& m : models) add_deployment(self_hosted_facts(inst, r, m));
      continue;
    }
    for (const auto& t : builtin_.deployments()) {
      if (t.provider_type != inst.type) continue;
      if (!inst.regions.empty() &&
          std::find(inst.regions.begin(), inst.regions.end(), t.deployment.region) == inst.regions.end())
        continue;
      DeploymentFacts f = t;
      f.deployment.provider = inst.name;
      f.has_credentials = inst.has_credentials;
      f.credential_hint = inst.credential_hint;
      f.configured = true;
      add_deployment(std::move(f));
    }
  }
  // Built-in providers nobody configured stay visible (excluded as "not configured"), so a
  // policy can name them and explain says why they are not used.
  for (const auto& t : builtin_.deployments()) {
    if (instance_names.count(t.deployment.provider)) continue;
    DeploymentFacts f = t;
    f.configured = false;
    add_deployment(std::move(f));
  }
  if (!instance_names.count("local")) {
    ProviderInstance ghost{.name = "local", .type = "local"};
    DeploymentFacts f = self_hosted_facts(ghost, "local", "local");
    f.configured = false;
    add_deployment(std::move(f));
  }
}

bool Compiler::known_provider(const std::string& p) const {
  if (std::find(kProviderTypes.begin(), kProviderTypes.end(), p) != kProviderTypes.end()) return true;
  for (const auto& i : providers_)
    if (i.name == p) return true;
  for (const auto& d : out_->deployments)
    if (d.deployment.provider == p) return true;
  return false;
}

bool Compiler::parse_tier(const YAML::Node& n, PriceTier& t, bool need_bound) {
  if (!check_map(n, "price tier", "price key",
                 {"up_to", "input", "cached_input", "cache_write", "output", "reasoning_output"}))
    return false;
  bool ok = true;
  if (n["up_to"]) {
    if (n["up_to"].IsScalar() && n["up_to"].Scalar() == "max") {
      t.up_to_input_tokens = std::numeric_limits<int64_t>::max();
    } else if (auto v = integer(n["up_to"], "up_to", 1)) {
      t.up_to_input_tokens = *v;
    } else {
      ok = false;
    }
  } else if (need_bound) {
    error(n, "price tier needs 'up_to' (input tokens, inclusive; 'max' for the last tier)");
    ok = false;
  }
  auto price = [&](const char* key, core::TokenPrice& dst, bool required) -> bool {
    if (!n[key]) {
      if (required) {
        error(n, std::string("price tier needs '") + key + "'");
        return false;
      }
      return true;
    }
    auto v = num(n[key], std::string("price.") + key + " (USD per 1M tokens)", 0, 1e6);
    if (!v) return false;
    dst = core::TokenPrice::per_million_usd(*v);
    return true;
  };
  ok &= price("input", t.input, true);
  ok &= price("output", t.output, true);
  t.cached_input = t.input;
  t.cache_write = t.input;
  t.reasoning_output = t.output;
  ok &= price("cached_input", t.cached_input, false);
  ok &= price("cache_write", t.cache_write, false);
  ok &= price("reasoning_output", t.reasoning_output, false);
  return ok;
}

// "Mon-Fri 01:00-04:00", "Sat,Sun 00:00-24:00"
bool parse_window(const std::string& s, PeakWindow& w, std::string& err) {
  static const std::vector<std::string> days{"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
  std::istringstream in(s);
  std::string dpart, tpart, extra;
  if (!(in >> dpart >> tpart) || (in >> extra)) {
    err = "expected 'Mon-Fri HH:MM-HH:MM'";
    return false;
  }
  auto day = [&](const std::string& d) -> int {
    auto it = std::find(days.begin(), days.end(), to_lower(d));
    return it == days.end() ? -1 : static_cast<int>(it - days.begin());
  };
  w.weekdays = 0;
  std::istringstream ds(dpart);
  std::string item;
  while (std::getline(ds, item, ',')) {
    auto dash = item.find('-');
    int a = day(item.substr(0, dash)), b = dash == std::string::npos ? a : day(item.substr(dash + 1));
    if (a < 0 || b < 0 || b < a) {
      err = "bad day range '" + item + "' (use Mon..Sun, e.g. Mon-Fri)";
      return false;
    }
    for (int i = a; i <= b; ++i) w.weekdays |= static_cast<uint8_t>(1u << i);
  }
  auto hm = [&](const std::string& x) -> int {
    if (x.size() != 5 || x[2] != ':' || !std::isdigit(static_cast<unsigned char>(x[0])) ||
        !std::isdigit(static_cast<unsigned char>(x[1])) || !std::isdigit(static_cast<unsigned char>(x[3])) ||
        !std::isdigit(static_cast<unsigned char>(x[4])))
      return -1;
    int h = (x[0] - '0') * 10 + (x[1] - '0'), m = (x[3] - '0') * 10 + (x[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && m != 0)) return -1;
    return h * 60 + m;
  };
  auto dash = tpart.find('-');
  int a = dash == std::string::npos ? -1 : hm(tpart.substr(0, dash));
  int b = dash == std::string::npos ? -1 : hm(tpart.substr(dash + 1));
  if (a < 0 || b < 0 || b <= a) {
    err = "bad time range '" + tpart + "' (use HH:MM-HH:MM in UTC, start before end)";
    return false;
  }
  w.start_minute = static_cast<int16_t>(a);
  w.end_minute = static_cast<int16_t>(b);
  return true;
}

bool Compiler::parse_schedule(const YAML::Node& n, PriceSchedule& s) {
  if (n.IsScalar() && n.Scalar() == "none") {
    s = PriceSchedule{};
    return true;
  }
  if (!check_map(n, "price.schedule", "schedule key", {"peak", "offpeak_factor", "offpeak_dates"})) return false;
  PriceSchedule out;
  bool ok = true;
  if (!n["peak"]) {
    error(n, "price.schedule needs 'peak' (list of 'Mon-Fri HH:MM-HH:MM' UTC windows)");
    return false;
  }
  if (auto list = strs(n["peak"], "price.schedule.peak")) {
    for (const auto& w : *list) {
      PeakWindow pw;
      std::string err;
      if (!parse_window(w, pw, err)) {
        error(n["peak"], "price.schedule.peak '" + w + "': " + err);
        ok = false;
      } else {
        out.peak.push_back(pw);
      }
    }
  } else {
    ok = false;
  }
  if (n["offpeak_factor"]) {
    if (auto v = num(n["offpeak_factor"], "price.schedule.offpeak_factor", 0, 10)) out.offpeak_factor = *v;
    else ok = false;
  } else {
    error(n, "price.schedule needs 'offpeak_factor' (e.g. 0.5 for half price off-peak)");
    ok = false;
  }
  if (n["offpeak_dates"]) {
    if (auto list = strs(n["offpeak_dates"], "price.schedule.offpeak_dates")) {
      for (const auto& d : *list) {
        auto day = parse_iso_date(d);
        if (!day) {
          error(n["offpeak_dates"], "offpeak_dates: '" + d + "' is not a YYYY-MM-DD date");
          ok = false;
        } else {
          out.offpeak_days.push_back(*day);
        }
      }
    } else {
      ok = false;
    }
  }
  if (ok) s = std::move(out);
  return ok;
}

bool Compiler::parse_price(const YAML::Node& n, Pricing& p) {
  static const std::vector<std::string> keys{"input", "cached_input", "cache_write", "output", "reasoning_output",
                                             "tiers", "schedule", "as_of", "source", "thinking_bills_all_output"};
  if (!check_map(n, "price", "price key", keys)) return false;
  bool ok = true;
  const bool flat = n["input"] || n["cached_input"] || n["cache_write"] || n["output"] || n["reasoning_output"];
  if (flat && n["tiers"]) {
    error(n, "price: give either flat prices (input, output, ...) or 'tiers', not both");
    return false;
  }
  if (flat) {
    if (p.tiers.size() > 1) {
      error(n, "price: this deployment has " + std::to_string(p.tiers.size()) +
                   " input-length tiers; override them with 'tiers'");
      return false;
    }
    PriceTier t = p.tiers.empty() ? PriceTier{} : p.tiers.front();
    // A deployment added by this catalog (or by a provider's model list) starts with an all-zero
    // placeholder tier: it has no price to keep, so its unstated prices follow the stated ones.
    const bool had_input = !p.tiers.empty() && (t.input.pico_per_token || t.cached_input.pico_per_token ||
                                                t.cache_write.pico_per_token || t.output.pico_per_token ||
                                                t.reasoning_output.pico_per_token);
    auto price = [&](const char* key, core::TokenPrice& dst) {
      if (!n[key]) return;
      if (auto v = num(n[key], std::string("price.") + key + " (USD per 1M tokens)", 0, 1e6))
        dst = core::TokenPrice::per_million_usd(*v);
      else
        ok = false;
    };
    price("input", t.input);
    price("output", t.output);
    // For a new price, unspecified cached/write/reasoning follow input/output.
    if (!had_input) {
      t.cached_input = t.input;
      t.cache_write = t.input;
      t.reasoning_output = t.output;
    }
    price("cached_input", t.cached_input);
    price("cache_write", t.cache_write);
    price("reasoning_output", t.reasoning_output);
    t.up_to_input_tokens = std::numeric_limits<int64_t>::max();
    p.tiers.assign(1, t);
  }
  if (n["tiers"]) {
    const YAML::Node tiers = n["tiers"];
    if (!tiers.IsSequence() || tiers.size() == 0) {
      error(tiers, "price.tiers must be a non-empty list");
      return false;
    }
    std::vector<PriceTier> out;
    for (size_t i = 0; i < tiers.size(); ++i) {
      PriceTier t;
      if (!parse_tier(tiers[i], t, i + 1 < tiers.size())) {
        ok = false;
        continue;
      }
      if (!out.empty() && t.up_to_input_tokens <= out.back().up_to_input_tokens) {
        error(tiers[i], "price.tiers must be in ascending 'up_to' order");
        ok = false;
      }
      out.push_back(t);
    }
    if (ok) p.tiers = std::move(out);
  }
  if (n["schedule"]) ok &= parse_schedule(n["schedule"], p.schedule);
  if (n["as_of"]) {
    if (auto s = str(n["as_of"], "price.as_of")) {
      if (!parse_iso_date(*s)) {
        error(n["as_of"], "price.as_of must be a YYYY-MM-DD date");
        ok = false;
      } else {
        p.as_of = *s;
      }
    }
  }
  if (n["source"])
    if (auto s = str(n["source"], "price.source")) p.source = *s;
  if (n["thinking_bills_all_output"]) {
    if (auto v = boolean(n["thinking_bills_all_output"], "price.thinking_bills_all_output")) p.thinking_bills_all_output = *v;
    else ok = false;
  }
  return ok;
}

const std::vector<std::string>& fact_keys() {
  static const std::vector<std::string> keys{
      "ref", "remove", "type", "context_window", "max_output", "capabilities", "developer_country", "company",
      "jurisdiction", "contracting_country", "inference_countries", "inference_excluded", "storage_countries",
      "flags", "gov_device_bans", "sanctions_risk", "trains_on_customer_data", "doj_dsp_covered_person",
      "cac_genai_filed", "verified_at", "concurrency_limit", "latency_prior", "price", "reference_only", "alias_of",
      "source", "sources"};
  return keys;
}

// A catalog entry key that states a fact about a deployment (not which entry it is or how to read it).
bool is_fact_key(std::string_view k) {
  if (k == "ref" || k == "remove" || k == "type" || k == "source" || k == "sources") return false;
  const auto& keys = fact_keys();
  return std::find(keys.begin(), keys.end(), k) != keys.end();
}

const std::vector<std::string> kSourceTags{"verified", "secondary", "unverified"};

// A price entry that states prices (not only a schedule or its provenance).
bool sets_prices(const YAML::Node& price) {
  if (!price.IsMap()) return false;
  for (const auto& kv : price)
    if (kv.first.IsScalar() && kv.first.Scalar() != "schedule" && kv.first.Scalar() != "source" &&
        kv.first.Scalar() != "as_of")
      return true;
  return false;
}

void Compiler::apply_facts(const YAML::Node& n, DeploymentFacts& f) {
  auto set_int = [&](const char* key, int64_t& dst, int64_t min) {
    if (n[key])
      if (auto v = integer(n[key], key, min)) dst = *v;
  };
  set_int("context_window", f.context_window, 1);
  set_int("max_output", f.max_output, 1);
  set_int("concurrency_limit", f.concurrency_limit, 0);
  if (n["capabilities"]) {
    if (auto list = strs(n["capabilities"], "capabilities")) {
      Capabilities c;
      for (const auto& name : *list)
        if (!c.set(name)) error(n["capabilities"], "unknown capability '" + name + "'" + hint(name, capability_names()));
      f.caps = c;
    }
  }
  auto set_str = [&](const char* key, std::string& dst) {
    if (n[key])
      if (auto v = str(n[key], key)) dst = *v;
  };
  auto set_country = [&](const char* key, std::string& dst) {
    if (!n[key]) return;
    auto v = str(n[key], key);
    if (!v) return;
    if (*v == "self" || (v->size() == 2 && std::isalpha(static_cast<unsigned char>((*v)[0])) &&
                         std::isalpha(static_cast<unsigned char>((*v)[1])))) {
      dst = *v == "self" ? *v : to_upper(*v);
    } else {
      error(n[key], std::string(key) + " must be an ISO 3166-1 alpha-2 code or 'self', got '" + *v + "'");
    }
  };
  set_country("developer_country", f.developer_country);
  set_str("company", f.risk.company);
  set_country("jurisdiction", f.risk.jurisdiction);
  set_country("contracting_country", f.risk.contracting_country);
  auto set_countries = [&](const char* key, std::vector<std::string>& dst) {
    if (n[key])
      if (auto v = countries(n[key], key, true)) dst = *v;
  };
  set_countries("inference_countries", f.risk.inference_countries);
  set_countries("inference_excluded", f.risk.inference_excluded);
  set_countries("storage_countries", f.risk.storage_countries);
  if (n["flags"])
    if (auto v = strs(n["flags"], "flags")) f.risk.flags = *v;
  if (n["gov_device_bans"])
    if (auto v = strs(n["gov_device_bans"], "gov_device_bans")) f.risk.gov_device_bans = *v;
  if (n["sanctions_risk"])
    if (auto v = one_of(n["sanctions_risk"], "sanctions_risk", {"none", "low", "medium", "high", "blocked"}))
      f.risk.sanctions_risk_override = parse_sanctions_risk(*v);
  if (n["trains_on_customer_data"])
    if (auto v = one_of(n["trains_on_customer_data"], "trains_on_customer_data", {"no", "opt_in", "opt_out", "yes", "unknown"}))
      f.risk.trains_on_customer_data = *v;
  if (n["doj_dsp_covered_person"])
    if (auto v = one_of(n["doj_dsp_covered_person"], "doj_dsp_covered_person", {"yes", "likely", "no"}))
      f.risk.doj_dsp_covered_person = *v;
  if (n["cac_genai_filed"])
    if (auto v = boolean(n["cac_genai_filed"], "cac_genai_filed")) f.risk.cac_genai_filed = *v;
  if (n["verified_at"]) {
    if (auto v = str(n["verified_at"], "verified_at")) {
      if (!parse_iso_date(*v)) error(n["verified_at"], "verified_at must be a YYYY-MM-DD date");
      else f.risk.verified_at = *v;
    }
  }
  if (n["latency_prior"]) {
    const YAML::Node lp = n["latency_prior"];
    if (check_map(lp, "latency_prior", "latency_prior key", {"ttft_ms", "tokens_per_second"})) {
      if (lp["ttft_ms"])
        if (auto v = num(lp["ttft_ms"], "latency_prior.ttft_ms", 0, 1e7)) f.prior_ttft_ms = *v;
      if (lp["tokens_per_second"])
        if (auto v = num(lp["tokens_per_second"], "latency_prior.tokens_per_second", 0.01, 1e7))
          f.prior_tokens_per_second = *v;
    }
  }
  if (n["alias_of"])
    if (auto v = str(n["alias_of"], "alias_of")) f.alias_of = *v;
  if (n["price"]) parse_price(n["price"], f.pricing);
  if (n["reference_only"])
    if (auto v = boolean(n["reference_only"], "reference_only")) f.reference_only = *v;
  record_sources(n, f);
}

// Which reference tag stands behind each fact this entry sets: `source:` for all of them,
// `sources: {fact: tag}` for one. A price's schedule is its own fact ("price.schedule"), so a
// provider-wide schedule and a model's prices keep their own tags. In the built-in file every fact
// needs a tag; a policy's untagged fact is marked "policy", so `gateway catalog` never shows a
// reference tag on a value the reference did not give.
void Compiler::record_sources(const YAML::Node& n, DeploymentFacts& f) {
  std::optional<std::string> whole;
  if (n["source"]) whole = one_of(n["source"], "source", kSourceTags);
  std::map<std::string, std::string> per;
  if (n["sources"]) {
    const YAML::Node s = n["sources"];
    std::vector<std::string> allowed{"price.schedule"};
    for (const auto& k : fact_keys())
      if (is_fact_key(k)) allowed.push_back(k);
    if (check_map(s, "sources", "fact", allowed))
      for (const auto& kv : s) {
        if (!kv.first.IsScalar()) continue;
        const std::string key = kv.first.Scalar();
        const YAML::Node price = n["price"];
        const bool sets = key == "price.schedule" ? price && price.IsMap() && price["schedule"]
                          : key == "price"        ? price && sets_prices(price)
                                                  : static_cast<bool>(n[key]);
        if (!sets) error(kv.first, "sources: '" + key + "' is not a fact this entry sets");
        if (auto tag = one_of(kv.second, "sources." + key, kSourceTags)) per[key] = *tag;
      }
  }
  auto tag = [&](const std::string& key, const YAML::Node& where) {
    if (auto it = per.find(key); it != per.end()) f.sources[key] = it->second;
    else if (whole) f.sources[key] = *whole;
    else if (builtin_mode_) error(where, "built-in fact '" + key + "' needs a source tag (source: or sources:)");
    else f.sources[key] = "policy";
  };
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) continue;
    const std::string key = kv.first.Scalar();
    if (!is_fact_key(key)) continue;
    if (key != "price") {
      tag(key, kv.first);
      continue;
    }
    const YAML::Node price = kv.second;
    if (!price.IsMap()) continue;
    if (price["schedule"]) tag("price.schedule", kv.first);
    if (sets_prices(price)) tag("price", kv.first);
  }
}

void Compiler::apply_catalog(const YAML::Node& n) {
  if (!n.IsSequence()) {
    error(n, "catalog must be a list of deployment entries (each with 'ref')");
    return;
  }
  std::vector<uint32_t> removed;
  for (const auto& e : n) {
    if (!check_map(e, "catalog entry", "catalog key", fact_keys())) continue;
    if (!e["ref"]) {
      error(e, "catalog entry needs 'ref' (provider[@region]/model, globs allowed)");
      continue;
    }
    auto ref = str(e["ref"], "ref");
    if (!ref) continue;
    Deployment d;
    std::string perr;
    if (!parse_deployment_ref(*ref, d, perr)) {
      error(e["ref"], perr);
      continue;
    }
    const std::string region_pat = d.region.empty() ? "*" : d.region;
    std::vector<uint32_t> hits;
    for (uint32_t i = 0; i < out_->deployments.size(); ++i) {
      const auto& x = out_->deployments[i].deployment;
      if (glob_match(d.provider, x.provider) && glob_match(region_pat, x.region) && glob_match(d.model, x.model))
        hits.push_back(i);
    }
    bool remove = false;
    if (e["remove"])
      if (auto v = boolean(e["remove"], "remove")) remove = *v;
    if (e["type"] && !hits.empty()) error(e["type"], "'type' only applies to new deployments; '" + *ref + "' exists");
    if (hits.empty()) {
      if (has_glob(d.provider) || has_glob(region_pat == "*" ? std::string() : region_pat) || has_glob(d.model)) {
        warn(e["ref"], "catalog ref '" + *ref + "' matches no deployment");
        continue;
      }
      if (remove) {
        warn(e["ref"], "catalog ref '" + *ref + "' to remove matches no deployment");
        continue;
      }
      // A new deployment on a provider instance (e.g. a self-hosted vLLM).
      const ProviderInstance* inst = nullptr;
      for (const auto& p : providers_)
        if (p.name == d.provider) inst = &p;
      std::string type = inst ? inst->type : "openai_compatible";
      if (e["type"])
        if (auto t = one_of(e["type"], "type", kProviderTypes)) type = *t;
      if (inst && inst->type != type) {
        error(e["type"], "provider '" + d.provider + "' is configured with type '" + inst->type + "'");
        continue;
      }
      std::string region = d.region;
      if (region.empty()) region = inst && !inst->regions.empty() ? inst->regions.front() : (type == "local" ? "local" : "default");
      ProviderInstance proto = inst ? *inst : ProviderInstance{.name = d.provider, .type = type};
      DeploymentFacts f;
      // A new model on a built-in provider inherits that provider's region facts.
      const DeploymentFacts* tmpl = nullptr;
      for (const auto& x : out_->deployments)
        if (x.deployment.provider == d.provider && x.deployment.region == region) tmpl = &x;
      if (tmpl && type != "local" && type != "openai_compatible") {
        f = *tmpl;
        f.deployment.model = d.model;
        f.pricing = Pricing{};
        f.pricing.tiers.push_back(PriceTier{});
        f.caps = Capabilities{};
        f.context_window = 0;
        f.max_output = 0;
        // The template's model facts are not this model's: no alias, and no tag on facts it lost.
        f.alias_of.clear();
        for (const char* k : {"price", "capabilities", "context_window", "max_output", "alias_of"}) f.sources.erase(k);
      } else {
        f = self_hosted_facts(proto, region, d.model);
      }
      f.deployment.provider = d.provider;
      f.deployment.region = region;
      f.deployment.model = d.model;
      f.provider_type = type;
      f.configured = inst != nullptr;
      if (type == "openai_compatible") f.context_window = 0;  // unknown model: its limits must be stated
      if (!inst) {
        f.has_credentials = true;
        f.credential_hint.clear();
      }
      apply_facts(e, f);
      if (f.context_window <= 0) error(e, "new deployment '" + *ref + "' needs context_window");
      if (f.max_output <= 0) f.max_output = f.context_window;
      add_deployment(std::move(f));
      continue;
    }
    for (uint32_t i : hits) {
      if (remove) removed.push_back(i);
      else apply_facts(e, out_->deployments[i]);
    }
  }
  if (!removed.empty()) {
    std::sort(removed.begin(), removed.end());
    removed.erase(std::unique(removed.begin(), removed.end()), removed.end());
    std::vector<DeploymentFacts> kept;
    for (uint32_t i = 0; i < out_->deployments.size(); ++i)
      if (!std::binary_search(removed.begin(), removed.end(), i)) kept.push_back(std::move(out_->deployments[i]));
    out_->deployments = std::move(kept);
    out_->deployment_index.clear();
    for (uint32_t i = 0; i < out_->deployments.size(); ++i)
      out_->deployment_index.emplace(out_->deployments[i].deployment.id, i);
  }
}

// explain names the model a legacy ID stands for, so an alias must name a model of the same provider
// and region that is no alias itself (a policy's `alias_of` is checked as the built-in file's is).
void Compiler::check_aliases() {
  for (const auto& f : out_->deployments) {
    if (f.alias_of.empty()) continue;
    const DeploymentFacts* target =
        out_->find(deployment_id(f.deployment.provider, f.deployment.region, f.alias_of));
    if (!target)
      errors_.push_back(file_ + ": " + f.deployment.id + ": alias_of '" + f.alias_of + "' is no model of " +
                        f.deployment.provider + "@" + f.deployment.region +
                        " (a removed model's legacy IDs go with it: remove them too, or set alias_of: \"\")");
    else if (!target->alias_of.empty())
      errors_.push_back(file_ + ": " + f.deployment.id + ": alias_of '" + f.alias_of + "' is itself an alias");
  }
}

// A window the instance itself reports is a fact, not a claim: a catalog entry may state a smaller one
// but never a larger one, or the router would plan requests the engine must refuse.
void Compiler::cap_to_instance_limits() {
  for (auto& f : out_->deployments)
    for (const auto& inst : providers_) {
      if (inst.name != f.deployment.provider || inst.context_window <= 0) continue;
      if (f.context_window <= 0 || f.context_window > inst.context_window) f.context_window = inst.context_window;
      if (f.max_output <= 0 || f.max_output > f.context_window) f.max_output = f.context_window;
    }
}

void Compiler::parse_vocabulary(const YAML::Node& n) {
  if (!check_map(n, "vocabulary", "vocabulary key", {"data_tags", "data_classifications"})) return;
  auto names = [&](const char* key, auto add) {
    if (!n[key]) return;
    if (auto list = strs(n[key], std::string("vocabulary.") + key))
      for (const auto& name : *list) {
        const std::string t = normalize_tag(name);
        const bool ok = !t.empty() && t.size() <= 64 && std::all_of(t.begin(), t.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':' || c == '.';
        });
        if (!ok) error(n[key], std::string("vocabulary.") + key + ": '" + name + "' must be 1-64 of [a-z0-9_:.-]");
        else add(t);
      }
  };
  names("data_tags", [&](const std::string& t) { out_->vocabulary.add_tag(t); });
  names("data_classifications", [&](const std::string& t) { out_->vocabulary.add_classification(t); });
}

// `suspended:` entries: exactly one selector key, a reason, the date since when, and who decided.
void Compiler::parse_suspended(const YAML::Node& n) {
  if (!n.IsSequence()) {
    error(n, "suspended must be a list of {vendor|parent|jurisdiction|deployment: name, reason, since, by}");
    return;
  }
  std::vector<std::string> keys = suspension_kind_names();
  keys.insert(keys.end(), {"reason", "since", "by"});
  for (const auto& e : n) {
    if (!check_map(e, "suspended entry", "suspended key", keys)) continue;
    Suspension s;
    s.from_policy = true;
    s.id = "policy:" + std::to_string(e.Mark().line + 1);
    int selectors = 0;
    for (const auto& kind_name : suspension_kind_names()) {
      if (!e[kind_name]) continue;
      ++selectors;
      auto target = str(e[kind_name], "suspended." + kind_name);
      if (!target) continue;
      auto sel = make_suspension_selector(*parse_suspension_kind(kind_name), *target, out_->deployments);
      if (!sel) error(e[kind_name], sel.error().message);
      else s.selector = *sel;
    }
    if (selectors != 1) error(e, "suspended entry needs exactly one of vendor, parent, jurisdiction, deployment");
    if (!e["reason"]) error(e, "suspended entry needs 'reason'");
    else if (auto v = str(e["reason"], "suspended.reason")) {
      if (v->empty()) error(e["reason"], "suspended.reason must say why");
      s.reason = *v;
    }
    if (!e["since"]) error(e, "suspended entry needs 'since' (YYYY-MM-DD)");
    else if (auto v = str(e["since"], "suspended.since")) {
      if (!parse_iso_date(*v)) error(e["since"], "suspended.since must be a date YYYY-MM-DD, got '" + *v + "'");
      s.since = *v;
    }
    if (e["by"])
      if (auto v = str(e["by"], "suspended.by")) s.by = *v;
    out_->suspended.push_back(std::move(s));
  }
}

void Compiler::parse_tenants(const YAML::Node& n) {
  if (!n.IsMap()) {
    error(n, "tenants must be a mapping of tenant name -> settings");
    return;
  }
  for (const auto& kv : n) {
    const std::string name = kv.first.Scalar();
    const YAML::Node& t = kv.second;
    if (!check_map(t, "tenant '" + name + "'", "tenant key",
                   {"client_region", "data_classification", "data_tags", "allow_header_overrides"}))
      continue;
    TenantSettings d;
    if (t["client_region"])
      if (auto v = region_value(t["client_region"], "tenants." + name + ".client_region")) d.client_region = *v;
    if (t["data_classification"])
      if (auto v = classification_value(t["data_classification"], "tenants." + name + ".data_classification"))
        d.data_classification = *v;
    if (t["data_tags"])
      if (auto v = tag_values(t["data_tags"], "tenants." + name + ".data_tags")) d.data_tags = *v;
    if (t["allow_header_overrides"])
      if (auto v = strs(t["allow_header_overrides"], "allow_header_overrides"))
        for (const auto& h : *v) {
          const std::string lh = to_lower(h);
          if (lh == "x-gateway-client-region") d.override_region = true;
          else if (lh == "x-gateway-data-classification") d.override_classification = true;
          else if (lh == "x-gateway-data-tags") d.override_tags = true;
          else
            error(t["allow_header_overrides"], "allow_header_overrides: '" + h +
                                                   "' is not one of x-gateway-client-region, "
                                                   "x-gateway-data-classification, x-gateway-data-tags");
        }
    out_->tenants[name] = std::move(d);
  }
}

bool Compiler::parse_constraints(const YAML::Node& n, Constraints& c) {
  static const std::vector<std::string> keys{
      "presets", "allowed_jurisdictions", "denied_jurisdictions", "required_inference_regions",
      "denied_inference_regions", "required_storage_regions", "denied_storage_regions", "max_sanctions_risk",
      "denied_flags", "required_capabilities", "context_fit", "trains_on_customer_data", "max_cost_usd"};
  if (!check_map(n, "constraints", "constraint", keys)) return false;
  const size_t before = errors_.size();
  if (n["presets"]) {
    if (auto list = strs(n["presets"], "presets")) {
      std::vector<std::string> names;
      for (const auto& [name, bit] : preset_names()) names.push_back(name);
      for (const auto& p : *list) {
        auto it = std::find_if(preset_names().begin(), preset_names().end(), [&](const auto& e) { return e.first == p; });
        if (it == preset_names().end()) error(n["presets"], "unknown preset '" + p + "'" + hint(p, names));
        else c.presets |= it->second;
      }
    }
  }
  auto juris = [&](const char* key, std::vector<std::string>& dst) {
    if (!n[key]) return;
    auto list = strs(n[key], key);
    if (!list) return;
    dst.clear();
    for (const auto& j : *list) {
      if (j == "self") {
        dst.push_back(j);
      } else if (is_country_group(j) || j.size() == 2) {
        for (auto& e : expand_country_group(j)) dst.push_back(e);
      } else {
        error(n[key], std::string(key) + ": '" + j + "' is not a country code, group or 'self'");
      }
    }
  };
  juris("allowed_jurisdictions", c.allowed_jurisdictions);
  juris("denied_jurisdictions", c.denied_jurisdictions);
  auto regions = [&](const char* key, std::vector<std::string>& dst) {
    if (n[key])
      if (auto v = countries(n[key], key, false)) dst = *v;
  };
  regions("required_inference_regions", c.required_inference_regions);
  regions("denied_inference_regions", c.denied_inference_regions);
  regions("required_storage_regions", c.required_storage_regions);
  regions("denied_storage_regions", c.denied_storage_regions);
  if (n["max_sanctions_risk"])
    if (auto v = one_of(n["max_sanctions_risk"], "max_sanctions_risk", {"none", "low", "medium", "high", "blocked"}))
      c.max_sanctions_risk = parse_sanctions_risk(*v);
  if (n["denied_flags"])
    if (auto v = strs(n["denied_flags"], "denied_flags")) c.denied_flags = *v;
  if (n["required_capabilities"]) {
    if (auto list = strs(n["required_capabilities"], "required_capabilities")) {
      for (const auto& name : *list)
        if (!c.required_capabilities.set(name))
          error(n["required_capabilities"], "unknown capability '" + name + "'" + hint(name, capability_names()));
    }
  }
  if (n["context_fit"])
    if (auto v = boolean(n["context_fit"], "context_fit")) c.context_fit = *v;
  if (n["trains_on_customer_data"]) {
    if (auto list = strs(n["trains_on_customer_data"], "trains_on_customer_data")) {
      static const std::vector<std::string> allowed{"no", "opt_in", "opt_out", "yes", "unknown"};
      for (const auto& v : *list)
        if (std::find(allowed.begin(), allowed.end(), v) == allowed.end())
          error(n["trains_on_customer_data"], "trains_on_customer_data: unknown value '" + v + "'" + hint(v, allowed));
      c.trains_on_customer_data = *list;
    }
  }
  if (n["max_cost_usd"])
    if (auto v = num(n["max_cost_usd"], "max_cost_usd", 0, 1e6)) c.max_cost_usd = *v;
  return errors_.size() == before;
}

bool Compiler::parse_objective(const YAML::Node& n, Objective& o) {
  if (n.IsScalar()) {
    auto t = one_of(n, "objective", {"weighted", "cheapest_within_slo", "ordered"});
    if (!t) return false;
    o = Objective{};
    o.kind = *t == "weighted" ? ObjectiveKind::weighted : *t == "ordered" ? ObjectiveKind::ordered : ObjectiveKind::cheapest_within_slo;
    if (o.kind == ObjectiveKind::cheapest_within_slo) {
      error(n, "cheapest_within_slo needs latency_slo_ms or ttft_slo_ms: write it as a mapping");
      return false;
    }
    return true;
  }
  if (!check_map(n, "objective", "objective key", {"type", "weights", "latency_slo_ms", "ttft_slo_ms", "strict_slo"}))
    return false;
  if (!n["type"]) {
    error(n, "objective needs 'type' (weighted, cheapest_within_slo or ordered)");
    return false;
  }
  auto t = one_of(n["type"], "objective type", {"weighted", "cheapest_within_slo", "ordered"});
  if (!t) return false;
  Objective out;
  out.kind = *t == "weighted" ? ObjectiveKind::weighted : *t == "ordered" ? ObjectiveKind::ordered : ObjectiveKind::cheapest_within_slo;
  const size_t before = errors_.size();
  if (n["weights"]) {
    if (out.kind != ObjectiveKind::weighted) error(n["weights"], "'weights' only apply to objective type weighted");
    const YAML::Node w = n["weights"];
    if (check_map(w, "weights", "weight", {"cost", "latency", "error_risk"})) {
      out.cost_weight = out.latency_weight = out.error_weight = 0;
      if (w["cost"])
        if (auto v = num(w["cost"], "weights.cost", 0, 1e6)) out.cost_weight = *v;
      if (w["latency"])
        if (auto v = num(w["latency"], "weights.latency", 0, 1e6)) out.latency_weight = *v;
      if (w["error_risk"])
        if (auto v = num(w["error_risk"], "weights.error_risk", 0, 1e6)) out.error_weight = *v;
      if (out.cost_weight + out.latency_weight + out.error_weight <= 0) error(w, "weights must not all be zero");
    }
  }
  for (const char* key : {"latency_slo_ms", "ttft_slo_ms", "strict_slo"})
    if (n[key] && out.kind != ObjectiveKind::cheapest_within_slo)
      error(n[key], std::string("'") + key + "' only applies to objective type cheapest_within_slo");
  if (out.kind == ObjectiveKind::cheapest_within_slo) {
    if (n["latency_slo_ms"])
      if (auto v = num(n["latency_slo_ms"], "latency_slo_ms", 1, 1e8)) out.latency_slo_ms = *v;
    if (n["ttft_slo_ms"])
      if (auto v = num(n["ttft_slo_ms"], "ttft_slo_ms", 1, 1e8)) out.ttft_slo_ms = *v;
    if (n["strict_slo"])
      if (auto v = boolean(n["strict_slo"], "strict_slo")) out.strict_slo = *v;
    if (!n["latency_slo_ms"] && !n["ttft_slo_ms"]) error(n, "cheapest_within_slo needs latency_slo_ms or ttft_slo_ms");
  }
  if (errors_.size() != before) return false;
  o = out;
  return true;
}

bool Compiler::parse_match(const YAML::Node& n, Match& m) {
  std::vector<std::string> keys{"model", "tenant", "path", "headers", "data_classification"};
  keys.insert(keys.end(), content_match_keys().begin(), content_match_keys().end());
  if (!check_map(n, "match", "match key", keys)) return false;
  parse_content_match(n, m.content, diagnostics());
  if (n["model"])
    if (auto v = strs(n["model"], "match.model")) m.models = *v;
  if (n["tenant"])
    if (auto v = strs(n["tenant"], "match.tenant")) m.tenants = *v;
  if (n["path"])
    if (auto v = strs(n["path"], "match.path")) m.paths = *v;
  if (const YAML::Node dc = n["data_classification"]) {
    std::vector<YAML::Node> items;
    if (dc.IsSequence()) for (const auto& e : dc) items.push_back(e);
    else items.push_back(dc);
    for (const auto& e : items)
      if (auto v = classification_value(e, "match.data_classification"); v && !v->empty())
        m.data_classifications.push_back(*v);
  }
  if (n["headers"]) {
    const YAML::Node h = n["headers"];
    if (!h.IsMap()) {
      error(h, "match.headers must be a mapping of header name -> value (glob)");
    } else {
      for (const auto& kv : h)
        if (auto v = str(kv.second, "match.headers value")) m.headers.emplace_back(to_lower(kv.first.Scalar()), *v);
    }
  }
  for (const auto& t : m.tenants)
    if (!has_glob(t) && !out_->tenants.empty() && !out_->tenants.count(t))
      warn(n["tenant"], "tenant '" + t + "' is not declared under 'tenants'");
  return true;
}

std::optional<Compiler::Selector> Compiler::parse_selector(const YAML::Node& n) {
  Selector s;
  s.node = n;
  if (n.IsScalar()) {
    const std::string ref = n.Scalar();
    auto slash = ref.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == ref.size()) {
      error(n, "candidate '" + ref + "' must look like provider[@region]/model (globs allowed, model may be $request)");
      return std::nullopt;
    }
    std::string head = ref.substr(0, slash);
    s.model = ref.substr(slash + 1);
    auto at = head.find('@');
    s.provider = head.substr(0, at);
    if (at != std::string::npos) {
      s.region = head.substr(at + 1);
      s.region_given = true;
    }
    if (s.provider.empty() || s.region.empty()) {
      error(n, "candidate '" + ref + "': empty provider or region");
      return std::nullopt;
    }
  } else {
    if (!check_map(n, "candidate", "candidate key", {"provider", "type", "region", "model", "fallback"})) return std::nullopt;
    if (n["fallback"]) {
      auto v = boolean(n["fallback"], "candidate fallback");
      if (!v) return std::nullopt;
      s.fallback = *v;
    }
    for (auto [key, dst] : {std::pair<const char*, std::string*>{"provider", &s.provider},
                            {"type", &s.type}, {"region", &s.region}, {"model", &s.model}}) {
      if (n[key]) {
        auto v = str(n[key], std::string("candidate ") + key);
        if (!v) return std::nullopt;
        *dst = *v;
      }
    }
    s.region_given = static_cast<bool>(n["region"]);
  }
  // Typos in literal names are errors; globs may legitimately match nothing in this configuration.
  if (!has_glob(s.provider) && !known_provider(s.provider)) {
    std::vector<std::string> names(kProviderTypes.begin(), kProviderTypes.end());
    for (const auto& p : providers_) names.push_back(p.name);
    error(n, "unknown provider '" + s.provider + "'" + hint(s.provider, names));
    return std::nullopt;
  }
  if (!has_glob(s.type) && std::find(kProviderTypes.begin(), kProviderTypes.end(), s.type) == kProviderTypes.end()) {
    error(n, "unknown provider type '" + s.type + "'" + hint(s.type, kProviderTypes));
    return std::nullopt;
  }
  if (!has_glob(s.model) && s.model != "$request") {
    std::vector<std::string> models;
    bool found = false;
    for (const auto& d : out_->deployments) {
      if (!glob_match(s.provider, d.deployment.provider)) continue;
      models.push_back(d.deployment.model);
      if (d.deployment.model == s.model) found = true;
    }
    if (!found) {
      bool self_hosted_provider = false;
      for (const auto& d : out_->deployments)
        if (glob_match(s.provider, d.deployment.provider) && (d.provider_type == "local" || d.provider_type == "openai_compatible"))
          self_hosted_provider = true;
      if (self_hosted_provider || models.empty()) {
        warn(n, "candidate model '" + s.model + "' is not served by '" + s.provider + "' in this configuration");
      } else {
        error(n, "unknown model '" + s.model + "' for provider '" + s.provider + "'" + hint(s.model, models));
        return std::nullopt;
      }
    }
  }
  if (!has_glob(s.region)) {
    bool found = false;
    std::vector<std::string> regions;
    for (const auto& d : out_->deployments) {
      if (!glob_match(s.provider, d.deployment.provider)) continue;
      regions.push_back(d.deployment.region);
      if (d.deployment.region == s.region) found = true;
    }
    if (!found && !regions.empty()) {
      error(n, "unknown region '" + s.region + "' for provider '" + s.provider + "'" + hint(s.region, regions));
      return std::nullopt;
    }
  }
  return s;
}

void Compiler::expand(const Selector& s, const std::string& request_model, std::vector<std::pair<uint32_t, bool>>& out) {
  const std::string& model = s.model == "$request" ? request_model : s.model;
  for (uint32_t i = 0; i < out_->deployments.size(); ++i) {
    const auto& d = out_->deployments[i];
    if (glob_match(s.provider, d.deployment.provider) && glob_match(s.type, d.provider_type) &&
        glob_match(s.region, d.deployment.region) && (s.region_given || in_configured_region(d)) &&
        (s.model == "$request" ? d.deployment.model == model : glob_match(model, d.deployment.model)))
      out.emplace_back(i, s.fallback);
  }
}

bool Compiler::in_configured_region(const DeploymentFacts& d) const {
  for (const auto& inst : providers_)
    if (inst.name == d.deployment.provider)
      return inst.configured_regions.empty() ||
             std::find(inst.configured_regions.begin(), inst.configured_regions.end(), d.deployment.region) !=
                 inst.configured_regions.end();
  return true;  // a built-in provider nobody configured: every region, each excluded as "not configured"
}

void merge_constraints(Constraints& base, const Constraints& over, const YAML::Node& n) {
  auto take = [&](const char* key, auto& dst, const auto& src) {
    if (n[key]) dst = src;
  };
  take("allowed_jurisdictions", base.allowed_jurisdictions, over.allowed_jurisdictions);
  take("denied_jurisdictions", base.denied_jurisdictions, over.denied_jurisdictions);
  take("required_inference_regions", base.required_inference_regions, over.required_inference_regions);
  take("denied_inference_regions", base.denied_inference_regions, over.denied_inference_regions);
  take("required_storage_regions", base.required_storage_regions, over.required_storage_regions);
  take("denied_storage_regions", base.denied_storage_regions, over.denied_storage_regions);
  take("max_sanctions_risk", base.max_sanctions_risk, over.max_sanctions_risk);
  take("denied_flags", base.denied_flags, over.denied_flags);
  take("required_capabilities", base.required_capabilities, over.required_capabilities);
  take("context_fit", base.context_fit, over.context_fit);
  take("trains_on_customer_data", base.trains_on_customer_data, over.trains_on_customer_data);
  take("max_cost_usd", base.max_cost_usd, over.max_cost_usd);
  base.presets |= over.presets;  // presets accumulate: a route cannot switch off a default preset
}

void Compiler::parse_defaults(const YAML::Node& n) {
  if (!check_map(n, "defaults", "defaults key",
                 with_diversify({"estimated_output_tokens", "max_attempts", "client_region", "data_classification",
                                 "data_tags", "objective", "constraints", "baseline"})))
    return;
  if (n["estimated_output_tokens"])
    if (auto v = integer(n["estimated_output_tokens"], "estimated_output_tokens", 1)) out_->default_output_tokens = *v;
  if (n["max_attempts"])
    if (auto v = integer(n["max_attempts"], "max_attempts", 1)) default_max_attempts_ = static_cast<int>(std::min<int64_t>(*v, 16));
  if (n["client_region"])
    if (auto v = region_value(n["client_region"], "defaults.client_region")) out_->defaults.client_region = *v;
  if (n["data_classification"])
    if (auto v = classification_value(n["data_classification"], "defaults.data_classification"))
      out_->defaults.data_classification = *v;
  if (n["data_tags"])
    if (auto v = tag_values(n["data_tags"], "defaults.data_tags")) out_->defaults.data_tags = *v;
  if (n["objective"]) parse_objective(n["objective"], default_objective_);
  if (n["constraints"]) parse_constraints(n["constraints"], default_constraints_);
  if (n["baseline"]) parse_baseline(n["baseline"], default_baseline_, default_baseline_source_);
  parse_diversify(n, out_->deployments, default_diversify_, diagnostics());
}

// `baseline: {price: {input, cached_input, output}}` or `baseline: {ref: <catalog deployment>}`.
bool Compiler::parse_baseline(const YAML::Node& n, std::optional<Pricing>& out, std::string& source) {
  if (!check_map(n, "baseline", "baseline key", {"price", "ref"})) return false;
  if (n["price"].IsDefined() == n["ref"].IsDefined()) {
    error(n, "baseline needs exactly one of 'price' (USD per 1M tokens) or 'ref' (a catalog deployment)");
    return false;
  }
  if (n["price"]) {
    const YAML::Node p = n["price"];
    if (!check_map(p, "baseline.price", "baseline price key", {"input", "cached_input", "output"})) return false;
    if (!p["input"] || !p["output"]) {
      error(p, "baseline.price needs 'input' and 'output' (cached_input defaults to input)");
      return false;
    }
    auto in = num(p["input"], "baseline.price.input (USD per 1M tokens)", 0, 1e6);
    auto outp = num(p["output"], "baseline.price.output (USD per 1M tokens)", 0, 1e6);
    auto cached = p["cached_input"] ? num(p["cached_input"], "baseline.price.cached_input (USD per 1M tokens)", 0, 1e6) : in;
    if (!in || !outp || !cached) return false;
    out = baseline_pricing(BaselinePrice{core::TokenPrice::per_million_usd(*in),
                                         core::TokenPrice::per_million_usd(*cached),
                                         core::TokenPrice::per_million_usd(*outp)});
    source = "price";
    return true;
  }
  auto ref = str(n["ref"], "baseline.ref");
  if (!ref) return false;
  Deployment d;
  std::string perr;
  if (!parse_deployment_ref(*ref, d, perr)) {
    error(n["ref"], "baseline.ref: " + perr);
    return false;
  }
  for (const auto& f : out_->deployments)
    if (f.deployment.provider == d.provider && f.deployment.model == d.model &&
        (d.region.empty() || f.deployment.region == d.region)) {
      out = f.pricing;
      source = f.deployment.id;
      return true;
    }
  std::vector<std::string> ids;
  for (const auto& f : out_->deployments) ids.push_back(f.deployment.id);
  error(n["ref"], "baseline.ref '" + *ref + "' names no catalog deployment" + hint(*ref, ids) +
                      " (add it under catalog:, with reference_only: true if it must never be routed to)");
  return false;
}

// A route that could only ever reach price references is a mistake, not a policy: refused.
void Compiler::refuse_if_only_references(const Route& route, const YAML::Node& n) {
  bool any = false;
  for (const auto& [model, list] : route.candidates)
    for (const auto& c : list) {
      if (!out_->deployments[c.deployment].reference_only) return;
      any = true;
    }
  if (any)
    error(n, "route '" + route.name + "': its only candidates are reference_only deployments, which are never "
             "routed to (they are price references for baselines)");
}

void Compiler::parse_routes(const YAML::Node& n) {
  if (!n.IsSequence() || n.size() == 0) {
    error(n, "routes must be a non-empty list");
    return;
  }
  std::set<std::string> names;
  for (const auto& r : n) {
    if (!check_map(r, "route", "route key",
                   with_diversify({"name", "match", "candidates", "constraints", "objective", "max_attempts", "affinity",
                                   "baseline"})))
      continue;
    Route route;
    route.line = r.Mark().line + 1;
    if (!r["name"]) {
      error(r, "route needs a 'name'");
      continue;
    }
    if (auto v = str(r["name"], "route name")) route.name = *v;
    if (!names.insert(route.name).second) error(r["name"], "duplicate route name '" + route.name + "'");
    if (r["match"]) parse_match(r["match"], route.match);
    route.constraints = default_constraints_;
    if (r["constraints"]) {
      Constraints c;
      if (parse_constraints(r["constraints"], c)) merge_constraints(route.constraints, c, r["constraints"]);
    }
    route.objective = default_objective_;
    if (r["objective"]) parse_objective(r["objective"], route.objective);
    route.max_attempts = default_max_attempts_;
    if (r["max_attempts"])
      if (auto v = integer(r["max_attempts"], "max_attempts", 1)) route.max_attempts = static_cast<int>(std::min<int64_t>(*v, 16));
    if (r["affinity"])
      if (auto v = boolean(r["affinity"], "affinity")) route.affinity = *v;
    route.baseline = default_baseline_;
    route.baseline_source = default_baseline_source_;
    if (r["baseline"]) parse_baseline(r["baseline"], route.baseline, route.baseline_source);
    route.diversify = default_diversify_;
    parse_diversify(r, out_->deployments, route.diversify, diagnostics());
    if (!r["candidates"]) {
      error(r, "route '" + route.name + "' needs 'candidates'");
      continue;
    }
    const YAML::Node cands = r["candidates"];
    if (!cands.IsSequence() || cands.size() == 0) {
      error(cands, "candidates must be a non-empty list");
      continue;
    }
    std::vector<Selector> selectors;
    for (const auto& c : cands)
      if (auto s = parse_selector(c)) {
        if (s->model == "$request") route.per_model = true;
        selectors.push_back(*s);
      }
    // Model names a per-model route can be asked for: the catalog's and the route's literal aliases.
    std::vector<std::string> keys{""};
    if (route.per_model) {
      keys.assign(catalog_models_.begin(), catalog_models_.end());
      for (const auto& m : route.match.models)
        if (!has_glob(m) && m != "$catalog") keys.push_back(m);
    }
    bool any = false;
    for (const auto& key : keys) {
      std::vector<std::pair<uint32_t, bool>> idx;
      for (const auto& s : selectors) expand(s, key, idx);
      std::vector<RouteCandidate> list;
      std::set<uint32_t> seen;
      for (auto [i, fallback] : idx) {
        if (!seen.insert(i).second) continue;
        RouteCandidate rc;
        rc.deployment = i;
        rc.fallback = fallback;
        rc.static_exclusion = static_exclusion(out_->deployments[i], route.constraints, rc.static_kind);
        list.push_back(std::move(rc));
      }
      any |= !list.empty();
      if (!list.empty() || !route.per_model) route.candidates[key] = std::move(list);
    }
    if (!any && !selectors.empty()) warn(cands, "route '" + route.name + "': candidates match no deployment");
    else if (any) refuse_if_only_references(route, cands);
    if (any) warn_if_dead(route, r);
    if (any) check_diversify(route, out_->deployments, r, diagnostics());
    out_->routes.push_back(std::move(route));
  }
  refuse_if_everything_excluded(n);
}

// A candidate excluded for every request by the route's own constraints can never serve; one that
// is merely unavailable here (not configured, no key) could once the operator adds it.
bool possible(const RouteCandidate& c) { return c.static_exclusion.empty() || c.static_kind != ExclusionKind::policy; }

bool route_possible(const Route& r) {
  for (const auto& [model, list] : r.candidates)
    if (std::any_of(list.begin(), list.end(), possible)) return true;
  return false;
}

void Compiler::warn_if_dead(const Route& route, const YAML::Node& n) {
  if (route_possible(route)) return;
  std::string example;
  for (const auto& [model, list] : route.candidates)
    if (!list.empty()) {
      example = out_->deployments[list.front().deployment].deployment.id + ": " + list.front().static_exclusion;
      break;
    }
  warn(n, "route '" + route.name + "' can never serve: its constraints exclude every candidate for every request (" +
              example + ")");
}

void Compiler::refuse_if_everything_excluded(const YAML::Node& n) {
  if (out_->routes.empty() || !errors_.empty()) return;
  if (std::any_of(out_->routes.begin(), out_->routes.end(), route_possible)) return;
  error(n, "the policy excludes every candidate of every route for every request: it could serve nothing "
           "(`gateway explain` shows each candidate's reason)");
}

void Compiler::finish_model_names() {
  std::set<std::string> names;
  for (const auto& r : out_->routes) {
    if (r.match.models.empty() && r.per_model) names.insert(catalog_models_.begin(), catalog_models_.end());
    for (const auto& m : r.match.models) {
      if (m == "$catalog") {
        for (const auto& d : out_->deployments)
          if (d.configured) names.insert(d.deployment.model);
      } else if (!has_glob(m)) {
        names.insert(m);
      }
    }
  }
  out_->model_names.assign(names.begin(), names.end());
  out_->catalog_models.assign(catalog_models_.begin(), catalog_models_.end());
}

core::Result<std::shared_ptr<const CompiledPolicy>> Compiler::run(std::string_view text) {
  out_ = std::make_shared<CompiledPolicy>();
  out_->file = file_;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    error(e.mark, "YAML syntax error: " + e.msg);
  }
  if (errors_.empty()) {
    try {
      if (!root.IsDefined() || root.IsNull()) {
        errors_.push_back(file_ + ": empty policy (expected a mapping with 'routes')");
      } else if (check_map(root, "policy", "key",
                           {"version", "name", "description", "operator_region", "vocabulary", "defaults", "catalog",
                            "tenants", "routes", "suspended"})) {
        if (root["version"])
          if (auto v = integer(root["version"], "version", 1))
            if (*v != 1) error(root["version"], "unsupported policy version " + std::to_string(*v) + " (this gateway reads version 1)");
        out_->name = file_;
        if (root["name"])
          if (auto v = str(root["name"], "name")) out_->name = *v;
        if (root["description"]) str(root["description"], "description");  // for readers only
        if (root["operator_region"])
          if (auto v = one_of(root["operator_region"], "operator_region", {"US", "EU", "UK", "other"})) out_->operator_region = *v;
        build_deployments();
        if (root["catalog"]) apply_catalog(root["catalog"]);
        cap_to_instance_limits();
        check_aliases();
        for (const auto& d : out_->deployments)
          if (!d.reference_only) catalog_models_.insert(d.deployment.model);  // never served: not offered
        if (root["suspended"]) parse_suspended(root["suspended"]);
        if (root["vocabulary"]) parse_vocabulary(root["vocabulary"]);
        if (root["tenants"]) parse_tenants(root["tenants"]);
        if (root["defaults"]) parse_defaults(root["defaults"]);
        if (!root["routes"]) errors_.push_back(file_ + ": policy needs 'routes'");
        else parse_routes(root["routes"]);
        finish_model_names();
      }
    } catch (const YAML::Exception& e) {
      error(e.mark, e.msg);
    }
  }
  if (!errors_.empty()) {
    std::string msg;
    for (const auto& e : errors_) msg += (msg.empty() ? "" : "\n") + e;
    return core::make_error(core::ErrorKind::bad_request, msg, core::ErrorSource::gateway, "invalid_policy");
  }
  return std::shared_ptr<const CompiledPolicy>(std::move(out_));
}

// One level of the built-in file (a provider, region or model entry): a mapping of catalog fact keys
// plus its name key and `extra_keys`; returns the entry with its name, or nothing after an error.
std::optional<YAML::Node> Compiler::builtin_level(const YAML::Node& n, const char* what, const char* name_key,
                                                  const std::vector<std::string>& extra_keys, std::string& name) {
  std::vector<std::string> keys{name_key};
  keys.insert(keys.end(), extra_keys.begin(), extra_keys.end());
  for (const auto& k : fact_keys())
    if (k != "ref" && k != "remove" && k != "type") keys.push_back(k);
  if (!check_map(n, what, std::string(what) + " key", keys)) return std::nullopt;
  if (!n[name_key]) {
    error(n, std::string(what) + " needs '" + name_key + "'");
    return std::nullopt;
  }
  auto v = str(n[name_key], name_key);
  if (!v) return std::nullopt;
  if (v->empty() || v->find_first_of("@/*?[] ") != std::string::npos) {
    error(n[name_key], std::string(name_key) + " '" + *v + "' must be a plain name (no '@', '/', spaces or globs)");
    return std::nullopt;
  }
  name = *v;
  return n;
}

// Facts no single entry can check: every deployment priced and sized, a known jurisdiction, and
// legacy IDs that name a model of their own provider which is not itself an alias.
void Compiler::check_builtin(const BuiltinCatalogData& data) {
  for (const auto& f : data.deployments) {
    const std::string& id = f.deployment.id;
    if (f.context_window <= 0) errors_.push_back(file_ + ": " + id + ": needs context_window");
    if (f.max_output <= 0 || f.max_output > f.context_window)
      errors_.push_back(file_ + ": " + id + ": needs max_output, at most context_window");
    if (f.pricing.tiers.empty()) errors_.push_back(file_ + ": " + id + ": needs a price");
    if (f.risk.jurisdiction.empty() || f.risk.company.empty())
      errors_.push_back(file_ + ": " + id + ": needs company and jurisdiction");
    if (f.alias_of.empty()) continue;
    const DeploymentFacts* target = nullptr;
    for (const auto& g : data.deployments)
      if (g.deployment.provider == f.deployment.provider && g.deployment.region == f.deployment.region &&
          g.deployment.model == f.alias_of)
        target = &g;
    if (!target) errors_.push_back(file_ + ": " + id + ": alias_of '" + f.alias_of + "' is no model of this provider");
    else if (!target->alias_of.empty())
      errors_.push_back(file_ + ": " + id + ": alias_of '" + f.alias_of + "' is itself an alias");
  }
}

// The built-in catalog file: catalog_date, then providers, each with regions and models; every
// provider x region x model is a deployment, its facts applied provider, region, model in turn by
// the same apply_facts a policy's `catalog:` entry goes through.
core::Result<BuiltinCatalogData> Compiler::run_builtin(std::string_view text) {
  builtin_mode_ = true;
  out_ = std::make_shared<CompiledPolicy>();
  BuiltinCatalogData data;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    error(e.mark, "YAML syntax error: " + e.msg);
  }
  if (errors_.empty()) {
    try {
      if (!root.IsDefined() || root.IsNull()) {
        errors_.push_back(file_ + ": empty catalog (expected catalog_date and providers)");
      } else if (check_map(root, "built-in catalog", "key", {"catalog_date", "providers"})) {
        if (!root["catalog_date"]) errors_.push_back(file_ + ": needs catalog_date (YYYY-MM-DD)");
        else if (auto d = str(root["catalog_date"], "catalog_date"); d && !parse_iso_date(*d))
          error(root["catalog_date"], "catalog_date must be a YYYY-MM-DD date");
        else if (d)
          data.catalog_date = *d;
        const YAML::Node providers = root["providers"];
        if (!providers || !providers.IsSequence() || providers.size() == 0)
          errors_.push_back(file_ + ": needs providers (a non-empty list)");
        else
          for (const auto& pn : providers) {
            std::string provider;
            auto p = builtin_level(pn, "provider entry", "provider", {"regions", "models"}, provider);
            if (!p) continue;
            if (std::find(kProviderTypes.begin(), kProviderTypes.end(), provider) == kProviderTypes.end() ||
                provider == "local" || provider == "openai_compatible") {
              error((*p)["provider"], "provider '" + provider + "' is not a built-in provider type" + hint(provider, kProviderTypes));
              continue;
            }
            std::vector<std::pair<std::string, YAML::Node>> regions, models;
            // A model entry may name the `regions` it exists in (default: all); the same model may
            // then have one entry per set of regions (its price differs by region).
            auto level = [&](const char* list, const char* what, const char* name_key, auto& into,
                             const std::vector<std::string>& extra) {
              const YAML::Node l = (*p)[list];
              if (!l || !l.IsSequence() || l.size() == 0) {
                error(*p, "provider '" + provider + "' needs " + list + " (a non-empty list)");
                return;
              }
              for (const auto& e : l) {
                std::string name;
                auto node = builtin_level(e, what, name_key, extra, name);
                if (!node) continue;
                for (const auto& [other, on] : into)
                  if (other == name && !(on["regions"] && (*node)["regions"]))
                    error((*node)[name_key], std::string(name_key) + " '" + name + "' is listed twice");
                into.emplace_back(name, *node);
              }
            };
            level("regions", "region entry", "region", regions, {});
            level("models", "model entry", "model", models, {"regions"});
            auto in_regions = [&](const YAML::Node& mn, const std::string& region) {
              if (!mn["regions"]) return true;
              auto list = strs(mn["regions"], "regions");
              return list && std::find(list->begin(), list->end(), region) != list->end();
            };
            for (const auto& [model, mn] : models)
              if (mn["regions"])
                if (auto list = strs(mn["regions"], "regions"))
                  for (const auto& r : *list)
                    if (std::none_of(regions.begin(), regions.end(), [&](const auto& rn) { return rn.first == r; }))
                      error(mn["regions"], "model '" + model + "' names region '" + r + "', which provider '" + provider +
                                               "' does not list");
            for (const auto& [region, rn] : regions)
              for (const auto& [model, mn] : models) {
                if (!in_regions(mn, region)) continue;
                DeploymentFacts f;
                f.deployment.provider = provider;
                f.deployment.region = region;
                f.deployment.model = model;
                f.deployment.id = deployment_id(provider, region, model);
                f.provider_type = provider;
                apply_facts(*p, f);
                apply_facts(rn, f);
                apply_facts(mn, f);
                if (f.pricing.as_of.empty()) f.pricing.as_of = data.catalog_date;
                if (f.risk.verified_at.empty()) f.risk.verified_at = data.catalog_date;
                for (const auto& g : data.deployments)
                  if (g.deployment.id == f.deployment.id) error(pn, "deployment '" + f.deployment.id + "' is listed twice");
                data.deployments.push_back(std::move(f));
              }
          }
        check_builtin(data);
      }
    } catch (const YAML::Exception& e) {
      error(e.mark, e.msg);
    }
  }
  if (!errors_.empty()) {
    // A provider's fact is applied once per deployment: report each mistake once.
    std::vector<std::string> unique;
    for (const auto& e : errors_)
      if (std::find(unique.begin(), unique.end(), e) == unique.end()) unique.push_back(e);
    std::string msg;
    for (const auto& e : unique) msg += (msg.empty() ? "" : "\n") + e;
    return core::make_error(core::ErrorKind::bad_request, msg, core::ErrorSource::gateway, "invalid_catalog");
  }
  return data;
}

}  // namespace

core::Result<BuiltinCatalogData> compile_builtin_catalog(std::string_view yaml_text, std::string_view file_name) {
  static const Catalog kEmpty;
  static const std::vector<ProviderInstance> kNone;
  Compiler c(file_name, kEmpty, kNone);
  return c.run_builtin(yaml_text);
}

core::Result<std::shared_ptr<const CompiledPolicy>> compile_policy(std::string_view yaml_text, std::string_view file_name,
                                                                    const Catalog& builtin,
                                                                    const std::vector<ProviderInstance>& providers) {
  Compiler c(file_name, builtin, providers);
  return c.run(yaml_text);
}

core::Result<std::shared_ptr<const CompiledPolicy>> compile_policy_file(const std::string& path, const Catalog& builtin,
                                                                         const std::vector<ProviderInstance>& providers) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::make_error(core::ErrorKind::bad_request, path + ": cannot open policy file", core::ErrorSource::gateway, "invalid_policy");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (ss.str().size() > (8u << 20))
    return core::make_error(core::ErrorKind::bad_request, path + ": policy file larger than 8 MiB", core::ErrorSource::gateway, "invalid_policy");
  return compile_policy(ss.str(), path, builtin, providers);
}

}  // namespace routing
