// The batch API: four prompts decoded together in one batch (different sequences, interleaved)
// give the logits of four separate runs; removing a range of positions and decoding them again
// gives the logits of a fresh run; a copied prefix serves another sequence; 1000 short
// generations in one process (the asan-ubsan preset checks they leak nothing).
#include <gtest/gtest.h>

#include <cmath>

#include "support/fixtures.h"
#include "thinkmesh/context.h"
#include "thinkmesh/generate.h"
#include "thinkmesh/model.h"

namespace thinkmesh {
namespace {

constexpr const char* kModel = "models/stories260K/stories260K.gguf";

const std::vector<std::vector<TokenId>> kPrompts = {
    {1, 403, 407, 261, 378}, {1, 43, 288, 266}, {1, 500, 12, 99, 300, 301, 7}, {1, 2}};

std::shared_ptr<const Model> load() {
  return Model::load(test::fixture(kModel).string(), {.load_tokenizer = false});
}

ContextOptions options() {
  ContextOptions o;
  o.n_ctx = 128;
  o.n_threads = 2;
  return o;
}

// Logits of every position of `prompt`, decoded alone as one batch.
std::vector<std::vector<float>> alone(const std::shared_ptr<const Model>& m,
                                      const std::vector<TokenId>& prompt) {
  Context ctx(m, options());
  Batch b;
  for (size_t i = 0; i < prompt.size(); ++i) b.add(prompt[i], static_cast<int32_t>(i), 0, true);
  ctx.decode(b);
  std::vector<std::vector<float>> out;
  for (size_t i = 0; i < prompt.size(); ++i) {
    const auto l = ctx.logits(static_cast<int32_t>(i));
    out.emplace_back(l.begin(), l.end());
  }
  return out;
}

double max_diff(std::span<const float> a, const std::vector<float>& b) {
  double d = 0;
  for (size_t i = 0; i < b.size(); ++i)
    d = std::max(d, std::fabs(static_cast<double>(a[i]) - b[i]));
  return d;
}

// stories260K logits have σ ≈ 8; 1e-3 absolute is ~1e-4 σ: summation order only.
constexpr double kTolerance = 1e-3;

TEST(BatchEquivalence, FourPromptsInOneBatchMatchFourRuns) {
  THINKMESH_REQUIRE_FIXTURE(kModel);
  const auto m = load();
  std::vector<std::vector<std::vector<float>>> expected;
  for (const auto& p : kPrompts) expected.push_back(alone(m, p));

  Context ctx(m, options());
  Batch b;
  std::vector<std::pair<size_t, size_t>> where;  // batch index → (prompt, position)
  for (size_t pos = 0; pos < 8; ++pos) {         // interleaved: position-major
    for (size_t s = 0; s < kPrompts.size(); ++s) {
      if (pos >= kPrompts[s].size()) continue;
      b.add(kPrompts[s][pos], static_cast<int32_t>(pos), static_cast<int32_t>(s), true);
      where.emplace_back(s, pos);
    }
  }
  ctx.decode(b);
  for (size_t i = 0; i < where.size(); ++i) {
    const auto [s, pos] = where[i];
    EXPECT_LE(max_diff(ctx.logits(static_cast<int32_t>(i)), expected[s][pos]), kTolerance)
        << "prompt " << s << " position " << pos;
  }
}

TEST(BatchEquivalence, RemoveAndRedecodeMatchesAFreshRun) {
  THINKMESH_REQUIRE_FIXTURE(kModel);
  const auto m = load();
  const auto& prompt = kPrompts[2];
  const auto expected = alone(m, prompt);
  Context ctx(m, options());
  Batch b;
  for (size_t i = 0; i < prompt.size(); ++i) b.add(prompt[i], static_cast<int32_t>(i), 0, false);
  ctx.decode(b);
  ctx.seq_rm(0, 3, -1);  // drop positions 3..
  EXPECT_EQ(ctx.seq_pos_max(0), 2);
  b.clear();
  for (size_t i = 3; i < prompt.size(); ++i) b.add(prompt[i], static_cast<int32_t>(i), 0, true);
  ctx.decode(b);
  for (size_t i = 3; i < prompt.size(); ++i) {
    EXPECT_LE(max_diff(ctx.logits(static_cast<int32_t>(i - 3)), expected[i]), kTolerance) << i;
  }
}

TEST(BatchEquivalence, CopiedPrefixServesAnotherSequence) {
  THINKMESH_REQUIRE_FIXTURE(kModel);
  const auto m = load();
  const std::vector<TokenId> full = {1, 403, 407, 261, 378, 432};
  const auto expected = alone(m, full);
  Context ctx(m, options());
  Batch b;
  for (size_t i = 0; i < 4; ++i) b.add(full[i], static_cast<int32_t>(i), 0, false);
  ctx.decode(b);
  ctx.seq_cp(0, 1, 0, -1);  // sequence 1 shares the prefix
  b.clear();
  b.add(full[4], 4, 1, true);
  b.add(full[5], 5, 1, true);
  ctx.decode(b);
  EXPECT_LE(max_diff(ctx.logits(0), expected[4]), kTolerance);
  EXPECT_LE(max_diff(ctx.logits(1), expected[5]), kTolerance);
}

TEST(BatchEquivalence, ThousandShortGenerations) {
  THINKMESH_REQUIRE_FIXTURE(kModel);
  const auto m = Model::load(test::fixture(kModel).string());
  ContextOptions o = options();
  o.n_threads = 1;
  Context ctx(m, o);
  GenerateOptions go;
  go.sampling.temperature = 0.8f;
  go.sampling.seed = 7;
  go.max_tokens = 3;
  size_t generated = 0;
  for (int i = 0; i < 1000; ++i) {
    Generator gen(ctx, m->tokenizer());
    gen.clear();
    const std::vector<TokenId> prompt = {1, static_cast<TokenId>(300 + i % 100)};
    generated += gen.generate(prompt, go).tokens.size();
  }
  EXPECT_GT(generated, 1000u);
}

}  // namespace
}  // namespace thinkmesh
