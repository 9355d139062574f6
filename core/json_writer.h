#pragma once
// Minimal JSON text building for responses, logs and upstream bodies.
#include <cstdint>
#include <string>
#include <string_view>

namespace core {

// Appends s as a JSON string literal (with quotes), escaping as RFC 8259 requires.
void append_json_string(std::string& out, std::string_view s);
std::string json_string(std::string_view s);

// True if s is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool valid_utf8(std::string_view s);

}  // namespace core
