// The KV cache: n_ctx cells, each holding one token's keys and values for every layer, the
// token's position and the set of sequences that see it. F16 storage by default (as llama.cpp
// stores K and V), F32 on request.
#pragma once

#include <cstdint>
#include <vector>

#include "thinkmesh/context.h"

namespace thinkmesh::runtime {

class KvCache {
 public:
  KvCache(int32_t n_ctx, int32_t n_layer, int32_t kv_dim, int32_t n_seq_max, KvType type);

  int32_t size() const { return n_ctx_; }
  int32_t used() const { return used_; }
  KvType type() const { return type_; }
  size_t bytes() const {
    return (k16_.size() + v16_.size()) * sizeof(uint16_t) +
           (k32_.size() + v32_.size()) * sizeof(float);
  }

  // Claims free cells for `n` tokens (pos/seq set by the caller through assign); returns the
  // cell indices or throws Error(out_of_range) when fewer than n cells are free.
  std::vector<int32_t> claim(int32_t n);
  void assign(int32_t cell, int32_t pos, int32_t seq);
  void release(int32_t cell);

  // Keys/values of `cell` in `layer`: kv_dim values, as F16 bits or F32.
  void store(int32_t layer, int32_t cell, const float* k, const float* v);
  // Reads element range of a cell's K or V as F32 (F16 widened).
  void load_k(int32_t layer, int32_t cell, int32_t offset, int32_t n, float* out) const;
  void load_v(int32_t layer, int32_t cell, int32_t offset, int32_t n, float* out) const;

  bool visible(int32_t cell, int32_t seq, int32_t pos) const {  // causal, same sequence
    const Cell& c = cells_[static_cast<size_t>(cell)];
    return c.pos >= 0 && c.pos <= pos && ((c.seqs >> seq) & 1u);
  }
  // The K (V) rows of `layer`: cell c's kv_dim values start at element c * kv_dim; F16 bits
  // (type() == f16) or F32.
  const void* k_rows(int32_t layer) const {
    return type_ == KvType::f16 ? static_cast<const void*>(&k16_[offset(layer, 0)])
                                : static_cast<const void*>(&k32_[offset(layer, 0)]);
  }
  const void* v_rows(int32_t layer) const {
    return type_ == KvType::f16 ? static_cast<const void*>(&v16_[offset(layer, 0)])
                                : static_cast<const void*>(&v32_[offset(layer, 0)]);
  }
  int32_t kv_dim() const { return kv_dim_; }
  int32_t pos(int32_t cell) const { return cells_[static_cast<size_t>(cell)].pos; }

  void seq_rm(int32_t seq, int32_t p0, int32_t p1);
  void seq_cp(int32_t src, int32_t dst, int32_t p0, int32_t p1);
  void clear();
  int32_t seq_pos_max(int32_t seq) const;

 private:
  struct Cell {
    int32_t pos = -1;   // -1: free
    uint64_t seqs = 0;  // bit s: sequence s sees this cell
  };
  size_t offset(int32_t layer, int32_t cell) const {
    return (static_cast<size_t>(layer) * n_ctx_ + cell) * kv_dim_;
  }
  int32_t n_ctx_, n_layer_, kv_dim_, n_seq_max_;
  KvType type_;
  int32_t used_ = 0;
  std::vector<Cell> cells_;
  std::vector<uint16_t> k16_, v16_;
  std::vector<float> k32_, v32_;
};

}  // namespace thinkmesh::runtime
