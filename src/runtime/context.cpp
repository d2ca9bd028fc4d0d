// Context::decode: the forward pass of a llama-like decoder over a batch, with the KV cache.
//
// Per layer, for the batch's T tokens (shapes in floats; D = n_embd, hd = head size):
//   h   = rms_norm(x) * attn_norm                          [T][D]
//   q,k,v = h·Wq (+bq), h·Wk (+bk), h·Wv (+bv)             [T][n_head*hd], [T][n_kv*hd] x2
//   rope(q), rope(k) at each token's position; K, V stored in the token's cache cell
//   a   = softmax(q·K^T / sqrt(hd) over the cells the token sees) · V   per head
//   x  += a·Wo
//   h   = rms_norm(x) * ffn_norm
//   x  += (silu(h·Wgate) * h·Wup)·Wdown
// logits = (rms_norm(x) * output_norm)·Wout for the entries that ask for them.
// Arithmetic follows ggml (MANIFEST §3): K/V stored as F16 before attention even within the
// batch, q and the probabilities rounded to F16 when they meet the F16 cache.
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <thread>

#include <fmt/core.h>

#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/isa.h"
#include "model/ops.h"
#include "model/weights.h"
#include "runtime/kv_cache.h"
#include "thinkmesh/context.h"
#include "thinkmesh/error.h"
#include "thinkmesh/half.h"

namespace thinkmesh {

namespace {

int32_t default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int32_t>(n);
}

}  // namespace

Context::Context(std::shared_ptr<const Model> model, const ContextOptions& options)
    : model_(std::move(model)), options_(options) {
  if (!model_) throw Error(ErrorKind::invalid_argument, "Context: no model");
  const ModelInfo& info = model_->info();
  if (options_.n_ctx <= 0) options_.n_ctx = std::min(info.n_ctx_train, 4096);
  if (options_.n_batch <= 0)
    throw Error(ErrorKind::invalid_argument, "Context: n_batch must be > 0");
  if (options_.n_threads <= 0) options_.n_threads = default_threads();
  kv_ = std::make_unique<runtime::KvCache>(options_.n_ctx, info.n_layer,
                                           info.n_head_kv * info.head_dim, options_.n_seq_max,
                                           options_.kv_type);
  pool_ = std::make_unique<model::ThreadPool>(options_.n_threads);
}

Context::~Context() = default;

int32_t Context::n_ctx() const {
  return options_.n_ctx;
}
size_t Context::kv_bytes() const {
  return kv_->bytes();
}
void Context::seq_rm(int32_t seq, int32_t p0, int32_t p1) {
  kv_->seq_rm(seq, p0, p1);
}
void Context::seq_cp(int32_t src, int32_t dst, int32_t p0, int32_t p1) {
  if (src < 0 || src >= options_.n_seq_max || dst < 0 || dst >= options_.n_seq_max) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("seq_cp: sequence ids {} -> {} outside 0..{}", src, dst,
                            options_.n_seq_max - 1));
  }
  kv_->seq_cp(src, dst, p0, p1);
}
void Context::clear() {
  kv_->clear();
}
int32_t Context::seq_pos_max(int32_t seq) const {
  return kv_->seq_pos_max(seq);
}

std::span<const float> Context::logits(int32_t i) const {
  if (i < 0 || static_cast<size_t>(i) >= logits_row_.size() ||
      logits_row_[static_cast<size_t>(i)] < 0) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("logits({}): that entry of the last batch did not ask for logits", i));
  }
  const size_t n_vocab = static_cast<size_t>(model_->info().n_vocab);
  return {logits_.data() + static_cast<size_t>(logits_row_[static_cast<size_t>(i)]) * n_vocab,
          n_vocab};
}

