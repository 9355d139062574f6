#include "local_backend/model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "local_backend/attention.h"
#include "local_backend/quants.h"

namespace local_backend {
namespace {

core::Error model_error(std::string msg) {
  return core::make_error(core::ErrorKind::internal, "model: " + std::move(msg), core::ErrorSource::local,
                          "model_invalid");
}

std::string layer_name(const char* pattern, int layer) {
  char buf[128];
  std::snprintf(buf, sizeof buf, pattern, layer);
  return buf;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// ------------------------------------------------------------------ numeric helpers

void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double sum = 0;  // ggml accumulates the sum of squares in double as well
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

// One product y[i] = W[mat] . act(i) for a list of activation rows, as a parallel job.
struct MatJob {
  const Weight* w = nullptr;
  int64_t mat = 0;
  const uint8_t* act = nullptr;  // prepared activation rows
  size_t act_stride = 0;         // bytes between activation rows
  const int32_t* act_index = nullptr;  // optional: activation row of output row i
  int n_tok = 0;
  float* out = nullptr;          // out[i * out_stride + r]
  int64_t out_stride = 0;
};

const void* job_act(const MatJob& j, int i) {
  const size_t ai = j.act_index ? static_cast<size_t>(j.act_index[i]) : static_cast<size_t>(i);
  return j.act + ai * j.act_stride;
}

// Rows r0..r1 of a job times tokens i0.. of it: four tokens per weight-row load where there is
// a kernel for it, then one at a time.
void run_rows(const MatJob& j, int64_t r0, int64_t r1, int i0) {
  const VecDotFn dot = vec_dot_fn(j.w->type);
  const VecDot4Fn dot4 = j.n_tok - i0 >= 4 ? vec_dot4_fn(j.w->type) : nullptr;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* wrow = j.w->row(j.mat, r);
    int i = i0;
    if (dot4) {
      for (; i + 4 <= j.n_tok; i += 4) {
        const void* a4[4] = {job_act(j, i), job_act(j, i + 1), job_act(j, i + 2), job_act(j, i + 3)};
        float o4[4];
        dot4(j.w->cols, wrow, a4, o4);
        for (int k = 0; k < 4; ++k) j.out[static_cast<int64_t>(i + k) * j.out_stride + r] = o4[k];
      }
    }
    for (; i < j.n_tok; ++i) j.out[static_cast<int64_t>(i) * j.out_stride + r] = dot(j.w->cols, wrow, job_act(j, i));
  }
}

// Rows r0..r1 times groups of eight tokens with the AVX-512 kernel: the group's activations stay
// in L1 while the chunk's weight rows (a few KiB each) stream from L2. Returns the first token
// left over.
int run_rows8(const MatJob& j, int64_t r0, int64_t r1) {
  const VecDot8Fn dot8 = j.n_tok >= 8 ? vec_dot8_fn(j.w->type) : nullptr;
  if (!dot8) return 0;
  int i = 0;
  for (; i + 8 <= j.n_tok; i += 8) {
    const void* a8[8];
    for (int k = 0; k < 8; ++k) a8[k] = job_act(j, i + k);
    for (int64_t r = r0; r < r1; ++r) {
      float o8[8];
      dot8(j.w->cols, j.w->row(j.mat, r), a8, o8);
      for (int k = 0; k < 8; ++k) j.out[static_cast<int64_t>(i + k) * j.out_stride + r] = o8[k];
    }
  }
  return i;
}

// Rows r0..r1 (r0 a multiple of 16) of a job on repacked weights: tiles of up to eight tokens, each
// 16-row group multiplied with the whole tile while the tile's activations stay in L1.
void run_groups(const MatJob& j, int64_t r0, int64_t r1) {
  const Weight& w = *j.w;
  float tile[kPackMaxTokens][kPackRows];
  for (int i = 0; i < j.n_tok; i += kPackMaxTokens) {
    const int n = std::min(kPackMaxTokens, j.n_tok - i);
    const void* act[kPackMaxTokens];
    for (int k = 0; k < n; ++k) act[k] = job_act(j, i + k);
    for (int64_t r = r0; r < r1; r += kPackRows) {
      w.gemm(w.cols, w.group(j.mat, r / kPackRows), n, act, tile);
      const size_t valid = static_cast<size_t>(std::min<int64_t>(kPackRows, r1 - r));
      for (int k = 0; k < n; ++k) std::memcpy(&j.out[static_cast<int64_t>(i + k) * j.out_stride + r], tile[k], valid * sizeof(float));
    }
  }
}

// Splits all jobs into chunks of rows and runs them on the pool. A weight row is multiplied
// with every token's activation while it is hot in cache.
void run_jobs(const std::vector<MatJob>& jobs, ThreadPool& pool) {
  if (jobs.empty()) return;
  int64_t total_rows = 0;
  for (const auto& j : jobs) total_rows += j.w->rows;
  const int64_t target_chunks = static_cast<int64_t>(pool.size()) * 8;
  int64_t chunk = std::max<int64_t>(4, total_rows / std::max<int64_t>(1, target_chunks));
  chunk = (chunk + kPackRows - 1) & ~int64_t{kPackRows - 1};  // whole groups of repacked rows
  std::vector<int64_t> first_chunk(jobs.size() + 1, 0);
  for (size_t i = 0; i < jobs.size(); ++i) first_chunk[i + 1] = first_chunk[i] + (jobs[i].w->rows + chunk - 1) / chunk;
  pool.run(first_chunk.back(), [&](int64_t task, int) {
    const size_t ji = static_cast<size_t>(std::upper_bound(first_chunk.begin(), first_chunk.end(), task) - first_chunk.begin() - 1);
    const MatJob& j = jobs[ji];
    const int64_t r0 = (task - first_chunk[ji]) * chunk;
    const int64_t r1 = std::min(j.w->rows, r0 + chunk);
    if (j.w->packed) {
      run_groups(j, r0, r1);
    } else {
      run_rows(j, r0, r1, run_rows8(j, r0, r1));
    }
  });
}

// Activation rows prepared for a weight type (quantised to Q8_0/Q8_K or copied as F32).
struct Prepared {
  std::vector<uint8_t> buf;
  size_t stride = 0;
};

void prepare_rows(const float* x, int n, int64_t cols, int64_t x_stride, ActFormat f, Prepared* p, ThreadPool& pool) {
  p->stride = act_format_row_bytes(f, cols);
  p->buf.resize(p->stride * static_cast<size_t>(n));
  if (n >= 4) {
    pool.run(n, [&](int64_t i, int) { prepare_activation_as(f, x + i * x_stride, cols, p->buf.data() + static_cast<size_t>(i) * p->stride); });
  } else {
    for (int i = 0; i < n; ++i) prepare_activation_as(f, x + i * x_stride, cols, p->buf.data() + static_cast<size_t>(i) * p->stride);
  }
}

void apply_rope(float* v, int n_heads, int hd, const float* cs, const float* sn, RopeStyle style) {
  const int half = hd / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* x = v + static_cast<size_t>(h) * hd;
    for (int i = 0; i < half; ++i) {
      const int a = style == RopeStyle::neox ? i : 2 * i;
      const int b = style == RopeStyle::neox ? i + half : 2 * i + 1;
      const float x0 = x[a], x1 = x[b];
      x[a] = x0 * cs[i] - x1 * sn[i];
      x[b] = x0 * sn[i] + x1 * cs[i];
    }
  }
}

}  // namespace

