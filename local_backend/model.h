#pragma once
// A loaded MoE transformer: weights bound to mmap views with their expected shapes and a
// batched forward pass over sequences that each own a KvCache (tokens of several sequences at once).
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "local_backend/arch.h"
#include "local_backend/gguf.h"
#include "local_backend/kv_cache.h"
#include "local_backend/thread_pool.h"
#include "local_backend/weight.h"

namespace local_backend {

struct LayerWeights {
  std::vector<float> attn_norm, q_norm, k_norm, bq, bk, bv, ffn_norm, gate_inp_shexp;
  Weight wq, wk, wv, wo;
  Weight gate_inp, gate_exps, up_exps, down_exps;
  Weight gate_shexp, up_shexp, down_shexp;
};

struct BatchEntry {
  int32_t token = 0;
  int32_t pos = 0;
  KvCache* cache = nullptr;
  bool want_logits = false;
};

class Model {
 public:
  static core::Result<std::unique_ptr<Model>> load(const std::string& path);
  static core::Result<std::unique_ptr<Model>> from_file(std::unique_ptr<gguf::File> file);

  const HParams& hparams() const { return hp_; }
  const gguf::File& file() const { return *file_; }
  std::string name() const;
  size_t repacked_bytes() const { return packed_.bytes(); }  // weights repacked at load (0: none)

  // Runs one step over the batch. Every entry's cache must have room for its pos; the
  // positions of one sequence must be consecutive after what the cache already holds.
  // Appends n_vocab logits per entry with want_logits, in batch order.
  core::Status forward(std::span<const BatchEntry> batch, ThreadPool& pool, std::vector<float>* logits) const;

 private:
  Model() = default;
  core::Status bind();
  void pack_matrices();

  std::unique_ptr<gguf::File> file_;
  HParams hp_;
  Weight tok_embd_, output_;
  PackedWeights packed_;  // repacked copies of the matrices (before the views that point into it go)
  std::vector<float> output_norm_;
  std::vector<LayerWeights> layers_;
};

}  // namespace local_backend
