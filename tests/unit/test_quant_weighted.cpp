// Importance-weighted quantizers (src/quant/quantize_weighted.cpp): on random rows with random
// per-column importances, the importance-weighted squared error must not exceed that of the
// round-to-nearest reference, every value must dequantize close to its input, and degenerate
// rows (all zero) must give zeros.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "thinkmesh/quantize.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh {
namespace {

constexpr int64_t kRows = 48;
constexpr int64_t kCols = 512;

struct Data {
  std::vector<float> x;           // [kRows][kCols]
  std::vector<float> importance;  // [kCols]
};

// Gaussian weights with a few outliers (as real weight rows have), log-normal importances.
Data make_data(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<float> uniform(0.f, 1.f);
  Data d;
  d.x.resize(kRows * kCols);
  for (float& v : d.x) v = 0.02f * normal(rng) * (uniform(rng) < 0.01f ? 6.f : 1.f);
  d.importance.resize(kCols);
  for (float& w : d.importance) w = std::exp(1.5f * normal(rng));
  return d;
}

std::vector<float> round_trip(TensorType type, const Data& d, const float* importance) {
  std::vector<uint8_t> q(row_bytes(type, kCols) * kRows);
  quantize_rows(type, d.x.data(), q.data(), kRows, kCols, importance);
  std::vector<float> back(d.x.size());
  for (int64_t r = 0; r < kRows; ++r)
    dequantize_row(type, q.data() + r * row_bytes(type, kCols), back.data() + r * kCols, kCols);
  return back;
}

double weighted_error(const Data& d, const std::vector<float>& back) {
  double e = 0;
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t j = 0; j < kCols; ++j) {
      const double diff = d.x[r * kCols + j] - back[r * kCols + j];
      e += d.importance[j] * diff * diff;
    }
  return e;
}

class WeightedQuantizer : public ::testing::TestWithParam<TensorType> {};

TEST_P(WeightedQuantizer, ImportanceWeightedErrorAtMostRoundToNearest) {
  const TensorType type = GetParam();
  for (uint32_t seed : {1u, 2u, 3u}) {
    const Data d = make_data(seed);
    const double ours = weighted_error(d, round_trip(type, d, d.importance.data()));
    const double rtn = weighted_error(d, round_trip(type, d, nullptr));
    EXPECT_LE(ours, rtn) << name(type) << " seed " << seed;
    EXPECT_GT(ours, 0) << name(type);
  }
}

TEST_P(WeightedQuantizer, ValuesDequantizeNearTheirInput) {
  const TensorType type = GetParam();
  const Data d = make_data(7);
  const std::vector<float> back = round_trip(type, d, d.importance.data());
  // Bound per 32-value block: no value may move by more than a quarter of its block's largest
  // magnitude (a 4-bit step is 1/8 of it; K-types share a super-block scale, hence the slack).
  for (int64_t b = 0; b < kRows * kCols / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(d.x[b * 32 + j]));
    for (int j = 0; j < 32; ++j) {
      const size_t i = static_cast<size_t>(b * 32 + j);
      ASSERT_TRUE(std::isfinite(back[i]));
      ASSERT_LE(std::fabs(back[i] - d.x[i]), 0.25f * amax + 1e-6f)
          << name(type) << " block " << b << " value " << j;
    }
  }
}

TEST_P(WeightedQuantizer, ZeroRowGivesZeros) {
  const TensorType type = GetParam();
  Data d = make_data(9);
  std::fill(d.x.begin(), d.x.end(), 0.f);
  for (float v : round_trip(type, d, d.importance.data())) ASSERT_EQ(v, 0.f) << name(type);
}

TEST_P(WeightedQuantizer, RejectsRowsThatDoNotFitTheBlocks) {
  std::vector<float> x(100, 1.f), w(100, 1.f);
  std::vector<uint8_t> out(4096);
  EXPECT_ANY_THROW(quantize_rows(GetParam(), x.data(), out.data(), 1, 100, w.data()));
}

INSTANTIATE_TEST_SUITE_P(Types, WeightedQuantizer,
                         ::testing::Values(TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0,
                                           TensorType::Q5_1, TensorType::Q4_K, TensorType::Q5_K,
                                           TensorType::Q6_K),
                         [](const auto& p) { return std::string(name(p.param)); });

// Without an importance matrix quantize_rows is exactly the reference quantizer.
TEST(QuantizeRows, WithoutImportanceIsTheReference) {
  const Data d = make_data(11);
  for (TensorType type : {TensorType::Q4_0, TensorType::Q8_0, TensorType::Q4_K, TensorType::Q6_K}) {
    const size_t rb = row_bytes(type, kCols);
    std::vector<uint8_t> a(rb * kRows), b(rb * kRows);
    quantize_rows(type, d.x.data(), a.data(), kRows, kCols, nullptr);
    for (int64_t r = 0; r < kRows; ++r)
      quantize_row_reference(type, d.x.data() + r * kCols, b.data() + r * rb, kCols);
    EXPECT_EQ(a, b) << name(type);
  }
}

// Q8_0 ignores the importance matrix, as llama.cpp's quantize_q8_0 does.
TEST(QuantizeRows, Q8_0IgnoresImportance) {
  const Data d = make_data(12);
  EXPECT_EQ(round_trip(TensorType::Q8_0, d, d.importance.data()),
            round_trip(TensorType::Q8_0, d, nullptr));
}

}  // namespace
}  // namespace thinkmesh
