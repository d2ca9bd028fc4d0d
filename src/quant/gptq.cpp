// GPTQ (gptq.h). Per matrix: H is damped, factored H = LLᵀ, inverted, and H⁻¹ factored again
// into UᵀU (U upper). Per row, at the start of each 32-value block the block's scale (and min)
// is chosen by the importance-weighted search (quantize_weighted.cpp) on the current, already
// error-compensated values; then each column j of the block is rounded on that grid and
// w[k] −= (w[j] − q[j]) / U[j][j] · U[j][k] for every later column k (the paper's update with
// the inverse Hessian's Cholesky rows).
#include "quant/gptq.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "quant/quantize_weighted.h"
#include "tensor/blocks.h"
#include "tensor/quantize_internal.h"
#include "thinkmesh/error.h"
#include "thinkmesh/half.h"

namespace thinkmesh::quant {
namespace {

using detail::nearest_int;

constexpr int kBlock = 32;

// In place: a (n × n, symmetric) becomes its lower Cholesky factor L (a = LLᵀ); the upper
// triangle is zeroed. False when a pivot is not positive.
bool cholesky_lower(std::vector<double>& a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    double* aj = a.data() + j * n;
    double d = aj[j];
    for (int64_t k = 0; k < j; ++k) d -= aj[k] * aj[k];
    if (!(d > 0) || !std::isfinite(d)) return false;
    const double ljj = std::sqrt(d);
    aj[j] = ljj;
    for (int64_t i = j + 1; i < n; ++i) {
      double* ai = a.data() + i * n;
      double s = ai[j];
      for (int64_t k = 0; k < j; ++k) s -= ai[k] * aj[k];
      ai[j] = s / ljj;
    }
    for (int64_t k = j + 1; k < n; ++k) aj[k] = 0;
  }
  return true;
}

// H⁻¹ from its lower Cholesky factor L: L⁻¹ by forward substitution, then L⁻ᵀL⁻¹.
std::vector<double> inverse_from_cholesky(const std::vector<double>& l, int64_t n) {
  std::vector<double> li(static_cast<size_t>(n * n), 0.0);  // L⁻¹, lower
  for (int64_t c = 0; c < n; ++c) {
    li[static_cast<size_t>(c * n + c)] = 1.0 / l[static_cast<size_t>(c * n + c)];
    for (int64_t i = c + 1; i < n; ++i) {
      double s = 0;
      for (int64_t k = c; k < i; ++k)
        s += l[static_cast<size_t>(i * n + k)] * li[static_cast<size_t>(k * n + c)];
      li[static_cast<size_t>(i * n + c)] = -s / l[static_cast<size_t>(i * n + i)];
    }
  }
  std::vector<double> inv(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      double s = 0;
      for (int64_t k = i; k < n; ++k)
        s += li[static_cast<size_t>(k * n + i)] * li[static_cast<size_t>(k * n + j)];
      inv[static_cast<size_t>(i * n + j)] = s;
      inv[static_cast<size_t>(j * n + i)] = s;
    }
  return inv;
}

// The grid of one block once its scale is chosen: x̂ = d·(level − offset) + m.
struct Grid {
  float d = 0, m = 0;
  int lo = 0, hi = 0, offset = 0;

