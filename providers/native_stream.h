#pragma once
// What a native relay (providers/anthropic_relay.cpp) learns from one upstream stream event, the
// same for every relayed API: relay it, stop, or fail; whether it carries content (commits the
// attempt); whether it only proves the socket lives; the output it carries, estimated.
#include <cstdint>
#include <optional>
#include <string_view>

#include "core/error.h"

namespace providers {

enum class NativeAction {
  forward,  // relay the event under `name`
  stop,     // the answer is complete; this event is withheld (the gateway sends its end after accounting)
  error,    // an error event, or an event that is not a JSON object; `error` is set
};

struct NativeStep {
  NativeAction action = NativeAction::forward;
  std::string_view name;   // the event's type (its data's "type", else the SSE event name)
  bool content = false;    // reaching the client commits the attempt (no fail-over after it)
  bool keepalive = false;  // proves the socket lives, not that the answer progresses
  int64_t est_tokens = 0;  // output tokens the event carries, estimated from its text
  std::optional<core::Error> error;
};

}  // namespace providers
