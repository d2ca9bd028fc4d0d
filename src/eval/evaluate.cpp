// Perplexity and candidate-vs-base statistics in llama-perplexity's chunked scheme
// (include/thinkmesh/evaluate.h). The uncertainties are the ones llama-perplexity prints:
// standard errors of per-token means, a binomial error for top-1 agreement, and for ΔPPL and
// the PPL ratio the error of a difference of two correlated means.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include <fmt/core.h>

#include "thinkmesh/error.h"
#include "thinkmesh/evaluate.h"

namespace thinkmesh {
namespace {

// A Context needs shared ownership; the caller keeps the model alive for the call, so a
// non-owning handle (aliasing an empty owner) is enough.
std::shared_ptr<const Model> borrow(const Model& model) {
  return std::shared_ptr<const Model>(std::shared_ptr<const Model>{}, &model);
}

// The chunk geometry of one run, validated against the text and the model.
struct ChunkPlan {
  int32_t n_ctx = 0;
  int32_t n_chunks = 0;
  int32_t first = 0;           // first scored logit position of a chunk (n_ctx/2)
  int32_t n_scored = 0;        // scored tokens per chunk: n_ctx - 1 - first
  std::optional<TokenId> bos;  // replaces each chunk's first token, when the vocabulary adds BOS
};

ChunkPlan plan_chunks(const Model& model, size_t n_tokens, const EvalOptions& o) {
  ChunkPlan p;
  p.n_ctx = o.n_ctx;
  if (p.n_ctx < 4) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("evaluate: context {} is too small (at least 4 tokens)", p.n_ctx));
  }
  const ModelInfo& info = model.info();
  if (info.n_ctx_train > 0 && p.n_ctx > info.n_ctx_train) {
    throw Error(ErrorKind::out_of_range,
                fmt::format("evaluate: context {} exceeds {}'s training context {}", p.n_ctx,
                            info.name, info.n_ctx_train));
  }
  // llama-perplexity's minimum: two chunks' worth of tokens.
  if (n_tokens < 2 * static_cast<size_t>(p.n_ctx)) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("evaluate: the text has {} tokens; a context of {} needs at least {} "
                            "(2 x context)",
                            n_tokens, p.n_ctx, 2 * p.n_ctx));
  }
  const auto n_max = static_cast<int32_t>(n_tokens / static_cast<size_t>(p.n_ctx));
  p.n_chunks = o.n_chunks > 0 ? std::min(o.n_chunks, n_max) : n_max;
  p.first = p.n_ctx / 2;
  p.n_scored = p.n_ctx - 1 - p.first;
  if (model.has_tokenizer() && model.tokenizer().adds_bos()) p.bos = model.tokenizer().bos();
  return p;
}

Context make_context(const Model& model, const EvalOptions& o) {
  ContextOptions co;
  co.n_ctx = o.n_ctx;
  co.n_batch = o.n_batch > 0 ? o.n_batch : o.n_ctx;
  co.n_seq_max = 1;
  co.n_threads = o.n_threads;
  co.kv_type = o.kv_type;
  return Context(borrow(model), co);
}

// Decodes chunk `c` from an empty cache, asking for the logits of the scored positions only.
void decode_chunk(Context& ctx, std::span<const TokenId> tokens, const ChunkPlan& p, int32_t c) {
  ctx.clear();
  Batch batch;
  const size_t start = static_cast<size_t>(c) * static_cast<size_t>(p.n_ctx);
  for (int32_t k = 0; k < p.n_ctx; ++k) {
    const TokenId t = k == 0 && p.bos ? *p.bos : tokens[start + static_cast<size_t>(k)];
    batch.add(t, k, 0, k >= p.first && k < p.first + p.n_scored);
  }
  ctx.decode(batch);
}

