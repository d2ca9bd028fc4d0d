// Synthetic models: GGUF files with the shapes and metadata of public models and seeded random
// weights, for benchmarks and tests where the real weights cannot be had.
//
//   thinkmesh::synth::SynthOptions o;
//   o.like = "qwen2.5-0.5b";
//   o.type = "Q8_0";
//   o.output = "/tmp/qwen.gguf";
//   auto summary = thinkmesh::synth::synthesize(o);
//
// Metadata keys, tensor names and tensor order are those llama.cpp's convert_hf_to_gguf.py
// writes for the architecture (see docs/synth.md). Every row of every tensor draws from its own
// generator, seeded from (seed, tensor name, row): the same seed gives the same bytes whatever
// the thread count, and a model cut to fewer layers keeps the remaining layers' weights.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "thinkmesh/tensor_type.h"

namespace thinkmesh::synth {

// One public model's shape, from its config.json (sources in docs/synth.md).
struct ModelShape {
  std::string_view like;     // the --like name, "qwen2.5-0.5b"
  std::string_view source;   // where the values come from, "Qwen/Qwen2.5-0.5B config.json"
  std::string_view arch;     // general.architecture: "llama", "qwen2" or "bert"
  int32_t n_vocab;           // vocab_size
  int32_t n_embd;            // hidden_size
  int32_t n_layer;           // num_hidden_layers
  int32_t n_head;            // num_attention_heads
  int32_t n_head_kv;         // num_key_value_heads
  int32_t n_ff;              // intermediate_size
  int32_t n_ctx;             // max_position_embeddings
  float rope_theta;          // rope_theta (decoders)
  float norm_eps;            // rms_norm_eps (decoders) or layer_norm_eps (bert)
  bool tied_embeddings;      // no output.weight: token_embd is the output matrix
  bool qkv_bias;             // attn_{q,k,v}.bias (qwen2; bert has every bias)
  bool head_dim_in_config;   // config.json has head_dim: convert writes key/value_length
  float llama3_rope_factor;  // rope_scaling "llama3" factor (rope_freqs.weight); 0 = none
};

// The table of --like models, in a fixed order.
std::span<const ModelShape> model_shapes();
// The shape named `like`; Error(invalid_argument) listing the names when unknown.
const ModelShape& find_model_shape(std::string_view like);

struct SynthOptions {
  std::string like;           // required: a model_shapes() name
  std::string type = "Q8_0";  // default Q8_0: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, Q4_K_M
  std::string output;         // required: the GGUF file to write
  uint64_t seed = 1;          // default 1
  std::string vocab_from;     // default empty (synthetic vocab); else copy its tokenizer.* keys
  int32_t n_layer = 0;        // default 0 = the model's layer count
  int32_t n_ctx = 0;          // default 0 = the model's context length
  int32_t n_vocab = 0;        // default 0 = the model's vocabulary size (synthetic vocab only)
  int32_t n_threads = 2;      // default 2 generating threads
};

struct SynthSummary {
  std::string output;       // the file written
  std::string name;         // general.name
  int32_t n_vocab = 0;      // rows of token_embd
  int32_t n_layer = 0;      // block_count written
  uint64_t n_params = 0;    // weights counted for general.size_label
  uint64_t file_bytes = 0;  // size of the file
  int32_t n_tensors = 0;    // tensors written
  std::vector<std::pair<std::string, int32_t>> type_counts;  // tensor type name → count
  double seconds = 0;                                        // wall time of generation and writing
};

// Writes the model. Throws Error(invalid_argument) for an unknown model or type, or a --layers
// / --ctx out of range; Error(unsupported) for a type the reference quantizers lack; Error(io)
// when the file cannot be written; errors of gguf::File::open for --vocab-from.
SynthSummary synthesize(const SynthOptions& options);

// The tensor type llama.cpp's quantizer gives tensor `name` (shape `ne`) for the request
// `type` ("Q4_K_M" is its default mix; the others are --pure), with its fallbacks for rows that
// are not a multiple of the block. `i_attn_v` / `i_ffn_down` count the attn_v / ffn_down
// tensors before this one, `n_layer` is the model's layer count, `has_output` whether the
// model has output.weight. 1-D tensors, norms, position_embd, token_types stay F32.
TensorType tensor_type_for(std::string_view type, const std::string& name,
                           const std::vector<int64_t>& ne, int32_t i_attn_v, int32_t i_ffn_down,
                           int32_t n_layer, bool has_output);

// general.size_label as gguf-py writes it: "494M", "1.2B" (at least two significant digits).
std::string size_label(uint64_t n_params);

}  // namespace thinkmesh::synth
