// Encoder embedders (BERT family) for the Embedder API of thinkmesh/embed.h.
//
//   thinkmesh::register_bert_embedder();   // once, at start-up
//   auto embedder = thinkmesh::Embedder::open("minilm.gguf");   // general.architecture "bert"
//
// The registration is explicit because a static initialiser inside a static library is
// dropped by the linker when nothing references its object file (embedder_registry.h).
#pragma once

namespace thinkmesh {

// Makes Embedder::open handle `general.architecture` "bert" (library thinkmesh_encoder;
// docs/embeddings.md). Idempotent and thread-safe.
void register_bert_embedder();

}  // namespace thinkmesh
