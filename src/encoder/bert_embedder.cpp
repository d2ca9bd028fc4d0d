// BertEmbedder (see bert_embedder.h) and register_bert_embedder.
#include "encoder/bert_embedder.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include <fmt/core.h>

#include "embed/embedder_registry.h"
#include "thinkmesh/encoder.h"
#include "thinkmesh/error.h"

namespace thinkmesh::encoder {
namespace {

int32_t default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int32_t>(n);
}

Pooling resolve_pooling(const BertModel& m, Pooling requested) {
  if (requested != Pooling::model_default) return requested;
  switch (m.hp.pooling) {
    case PoolingType::mean:
      return Pooling::mean;
    case PoolingType::cls:
      return Pooling::cls;
    case PoolingType::none:
      break;
  }
  throw Error(ErrorKind::invalid_argument,
              fmt::format("{}: the model declares no pooling (bert.pooling_type 0 or absent), so "
                          "it gives one vector per token; choose one per text with pooling mean "
                          "or cls (--pooling)",
                          m.file.path()));
}

}  // namespace

BertEmbedder::BertEmbedder(gguf::File file, const EmbedOptions& options)
    : model_(BertModel::load(std::move(file))), options_(options), encoder_(model_) {
  pooling_ = resolve_pooling(model_, options_.pooling);
  if (options_.batch_size <= 0) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("batch_size must be > 0 (got {})", options_.batch_size));
  }
  tokenizer_ = Tokenizer::from_gguf(model_.file);
  if (tokenizer_->vocab_size() != static_cast<size_t>(model_.hp.n_vocab)) {
    throw Error(ErrorKind::invalid_file,
                fmt::format("{}: the vocabulary has {} tokens but token_embd.weight has {} rows",
                            model_.file.path(), tokenizer_->vocab_size(), model_.hp.n_vocab));
  }
  // How many special tokens tokenize adds before and after the text ([CLS] and [SEP]).
  const std::vector<TokenId> with = tokenizer_->tokenize("a", {.add_special = true});
  const std::vector<TokenId> without = tokenizer_->tokenize("a", {.add_special = false});
  const auto at = std::search(with.begin(), with.end(), without.begin(), without.end());
  if (without.empty() || at == with.end()) {
    throw Error(ErrorKind::invalid_file,
                fmt::format("{}: the tokenizer's special tokens around a text cannot be told apart",
                            model_.file.path()));
  }
  n_before_ = static_cast<size_t>(at - with.begin());
  n_after_ = with.size() - n_before_ - without.size();
  if (n_before_ + n_after_ >= static_cast<size_t>(model_.hp.n_positions)) {
    throw Error(ErrorKind::invalid_file,
                fmt::format("{}: {} positions cannot hold the {} special tokens and a text",
                            model_.file.path(), model_.hp.n_positions, n_before_ + n_after_));
  }
  pool_ = std::make_unique<model::ThreadPool>(options_.n_threads > 0 ? options_.n_threads
                                                                     : default_threads());
}

std::vector<TokenId> BertEmbedder::tokenize(std::string_view text, EmbeddingRowInfo& info) const {
  TokenizeOptions o;
  o.add_special = true;
  o.parse_special = true;  // as llama-embedding (common_tokenize)
  std::vector<TokenId> ids = tokenizer_->tokenize(text, o);
  info = EmbeddingRowInfo{};
  const size_t n_added = n_before_ + n_after_;
  const size_t n_text = ids.size() > n_added ? ids.size() - n_added : 0;
  const auto unk = tokenizer_->unk();
  auto count_unknown = [&](size_t n) {
    int32_t count = 0;
    for (size_t i = n_before_; i < n_before_ + n; ++i) count += unk && ids[i] == *unk;
    return count;
  };
  info.n_unknown = count_unknown(n_text);
  info.empty = n_text == 0;
  info.all_unknown = n_text > 0 && info.n_unknown == static_cast<int32_t>(n_text);
  if (ids.empty()) {
    throw Error(ErrorKind::invalid_argument,
                "bert: an empty text gives no token and the tokenizer adds no [CLS]/[SEP]");
  }
  const auto max = static_cast<size_t>(model_.hp.n_positions);
  if (ids.size() > max) {
    if (!options_.truncate) {
      throw Error(ErrorKind::out_of_range,
                  fmt::format("bert: a text of {} tokens is longer than the model's {} positions "
                              "(truncation is off)",
                              ids.size(), max));
    }
    // Keep the first max - n_after tokens and the closing special token(s) ([SEP]).
    std::copy(ids.end() - static_cast<std::ptrdiff_t>(n_after_), ids.end(),
              ids.begin() + static_cast<std::ptrdiff_t>(max - n_after_));
    ids.resize(max);
    info.truncated = true;
    info.n_unknown = count_unknown(max - n_added);
  }
  info.n_tokens = static_cast<int32_t>(ids.size());
  return ids;
}

