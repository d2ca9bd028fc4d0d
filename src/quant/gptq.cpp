// GPTQ (gptq.h). Per matrix: H is damped, factored H = LLᵀ, inverted, and H⁻¹ factored again
// into UᵀU (U upper). Per row, at the start of each 32-value block the block's scale (and min)
// is chosen on the current, already error-compensated values: the importance-weighted search
// (quantize_weighted.cpp, column weights 1/U_jj²), then scales around it scored by GPTQ's own
// block loss. Each column j of the block is rounded on that grid and
// w[k] −= (w[j] − q[j]) / U[j][j] · U[j][k] for every later column k (the paper's update with
// the inverse Hessian's Cholesky rows). Then twice: all block scales of the row refit by least
// squares on (w − q)·H·(w − q)ᵀ with the levels fixed, and a GPTQ pass on those grids; the
// best row is kept. K-types: one pass, super-block scales from the weighted K search.
// Costs O(n²) per row and pass; no lazy batched updates (meant for small models for now).
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
// Scale refits alternated with GPTQ passes after the first pass (gptq_quantize_row).
constexpr int kRefitRounds = 2;

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

// Stores a (possibly changed) scale and min into the header choose_grid wrote.
void store_header(TensorType type, const Grid& g, uint8_t* blk) {
  switch (type) {
    case TensorType::Q4_0:
      reinterpret_cast<block_q4_0*>(blk)->d = fp32_to_fp16(g.d);
      break;
    case TensorType::Q4_1:
      reinterpret_cast<block_q4_1*>(blk)->d = fp32_to_fp16(g.d);
      reinterpret_cast<block_q4_1*>(blk)->m = fp32_to_fp16(g.m);
      break;
    case TensorType::Q5_0:
      reinterpret_cast<block_q5_0*>(blk)->d = fp32_to_fp16(g.d);
      break;
    case TensorType::Q5_1:
      reinterpret_cast<block_q5_1*>(blk)->d = fp32_to_fp16(g.d);
      reinterpret_cast<block_q5_1*>(blk)->m = fp32_to_fp16(g.m);
      break;
    case TensorType::Q8_0:
      reinterpret_cast<block_q8_0*>(blk)->d = fp32_to_fp16(g.d);
      break;
    default:
      throw Error(ErrorKind::internal, "gptq: no header for " + std::string(name(type)));
  }
}

float round_f16(float v) {
  return fp16_to_fp32(fp32_to_fp16(v));
}

// GPTQ's loss of quantizing the block on grid g: Σ_i ((w_i − q_i) / U_ii)², with the
// compensation of each column's error applied to the block's later columns (the columns after
// the block do not change this block's loss).
double block_loss(const Grid& g, const double* w, const GptqFactor& f, int64_t j0) {
  const int64_t n = f.n;
  double x[kBlock];
  std::copy(w, w + kBlock, x);
  double loss = 0;
  for (int i = 0; i < kBlock; ++i) {
    const int64_t j = j0 + i;
    const double e =
        (x[i] - g.value(g.level(static_cast<float>(x[i])))) / f.u[static_cast<size_t>(j * n + j)];
    loss += e * e;
    const double* uj = f.u.data() + j * n + j0;
    for (int k = i + 1; k < kBlock; ++k) x[k] -= e * uj[k];
  }
  return loss;
}

// The importance-weighted search's grid, then scales (and mins) around it; keeps the one with
// the lowest block_loss. Candidates are rounded to F16 as the file stores them.
Grid best_grid(const Grid& start, bool has_min, const double* w, const GptqFactor& f, int64_t j0) {
  Grid best = start;
  double best_loss = block_loss(start, w, f, j0);
  for (int is = -10; is <= 10; ++is) {
    for (int im = has_min ? -4 : 0; im <= (has_min ? 4 : 0); ++im) {
      if (is == 0 && im == 0) continue;
      Grid g = start;
      g.d = round_f16(start.d * (1.0f + 0.025f * static_cast<float>(is)));
      if (has_min) g.m = round_f16(start.m + 0.125f * static_cast<float>(im) * start.d);
      const double loss = block_loss(g, w, f, j0);
      if (loss < best_loss) {
        best_loss = loss;
        best = g;
      }
    }
  }
  return best;
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
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
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
    f.h.assign(static_cast<size_t>(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) f.h[static_cast<size_t>(i * n + j)] = h[i * n + j];
    for (int64_t i = 0; i < n; ++i) {
      double& d = f.h[static_cast<size_t>(i * n + i)];
      if (!(d > 0)) d = mean_diag;
      d += damp;
    }
    // The scale search weights column i by 1 / U_ii², what an error there costs once the
    // later columns have compensated it (GPTQ's loss term), rather than by diag(H).
    f.importance.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const double uii = f.u[static_cast<size_t>(i * n + i)];
      f.importance[static_cast<size_t>(i)] = static_cast<float>(1.0 / (uii * uii));
    }
    return f;
  }
  throw Error(ErrorKind::invalid_file, "gptq: the Hessian (" + std::to_string(n) +
                                           " inputs) is not positive definite "
                                           "even with damping " +
                                           std::to_string(damp / 10));
}

