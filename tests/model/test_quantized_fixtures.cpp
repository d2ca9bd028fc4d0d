// Our reference quantizers against llama.cpp's own files: quantizing the F32 master's values
// with quantize_row_reference must give exactly the bytes llama-quantize (c392e50, no imatrix)
// wrote, and dequantizing those bytes must land within each format's error bound.
//
// tiny-llama-spm-F16.gguf holds exactly the F32 master's values (fixtures/MANIFEST.md §1.0), so
// upcasting its F16 tensors gives the master. stories260K.gguf is an F32 master itself; its
// llama.cpp-quantized mixes add Q5_0 and F16 (rows of 172 do not fit 32-blocks everywhere).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/fixtures.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh {
namespace {

// The master's rows of `tensor`, as F32 (F16 and F32 tensors only).
std::vector<float> master_values(const gguf::File& file, const gguf::TensorInfo& tensor) {
  const auto bytes = file.tensor_data(tensor);
  std::vector<float> out(static_cast<size_t>(tensor.n_elements()));
  dequantize_row(tensor.type, bytes.data(), out.data(), tensor.n_elements());
  return out;
}

double fp16_rounding(double v) {
  return std::max(std::fabs(v) * 0x1p-11, 0x1p-25);
}

// Largest |dequantized - master| allowed for one block (see tests/unit/test_quantize.cpp for
// the derivations; k-quants use a fraction of the super-block's largest magnitude).
double block_bound(TensorType type, const float* x, int64_t n) {
  double amax = 0;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(double{x[i]}));
  const double slack = amax * 1e-6;
  switch (type) {
    case TensorType::F16:
      return fp16_rounding(amax);
    case TensorType::Q8_0:
      return amax / 254 + 127 * fp16_rounding(amax / 127) + slack;
    case TensorType::Q4_0:
      return amax / 8 + 8 * fp16_rounding(amax / 8) + slack;
    case TensorType::Q5_0:
      return amax / 16 + 16 * fp16_rounding(amax / 16) + slack;
    case TensorType::Q4_K:
      return amax * 0.12;
    case TensorType::Q6_K:
      return amax * 0.03;
    default:
      return -1;  // a type this fixture set does not contain
  }
}

struct Comparison {
  std::set<std::string> types_seen;
  int tensors = 0;
};

// Compares every quantized 2-D tensor of `quantized_path` with the master's values.
// Void so that gtest's ASSERT_* macros may return from it; the summary goes to `result`.
void compare_with_master(const std::string& master_path, const std::string& quantized_path,
                         Comparison& result) {
  const auto master = gguf::File::open(master_path);
  const auto quantized = gguf::File::open(quantized_path);
  for (const auto& qt : quantized.tensors()) {
    if (qt.ne.size() != 2 || qt.type == TensorType::F32) continue;
    const auto* mt = master.find_tensor(qt.name);
    if (mt == nullptr) {
      ADD_FAILURE() << qt.name << " missing from " << master_path;
      continue;
    }
    if (mt->ne != qt.ne) {
      ADD_FAILURE() << qt.name << ": shapes differ";
      continue;
    }
    SCOPED_TRACE(quantized_path + ": " + qt.name + " (" + std::string(name(qt.type)) + ")");
    result.types_seen.insert(std::string(name(qt.type)));
    ++result.tensors;

    const std::vector<float> values = master_values(master, *mt);
    const auto stored = quantized.tensor_data(qt);
    const int64_t n = qt.ne[0];
    const size_t rb = row_bytes(qt.type, n);
    ASSERT_EQ(stored.size(), rb * static_cast<size_t>(qt.n_rows()));

    // 1. Byte identity, row by row.
    std::vector<uint8_t> ours(rb);
    int64_t differing_rows = 0, first_bad = -1;
    for (int64_t r = 0; r < qt.n_rows(); ++r) {
      quantize_row_reference(qt.type, values.data() + r * n, ours.data(), n);
      if (std::memcmp(ours.data(), stored.data() + static_cast<size_t>(r) * rb, rb) != 0) {
        if (first_bad < 0) first_bad = r;
        ++differing_rows;
      }
    }
    EXPECT_EQ(differing_rows, 0) << "first differing row " << first_bad << " of " << qt.n_rows()
                                 << " (tensor byte offset " << first_bad * static_cast<int64_t>(rb)
                                 << ")";

    // 2. Dequantized file values stay within the per-block bound of the master's values.
    const int64_t block = traits(qt.type).block_size;
    std::vector<float> deq(static_cast<size_t>(n));
    int64_t blocks_over = 0;
    double worst_ratio = 0;
    for (int64_t r = 0; r < qt.n_rows(); ++r) {
      dequantize_row(qt.type, stored.data() + static_cast<size_t>(r) * rb, deq.data(), n);
      const float* x = values.data() + r * n;
      for (int64_t b = 0; b < n / block; ++b) {
        const double bound = block_bound(qt.type, x + b * block, block);
        ASSERT_GE(bound, 0) << "no bound for " << name(qt.type);
        double worst = 0;
        for (int64_t i = b * block; i < (b + 1) * block; ++i)
          worst = std::max(worst, std::fabs(double{deq[i]} - x[i]));
        if (worst > bound) ++blocks_over;
        if (bound > 0) worst_ratio = std::max(worst_ratio, worst / bound);
      }
    }
    EXPECT_EQ(blocks_over, 0) << "worst error / bound = " << worst_ratio;
  }
}

