// Every SIMD matrix kernel, at every kernel level this CPU can run, against the scalar reference
// (gemm_reference, i.e. vec_dot per row and token) on random data of awkward sizes: rows and
// token counts that are not multiples of the 4-row / 4-token tiles, rows of 1, 3, 7 and 97
// blocks (odd block counts leave half a 2-block step), and a very long row.
//
// Error bound, every type: |y - y_ref| <= 2e-5 * sum_i |w_i x_i| + 1e-6 (sums over the float
// inputs before quantization). The integer block sums are exact at every level; only the order
// in which float partial sums are added differs (F32 lanes instead of ggml's sequence), so the
// difference is a few ulps of the magnitude of the terms.
#include <cmath>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/repack.h"
#include "kernels/vec_dot.h"
#include "thinkmesh/half.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh::kernels {
namespace {

// Types with a kernel at each SIMD level (the others fall back to the scalar reference).
const TensorType kSimdTypes[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16,
                                 TensorType::Q4_0, TensorType::Q5_0, TensorType::Q8_0,
                                 TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K};
// Types with a kernel at the avx2 level only (avx512/amx products fall back to it; NEON has
// none yet): tested at every level that has one, and required of x86 SIMD levels below.
const TensorType kAvx2Types[] = {TensorType::Q4_1, TensorType::Q5_1};

struct Case {
  TensorType type;
  Isa isa;
};

std::string case_name(const testing::TestParamInfo<Case>& info) {
  return std::string(isa_name(info.param.isa)) + "_" + std::string(name(info.param.type));
}

std::vector<Case> all_cases() {
  std::vector<Case> out;
  for (Isa isa : {Isa::avx2, Isa::avx512, Isa::amx, Isa::neon}) {
    for (TensorType t : kSimdTypes) out.push_back({t, isa});
    if (isa == Isa::neon) continue;  // no NEON kernels for these: no case that can only skip
    for (TensorType t : kAvx2Types) out.push_back({t, isa});
  }
  return out;
}

class GemmKernelTest : public testing::TestWithParam<Case> {};

// Random weights N(0, 1) and activations N(0, 3) of one product: the weights quantized to
// `type` by the reference quantizer, the activations converted to its activation type as the
// kernels get them; p describes them (y left unset). bound(r, t) is the error bound every
// kernel test here uses: 2e-5 * sum_i |w_i x_i| + 1e-6 over the float inputs.
struct RandomProblem {
  std::vector<float> wf, xf;
  std::vector<uint8_t> w, a;
  GemmProblem p;
  int64_t n;

  RandomProblem(TensorType type, int64_t rows, int64_t n_values, int64_t tokens, std::mt19937& rng)
      : n(n_values) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    wf.resize(static_cast<size_t>(rows * n));
    xf.resize(static_cast<size_t>(tokens * n));
    for (float& v : wf) v = normal(rng);
    for (float& v : xf) v = normal(rng) * 3.0f;
    const size_t wrow = row_bytes(type, n);
    w.resize(wrow * static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r)
      quantize_row_reference(type, &wf[static_cast<size_t>(r * n)], &w[wrow * r], n);
    const TensorType act = activation_type(type);
    const size_t arow = row_bytes(act, n);
    a.resize(arow * static_cast<size_t>(tokens));
    for (int64_t t = 0; t < tokens; ++t)
      quantize_activations(act, &xf[static_cast<size_t>(t * n)], &a[arow * t], n);
    p.w_type = type;
    p.w = w.data();
    p.w_stride = wrow;
    p.n = n;
    p.act = a.data();
    p.act_stride = arow;
    p.n_tokens = tokens;
    p.y_stride = rows;
  }
  RandomProblem(const RandomProblem&) = delete;
  RandomProblem& operator=(const RandomProblem&) = delete;

  double bound(int64_t r, int64_t t) const {
    double mag = 0.0;
    for (int64_t i = 0; i < n; ++i)
      mag += std::fabs(static_cast<double>(wf[static_cast<size_t>(r * n + i)]) *
                       xf[static_cast<size_t>(t * n + i)]);
    return 2e-5 * mag + 1e-6;
  }
};

