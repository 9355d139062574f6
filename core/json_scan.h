#pragma once
// Finds where JSON values begin and end so that they can be copied verbatim: rewriting a request
// or response then costs a memcpy per field instead of a re-serialisation (no allocation, numbers
// and escapes exactly as the sender wrote them). Meant for text a validating parser (simdjson) has
// already accepted; on any other input the functions stay inside the buffer and report failure.
#include <cstddef>
#include <string>
#include <string_view>

namespace core::json {

inline constexpr size_t npos = std::string_view::npos;

// Index of the first non-whitespace character at or after i (s.size() if none).
size_t skip_ws(std::string_view s, size_t i);
// Index just past the value starting at s[i] (i must point at its first character), or npos.
size_t skip_value(std::string_view s, size_t i);
// s without leading and trailing JSON whitespace.
std::string_view trim(std::string_view s);

// A copy of s followed by `padding` zero bytes, in a buffer owned by the calling thread and reused
// by its next call (for parsers that need readable bytes past the end, without an allocation each).
// The buffer keeps up to 1 MiB between calls; more is released at the next smaller call.
std::string_view padded_copy(std::string_view s, size_t padding);

// A member of an object: the key as written between its quotes (escapes not decoded) and the
// value's text.
struct Member {
  std::string_view key;
  std::string_view value;
};

// True if a key as written (raw, between the quotes) means `name` once escapes are decoded.
bool key_is(std::string_view raw_key, std::string_view name);

// Appends the text of the JSON string literal `literal` (with its quotes) to out, escapes decoded.
bool decode_string(std::string_view literal, std::string& out);

// Calls fn(Member) for each member of the object whose text is `obj` (surrounding whitespace
// allowed). False if `obj` is not an object.
template <class F>
bool for_each_member(std::string_view obj, F&& fn);
// Calls fn(std::string_view element) for each element of the array whose text is `arr`.
template <class F>
bool for_each_element(std::string_view arr, F&& fn);

// --- implementation of the templates ------------------------------------------------------------

template <class F>
bool for_each_member(std::string_view obj, F&& fn) {
  size_t i = skip_ws(obj, 0);
  if (i >= obj.size() || obj[i] != '{') return false;
  i = skip_ws(obj, i + 1);
  if (i < obj.size() && obj[i] == '}') return true;
  for (;;) {
    if (i >= obj.size() || obj[i] != '"') return false;
    size_t key_end = skip_value(obj, i);
    if (key_end == npos) return false;
    std::string_view key = obj.substr(i + 1, key_end - i - 2);
    i = skip_ws(obj, key_end);
    if (i >= obj.size() || obj[i] != ':') return false;
    i = skip_ws(obj, i + 1);
    size_t value_end = skip_value(obj, i);
    if (value_end == npos) return false;
    fn(Member{key, obj.substr(i, value_end - i)});
    i = skip_ws(obj, value_end);
    if (i >= obj.size()) return false;
    if (obj[i] == '}') return true;
    if (obj[i] != ',') return false;
    i = skip_ws(obj, i + 1);
  }
}

template <class F>
bool for_each_element(std::string_view arr, F&& fn) {
  size_t i = skip_ws(arr, 0);
  if (i >= arr.size() || arr[i] != '[') return false;
  i = skip_ws(arr, i + 1);
  if (i < arr.size() && arr[i] == ']') return true;
  for (;;) {
    size_t end = skip_value(arr, i);
    if (end == npos) return false;
    fn(arr.substr(i, end - i));
    i = skip_ws(arr, end);
    if (i >= arr.size()) return false;
    if (arr[i] == ']') return true;
    if (arr[i] != ',') return false;
    i = skip_ws(arr, i + 1);
  }
}

}  // namespace core::json