void BertEmbedder::run_pass(const std::vector<int64_t>& rows, EmbeddingMatrix& out) {
  batch_.clear();
  for (const int64_t r : rows) batch_.add(tokens_[static_cast<size_t>(r)]);
  const std::span<const float> hidden = encoder_.forward(batch_, *pool_);
  const int64_t D = model_.hp.n_embd;
  for (size_t s = 0; s < rows.size(); ++s) {
    const auto seq = static_cast<int32_t>(s);
    const float* first = &hidden[static_cast<size_t>(batch_.seq_start[seq]) * D];
    const int32_t len = batch_.seq_len(seq);
    std::span<float> row = out.row(rows[s]);
    if (pooling_ == Pooling::cls) {
      std::copy(first, first + D, row.begin());
    } else {
      // llama.cpp multiplies by a matrix of 1/n (F32); the sum here is in double.
      const float inv_n = 1.0f / static_cast<float>(len);
      for (int64_t i = 0; i < D; ++i) {
        double sum = 0.0;
        for (int32_t t = 0; t < len; ++t)
          sum += static_cast<double>(first[t * D + i]) * static_cast<double>(inv_n);
        row[static_cast<size_t>(i)] = static_cast<float>(sum);
      }
    }
    if (options_.normalize) {
      double norm2 = 0.0;
      for (const float x : row) norm2 += static_cast<double>(x) * x;
      // As common_embd_normalize(…, 2): the inverse norm in float.
      if (norm2 > 0) {
        const auto inv = static_cast<float>(1.0 / std::sqrt(norm2));
        for (float& x : row) x *= inv;
      }
    }
  }
}

EmbeddingMatrix BertEmbedder::embed(std::span<const std::string> texts) {
  EmbeddingMatrix m;
  m.n_rows = static_cast<int64_t>(texts.size());
  m.dim = dim();
  m.data.assign(texts.size() * static_cast<size_t>(m.dim), 0.0f);
  m.rows.resize(texts.size());
  tokens_.resize(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) tokens_[i] = tokenize(texts[i], m.rows[i]);

  // Passes of up to batch_size texts in input order, cut early at kMaxTokensPerPass tokens.
  std::vector<int64_t> rows;
  int64_t pass_tokens = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto n = static_cast<int64_t>(tokens_[i].size());
    if (!rows.empty() && (static_cast<int64_t>(rows.size()) >= options_.batch_size ||
                          pass_tokens + n > kMaxTokensPerPass)) {
      run_pass(rows, m);
      rows.clear();
      pass_tokens = 0;
    }
    rows.push_back(static_cast<int64_t>(i));
    pass_tokens += n;
  }
  if (!rows.empty()) run_pass(rows, m);
  return m;
}

}  // namespace thinkmesh::encoder

namespace thinkmesh {
namespace {

std::unique_ptr<Embedder> make_bert_embedder(gguf::File file, const EmbedOptions& options) {
  return std::make_unique<encoder::BertEmbedder>(std::move(file), options);
}

}  // namespace

void register_bert_embedder() {
  embed::register_embedder_factory(encoder::kBertArchitecture, &make_bert_embedder);
}

}  // namespace thinkmesh