// ln p of every token for one row of logits: logits - (max + ln Σ exp(l - max)).
// Returns the argmax.
int32_t log_softmax(std::span<const float> logits, float* out) {
  int32_t imax = 0;
  for (int32_t i = 1; i < static_cast<int32_t>(logits.size()); ++i)
    if (logits[static_cast<size_t>(i)] > logits[static_cast<size_t>(imax)]) imax = i;
  const double max = logits[static_cast<size_t>(imax)];
  double sum = 0;
  for (const float l : logits) sum += std::exp(static_cast<double>(l) - max);
  const double lse = max + std::log(sum);
  for (size_t i = 0; i < logits.size(); ++i)
    out[i] = static_cast<float>(static_cast<double>(logits[i]) - lse);
  return imax;
}

// Σx and Σx² of a per-token quantity → mean and its standard error (llama-perplexity's
// mean_and_uncertainty: no error below 11 samples).
struct Moments {
  double sum = 0, sum2 = 0;
  void add(double x) {
    sum += x;
    sum2 += x * x;
  }
  Estimate estimate(int64_t n) const {
    if (n < 1) return {};
    const double mean = sum / static_cast<double>(n);
    const double var = sum2 / static_cast<double>(n) - mean * mean;
    const double err = var > 0 && n > 10 ? std::sqrt(var / static_cast<double>(n - 1)) : 0.0;
    return {mean, err};
  }
};

// Linear interpolation between order statistics at fraction·(n-1), as llama-perplexity does.
double percentile(const std::vector<double>& sorted, double fraction) {
  if (sorted.empty()) return 0;
  if (fraction <= 0) return sorted.front();
  if (fraction >= 1) return sorted.back();
  const double pos = fraction * static_cast<double>(sorted.size() - 1);
  const auto i = static_cast<size_t>(pos);
  const double w = pos - static_cast<double>(i);
  return (1 - w) * sorted[i] + w * sorted[std::min(i + 1, sorted.size() - 1)];
}

PerplexityReport ppl_report(const Moments& nll, int64_t n, const ChunkPlan& p,
                            size_t n_text_tokens) {
  PerplexityReport r;
  const Estimate e = nll.estimate(n);
  r.mean_nll = e.value;
  r.ppl = {std::exp(e.value), std::exp(e.value) * e.uncertainty};
  r.n_tokens = n;
  r.n_text_tokens = static_cast<int64_t>(n_text_tokens);
  r.n_chunks = p.n_chunks;
  r.n_ctx = p.n_ctx;
  return r;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

std::vector<TokenId> tokenize_for_eval(const Model& model, std::string_view text) {
  TokenizeOptions to;
  to.add_special = true;
  to.parse_special = false;
  return model.tokenizer().tokenize(text, to);
}

PerplexityReport perplexity_tokens(const Model& model, std::span<const TokenId> tokens,
                                   const EvalOptions& options) {
  const ChunkPlan p = plan_chunks(model, tokens.size(), options);
  Context ctx = make_context(model, options);
  const auto n_vocab = static_cast<size_t>(model.info().n_vocab);
  std::vector<float> lp(n_vocab);
  Moments nll;
  int64_t n = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int32_t c = 0; c < p.n_chunks; ++c) {
    decode_chunk(ctx, tokens, p, c);
    const size_t start = static_cast<size_t>(c) * static_cast<size_t>(p.n_ctx);
    for (int32_t j = 0; j < p.n_scored; ++j) {
      const int32_t pos = p.first + j;
      log_softmax(ctx.logits(pos), lp.data());
      nll.add(-static_cast<double>(lp[static_cast<size_t>(tokens[start + pos + 1])]));
      ++n;
    }
    if (options.progress) {
      EvalProgress pr;
      pr.chunk = c + 1;
      pr.n_chunks = p.n_chunks;
      pr.ppl = std::exp(nll.sum / static_cast<double>(n));
      pr.seconds = seconds_since(t0);
      options.progress(pr);
    }
  }
  return ppl_report(nll, n, p, tokens.size());
}

PerplexityReport perplexity(const Model& model, std::string_view text, const EvalOptions& options) {
  const std::vector<TokenId> tokens = tokenize_for_eval(model, text);
  return perplexity_tokens(model, tokens, options);
}

