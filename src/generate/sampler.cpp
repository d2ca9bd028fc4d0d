// The sampling chain of sampler.h: penalties → top-k → top-p → min-p → temperature → draw.
#include "thinkmesh/sampler.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <string>

#include "thinkmesh/error.h"

namespace thinkmesh {
namespace {

// Descending logit; equal logits by ascending id, so every sort gives one answer.
bool before(const TokenCandidate& a, const TokenCandidate& b) {
  if (a.logit != b.logit) return a.logit > b.logit;
  return a.id < b.id;
}

void sort_candidates(CandidateSet& c) {
  if (c.sorted) return;
  std::sort(c.items.begin(), c.items.end(), before);
  c.sorted = true;
}

void check_option(bool ok, const std::string& what) {
  if (!ok) throw Error(ErrorKind::invalid_argument, "sampler option " + what);
}

uint32_t resolve_seed(uint32_t seed) {
  if (seed != kRandomSeed) return seed;
  std::random_device device;
  return device();
}

}  // namespace

CandidateSet CandidateSet::from_logits(std::span<const float> logits) {
  CandidateSet c;
  c.items.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    float l = logits[i];
    // NaN would break the strict weak ordering the sorts need; +inf would make softmax NaN.
    if (std::isnan(l)) l = -INFINITY;
    if (l == INFINITY) l = FLT_MAX;
    c.items[i] = TokenCandidate{static_cast<TokenId>(i), l, 0.0f};
  }
  return c;
}

void PenaltyWindow::push(TokenId token) {
  if (last_n_ == 0) return;
  if (last_n_ > 0 && window_.size() >= static_cast<size_t>(last_n_)) {
    const TokenId oldest = window_.front();
    window_.pop_front();
    if (auto it = counts_.find(oldest); it != counts_.end() && --it->second == 0) counts_.erase(it);
  }
  window_.push_back(token);
  ++counts_[token];
}

void PenaltyWindow::clear() {
  window_.clear();
  counts_.clear();
}

int PenaltyWindow::count(TokenId token) const {
  const auto it = counts_.find(token);
  return it == counts_.end() ? 0 : it->second;
}

