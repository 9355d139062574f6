#pragma once
// The members of a simdjson object that a reader wants, found in one pass over its keys.
// element::operator[] scans the object (with strlen on the key) for every lookup; readers that
// look up several keys of the same object pay that once per key. First occurrence wins, as with
// operator[]. Needs simdjson (header-only here; the consumers link it).
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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

// --- Strict reading of client bodies -------------------------------------------------------------
// JSON decoders disagree on a repeated member name (most keep the last value, simdjson lookups and
// Members above the first) and some match names loosely (Go's encoding/json ignores letter case,
// with Unicode folding: "\u212A" is a "k"). A body the gateway validated and priced on one reading
// must not be read another way upstream, so client bodies are refused when any object in them
// repeats a name, or when an object the gateway interprets holds a name that only differs from
// one it reads by case or by '_' / '-' separators ("Max_Tokens", "maxTokens", "MODEL").
namespace core::json {

struct Ambiguity {
  enum class Kind : unsigned char { none, duplicate, variant };
  Kind kind = Kind::none;
  std::string_view key;   // the offending name, decoded
  std::string_view like;  // variant: the name the gateway reads
  // Where the object holding `key` is, relative to the value scanned ("" = that value itself),
  // as ".name" and "[index]" steps. Built on the way out of an error only.
  std::string where;
  explicit operator bool() const { return kind != Kind::none; }
};

namespace detail {

inline bool is_container(simdjson::dom::element v) {
  const auto t = v.type();
  return t == simdjson::dom::element_type::OBJECT || t == simdjson::dom::element_type::ARRAY;
}

inline bool is_identifier(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

inline void prepend_step(std::string& where, std::string_view key) {
  // Only on error; keys that are not identifiers are written ["..."] (the caller escapes text it shows).
  std::string step;
  if (is_identifier(key)) {
    step.reserve(key.size() + 1 + where.size());
    step += '.';
    step += key;
  } else {
    step += "[\"";
    for (char c : key) {
      if (c == '"' || c == '\\') step += '\\';
      step += c;
    }
    step += "\"]";
  }
  where.insert(0, step);
}

inline void prepend_step(std::string& where, size_t index) { where.insert(0, "[" + std::to_string(index) + "]"); }

// The distinct names of one object: compared pairwise while there are few (no allocation), sorted
// once when there are many (an object with 100k names costs n log n, not n^2).
class NameSet {
 public:
  // False if `name` is already in the set (known at once while the set is small).
  bool add(std::string_view name) {
    if (count_ < kInline) {
      for (size_t i = 0; i < count_; ++i)
        if (inline_[i].size == name.size() && (name.empty() || inline_[i].data[0] == name[0]) &&
            std::char_traits<char>::compare(inline_[i].data, name.data(), name.size()) == 0)
          return false;
      inline_[count_++] = {name.data(), name.size()};
      return true;
    }
    if (many_.empty())
      for (const Name& n : inline_) many_.emplace_back(n.data, n.size);
    many_.push_back(name);
    ++count_;
    return true;
  }
  // After the last add: a name added twice among many, or a view whose data() is null (a
  // repeated empty name "" is a real view).
  std::string_view repeated() { return many_.empty() ? std::string_view() : repeated_among_many(); }

 private:
  std::string_view repeated_among_many() {
    std::sort(many_.begin(), many_.end());
    for (size_t i = 1; i < many_.size(); ++i)
      if (many_[i] == many_[i - 1]) return many_[i];
    return {};
  }
  static constexpr size_t kInline = 16;
  struct Name {  // trivial, so that the array is not initialised for every object scanned
    const char* data;
    size_t size;
  };
  Name inline_[kInline];
  size_t count_ = 0;
  std::vector<std::string_view> many_;
};

// a == b, testing the first byte before calling memcmp: most names differ there.
inline bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && (a.empty() || (a[0] == b[0] && std::char_traits<char>::compare(a.data(), b.data(), a.size()) == 0));
}

// The byte length of the character at s[i] and, in `c`, the ASCII letter Go's name matching folds
// it to (0 if none): upper-case ASCII, KELVIN SIGN, LATIN SMALL LETTER LONG S, dotted / dotless I.
inline size_t fold_at(std::string_view s, size_t i, char& c) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) {
    c = (b >= 'A' && b <= 'Z') ? static_cast<char>(b - 'A' + 'a') : static_cast<char>(b);
    return 1;
  }
  const std::string_view rest = s.substr(i);
  if (rest.substr(0, 3) == "\xE2\x84\xAA") { c = 'k'; return 3; }
  if (rest.substr(0, 2) == "\xC5\xBF") { c = 's'; return 2; }
  if (rest.substr(0, 2) == "\xC4\xB0" || rest.substr(0, 2) == "\xC4\xB1") { c = 'i'; return 2; }
  c = 0;
  return 1;
}

// `key` with case folded and '_' / '-' dropped, into `out` (at most kFoldMax bytes); false if
// longer, or if it holds a character that folds to no ASCII letter (no name the gateway reads
// could then match).
inline constexpr size_t kFoldMax = 32;
inline bool fold_name(std::string_view key, char (&out)[kFoldMax], size_t& n) {
  n = 0;
  for (size_t i = 0; i < key.size();) {
    if (key[i] == '_' || key[i] == '-') {
      ++i;
      continue;
    }
    char c;
    i += fold_at(key, i, c);
    if (c == 0 || n == kFoldMax) return false;
    out[n++] = c;
  }
  return true;
}

