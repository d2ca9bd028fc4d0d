// Sentence embeddings: many texts in, one vector per text out.
//
//   auto embedder = thinkmesh::Embedder::open("models/wink-sg-100d.gguf");
//   std::vector<std::string> texts = {"cook rice on the stove", "how to make rice"};
//   thinkmesh::EmbeddingMatrix m = embedder->embed(texts);
//   float similarity = thinkmesh::cosine(m.row(0), m.row(1));
//
// `Embedder::open` picks the implementation from the GGUF file's `general.architecture`:
//   "wordvec"  static word-vector table (weighted mean of word vectors; docs/embeddings.md)
//   "bert"     BERT-family encoder, once thinkmesh::register_bert_embedder() (thinkmesh/encoder.h,
//              library thinkmesh_encoder) has run
//   others     looked up in the embedder registry (src/embed/embedder_registry.h), where
//              encoder models register; unknown ones throw Error(unsupported).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace thinkmesh {

// How token vectors become one vector per text.
enum class Pooling {
  model_default,  // what the model's metadata says (`<arch>.pooling_type`); wordvec: mean
  mean,           // (weighted) mean over the text's tokens
  cls,            // the first token's vector (BERT's [CLS]); not available for wordvec
};

// Parses "mean", "cls" or "default" (case-sensitive); anything else throws
// Error(invalid_argument).
Pooling parse_pooling(std::string_view name);
std::string_view to_string(Pooling pooling);

struct EmbedOptions {
  Pooling pooling = Pooling::model_default;  // default: the model's own pooling
  bool normalize = true;                     // default true: L2-normalise every row
  int n_threads = 0;                         // default 0: the implementation's choice
  int batch_size = 32;                       // default 32: texts per forward pass (encoders)
  // Texts longer than the model's positions (encoders): true (default) cuts them and sets
  // EmbeddingRowInfo::truncated; false throws Error(out_of_range). Word vectors never truncate.
  bool truncate = true;
};

// What happened to one input text.
struct EmbeddingRowInfo {
  int32_t n_tokens = 0;   // tokens (wordvec: known words) that went into the vector; encoders
                          // count [CLS] and [SEP]
  int32_t n_unknown = 0;  // words the model had no vector for (wordvec: ignored), or [UNK]
                          // tokens (encoders: embedded like any token)
  // The text held no word or token at all. wordvec: the row is all zeros; encoders: the row is
  // the embedding of [CLS] [SEP] alone.
  bool empty = false;
  // It held words, none known. wordvec: the row is all zeros; encoders: every text token is
  // [UNK] and the row is the encoder's vector of those [UNK] tokens.
  bool all_unknown = false;
  bool truncated = false;  // tokens beyond the model's positions were dropped (encoders)
};

// n_rows × dim floats, row-major: row i is the embedding of input i.
struct EmbeddingMatrix {
  int64_t n_rows = 0;
  int64_t dim = 0;
  std::vector<float> data;             // n_rows * dim
  std::vector<EmbeddingRowInfo> rows;  // n_rows

  std::span<const float> row(int64_t i) const {
    return {data.data() + i * dim, static_cast<size_t>(dim)};
  }
  std::span<float> row(int64_t i) { return {data.data() + i * dim, static_cast<size_t>(dim)}; }
};

class Embedder {
 public:
  virtual ~Embedder();

  // Opens a GGUF embedding model (see the header comment for the dispatch). Throws
  // Error(not_found/io) when the file cannot be read, Error(invalid_file) when it is malformed,
  // Error(unsupported) for architectures no embedder handles (a "bert" file before
  // register_bert_embedder() says so) and Error(invalid_argument) for options the model cannot
  // honour (e.g. cls pooling on word vectors).
  static std::unique_ptr<Embedder> open(const std::string& path, const EmbedOptions& options = {});

  virtual int64_t dim() const = 0;
  // The file's `general.architecture` ("wordvec", "bert", ...).
  virtual std::string_view architecture() const = 0;
  // Embeds every text; row i of the result belongs to texts[i]. An empty span gives a 0 × dim
  // matrix. Not safe to call concurrently on one Embedder (implementations keep scratch space).
  virtual EmbeddingMatrix embed(std::span<const std::string> texts) = 0;

  // Convenience: one text.
  std::vector<float> embed_one(std::string_view text);
};

// Cosine similarity of two vectors of the same length; 0 when either is all zeros. Throws
// Error(invalid_argument) when the lengths differ.
float cosine(std::span<const float> a, std::span<const float> b);

}  // namespace thinkmesh
