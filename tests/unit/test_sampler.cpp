// Sampler stages and chain (sampler.h) and streamed stop-string holdback (generate.h).
// Expected values come from the definitions (llama.cpp c392e50 semantics), computed by hand.
#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "thinkmesh/error.h"
#include "thinkmesh/generate.h"
#include "thinkmesh/sampler.h"

namespace thinkmesh {
namespace {

std::set<TokenId> ids_of(const CandidateSet& c) {
  std::set<TokenId> out;
  for (const auto& item : c.items) out.insert(item.id);
  return out;
}

// Logits whose softmax is exactly the given probabilities (up to rounding).
std::vector<float> log_probs(std::initializer_list<double> p) {
  std::vector<float> out;
  for (double v : p) out.push_back(static_cast<float>(std::log(v)));
  return out;
}

SamplerOptions plain_sampling(uint32_t seed) {
  SamplerOptions o;
  o.temperature = 1.0f;
  o.top_k = 0;
  o.top_p = 1.0f;
  o.min_p = 0.0f;
  o.seed = seed;
  return o;
}

TEST(Sampler, GreedyTakesArgmaxAndLowestIdOnTies) {
  SamplerOptions o;
  o.temperature = 0.0f;
  Sampler sampler(o);
  const std::vector<float> logits{1.0f, 3.0f, 3.0f, 2.0f, -5.0f};
  EXPECT_EQ(sampler.sample(logits), 1);
  const std::vector<float> all_equal(7, 0.5f);
  EXPECT_EQ(sampler.sample(all_equal), 0);
  o.temperature = -1.0f;  // any non-positive temperature is greedy
  EXPECT_EQ(Sampler(o).sample(logits), 1);
}

TEST(Sampler, GreedyAppliesPenaltiesFirst) {
  SamplerOptions o;
  o.temperature = 0.0f;
  o.repeat_penalty = 2.0f;
  Sampler sampler(o);
  const std::vector<float> logits{0.0f, 3.0f, 2.0f};
  EXPECT_EQ(sampler.sample(logits), 1);
  sampler.accept(1);  // 3 / 2 = 1.5 < 2
  EXPECT_EQ(sampler.sample(logits), 2);
  sampler.reset();
  EXPECT_EQ(sampler.sample(logits), 1);
}

TEST(Sampler, NanLogitsAreNeverChosen) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> logits{nan, -3.0f, nan, -4.0f};
  SamplerOptions greedy;
  greedy.temperature = 0.0f;
  EXPECT_EQ(Sampler(greedy).sample(logits), 1);
  Sampler random(plain_sampling(7));
  for (int i = 0; i < 200; ++i) {
    const TokenId t = random.sample(logits);
    EXPECT_TRUE(t == 1 || t == 3) << t;
  }
}

TEST(SamplerStages, TopKKeepsTheKHighest) {
  const std::vector<float> logits{0.1f, 0.5f, 0.3f, 0.9f, 0.7f};
  auto c = CandidateSet::from_logits(logits);
  sampling::top_k(c, 2);
  EXPECT_EQ(ids_of(c), (std::set<TokenId>{3, 4}));
  EXPECT_TRUE(c.sorted);
  EXPECT_EQ(c.items[0].id, 3);

  auto all = CandidateSet::from_logits(logits);
  sampling::top_k(all, 0);
  EXPECT_EQ(all.items.size(), 5u);
  auto more = CandidateSet::from_logits(logits);
  sampling::top_k(more, 100);
  EXPECT_EQ(more.items.size(), 5u);
  // Ties at the boundary keep the lowest id.
  auto tied = CandidateSet::from_logits(std::vector<float>{1.0f, 2.0f, 2.0f, 2.0f});
  sampling::top_k(tied, 2);
  EXPECT_EQ(ids_of(tied), (std::set<TokenId>{1, 2}));
}

TEST(SamplerStages, TopPKeepsTheSmallestSetReachingP) {
  const auto logits = log_probs({0.05, 0.5, 0.15, 0.3});
  auto run = [&](float p, size_t min_keep) {
    auto c = CandidateSet::from_logits(logits);
    sampling::top_p(c, p, min_keep);
    return ids_of(c);
  };
  EXPECT_EQ(run(0.45f, 0), (std::set<TokenId>{1}));           // 0.5 >= 0.45
  EXPECT_EQ(run(0.75f, 0), (std::set<TokenId>{1, 3}));        // 0.8 >= 0.75
  EXPECT_EQ(run(0.9f, 0), (std::set<TokenId>{1, 3, 2}));      // 0.95 >= 0.9
  EXPECT_EQ(run(0.99f, 0), (std::set<TokenId>{0, 1, 2, 3}));  // needs everything
  EXPECT_EQ(run(1.0f, 0).size(), 4u);                         // off
  EXPECT_EQ(run(0.45f, 3), (std::set<TokenId>{1, 3, 2}));     // min_keep wins
}

TEST(SamplerStages, TopPRenormalisesOverEarlierSurvivors) {
  // After top-k = 2 the survivors have p = 0.5/0.8 and 0.3/0.8 = 0.625 and 0.375.
  const auto logits = log_probs({0.05, 0.5, 0.15, 0.3});
  auto c = CandidateSet::from_logits(logits);
  sampling::top_k(c, 2);
  sampling::top_p(c, 0.6f, 0);
  EXPECT_EQ(ids_of(c), (std::set<TokenId>{1}));
}

TEST(SamplerStages, MinPKeepsTokensWithinAFactorOfTheBest) {
  const auto logits = log_probs({0.05, 0.5, 0.15, 0.3});
  for (bool presorted : {false, true}) {
    auto run = [&](float p, size_t min_keep) {
      auto c = CandidateSet::from_logits(logits);
      if (presorted) sampling::softmax(c);
      sampling::min_p(c, p, min_keep);
      return ids_of(c);
    };
    EXPECT_EQ(run(0.5f, 0), (std::set<TokenId>{1, 3})) << presorted;     // >= 0.25
    EXPECT_EQ(run(0.25f, 0), (std::set<TokenId>{1, 3, 2})) << presorted;  // >= 0.125
    EXPECT_EQ(run(0.05f, 0).size(), 4u) << presorted;                    // >= 0.025
    EXPECT_EQ(run(0.9f, 0), (std::set<TokenId>{1})) << presorted;
    EXPECT_EQ(run(0.9f, 2), (std::set<TokenId>{1, 3})) << presorted;  // min_keep
    EXPECT_EQ(run(0.0f, 0).size(), 4u) << presorted;                  // off
  }
}

TEST(SamplerStages, PenaltyArithmetic) {
  PenaltyWindow window(64);
  for (TokenId t : {0, 0, 1, 2}) window.push(t);
  auto c = CandidateSet::from_logits(std::vector<float>{2.0f, -2.0f, 0.0f, 1.0f});
  sampling::apply_penalties(c, window, 2.0f, 0.5f, 0.25f);
  // token 0: 2 / 2 - 2×0.5 - 0.25; token 1: -2 × 2 - 0.5 - 0.25; token 2: 0 × 2 - 0.75.
  EXPECT_FLOAT_EQ(c.items[0].logit, -0.25f);
  EXPECT_FLOAT_EQ(c.items[1].logit, -4.75f);
  EXPECT_FLOAT_EQ(c.items[2].logit, -0.75f);
  EXPECT_FLOAT_EQ(c.items[3].logit, 1.0f);  // never seen
  EXPECT_FALSE(c.sorted);
}

TEST(SamplerStages, PenaltyWindowSlides) {
  PenaltyWindow window(2);
  for (TokenId t : {5, 6, 7}) window.push(t);
  EXPECT_EQ(window.count(5), 0);
  EXPECT_EQ(window.count(6), 1);
  EXPECT_EQ(window.count(7), 1);
  window.push(7);
  EXPECT_EQ(window.count(6), 0);
  EXPECT_EQ(window.count(7), 2);

  PenaltyWindow off(0);
  off.push(1);
  EXPECT_EQ(off.count(1), 0);
  PenaltyWindow unbounded(-1);
  for (int i = 0; i < 1000; ++i) unbounded.push(3);
  EXPECT_EQ(unbounded.count(3), 1000);
}

TEST(SamplerStages, SoftmaxSumsToOneAndSorts) {
  auto c = CandidateSet::from_logits(std::vector<float>{0.0f, 2.0f, 1.0f});
  sampling::softmax(c);
  ASSERT_TRUE(c.sorted);
  EXPECT_EQ(c.items[0].id, 1);
  EXPECT_EQ(c.items[2].id, 0);
  const double z = 1.0 + std::exp(1.0) + std::exp(2.0);
  EXPECT_NEAR(c.items[0].p, std::exp(2.0) / z, 1e-6);
  EXPECT_NEAR(c.items[1].p, std::exp(1.0) / z, 1e-6);
  EXPECT_NEAR(c.items[2].p, 1.0 / z, 1e-6);
}

TEST(Sampler, SameSeedSameSequence) {
  std::vector<float> logits(100);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(static_cast<float>(i)) * 0.1f;
  auto draw = [&](uint32_t seed) {
    Sampler s(plain_sampling(seed));
    std::vector<TokenId> out;
    for (int i = 0; i < 64; ++i) out.push_back(s.sample(logits));
    return out;
  };
  EXPECT_EQ(draw(42), draw(42));
  EXPECT_NE(draw(42), draw(43));

  Sampler s(plain_sampling(42));
  const TokenId first = s.sample(logits);
  s.sample(logits);
  s.reset();
  EXPECT_EQ(s.sample(logits), first);
  EXPECT_EQ(s.seed(), 42u);
}

// Frequencies over many draws stay within ~5 standard errors of the intended distribution.
void expect_frequencies(Sampler& sampler, const std::vector<float>& logits,
                        const std::vector<double>& expected) {
  const int n = 20000;
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < n; ++i) ++counts.at(static_cast<size_t>(sampler.sample(logits)));
  for (size_t i = 0; i < expected.size(); ++i) {
    const double sd = std::sqrt(expected[i] * (1.0 - expected[i]) / n);
    EXPECT_NEAR(counts[i] / double(n), expected[i], 5 * sd + 1e-9) << "token " << i;
  }
}

