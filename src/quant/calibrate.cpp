// calibrate(): llama-imatrix's compute_imatrix on thinkmesh's decoder. The importance matrix
// is collected through ContextOptions::activation_observer (one call per matrix product and
// chunk, since a chunk is decoded as one batch).
#include <algorithm>

#include "thinkmesh/context.h"
#include "thinkmesh/error.h"
#include "thinkmesh/imatrix.h"
#include "thinkmesh/model.h"

namespace thinkmesh {

CalibrateResult calibrate(std::shared_ptr<const Model> model, std::string_view text,
                          const CalibrateOptions& options, const std::string& dataset) {
  const Tokenizer& tokenizer = model->tokenizer();
  // At least 16 tokens: the collector ignores smaller products, as llama-imatrix does.
  const int32_t n_ctx_max = model->info().n_ctx_train > 0 ? model->info().n_ctx_train : 1 << 20;
  if (options.n_ctx < 16 || options.n_ctx > n_ctx_max)
    throw Error(ErrorKind::invalid_argument, "--ctx " + std::to_string(options.n_ctx) +
                                                 " (must be 16.." + std::to_string(n_ctx_max) +
                                                 ", the training context)");
  const std::vector<TokenId> tokens = tokenizer.tokenize(text);
  const auto n_ctx = static_cast<int64_t>(options.n_ctx);
  const int64_t n_chunk_max = static_cast<int64_t>(tokens.size()) / n_ctx;
  if (n_chunk_max < 1)
    throw Error(ErrorKind::invalid_argument,
                "the calibration text has " + std::to_string(tokens.size()) +
                    " tokens; a chunk needs " + std::to_string(n_ctx) + " (lower --ctx)");
  const auto n_chunks = static_cast<int32_t>(
      options.n_chunks < 0 ? n_chunk_max : std::min<int64_t>(options.n_chunks, n_chunk_max));
  if (n_chunks < 1)
    throw Error(ErrorKind::invalid_argument,
                "--chunks " + std::to_string(options.n_chunks) + " (must be >= 1)");

  ImatrixCollector collector(options.include_output);
  HessianCollector hessians;
  // output.weight's input has every position only when all of them ask for logits.
  const bool all_logits = options.include_output || options.collect_hessian;
  ContextOptions co;
  co.n_ctx = options.n_ctx;
  co.n_batch = options.n_ctx;  // one batch per chunk: one observation per matrix and chunk
  co.n_seq_max = 1;
  co.n_threads = options.n_threads;
  co.activation_observer = [&collector, &hessians, &options](const std::string& weight,
                                                             const float* x, int64_t n_tokens,
                                                             int64_t n_cols) {
    collector.observe(weight, x, n_tokens, n_cols);
    if (options.collect_hessian) hessians.observe(weight, x, n_tokens, n_cols);
  };
  Context ctx(model, co);
  const auto bos = tokenizer.bos();
  const bool add_bos = tokenizer.adds_bos() && bos.has_value();
  for (int32_t c = 0; c < n_chunks; ++c) {
    ctx.clear();
    Batch batch;
    const int64_t start = c * n_ctx;
    for (int64_t j = 0; j < n_ctx; ++j) {
      const TokenId tok = (j == 0 && add_bos) ? *bos : tokens[static_cast<size_t>(start + j)];
      // All positions ask for logits only when output.weight is collected (its input is
      // otherwise a single row, below the collector's 16-row minimum).
      batch.add(tok, static_cast<int32_t>(j), 0, all_logits || j + 1 == n_ctx);
    }
    ctx.decode(batch);
    if (options.on_chunk) options.on_chunk(c + 1, n_chunks);
  }
  CalibrateResult result;
  result.imatrix = collector.result(dataset);
  if (options.collect_hessian) result.hessian = hessians.result(dataset, n_chunks);
  result.n_text_tokens = static_cast<int64_t>(tokens.size());
  result.n_chunks = n_chunks;
  return result;
}

}  // namespace thinkmesh
