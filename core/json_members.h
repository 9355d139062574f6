#pragma once
// The members of a simdjson object that a reader wants, found in one pass over its keys.
// element::operator[] scans the object (with strlen on the key) for every lookup; readers that
// look up several keys of the same object pay that once per key. First occurrence wins, as with
// operator[]. Needs simdjson (header-only here; the consumers link it).
#include <simdjson.h>

#include <array>
#include <cstddef>
#include <string_view>

namespace core::json {

template <size_t N>
class Members {
 public:
  Members(const std::array<std::string_view, N>& names, simdjson::dom::object obj) {
    for (auto field : obj) {
      const std::string_view key = field.key;
      for (size_t i = 0; i < N; ++i) {
        if (!present_[i] && key == names[i]) {
          present_[i] = true;
          found_[i] = field.value;
          break;
        }
      }
    }
  }
  // Sets `out` to member i (the index of its name) and returns true, or returns false if absent.
  bool get(size_t i, simdjson::dom::element& out) const {
    if (!present_[i]) return false;
    out = found_[i];
    return true;
  }
  bool has(size_t i) const { return present_[i]; }

 private:
  std::array<simdjson::dom::element, N> found_{};
  std::array<bool, N> present_{};
};

}  // namespace core::json
