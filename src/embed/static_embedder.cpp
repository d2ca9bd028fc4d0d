#include "embed/static_embedder.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/core.h>

#include "embed/word_split.h"
#include "tensor/blocks.h"
#include "thinkmesh/error.h"
#include "thinkmesh/half.h"

namespace thinkmesh::embed {
namespace {

// Clitics the vectors' tokenizer (GloVe used Stanford's PTB tokenizer) split off as tokens of
// their own; wink's vocabulary dropped those tokens, so the stem is the best match left.
constexpr std::string_view kClitics[] = {"'s", "n't", "'m", "'re", "'ll", "'ve", "'d"};
constexpr size_t kMaxFoldBytes = 128;

size_t encode_utf8(uint32_t cp, char* out) {
  if (cp < 0x80) {
    out[0] = static_cast<char>(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = static_cast<char>(0xC0 | (cp >> 6));
    out[1] = static_cast<char>(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = static_cast<char>(0xE0 | (cp >> 12));
    out[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out[2] = static_cast<char>(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = static_cast<char>(0xF0 | (cp >> 18));
  out[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
  out[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
  out[3] = static_cast<char>(0x80 | (cp & 0x3F));
  return 4;
}

[[noreturn]] void fail(const gguf::File& file, const std::string& what) {
  throw Error(ErrorKind::invalid_file, fmt::format("{}: wordvec model: {}", file.path(), what));
}

}  // namespace

StaticEmbedder::StaticEmbedder(gguf::File file, const EmbedOptions& options)
    : file_(std::move(file)), options_(options) {
  if (options_.pooling == Pooling::cls) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("{}: cls pooling needs an encoder's [CLS] token; a wordvec model "
                            "only pools by weighted mean",
                            file_.path()));
  }
  const int64_t dim = file_.get_int(kKeyEmbeddingLength);
  if (dim <= 0 || dim > 65536)
    fail(file_, fmt::format("{} = {} is out of range", kKeyEmbeddingLength, dim));
  dim_ = dim;
  sif_a_ = static_cast<float>(file_.get_float_or(kKeySifA, kDefaultSifA));
  if (!(sif_a_ > 0) || !std::isfinite(sif_a_))
    fail(file_, fmt::format("{} = {} must be > 0", kKeySifA, sif_a_));

  const gguf::Value* tokens = file_.find(kKeyTokens);
  if (!tokens || !tokens->is_array())
    fail(file_, fmt::format("{} is missing or not an array", kKeyTokens));
  const auto& items = tokens->as_array().items;
  if (items.empty() || items.size() > 0x7FFFFFFF)
    fail(file_, fmt::format("{} holds {} words", kKeyTokens, items.size()));
  words_.reserve(items.size());
  for (const auto& item : items) words_.emplace_back(item.as_string());
  const auto n_words = static_cast<int64_t>(words_.size());

  const gguf::TensorInfo* table = file_.find_tensor(kTensorTable);
  if (!table) fail(file_, fmt::format("tensor {} is missing", kTensorTable));
  if (table->ne.size() != 2 || table->ne[1] != n_words || table->ne[0] < dim_) {
    fail(file_, fmt::format("tensor {} must be [>= {}, {}] (embedding length, words)", kTensorTable,
                            dim_, n_words));
  }
  table_type_ = table->type;
  if (table_type_ != TensorType::F32 && table_type_ != TensorType::F16 &&
      table_type_ != TensorType::Q8_0) {
    throw Error(ErrorKind::unsupported,
                fmt::format("{}: tensor {} has type {}; wordvec tables are F32, F16 or Q8_0",
                            file_.path(), kTensorTable, name(table_type_)));
  }
  row_stride_ = row_bytes(table_type_, table->ne[0]);
  table_ = file_.tensor_data(*table).data();

  const gguf::TensorInfo* prob = file_.find_tensor(kTensorProb);
  if (!prob) fail(file_, fmt::format("tensor {} is missing", kTensorProb));
  if (prob->type != TensorType::F32 || prob->ne.size() != 1 || prob->ne[0] != n_words) {
    fail(file_, fmt::format("tensor {} must be F32 [{}]", kTensorProb, n_words));
  }
  const auto prob_bytes = file_.tensor_data(*prob);
  weights_.resize(words_.size());
  for (size_t i = 0; i < words_.size(); ++i) {
    float p;
    std::memcpy(&p, prob_bytes.data() + i * sizeof(float), sizeof(float));
    if (!(p >= 0.0f && p <= 1.0f)) {
      fail(file_,
           fmt::format("tensor {}: p({}) = {} is not a probability", kTensorProb, words_[i], p));
    }
    weights_[i] = sif_a_ / (sif_a_ + p);
  }
  index_ = WordIndex(words_);
}

int32_t StaticEmbedder::find_exact_or_stem(std::string_view word) const {
  if (const int32_t id = index_.find(word); id >= 0) return id;
  for (const std::string_view clitic : kClitics) {
    if (word.size() > clitic.size() && word.ends_with(clitic)) {
      return index_.find(word.substr(0, word.size() - clitic.size()));
    }
  }
  return -1;
}

int32_t StaticEmbedder::find_word(std::string_view word) const {
  if (const int32_t id = find_exact_or_stem(word); id >= 0) return id;
  const bool ascii = std::all_of(word.begin(), word.end(),
                                 [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii || word.size() > kMaxFoldBytes) return -1;
  // Accents off ("café" → "cafe"): the vocabulary is almost all ASCII. A stack buffer keeps the
  // hot path allocation-free; the folded word is never longer than the original.
  char folded[kMaxFoldBytes];
  size_t n = 0;
  for (size_t pos = 0; pos < word.size();) {
    const uint32_t cp = unicode::nfd_first(unicode::decode_one(word, pos));
    if (unicode::flags(cp) & unicode::kAccentMark) continue;
    char utf8[4];
    const size_t len = encode_utf8(cp, utf8);
    if (n + len > kMaxFoldBytes) return -1;
    std::memcpy(folded + n, utf8, len);
    n += len;
  }
  return find_exact_or_stem(std::string_view(folded, n));
}

void StaticEmbedder::accumulate(int32_t id, float w, float* out) const {
  const uint8_t* row = table_ + static_cast<size_t>(id) * row_stride_;
  switch (table_type_) {
    case TensorType::Q8_0: {
      // Blocks of 32: value = d · q. The padding past dim_ is never read.
      const auto* blocks = reinterpret_cast<const block_q8_0*>(row);
      for (int64_t j0 = 0, b = 0; j0 < dim_; j0 += QK8_0, ++b) {
        const float scale = w * fp16_to_fp32(blocks[b].d);
        const int64_t n = std::min<int64_t>(QK8_0, dim_ - j0);
        const int8_t* q = blocks[b].qs;
        float* o = out + j0;
        for (int64_t j = 0; j < n; ++j) o[j] += scale * static_cast<float>(q[j]);
      }
      break;
    }
    case TensorType::F16: {
      const auto* h = reinterpret_cast<const uint16_t*>(row);
      for (int64_t j = 0; j < dim_; ++j) out[j] += w * fp16_to_fp32(h[j]);
      break;
    }
    default: {
      const auto* f = reinterpret_cast<const float*>(row);
      for (int64_t j = 0; j < dim_; ++j) out[j] += w * f[j];
      break;
    }
  }
}

std::vector<float> StaticEmbedder::word_vector(int32_t id) const {
  if (id < 0 || id >= n_words()) {
    throw Error(ErrorKind::out_of_range,
                fmt::format("word id {} is not in [0, {})", id, n_words()));
  }
  std::vector<float> v(static_cast<size_t>(dim_), 0.0f);
  accumulate(id, 1.0f, v.data());
  return v;
}

EmbeddingRowInfo StaticEmbedder::embed_into(std::string_view text, std::span<float> out,
                                            std::string& scratch) const {
  if (static_cast<int64_t>(out.size()) != dim_) {
    throw Error(
        ErrorKind::invalid_argument,
        fmt::format("embed_into: output holds {} floats, the model's dim is {}", out.size(), dim_));
  }
  std::fill(out.begin(), out.end(), 0.0f);
  EmbeddingRowInfo info;
  double weight_sum = 0;
  auto add = [&](int32_t id) {
    accumulate(id, weights_[id], out.data());
    weight_sum += weights_[id];
    ++info.n_tokens;
  };
  split_words(text, scratch, [&](std::string_view word) {
    if (const int32_t id = find_word(word); id >= 0) return add(id);
    if (word.find('-') == std::string_view::npos) {
      ++info.n_unknown;
      return;
    }
    // A compound the vocabulary lacks ("summer-camp"): its parts, each on its own.
    size_t start = 0;
    while (start <= word.size()) {
      const size_t end = std::min(word.find('-', start), word.size());
      if (const int32_t id = find_word(word.substr(start, end - start)); id >= 0) {
        add(id);
      } else {
        ++info.n_unknown;
      }
      start = end + 1;
    }
  });
  if (info.n_tokens == 0) {
    info.empty = info.n_unknown == 0;
    info.all_unknown = info.n_unknown > 0;
    return info;  // the zero vector
  }
  const auto inv_weight = static_cast<float>(1.0 / weight_sum);
  for (float& x : out) x *= inv_weight;
  if (options_.normalize) {
    double norm2 = 0;
    for (const float x : out) norm2 += static_cast<double>(x) * x;
    // A weighted mean of non-zero vectors can still cancel to zero; leave it zero then.
    if (norm2 > 0) {
      const auto inv_norm = static_cast<float>(1.0 / std::sqrt(norm2));
      for (float& x : out) x *= inv_norm;
    }
  }
  return info;
}

EmbeddingMatrix StaticEmbedder::embed(std::span<const std::string> texts) {
  EmbeddingMatrix m;
  m.n_rows = static_cast<int64_t>(texts.size());
  m.dim = dim_;
  m.data.resize(texts.size() * static_cast<size_t>(dim_));
  m.rows.resize(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    m.rows[i] = embed_into(texts[i], m.row(static_cast<int64_t>(i)), scratch_);
  }
  return m;
}

}  // namespace thinkmesh::embed
