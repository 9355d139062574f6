#pragma once
// Money as integer pico-dollars (1e-12 USD): exact sums, no float drift in ledgers.
// A price of P USD per 1M tokens is P*1e6 pico-USD per token, so prices quoted with up to
// six decimals per million tokens (e.g. DeepSeek's 0.003625) are exact.
#include <cmath>
#include <cstdint>
#include <string>

namespace core {

struct Money {
  int64_t pico = 0;

  static Money from_usd(double usd) { return Money{static_cast<int64_t>(std::llround(usd * 1e12))}; }
  double usd() const { return static_cast<double>(pico) / 1e12; }
  Money& operator+=(Money o) { pico += o.pico; return *this; }
  friend Money operator+(Money a, Money b) { return Money{a.pico + b.pico}; }
  friend Money operator-(Money a, Money b) { return Money{a.pico - b.pico}; }
  friend bool operator==(Money a, Money b) = default;
  friend auto operator<=>(Money a, Money b) = default;
};

// Price per token, stored exactly: USD per 1M tokens * 1e6 = pico-USD per token.
struct TokenPrice {
  int64_t pico_per_token = 0;
  static TokenPrice per_million_usd(double usd) {
    return TokenPrice{static_cast<int64_t>(std::llround(usd * 1e6))};
  }
  Money times(int64_t tokens) const { return Money{pico_per_token * tokens}; }
  double per_million_usd_value() const { return static_cast<double>(pico_per_token) / 1e6; }
};

// "0.000123" with 9 decimals, trailing zeros trimmed (for headers and logs).
std::string format_usd(Money m);

}  // namespace core