void Context::decode(const Batch& batch) {
  const ModelInfo& info = model_->info();
  for (size_t i = 0; i < batch.size(); ++i) {
    const BatchEntry& e = batch[i];
    if (e.token < 0 || e.token >= info.n_vocab) {
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("decode: entry {} has token id {} outside "
                              "the vocabulary (0..{})",
                              i, e.token, info.n_vocab - 1));
    }
    if (e.seq_id < 0 || e.seq_id >= options_.n_seq_max) {
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("decode: entry {} has sequence id {} outside "
                              "0..{}",
                              i, e.seq_id, options_.n_seq_max - 1));
    }
    if (e.pos < 0 || e.pos >= options_.n_ctx) {
      throw Error(ErrorKind::out_of_range,
                  fmt::format("decode: entry {} is at position {} but the context holds {} tokens "
                              "(raise --ctx)",
                              i, e.pos, options_.n_ctx));
    }
  }
  logits_.clear();
  logits_row_.assign(batch.size(), -1);
  const auto& entries = batch.entries();
  for (size_t start = 0; start < entries.size(); start += static_cast<size_t>(options_.n_batch)) {
    const size_t n = std::min(entries.size() - start, static_cast<size_t>(options_.n_batch));
    decode_chunk(std::span<const BatchEntry>(entries).subspan(start, n), start);
  }
}

