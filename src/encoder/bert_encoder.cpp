// BertEncoder::forward (see bert_encoder.h for the graph and the arithmetic).
#include "encoder/bert_encoder.h"

#include <algorithm>
#include <cmath>

#include <fmt/core.h>

#include "encoder/encoder_ops.h"
#include "model/ops.h"
#include "thinkmesh/error.h"

namespace thinkmesh::encoder {
namespace {

constexpr int64_t kRowsPerPart = 16;  // tokens per thread-pool part in the element-wise steps

const float* f32(const model::TensorView& v) {
  return reinterpret_cast<const float*>(v.data);
}

// Calls fn(t0, t1) over [0, n_rows) in parts of kRowsPerPart rows, spread over the pool.
template <class Fn>
void for_rows(model::ThreadPool& pool, int64_t n_rows, Fn&& fn) {
  const auto n_parts = static_cast<int32_t>((n_rows + kRowsPerPart - 1) / kRowsPerPart);
  pool.run(n_parts, [&](int32_t p) {
    const int64_t t0 = p * kRowsPerPart;
    fn(t0, std::min(n_rows, t0 + kRowsPerPart));
  });
}

// Dot product of n floats with eight float partial sums (as an 8-wide FMA loop would keep
// them), reduced in double; the compiler vectorises the lane loop.
float dot_f32(const float* a, const float* b, int64_t n) {
  float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; ++l) lanes[l] += a[i + l] * b[i + l];
  }
  double sum = 0.0;
  for (; i < n; ++i) sum += static_cast<double>(a[i] * b[i]);
  for (const float l : lanes) sum += static_cast<double>(l);
  return static_cast<float>(sum);
}

}  // namespace

void EncoderBatch::add(std::span<const TokenId> sequence) {
  tokens.insert(tokens.end(), sequence.begin(), sequence.end());
  seq_start.push_back(static_cast<int32_t>(tokens.size()));
}

void BertEncoder::embed_tokens(const EncoderBatch& batch, model::ThreadPool& pool) {
  const int64_t D = m_.hp.n_embd;
  const auto T = static_cast<int64_t>(batch.tokens.size());
  // pos[t]: the token's position inside its own sequence.
  std::vector<int32_t> pos(static_cast<size_t>(T));
  for (int32_t s = 0; s < batch.n_seq(); ++s) {
    for (int32_t t = batch.seq_start[s]; t < batch.seq_start[s + 1]; ++t)
      pos[static_cast<size_t>(t)] = t - batch.seq_start[s];
  }
  for_rows(pool, T, [&](int64_t t0, int64_t t1) {
    std::vector<float> type_row(static_cast<size_t>(D)), pos_row(type_row.size());
    // Token type 0 for every token ("sentence A"), as llama.cpp hard-codes it.
    model::embedding_row(m_.token_types, 0, type_row.data());
    for (int64_t t = t0; t < t1; ++t) {
      float* x = &x_[static_cast<size_t>(t * D)];
      model::embedding_row(m_.token_embd, batch.tokens[static_cast<size_t>(t)], x);
      model::embedding_row(m_.position_embd, pos[static_cast<size_t>(t)], pos_row.data());
      for (int64_t i = 0; i < D; ++i) x[i] = pos_row[i] + (x[i] + type_row[i]);
      layer_norm(x, f32(m_.embd_norm_w), f32(m_.embd_norm_b), m_.hp.norm_eps, D,
                 &h_[static_cast<size_t>(t * D)]);
    }
  });
  std::swap(x_, h_);
}

void BertEncoder::attention(const EncoderBatch& batch, model::ThreadPool& pool) {
  const int64_t D = m_.hp.n_embd, hd = m_.hp.head_dim;
  const int32_t n_head = m_.hp.n_head;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // One part per (sequence, head): all of that sequence's queries against its keys.
  pool.run(batch.n_seq() * n_head, [&](int32_t part) {
    const int32_t s = part / n_head, head = part % n_head;
    const int64_t first = batch.seq_start[s], L = batch.seq_len(s);
    thread_local std::vector<float> score;
    thread_local std::vector<float> acc;
    score.resize(static_cast<size_t>(L));
    acc.resize(static_cast<size_t>(hd));
    for (int64_t i = 0; i < L; ++i) {
      const float* q = &q_[static_cast<size_t>((first + i) * D + head * hd)];
      // softmax(q·kᵀ · scale) over the sequence's tokens (ggml_soft_max_ext, mask 0 inside).
      float max = -INFINITY;
      for (int64_t j = 0; j < L; ++j) {
        const float* k = &k_[static_cast<size_t>((first + j) * D + head * hd)];
        score[static_cast<size_t>(j)] = dot_f32(k, q, hd) * scale;
        max = std::max(max, score[static_cast<size_t>(j)]);
      }
      double sum = 0.0;
      for (float& e : score) {
        e = std::exp(e - max);
        sum += static_cast<double>(e);
      }
      const auto inv = static_cast<float>(1.0 / sum);
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t j = 0; j < L; ++j) {
        const float p = score[static_cast<size_t>(j)] * inv;
        const float* v = &v_[static_cast<size_t>((first + j) * D + head * hd)];
        for (int64_t d = 0; d < hd; ++d) acc[static_cast<size_t>(d)] += p * v[d];
      }
      std::copy(acc.begin(), acc.end(), &attn_[static_cast<size_t>((first + i) * D + head * hd)]);
    }
  });
}

