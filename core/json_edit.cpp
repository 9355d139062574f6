#include "core/json_edit.h"

#include <vector>

#include "core/json_scan.h"
#include "core/json_writer.h"

namespace core::json {

std::optional<std::string> edit_members(std::string_view obj, std::span<const MemberEdit> edits) {
  std::vector<bool> seen(edits.size(), false);
  std::string members;  // the members after the inserted ones, comma-separated
  members.reserve(obj.size() + 32);
  const bool ok = for_each_member(obj, [&](const Member& m) {
    std::optional<std::string_view> value = m.value;
    for (size_t i = 0; i < edits.size(); ++i)
      if (key_is(m.key, edits[i].key)) {
        seen[i] = true;
        value = edits[i].value;
        break;
      }
    if (!value) return;
    if (!members.empty()) members.push_back(',');
    members.push_back('"');
    members.append(m.key);
    members += "\":";
    members.append(*value);
  });
  if (!ok) return std::nullopt;
  std::string out = "{";
  for (size_t i = 0; i < edits.size(); ++i) {
    if (seen[i] || !edits[i].insert || !edits[i].value) continue;
    if (out.size() > 1) out.push_back(',');
    append_json_string(out, edits[i].key);
    out.push_back(':');
    out.append(*edits[i].value);
  }
  if (out.size() > 1 && !members.empty()) out.push_back(',');
  out += members;
  out.push_back('}');
  return out;
}

}  // namespace core::json
