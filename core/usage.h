#pragma once
// Token usage as the provider billed it, normalised across dialects.
#include <cstdint>

namespace core {

struct Usage {
  int64_t prompt_tokens = 0;       // all input tokens, cached included
  int64_t cached_tokens = 0;       // input tokens served from the provider's prompt cache
  int64_t cache_write_tokens = 0;  // input tokens written to an explicit cache (billed extra)
  int64_t completion_tokens = 0;   // all output tokens, reasoning included
  int64_t reasoning_tokens = 0;    // output tokens spent on reasoning
  bool present = false;            // the upstream actually reported usage
  bool malformed = false;          // a count was negative, fractional, too large or not a number
                                   // (read as 0): the report must not be priced

  int64_t total_tokens() const { return prompt_tokens + completion_tokens; }
  int64_t uncached_prompt_tokens() const {
    int64_t n = prompt_tokens - cached_tokens - cache_write_tokens;
    return n > 0 ? n : 0;
  }
};

}  // namespace core