  int level(float v) const {
    if (d == 0) return offset;
    return std::clamp(nearest_int((v - m) / d) + offset, lo, hi);
  }
  float value(int l) const { return d * static_cast<float>(l - offset) + m; }
};

// Chooses the block's scale from `x` (32 current values) and writes the header into `blk`.
Grid choose_grid(TensorType type, const float* x, const float* importance, uint8_t* blk) {
  Grid g;
  switch (type) {
    case TensorType::Q4_0: {
      auto* y = reinterpret_cast<block_q4_0*>(blk);
      quantize_q4_0_weighted(x, y, kBlock, importance);
      g.d = fp16_to_fp32(y->d);
      g.lo = 0, g.hi = 15, g.offset = 8;
      break;
    }
    case TensorType::Q4_1: {
      auto* y = reinterpret_cast<block_q4_1*>(blk);
      quantize_q4_1_weighted(x, y, kBlock, importance);
      g.d = fp16_to_fp32(y->d);
      g.m = fp16_to_fp32(y->m);
      g.lo = 0, g.hi = 15;
      break;
    }
    case TensorType::Q5_0: {
      auto* y = reinterpret_cast<block_q5_0*>(blk);
      quantize_q5_0_weighted(x, y, kBlock, importance);
      g.d = fp16_to_fp32(y->d);
      g.lo = 0, g.hi = 31, g.offset = 16;
      break;
    }
    case TensorType::Q5_1: {
      auto* y = reinterpret_cast<block_q5_1*>(blk);
      quantize_q5_1_weighted(x, y, kBlock, importance);
      g.d = fp16_to_fp32(y->d);
      g.m = fp16_to_fp32(y->m);
      g.lo = 0, g.hi = 31;
      break;
    }
    case TensorType::Q8_0: {
      auto* y = reinterpret_cast<block_q8_0*>(blk);
      quantize_row_reference(TensorType::Q8_0, x, y, kBlock);
      g.d = fp16_to_fp32(y->d);
      g.lo = -128, g.hi = 127;
      break;
    }
    default:
      throw Error(ErrorKind::internal, "gptq: no grid for " + std::string(name(type)));
  }
  return g;
}

template <class Block>
void pack_nibbles(const int* L, Block& y) {
  for (int j = 0; j < 16; ++j) y.qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
}

template <class Block>
void pack_fives(const int* L, Block& y) {
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    y.qs[j] = static_cast<uint8_t>((L[j] & 0x0F) | ((L[j + 16] & 0x0F) << 4));
    qh |= static_cast<uint32_t>((L[j] >> 4) & 1) << j;
    qh |= static_cast<uint32_t>((L[j + 16] >> 4) & 1) << (j + 16);
  }
  std::memcpy(y.qh, &qh, sizeof qh);
}

// Writes the 32 levels into the block whose header choose_grid wrote.
void store_levels(TensorType type, const int* L, uint8_t* blk) {
  switch (type) {
    case TensorType::Q4_0:
      pack_nibbles(L, *reinterpret_cast<block_q4_0*>(blk));
      break;
    case TensorType::Q4_1:
      pack_nibbles(L, *reinterpret_cast<block_q4_1*>(blk));
      break;
    case TensorType::Q5_0:
      pack_fives(L, *reinterpret_cast<block_q5_0*>(blk));
      break;
    case TensorType::Q5_1:
      pack_fives(L, *reinterpret_cast<block_q5_1*>(blk));
      break;
    case TensorType::Q8_0: {
      auto* y = reinterpret_cast<block_q8_0*>(blk);
      for (int j = 0; j < kBlock; ++j) y->qs[j] = static_cast<int8_t>(L[j]);
      break;
    }
    default:
      throw Error(ErrorKind::internal, "gptq: no packing for " + std::string(name(type)));
  }
}

}  // namespace

bool gptq_supports(TensorType type) {
  switch (type) {
    case TensorType::Q4_0:
    case TensorType::Q4_1:
    case TensorType::Q5_0:
    case TensorType::Q5_1:
    case TensorType::Q8_0:
      return true;
    default:
      return false;
  }
}

