#pragma once
// The content-aware route match conditions (`match.script`, `code`, `input_tokens`, `tools`,
// `reasoning_effort`; policies/README.md) and their evaluation against one request. The prompt is
// scanned (routing/content.h) only when a route that is tried has `script` or `code`, and at most
// once per decision.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "routing/content.h"
#include "routing/router.h"

namespace routing {

// Inclusive bounds; an absent side is open.
template <typename T>
struct Bounds {
  std::optional<T> min, max;
  bool holds(T v) const { return (!min || v >= *min) && (!max || v <= *max); }
};

struct ScriptCondition {
  Script script = Script::latin;
  Bounds<double> share;
};

struct ContentMatch {
  std::vector<ScriptCondition> scripts;  // every one must hold; a prompt with no letters holds none
  std::optional<bool> code;
  Bounds<int64_t> input_tokens;          // on RequestFeatures::est_input_tokens
  std::optional<bool> tools;
  std::vector<std::string> reasoning_efforts;  // any of them (reasoning_effort_values())

  bool scans() const { return !scripts.empty() || code.has_value(); }
  bool empty() const {
    return !scans() && !input_tokens.min && !input_tokens.max && !tools && reasoning_efforts.empty();
  }
};

// What a policy may list under `reasoning_effort`: the levels clients send (none, minimal, low,
// medium, high, xhigh), `default` (reasoning switched on without a level) and `unset` (nothing said).
const std::vector<std::string>& reasoning_effort_values();

// The request's content features, computed on first use.
class LazyContent {
 public:
  explicit LazyContent(const RequestFeatures& f) : f_(f) {}
  const ContentFeatures& get() {
    if (!c_) c_ = scan_messages(f_.messages);
    return *c_;
  }
  const std::optional<ContentFeatures>& computed() const { return c_; }

 private:
  const RequestFeatures& f_;
  std::optional<ContentFeatures> c_;
};

// One condition as explain shows it: {"condition":"script.cjk","want":">= 0.3","actual":"0.82","held":true}.
struct ConditionResult {
  std::string condition, want, actual;
  bool held = false;
};

// Whether every condition of `m` holds. With `detail`, every condition is evaluated and reported;
// without, the first failure ends it (the scan is skipped when a cheaper condition already failed).
bool content_matches(const ContentMatch& m, const RequestFeatures& f, LazyContent& content,
                     std::vector<ConditionResult>* detail = nullptr);

}  // namespace routing