namespace sampling {

void apply_penalties(CandidateSet& c, const PenaltyWindow& window, float repeat, float frequency,
                     float presence) {
  if (window.size() == 0 || (repeat == 1.0f && frequency == 0.0f && presence == 0.0f)) return;
  for (auto& item : c.items) {
    const int count = window.count(item.id);
    if (count == 0) continue;
    // Dividing a negative logit would make the token *more* likely; multiply it instead.
    if (item.logit <= 0.0f) {
      item.logit *= repeat;
    } else {
      item.logit /= repeat;
    }
    item.logit -= static_cast<float>(count) * frequency + presence;
  }
  c.sorted = false;
}

void top_k(CandidateSet& c, int32_t k) {
  const size_t n = c.items.size();
  const size_t keep = k <= 0 ? n : std::min(static_cast<size_t>(k), n);
  if (!c.sorted) {
    std::partial_sort(c.items.begin(), c.items.begin() + static_cast<std::ptrdiff_t>(keep),
                      c.items.end(), before);
    c.sorted = true;
  }
  c.items.resize(keep);
}

void softmax(CandidateSet& c) {
  if (c.items.empty()) return;
  sort_candidates(c);
  const float max_logit = c.items[0].logit;
  if (max_logit == -INFINITY) {
    // Nothing is possible; give everything to the first (lowest id) candidate.
    for (auto& item : c.items) item.p = 0.0f;
    c.items[0].p = 1.0f;
    return;
  }
  float sum = 0.0f;
  for (auto& item : c.items) {
    item.p = std::exp(item.logit - max_logit);
    sum += item.p;
  }
  for (auto& item : c.items) item.p /= sum;
}

void top_p(CandidateSet& c, float p, size_t min_keep) {
  if (p >= 1.0f || c.items.empty()) return;
  softmax(c);
  float cumulative = 0.0f;
  for (size_t i = 0; i < c.items.size(); ++i) {
    cumulative += c.items[i].p;
    // Keep the token that crosses p (so at least one survives).
    if (cumulative >= p && i + 1 >= min_keep) {
      c.items.resize(i + 1);
      return;
    }
  }
}

void min_p(CandidateSet& c, float p, size_t min_keep) {
  if (p <= 0.0f || c.items.empty()) return;
  // p_i >= p × p_max  ⇔  logit_i >= logit_max + ln p  (no softmax needed).
  if (!c.sorted) {
    float max_logit = -FLT_MAX;
    for (const auto& item : c.items) max_logit = std::max(max_logit, item.logit);
    const float threshold = max_logit + std::log(p);
    std::vector<TokenCandidate> kept;
    for (const auto& item : c.items) {
      if (item.logit >= threshold) kept.push_back(item);
    }
    if (kept.size() >= min_keep && !kept.empty()) {
      c.items = std::move(kept);
      return;
    }
    sort_candidates(c);
  }
  const float threshold = c.items[0].logit + std::log(p);
  size_t i = 1;  // the best token always stays
  for (; i < c.items.size(); ++i) {
    if (c.items[i].logit < threshold && i >= min_keep) break;
  }
  c.items.resize(i);
}

void temperature(CandidateSet& c, float t) {
  for (auto& item : c.items) item.logit /= t;
}

size_t argmax(const CandidateSet& c) {
  if (c.items.empty()) throw Error(ErrorKind::invalid_argument, "argmax over no candidates");
  size_t best = 0;
  for (size_t i = 1; i < c.items.size(); ++i) {
    if (before(c.items[i], c.items[best])) best = i;
  }
  return best;
}

size_t draw(CandidateSet& c, std::mt19937& rng) {
  if (c.items.empty()) throw Error(ErrorKind::invalid_argument, "draw from no candidates");
  softmax(c);
  std::vector<double> weights(c.items.size());
  for (size_t i = 0; i < c.items.size(); ++i) weights[i] = c.items[i].p;
  std::discrete_distribution<size_t> distribution(weights.begin(), weights.end());
  return distribution(rng);
}

}  // namespace sampling

Sampler::Sampler(SamplerOptions options)
    : options_(options),
      seed_(resolve_seed(options.seed)),
      rng_(seed_),
      window_(options.penalty_last_n) {
  const auto& o = options_;
  check_option(!std::isnan(o.temperature), "temperature is NaN");
  check_option(!std::isnan(o.top_p) && o.top_p >= 0.0f, "top_p must be >= 0");
  check_option(!std::isnan(o.min_p) && o.min_p <= 1.0f, "min_p must be <= 1");
  check_option(std::isfinite(o.repeat_penalty) && o.repeat_penalty > 0.0f,
               "repeat_penalty must be > 0");
  check_option(std::isfinite(o.frequency_penalty), "frequency_penalty must be finite");
  check_option(std::isfinite(o.presence_penalty), "presence_penalty must be finite");
  check_option(o.penalty_last_n >= -1, "penalty_last_n must be >= -1");
}

TokenId Sampler::sample(std::span<const float> logits) {
  if (logits.empty()) throw Error(ErrorKind::invalid_argument, "sample: no logits");
  CandidateSet c = CandidateSet::from_logits(logits);
  sampling::apply_penalties(c, window_, options_.repeat_penalty, options_.frequency_penalty,
                            options_.presence_penalty);
  if (options_.temperature <= 0.0f) return c.items[sampling::argmax(c)].id;
  sampling::top_k(c, options_.top_k);
  sampling::top_p(c, options_.top_p, options_.min_keep);
  sampling::min_p(c, options_.min_p, options_.min_keep);
  sampling::temperature(c, options_.temperature);
  return c.items[sampling::draw(c, rng_)].id;
}

void Sampler::accept(TokenId token) {
  window_.push(token);
}

void Sampler::reset() {
  window_.clear();
  rng_.seed(seed_);
}

}  // namespace thinkmesh
