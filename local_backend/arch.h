#pragma once
// Architectures as data: metadata key names, tensor names and expected shapes per architecture,
// exactly as they appear in published GGUF files (llama.cpp conventions).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "local_backend/gguf.h"

namespace local_backend {

enum class Arch { qwen3moe, qwen2moe, llama };
enum class RopeStyle { normal, neox };  // normal: pairs (2i, 2i+1); neox: pairs (i, i + d/2)

struct ArchInfo {
  Arch arch;
  const char* name;          // general.architecture
  RopeStyle rope;
  bool qk_norm;              // per-head RMSNorm of q and k before RoPE (qwen3)
  bool qkv_bias;             // attn_{q,k,v}.bias present (qwen2)
  bool shared_expert;        // gated shared expert (qwen2moe)
  bool norm_topk_weights;    // renormalise the selected experts' probabilities
  const char* expert_ff_key; // key holding the per-expert FFN width
};

const ArchInfo* find_arch(std::string_view name);
const std::vector<ArchInfo>& all_archs();

// Plain, trivially copyable hyper-parameters.
struct HParams {
  Arch arch = Arch::qwen3moe;
  RopeStyle rope = RopeStyle::neox;
  bool qk_norm = false, qkv_bias = false, shared_expert = false, norm_topk_weights = true;
  int32_t n_vocab = 0;
  int32_t n_ctx_train = 0;
  int32_t n_embd = 0;
  int32_t n_layer = 0;
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
  int32_t n_expert = 0;
  int32_t n_expert_used = 0;
  int32_t n_ff_exp = 0;
  int32_t n_ff_shexp = 0;
  float rms_eps = 1e-6f;
  float rope_base = 10000.0f;
};

// Reads and validates hyper-parameters (n_vocab from the token_embd tensor).
core::Result<HParams> read_hparams(const gguf::File& f);

// Metadata key for an architecture: key(info, "embedding_length") = "qwen3moe.embedding_length".
std::string arch_key(const ArchInfo& a, std::string_view suffix);

// What a tensor is for, and its expected shape (ggml ne order) as a function of hparams.
enum class Dim { embd, q, kv, head_dim, vocab, expert, ff_exp, ff_shexp };
struct TensorSpec {
  const char* name;       // "blk.%d.attn_q.weight" style; %d is the layer index
  std::vector<Dim> shape; // ne order
  bool per_layer;
  bool required;
  // Which architectures use it (bit per Arch).
  uint32_t arch_mask;
};
const std::vector<TensorSpec>& tensor_specs();
int64_t dim_value(Dim d, const HParams& hp);
inline uint32_t arch_bit(Arch a) { return 1u << static_cast<uint32_t>(a); }

}  // namespace local_backend
