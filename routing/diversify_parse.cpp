#include "routing/diversify_parse.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>
#include <sstream>

#include "routing/text_util.h"

namespace routing {

// Keys of a mapping outside `allowed` are errors; false if `n` is no mapping.
bool keys_known(const YAML::Node& n, const std::string& what, const std::vector<std::string>& allowed,
                const PolicyDiagnostics& diag) {
  if (!n.IsMap()) {
    diag.error(n, what + " must be a mapping");
    return false;
  }
  bool ok = true;
  for (const auto& kv : n) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    const std::string best = closest_match(key, allowed);
    diag.error(kv.first, "unknown " + what + " key '" + key + "'" + (best.empty() ? "" : " (did you mean '" + best + "'?)"));
    ok = false;
  }
  return ok;
}

// A number in [lo, hi] (or (lo, hi] when `open_low`), else an error naming the range.
std::optional<double> fraction(const YAML::Node& n, const std::string& what, double lo, double hi, bool open_low,
                               const PolicyDiagnostics& diag) {
  double v = 0;
  const bool number = n.IsScalar() && YAML::convert<double>::decode(n, v);
  if (number && (open_low ? v > lo : v >= lo) && v <= hi) return v;
  std::ostringstream o;
  o << what << " must be a number in " << (open_low ? "(" : "[") << lo << ", " << hi << "], got '"
    << (n.IsScalar() ? n.Scalar() : std::string("a ") + (n.IsMap() ? "mapping" : "list")) << "'";
  diag.error(n, o.str());
  return std::nullopt;
}

namespace {

const std::vector<std::string> kShareKinds{"vendor", "parent", "jurisdiction"};
const std::vector<std::string> kMaxShareKeys{"vendor", "parent", "jurisdiction", "by", "window", "min_requests"};

bool is_none(const YAML::Node& n) { return n.IsScalar() && n.Scalar() == "none"; }

// "90s", "10m", "1h": one minute to one day (the window has 60 buckets of at least a second).
std::optional<std::chrono::seconds> window_length(const YAML::Node& n, const PolicyDiagnostics& diag) {
  const std::string s = n.IsScalar() ? n.Scalar() : std::string();
  size_t digits = 0;
  while (digits < s.size() && digits < 7 && std::isdigit(static_cast<unsigned char>(s[digits]))) ++digits;
  const std::string unit = s.substr(digits);
  const int64_t scale = unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : 0;
  const int64_t secs = digits > 0 && scale > 0 ? std::stoll(s.substr(0, digits)) * scale : -1;
  if (secs >= 60 && secs <= 86400) return std::chrono::seconds(secs);
  diag.error(n, "max_share.window must be a duration from 60s to 24h written as <n>s, <n>m or <n>h (e.g. 10m), got '" +
                    s + "'");
  return std::nullopt;
}

ShareKind kind_of(const std::string& k) {
  return k == "parent" ? ShareKind::parent : k == "jurisdiction" ? ShareKind::jurisdiction : ShareKind::vendor;
}

// `vendor: 0.5` (every vendor) or `vendor: {deepseek: 0.5, qwen: 0.7}` (named ones).
bool parse_kind(const std::string& kind_name, const YAML::Node& v, const std::vector<DeploymentFacts>& deployments,
                std::vector<ShareCap>& caps, const PolicyDiagnostics& diag) {
  const ShareKind kind = kind_of(kind_name);
  const std::string what = "max_share." + kind_name;
  if (!v.IsMap()) {
    auto cap = fraction(v, what, 0, 1, true, diag);
    if (cap) caps.push_back({kind, "", *cap});
    return cap.has_value();
  }
  std::set<std::string> known_set;
  for (const auto& d : deployments) known_set.insert(share_key(kind, d));
  const std::vector<std::string> known(known_set.begin(), known_set.end());
  bool ok = v.size() > 0;
  if (!ok) diag.error(v, what + " needs at least one " + kind_name + " name and its cap");
  for (const auto& kv : v) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
    if (!known_set.count(key)) {
      const std::string best = closest_match(key, known);
      diag.error(kv.first, what + ": no deployment has " + kind_name + " '" + key + "'" +
                               (best.empty() ? "" : " (did you mean '" + best + "'?)"));
      ok = false;
      continue;
    }
    if (auto cap = fraction(kv.second, what + "." + key, 0, 1, true, diag)) caps.push_back({kind, key, *cap});
    else ok = false;
  }
  return ok;
}

void parse_max_share(const YAML::Node& n, const std::vector<DeploymentFacts>& deployments, DiversifySettings& s,
                     const PolicyDiagnostics& diag) {
  if (is_none(n)) {
    s.caps.clear();
    return;
  }
  if (!keys_known(n, "max_share", kMaxShareKeys, diag)) return;
  DiversifySettings out = s;
  out.caps.clear();
  bool ok = true;
  for (const auto& k : kShareKinds)
    if (n[k]) ok &= parse_kind(k, n[k], deployments, out.caps, diag);
  if (ok && out.caps.empty()) {
    diag.error(n, "max_share needs a cap: vendor, parent or jurisdiction (e.g. max_share: {vendor: 0.5})");
    ok = false;
  }
  if (const YAML::Node by = n["by"]) {
    const std::string v = by.IsScalar() ? by.Scalar() : std::string();
    if (v == "requests" || v == "spend") out.by_spend = v == "spend";
    else {
      diag.error(by, "max_share.by must be requests or spend, got '" + v + "'");
      ok = false;
    }
  }
  if (const YAML::Node w = n["window"]) {
    if (auto len = window_length(w, diag)) out.window = *len;
    else ok = false;
  }
  if (const YAML::Node m = n["min_requests"]) {
    int64_t v = 0;
    if (m.IsScalar() && YAML::convert<int64_t>::decode(m, v) && v >= 1 && v <= 1000000) out.min_requests = v;
    else {
      diag.error(m, "max_share.min_requests must be an integer from 1 to 1000000, got '" +
                        (m.IsScalar() ? m.Scalar() : std::string()) + "'");
      ok = false;
    }
  }
  if (ok) s = std::move(out);
}