std::span<const float> BertEncoder::forward(const EncoderBatch& batch, model::ThreadPool& pool) {
  const BertHparams& hp = m_.hp;
  const int64_t D = hp.n_embd, F = hp.n_ff;
  const auto T = static_cast<int64_t>(batch.tokens.size());
  for (int32_t s = 0; s < batch.n_seq(); ++s) {
    const int32_t len = batch.seq_len(s);
    if (len <= 0) {
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("bert: sequence {} of the batch has no tokens", s));
    }
    if (len > hp.n_positions) {
      throw Error(ErrorKind::out_of_range,
                  fmt::format("bert: sequence {} has {} tokens; the model has {} positions", s, len,
                              hp.n_positions));
    }
  }
  for (size_t t = 0; t < batch.tokens.size(); ++t) {
    const TokenId id = batch.tokens[t];
    if (id < 0 || id >= hp.n_vocab) {
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("bert: token {} of the batch has id {} outside the vocabulary "
                              "(0..{})",
                              t, id, hp.n_vocab - 1));
    }
  }
  if (T == 0) return {};
  const auto n = static_cast<size_t>(T * D);
  for (auto* buf : {&x_, &h_, &q_, &k_, &v_, &attn_}) buf->resize(n);
  ff_.resize(static_cast<size_t>(T * F));

  embed_tokens(batch, pool);

  // out[t] += bias for every token (a [T][cols] matrix).
  auto add_bias = [&](std::vector<float>& out, const model::TensorView& bias, int64_t cols) {
    const float* b = f32(bias);
    for_rows(pool, T, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        float* o = &out[static_cast<size_t>(t * cols)];
        for (int64_t i = 0; i < cols; ++i) o[i] += b[i];
      }
    });
  };
  // x = LayerNorm(h + bias + x) · (w, b): the residual step after attention and after the FFN.
  auto residual_norm = [&](const model::TensorView& bias, const model::TensorView& w,
                           const model::TensorView& b) {
    const float* bi = f32(bias);
    for_rows(pool, T, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        float* h = &h_[static_cast<size_t>(t * D)];
        const float* x = &x_[static_cast<size_t>(t * D)];
        for (int64_t i = 0; i < D; ++i) h[i] = (h[i] + bi[i]) + x[i];
        layer_norm(h, f32(w), f32(b), hp.norm_eps, D, &x_[static_cast<size_t>(t * D)]);
      }
    });
  };

  for (const BertLayer& L : m_.layers) {
    model::matmul(L.wq, x_.data(), T, q_.data(), &pool);
    model::matmul(L.wk, x_.data(), T, k_.data(), &pool);
    model::matmul(L.wv, x_.data(), T, v_.data(), &pool);
    add_bias(q_, L.bq, D);
    add_bias(k_, L.bk, D);
    add_bias(v_, L.bv, D);
    attention(batch, pool);
    model::matmul(L.wo, attn_.data(), T, h_.data(), &pool);
    residual_norm(L.bo, L.attn_norm_w, L.attn_norm_b);

    model::matmul(L.ffn_up, x_.data(), T, ff_.data(), &pool);
    const float* up_b = f32(L.ffn_up_b);
    for_rows(pool, T, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        float* f = &ff_[static_cast<size_t>(t * F)];
        for (int64_t i = 0; i < F; ++i) f[i] += up_b[i];
        gelu_table(f, F);
      }
    });
    model::matmul(L.ffn_down, ff_.data(), T, h_.data(), &pool);
    residual_norm(L.ffn_down_b, L.out_norm_w, L.out_norm_b);
  }
  return {x_.data(), n};
}

}  // namespace thinkmesh::encoder
