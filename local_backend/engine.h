#pragma once
// The embedded local inference engine: a GGUF MoE model served by its own scheduler thread and
// thread pool, with a bounded queue and continuous batching of decode steps.
// No Boost, no HTTP in local_backend.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/chat.h"
#include "core/error.h"
#include "core/result.h"
#include "local_backend/kv_cache.h"
#include "local_backend/prefix_cache.h"

namespace local_backend {

struct SamplingParams {
  float temperature = 1.0f;  // <= 0: greedy
  int top_k = 0;             // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  uint64_t seed = 0;
  bool has_seed = false;
  float repeat_penalty = 1.0f;  // 1: off; applied to the last 64 tokens (prompt included)
};

struct GenerateRequest {
  std::vector<core::ChatMessage> messages;
  // The prompt already tokenized (Engine::tokenize_prompt, e.g. on another thread); when set,
  // `messages` is not read.
  std::optional<std::vector<int32_t>> prompt_tokens;
  SamplingParams sampling;
  int max_tokens = 256;
  std::vector<std::string> stop;
  bool ignore_eos = false;  // keep generating past end-of-turn tokens (benchmarks, tests)
  // Called once on an engine thread with the logits the first token is sampled from (tests).
  std::function<void(std::span<const float>)> on_first_logits;
};

struct GenerateEvent {            // delivered on an engine thread, in order
  std::string text;               // newly decoded text (UTF-8 complete; may be empty)
  bool done = false;              // last event
  std::string finish_reason;      // "stop" | "length" | "cancelled" | "error" when done
  int prompt_tokens = 0, completion_tokens = 0;
  int cached_tokens = 0;          // prompt tokens whose KV came from the prefix cache
  std::optional<core::Error> error;   // set when done with finish_reason "error"
};

struct EngineConfig {
  std::string model_path;
  int threads = 0 /*0 = hardware*/;
  int max_queue = 64;    // waiting + running generations
  int max_batch = 8;     // generations decoded together per step
  int max_context = 4096;  // tokens per sequence (prompt + completion), also capped by the model
  int prefill_chunk = 256; // prompt tokens per step, shared by sequences being prefilled
  KvType kv_type = KvType::f16;  // element type of the KV cache (Q8_0 needs head_dim % 32 == 0)
  size_t prefix_cache_bytes = size_t{256} << 20;  // KV kept of finished sequences for reuse; 0 = off
};

class Generation {
 public:
  virtual ~Generation() = default;
  virtual void cancel() = 0;
};

class Engine {
 public:
  // Loads the model (clear error on a corrupt or mismatched file) and starts the engine threads.
  static core::Result<std::unique_ptr<Engine>> create(const EngineConfig&);

  // Enqueue; fails fast with ErrorKind::overloaded when the queue is full. on_event is called on
  // engine threads; returning false from it cancels the generation (a final done event with
  // finish_reason "cancelled" follows). After the done event, on_event is never called again.
  virtual core::Result<std::shared_ptr<Generation>> submit(GenerateRequest req,
                                                           std::function<bool(const GenerateEvent&)> on_event) = 0;
  virtual size_t queue_depth() const = 0;            // waiting + running
  virtual double decode_tokens_per_second() const = 0;  // recent EWMA
  virtual std::string model_name() const = 0;
  virtual ~Engine() = default;

  // Extras beyond the provider contract.
  virtual int context_size() const = 0;
  virtual int threads() const = 0;
  virtual KvType kv_type() const = 0;
  virtual size_t kv_bytes_per_token() const = 0;  // K and V over all layers
  virtual size_t repacked_weight_bytes() const = 0;  // weights repacked for this CPU's kernels (0: none)
  virtual PrefixCacheStats prefix_cache_stats() const = 0;  // consistent snapshot, any thread
  // Number of prompt tokens the request would use (chat template applied), or an error.
  virtual core::Result<int> count_prompt_tokens(const std::vector<core::ChatMessage>& messages) const = 0;
  // The prompt's tokens (chat template applied): what submit() would compute. Thread-safe and
  // independent of the engine's threads, so a caller can run it where it does not block I/O.
  virtual core::Result<std::vector<int32_t>> tokenize_prompt(const std::vector<core::ChatMessage>& messages) const = 0;
};

}  // namespace local_backend
