#include "core/money.h"

#include <cstdio>
#include <cstdlib>

namespace core {

std::string format_usd(Money m) {
  // Round to nano-dollars for display; ledgers keep pico precision.
  int64_t nano = m.pico >= 0 ? (m.pico + 500) / 1000 : -((-m.pico + 500) / 1000);
  const char* sign = nano < 0 ? "-" : "";
  int64_t a = std::llabs(nano);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s%lld.%09lld", sign, static_cast<long long>(a / 1000000000),
                static_cast<long long>(a % 1000000000));
  std::string s(buf);
  while (s.size() > 3 && s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
  return s;
}

}  // namespace core
