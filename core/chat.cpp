#include "core/chat.h"

namespace core {

int64_t estimate_prompt_tokens(const ChatRequest& req) {
  // A CJK code point is 3 UTF-8 bytes and about 1 token in Qwen/DeepSeek vocabularies.
  int64_t other_bytes = req.prompt_bytes - 3 * req.prompt_cjk_chars;
  if (other_bytes < 0) other_bytes = 0;
  return req.prompt_cjk_chars + (other_bytes + 3) / 4 + 4 * static_cast<int64_t>(req.messages.size()) + 3;
}

}  // namespace core