TEST(Sampler, DrawsFollowTheSoftmax) {
  Sampler sampler(plain_sampling(1234));
  expect_frequencies(sampler, log_probs({0.5, 0.3, 0.2}), {0.5, 0.3, 0.2});
}

TEST(Sampler, TemperatureSharpens) {
  // T = 0.5 squares the odds: 0.25 : 0.09 : 0.04.
  auto o = plain_sampling(99);
  o.temperature = 0.5f;
  Sampler sampler(o);
  expect_frequencies(sampler, log_probs({0.5, 0.3, 0.2}), {0.25 / 0.38, 0.09 / 0.38, 0.04 / 0.38});
}

TEST(Sampler, TruncationNeverDrawsRemovedTokens) {
  auto o = plain_sampling(5);
  o.top_k = 2;  // keeps 0.5 and 0.3 → renormalised 0.625 / 0.375
  Sampler sampler(o);
  expect_frequencies(sampler, log_probs({0.5, 0.3, 0.2}), {0.625, 0.375, 0.0});

  auto m = plain_sampling(6);
  m.min_p = 0.5f;  // keeps p >= 0.25: tokens 0 and 1
  Sampler min_p_sampler(m);
  expect_frequencies(min_p_sampler, log_probs({0.5, 0.3, 0.2}), {0.625, 0.375, 0.0});
}