void parse_spread(const YAML::Node& n, DiversifySettings& s, const PolicyDiagnostics& diag) {
  if (is_none(n)) {
    s.spread_within.reset();
    return;
  }
  if (!keys_known(n, "spread", {"within"}, diag)) return;
  if (!n["within"]) {
    diag.error(n, "spread needs 'within' (the fraction of the best score, e.g. spread: {within: 0.1})");
    return;
  }
  if (auto v = fraction(n["within"], "spread.within", 0, 1, false, diag)) s.spread_within = *v;
}

void parse_canary(const YAML::Node& n, DiversifySettings& s, const PolicyDiagnostics& diag) {
  if (is_none(n)) {
    s.canary = 0;
    return;
  }
  YAML::Node value = n;
  if (n.IsMap()) {
    if (!keys_known(n, "canary", {"share"}, diag)) return;
    if (!n["share"]) {
      diag.error(n, "canary needs 'share' (e.g. canary: {share: 0.01})");
      return;
    }
    value = n["share"];
  }
  if (auto v = fraction(value, "canary share", 0, 0.5, false, diag)) s.canary = *v;
}

}  // namespace

const std::vector<std::string>& diversify_keys() {
  static const std::vector<std::string> keys{"max_share", "spread", "canary"};
  return keys;
}

void parse_diversify(const YAML::Node& n, const std::vector<DeploymentFacts>& deployments, DiversifySettings& s,
                     const PolicyDiagnostics& diag) {
  if (n["max_share"]) parse_max_share(n["max_share"], deployments, s, diag);
  if (n["spread"]) parse_spread(n["spread"], s, diag);
  if (n["canary"]) parse_canary(n["canary"], s, diag);
}

namespace {

// Candidates that could ever serve: not excluded by the route's own constraints, not references.
std::vector<const DeploymentFacts*> servable(const std::vector<RouteCandidate>& list,
                                             const std::vector<DeploymentFacts>& deployments) {
  std::vector<const DeploymentFacts*> out;
  for (const auto& c : list)
    if ((c.static_exclusion.empty() || c.static_kind != ExclusionKind::policy) && !deployments[c.deployment].reference_only)
      out.push_back(&deployments[c.deployment]);
  return out;
}

std::string cap_text(const ShareCap& c) {
  std::ostringstream o;
  o << "max_share." << to_string(c.kind) << (c.key.empty() ? "" : "." + c.key) << " " << c.cap;
  return o.str();
}

// Why no mix of these candidates can keep the cap, or empty.
std::string unsatisfiable(const ShareCap& c, const std::vector<const DeploymentFacts*>& cands) {
  std::set<std::string> keys;
  for (const auto* d : cands) keys.insert(share_key(c.kind, *d));
  std::string list;
  for (const auto& k : keys) list += (list.empty() ? "" : ", ") + k;
  const std::string noun = std::string(to_string(c.kind)) + (keys.size() == 1 ? "" : "s");
  if (!c.key.empty()) {
    if (!keys.count(c.key)) return "no candidate has " + std::string(to_string(c.kind)) + " '" + c.key + "'";
    if (keys.size() == 1) return "every candidate has " + std::string(to_string(c.kind)) + " '" + c.key + "'";
    return {};
  }
  if (static_cast<double>(keys.size()) * c.cap >= 1.0 - 1e-9) return {};
  std::ostringstream o;
  o << "the candidates have " << keys.size() << " " << noun << " (" << list << "), so at most " << keys.size()
    << " x " << c.cap << " of the traffic can stay under it";
  return o.str();
}

}  // namespace

void check_diversify(const Route& route, const std::vector<DeploymentFacts>& deployments, const YAML::Node& n,
                     const PolicyDiagnostics& diag) {
  const DiversifySettings& s = route.diversify;
  if (s.spread_within && route.objective.kind == ObjectiveKind::ordered)
    diag.error(n["spread"] ? n["spread"] : n, "route '" + route.name +
                                                  "': spread needs a scored objective (weighted or cheapest_within_slo); "
                                                  "'ordered' ranks candidates by position, never within a fraction of each other");
  for (const auto& c : s.caps)
    for (const auto& [model, list] : route.candidates) {
      const std::string why = unsatisfiable(c, servable(list, deployments));
      if (why.empty()) continue;
      diag.warn(n["max_share"] ? n["max_share"] : n,
                "route '" + route.name + "': " + cap_text(c) + " can never be satisfied: " + why +
                    " (a cap only reorders candidates; traffic over it still goes to them as fall-backs)");
      break;
    }
  if (s.canary <= 0) return;
  for (const auto& [model, list] : route.candidates) {
    const size_t n_servable = servable(list, deployments).size();
    if (n_servable < 2) {
      diag.warn(n["canary"] ? n["canary"] : n, "route '" + route.name + "': canary has no fall-back to send to");
      break;
    }
    const double total = static_cast<double>(n_servable - 1) * s.canary;
    if (total > 0.5) {
      std::ostringstream o;
      o << "route '" << route.name << "': canary " << s.canary << " to each of " << n_servable - 1
        << " fall-backs sends " << std::min(total, 1.0) << " of requests away from the best candidate";
      diag.warn(n["canary"] ? n["canary"] : n, o.str());
      break;
    }
  }
}

}  // namespace routing