void run_case(TensorType type, Isa isa, int64_t rows, int64_t n_blocks, int64_t n_tokens,
              std::mt19937& rng) {
  const kernels::GemmKernel kernel = find_gemm(isa, type);
  ASSERT_NE(kernel, nullptr);
  const int64_t bs = traits(type).block_size == 1 ? 16 : traits(type).block_size;
  // Float types: n need not be a multiple of anything; use an odd length.
  const int64_t n = traits(type).block_size == 1 ? n_blocks * bs + 5 : n_blocks * bs;
  RandomProblem rp(type, rows, n, n_tokens, rng);
  GemmProblem& p = rp.p;
  std::vector<float> y_ref(static_cast<size_t>(rows * n_tokens)), y(y_ref.size(), NAN);
  p.y = y_ref.data();
  gemm_reference(p, 0, rows);
  p.y = y.data();
  // Two row ranges, as the thread pool splits them.
  const int64_t mid = rows / 2;
  kernel(p, 0, mid);
  kernel(p, mid, rows);

  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      const size_t at = static_cast<size_t>(t * rows + r);
      ASSERT_NEAR(y[at], y_ref[at], rp.bound(r, t))
          << name(type) << " at " << isa_name(isa) << ": row " << r << " of " << rows << ", token "
          << t << " of " << n_tokens << ", n=" << n;
    }
  }
}

TEST_P(GemmKernelTest, MatchesScalarReferenceOnAwkwardSizes) {
  const auto [type, isa] = GetParam();
  std::string why;
  if (!isa_supported(isa, &why)) GTEST_SKIP() << "level " << isa_name(isa) << " skipped: " << why;
  if (find_gemm(isa, type) == nullptr) {
    GTEST_SKIP() << "level " << isa_name(isa) << " has no " << name(type)
                 << " kernel: products use the next lower level";
  }
  std::mt19937 rng(1234 + static_cast<int>(type));
  for (int64_t rows : {1, 3, 5, 67}) {
    for (int64_t blocks : {1, 3, 7}) {
      for (int64_t tokens : {1, 2, 5, 7}) {
        run_case(type, isa, rows, blocks, tokens, rng);
        if (HasFatalFailure()) return;
      }
    }
  }
  run_case(type, isa, 9, 97, 3, rng);  // a row of 97 blocks
  if (HasFatalFailure()) return;
  const int64_t long_blocks = traits(type).block_size == 256 ? 64 : 512;  // 16384 values
  run_case(type, isa, 2, long_blocks, 1, rng);
}

INSTANTIATE_TEST_SUITE_P(AllLevels, GemmKernelTest, testing::ValuesIn(all_cases()), case_name);

TEST(GemmSelect, EveryLevelFallsBackToAKernelForEveryVecDotType) {
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::amx, Isa::neon}) {
    for (TensorType t : {TensorType::Q4_1, TensorType::Q5_1, TensorType::Q2_K, TensorType::Q3_K,
                         TensorType::Q8_0, TensorType::F16}) {
      EXPECT_NE(select_gemm(isa, t), nullptr) << isa_name(isa) << " " << name(t);
    }
  }
  EXPECT_EQ(select_gemm(Isa::scalar, TensorType::Q4_1), &gemm_reference);
}

TEST(GemmSelect, TheSimdLevelOfThisCpuHasTheBenchmarkTypes) {
  const Isa best = best_isa();
  if (best == Isa::scalar) GTEST_SKIP() << "this CPU has no SIMD level";
  for (TensorType t : kSimdTypes) {
    EXPECT_NE(find_gemm(best, t), nullptr) << isa_name(best) << " lacks " << name(t);
  }
  if (best == Isa::avx2 || best == Isa::avx512 || best == Isa::amx) {
    for (TensorType t : kAvx2Types) {
      EXPECT_NE(select_gemm(best, t), &gemm_reference) << isa_name(best) << " lacks " << name(t);
    }
  }
}

// The SIMD activation conversions give the reference's bytes: random rows, an all-zero block,
// values on rounding ties (x * 127/amax = k + 0.5) and a repeated largest magnitude of both
// signs (Q8_K takes the first).
TEST(PrepareActivations, ByteIdenticalToTheReferenceAtEveryLevel) {
  std::mt19937 rng(77);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::amx, Isa::neon}) {
    if (!isa_supported(isa)) continue;
    for (TensorType act : {TensorType::Q8_0, TensorType::Q8_1, TensorType::Q8_K, TensorType::F16,
                           TensorType::F32, TensorType::BF16}) {
      for (int64_t n : {256, 512, 4096}) {
        std::vector<float> x(static_cast<size_t>(n));
        for (float& v : x) v = normal(rng);
        for (int j = 0; j < 32; ++j) x[static_cast<size_t>(j)] = 0.0f;  // a zero Q8_0 block
        x[40] = 127.0f;                                                 // amax 127: ties at k+0.5
        x[41] = 2.5f;
        x[42] = -3.5f;
        x[300 % n] = -9.0f;
        x[301 % n] = 9.0f;
        const size_t bytes = row_bytes(act, n);
        std::vector<uint8_t> ref(bytes), got(bytes, 0xAB);
        quantize_activations(act, x.data(), ref.data(), n);
        prepare_activations(isa, act, x.data(), got.data(), n);
        EXPECT_EQ(got, ref) << name(act) << " at " << isa_name(isa) << ", n=" << n;
      }
    }
  }
}