EvalReport evaluate_tokens(const Model& candidate, const Model& base,
                           std::span<const TokenId> tokens, const EvalOptions& options) {
  const int32_t n_vocab_i = base.info().n_vocab;
  if (candidate.info().n_vocab != n_vocab_i) {
    throw Error(
        ErrorKind::invalid_argument,
        fmt::format("evaluate: vocabularies differ: {} has {} tokens, {} has {}",
                    candidate.info().name, candidate.info().n_vocab, base.info().name, n_vocab_i));
  }
  const ChunkPlan p = plan_chunks(base, tokens.size(), options);
  plan_chunks(candidate, tokens.size(), options);  // the candidate's context limit too
  const auto n_vocab = static_cast<size_t>(n_vocab_i);

  Context base_ctx = make_context(base, options);
  Context cand_ctx = make_context(candidate, options);
  // The base's ln p of one chunk's scored positions, its argmax and the correct tokens' NLL.
  std::vector<float> base_lp(static_cast<size_t>(p.n_scored) * n_vocab);
  std::vector<int32_t> base_top(static_cast<size_t>(p.n_scored));
  std::vector<float> cand_lp(n_vocab);

  Moments nll_c, nll_b, nll_diff, kld, dp, dp2;
  double sum_nll_cb = 0;
  int64_t n = 0, n_same_top = 0;
  double max_abs_dp = 0;
  std::vector<double> klds;
  klds.reserve(static_cast<size_t>(p.n_chunks) * static_cast<size_t>(p.n_scored));
  const auto t0 = std::chrono::steady_clock::now();

  for (int32_t c = 0; c < p.n_chunks; ++c) {
    const size_t start = static_cast<size_t>(c) * static_cast<size_t>(p.n_ctx);
    decode_chunk(base_ctx, tokens, p, c);
    for (int32_t j = 0; j < p.n_scored; ++j) {
      base_top[static_cast<size_t>(j)] =
          log_softmax(base_ctx.logits(p.first + j), &base_lp[static_cast<size_t>(j) * n_vocab]);
    }
    decode_chunk(cand_ctx, tokens, p, c);
    for (int32_t j = 0; j < p.n_scored; ++j) {
      const int32_t top = log_softmax(cand_ctx.logits(p.first + j), cand_lp.data());
      const float* blp = &base_lp[static_cast<size_t>(j) * n_vocab];
      double kl = 0;
      for (size_t v = 0; v < n_vocab; ++v) {
        const double lb = blp[v];
        kl += std::exp(lb) * (lb - static_cast<double>(cand_lp[v]));
      }
      const auto tok = static_cast<size_t>(tokens[start + static_cast<size_t>(p.first + j) + 1]);
      const double nc = -static_cast<double>(cand_lp[tok]);
      const double nb = -static_cast<double>(blp[tok]);
      nll_c.add(nc);
      nll_b.add(nb);
      nll_diff.add(nc - nb);
      sum_nll_cb += nc * nb;
      kld.add(kl);
      klds.push_back(kl);
      const double d = std::exp(-nc) - std::exp(-nb);
      dp.add(d);
      dp2.add(d * d);
      max_abs_dp = std::max(max_abs_dp, std::fabs(d));
      n_same_top += top == base_top[static_cast<size_t>(j)] ? 1 : 0;
      ++n;
    }
    if (options.progress) {
      EvalProgress pr;
      pr.chunk = c + 1;
      pr.n_chunks = p.n_chunks;
      pr.ppl = std::exp(nll_c.sum / static_cast<double>(n));
      pr.kld_mean = kld.sum / static_cast<double>(n);
      pr.top1 = static_cast<double>(n_same_top) / static_cast<double>(n);
      pr.seconds = seconds_since(t0);
      options.progress(pr);
    }
  }

  EvalReport r;
  r.base = ppl_report(nll_b, n, p, tokens.size());
  r.candidate = ppl_report(nll_c, n, p, tokens.size());
  r.n_tokens = n;
  r.n_chunks = p.n_chunks;
  r.n_ctx = p.n_ctx;
  const double dn = static_cast<double>(n);

  // Correlated NLLs: cov(mean_c, mean_b) = cov(nll_c, nll_b) / (n - 1).
  const Estimate lc = nll_c.estimate(n), lb = nll_b.estimate(n);
  const double cov =
      n < 10 ? 0.0 : (sum_nll_cb / dn - lc.value * lb.value) / static_cast<double>(n - 1);
  const double su = lc.uncertainty * lb.uncertainty;
  r.cor_ln_ppl = su > 0 ? cov / su : 0.0;
  const double ln_ratio = lc.value - lb.value;
  const double ln_ratio_unc = std::sqrt(
      std::max(0.0, lc.uncertainty * lc.uncertainty + lb.uncertainty * lb.uncertainty - 2 * cov));
  r.mean_ln_ppl_ratio = {ln_ratio, ln_ratio_unc};
  r.ppl_ratio = {std::exp(ln_ratio), std::exp(ln_ratio) * ln_ratio_unc};
  const double pc = r.candidate.ppl.value, pb = r.base.ppl.value;
  const double uc = r.candidate.ppl.uncertainty, ub = r.base.ppl.uncertainty;
  r.delta_ppl = {pc - pb, std::sqrt(std::max(0.0, uc * uc + ub * ub - 2 * cov * pc * pb))};

  r.kld_mean = kld.estimate(n);
  std::sort(klds.begin(), klds.end());
  r.kld_median = percentile(klds, 0.5);
  r.kld_p90 = percentile(klds, 0.90);
  r.kld_p95 = percentile(klds, 0.95);
  r.kld_p99 = percentile(klds, 0.99);
  r.kld_p99_9 = percentile(klds, 0.999);
  r.kld_max = klds.empty() ? 0 : klds.back();
  r.kld_min = klds.empty() ? 0 : klds.front();

  const double top1 = n > 0 ? static_cast<double>(n_same_top) / dn : 0.0;
  r.top1_agreement = {top1, n > 1 ? std::sqrt(top1 * (1 - top1) / (dn - 1)) : 0.0};

  r.mean_dp = dp.estimate(n);
  // RMS Δp: sqrt of the mean of Δp², its error propagated from that mean's error.
  Moments mse;
  mse.sum = dp.sum2;
  mse.sum2 = dp2.sum2;
  const Estimate m = mse.estimate(n);
  const double rms = std::sqrt(std::max(0.0, m.value));
  r.rms_dp = {rms, rms > 0 ? 0.5 / rms * m.uncertainty : 0.0};
  r.max_abs_dp = max_abs_dp;
  return r;
}

