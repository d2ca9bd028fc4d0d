// The BERT sentence embedder: WordPiece tokens → encoder → pooling → L2 normalisation.
//
//   tokens     the file's tokenizer with [CLS] … [SEP] (add_special) and special-token text
//              parsed, as llama.cpp's llama-embedding tokenizes
//   too long   more than the model's positions (bert.context_length, 512 for MiniLM):
//              EmbedOptions::truncate true keeps the first positions-1 tokens and the final
//              [SEP] and sets EmbeddingRowInfo::truncated; false throws Error(out_of_range)
//   empty      a text without any token (empty or whitespace only) is embedded as [CLS] [SEP]
//              and marked EmbeddingRowInfo::empty
//   unknown    [UNK] tokens are embedded as the model does (they carry the token's position);
//              a text whose every token is [UNK] is marked all_unknown, its vector is not zero
//   passes     texts go through the encoder EmbedOptions::batch_size at a time (and at most
//              kMaxTokensPerPass tokens), laid end to end without padding
//   pooling    EmbedOptions::pooling, else bert.pooling_type: mean over all the text's tokens
//              ([CLS] and [SEP] included, as llama.cpp) or the [CLS] token's vector; a model
//              without pooling (type 0) needs an explicit mean or cls (Error(invalid_argument))
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "encoder/bert_encoder.h"
#include "encoder/bert_model.h"
#include "model/ops.h"
#include "thinkmesh/embed.h"
#include "thinkmesh/tokenizer.h"

namespace thinkmesh::encoder {

class BertEmbedder final : public Embedder {
 public:
  // Most tokens one forward pass holds: bounds the scratch memory, 6·D + F floats per token
  // (4096 tokens of MiniLM ≈ 63 MB). A single text up to the model's positions always fits.
  static constexpr int64_t kMaxTokensPerPass = 4096;

  // Loads and checks the model and its tokenizer. Throws as BertModel::load and
  // Tokenizer::from_gguf, and Error(invalid_argument) for a model without pooling when the
  // options do not choose one.
  BertEmbedder(gguf::File file, const EmbedOptions& options);

  int64_t dim() const override { return model_.hp.n_embd; }
  std::string_view architecture() const override { return kBertArchitecture; }
  EmbeddingMatrix embed(std::span<const std::string> texts) override;

  // The token ids text `text` is embedded from (after truncation); sets `info`.
  std::vector<TokenId> tokenize(std::string_view text, EmbeddingRowInfo& info) const;
  const BertModel& model() const { return model_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  Pooling pooling() const { return pooling_; }

 private:
  void run_pass(const std::vector<int64_t>& rows, EmbeddingMatrix& out);

  BertModel model_;
  EmbedOptions options_;
  Pooling pooling_ = Pooling::mean;  // resolved: mean or cls
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<model::ThreadPool> pool_;
  BertEncoder encoder_;
  EncoderBatch batch_;
  size_t n_before_ = 0, n_after_ = 0;         // special tokens tokenize adds: [CLS] / [SEP]
  std::vector<std::vector<TokenId>> tokens_;  // per text of the current embed() call
};

}  // namespace thinkmesh::encoder