// ------------------------------------------------------------------ loading

core::Result<std::unique_ptr<Model>> Model::load(const std::string& path) {
  auto f = gguf::File::open(path);
  if (!f.ok()) return f.error();
  auto m = from_file(std::move(*f));
  if (!m.ok()) {
    core::Error e = m.error();
    e.message += " (file '" + path + "')";
    return e;
  }
  return m;
}

core::Result<std::unique_ptr<Model>> Model::from_file(std::unique_ptr<gguf::File> file) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::move(file);
  auto hp = read_hparams(*m->file_);
  if (!hp.ok()) return hp.error();
  m->hp_ = *hp;
  auto st = m->bind();
  if (!st.ok()) return st.error();
  return m;
}

std::string Model::name() const {
  if (const gguf::Value* v = file_->find("general.name"); v && v->type == gguf::ValueType::string && !v->str.empty()) {
    return std::string(v->str);
  }
  for (const auto& a : all_archs())
    if (a.arch == hp_.arch) return a.name;
  return "unknown";
}

core::Status Model::bind() {
  const uint32_t bit = arch_bit(hp_.arch);
  std::unordered_map<std::string, const gguf::TensorInfo*> bound;
  for (const TensorSpec& spec : tensor_specs()) {
    if (!(spec.arch_mask & bit)) continue;
    const int n = spec.per_layer ? hp_.n_layer : 1;
    std::vector<int64_t> want;
    for (Dim d : spec.shape) want.push_back(dim_value(d, hp_));
    for (int l = 0; l < n; ++l) {
      const std::string name = spec.per_layer ? layer_name(spec.name, l) : spec.name;
      const gguf::TensorInfo* t = file_->find_tensor(name);
      if (!t) {
        if (spec.required) return model_error("missing tensor '" + name + "' (expected " + shape_str(want) + ")");
        continue;
      }
      bool ok = t->n_dims <= static_cast<int>(want.size());
      for (size_t d = 0; ok && d < gguf::kMaxDims; ++d) ok = t->ne[d] == (d < want.size() ? want[d] : 1);
      if (!ok) {
        return model_error("tensor '" + name + "' has shape " + t->shape_string() + ", expected " + shape_str(want));
      }
      if (!type_traits(t->type).supported) {
        return model_error("tensor '" + name + "' has type " + type_name(t->type) +
                           ", which this engine does not support (F32, F16, BF16, Q8_0, Q4_K, Q5_K, Q6_K)");
      }
      bound[name] = t;
    }
  }
  auto weight = [&](const std::string& name) {
    Weight w;
    auto it = bound.find(name);
    if (it == bound.end()) return w;
    const gguf::TensorInfo* t = it->second;
    w.data = t->data;
    w.type = t->type;
    w.cols = t->ne[0];
    w.rows = t->ne[1];
    w.n_mat = t->ne[2];
    w.row_bytes = row_size(t->type, t->ne[0]);
    w.act = act_format_for(t->type);
    return w;
  };
  auto vec = [&](const std::string& name) {
    std::vector<float> v;
    auto it = bound.find(name);
    if (it == bound.end()) return v;
    v.resize(static_cast<size_t>(it->second->n_elements()));
    dequantize_row(it->second->type, it->second->data, v.data(), it->second->n_elements());
    return v;
  };
  tok_embd_ = weight("token_embd.weight");
  output_ = weight("output.weight");
  if (!output_) output_ = tok_embd_;  // tied embeddings
  output_norm_ = vec("output_norm.weight");
  layers_.resize(static_cast<size_t>(hp_.n_layer));
  for (int l = 0; l < hp_.n_layer; ++l) {
    auto nm = [l](const char* p) { return layer_name(p, l); };
    LayerWeights& L = layers_[static_cast<size_t>(l)];
    L.attn_norm = vec(nm("blk.%d.attn_norm.weight"));
    L.q_norm = vec(nm("blk.%d.attn_q_norm.weight"));
    L.k_norm = vec(nm("blk.%d.attn_k_norm.weight"));
    L.bq = vec(nm("blk.%d.attn_q.bias"));
    L.bk = vec(nm("blk.%d.attn_k.bias"));
    L.bv = vec(nm("blk.%d.attn_v.bias"));
    L.ffn_norm = vec(nm("blk.%d.ffn_norm.weight"));
    L.gate_inp_shexp = vec(nm("blk.%d.ffn_gate_inp_shexp.weight"));
    L.wq = weight(nm("blk.%d.attn_q.weight"));
    L.wk = weight(nm("blk.%d.attn_k.weight"));
    L.wv = weight(nm("blk.%d.attn_v.weight"));
    L.wo = weight(nm("blk.%d.attn_output.weight"));
    L.gate_inp = weight(nm("blk.%d.ffn_gate_inp.weight"));
    L.gate_exps = weight(nm("blk.%d.ffn_gate_exps.weight"));
    L.up_exps = weight(nm("blk.%d.ffn_up_exps.weight"));
    L.down_exps = weight(nm("blk.%d.ffn_down_exps.weight"));
    L.gate_shexp = weight(nm("blk.%d.ffn_gate_shexp.weight"));
    L.up_shexp = weight(nm("blk.%d.ffn_up_shexp.weight"));
    L.down_shexp = weight(nm("blk.%d.ffn_down_shexp.weight"));
  }
  pack_matrices();
  if (const gguf::Value* toks = file_->find("tokenizer.ggml.tokens")) {
    if (toks->type == gguf::ValueType::array && toks->strings.size() != static_cast<size_t>(hp_.n_vocab)) {
      return model_error("tokenizer.ggml.tokens has " + std::to_string(toks->strings.size()) +
                         " entries but token_embd.weight has " + std::to_string(hp_.n_vocab) + " rows");
    }
  }
  return core::ok_status();
}

