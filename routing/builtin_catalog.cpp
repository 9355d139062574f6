// The built-in catalog: routing/catalog/builtin.yaml, embedded at build time (routing/CMakeLists.txt)
// and compiled at first use by the policy compiler (compile_builtin_catalog), so a price edit is a
// data diff and the built-in facts pass exactly the checks a policy's `catalog:` overrides pass.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "routing/catalog.h"
#include "routing/embedded_catalog.h"
#include "routing/policy.h"
#include "routing/text_util.h"

namespace routing {
namespace {

constexpr const char* kFileName = "routing/catalog/builtin.yaml";

// The embedded file failing to compile is a build defect, not an operator's mistake: the build's
// tests compile the same bytes, so stopping here with every error is the honest response.
const BuiltinCatalogData& compiled() {
  static const BuiltinCatalogData data = [] {
    auto r = compile_builtin_catalog(builtin_catalog_text(), kFileName);
    if (!r) {
      std::fprintf(stderr, "built-in catalog is invalid:\n%s\n", r.error().message.c_str());
      std::abort();
    }
    return std::move(r).value();
  }();
  return data;
}

}  // namespace

std::string_view builtin_catalog_text() {
  const auto& f = embedded::kCatalogFiles[0];
  return {reinterpret_cast<const char*>(f.data), f.size};
}

const std::string& builtin_catalog_date() { return compiled().catalog_date; }

// The last off-peak date of a provider type whose built-in price has a peak schedule (DeepSeek: its
// Chinese public holidays); "" for a provider without one.
std::string builtin_holidays_through(std::string_view provider) {
  int32_t last = -1;
  bool scheduled = false;
  for (const auto& d : compiled().deployments) {
    if (d.provider_type != provider || d.pricing.schedule.empty()) continue;
    scheduled = true;
    for (int32_t day : d.pricing.schedule.offpeak_days) last = std::max(last, day);
  }
  if (!scheduled || last < 0) return "";
  return iso_date_text(last);
}

std::shared_ptr<const Catalog> builtin_catalog() {
  static const std::shared_ptr<const Catalog> catalog = std::make_shared<const Catalog>(compiled().deployments);
  return catalog;
}

}  // namespace routing
