// Accuracy of a model on a text: perplexity, and how far a candidate (a quantized or pruned
// copy) is from its base model — KL divergence, top-1 agreement, Δp of the correct token.
//
//   auto base = Model::load("model-F16.gguf"), cand = Model::load("model-Q4_0.gguf");
//   EvalReport r = evaluate(*cand, *base, text, {.n_ctx = 512});
//   if (r.kld_mean > 0.01) ...
//
// The scheme is llama-perplexity's (llama.cpp c392e50): the whole text is tokenized once with
// the vocabulary's special tokens (BOS when it adds one) and cut into chunks of n_ctx tokens;
// the first token of each chunk is replaced by BOS (when the vocabulary adds BOS); each chunk
// is decoded from an empty cache and only its second half is scored: the logits at positions
// first = n_ctx/2 .. n_ctx-2 predict tokens first+1 .. n_ctx-1, so n_ctx - 1 - n_ctx/2 tokens
// per chunk. PPL = exp(mean NLL). Both models run chunk by chunk: the base's log-softmax of
// the scored positions of one chunk is kept in memory (n_scored × n_vocab floats), then the
// candidate decodes the same chunk; nothing is written to disk. Unlike llama-perplexity,
// which stores the base log-probabilities as 16-bit values clipped at ln p = -16, the base
// distribution is kept exact in F32 and the KL sum runs over the whole vocabulary.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "thinkmesh/context.h"
#include "thinkmesh/model.h"

namespace thinkmesh {

// Progress of an evaluation, reported after each chunk.
struct EvalProgress {
  int32_t chunk = 0;     // chunks done (1-based)
  int32_t n_chunks = 0;  // chunks in the run
  double ppl = 0;        // running PPL of the candidate (or the model, perplexity only)
  double kld_mean = 0;   // running mean KLD (0 when there is no base)
  double top1 = 0;       // running top-1 agreement (0 when there is no base)
  double seconds = 0;    // wall time since the start
};

struct EvalOptions {
  int32_t n_ctx = 512;           // default 512; tokens per chunk (llama-perplexity -c)
  int32_t n_chunks = 0;          // default 0 = every full chunk of the text (--chunks)
  int32_t n_threads = 0;         // default 0 = hardware threads
  int32_t n_batch = 0;           // default 0 = n_ctx (one forward pass per chunk)
  KvType kv_type = KvType::f16;  // default F16, as llama-perplexity runs
  // default empty. Called after each chunk (on the calling thread).
  std::function<void(const EvalProgress&)> progress;
};

// A mean and its standard error, as llama-perplexity prints "x ± u".
struct Estimate {
  double value = 0;
  double uncertainty = 0;
};

struct PerplexityReport {
  Estimate ppl;               // exp(mean NLL), uncertainty ppl · stderr(NLL)
  double mean_nll = 0;        // nats per token
  int64_t n_tokens = 0;       // scored tokens: n_chunks · (n_ctx - 1 - n_ctx/2)
  int64_t n_text_tokens = 0;  // tokens of the whole text (with BOS)
  int32_t n_chunks = 0;
  int32_t n_ctx = 0;
};

// Candidate vs base over the same scored tokens. Probabilities are 0..1 (not percent).
struct EvalReport {
  PerplexityReport base;       // the base model's perplexity
  PerplexityReport candidate;  // the candidate's
  Estimate delta_ppl;          // PPL(cand) - PPL(base), uncertainty from the correlated NLLs
  Estimate ppl_ratio;          // PPL(cand) / PPL(base)
  Estimate mean_ln_ppl_ratio;  // mean of NLL(cand) - NLL(base)
  double cor_ln_ppl = 0;       // correlation of the per-token NLLs, -1..1
  // KL(p_base || p_cand) per scored token, in nats, over the full vocabulary.
  Estimate kld_mean;
  double kld_median = 0;
  double kld_p90 = 0, kld_p95 = 0, kld_p99 = 0, kld_p99_9 = 0;  // percentiles (linear interp.)
  double kld_max = 0, kld_min = 0;
  // Fraction of scored tokens where both models' argmax is the same token.
  Estimate top1_agreement;
  // Δp = p_cand(correct token) - p_base(correct token).
  Estimate rms_dp;   // sqrt(mean Δp²)
  Estimate mean_dp;  // mean Δp
  double max_abs_dp = 0;
  int64_t n_tokens = 0;  // scored tokens
  int32_t n_chunks = 0;
  int32_t n_ctx = 0;
};

// Budgets a candidate must meet (quantize --gate-kld, eval --max-kld / --min-top1).
struct EvalBudget {
  double max_kld = -1;   // default -1 = no limit; mean KLD must be <= this
  double min_top1 = -1;  // default -1 = no limit; top-1 agreement (0..1) must be >= this
};

// Tokenizes `text` as llama-perplexity does (special tokens added as the vocabulary says).
// Throws Error(not_found) when the model has no tokenizer.
std::vector<TokenId> tokenize_for_eval(const Model& model, std::string_view text);

// Perplexity of `model` on `text` (or on token ids, already tokenized with BOS). Throws
// Error(invalid_argument) when the text has fewer than 2·n_ctx tokens (llama-perplexity's
// minimum) or n_ctx < 4, Error(out_of_range) when n_ctx exceeds the model's training context.
PerplexityReport perplexity(const Model& model, std::string_view text, const EvalOptions& options);
PerplexityReport perplexity_tokens(const Model& model, std::span<const TokenId> tokens,
                                   const EvalOptions& options);

// Candidate vs base on `text`, tokenized with the base's tokenizer. Throws
// Error(invalid_argument) when the vocabularies differ (size, or the candidate tokenizes the
// text differently), besides perplexity()'s errors.
EvalReport evaluate(const Model& candidate, const Model& base, std::string_view text,
                    const EvalOptions& options);
EvalReport evaluate_tokens(const Model& candidate, const Model& base,
                           std::span<const TokenId> tokens, const EvalOptions& options);

// The budgets `report` fails, one sentence each ("mean KLD 0.0123 > 0.01"); empty when it
// meets them all.
std::vector<std::string> budget_failures(const EvalReport& report, const EvalBudget& budget);

}  // namespace thinkmesh
