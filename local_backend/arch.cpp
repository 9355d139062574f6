#include "local_backend/arch.h"

#include <cmath>

namespace local_backend {
namespace {

core::Error arch_error(std::string msg) {
  return core::make_error(core::ErrorKind::internal, "model: " + std::move(msg), core::ErrorSource::local,
                          "model_invalid");
}

constexpr uint32_t kQwen3 = 1u << static_cast<uint32_t>(Arch::qwen3moe);
constexpr uint32_t kQwen2 = 1u << static_cast<uint32_t>(Arch::qwen2moe);
constexpr uint32_t kLlama = 1u << static_cast<uint32_t>(Arch::llama);
constexpr uint32_t kAll = kQwen3 | kQwen2 | kLlama;

}  // namespace

const std::vector<ArchInfo>& all_archs() {
  // qwen2moe: llama.cpp builds its MoE with norm_w = false (the probabilities of the selected
  // experts are used as is); qwen3moe and Mixtral renormalise the top-k.
  static const std::vector<ArchInfo> archs = {
      {Arch::qwen3moe, "qwen3moe", RopeStyle::neox, true, false, false, true, "expert_feed_forward_length"},
      {Arch::qwen2moe, "qwen2moe", RopeStyle::neox, false, true, true, false, "expert_feed_forward_length"},
      {Arch::llama, "llama", RopeStyle::normal, false, false, false, true, "feed_forward_length"},
  };
  return archs;
}

const ArchInfo* find_arch(std::string_view name) {
  for (const auto& a : all_archs())
    if (name == a.name) return &a;
  return nullptr;
}

std::string arch_key(const ArchInfo& a, std::string_view suffix) {
  return std::string(a.name) + "." + std::string(suffix);
}

const std::vector<TensorSpec>& tensor_specs() {
  using D = Dim;
  static const std::vector<TensorSpec> specs = {
      {"token_embd.weight", {D::embd, D::vocab}, false, true, kAll},
      {"output_norm.weight", {D::embd}, false, true, kAll},
      {"output.weight", {D::embd, D::vocab}, false, false, kAll},  // absent: tied to token_embd
      {"blk.%d.attn_norm.weight", {D::embd}, true, true, kAll},
      {"blk.%d.attn_q.weight", {D::embd, D::q}, true, true, kAll},
      {"blk.%d.attn_k.weight", {D::embd, D::kv}, true, true, kAll},
      {"blk.%d.attn_v.weight", {D::embd, D::kv}, true, true, kAll},
      {"blk.%d.attn_output.weight", {D::q, D::embd}, true, true, kAll},
      {"blk.%d.attn_q.bias", {D::q}, true, true, kQwen2},
      {"blk.%d.attn_k.bias", {D::kv}, true, true, kQwen2},
      {"blk.%d.attn_v.bias", {D::kv}, true, true, kQwen2},
      {"blk.%d.attn_q_norm.weight", {D::head_dim}, true, true, kQwen3},
      {"blk.%d.attn_k_norm.weight", {D::head_dim}, true, true, kQwen3},
      {"blk.%d.ffn_norm.weight", {D::embd}, true, true, kAll},
      {"blk.%d.ffn_gate_inp.weight", {D::embd, D::expert}, true, true, kAll},
      {"blk.%d.ffn_gate_exps.weight", {D::embd, D::ff_exp, D::expert}, true, true, kAll},
      {"blk.%d.ffn_up_exps.weight", {D::embd, D::ff_exp, D::expert}, true, true, kAll},
      {"blk.%d.ffn_down_exps.weight", {D::ff_exp, D::embd, D::expert}, true, true, kAll},
      {"blk.%d.ffn_gate_inp_shexp.weight", {D::embd}, true, true, kQwen2},
      {"blk.%d.ffn_gate_shexp.weight", {D::embd, D::ff_shexp}, true, true, kQwen2},
      {"blk.%d.ffn_up_shexp.weight", {D::embd, D::ff_shexp}, true, true, kQwen2},
      {"blk.%d.ffn_down_shexp.weight", {D::ff_shexp, D::embd}, true, true, kQwen2},
  };
  return specs;
}

int64_t dim_value(Dim d, const HParams& hp) {
  switch (d) {
    case Dim::embd: return hp.n_embd;
    case Dim::q: return static_cast<int64_t>(hp.n_head) * hp.head_dim;
    case Dim::kv: return static_cast<int64_t>(hp.n_head_kv) * hp.head_dim;
    case Dim::head_dim: return hp.head_dim;
    case Dim::vocab: return hp.n_vocab;
    case Dim::expert: return hp.n_expert;
    case Dim::ff_exp: return hp.n_ff_exp;
    case Dim::ff_shexp: return hp.n_ff_shexp;
  }
  return 0;
}

namespace {

// A head count may be a scalar or a per-layer array; per-layer variation is not supported.
core::Result<uint32_t> read_head_count(const gguf::File& f, const std::string& key, bool required,
                                       uint32_t fallback) {
  const gguf::Value* v = f.find(key);
  if (!v) {
    if (required) return arch_error("missing required key '" + key + "'");
    return fallback;
  }
  if (v->type == gguf::ValueType::array) {
    if (v->count == 0 || !v->array_data) return arch_error("key '" + key + "' is an empty or non-numeric array");
    const int64_t first = v->array_int(0);
    for (uint64_t i = 1; i < v->count; ++i)
      if (v->array_int(i) != first) return arch_error("key '" + key + "': per-layer head counts are not supported");
    if (first <= 0 || first > 4096) return arch_error("key '" + key + "' out of range");
    return static_cast<uint32_t>(first);
  }
  return f.get_u32(key);
}

core::Result<uint32_t> optional_u32(const gguf::File& f, const std::string& key, uint32_t fallback) {
  if (!f.find(key)) return fallback;
  return f.get_u32(key);
}

}  // namespace

core::Result<HParams> read_hparams(const gguf::File& f) {
  auto arch_name = f.get_string("general.architecture");
  if (!arch_name.ok()) return arch_name.error();
  const ArchInfo* a = find_arch(*arch_name);
  if (!a) {
    std::string known;
    for (const auto& x : all_archs()) known += std::string(known.empty() ? "" : ", ") + x.name;
    return arch_error("unsupported architecture '" + std::string(*arch_name) + "' (supported: " + known + ")");
  }
  HParams hp;
  hp.arch = a->arch;
  hp.rope = a->rope;
  hp.qk_norm = a->qk_norm;
  hp.qkv_bias = a->qkv_bias;
  hp.shared_expert = a->shared_expert;
  hp.norm_topk_weights = a->norm_topk_weights;

#define LB_GET(var, expr)              \
  do {                                 \
    auto r_ = (expr);                  \
    if (!r_.ok()) return r_.error();   \
    var = *r_;                         \
  } while (0)

  uint32_t u = 0;
  LB_GET(u, f.get_u32(arch_key(*a, "context_length")));
  hp.n_ctx_train = static_cast<int32_t>(u);
  LB_GET(u, f.get_u32(arch_key(*a, "embedding_length")));
  hp.n_embd = static_cast<int32_t>(u);
  LB_GET(u, f.get_u32(arch_key(*a, "block_count")));
  hp.n_layer = static_cast<int32_t>(u);
  LB_GET(u, read_head_count(f, arch_key(*a, "attention.head_count"), true, 0));
  hp.n_head = static_cast<int32_t>(u);
  LB_GET(u, read_head_count(f, arch_key(*a, "attention.head_count_kv"), false, static_cast<uint32_t>(hp.n_head)));
  hp.n_head_kv = static_cast<int32_t>(u);
  if (hp.n_embd <= 0 || hp.n_embd > 65536) return arch_error("embedding_length out of range");
  if (hp.n_layer <= 0 || hp.n_layer > 1024) return arch_error("block_count out of range");
  if (hp.n_head <= 0 || hp.n_head_kv <= 0 || hp.n_head % hp.n_head_kv != 0) {
    return arch_error("head_count " + std::to_string(hp.n_head) + " is not a multiple of head_count_kv " +
                      std::to_string(hp.n_head_kv));
  }
  uint32_t kl = 0, vl = 0;
  LB_GET(kl, optional_u32(f, arch_key(*a, "attention.key_length"), static_cast<uint32_t>(hp.n_embd / hp.n_head)));
  LB_GET(vl, optional_u32(f, arch_key(*a, "attention.value_length"), kl));
  if (kl != vl) return arch_error("attention.key_length != attention.value_length is not supported");
  if (kl == 0 || kl % 2 != 0 || kl > 1024) return arch_error("head dimension " + std::to_string(kl) + " invalid");
  hp.head_dim = static_cast<int32_t>(kl);
  uint32_t n_rot = 0;
  LB_GET(n_rot, optional_u32(f, arch_key(*a, "rope.dimension_count"), kl));
  if (n_rot != kl) return arch_error("rope.dimension_count " + std::to_string(n_rot) + " != head dimension (partial RoPE is not supported)");
  if (const gguf::Value* sc = f.find(arch_key(*a, "rope.scaling.type"))) {
    if (sc->type != gguf::ValueType::string || (sc->str != "none" && sc->str != "linear")) {
      return arch_error("rope scaling type is not supported");
    }
  }

  LB_GET(u, optional_u32(f, arch_key(*a, "expert_count"), 0));
  hp.n_expert = static_cast<int32_t>(u);
  LB_GET(u, optional_u32(f, arch_key(*a, "expert_used_count"), 0));
  hp.n_expert_used = static_cast<int32_t>(u);
  if (hp.n_expert <= 0 || hp.n_expert > 512) {
    return arch_error(std::string("expert_count must be in 1..512 (dense models are not supported), found ") +
                      std::to_string(hp.n_expert));
  }
  if (hp.n_expert_used <= 0 || hp.n_expert_used > hp.n_expert) {
    return arch_error("expert_used_count " + std::to_string(hp.n_expert_used) + " must be in 1..expert_count");
  }
  // n_ff_exp: the arch's key; qwen families fall back to feed_forward_length / n_expert_used.
  const std::string ff_key = arch_key(*a, a->expert_ff_key);
  if (f.find(ff_key)) {
    LB_GET(u, f.get_u32(ff_key));
  } else if (f.find(arch_key(*a, "feed_forward_length"))) {
    LB_GET(u, f.get_u32(arch_key(*a, "feed_forward_length")));
    u /= static_cast<uint32_t>(hp.n_expert_used);
  } else {
    return arch_error("missing required key '" + ff_key + "'");
  }
  hp.n_ff_exp = static_cast<int32_t>(u);
  if (hp.n_ff_exp <= 0 || hp.n_ff_exp > 1 << 20) return arch_error("expert feed-forward length out of range");
  if (a->shared_expert) {
    LB_GET(u, f.get_u32(arch_key(*a, "expert_shared_feed_forward_length")));
    hp.n_ff_shexp = static_cast<int32_t>(u);
    if (hp.n_ff_shexp <= 0 || hp.n_ff_shexp > 1 << 20) return arch_error("shared expert length out of range");
  }
  float eps = 0;
  LB_GET(eps, f.get_f32(arch_key(*a, "attention.layer_norm_rms_epsilon")));
  if (!(eps > 0 && eps < 1)) return arch_error("layer_norm_rms_epsilon out of range");
  hp.rms_eps = eps;
  if (f.find(arch_key(*a, "rope.freq_base"))) {
    LB_GET(hp.rope_base, f.get_f32(arch_key(*a, "rope.freq_base")));
    if (!(hp.rope_base > 1 && std::isfinite(hp.rope_base))) return arch_error("rope.freq_base out of range");
  }
#undef LB_GET
  const gguf::TensorInfo* emb = f.find_tensor("token_embd.weight");
  if (!emb) return arch_error("missing tensor 'token_embd.weight'");
  if (emb->n_dims != 2 || emb->ne[0] != hp.n_embd) {
    return arch_error("tensor 'token_embd.weight' has shape " + emb->shape_string() + ", expected [" +
                      std::to_string(hp.n_embd) + ", n_vocab]");
  }
  hp.n_vocab = static_cast<int32_t>(emb->ne[1]);
  return hp;
}

}  // namespace local_backend
