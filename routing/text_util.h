#pragma once
// Small text helpers for the policy compiler and matchers: globs, edit distance, ISO dates.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace routing {

// Shell-style glob: '*' any run (possibly empty), '?' one character. Case-sensitive.
bool glob_match(std::string_view pattern, std::string_view text);
bool has_glob(std::string_view s);

// Levenshtein distance, for "did you mean" hints.
size_t edit_distance(std::string_view a, std::string_view b);
// The closest candidate within a small distance, or empty.
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

std::string to_lower(std::string_view s);
std::string to_upper(std::string_view s);

// "YYYY-MM-DD" -> days since 1970-01-01, or nullopt if malformed.
std::optional<int32_t> parse_iso_date(std::string_view s);
// Days since 1970-01-01 -> "YYYY-MM-DD" (the inverse of parse_iso_date).
std::string iso_date_text(int32_t days);

}  // namespace routing
