// Which Embedder implementation opens which `general.architecture`.
//
// Embedder::open maps the file once, reads `general.architecture` and calls the factory
// registered for it. "wordvec" is built in. An encoder (BERT and relatives) plugs in by calling
// register_embedder_factory("bert", &make_bert_embedder) before the first open -- from code
// that links thinkmesh_embed, e.g. a `register_bert_embedder()` the encoder's library exports
// and the CLI/service calls at start-up (a static initialiser in a static library is dropped by
// the linker when nothing else references its object file, so do not rely on one).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "thinkmesh/embed.h"
#include "thinkmesh/gguf.h"

namespace thinkmesh::embed {

// Builds an embedder from an opened file (the factory takes ownership of the mapping).
using EmbedderFactory = std::unique_ptr<Embedder> (*)(gguf::File file, const EmbedOptions& options);

// Registers (or replaces) the factory for `architecture`. Thread-safe.
void register_embedder_factory(std::string architecture, EmbedderFactory factory);
// The factory for `architecture`, or nullptr. Thread-safe.
EmbedderFactory find_embedder_factory(std::string_view architecture);
// Registered architectures, sorted (for error messages).
std::vector<std::string> registered_architectures();

}  // namespace thinkmesh::embed