void Context::decode_chunk(std::span<const BatchEntry> entries, size_t first_index) {
  const ModelInfo& info = model_->info();
  const model::Weights& w = model_->weights();
  const auto T = static_cast<int64_t>(entries.size());
  const int64_t D = info.n_embd, hd = info.head_dim;
  const int64_t q_dim = int64_t{info.n_head} * hd, kv_dim = int64_t{info.n_head_kv} * hd;
  const bool f16_kv = kv_->type() == KvType::f16;
  model::ThreadPool* pool = pool_.get();
  const kernels::Isa isa = kernels::active_isa();
  // Every matrix product of the pass, shown to the activation observer first when one is set.
  auto matmul = [&](const model::TensorView& W, const float* in, int64_t n_tok, float* out) {
    if (options_.activation_observer) options_.activation_observer(W.name, in, n_tok, W.cols);
    model::matmul(W, in, n_tok, out, pool);
  };
  // Products sharing one input (q/k/v, gate/up): one activation conversion, one dispatch.
  auto matmul_shared = [&](std::initializer_list<model::MatmulOutput> outs, const float* in) {
    if (options_.activation_observer) {
      for (const model::MatmulOutput& o : outs)
        options_.activation_observer(o.w->name, in, T, o.w->cols);
    }
    model::matmul_shared(std::span<const model::MatmulOutput>(outs.begin(), outs.size()), in, T,
                         pool);
  };

  const std::vector<int32_t> cells = kv_->claim(static_cast<int32_t>(T));
  for (int64_t t = 0; t < T; ++t)
    kv_->assign(cells[static_cast<size_t>(t)], entries[static_cast<size_t>(t)].pos,
                entries[static_cast<size_t>(t)].seq_id);

  // Activations of the chunk, reused from call to call (every element is written before it is
  // read): allocating ~1 MB per layer made the kernel fault and zero fresh pages each time.
  // (References, not the thread_local objects themselves, are what the pool's lambdas see: a
  // lambda naming a thread_local would read the worker thread's own, empty, instance.)
  thread_local std::vector<float> buffers[9];
  std::vector<float>&x = buffers[0], &h = buffers[1], &q = buffers[2], &k = buffers[3],
  &v = buffers[4], &attn = buffers[5], &proj = buffers[6], &gate = buffers[7], &up = buffers[8];
  x.resize(static_cast<size_t>(T * D));
  h.resize(x.size());
  proj.resize(x.size());
  q.resize(static_cast<size_t>(T * q_dim));
  attn.resize(q.size());
  k.resize(static_cast<size_t>(T * kv_dim));
  v.resize(k.size());
  for (int64_t t = 0; t < T; ++t)
    model::embedding_row(w.token_embd, entries[static_cast<size_t>(t)].token,
                         &x[static_cast<size_t>(t * D)]);

  // The cells each token attends to (its sequence, positions up to its own) are the same in
  // every layer and for every head: found once per chunk, not per (layer, token, head).
  std::vector<std::vector<int32_t>> visible(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) {
    const BatchEntry& e = entries[static_cast<size_t>(t)];
    for (int32_t c = 0; c < kv_->size(); ++c) {
      if (kv_->visible(c, e.seq_id, e.pos)) visible[static_cast<size_t>(t)].push_back(c);
    }
  }

  // Attention works on blocks of up to kAttnBlock consecutive tokens whose visible cells are
  // prefixes of one another (a prompt's tokens: each sees the previous ones). Every query of a
  // block and of the heads sharing a KV head reads the same K/V rows, so those rows are widened
  // to F32 once per (block, KV head) instead of once per query.
  constexpr int64_t kAttnBlock = 8;
  constexpr int64_t kMaxBlockQueries = 64;          // kAttnBlock x heads per KV head (GQA up to 8)
  std::vector<std::pair<int64_t, int64_t>> blocks;  // [first, end) token ranges
  for (int64_t t = 0; t < T;) {
    int64_t end = t + 1;
    while (end < T && end - t < kAttnBlock) {
      const auto& a = visible[static_cast<size_t>(end - 1)];
      const auto& b = visible[static_cast<size_t>(end)];
      if (a.size() > b.size() || !std::equal(a.begin(), a.end(), b.begin())) break;
      ++end;
    }
    blocks.emplace_back(t, end);
    t = end;
  }
  std::vector<int32_t> identity;  // cells 0..n-1 of a widened copy
  for (const auto& [first, end] : blocks)
    identity.resize(std::max(identity.size(), visible[static_cast<size_t>(end - 1)].size()));
  for (size_t i = 0; i < identity.size(); ++i) identity[i] = static_cast<int32_t>(i);

  // Runs fn(t) for every token of the chunk: spread over the pool when the chunk is a prompt
  // (the per-token work then outweighs one dispatch, and left serial it would cap the gain of a
  // second thread), inline for decode-sized chunks.
  auto for_each_token = [&](auto&& fn) {
    if (pool != nullptr) {
      pool->for_each(T, [&](int64_t t) { fn(static_cast<int32_t>(t)); });
    } else {
      for (int64_t t = 0; t < T; ++t) fn(static_cast<int32_t>(t));
    }
  };

  try {
    for (int32_t l = 0; l < info.n_layer; ++l) {
      const model::LayerWeights& L = w.layers[static_cast<size_t>(l)];
      const auto* attn_norm = reinterpret_cast<const float*>(L.attn_norm.data);
      // (from the second layer on, the residual add of the previous layer's FFN is fused here)
      for_each_token([&](int32_t t) {
        if (l > 0) {
          for (int64_t i = 0; i < D; ++i) x[t * D + i] += proj[t * D + i];
        }
        kernels::rms_norm(isa, &x[t * D], attn_norm, info.rms_eps, D, &h[t * D]);
      });
      matmul_shared({{&L.wq, q.data()}, {&L.wk, k.data()}, {&L.wv, v.data()}}, h.data());
      for_each_token([&](int32_t t) {
        if (L.bq) {
          for (int64_t i = 0; i < q_dim; ++i)
            q[t * q_dim + i] += reinterpret_cast<const float*>(L.bq.data)[i];
          for (int64_t i = 0; i < kv_dim; ++i) {
            k[t * kv_dim + i] += reinterpret_cast<const float*>(L.bk.data)[i];
            v[t * kv_dim + i] += reinterpret_cast<const float*>(L.bv.data)[i];
          }
        }
        const int32_t pos = entries[static_cast<size_t>(t)].pos;
        model::rope(&q[t * q_dim], info.n_head, info.head_dim, info.rope_dims, pos,
                    info.rope_freq_base, info.rope_freq_scale, info.rope_neox);
        model::rope(&k[t * kv_dim], info.n_head_kv, info.head_dim, info.rope_dims, pos,
                    info.rope_freq_base, info.rope_freq_scale, info.rope_neox);
        kv_->store(l, cells[static_cast<size_t>(t)], &k[t * kv_dim], &v[t * kv_dim]);
      });

      // Attention: each (token, head) over the cells its sequence sees up to its position;
      // one part per (token block, KV head).
      const int32_t group = info.n_head / info.n_head_kv;
      const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
      const int32_t stride = kv_->kv_dim();
      auto attend = [&](int32_t part) {
        const auto& [first, end] = blocks[static_cast<size_t>(part / info.n_head_kv)];
        const int32_t kv_head = part % info.n_head_kv;
        const std::vector<int32_t>& longest = visible[static_cast<size_t>(end - 1)];
        const size_t head_offset = static_cast<size_t>(kv_head * hd);
        kernels::AttentionRows rows;
        rows.f16 = f16_kv;
        rows.row_stride = static_cast<size_t>(stride);
        rows.head_dim = static_cast<int32_t>(hd);
        const void* k_rows = kv_->k_rows(l);
        const void* v_rows = kv_->v_rows(l);
        if (f16_kv) {
          rows.k = static_cast<const uint16_t*>(k_rows) + head_offset;
          rows.v = static_cast<const uint16_t*>(v_rows) + head_offset;
        } else {
          rows.k = static_cast<const float*>(k_rows) + head_offset;
          rows.v = static_cast<const float*>(v_rows) + head_offset;
        }
        // Widen the block's F16 rows once when enough queries share them and the copy stays
        // in the L2 cache (a long context reads the F16 rows directly instead).
        const int64_t n_queries = (end - first) * group;
        const size_t copy_floats = longest.size() * static_cast<size_t>(hd);
        thread_local std::vector<float> widened;
        const bool widen = f16_kv && n_queries >= 4 && n_queries <= kMaxBlockQueries &&
                           copy_floats * 8 <= (256u << 10);
        if (widen) {
          // V row-major for either path; K transposed for the block kernel (all queries of the
          // block at once, kernels::attend_block), else row-major for attend per query
          const bool block = kernels::attend_block_supported(isa, static_cast<int32_t>(hd));
          const int32_t n_max = static_cast<int32_t>(longest.size());
          const size_t kt_stride = (static_cast<size_t>(n_max) + 7) / 8 * 8;
          const size_t k_floats = block ? kt_stride * static_cast<size_t>(hd) : copy_floats;
          widened.resize(k_floats + copy_floats);
          float* kw = widened.data();
          float* vw = kw + k_floats;
          const auto* k16 = static_cast<const uint16_t*>(rows.k);
          const auto* v16 = static_cast<const uint16_t*>(rows.v);
          for (size_t j = 0; j < longest.size(); ++j) {
            const size_t row = static_cast<size_t>(longest[j]) * rows.row_stride;
            kernels::from_f16(isa, v16 + row, vw + j * hd, hd);
            if (!block) kernels::from_f16(isa, k16 + row, kw + j * hd, hd);
          }
          if (block) {
            kernels::widen_k_transposed(isa, k16, rows.row_stride, longest.data(), n_max,
                                        static_cast<int32_t>(hd), kw, kt_stride);
            const float* qs[kMaxBlockQueries];
            float* outs[kMaxBlockQueries];
            int32_t n_cells[kMaxBlockQueries];
            int32_t n_q = 0;
            for (int64_t t = first; t < end; ++t) {
              for (int32_t head = kv_head * group; head < (kv_head + 1) * group; ++head, ++n_q) {
                qs[n_q] = &q[t * q_dim + head * hd];
                outs[n_q] = &attn[t * q_dim + head * hd];
                n_cells[n_q] = static_cast<int32_t>(visible[static_cast<size_t>(t)].size());
              }
            }
            kernels::AttentionBlock b;
            b.kt = kw;
            b.kt_stride = kt_stride;
            b.v = vw;
            b.n_max = n_max;
            b.head_dim = static_cast<int32_t>(hd);
            b.n_q = n_q;
            b.q = qs;
            b.out = outs;
            b.n_cells = n_cells;
            thread_local std::vector<float> block_scratch;
            block_scratch.resize(kernels::attend_block_scratch(b));
            if (kernels::attend_block(isa, b, scale, block_scratch.data())) return;
            // (not expected after attend_block_supported: K row-major in the same buffer,
            // kt_stride >= n_max, and on per query)
            for (size_t j = 0; j < longest.size(); ++j) {
              const size_t row = static_cast<size_t>(longest[j]) * rows.row_stride;
              kernels::from_f16(isa, k16 + row, kw + j * hd, hd);
            }
          }
          rows.k = kw;
          rows.v = vw;
          rows.f16 = false;
          rows.round_f16 = true;
          rows.row_stride = static_cast<size_t>(hd);
        }
        thread_local std::vector<float> scratch;
        scratch.resize(longest.size());
        for (int64_t t = first; t < end; ++t) {
          const std::vector<int32_t>& seen = visible[static_cast<size_t>(t)];
          rows.cells = widen ? identity.data() : seen.data();
          rows.n_cells = static_cast<int32_t>(seen.size());
          for (int32_t head = kv_head * group; head < (kv_head + 1) * group; ++head) {
            kernels::attend(isa, rows, &q[t * q_dim + head * hd], scale, scratch.data(),
                            &attn[t * q_dim + head * hd]);
          }
        }
      };
      pool->run(static_cast<int32_t>(blocks.size()) * info.n_head_kv, attend);

      matmul(L.wo, attn.data(), T, proj.data());

      const auto* ffn_norm = reinterpret_cast<const float*>(L.ffn_norm.data);
      for_each_token([&](int32_t t) {
        for (int64_t i = 0; i < D; ++i) x[t * D + i] += proj[t * D + i];
        kernels::rms_norm(isa, &x[t * D], ffn_norm, info.rms_eps, D, &h[t * D]);
      });
      const int64_t n_ff = L.w_gate.rows;
      gate.resize(static_cast<size_t>(T * n_ff));
      up.resize(gate.size());
      matmul_shared({{&L.w_gate, gate.data()}, {&L.w_up, up.data()}}, h.data());
      for_each_token(
          [&](int32_t t) { kernels::swiglu(isa, &gate[t * n_ff], &up[t * n_ff], n_ff); });
      matmul(L.w_down, gate.data(), T, proj.data());
    }
    if (info.n_layer > 0) {
      for_each_token([&](int32_t t) {
        for (int64_t i = 0; i < D; ++i) x[t * D + i] += proj[t * D + i];
      });
    }
  } catch (...) {
    for (const int32_t c : cells) kv_->release(c);  // nothing of a failed chunk is kept
    throw;
  }

  // Output rows for the entries that want logits.
  std::vector<int64_t> wanted;
  for (int64_t t = 0; t < T; ++t) {
    if (entries[static_cast<size_t>(t)].logits) wanted.push_back(t);
  }
  if (wanted.empty()) return;
  std::vector<float> normed(wanted.size() * static_cast<size_t>(D));
  const auto* out_norm = reinterpret_cast<const float*>(w.output_norm.data);
  for (size_t j = 0; j < wanted.size(); ++j)
    kernels::rms_norm(isa, &x[wanted[j] * D], out_norm, info.rms_eps, D, &normed[j * D]);
  const size_t n_vocab = static_cast<size_t>(info.n_vocab);
  const size_t first_row = logits_.size() / n_vocab;
  logits_.resize(logits_.size() + wanted.size() * n_vocab);
  matmul(w.output, normed.data(), static_cast<int64_t>(wanted.size()),
         &logits_[first_row * n_vocab]);
  for (size_t j = 0; j < wanted.size(); ++j) {
    logits_row_[first_index + static_cast<size_t>(wanted[j])] = static_cast<int32_t>(first_row + j);
  }
}

}  // namespace thinkmesh
