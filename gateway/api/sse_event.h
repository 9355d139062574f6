#pragma once
// One server-sent event of a translated stream, as a surface's encoder produces it.
#include <string>

namespace gateway {

struct SseEvent {
  std::string name;  // the `event:` line
  std::string data;  // the `data:` line, one JSON object
};

}  // namespace gateway
