// Decoder operations (see ops.h).
#include "model/ops.h"

#include <cmath>

#include <fmt/core.h>

#include "kernels/gemm.h"
#include "kernels/repack.h"
#include "kernels/vec_dot.h"
#include "thinkmesh/error.h"
#include "thinkmesh/half.h"

namespace thinkmesh::model {

// ---- matrix product -------------------------------------------------------------------------

void matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  const MatmulOutput one{&w, y};
  matmul_shared(std::span<const MatmulOutput>(&one, 1), x, n_tokens, pool);
}

void matmul_shared(std::span<const MatmulOutput> outputs, const float* x, int64_t n_tokens,
                   ThreadPool* pool) {
  // Parts of a multiple of 64 rows: each token's outputs of a part fill whole cache lines, so
  // two threads rarely write the same line. 64 rows give enough parts to balance two threads on
  // the small matrices; a large one (a 32,000-row output matrix) gets bigger parts, about 8 per
  // thread, so claiming a part stays cheap next to computing it.
  constexpr int64_t kRowsPerPart = 64;
  const int64_t n_threads = pool != nullptr ? pool->size() : 1;
  auto rows_per_part = [&](int64_t rows) {
    const int64_t target = (rows + 8 * n_threads - 1) / (8 * n_threads);
    return std::max(kRowsPerPart, (target + kRowsPerPart - 1) / kRowsPerPart * kRowsPerPart);
  };
  constexpr size_t kMaxOutputs = 4;
  if (outputs.empty()) return;
  if (outputs.size() > kMaxOutputs) {
    throw Error(ErrorKind::invalid_argument, "matmul_shared: at most 4 products at once");
  }
  const kernels::Isa isa = kernels::active_isa();
  const int64_t cols = outputs[0].w->cols;
  struct Job {
    kernels::GemmProblem p;
    kernels::GemmKernel kernel;
    int32_t first_part;
    int64_t rows_per_part;
  };
  Job jobs[kMaxOutputs];
  // One converted copy of x per distinct activation type (F16, Q8_0, Q8_K, ...).
  thread_local std::vector<uint8_t> acts[kMaxOutputs];
  TensorType act_types[kMaxOutputs];
  size_t act_row_bytes[kMaxOutputs];
  size_t n_act = 0;
  int32_t n_parts = 0;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const TensorView& w = *outputs[i].w;
    if (w.cols != cols) {
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("matmul_shared: {} has {} columns, {} has {}", w.name, w.cols,
                              outputs[0].w->name, cols));
    }
    kernels::GemmKernel kernel = kernels::select_gemm(isa, w.type);
    const uint8_t* weights = w.data;
    if (w.packed != nullptr) {
      if (const kernels::GemmKernel k = kernels::find_repacked_gemm(isa, w.type)) {
        kernel = k;
        weights = w.packed;
      }
    }
    if (kernel == nullptr) {
      throw Error(ErrorKind::unsupported,
                  fmt::format("{}: no matrix kernel for weight type {}", w.name, name(w.type)));
    }
    const TensorType act = kernels::activation_type(w.type);
    const size_t act_bytes = row_bytes(act, cols);
    size_t a = 0;
    while (a < n_act && act_types[a] != act) ++a;
    if (a == n_act) {
      act_types[n_act] = act;
      act_row_bytes[n_act++] = act_bytes;
      acts[a].resize(act_bytes * static_cast<size_t>(n_tokens));
    }
    Job& job = jobs[i];
    job.p.w_type = w.type;
    job.p.w = weights;
    job.p.w_stride = w.row_bytes;
    job.p.n = cols;
    job.p.act = acts[a].data();
    job.p.act_stride = act_bytes;
    job.p.n_tokens = n_tokens;
    job.p.y = outputs[i].y;
    job.p.y_stride = w.rows;
    job.kernel = kernel;
    job.first_part = n_parts;
    job.rows_per_part = rows_per_part(w.rows);
    n_parts += static_cast<int32_t>((w.rows + job.rows_per_part - 1) / job.rows_per_part);
  }
  // The conversions, one token per part: a prompt's tokens are spread over the threads (left
  // serial they would cap the gain of a second thread); decode converts inline.
  uint8_t* act_data[kMaxOutputs];
  for (size_t a = 0; a < n_act; ++a) act_data[a] = acts[a].data();
  auto convert = [&](int32_t t) {
    for (size_t a = 0; a < n_act; ++a)
      kernels::prepare_activations(isa, act_types[a], x + t * cols,
                                   act_data[a] + act_row_bytes[a] * static_cast<size_t>(t), cols);
  };
  if (pool != nullptr) {
    pool->for_each(n_tokens, [&](int64_t t) { convert(static_cast<int32_t>(t)); });
  } else {
    for (int64_t t = 0; t < n_tokens; ++t) convert(static_cast<int32_t>(t));
  }
  const size_t n_jobs = outputs.size();
  auto part = [&](int32_t i) {
    size_t j = 0;
    while (j + 1 < n_jobs && jobs[j + 1].first_part <= i) ++j;
    const Job& job = jobs[j];
    const int64_t r0 = (i - job.first_part) * job.rows_per_part;
    const int64_t rows = job.p.y_stride;
    job.kernel(job.p, r0, std::min(rows, r0 + job.rows_per_part));
  };
  if (pool != nullptr) {
    pool->run(n_parts, part);
  } else {
    for (int32_t i = 0; i < n_parts; ++i) part(i);
  }
}

// ---- element-wise ---------------------------------------------------------------------------

void rms_norm(const float* x, const float* weight, float eps, int64_t n, float* y) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * weight[i];
}

void rope(float* x, int32_t n_heads, int32_t head_dim, int32_t n_rot, int32_t pos, float freq_base,
          float freq_scale, bool neox) {
  // ggml_rope_cache_init: theta advances by repeated multiplication, in float.
  thread_local std::vector<float> cache;
  cache.resize(static_cast<size_t>(n_rot));
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(n_rot));
  float theta = static_cast<float>(pos);
  for (int32_t i = 0; i < n_rot; i += 2) {
    const float t = freq_scale * theta;
    cache[static_cast<size_t>(i)] = std::cos(t);
    cache[static_cast<size_t>(i) + 1] = std::sin(t);
    theta *= theta_scale;
  }
  for (int32_t h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<size_t>(h) * head_dim;
    for (int32_t i = 0; i < n_rot; i += 2) {
      const float c = cache[static_cast<size_t>(i)], s = cache[static_cast<size_t>(i) + 1];
      const int32_t a = neox ? i / 2 : i;
      const int32_t b = neox ? i / 2 + n_rot / 2 : i + 1;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * c - x1 * s;
      v[b] = x0 * s + x1 * c;
    }
  }
}

void swiglu(float* x, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i])) * up[i];
}

void embedding_row(const TensorView& table, int64_t token, float* out) {
  dequantize_row(table.type, table.row(token), out, table.cols);
}

}  // namespace thinkmesh::model