namespace {

// One GPTQ pass over a row: with `choose`, each block's grid is chosen on the current values
// (grids[b] is written), else grids[b] is used as given. Writes every column's level.
void gptq_pass(TensorType type, const float* w, const GptqFactor& f, bool choose,
               std::vector<Grid>& grids, std::vector<int>& levels, std::vector<double>& work) {
  const int64_t n = f.n;
  work.assign(w, w + n);
  float x[kBlock];
  uint8_t scratch[64];  // one block's bytes (at most 34 for Q8_0)
  for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
    Grid& g = grids[static_cast<size_t>(j0 / kBlock)];
    if (choose) {
      for (int i = 0; i < kBlock; ++i) x[i] = static_cast<float>(work[static_cast<size_t>(j0 + i)]);
      g = choose_grid(type, x, f.importance.data() + j0, scratch);
      g = best_grid(g, g.offset == 0 && type != TensorType::Q8_0, work.data() + j0, f, j0);
    }
    for (int i = 0; i < kBlock; ++i) {
      const int64_t j = j0 + i;
      const double v = work[static_cast<size_t>(j)];
      const int l = g.level(static_cast<float>(v));
      levels[static_cast<size_t>(j)] = l;
      const double err = (v - g.value(l)) / f.u[static_cast<size_t>(j * n + j)];
      const double* uj = f.u.data() + j * n;
      for (int64_t k = j + 1; k < n; ++k) work[static_cast<size_t>(k)] -= err * uj[k];
    }
  }
}

// (w − q)·H·(w − q)ᵀ with the damped H of the factor, q from grids and levels.
double row_loss(const float* w, const GptqFactor& f, const std::vector<Grid>& grids,
                const std::vector<int>& levels) {
  const int64_t n = f.n;
  std::vector<double> e(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j)
    e[static_cast<size_t>(j)] =
        w[j] - grids[static_cast<size_t>(j / kBlock)].value(levels[static_cast<size_t>(j)]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    const double* hi = f.h.data() + i * n;
    for (int64_t j = 0; j < n; ++j) s += hi[j] * e[static_cast<size_t>(j)];
    sum += e[static_cast<size_t>(i)] * s;
  }
  return sum;
}

// With the levels fixed, the scales (and mins) of all blocks of the row that minimise
// (w − q)·H·(w − q)ᵀ: q = A·θ with one column of A per block scale (the block's levels minus
// the offset) and per block min (ones on the block); θ solves (AᵀHA)θ = AᵀHw. F16-rounded.
// False (grids unchanged) when the system is singular.
bool refit_scales(const float* w, const GptqFactor& f, bool has_min, std::vector<Grid>& grids,
                  const std::vector<int>& levels) {
  const int64_t n = f.n, nb = n / kBlock, per = has_min ? 2 : 1, K = nb * per;
  // Column k of A: block b = k / per, scale (k % per == 0) or min.
  auto a = [&](int64_t k, int64_t j) -> double {
    const int64_t b = k / per;
    if (j / kBlock != b) return 0;
    if (k % per == 1) return 1;
    const Grid& g = grids[static_cast<size_t>(b)];
    return levels[static_cast<size_t>(j)] - g.offset;
  };
  std::vector<double> ha(static_cast<size_t>(K * n), 0.0);  // (H·A) column k at k·n
  for (int64_t k = 0; k < K; ++k) {
    const int64_t j0 = (k / per) * kBlock;
    for (int64_t j = j0; j < j0 + kBlock; ++j) {
      const double akj = a(k, j);
      if (akj == 0) continue;
      for (int64_t i = 0; i < n; ++i)
        ha[static_cast<size_t>(k * n + i)] += f.h[static_cast<size_t>(i * n + j)] * akj;
    }
  }
  std::vector<double> g(static_cast<size_t>(K * K)), r(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += ha[static_cast<size_t>(k * n + i)] * w[i];
    r[static_cast<size_t>(k)] = s;
    for (int64_t l = 0; l < K; ++l) {
      const int64_t j0 = (l / per) * kBlock;
      double t = 0;
      for (int64_t j = j0; j < j0 + kBlock; ++j) t += a(l, j) * ha[static_cast<size_t>(k * n + j)];
      g[static_cast<size_t>(k * K + l)] = t;
    }
  }
  if (!cholesky_lower(g, K)) return false;
  // Forward then back substitution with L (g now holds it).
  std::vector<double> y(static_cast<size_t>(K));
  for (int64_t i = 0; i < K; ++i) {
    double s = r[static_cast<size_t>(i)];
    for (int64_t k = 0; k < i; ++k)
      s -= g[static_cast<size_t>(i * K + k)] * y[static_cast<size_t>(k)];
    y[static_cast<size_t>(i)] = s / g[static_cast<size_t>(i * K + i)];
  }
  for (int64_t i = K - 1; i >= 0; --i) {
    double s = y[static_cast<size_t>(i)];
    for (int64_t k = i + 1; k < K; ++k)
      s -= g[static_cast<size_t>(k * K + i)] * y[static_cast<size_t>(k)];
    y[static_cast<size_t>(i)] = s / g[static_cast<size_t>(i * K + i)];
  }
  for (int64_t b = 0; b < nb; ++b) {
    const double d = y[static_cast<size_t>(b * per)];
    if (!std::isfinite(d)) return false;
    grids[static_cast<size_t>(b)].d = round_f16(static_cast<float>(d));
    if (has_min)
      grids[static_cast<size_t>(b)].m =
          round_f16(static_cast<float>(y[static_cast<size_t>(b * per + 1)]));
  }
  return true;
}

