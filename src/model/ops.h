// The element-wise operations and the one matrix-product entry point of the decoder, with the
// arithmetic of ggml's CPU backend (llama.cpp c392e50) so logits match its goldens.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "model/thread_pool.h"
#include "model/weights.h"

namespace thinkmesh::model {

// y[t][r] = dot(W row r, x[t]) for t < n_tokens, r < W.rows. x is [n_tokens][W.cols] F32;
// y is [n_tokens][W.rows]. Activations are converted once per token to the weight type's
// activation type (Q8_0/Q8_K blocks, F16, ...) as ggml does; rows are split over the pool.
// Every matrix product of the model goes through here, so faster kernels plug in at one place.
void matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool);

// One product of several that share their input (q/k/v, gate/up): y = x·W^T, [n_tokens][W.rows].
struct MatmulOutput {
  const TensorView* w;
  float* y;
};
// Runs every product of `outputs` on the same x ([n_tokens][cols], all W have the same cols):
// the activations are converted once per activation type and all rows of all products are
// spread over the pool in one dispatch (one wait instead of one per matrix).
void matmul_shared(std::span<const MatmulOutput> outputs, const float* x, int64_t n_tokens,
                   ThreadPool* pool);

// y = x / sqrt(mean(x^2) + eps) * weight  (n values; sum of squares in double as ggml)
void rms_norm(const float* x, const float* weight, float eps, int64_t n, float* y);

// Rotates the first `n_rot` dims of each of `n_heads` heads of size `head_dim` in place, for
// position `pos`: pairs (2i, 2i+1) (NORM) or (i, i + n_rot/2) (NEOX).
void rope(float* x, int32_t n_heads, int32_t head_dim, int32_t n_rot, int32_t pos, float freq_base,
          float freq_scale, bool neox);

// x = silu(x) * up  (n values)
void swiglu(float* x, const float* up, int64_t n);

// Reads row `token` of the embedding table as F32.
void embedding_row(const TensorView& table, int64_t token, float* out);

}  // namespace thinkmesh::model
