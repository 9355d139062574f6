#include "routing/content_match.h"

#include <algorithm>
#include <cstdio>

namespace routing {
namespace {

template <typename T>
std::string number_text(T v) {
  char buf[32];
  if constexpr (std::is_floating_point_v<T>) std::snprintf(buf, sizeof buf, "%.3g", v);
  else std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  return buf;
}

template <typename T>
std::string bounds_text(const Bounds<T>& b) {
  if (b.min && b.max) return number_text(*b.min) + ".." + number_text(*b.max);
  return b.min ? ">= " + number_text(*b.min) : "<= " + number_text(*b.max);
}

const char* yes_no(bool v) { return v ? "true" : "false"; }

// Records one condition; true when the evaluation should go on (it held, or detail is wanted).
bool note(std::vector<ConditionResult>* detail, std::string condition, std::string want, std::string actual, bool held) {
  if (detail) detail->push_back({std::move(condition), std::move(want), std::move(actual), held});
  return held || detail;
}

}  // namespace

const std::vector<std::string>& reasoning_effort_values() {
  static const std::vector<std::string> kValues{"none", "minimal", "low", "medium", "high", "xhigh", "default", "unset"};
  return kValues;
}

bool content_matches(const ContentMatch& m, const RequestFeatures& f, LazyContent& content,
                     std::vector<ConditionResult>* detail) {
  bool all = true;
  // The cheap conditions first: a request they exclude is never scanned.
  if (m.input_tokens.min || m.input_tokens.max) {
    const bool held = m.input_tokens.holds(f.est_input_tokens);
    all &= held;
    if (!note(detail, "input_tokens", bounds_text(m.input_tokens), number_text(f.est_input_tokens), held)) return false;
  }
  if (m.tools) {
    const bool held = *m.tools == f.needs_tools;
    all &= held;
    if (!note(detail, "tools", yes_no(*m.tools), yes_no(f.needs_tools), held)) return false;
  }
  if (!m.reasoning_efforts.empty()) {
    const std::string actual = f.reasoning_effort.empty() ? "unset" : f.reasoning_effort;
    const bool held = std::find(m.reasoning_efforts.begin(), m.reasoning_efforts.end(), actual) != m.reasoning_efforts.end();
    all &= held;
    std::string want;
    for (const auto& v : m.reasoning_efforts) want += (want.empty() ? "" : "|") + v;
    if (!note(detail, "reasoning_effort", want, actual, held)) return false;
  }
  for (const auto& s : m.scripts) {
    const ContentFeatures& c = content.get();
    const bool held = c.letters > 0 && s.share.holds(c.share(s.script));
    all &= held;
    const std::string actual = c.letters == 0 ? "no letters" : number_text(c.share(s.script));
    if (!note(detail, std::string("script.") + to_string(s.script), bounds_text(s.share), actual, held)) return false;
  }
  if (m.code) {
    const ContentFeatures& c = content.get();
    const bool held = *m.code == c.code;
    all &= held;
    if (!note(detail, "code", yes_no(*m.code), yes_no(c.code), held)) return false;
  }
  return all;
}

}  // namespace routing