// K-types: at the start of each 256-value super-block, the importance-weighted K search
// chooses every group's scale (and min) on the current values (the groups share the 6- or
// 8-bit quantization of their scales against the super-block's, so they cannot be chosen one
// by one); then the columns are rounded on their group's grid with GPTQ's updates. No scale
// search or refit: the scales are integers under a shared F16 scale.
void k_grids(TensorType type, const uint8_t* blk, Grid* grids) {
  if (type == TensorType::Q6_K) {
    const auto* y = reinterpret_cast<const block_q6_K*>(blk);
    const float d = fp16_to_fp32(y->d);
    for (int g = 0; g < QK_K / 16; ++g) {
      grids[g] = Grid{};
      grids[g].d = d * static_cast<float>(y->scales[g]);
      grids[g].lo = 0, grids[g].hi = 63, grids[g].offset = 32;
    }
    return;
  }
  // Q4_K and Q5_K share their header layout.
  const auto* y = reinterpret_cast<const block_q4_K*>(blk);
  const float d = fp16_to_fp32(y->d), dmin = fp16_to_fp32(y->dmin);
  const uint8_t* q = y->scales;
  for (int j = 0; j < QK_K / 32; ++j) {
    int sc, m;
    if (j < 4) {
      sc = q[j] & 63;
      m = q[j + 4] & 63;
    } else {
      sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
      m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
    grids[j] = Grid{};
    grids[j].d = d * static_cast<float>(sc);
    grids[j].m = -dmin * static_cast<float>(m);
    grids[j].lo = 0, grids[j].hi = type == TensorType::Q4_K ? 15 : 31;
  }
}

// Writes 256 levels into a K block whose header the search wrote.
void store_k_levels(TensorType type, const int* L, uint8_t* blk) {
  if (type == TensorType::Q4_K) {
    uint8_t* q = reinterpret_cast<block_q4_K*>(blk)->qs;
    for (int j = 0; j < QK_K; j += 64, q += 32)
      for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
  } else if (type == TensorType::Q5_K) {
    auto* y = reinterpret_cast<block_q5_K*>(blk);
    uint8_t* qh = y->qh;
    uint8_t* ql = y->qs;
    std::memset(qh, 0, QK_K / 8);
    uint8_t m1 = 1, m2 = 2;
    for (int b = 0; b < QK_K; b += 64, ql += 32) {
      for (int j = 0; j < 32; ++j) {
        int l1 = L[b + j], l2 = L[b + j + 32];
        if (l1 > 15) {
          l1 -= 16;
          qh[j] |= m1;
        }
        if (l2 > 15) {
          l2 -= 16;
          qh[j] |= m2;
        }
        ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
      }
      m1 = static_cast<uint8_t>(m1 << 2);
      m2 = static_cast<uint8_t>(m2 << 2);
    }
  } else {
    auto* y = reinterpret_cast<block_q6_K*>(blk);
    uint8_t* ql = y->ql;
    uint8_t* qh = y->qh;
    for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32)
      for (int l = 0; l < 32; ++l) {
        const int v0 = L[j + l], v1 = L[j + l + 32], v2 = L[j + l + 64], v3 = L[j + l + 96];
        ql[l] = static_cast<uint8_t>((v0 & 0xF) | ((v2 & 0xF) << 4));
        ql[l + 32] = static_cast<uint8_t>((v1 & 0xF) | ((v3 & 0xF) << 4));
        qh[l] = static_cast<uint8_t>((v0 >> 4) | ((v1 >> 4) << 2) | ((v2 >> 4) << 4) |
                                     ((v3 >> 4) << 6));
      }
  }
}

