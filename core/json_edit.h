#pragma once
// Edits the top-level members of a JSON object's text without re-serialising its values: the
// members named are replaced, removed or inserted; every other member is copied as it came
// (numbers, escapes, unknown members, nested objects), in order. For relaying an API's bodies and
// events with a few members changed.
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace core::json {

struct MemberEdit {
  std::string_view key;                   // the member's name (escapes in the text are decoded to compare)
  std::optional<std::string_view> value;  // its new JSON value; nullopt: the member is removed
  bool insert = false;                    // added first when absent (with a value)
};

// `obj` with `edits` applied; every occurrence of a named member is edited (a duplicate cannot
// survive). Whitespace between members is not kept. nullopt if `obj` is not a JSON object.
std::optional<std::string> edit_members(std::string_view obj, std::span<const MemberEdit> edits);

}  // namespace core::json