// Attention of one head at every level against the reference: F16 and F32 caches, cell counts
// around the 8-cell step, cells out of order, head sizes 32/64/128. Bound: 1e-5 relative to the
// largest |V| plus the F16 rounding of one probability (2^-11 relative).
TEST(AttentionKernel, MatchesTheReferenceAtEveryLevel) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (Isa isa : {Isa::avx2, Isa::avx512, Isa::amx, Isa::neon}) {
    if (!isa_supported(isa)) continue;
    for (bool f16 : {true, false}) {
      for (int32_t hd : {32, 64, 128}) {
        for (int32_t n_cells : {1, 7, 8, 9, 40, 301}) {
          const int32_t stride = hd * 3, n_rows = n_cells + 5;
          std::vector<float> kf(static_cast<size_t>(n_rows * stride)), vf(kf.size()),
              q(static_cast<size_t>(hd));
          for (float& v : kf) v = normal(rng);
          for (float& v : vf) v = normal(rng);
          for (float& v : q) v = normal(rng);
          std::vector<uint16_t> k16(kf.size()), v16(kf.size());
          for (size_t i = 0; i < kf.size(); ++i) {
            k16[i] = fp32_to_fp16(kf[i]);
            v16[i] = fp32_to_fp16(vf[i]);
          }
          std::vector<int32_t> cells;
          for (int32_t c = n_rows - 1; static_cast<int32_t>(cells.size()) < n_cells; --c)
            cells.push_back(c);
          AttentionRows rows;
          rows.f16 = f16;
          rows.k = f16 ? static_cast<const void*>(k16.data() + hd) : kf.data() + hd;
          rows.v = f16 ? static_cast<const void*>(v16.data() + hd) : vf.data() + hd;
          rows.row_stride = static_cast<size_t>(stride);
          rows.cells = cells.data();
          rows.n_cells = n_cells;
          rows.head_dim = hd;
          std::vector<float> scratch(static_cast<size_t>(n_cells)), ref(static_cast<size_t>(hd)),
              got(ref.size());
          const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
          attend_reference(rows, q.data(), scale, scratch.data(), ref.data());
          attend(isa, rows, q.data(), scale, scratch.data(), got.data());
          for (int32_t i = 0; i < hd; ++i) {
            ASSERT_NEAR(got[static_cast<size_t>(i)], ref[static_cast<size_t>(i)], 2e-3)
                << isa_name(isa) << (f16 ? " F16" : " F32") << " hd " << hd << " cells " << n_cells;
          }
        }
      }
    }
  }
}

TEST(ElementwiseKernels, RmsNormAndSwigluMatchTheScalarCode) {
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (Isa isa : {Isa::avx2, Isa::avx512, Isa::amx, Isa::neon}) {
    if (!isa_supported(isa)) continue;
    for (int64_t n : {1, 7, 8, 64, 257, 4096}) {
      std::vector<float> x(static_cast<size_t>(n)), w(x.size()), up(x.size());
      for (size_t i = 0; i < x.size(); ++i) {
        x[i] = normal(rng);
        w[i] = normal(rng);
        up[i] = normal(rng);
      }
      x[0] = -95.0f;  // exp(-x) overflows in float: silu -> -0
      std::vector<float> y_ref(x.size()), y(x.size());
      rms_norm(Isa::scalar, x.data(), w.data(), 1e-5f, n, y_ref.data());
      rms_norm(isa, x.data(), w.data(), 1e-5f, n, y.data());
      for (size_t i = 0; i < x.size(); ++i)
        ASSERT_NEAR(y[i], y_ref[i], 1e-6f * (1 + std::fabs(y_ref[i])));
      std::vector<float> s_ref = x, s = x;
      swiglu(Isa::scalar, s_ref.data(), up.data(), n);
      swiglu(isa, s.data(), up.data(), n);
      for (size_t i = 0; i < x.size(); ++i)
        ASSERT_NEAR(s[i], s_ref[i], 1e-5f * (1 + std::fabs(s_ref[i]))) << "n " << n << " i " << i;
    }
  }
}

