// KvCache (kv_cache.h).
#include "runtime/kv_cache.h"

#include <fmt/core.h>

#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "thinkmesh/error.h"
#include "thinkmesh/half.h"

namespace thinkmesh::runtime {

KvCache::KvCache(int32_t n_ctx, int32_t n_layer, int32_t kv_dim, int32_t n_seq_max, KvType type)
    : n_ctx_(n_ctx),
      n_layer_(n_layer),
      kv_dim_(kv_dim),
      n_seq_max_(n_seq_max),
      type_(type),
      cells_(static_cast<size_t>(n_ctx)) {
  if (n_seq_max < 1 || n_seq_max > 64) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("n_seq_max {} must be in 1..64", n_seq_max));
  }
  const size_t n = static_cast<size_t>(n_ctx) * n_layer * kv_dim;
  if (type == KvType::f16) {
    k16_.assign(n, 0);
    v16_.assign(n, 0);
  } else {
    k32_.assign(n, 0.0f);
    v32_.assign(n, 0.0f);
  }
}

std::vector<int32_t> KvCache::claim(int32_t n) {
  std::vector<int32_t> out;
  for (int32_t i = 0; i < n_ctx_ && static_cast<int32_t>(out.size()) < n; ++i) {
    if (cells_[static_cast<size_t>(i)].pos < 0) out.push_back(i);
  }
  if (static_cast<int32_t>(out.size()) < n) {
    throw Error(ErrorKind::out_of_range,
                fmt::format("the KV cache is full: {} tokens need cells but {} of {} are free "
                            "(raise the context size or remove old tokens)",
                            n, out.size(), n_ctx_));
  }
  return out;
}

void KvCache::assign(int32_t cell, int32_t pos, int32_t seq) {
  Cell& c = cells_[static_cast<size_t>(cell)];
  if (c.pos < 0) ++used_;
  c.pos = pos;
  c.seqs = uint64_t{1} << seq;
}

void KvCache::release(int32_t cell) {
  Cell& c = cells_[static_cast<size_t>(cell)];
  if (c.pos >= 0) --used_;
  c = Cell{};
}

void KvCache::store(int32_t layer, int32_t cell, const float* k, const float* v) {
  const size_t o = offset(layer, cell);
  if (type_ == KvType::f16) {
    const kernels::Isa isa = kernels::active_isa();
    // (the F16 activation conversion: F16C, round to nearest even, the scalar code's bits)
    kernels::prepare_activations(isa, TensorType::F16, k, &k16_[o], kv_dim_);
    kernels::prepare_activations(isa, TensorType::F16, v, &v16_[o], kv_dim_);
  } else {
    std::copy(k, k + kv_dim_, k32_.begin() + static_cast<std::ptrdiff_t>(o));
    std::copy(v, v + kv_dim_, v32_.begin() + static_cast<std::ptrdiff_t>(o));
  }
}

void KvCache::load_k(int32_t layer, int32_t cell, int32_t off, int32_t n, float* out) const {
  const size_t o = offset(layer, cell) + off;
  if (type_ == KvType::f16) {
    for (int32_t i = 0; i < n; ++i) out[i] = fp16_to_fp32(k16_[o + i]);
  } else {
    std::copy(k32_.begin() + static_cast<std::ptrdiff_t>(o),
              k32_.begin() + static_cast<std::ptrdiff_t>(o + n), out);
  }
}

void KvCache::load_v(int32_t layer, int32_t cell, int32_t off, int32_t n, float* out) const {
  const size_t o = offset(layer, cell) + off;
  if (type_ == KvType::f16) {
    for (int32_t i = 0; i < n; ++i) out[i] = fp16_to_fp32(v16_[o + i]);
  } else {
    std::copy(v32_.begin() + static_cast<std::ptrdiff_t>(o),
              v32_.begin() + static_cast<std::ptrdiff_t>(o + n), out);
  }
}

void KvCache::seq_rm(int32_t seq, int32_t p0, int32_t p1) {
  if (p1 < 0) p1 = INT32_MAX;
  for (int32_t i = 0; i < n_ctx_; ++i) {
    Cell& c = cells_[static_cast<size_t>(i)];
    if (c.pos < p0 || c.pos >= p1) continue;
    if (seq < 0) {
      release(i);
    } else {
      c.seqs &= ~(uint64_t{1} << seq);
      if (c.seqs == 0) release(i);
    }
  }
}

void KvCache::seq_cp(int32_t src, int32_t dst, int32_t p0, int32_t p1) {
  if (p1 < 0) p1 = INT32_MAX;
  for (auto& c : cells_) {
    if (c.pos >= p0 && c.pos < p1 && ((c.seqs >> src) & 1u)) c.seqs |= uint64_t{1} << dst;
  }
}

void KvCache::clear() {
  for (int32_t i = 0; i < n_ctx_; ++i) release(i);
}

int32_t KvCache::seq_pos_max(int32_t seq) const {
  int32_t best = -1;
  for (const auto& c : cells_) {
    if (c.pos >= 0 && ((c.seqs >> seq) & 1u)) best = std::max(best, c.pos);
  }
  return best;
}

}  // namespace thinkmesh::runtime
