// Attention over a widened copy of an F16 cache (AttentionRows::round_f16, what the forward pass
// uses for a prompt's token blocks) gives the very same bits as reading the F16 rows directly,
// at every kernel level this CPU has: the copy is exact and the roundings of q and p are kept.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "thinkmesh/half.h"

namespace thinkmesh::kernels {
namespace {

TEST(AttentionWidened, SameBitsAsTheF16CacheAtEveryLevel) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::amx, Isa::neon}) {
    if (!isa_supported(isa)) continue;
    for (int32_t hd : {32, 64, 128}) {
      for (int32_t n_cells : {1, 7, 8, 9, 130}) {
        const int32_t stride = hd * 2, n_rows = n_cells + 3;
        std::vector<uint16_t> k16(static_cast<size_t>(n_rows * stride)), v16(k16.size());
        for (auto& x : k16) x = fp32_to_fp16(normal(rng));
        for (auto& x : v16) x = fp32_to_fp16(normal(rng));
        std::vector<float> q(static_cast<size_t>(hd));
        for (float& x : q) x = normal(rng) * 2.0f;
        std::vector<int32_t> cells;
        for (int32_t c = 0; c < n_cells; ++c) cells.push_back((c * 7) % n_rows);

        AttentionRows direct;
        direct.k = k16.data() + hd;
        direct.v = v16.data() + hd;
        direct.row_stride = static_cast<size_t>(stride);
        direct.cells = cells.data();
        direct.n_cells = n_cells;
        direct.head_dim = hd;

        std::vector<float> kw(static_cast<size_t>(n_cells * hd)), vw(kw.size());
        std::vector<int32_t> identity;
        for (int32_t j = 0; j < n_cells; ++j) {
          const size_t row = static_cast<size_t>(cells[static_cast<size_t>(j)]) * stride + hd;
          from_f16(isa, &k16[row], &kw[static_cast<size_t>(j * hd)], hd);
          from_f16(isa, &v16[row], &vw[static_cast<size_t>(j * hd)], hd);
          identity.push_back(j);
        }
        AttentionRows widened = direct;
        widened.k = kw.data();
        widened.v = vw.data();
        widened.f16 = false;
        widened.round_f16 = true;
        widened.row_stride = static_cast<size_t>(hd);
        widened.cells = identity.data();

        std::vector<float> scratch(static_cast<size_t>(n_cells)), a(static_cast<size_t>(hd)),
            b(a.size());
        const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
        attend(isa, direct, q.data(), scale, scratch.data(), a.data());
        attend(isa, widened, q.data(), scale, scratch.data(), b.data());
        ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0)
            << isa_name(isa) << " hd " << hd << " cells " << n_cells;
      }
    }
  }
}

