#include "routing/catalog_report.h"

#include <yaml-cpp/yaml.h>

#include <cinttypes>
#include <cstdio>
#include <limits>
#include <vector>

#include "core/json_writer.h"
#include "routing/text_util.h"

namespace routing {
namespace {

// One walk over the facts, two encodings: the same keys and values in JSON and YAML.
class Out {
 public:
  virtual ~Out() = default;
  virtual void begin_map() = 0;
  virtual void end_map() = 0;
  virtual void begin_list() = 0;
  virtual void end_list() = 0;
  virtual void key(std::string_view k) = 0;
  virtual void str(std::string_view v) = 0;
  virtual void num(double v) = 0;
  virtual void integer(int64_t v) = 0;
  virtual void boolean(bool v) = 0;
  virtual void null() = 0;
};

class JsonOut final : public Out {
 public:
  std::string text;
  void begin_map() override { open('{'); }
  void end_map() override { close('}'); }
  void begin_list() override { open('['); }
  void end_list() override { close(']'); }
  void key(std::string_view k) override {
    comma();
    core::append_json_string(text, k);
    text += ':';
    after_key_ = true;
  }
  void str(std::string_view v) override { value([&] { core::append_json_string(text, v); }); }
  void num(double v) override {
    value([&] {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.10g", v);
      text += buf;
    });
  }
  void integer(int64_t v) override { value([&] { text += std::to_string(v); }); }
  void boolean(bool v) override { value([&] { text += v ? "true" : "false"; }); }
  void null() override { value([&] { text += "null"; }); }

 private:
  std::vector<bool> first_;  // per open container: nothing written yet
  bool after_key_ = false;
  void comma() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_.empty()) {
      if (!first_.back()) text += ',';
      first_.back() = false;
    }
  }
  template <typename F>
  void value(F f) {
    comma();
    f();
  }
  void open(char c) {
    comma();
    text += c;
    first_.push_back(true);
  }
  void close(char c) {
    text += c;
    first_.pop_back();
  }
};

class YamlOut final : public Out {
 public:
  YAML::Emitter e;
  void begin_map() override { e << YAML::BeginMap; }
  void end_map() override { e << YAML::EndMap; }
  void begin_list() override { e << YAML::BeginSeq; }
  void end_list() override { e << YAML::EndSeq; }
  void key(std::string_view k) override { e << YAML::Key << std::string(k) << YAML::Value; }
  // Strings always quoted, so "no" or "2026-11-23" read back as strings in any YAML reader.
  void str(std::string_view v) override { e << YAML::DoubleQuoted << std::string(v); }
  void num(double v) override {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.10g", v);  // shortest faithful form, not 0.29999999999999999
    e << std::string(buf);
  }
  void integer(int64_t v) override { e << v; }
  void boolean(bool v) override { e << YAML::TrueFalseBool << v; }
  void null() override { e << YAML::Null; }
};

void strings(Out& o, const std::vector<std::string>& v) {
  o.begin_list();
  for (const auto& s : v) o.str(s);
  o.end_list();
}

constexpr const char* kDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};

std::string window_text(const PeakWindow& w) {
  std::string days;
  for (int d = 0; d < 7; ++d)
    if ((w.weekdays >> d) & 1u) days += std::string(days.empty() ? "" : ",") + kDays[d];
  char buf[64];
  std::snprintf(buf, sizeof buf, " %02d:%02d-%02d:%02d", w.start_minute / 60, w.start_minute % 60, w.end_minute / 60,
                w.end_minute % 60);
  return days + buf;
}

void pricing(Out& o, const Pricing& p) {
  o.begin_map();
  o.key("as_of");
  o.str(p.as_of);
  o.key("source");
  o.str(p.source);
  o.key("unit");
  o.str("USD per 1M tokens");
  o.key("thinking_bills_all_output");
  o.boolean(p.thinking_bills_all_output);
  o.key("tiers");
  o.begin_list();
  for (const auto& t : p.tiers) {
    o.begin_map();
    o.key("up_to_input_tokens");
    if (t.up_to_input_tokens == std::numeric_limits<int64_t>::max()) o.str("max");
    else o.integer(t.up_to_input_tokens);
    const std::pair<const char*, const core::TokenPrice*> kinds[] = {{"input", &t.input},
                                                                     {"cached_input", &t.cached_input},
                                                                     {"cache_write", &t.cache_write},
                                                                     {"output", &t.output},
                                                                     {"reasoning_output", &t.reasoning_output}};
    for (const auto& [name, price] : kinds) {
      o.key(name);
      o.num(price->per_million_usd_value());
    }
    o.end_map();
  }
  o.end_list();
  o.key("schedule");
  if (p.schedule.empty()) {
    o.null();
  } else {
    o.begin_map();
    o.key("peak_utc");
    o.begin_list();
    for (const auto& w : p.schedule.peak) o.str(window_text(w));
    o.end_list();
    o.key("offpeak_factor");
    o.num(p.schedule.offpeak_factor);
    o.key("offpeak_dates");
    o.begin_list();
    for (int32_t d : p.schedule.offpeak_days) o.str(iso_date_text(d));
    o.end_list();
    o.end_map();
  }
  o.end_map();
}

