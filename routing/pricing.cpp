#include "routing/pricing.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "routing/text_util.h"

namespace routing {

bool is_peak(const PriceSchedule& schedule, core::WallTime when) {
  if (schedule.peak.empty()) return true;
  using namespace std::chrono;
  const int64_t secs = duration_cast<seconds>(when.time_since_epoch()).count();
  const int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;  // floor
  const int minute = static_cast<int>((secs - days * 86400) / 60);
  const int weekday = static_cast<int>(((days + 3) % 7 + 7) % 7);  // 1970-01-01 was a Thursday; 0 = Monday
  if (std::find(schedule.offpeak_days.begin(), schedule.offpeak_days.end(), static_cast<int32_t>(days)) !=
      schedule.offpeak_days.end())
    return false;
  for (const auto& w : schedule.peak) {
    if ((w.weekdays >> weekday) & 1u) {
      if (minute >= w.start_minute && minute < w.end_minute) return true;
    }
  }
  return false;
}

double price_factor(const PriceSchedule& schedule, core::WallTime when) {
  return is_peak(schedule, when) ? 1.0 : schedule.offpeak_factor;
}

core::Money cost_of(const Pricing& pricing, const core::Usage& usage, double factor) {
  const PriceTier& t = pricing.tier_for(usage.prompt_tokens);
  const int64_t cached = std::max<int64_t>(0, usage.cached_tokens);
  const int64_t written = std::max<int64_t>(0, usage.cache_write_tokens);
  const int64_t uncached = std::max<int64_t>(0, usage.prompt_tokens - cached - written);
  const int64_t completion = std::max<int64_t>(0, usage.completion_tokens);
  int64_t reasoning = std::clamp<int64_t>(usage.reasoning_tokens, 0, completion);
  if (pricing.thinking_bills_all_output && reasoning > 0) reasoning = completion;
  core::Money m = t.input.times(uncached) + t.cached_input.times(cached) + t.cache_write.times(written) +
                  t.output.times(completion - reasoning) + t.reasoning_output.times(reasoning);
  if (factor != 1.0) m.pico = std::llround(static_cast<double>(m.pico) * factor);
  return m;
}

core::Money cost_of(const DeploymentFacts& facts, const core::Usage& usage, core::WallTime when) {
  return cost_of(facts.pricing, usage, price_factor(facts.pricing.schedule, when));
}

std::string holiday_coverage_warning(const std::vector<DeploymentFacts>& deployments, int64_t today) {
  for (const auto& d : deployments) {
    if (builtin_holidays_through(d.provider_type).empty() || d.pricing.schedule.empty()) continue;
    int64_t last = -1;
    for (int32_t day : d.pricing.schedule.offpeak_days) last = std::max<int64_t>(last, day);
    if (last >= today + 365) continue;
    return d.provider_type + " off-peak holiday dates end " +
           (last < 0 ? std::string("nowhere (none listed)") : iso_date_text(static_cast<int32_t>(last))) +
           ", less than 12 months ahead: unlisted public holidays are priced at peak; list them in the policy's "
           "`catalog:` price schedule (offpeak_dates)";
  }
  return "";
}

}  // namespace routing