// True if the folded key (see fold_name) reads as `name` (lower-case ASCII) without its separators.
inline bool folds_to(std::string_view folded, std::string_view name) {
  if (name.size() < folded.size() || name.empty() || name[0] != folded[0]) return false;  // names start with a letter
  size_t i = 0;
  for (char c : name) {
    if (c == '_' || c == '-') continue;
    if (i == folded.size() || folded[i++] != c) return false;
  }
  return i == folded.size();
}

}  // namespace detail

// Finds the first object inside `v` (v itself included) that repeats a member name. Values are
// not interpreted, so only exact repeats (after escapes are decoded) count. Recursion is bounded
// by the parser's depth limit.
inline bool find_repeated_member(simdjson::dom::element v, Ambiguity& out) {
  if (v.type() == simdjson::dom::element_type::ARRAY) {
    size_t i = 0;
    for (simdjson::dom::element e : simdjson::dom::array(v)) {
      if (detail::is_container(e) && find_repeated_member(e, out)) {
        detail::prepend_step(out.where, i);
        return true;
      }
      ++i;
    }
    return false;
  }
  if (v.type() != simdjson::dom::element_type::OBJECT) return false;
  detail::NameSet names;
  for (auto field : simdjson::dom::object(v)) {
    const std::string_view key = field.key;
    if (!names.add(key)) {
      out = {Ambiguity::Kind::duplicate, key, {}, {}};
      return true;
    }
    if (detail::is_container(field.value) && find_repeated_member(field.value, out)) {
      detail::prepend_step(out.where, key);
      return true;
    }
  }
  if (const std::string_view key = names.repeated(); key.data() != nullptr) {
    out = {Ambiguity::Kind::duplicate, key, {}, {}};
    return true;
  }
  return false;
}

// Members of an object that the gateway interprets, found in one pass that also refuses
// ambiguity: a repeated name, a loose variant of one of `names`, and repeats anywhere inside the
// values of other members. Member values whose bit is set in `caller_checks` are not looked
// into: the caller reads them with a StrictMembers of their own (or refuses them).
template <size_t N>
class StrictMembers {
 public:
  StrictMembers(const std::array<std::string_view, N>& names, simdjson::dom::object obj, uint64_t caller_checks = 0) {
    static_assert(N <= 64, "caller_checks is a 64-bit mask");
    detail::NameSet others;
    for (auto field : obj) {
      const std::string_view key = field.key;
      size_t i = 0;
      while (i < N && !detail::same_name(key, names[i])) ++i;
      if (i < N) {
        if (present_ & (uint64_t{1} << i)) {
          bad_ = {Ambiguity::Kind::duplicate, key, {}, {}};
          return;
        }
        present_ |= uint64_t{1} << i;
        found_[i] = field.value;
        if (caller_checks & (uint64_t{1} << i)) continue;
      } else {
        char buf[detail::kFoldMax];
        size_t n = 0;
        if (detail::fold_name(key, buf, n) && n > 0) {
          const std::string_view folded(buf, n);
          for (size_t j = 0; j < N; ++j) {
            if (detail::folds_to(folded, names[j])) {
              bad_ = {Ambiguity::Kind::variant, key, names[j], {}};
              return;
            }
          }
        }
        if (!others.add(key)) {
          bad_ = {Ambiguity::Kind::duplicate, key, {}, {}};
          return;
        }
      }
      if (detail::is_container(field.value) && find_repeated_member(field.value, bad_)) {
        detail::prepend_step(bad_.where, key);
        return;
      }
    }
    if (const std::string_view key = others.repeated(); key.data() != nullptr)
      bad_ = {Ambiguity::Kind::duplicate, key, {}, {}};
  }
  // What makes the object ambiguous; when set, the other members may not all have been read.
  const Ambiguity& ambiguity() const { return bad_; }
  bool get(size_t i, simdjson::dom::element& out) const {
    if (!has(i)) return false;
    out = found_[i];
    return true;
  }
  bool has(size_t i) const { return (present_ >> i) & 1; }
  // Bit i set: member i is present (lets a reader skip a group of absent members at once).
  uint64_t present() const { return present_; }

 private:
  std::array<simdjson::dom::element, N> found_;  // only read where present_ says so
  uint64_t present_ = 0;
  Ambiguity bad_;
};

// "an array", "a string", ...: how a message names the type a member has.
inline const char* type_name(simdjson::dom::element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY: return "an array";
    case simdjson::dom::element_type::OBJECT: return "an object";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64: return "an integer";
    case simdjson::dom::element_type::DOUBLE: return "a number";
    case simdjson::dom::element_type::STRING: return "a string";
    case simdjson::dom::element_type::BOOL: return "a boolean";
    case simdjson::dom::element_type::NULL_VALUE: return "null";
  }
  return "unknown";
}

// Where an ambiguity sits, for an error: the object's path (`base` + where it was found) and the
// offending member's parameter name (that path plus the key, without the leading "$.").
struct AmbiguityPlace {
  std::string path;
  std::string param;
};
inline AmbiguityPlace ambiguity_place(const Ambiguity& a, std::string_view base) {
  AmbiguityPlace p;
  p.path = std::string(base) + a.where;
  std::string member = p.path;
  std::string step;
  detail::prepend_step(step, a.key);
  member += step;
  p.param = member.substr(member.size() > 1 && member[1] == '.' ? 2 : 1);
  return p;
}

}  // namespace core::json
