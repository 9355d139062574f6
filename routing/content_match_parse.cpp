#include "routing/content_match_parse.h"

#include <algorithm>
#include <utility>

#include "routing/text_util.h"

namespace routing {
namespace {

const std::vector<std::string> kBoundKeys{"min", "max"};

std::string scalar_or_kind(const YAML::Node& n) {
  return n.IsScalar() ? n.Scalar() : std::string(n.IsMap() ? "a mapping" : n.IsSequence() ? "a list" : "nothing");
}

std::optional<bool> flag(const YAML::Node& n, const std::string& what, const PolicyDiagnostics& diag) {
  bool v = false;
  if (n.IsScalar() && YAML::convert<bool>::decode(n, v)) return v;
  diag.error(n, what + " must be true or false, got '" + scalar_or_kind(n) + "'");
  return std::nullopt;
}

// {min: a, max: b}, either side optional but not both, min <= max.
template <typename T, typename ReadSide>
bool bounds(const YAML::Node& n, const std::string& what, const char* example, Bounds<T>& out,
            const PolicyDiagnostics& diag, ReadSide read_side) {
  if (!n.IsMap()) {
    diag.error(n, what + " must be a mapping with min and/or max, e.g. " + example);
    return false;
  }
  if (!keys_known(n, what, kBoundKeys, diag)) return false;
  Bounds<T> b;
  bool ok = true;
  const std::pair<const char*, std::optional<T>*> sides[] = {{"min", &b.min}, {"max", &b.max}};
  for (auto [side, slot] : sides)
    if (const YAML::Node v = n[side]) {
      *slot = read_side(v, what + "." + side);
      ok &= slot->has_value();
    }
  if (!ok) return false;
  if (!b.min && !b.max) {
    diag.error(n, what + " needs min or max, e.g. " + example);
    return false;
  }
  if (b.min && b.max && *b.min > *b.max) {
    diag.error(n, what + ": min is greater than max (no request could match)");
    return false;
  }
  out = b;
  return true;
}

void parse_scripts(const YAML::Node& n, ContentMatch& m, const PolicyDiagnostics& diag) {
  const char* example = "script: {cjk: {min: 0.3}}";
  if (!n.IsMap() || n.size() == 0) {
    diag.error(n, std::string("match.script must be a mapping of script -> {min, max} share, e.g. ") + example);
    return;
  }
  const auto names = script_names();
  const std::vector<std::string> known(names.begin(), names.end());
  for (const auto& kv : n) {
    const std::string name = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
    const auto script = script_from_name(name);
    if (!script) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      const std::string best = closest_match(name, known);
      diag.error(kv.first, "unknown script '" + name + "'" + (best.empty() ? "" : " (did you mean '" + best + "'?)") +
                               "; scripts are " + list);
      continue;
    }
    ScriptCondition c{*script, {}};
    auto share = [&](const YAML::Node& v, const std::string& what) { return fraction(v, what, 0, 1, false, diag); };
    if (bounds<double>(kv.second, "match.script." + name, example, c.share, diag, share)) m.scripts.push_back(c);
  }
}

void parse_input_tokens(const YAML::Node& n, ContentMatch& m, const PolicyDiagnostics& diag) {
  auto count = [&](const YAML::Node& v, const std::string& what) -> std::optional<int64_t> {
    int64_t x = 0;
    if (v.IsScalar() && YAML::convert<int64_t>::decode(v, x) && x >= 0 && x <= 100'000'000) return x;
    diag.error(v, what + " must be a whole number of tokens from 0 to 100000000, got '" + scalar_or_kind(v) + "'");
    return std::nullopt;
  };
  bounds<int64_t>(n, "match.input_tokens", "input_tokens: {min: 32000}", m.input_tokens, diag, count);
}

void parse_efforts(const YAML::Node& n, ContentMatch& m, const PolicyDiagnostics& diag) {
  const auto& known = reasoning_effort_values();
  std::string list;
  for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
  if (n.IsNull() || (n.IsSequence() && n.size() == 0)) {
    diag.error(n, "match.reasoning_effort needs at least one value (" + list + ")");
    return;
  }
  std::vector<YAML::Node> items;
  if (n.IsSequence()) for (const auto& e : n) items.push_back(e);
  else items.push_back(n);
  for (const auto& e : items) {
    const std::string v = e.IsScalar() ? e.Scalar() : std::string();
    if (std::find(known.begin(), known.end(), v) == known.end()) {
      const std::string best = closest_match(v, known);
      diag.error(e, "match.reasoning_effort '" + scalar_or_kind(e) + "' is not one of " + list +
                        (best.empty() ? "" : " (did you mean '" + best + "'?)"));
      continue;
    }
    if (std::find(m.reasoning_efforts.begin(), m.reasoning_efforts.end(), v) == m.reasoning_efforts.end())
      m.reasoning_efforts.push_back(v);
  }
}

}  // namespace

const std::vector<std::string>& content_match_keys() {
  static const std::vector<std::string> kKeys{"script", "code", "input_tokens", "tools", "reasoning_effort"};
  return kKeys;
}

void parse_content_match(const YAML::Node& match, ContentMatch& m, const PolicyDiagnostics& diag) {
  if (const YAML::Node n = match["script"]) parse_scripts(n, m, diag);
  if (const YAML::Node n = match["code"]) m.code = flag(n, "match.code", diag);
  if (const YAML::Node n = match["input_tokens"]) parse_input_tokens(n, m, diag);
  if (const YAML::Node n = match["tools"]) m.tools = flag(n, "match.tools", diag);
  if (const YAML::Node n = match["reasoning_effort"]) parse_efforts(n, m, diag);
}

}  // namespace routing