GptqFactor gptq_factor(const float* h, int64_t n, double damp_fraction) {
  if (n < 1) throw Error(ErrorKind::invalid_argument, "gptq: empty Hessian");
  GptqFactor f;
  f.n = n;
  double mean_diag = 0;
  int64_t live = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = h[i * n + i];
    if (d > 0) {
      mean_diag += d;
      ++live;
    }
  }
  mean_diag = live > 0 ? mean_diag / static_cast<double>(live) : 1.0;
  // The scale search's importance: diag(H); a dead input gets the smallest live value so its
  // weights still count a little (the calibration text may just not have reached it).
  double min_live = mean_diag;
  for (int64_t i = 0; i < n; ++i)
    if (h[i * n + i] > 0) min_live = std::min<double>(min_live, h[i * n + i]);
  f.importance.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    f.importance[static_cast<size_t>(i)] =
        static_cast<float>(h[i * n + i] > 0 ? h[i * n + i] : min_live);

  double damp = damp_fraction * mean_diag;
  for (int attempt = 0; attempt < 5; ++attempt, damp *= 10) {
    std::vector<double> a(static_cast<size_t>(n * n));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) a[static_cast<size_t>(i * n + j)] = h[i * n + j];
    for (int64_t i = 0; i < n; ++i) {
      double& d = a[static_cast<size_t>(i * n + i)];
      if (!(d > 0)) {
        // A dead input: no correlations either; a unit-scale diagonal keeps H positive.
        for (int64_t j = 0; j < n; ++j) {
          a[static_cast<size_t>(i * n + j)] = 0;
          a[static_cast<size_t>(j * n + i)] = 0;
        }
        d = mean_diag;
      }
      d += damp;
    }
    if (!cholesky_lower(a, n)) continue;
    std::vector<double> inv = inverse_from_cholesky(a, n);
    if (!cholesky_lower(inv, n)) continue;
    f.u.assign(static_cast<size_t>(n * n), 0.0);  // U = Lcᵀ
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j <= i; ++j)
        f.u[static_cast<size_t>(j * n + i)] = inv[static_cast<size_t>(i * n + j)];
    f.damp = damp;
    return f;
  }
  throw Error(ErrorKind::invalid_file, "gptq: the Hessian (" + std::to_string(n) +
                                           " inputs) is not positive definite "
                                           "even with damping " +
                                           std::to_string(damp / 10));
}

void gptq_quantize_row(TensorType type, const float* w, const GptqFactor& f, void* dst,
                       std::vector<double>& work) {
  const int64_t n = f.n;
  if (n % kBlock != 0)
    throw Error(ErrorKind::invalid_argument,
                "gptq: rows of " + std::to_string(n) + " are not a multiple of 32");
  if (!gptq_supports(type))
    throw Error(ErrorKind::unsupported, "gptq: " + std::string(name(type)) + " not supported");
  work.assign(w, w + n);
  const size_t block_bytes = row_bytes(type, kBlock);
  auto* out = static_cast<uint8_t*>(dst);
  float x[kBlock];
  int L[kBlock];
  for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
    uint8_t* blk = out + static_cast<size_t>(j0 / kBlock) * block_bytes;
    for (int i = 0; i < kBlock; ++i) x[i] = static_cast<float>(work[static_cast<size_t>(j0 + i)]);
    const Grid g = choose_grid(type, x, f.importance.data() + j0, blk);
    for (int i = 0; i < kBlock; ++i) {
      const int64_t j = j0 + i;
      const double v = work[static_cast<size_t>(j)];
      L[i] = g.level(static_cast<float>(v));
      const double err = (v - g.value(L[i])) / f.u[static_cast<size_t>(j * n + j)];
      const double* uj = f.u.data() + j * n;
      for (int64_t k = j + 1; k < n; ++k) work[static_cast<size_t>(k)] -= err * uj[k];
    }
    store_levels(type, L, blk);
  }
}

double hessian_error(const float* w, const float* q, const float* h, int64_t n) {
  std::vector<double> e(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) e[static_cast<size_t>(j)] = static_cast<double>(w[j]) - q[j];
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    const float* hi = h + i * n;
    for (int64_t j = 0; j < n; ++j) s += hi[j] * e[static_cast<size_t>(j)];
    sum += e[static_cast<size_t>(i)] * s;
  }
  return sum;
}

}  // namespace thinkmesh::quant
