// Token sampling: turns one position's logits into the next token id.
//
// The chain mirrors llama.cpp's default sampler (common/sampling.cpp + src/llama-sampling.cpp at
// c392e50), minus the samplers it leaves disabled by default (DRY, typical-p, XTC, mirostat):
//
//   penalties → top-k → top-p → min-p → temperature → softmax → random draw (std::mt19937)
//
// Notes that matter for reproducing llama.cpp:
//   * top-p and min-p look at the probabilities *before* temperature (temperature comes last);
//     each stage renormalises over the candidates the previous stages kept.
//   * the repetition penalty divides a positive logit and multiplies a non-positive one, then
//     frequency (× count) and presence (× [count > 0]) penalties are subtracted.
//   * the penalty history holds the last `penalty_last_n` *accepted* tokens; the generator
//     accepts the prompt tokens too, as llama-cli does.
//   * temperature <= 0 is greedy: argmax of the penalised logits, ties → the lowest id.
//   * the draw is std::discrete_distribution over the final probabilities with std::mt19937
//     seeded by `seed`, so a given seed and identical logits give the same sequence.
// One deviation: where llama.cpp's partial sort leaves equal logits in an unspecified order, we
// order ties by ascending id, so results never depend on the sort implementation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <unordered_map>
#include <vector>

#include "thinkmesh/tokenizer.h"

namespace thinkmesh {

// `seed` value meaning "pick a random seed" (llama.cpp's LLAMA_DEFAULT_SEED).
inline constexpr uint32_t kRandomSeed = 0xFFFFFFFFu;

struct SamplerOptions {
  float temperature = 0.8f;        // default 0.8; <= 0 → greedy (argmax, ties → lowest id)
  int32_t top_k = 40;              // default 40; <= 0 → the whole vocabulary
  float top_p = 0.95f;             // default 0.95; >= 1 → off
  float min_p = 0.05f;             // default 0.05; <= 0 → off (keeps p >= min_p × p_max)
  size_t min_keep = 0;             // default 0; top-p / min-p keep at least this many
  float repeat_penalty = 1.0f;     // default 1.0 (off); > 1 discourages repeats
  float frequency_penalty = 0.0f;  // default 0.0 (off); subtracted × occurrences
  float presence_penalty = 0.0f;   // default 0.0 (off); subtracted once if seen
  int32_t penalty_last_n = 64;     // default 64; 0 → penalties off, -1 → every accepted token
  uint32_t seed = kRandomSeed;     // default kRandomSeed (random); fixed → deterministic
};

// One candidate token during sampling.
struct TokenCandidate {
  TokenId id = 0;
  float logit = 0.0f;
  float p = 0.0f;  // probability, valid after softmax()
};

// The candidates a sampling stage works on. `sorted` means descending logit (ties: ascending
// id); stages that need the order sort first and keep it.
struct CandidateSet {
  std::vector<TokenCandidate> items;
  bool sorted = false;

  // All ids of `logits` (one float per vocabulary entry). NaN logits become -inf.
  static CandidateSet from_logits(std::span<const float> logits);
};

// Occurrence counts of the last N accepted tokens (a sliding window).
class PenaltyWindow {
 public:
  explicit PenaltyWindow(int32_t last_n) : last_n_(last_n) {}
  void push(TokenId token);
  void clear();
  int count(TokenId token) const;  // occurrences inside the window
  size_t size() const { return window_.size(); }

 private:
  int32_t last_n_;  // 0 → records nothing; < 0 → unbounded
  std::deque<TokenId> window_;
  std::unordered_map<TokenId, int> counts_;
};

// The individual stages, exposed for tests and for callers that build their own chain.
namespace sampling {
void apply_penalties(CandidateSet& c, const PenaltyWindow& window, float repeat, float frequency,
                     float presence);
void top_k(CandidateSet& c, int32_t k);
void top_p(CandidateSet& c, float p, size_t min_keep);
void min_p(CandidateSet& c, float p, size_t min_keep);
void temperature(CandidateSet& c, float t);  // t > 0
void softmax(CandidateSet& c);               // sorts, fills p
// Index into c.items of the highest logit; ties → lowest id.
size_t argmax(const CandidateSet& c);
// Softmax, then a draw from the resulting distribution; returns an index into c.items.
size_t draw(CandidateSet& c, std::mt19937& rng);
}  // namespace sampling

class Sampler {
 public:
  // Throws Error(invalid_argument) for NaN or out-of-range options (top_p < 0, min_p > 1,
  // repeat_penalty <= 0, penalty_last_n < -1).
  explicit Sampler(SamplerOptions options = {});

  // Picks the next token from one position's logits (n_vocab floats). Does not record it in the
  // penalty history; call accept() for that. Throws Error(invalid_argument) on empty logits.
  TokenId sample(std::span<const float> logits);
  // Records a token (prompt or generated) in the penalty history.
  void accept(TokenId token);
  // Forgets the history and restarts the random sequence from the seed.
  void reset();

  const SamplerOptions& options() const { return options_; }
  // The seed in use (the random one drawn when options().seed == kRandomSeed).
  uint32_t seed() const { return seed_; }

 private:
  SamplerOptions options_;
  uint32_t seed_;
  std::mt19937 rng_;
  PenaltyWindow window_;
};

}  // namespace thinkmesh