// Every weight the forward pass multiplies, repacked where this CPU has matrix kernels for it. The
// token embedding is read by rows and keeps the file's layout (a tied output gets its own copy).
void Model::pack_matrices() {
  packed_.pack(output_, /*keep_rows=*/output_.data == tok_embd_.data);
  for (LayerWeights& L : layers_)
    for (Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate_inp, &L.gate_exps, &L.up_exps, &L.down_exps, &L.gate_shexp,
                      &L.up_shexp, &L.down_shexp})
      packed_.pack(*w);
}

// ------------------------------------------------------------------ forward

core::Status Model::forward(std::span<const BatchEntry> batch, ThreadPool& pool, std::vector<float>* logits) const {
  const int T = static_cast<int>(batch.size());
  if (T == 0) return core::ok_status();
  const int64_t E = hp_.n_embd, HD = hp_.head_dim, NH = hp_.n_head, NKV = hp_.n_head_kv;
  const int64_t QD = NH * HD, KVD = NKV * HD;
  const int64_t F = hp_.n_ff_exp, NE = hp_.n_expert, K = hp_.n_expert_used;
  for (const auto& b : batch) {
    if (b.token < 0 || b.token >= hp_.n_vocab) return model_error("token id " + std::to_string(b.token) + " out of range");
    if (b.cache && !kv_type_fits(b.cache->type(), hp_)) {
      return model_error(std::string("KV cache type ") + kv_type_name(b.cache->type()) + " needs head_dim to be a multiple of 32");
    }
    if (!b.cache || b.pos < 0 || !b.cache->reserve(b.pos + 1)) {
      return core::make_error(core::ErrorKind::context_too_long, "position " + std::to_string(b.pos) +
                              " exceeds the sequence's context bound", core::ErrorSource::local);
    }
  }

  std::vector<float> x(static_cast<size_t>(T * E)), h(static_cast<size_t>(T * E));
  for (int t = 0; t < T; ++t) dequantize_row(tok_embd_.type, tok_embd_.row(0, batch[t].token), &x[t * E], E);

  // RoPE angles per token, computed in f32 like ggml: theta_i = pos * base^(-2i/d).
  std::vector<float> rope_cos(static_cast<size_t>(T * HD / 2)), rope_sin(static_cast<size_t>(T * HD / 2));
  const float theta_scale = std::pow(hp_.rope_base, -2.0f / static_cast<float>(HD));
  for (int t = 0; t < T; ++t) {
    float theta = static_cast<float>(batch[t].pos);
    for (int64_t i = 0; i < HD / 2; ++i) {
      rope_cos[t * HD / 2 + i] = std::cos(theta);
      rope_sin[t * HD / 2 + i] = std::sin(theta);
      theta *= theta_scale;
    }
  }

  std::vector<float> q(static_cast<size_t>(T * QD)), k(static_cast<size_t>(T * KVD)), v(static_cast<size_t>(T * KVD));
  std::vector<float> attn(static_cast<size_t>(T * QD)), o(static_cast<size_t>(T * E));
  std::vector<float> router(static_cast<size_t>(T * NE));
  std::vector<int32_t> sel(static_cast<size_t>(T * K));
  std::vector<float> sel_w(static_cast<size_t>(T * K));
  Prepared pa, pb, pc;
  std::vector<MatJob> jobs;
  const AttnShape attn_shape{NH, NKV, HD};
  std::vector<AttnToken> attn_toks;
  for (const auto& b : batch) attn_toks.push_back({b.cache, b.pos});

  auto job = [](const Weight& w, int64_t mat, const Prepared& p, int n, float* out, int64_t out_stride,
                const int32_t* index = nullptr) {
    MatJob j;
    j.w = &w;
    j.mat = mat;
    j.act = p.buf.data();
    j.act_stride = p.stride;
    j.act_index = index;
    j.n_tok = n;
    j.out = out;
    j.out_stride = out_stride;
    return j;
  };

  for (int il = 0; il < hp_.n_layer; ++il) {
    const LayerWeights& L = layers_[static_cast<size_t>(il)];
    // ---- attention
    for (int t = 0; t < T; ++t) rmsnorm(&x[t * E], L.attn_norm.data(), &h[t * E], E, hp_.rms_eps);  // [E, T]
    prepare_rows(h.data(), T, E, E, L.wq.act, &pa, pool);
    const Prepared* pk = &pa;
    if (L.wk.act != L.wq.act) {
      prepare_rows(h.data(), T, E, E, L.wk.act, &pb, pool);
      pk = &pb;
    }
    const Prepared* pv = &pa;
    if (L.wv.act != L.wq.act) {
      prepare_rows(h.data(), T, E, E, L.wv.act, &pc, pool);
      pv = &pc;
    }
    jobs.clear();
    jobs.push_back(job(L.wq, 0, pa, T, q.data(), QD));    // q [QD, T]
    jobs.push_back(job(L.wk, 0, *pk, T, k.data(), KVD));  // k [KVD, T]
    jobs.push_back(job(L.wv, 0, *pv, T, v.data(), KVD));  // v [KVD, T]
    run_jobs(jobs, pool);
    for (int t = 0; t < T; ++t) {
      float* qt = &q[t * QD];
      float* kt = &k[t * KVD];
      float* vt = &v[t * KVD];
      if (hp_.qkv_bias) {
        for (int64_t i = 0; i < QD; ++i) qt[i] += L.bq[i];
        for (int64_t i = 0; i < KVD; ++i) kt[i] += L.bk[i];
        for (int64_t i = 0; i < KVD; ++i) vt[i] += L.bv[i];
      }
      if (hp_.qk_norm) {
        for (int64_t hh = 0; hh < NH; ++hh) rmsnorm(qt + hh * HD, L.q_norm.data(), qt + hh * HD, HD, hp_.rms_eps);
        for (int64_t hh = 0; hh < NKV; ++hh) rmsnorm(kt + hh * HD, L.k_norm.data(), kt + hh * HD, HD, hp_.rms_eps);
      }
      apply_rope(qt, static_cast<int>(NH), static_cast<int>(HD), &rope_cos[t * HD / 2], &rope_sin[t * HD / 2], hp_.rope);
      apply_rope(kt, static_cast<int>(NKV), static_cast<int>(HD), &rope_cos[t * HD / 2], &rope_sin[t * HD / 2], hp_.rope);
      batch[t].cache->store(il, batch[t].pos, kt, vt);
    }
    attention(attn_shape, il, attn_toks, q.data(), attn.data(), pool);
    prepare_rows(attn.data(), T, QD, QD, L.wo.act, &pa, pool);
    jobs.clear();
    jobs.push_back(job(L.wo, 0, pa, T, o.data(), E));  // [E, T]
    run_jobs(jobs, pool);
    for (int64_t i = 0; i < T * E; ++i) x[i] += o[i];

    // ---- mixture of experts
    for (int t = 0; t < T; ++t) rmsnorm(&x[t * E], L.ffn_norm.data(), &h[t * E], E, hp_.rms_eps);
    prepare_rows(h.data(), T, E, E, L.gate_inp.act, &pa, pool);
    jobs.clear();
    jobs.push_back(job(L.gate_inp, 0, pa, T, router.data(), NE));  // [NE, T]
    run_jobs(jobs, pool);
    for (int t = 0; t < T; ++t) {
      float* r = &router[t * NE];
      const float mx = *std::max_element(r, r + NE);
      float sum = 0;
      for (int64_t e = 0; e < NE; ++e) {
        r[e] = std::exp(r[e] - mx);
        sum += r[e];
      }
      for (int64_t e = 0; e < NE; ++e) r[e] /= sum;
      std::vector<int32_t> idx(static_cast<size_t>(NE));
      for (int64_t e = 0; e < NE; ++e) idx[e] = static_cast<int32_t>(e);
      std::partial_sort(idx.begin(), idx.begin() + K, idx.end(), [&](int32_t a, int32_t b) {
        return r[a] > r[b] || (r[a] == r[b] && a < b);
      });
      float wsum = 0;
      for (int64_t j = 0; j < K; ++j) wsum += r[idx[j]];
      const float denom = hp_.norm_topk_weights ? std::max(wsum, 6.103515625e-5f) : 1.0f;
      for (int64_t j = 0; j < K; ++j) {
        sel[t * K + j] = idx[j];
        sel_w[t * K + j] = r[idx[j]] / denom;
      }
    }
    // Group tokens by expert: only the selected experts' weights are touched.
    std::vector<std::vector<int32_t>> tokens_of(static_cast<size_t>(NE));
    std::vector<std::vector<float>> weight_of(static_cast<size_t>(NE));
    for (int t = 0; t < T; ++t)
      for (int64_t j = 0; j < K; ++j) {
        tokens_of[sel[t * K + j]].push_back(t);
        weight_of[sel[t * K + j]].push_back(sel_w[t * K + j]);
      }
    std::vector<int32_t> active;
    std::vector<int64_t> offset(static_cast<size_t>(NE), 0);
    int64_t n_rows = 0;
    for (int64_t e = 0; e < NE; ++e)
      if (!tokens_of[e].empty()) {
        active.push_back(static_cast<int32_t>(e));
        offset[e] = n_rows;
        n_rows += static_cast<int64_t>(tokens_of[e].size());
      }
    std::vector<float> g(static_cast<size_t>(n_rows * F)), u(static_cast<size_t>(n_rows * F)), dn(static_cast<size_t>(n_rows * E));
    prepare_rows(h.data(), T, E, E, L.gate_exps.act, &pa, pool);
    const Prepared* pu = &pa;
    if (L.up_exps.act != L.gate_exps.act) {
      prepare_rows(h.data(), T, E, E, L.up_exps.act, &pb, pool);
      pu = &pb;
    }
    jobs.clear();
    for (int32_t e : active) {
      const int n = static_cast<int>(tokens_of[e].size());
      jobs.push_back(job(L.gate_exps, e, pa, n, &g[offset[e] * F], F, tokens_of[e].data()));   // [F, n_e]
      jobs.push_back(job(L.up_exps, e, *pu, n, &u[offset[e] * F], F, tokens_of[e].data()));    // [F, n_e]
    }
    run_jobs(jobs, pool);
    for (int64_t i = 0; i < n_rows * F; ++i) g[i] = silu(g[i]) * u[i];
    prepare_rows(g.data(), static_cast<int>(n_rows), F, F, L.down_exps.act, &pc, pool);
    jobs.clear();
    for (int32_t e : active) {
      MatJob j = job(L.down_exps, e, pc, static_cast<int>(tokens_of[e].size()), &dn[offset[e] * E], E);
      j.act += static_cast<size_t>(offset[e]) * pc.stride;  // this expert's rows of the compacted input
      jobs.push_back(j);
    }
    run_jobs(jobs, pool);
    for (int32_t e : active)
      for (size_t i = 0; i < tokens_of[e].size(); ++i) {
        const float w = weight_of[e][i];
        const float* d = &dn[(offset[e] + static_cast<int64_t>(i)) * E];
        float* xt = &x[tokens_of[e][i] * E];
        for (int64_t c = 0; c < E; ++c) xt[c] += w * d[c];
      }

    if (hp_.shared_expert) {
      const int64_t S = hp_.n_ff_shexp;
      std::vector<float> sg(static_cast<size_t>(T * S)), su(static_cast<size_t>(T * S)), sd(static_cast<size_t>(T * E));
      prepare_rows(h.data(), T, E, E, L.gate_shexp.act, &pa, pool);
      const Prepared* psu = &pa;
      if (L.up_shexp.act != L.gate_shexp.act) {
        prepare_rows(h.data(), T, E, E, L.up_shexp.act, &pb, pool);
        psu = &pb;
      }
      jobs.clear();
      jobs.push_back(job(L.gate_shexp, 0, pa, T, sg.data(), S));
      jobs.push_back(job(L.up_shexp, 0, *psu, T, su.data(), S));
      run_jobs(jobs, pool);
      for (int64_t i = 0; i < T * S; ++i) sg[i] = silu(sg[i]) * su[i];
      prepare_rows(sg.data(), T, S, S, L.down_shexp.act, &pc, pool);
      jobs.clear();
      jobs.push_back(job(L.down_shexp, 0, pc, T, sd.data(), E));
      run_jobs(jobs, pool);
      for (int t = 0; t < T; ++t) {
        float gate = 0;
        for (int64_t c = 0; c < E; ++c) gate += L.gate_inp_shexp[c] * h[t * E + c];
        gate = 1.0f / (1.0f + std::exp(-gate));
        for (int64_t c = 0; c < E; ++c) x[t * E + c] += gate * sd[t * E + c];
      }
    }
  }

  // ---- output: only for the entries that want logits
  std::vector<int32_t> rows;
  for (int t = 0; t < T; ++t)
    if (batch[t].want_logits) rows.push_back(t);
  if (rows.empty()) return core::ok_status();
  for (int32_t t : rows) rmsnorm(&x[t * E], output_norm_.data(), &h[t * E], E, hp_.rms_eps);
  prepare_rows(h.data(), T, E, E, output_.act, &pa, pool);
  const size_t base = logits->size();
  const int64_t V = hp_.n_vocab;
  logits->resize(base + rows.size() * static_cast<size_t>(V));
  jobs.clear();
  jobs.push_back(job(output_, 0, pa, static_cast<int>(rows.size()), logits->data() + base, V, rows.data()));
  run_jobs(jobs, pool);
  return core::ok_status();
}

}  // namespace local_backend
