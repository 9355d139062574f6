#pragma once
// "p50 X p90 X p99 X p999 X max X" (µs) of a set of latency samples: the tail of the one-line
// reports of the load generators (paced_load, stream_load) that the bench scripts parse.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace bench {

inline double percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

inline std::string latency_summary(std::vector<double> v) {
  const double mx = v.empty() ? 0 : *std::max_element(v.begin(), v.end());
  const double p50 = percentile(v, 0.50), p90 = percentile(v, 0.90), p99 = percentile(v, 0.99),
               p999 = percentile(v, 0.999);
  char line[160];
  std::snprintf(line, sizeof line, "p50 %.1f p90 %.1f p99 %.1f p999 %.1f max %.1f", p50, p90, p99, p999, mx);
  return line;
}

}  // namespace bench
