// The element-wise operations of a BERT encoder with the arithmetic of ggml's CPU backend
// (llama.cpp c392e50), so embeddings match its goldens (fixtures MANIFEST §3).
#pragma once

#include <cstdint>

namespace thinkmesh::encoder {

// ggml's tanh-approximation GELU in float: 0.5·x·(1 + tanh(√(2/π)·x·(1 + 0.044715·x²))).
float gelu_f32(float x);

// GELU as ggml computes it with GGML_GELU_FP16 (the default): x ≤ -10 → 0, x ≥ 10 → x, else
// x is rounded to F16 and the F16 value of gelu_f32 at that F16 input is read from a
// 65,536-entry table (built once, thread-safe, 128 KiB).
float gelu_table(float x);
// In place over n values.
void gelu_table(float* x, int64_t n);

// y = (x - mean) / sqrt(var + eps) · w + b over n values, as ggml_norm + ggml_mul + ggml_add:
// mean and variance summed in double, the centred values and the scale in float.
void layer_norm(const float* x, const float* w, const float* b, float eps, int64_t n, float* y);

}  // namespace thinkmesh::encoder