// Several queries over one transposed widened copy (what a prompt block uses) against the
// reference of each query on the F16 rows, for queries that see different prefixes.
TEST(AttentionBlock, EveryQueryMatchesTheReference) {
  std::mt19937 rng(23);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::amx, Isa::neon}) {
    if (!isa_supported(isa)) continue;
    for (int32_t hd : {32, 64, 128}) {
      for (int32_t n_q : {1, 2, 5, 16}) {
        for (int32_t n_max : {1, 9, 37, 130}) {
          const int32_t stride = hd * 3, n_rows = n_max + 2;
          std::vector<uint16_t> k16(static_cast<size_t>(n_rows * stride)), v16(k16.size());
          for (auto& x : k16) x = fp32_to_fp16(normal(rng));
          for (auto& x : v16) x = fp32_to_fp16(normal(rng) * 2.0f);
          std::vector<int32_t> cells;
          for (int32_t c = 0; c < n_max; ++c) cells.push_back((c * 5 + 1) % n_rows);
          std::vector<std::vector<float>> q(static_cast<size_t>(n_q)), got(q.size());
          std::vector<const float*> qp;
          std::vector<float*> op;
          std::vector<int32_t> n_cells;
          for (int32_t i = 0; i < n_q; ++i) {
            q[static_cast<size_t>(i)].resize(static_cast<size_t>(hd));
            for (float& x : q[static_cast<size_t>(i)]) x = normal(rng) * 3.0f;
            got[static_cast<size_t>(i)].assign(static_cast<size_t>(hd), NAN);
            qp.push_back(q[static_cast<size_t>(i)].data());
            op.push_back(got[static_cast<size_t>(i)].data());
            // prefixes of different lengths, the last query sees them all
            n_cells.push_back(i == n_q - 1 ? n_max : 1 + (i * 7) % n_max);
          }
          const size_t kt_stride = static_cast<size_t>((n_max + 7) / 8 * 8 + 8);
          std::vector<float> kt(kt_stride * static_cast<size_t>(hd), NAN);
          const uint16_t* kbase = k16.data() + hd;
          widen_k_transposed(isa, kbase, static_cast<size_t>(stride), cells.data(), n_max, hd,
                             kt.data(), kt_stride);
          std::vector<float> vw(static_cast<size_t>(n_max * hd));
          for (int32_t j = 0; j < n_max; ++j)
            from_f16(isa,
                     v16.data() + hd + static_cast<size_t>(cells[static_cast<size_t>(j)]) * stride,
                     &vw[static_cast<size_t>(j * hd)], hd);
          AttentionBlock b;
          b.kt = kt.data();
          b.kt_stride = kt_stride;
          b.v = vw.data();
          b.n_max = n_max;
          b.head_dim = hd;
          b.n_q = n_q;
          b.q = qp.data();
          b.out = op.data();
          b.n_cells = n_cells.data();
          std::vector<float> scratch(attend_block_scratch(b));
          const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
          const bool ran = attend_block(isa, b, scale, scratch.data());
          if (isa == Isa::avx2) {
            ASSERT_TRUE(ran) << "avx2 has a block kernel for head_dim " << hd;
          }
          if (!ran) continue;  // no block kernel at this level
          for (int32_t i = 0; i < n_q; ++i) {
            AttentionRows rows;
            rows.k = kbase;
            rows.v = v16.data() + hd;
            rows.row_stride = static_cast<size_t>(stride);
            rows.cells = cells.data();
            rows.n_cells = n_cells[static_cast<size_t>(i)];
            rows.head_dim = hd;
            std::vector<float> sc(static_cast<size_t>(n_max)), ref(static_cast<size_t>(hd));
            attend_reference(rows, q[static_cast<size_t>(i)].data(), scale, sc.data(), ref.data());
            for (int32_t d = 0; d < hd; ++d)
              ASSERT_NEAR(got[static_cast<size_t>(i)][static_cast<size_t>(d)],
                          ref[static_cast<size_t>(d)], 2e-3)
                  << isa_name(isa) << " hd " << hd << " n_q " << n_q << " n_max " << n_max
                  << " query " << i << " dim " << d;
          }
        }
      }
    }
  }
}

TEST(AttentionWidened, F16ConversionsRoundTripAtEveryLevel) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 100.0f);
  std::vector<float> x(1003);
  for (float& v : x) v = normal(rng);
  x[0] = 65504.0f;
  x[1] = 1e-7f;  // subnormal in F16
  x[2] = -0.0f;
  std::vector<uint16_t> ref(x.size());
  for (size_t i = 0; i < x.size(); ++i) ref[i] = fp32_to_fp16(x[i]);
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::amx, Isa::neon}) {
    if (!isa_supported(isa)) continue;
    std::vector<uint16_t> h(x.size());
    prepare_activations(isa, TensorType::F16, x.data(), h.data(), static_cast<int64_t>(x.size()));
    EXPECT_EQ(h, ref) << isa_name(isa);
    std::vector<float> back(x.size());
    from_f16(isa, h.data(), back.data(), static_cast<int64_t>(x.size()));
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(back[i], fp16_to_fp32(ref[i])) << isa_name(isa) << " at " << i;
  }
}

}  // namespace
}  // namespace thinkmesh::kernels
