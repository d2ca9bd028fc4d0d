// Logits of the decoder against llama.cpp c392e50's goldens (fixtures/golden/logits/*.json):
// every prompt decoded as one batch with an F16 KV cache, compared at the stored positions
// with MANIFEST §3's suggested tolerances in units of σ (the golden logits' std):
//   F32 weights  max ≤ 1e-3σ, mean ≤ 1e-4σ;  F16  max ≤ 1e-2σ, mean ≤ 1e-3σ;
//   quantized    max ≤ 0.15σ, mean ≤ 0.02σ.
// The measured ratios are printed so they can be reported.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "support/fixtures.h"
#include "thinkmesh/context.h"
#include "thinkmesh/model.h"

namespace thinkmesh {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> sidecars() {
  std::vector<std::string> out;
  const fs::path dir = test::fixture("fixtures/golden/logits");
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".json") out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class LogitsGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(LogitsGolden, MatchesLlamaCppWithinManifestTolerance) {
  const std::string side = "fixtures/golden/logits/" + GetParam();
  THINKMESH_REQUIRE_FIXTURE(side);
  std::ifstream in(test::fixture(side));
  const auto j = nlohmann::json::parse(in);
  const std::string model_path = j.at("model");
  // The F32 and Q8_0 spm models live in an overflow folder the shared fixtures do not ship.
  if (model_path.rfind("fixtures-overflow/", 0) == 0 && !fs::exists(test::fixture(model_path))) {
    GTEST_SKIP() << model_path << " is not shipped with the fixtures (overflow folder)";
  }
  THINKMESH_REQUIRE_FIXTURE(model_path);
  const auto model = Model::load(test::fixture(model_path).string(), {.load_tokenizer = false});
  const auto ids = j.at("prompt_ids").get<std::vector<TokenId>>();
  ContextOptions o;
  o.n_ctx = 512;
  o.n_threads = 2;
  Context ctx(model, o);
  Batch batch;
  for (size_t i = 0; i < ids.size(); ++i) batch.add(ids[i], static_cast<int32_t>(i), 0, true);
  ctx.decode(batch);

  const std::string bin =
      test::read_file(test::fixture("fixtures/golden/logits/" + j.at("bin").get<std::string>()));
  const auto n_vocab = j.at("n_vocab").get<size_t>();
  const auto positions = j.at("bin_positions").get<std::vector<int32_t>>();
  ASSERT_EQ(bin.size(), positions.size() * n_vocab * sizeof(float));
  const auto* gold = reinterpret_cast<const float*>(bin.data());
  ASSERT_EQ(static_cast<size_t>(model->info().n_vocab), n_vocab);

  double sum = 0, sum2 = 0, max_d = 0, sum_d = 0;
  const size_t n = positions.size() * n_vocab;
  for (size_t k = 0; k < positions.size(); ++k) {
    const auto ours = ctx.logits(positions[k]);
    for (size_t i = 0; i < n_vocab; ++i) {
      const double g = gold[k * n_vocab + i];
      sum += g;
      sum2 += g * g;
      const double d = std::fabs(ours[i] - g);
      max_d = std::max(max_d, d);
      sum_d += d;
    }
  }
  const double mean = sum / static_cast<double>(n);
  const double sigma = std::sqrt(sum2 / static_cast<double>(n) - mean * mean);
  const double max_ratio = max_d / sigma, mean_ratio = sum_d / static_cast<double>(n) / sigma;
  const std::string type = model->info().weight_type;
  double max_tol = 0.15, mean_tol = 0.02;
  if (type == "F32") max_tol = 1e-3, mean_tol = 1e-4;
  if (type == "F16") max_tol = 1e-2, mean_tol = 1e-3;
  std::printf("%-32s %-6s max %.3e sigma (tol %.0e)  mean %.3e sigma (tol %.0e)\n",
              GetParam().c_str(), type.c_str(), max_ratio, max_tol, mean_ratio, mean_tol);
  EXPECT_LE(max_ratio, max_tol);
  EXPECT_LE(mean_ratio, mean_tol);
}

INSTANTIATE_TEST_SUITE_P(Golden, LogitsGolden, ::testing::ValuesIn(sidecars()), [](const auto& p) {
  std::string s = p.param.substr(0, p.param.size() - 5);
  for (char& c : s) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return s;
});

}  // namespace
}  // namespace thinkmesh