struct FixturePair {
  const char* master;
  const char* quantized;
  std::set<std::string> expected_types;  // the file must contain these (so the test covers them)
};

// Keeps CTest's test names readable (gtest would print the struct's bytes).
void PrintTo(const FixturePair& p, std::ostream* os) { *os << p.quantized; }

class QuantizedFixtures : public ::testing::TestWithParam<FixturePair> {};

TEST_P(QuantizedFixtures, MatchLlamaCppBytesAndBounds) {
  const FixturePair& p = GetParam();
  THINKMESH_REQUIRE_FIXTURE(p.master);
  THINKMESH_REQUIRE_FIXTURE(p.quantized);
  Comparison c;
  compare_with_master(test::fixture(p.master).string(), test::fixture(p.quantized).string(), c);
  EXPECT_GT(c.tensors, 0);
  for (const auto& t : p.expected_types)
    EXPECT_TRUE(c.types_seen.count(t)) << p.quantized << " has no " << t << " tensor";
}

const std::string kSpmF16 = "fixtures/models/tiny-llama-spm-F16.gguf";
const std::string kStories = "models/stories260K/stories260K.gguf";

INSTANTIATE_TEST_SUITE_P(
    LlamaCpp, QuantizedFixtures,
    ::testing::Values(
        FixturePair{kSpmF16.c_str(), "fixtures/models/tiny-llama-spm-Q8_0.gguf", {"Q8_0"}},
        FixturePair{kSpmF16.c_str(), "fixtures/models/tiny-llama-spm-Q4_0.gguf", {"Q4_0"}},
        FixturePair{
            kSpmF16.c_str(), "fixtures/models/tiny-llama-spm-Q4_K_M.gguf", {"Q4_K", "Q6_K"}},
        FixturePair{kStories.c_str(),
                    "models/stories260K/llamacpp-quantized/stories260K-f16.gguf",
                    {"F16"}},
        FixturePair{kStories.c_str(),
                    "models/stories260K/llamacpp-quantized/stories260K-q8_0-mix.gguf",
                    {"Q8_0"}},
        FixturePair{kStories.c_str(),
                    "models/stories260K/llamacpp-quantized/stories260K-q4_0-mix.gguf",
                    {"Q4_0", "Q5_0", "Q8_0"}}),
    [](const auto& param_info) {
      std::string s = param_info.param.quantized;
      s = s.substr(s.rfind('/') + 1);
      s = s.substr(0, s.find(".gguf"));
      std::replace_if(
          s.begin(), s.end(), [](char ch) { return !std::isalnum(static_cast<unsigned char>(ch)); },
          '_');
      return s;
    });

}  // namespace
}  // namespace thinkmesh
