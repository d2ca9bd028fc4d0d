// Qwen2 family: the llama layer with biases on the Q, K and V projections and NEOX RoPE
// (rotating the two halves of each head).
#include "model/weights.h"

namespace thinkmesh::model {
extern const Architecture kQwen2Architecture = {"qwen2", /*qkv_bias=*/true, /*rope_neox=*/true};
}  // namespace thinkmesh::model
