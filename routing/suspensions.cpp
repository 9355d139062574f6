#include "routing/suspensions.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "routing/iso3166.h"
#include "routing/text_util.h"

namespace routing {
namespace {

// Built-in vendors and their parent companies: what `parent:` names, and the company short names
// a `vendor:` selector accepts for its vendor.
struct VendorParent {
  const char* provider_type;
  const char* parent;
};
constexpr VendorParent kVendorParents[] = {
    {"deepseek", "deepseek"}, {"qwen", "alibaba"}, {"kimi", "moonshot"}, {"glm", "zhipu"}, {"minimax", "minimax"},
};

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// The vendor a `vendor:` target names: a company short name reads as its provider type.
std::string vendor_of(std::string_view target) {
  for (const auto& vp : kVendorParents)
    if (target == vp.parent) return vp.provider_type;
  return std::string(target);
}

core::Error invalid(std::string message) {
  return core::make_error(core::ErrorKind::bad_request, std::move(message), core::ErrorSource::client,
                          "invalid_suspension", "selector");
}

std::string join(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// The spellings of `kind` that cover at least one of `deployments`.
std::set<std::string> known_targets(SuspensionKind kind, const std::vector<DeploymentFacts>& deployments) {
  std::set<std::string> out;
  for (const auto& d : deployments) {
    switch (kind) {
      case SuspensionKind::vendor:
        out.insert(d.provider_type);
        out.insert(d.deployment.provider);
        if (auto p = parent_of(d.provider_type); !p.empty()) out.insert(std::string(p));
        break;
      case SuspensionKind::parent:
        if (auto p = parent_of(d.provider_type); !p.empty()) out.insert(std::string(p));
        break;
      case SuspensionKind::jurisdiction:
        if (!d.risk.jurisdiction.empty()) out.insert(d.risk.jurisdiction);
        break;
      case SuspensionKind::deployment: out.insert(d.deployment.id); break;
    }
  }
  return out;
}

std::string canonical(SuspensionKind kind, std::string_view target) {
  std::string t = trim(target);
  if (kind == SuspensionKind::deployment) return t;
  if (kind == SuspensionKind::jurisdiction && to_lower(t) != "self") return to_upper(t);
  return to_lower(t);
}

}  // namespace

const char* to_string(SuspensionKind k) {
  switch (k) {
    case SuspensionKind::vendor: return "vendor";
    case SuspensionKind::parent: return "parent";
    case SuspensionKind::jurisdiction: return "jurisdiction";
    case SuspensionKind::deployment: return "deployment";
  }
  return "vendor";
}

const std::vector<std::string>& suspension_kind_names() {
  static const std::vector<std::string> names{"vendor", "parent", "jurisdiction", "deployment"};
  return names;
}

std::optional<SuspensionKind> parse_suspension_kind(std::string_view s) {
  for (auto k : {SuspensionKind::vendor, SuspensionKind::parent, SuspensionKind::jurisdiction, SuspensionKind::deployment})
    if (s == to_string(k)) return k;
  return std::nullopt;
}

std::string suspension_reason(const Suspension& s) {
  std::string out = "suspended since " + s.since;
  if (!s.by.empty()) out += " by " + s.by;
  return out + ": '" + s.reason + "'";
}

std::string_view parent_of(std::string_view provider_type) {
  for (const auto& vp : kVendorParents)
    if (provider_type == vp.provider_type) return vp.parent;
  return {};
}

bool suspension_matches(const SuspensionSelector& sel, const DeploymentFacts& d) {
  switch (sel.kind) {
    case SuspensionKind::vendor: {
      const std::string v = vendor_of(sel.target);
      return d.provider_type == v || d.deployment.provider == sel.target;
    }
    case SuspensionKind::parent: return parent_of(d.provider_type) == sel.target;
    case SuspensionKind::jurisdiction: {
      if (d.risk.jurisdiction == sel.target) return true;
      if (!is_country_group(sel.target)) return false;
      const auto members = expand_country_group(sel.target);
      return std::find(members.begin(), members.end(), d.risk.jurisdiction) != members.end();
    }
    case SuspensionKind::deployment: return d.deployment.id == sel.target;
  }
  return false;
}

core::Result<SuspensionSelector> make_suspension_selector(SuspensionKind kind, std::string_view target,
                                                           const std::vector<DeploymentFacts>& deployments) {
  SuspensionSelector sel{kind, canonical(kind, target)};
  if (sel.target.empty()) return invalid(std::string(to_string(kind)) + " selector needs a name");
  const auto known = known_targets(kind, deployments);
  if (known.count(sel.target)) return sel;
  if (kind == SuspensionKind::jurisdiction && (is_iso3166_country(sel.target) || is_country_group(sel.target)))
    return sel;  // a valid code no deployment has today still means something tomorrow
  std::string msg = "unknown " + std::string(to_string(kind)) + " '" + std::string(target) + "'";
  const std::vector<std::string> list(known.begin(), known.end());
  if (auto best = closest_match(sel.target, list); !best.empty()) msg += " (did you mean '" + best + "'?)";
  if (kind == SuspensionKind::jurisdiction) msg += "; expected an ISO 3166-1 alpha-2 code, a country group or 'self'";
  else if (known.size() <= 40) msg += "; known: " + join(known);
  return invalid(std::move(msg));
}

core::Result<SuspensionSelector> parse_suspension_selector(std::string_view text,
                                                            const std::vector<DeploymentFacts>& deployments) {
  const std::string t = trim(text);
  // A deployment id contains '/', a kind prefix never does: "deployment:qwen@x/y" splits on the
  // first ':' only when what precedes it is a kind.
  if (auto colon = t.find(':'); colon != std::string::npos) {
    const std::string head = to_lower(t.substr(0, colon));
    if (auto kind = parse_suspension_kind(head)) return make_suspension_selector(*kind, t.substr(colon + 1), deployments);
    if (t.find('/') == std::string::npos)
      return invalid("unknown selector kind '" + t.substr(0, colon) + "' (expected " + join({"vendor", "parent", "jurisdiction", "deployment"}) + ")");
  }
  for (auto kind : {SuspensionKind::vendor, SuspensionKind::parent, SuspensionKind::jurisdiction, SuspensionKind::deployment}) {
    const std::string c = canonical(kind, t);
    if (!c.empty() && known_targets(kind, deployments).count(c)) return SuspensionSelector{kind, c};
  }
  if (is_iso3166_country(to_upper(t)) || is_country_group(to_upper(t)))
    return SuspensionSelector{SuspensionKind::jurisdiction, to_upper(t)};
  return invalid("unknown selector '" + t +
                 "': no vendor, parent company, jurisdiction or deployment has that name (write kind:name, e.g. "
                 "vendor:qwen, parent:alibaba, jurisdiction:CN)");
}

const Suspension* find_suspension(const SuspensionList& list, const DeploymentFacts& d) {
  for (const auto& s : list)
    if (suspension_matches(s.selector, d)) return &s;
  return nullptr;
}

}  // namespace routing
