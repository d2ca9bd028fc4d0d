// Embedder::open (dispatch on general.architecture), pooling names, cosine.
#include <cmath>
#include <string>

#include <fmt/core.h>

#include "embed/embedder_registry.h"
#include "thinkmesh/embed.h"
#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"

namespace thinkmesh {

Embedder::~Embedder() = default;

Pooling parse_pooling(std::string_view name) {
  if (name == "mean") return Pooling::mean;
  if (name == "cls") return Pooling::cls;
  if (name == "default" || name.empty()) return Pooling::model_default;
  throw Error(ErrorKind::invalid_argument,
              fmt::format("unknown pooling '{}' (expected mean, cls or default)", name));
}

std::string_view to_string(Pooling pooling) {
  switch (pooling) {
    case Pooling::model_default:
      return "default";
    case Pooling::mean:
      return "mean";
    case Pooling::cls:
      return "cls";
  }
  return "?";
}

std::unique_ptr<Embedder> Embedder::open(const std::string& path, const EmbedOptions& options) {
  gguf::File file = gguf::File::open(path);
  const std::string architecture = file.get_string_or("general.architecture", "");
  if (architecture.empty()) {
    throw Error(ErrorKind::invalid_file,
                fmt::format("{}: no general.architecture; cannot tell what kind of embedding "
                            "model this is",
                            path));
  }
  if (const auto factory = embed::find_embedder_factory(architecture)) {
    return factory(std::move(file), options);
  }
  if (architecture == "bert" || architecture == "nomic-bert" || architecture == "jina-bert-v2") {
    throw Error(ErrorKind::unsupported,
                fmt::format("{}: architecture '{}': no BERT embedder is registered (the program "
                            "must link thinkmesh_encoder and call "
                            "thinkmesh::register_bert_embedder() first)",
                            path, architecture));
  }
  std::string known;
  for (const auto& name : embed::registered_architectures()) {
    known += known.empty() ? name : ", " + name;
  }
  throw Error(ErrorKind::unsupported,
              fmt::format("{}: architecture '{}' is not an embedding model thinkmesh can run "
                          "(embedders: {})",
                          path, architecture, known));
}

std::vector<float> Embedder::embed_one(std::string_view text) {
  const std::string owned(text);
  EmbeddingMatrix m = embed(std::span<const std::string>(&owned, 1));
  return std::move(m.data);
}

float cosine(std::span<const float> a, std::span<const float> b) {
  if (a.size() != b.size()) {
    throw Error(
        ErrorKind::invalid_argument,
        fmt::format("cosine: vectors of different lengths ({} and {})", a.size(), b.size()));
  }
  // Accumulate in double: 100-1024 products, and the result is compared against thresholds.
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  if (na == 0 || nb == 0) return 0.0f;
  return static_cast<float>(dot / (std::sqrt(na) * std::sqrt(nb)));
}

}  // namespace thinkmesh