void gptq_row_k(TensorType type, const float* w, const GptqFactor& f, void* dst,
                std::vector<double>& work) {
  const int64_t n = f.n;
  const int group = type == TensorType::Q6_K ? 16 : 32;
  const size_t block_bytes = row_bytes(type, QK_K);
  work.assign(w, w + n);
  float x[QK_K];
  int L[QK_K];
  Grid grids[QK_K / 16];
  for (int64_t j0 = 0; j0 < n; j0 += QK_K) {
    uint8_t* blk = static_cast<uint8_t*>(dst) + static_cast<size_t>(j0 / QK_K) * block_bytes;
    for (int i = 0; i < QK_K; ++i) x[i] = static_cast<float>(work[static_cast<size_t>(j0 + i)]);
    const float* imp = f.importance.data() + j0;
    if (type == TensorType::Q4_K)
      quantize_q4_K_weighted(x, reinterpret_cast<block_q4_K*>(blk), QK_K, imp);
    else if (type == TensorType::Q5_K)
      quantize_q5_K_weighted(x, reinterpret_cast<block_q5_K*>(blk), QK_K, imp);
    else
      quantize_q6_K_weighted(x, reinterpret_cast<block_q6_K*>(blk), QK_K, imp);
    k_grids(type, blk, grids);
    for (int i = 0; i < QK_K; ++i) {
      const int64_t j = j0 + i;
      const Grid& g = grids[i / group];
      const double v = work[static_cast<size_t>(j)];
      L[i] = g.level(static_cast<float>(v));
      const double err = (v - g.value(L[i])) / f.u[static_cast<size_t>(j * n + j)];
      const double* uj = f.u.data() + j * n;
      for (int64_t k = j + 1; k < n; ++k) work[static_cast<size_t>(k)] -= err * uj[k];
    }
    store_k_levels(type, L, blk);
  }
}

}  // namespace

void gptq_quantize_row(TensorType type, const float* w, const GptqFactor& f, void* dst,
                       std::vector<double>& work) {
  const int64_t n = f.n;
  if (!gptq_supports(type))
    throw Error(ErrorKind::unsupported, "gptq: " + std::string(name(type)) + " not supported");
  const bool k_type = traits(type).block_size == QK_K;
  const int64_t block = k_type ? QK_K : kBlock;
  if (n % block != 0)
    throw Error(ErrorKind::invalid_argument, "gptq: rows of " + std::to_string(n) +
                                                 " are not a multiple of " + std::to_string(block));
  if (k_type) {
    gptq_row_k(type, w, f, dst, work);
    return;
  }
  const auto nb = static_cast<size_t>(n / kBlock);
  std::vector<Grid> grids(nb), best_grids;
  std::vector<int> levels(static_cast<size_t>(n)), best_levels;
  gptq_pass(type, w, f, true, grids, levels, work);
  double best = row_loss(w, f, grids, levels);
  best_grids = grids;
  best_levels = levels;
  // Alternate: scales refit to the levels, levels re-chosen by GPTQ on those grids; keep the
  // best row (a refit of fixed levels never loses before F16 rounding, a new pass may).
  const bool has_min = type == TensorType::Q4_1 || type == TensorType::Q5_1;
  for (int round = 0; round < kRefitRounds; ++round) {
    if (!refit_scales(w, f, has_min, grids, levels)) break;
    const double refit = row_loss(w, f, grids, levels);
    if (refit < best) {
      best = refit;
      best_grids = grids;
      best_levels = levels;
    }
    gptq_pass(type, w, f, false, grids, levels, work);
    const double again = row_loss(w, f, grids, levels);
    if (again < best) {
      best = again;
      best_grids = grids;
      best_levels = levels;
    }
  }
  const size_t block_bytes = row_bytes(type, kBlock);
  auto* out = static_cast<uint8_t*>(dst);
  for (size_t b = 0; b < nb; ++b) {
    uint8_t* blk = out + b * block_bytes;
    store_header(type, best_grids[b], blk);
    store_levels(type, best_levels.data() + b * kBlock, blk);
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