// Repacked (row-interleaved) layouts against the reference on the file's layout: same bound.
// The repacked buffer carries a guard tail that repack() must leave alone (repacked_bytes is
// the size it writes).
void run_repacked_case(TensorType type, Isa isa, int64_t rows, int64_t n, int64_t tokens,
                       std::mt19937& rng) {
  ASSERT_TRUE(can_repack(isa, type, rows, n)) << name(type) << " rows " << rows << " n " << n;
  RandomProblem rp(type, rows, n, tokens, rng);
  GemmProblem& p = rp.p;
  const size_t packed_bytes = repacked_bytes(type, rows, n);
  constexpr size_t kGuard = 64;
  std::vector<uint8_t> packed(packed_bytes + kGuard, 0xA5);
  repack(type, rp.w.data(), p.w_stride, rows, n, packed.data());
  for (size_t i = packed_bytes; i < packed.size(); ++i)
    ASSERT_EQ(packed[i], 0xA5) << name(type) << ": repack wrote past repacked_bytes";
  std::vector<float> y_ref(static_cast<size_t>(rows * tokens)), y(y_ref.size(), NAN);
  p.y = y_ref.data();
  gemm_reference(p, 0, rows);
  p.w = packed.data();
  p.y = y.data();
  const GemmKernel k = find_repacked_gemm(isa, type);
  k(p, 0, rows / 2 / 8 * 8);  // two row ranges (multiples of 8), as the thread pool splits them
  k(p, rows / 2 / 8 * 8, rows);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      const size_t at = static_cast<size_t>(t * rows + r);
      ASSERT_NEAR(y[at], y_ref[at], rp.bound(r, t))
          << name(type) << " " << isa_name(isa) << " rows " << rows << " n " << n << " tokens "
          << tokens << " at row " << r << " token " << t;
    }
  }
}

TEST(RepackedGemm, InterleavedLayoutsMatchTheReference) {
  for (TensorType type : {TensorType::Q4_0, TensorType::Q8_0, TensorType::Q4_1, TensorType::Q5_1,
                          TensorType::Q4_K, TensorType::Q6_K}) {
    std::mt19937 rng(31);
    const bool k_quant = traits(type).block_size == 256;
    const std::vector<int64_t> block_counts =
        k_quant ? std::vector<int64_t>{1, 2, 3} : std::vector<int64_t>{1, 3, 8, 97};
    const int64_t bs = traits(type).block_size;
    int levels = 0;
    for (Isa isa : {Isa::avx2, Isa::avx512, Isa::amx, Isa::neon}) {
      if (!isa_supported(isa) || find_repacked_gemm(isa, type) == nullptr) continue;
      ++levels;
      for (int64_t rows : {8, 16, 72}) {
        for (int64_t blocks : block_counts) {
          for (int64_t tokens : {1, 2, 3, 4, 5, 9}) {
            run_repacked_case(type, isa, rows, blocks * bs, tokens, rng);
            if (HasFatalFailure()) return;
          }
        }
      }
      if (k_quant) {
        run_repacked_case(type, isa, 16, 64 * bs, 5, rng);  // a row of 16,384 values
        if (HasFatalFailure()) return;
      }
    }
    if (levels == 0)
      std::cout << "[ SKIPPED  ] no level of this CPU repacks " << name(type) << "\n";
  }
}

// Which shapes repack: rows in groups of 8, whole blocks, and the k-quants only with whole
// 256-value super-blocks.
TEST(RepackedGemm, CanRepackNeedsWholeRowGroupsAndBlocks) {
  const Isa isa = Isa::avx2;
  if (!isa_supported(isa) || find_repacked_gemm(isa, TensorType::Q4_K) == nullptr)
    GTEST_SKIP() << "no avx2 repacked kernels on this CPU";
  for (TensorType type : {TensorType::Q4_K, TensorType::Q6_K}) {
    EXPECT_TRUE(can_repack(isa, type, 8, 256)) << name(type);
    EXPECT_TRUE(can_repack(isa, type, 32000, 256)) << name(type);
    EXPECT_FALSE(can_repack(isa, type, 12, 256)) << name(type);
    EXPECT_FALSE(can_repack(isa, type, 0, 256)) << name(type);
    EXPECT_FALSE(can_repack(isa, type, 8, 65536 + 256)) << name(type);
    EXPECT_GE(repacked_bytes(type, 16, 512), row_bytes(type, 512) * 16) << name(type);
  }
  EXPECT_FALSE(can_repack(isa, TensorType::Q5_K, 8, 256));
  EXPECT_FALSE(can_repack(Isa::scalar, TensorType::Q4_K, 8, 256));
}

TEST(Isa, NamesRoundTripAndUnknownNamesAreRejected) {
  for (Isa i : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::amx, Isa::neon})
    EXPECT_EQ(parse_isa(isa_name(i)), i);
  EXPECT_FALSE(parse_isa("sse9").has_value());
  std::string why;
  EXPECT_TRUE(isa_supported(Isa::scalar, &why));
}

}  // namespace
}  // namespace thinkmesh::kernels