TEST(Sampler, RejectsBadOptionsAndInput) {
  SamplerOptions o;
  o.repeat_penalty = 0.0f;
  EXPECT_THROW(Sampler{o}, Error);
  o = {};
  o.penalty_last_n = -2;
  EXPECT_THROW(Sampler{o}, Error);
  o = {};
  o.temperature = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(Sampler{o}, Error);
  Sampler ok;
  EXPECT_THROW(ok.sample(std::span<const float>{}), Error);
}

TEST(StopStringFilter, PassesTextThroughWithoutStops) {
  StopStringFilter f;
  EXPECT_EQ(f.push("Hello"), "Hello");
  EXPECT_EQ(f.push(", world"), ", world");
  EXPECT_EQ(f.finish(), "");
  EXPECT_FALSE(f.stopped());
}

TEST(StopStringFilter, HoldsBackAPossibleStopAcrossPieces) {
  StopStringFilter f({"END"});
  EXPECT_EQ(f.push("Hello wor"), "Hello wor");
  EXPECT_EQ(f.push("ld! EN"), "ld! ");  // "EN" may become "END"
  EXPECT_FALSE(f.stopped());
  EXPECT_EQ(f.push("D and more"), "");
  EXPECT_TRUE(f.stopped());
  EXPECT_EQ(f.matched(), "END");
  EXPECT_EQ(f.push("later"), "");
  EXPECT_EQ(f.finish(), "");
}

TEST(StopStringFilter, ReleasesAFalseAlarm) {
  StopStringFilter f({"###"});
  EXPECT_EQ(f.push("a#"), "a");
  EXPECT_EQ(f.push("#"), "");
  EXPECT_EQ(f.push("b"), "##b");
  EXPECT_EQ(f.push("##"), "");
  EXPECT_EQ(f.finish(), "##");  // end of generation releases what was held
}

TEST(StopStringFilter, StopsAtTheEarliestMatch) {
  StopStringFilter f({"world", "lo"});
  EXPECT_EQ(f.push("hello world"), "hel");
  EXPECT_EQ(f.matched(), "lo");
}

TEST(StopStringFilter, HoldsIncompleteUtf8) {
  StopStringFilter f;
  EXPECT_EQ(f.push("caf\xC3"), "caf");
  EXPECT_EQ(f.push("\xA9!"), "\xC3\xA9!");
  // U+1F600 in three pieces.
  EXPECT_EQ(f.push("\xF0\x9F"), "");
  EXPECT_EQ(f.push("\x98"), "");
  EXPECT_EQ(f.push("\x80"), "\xF0\x9F\x98\x80");
  // A stray continuation byte cannot complete: it passes through.
  EXPECT_EQ(f.push("\xA9"), "\xA9");
  EXPECT_EQ(f.push("\xE2\x82"), "");
  EXPECT_EQ(f.finish(), "\xE2\x82");
}

}  // namespace
}  // namespace thinkmesh