EvalReport evaluate(const Model& candidate, const Model& base, std::string_view text,
                    const EvalOptions& options) {
  const std::vector<TokenId> tokens = tokenize_for_eval(base, text);
  if (candidate.has_tokenizer()) {
    const Tokenizer& ct = candidate.tokenizer();
    if (ct.vocab_size() != base.tokenizer().vocab_size() ||
        tokenize_for_eval(candidate, text) != tokens) {
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("evaluate: {} and {} have different vocabularies (they tokenize "
                              "the text differently)",
                              candidate.info().name, base.info().name));
    }
  }
  return evaluate_tokens(candidate, base, tokens, options);
}

std::vector<std::string> budget_failures(const EvalReport& report, const EvalBudget& budget) {
  std::vector<std::string> out;
  if (budget.max_kld >= 0 && !(report.kld_mean.value <= budget.max_kld)) {
    out.push_back(
        fmt::format("mean KLD {:.6f} > --max-kld {}", report.kld_mean.value, budget.max_kld));
  }
  if (budget.min_top1 >= 0 && !(report.top1_agreement.value >= budget.min_top1)) {
    out.push_back(fmt::format("top-1 agreement {:.4f} < --min-top1 {}", report.top1_agreement.value,
                              budget.min_top1));
  }
  return out;
}

}  // namespace thinkmesh
