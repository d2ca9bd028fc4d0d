// Pruning a decoder's weights: structured (remove feed-forward neurons, making the model
// smaller) and unstructured (zero the smallest weights, same shapes, for experiments).
//
//   PruneOptions o;  o.ffn_fraction = 0.3;  o.calib_text = text;
//   PruneReport r = prune_model("in.gguf", "out.gguf", o);
//
// A feed-forward neuron j of a layer is row j of ffn_gate and ffn_up and column j of
// ffn_down. Its importance is
//   magnitude (no calibration text):  ‖gate_j‖₂ · ‖up_j‖₂ · ‖down_:,j‖₂
//   calibration:                      mean over the calibration tokens of |a_j| · ‖down_:,j‖₂
// where a = silu(h·gate) * (h·up) is ffn_down's input (seen through
// ContextOptions::activation_observer). Each layer keeps its round((1 - fraction) · n_ff) most
// important neurons (rounded to `multiple`), in their original order, and the output file
// records the widths as a per-layer `<arch>.feed_forward_length` array.
//
// Types: ffn_gate and ffn_up lose whole rows, so their blocks are copied unchanged whatever
// the type. ffn_down loses columns: a float (F32/F16/BF16) matrix is rewritten in its type; a
// block-quantized one is dequantized, pruned and re-quantized in its type when the new width
// is a multiple of its block size (the default `multiple` makes it so), otherwise written F16.
// Re-quantizing adds a second rounding; pruning an F32/F16 model and quantizing afterwards
// (`thinkmesh quantize`) avoids it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace thinkmesh {

struct PruneOptions {
  double ffn_fraction = 0;  // default 0; fraction of each layer's FFN neurons to remove, [0, 1)
  double unstructured = 0;  // default 0; fraction of each layer matrix's smallest |w| to zero
  // default 0; query heads removed per layer, a multiple of the query heads per KV head (whole
  // KV groups go with their query heads, so head counts stay uniform)
  int32_t heads = 0;
  std::string calib_text;    // default empty = magnitude importance; else calibration text
  int32_t calib_ctx = 512;   // default 512; tokens per calibration chunk (BOS first)
  int32_t calib_chunks = 0;  // default 0 = every chunk of the calibration text
  int32_t n_threads = 0;     // default 0 = hardware threads (calibration)
  // default 0 = the block size of ffn_down's type when it is block-quantized, 1 for float
  // types; the kept width of every layer is rounded to a multiple of this.
  int32_t multiple = 0;
};

struct PrunedLayer {
  int32_t n_ff_before = 0;
  int32_t n_ff_after = 0;
  std::string down_type;  // the type ffn_down is written in
};

struct PruneReport {
  std::vector<PrunedLayer> layers;  // per layer (empty when ffn_fraction = 0)
  int64_t zeroed = 0;               // weights zeroed by the unstructured step
  int64_t unstructured_total = 0;   // weights of the matrices it ran on
  uint64_t bytes_in = 0;            // file sizes
  uint64_t bytes_out = 0;
  int32_t n_head_before = 0;  // query heads per layer (0 when heads = 0)
  int32_t n_head_after = 0;
  std::vector<std::string> attn_output_types;  // per layer, the type attn_output is written in
  bool calibrated = false;                     // importance came from calib_text
  int64_t calib_tokens = 0;                    // tokens decoded for calibration
};

// Reads `in_path`, prunes, writes `out_path` (atomically). Throws Error(invalid_argument) for
// fractions outside [0, 1) or nothing to do, Error(unsupported) for a model without
// ffn_gate/ffn_up/ffn_down in every layer or a type it cannot dequantize, and the GGUF
// reader's and the runtime's errors.
PruneReport prune_model(const std::string& in_path, const std::string& out_path,
                        const PruneOptions& options);

}  // namespace thinkmesh