void risk(Out& o, const RiskFacts& r) {
  o.begin_map();
  o.key("company");
  o.str(r.company);
  o.key("jurisdiction");
  o.str(r.jurisdiction);
  o.key("contracting_country");
  o.str(r.contracting_country);
  o.key("inference_countries");
  strings(o, r.inference_countries);
  o.key("inference_excluded");
  strings(o, r.inference_excluded);
  o.key("storage_countries");
  strings(o, r.storage_countries);
  o.key("flags");
  strings(o, r.flags);
  o.key("gov_device_bans");
  strings(o, r.gov_device_bans);
  o.key("sanctions_risk");
  o.str(to_string(r.sanctions_risk()));
  o.key("trains_on_customer_data");
  o.str(r.trains_on_customer_data);
  o.key("doj_dsp_covered_person");
  o.str(r.doj_dsp_covered_person);
  o.key("cac_genai_filed");
  o.boolean(r.cac_genai_filed);
  o.key("verified_at");
  o.str(r.verified_at);
  o.end_map();
}

void deployment(Out& o, const DeploymentFacts& d, const SurfacesOf& surfaces) {
  o.begin_map();
  o.key("id");
  o.str(d.deployment.id);
  o.key("provider");
  o.str(d.deployment.provider);
  o.key("type");
  o.str(d.provider_type);
  o.key("region");
  o.str(d.deployment.region);
  o.key("model");
  o.str(d.deployment.model);
  o.key("alias_of");
  if (d.alias_of.empty()) o.null();
  else o.str(d.alias_of);
  o.key("developer_country");
  o.str(d.developer_country);
  o.key("context_window");
  o.integer(d.context_window);
  o.key("max_output");
  o.integer(d.max_output);
  o.key("capabilities");
  strings(o, [&] {
    std::vector<std::string> v;
    for (const auto& c : capability_names())
      if (Capabilities one; one.set(c) && d.caps.covers(one)) v.push_back(c);
    return v;
  }());
  if (surfaces) {
    o.key("surfaces");
    // An embedding model speaks one API whatever its endpoint speaks for chat models.
    strings(o, d.caps.embeddings ? std::vector<std::string>{"embeddings"} : surfaces(d.deployment));
  }
  o.key("concurrency_limit");
  o.integer(d.concurrency_limit);
  o.key("price");
  pricing(o, d.pricing);
  o.key("risk");
  risk(o, d.risk);
  o.key("sources");
  o.begin_map();
  for (const auto& [fact, tag] : d.sources) {
    o.key(fact);
    o.str(tag);
  }
  o.end_map();
  o.end_map();
}

void document(Out& o, const std::vector<DeploymentFacts>& deployments, const SurfacesOf& surfaces) {
  o.begin_map();
  o.key("catalog_date");
  o.str(builtin_catalog_date());
  o.key("deployments");
  o.begin_list();
  for (const auto& d : deployments) deployment(o, d, surfaces);
  o.end_list();
  o.end_map();
}

std::string table(const std::vector<DeploymentFacts>& deployments) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-48s %9s %8s %9s %9s %9s %-6s %-4s %-5s %-10s %s\n", "deployment", "context",
                "tiers", "in", "cached", "out", "peak", "jur", "contr", "inference", "flags");
  out += line;
  for (const auto& d : deployments) {
    const PriceTier& t = d.pricing.tiers.empty() ? PriceTier{} : d.pricing.tiers.front();
    std::string where;
    for (const auto& c : d.risk.inference_countries) where += (where.empty() ? "" : ",") + c;
    for (const auto& c : d.risk.inference_excluded) where += "-" + c;
    if (where.empty()) where = "unknown";
    if (where.size() > 10) where = where.substr(0, 9) + "+";
    std::string flags;
    for (const auto& f : d.risk.flags) flags += (flags.empty() ? "" : ",") + f;
    std::snprintf(line, sizeof line, "%-48s %9" PRId64 " %8zu %9.4f %9.4f %9.4f %-6s %-4s %-5s %-10s %s\n",
                  d.deployment.id.c_str(), d.context_window, d.pricing.tiers.size(), t.input.per_million_usd_value(),
                  t.cached_input.per_million_usd_value(), t.output.per_million_usd_value(),
                  d.pricing.schedule.empty() ? "-" : "yes", d.risk.jurisdiction.c_str(),
                  d.risk.contracting_country.c_str(), where.c_str(), flags.c_str());
    out += line;
  }
  out += "prices: USD per 1M tokens, first tier, list (peak) price; --format json|yaml for every fact\n";
  return out;
}

}  // namespace

std::optional<CatalogFormat> parse_catalog_format(std::string_view s) {
  if (s == "table") return CatalogFormat::table;
  if (s == "json") return CatalogFormat::json;
  if (s == "yaml") return CatalogFormat::yaml;
  return std::nullopt;
}

std::string render_catalog(const std::vector<DeploymentFacts>& deployments, CatalogFormat format,
                           const SurfacesOf& surfaces) {
  switch (format) {
    case CatalogFormat::table:
      return table(deployments);
    case CatalogFormat::json: {
      JsonOut o;
      document(o, deployments, surfaces);
      return o.text + "\n";
    }
    case CatalogFormat::yaml: {
      YamlOut o;
      document(o, deployments, surfaces);
      return std::string(o.e.c_str()) + "\n";
    }
  }
  return {};
}

}  // namespace routing
