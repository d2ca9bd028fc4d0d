// Llama family (llama2.c TinyStories, TinyLlama, SmolLM, Llama 2/3): RMSNorm, grouped-query
// attention without biases, RoPE on adjacent pairs, SwiGLU feed-forward.
#include "model/weights.h"

namespace thinkmesh::model {
extern const Architecture kLlamaArchitecture = {"llama", /*qkv_bias=*/false, /*rope_neox=*/false};
}  // namespace thinkmesh::model
