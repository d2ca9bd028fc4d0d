// Quantizing GGUF models: llama-quantize's file types and per-tensor recipes (llama.cpp
// c392e50's llama_tensor_get_type), row-length fallbacks, regex overrides and
// importance-weighted quantization. See docs/quantization.md.
//
//   QuantizeOptions opt;
//   opt.file_type = *parse_file_type("Q4_K_M");
//   QuantizeReport r = quantize_model("in.gguf", "out.gguf", opt);
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "thinkmesh/gguf.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh {

class ImportanceMatrix;  // imatrix.h
class HessianSet;        // imatrix.h

// What a file "mostly" holds: llama.cpp's llama_ftype values, written to general.file_type.
enum class FileType : uint32_t {
  all_f32 = 0,
  mostly_f16 = 1,
  q4_0 = 2,
  q4_1 = 3,
  q8_0 = 7,
  q5_0 = 8,
  q5_1 = 9,
  q4_k_s = 14,
  q4_k_m = 15,
  q5_k_s = 16,
  q5_k_m = 17,
  q6_k = 18,
  mostly_bf16 = 32,
};

// "Q4_K_M", "q8_0", "F16", ... (case-insensitive); nullopt for anything else.
std::optional<FileType> parse_file_type(std::string_view name);
std::string_view file_type_name(FileType type);  // "Q4_K_M"
TensorType file_type_base(FileType type);        // the type most weights get: Q4_K for Q4_K_M
std::string supported_file_types();              // "F32, F16, BF16, Q4_0, ..."

// --tensor-type REGEX=TYPE: tensors whose name the regex matches anywhere (std::regex_search,
// ECMAScript) get TYPE, replacing the recipe's choice; the first matching override wins.
struct TensorTypeOverride {
  std::string pattern;
  std::regex regex;
  TensorType type = TensorType::F32;
};
// Parses "REGEX=TYPE" (split at the last '='). Throws Error(invalid_argument) for a missing
// '=', an empty or invalid regex, or a type that cannot be quantized to.
TensorTypeOverride parse_tensor_type_override(std::string_view spec);

// What happens to one tensor.
struct TensorPlan {
  std::string name;
  std::vector<int64_t> ne;
  TensorType from = TensorType::F32;    // type in the input
  TensorType wanted = TensorType::F32;  // recipe (or override) before the row-length fallback
  TensorType to = TensorType::F32;      // type written
  bool quantize = false;                // false: bytes copied unchanged (1-D, norms, already `to`)
  bool overridden = false;              // an override chose `wanted`
  bool fallback = false;                // rows did not fit `wanted`'s block size; `note` says why
  std::string note;
  bool imatrix_used = false;
  uint64_t bytes_in = 0, bytes_out = 0;
  // With an importance matrix: Σ_rows Σ_j imatrix[j]·(w − ŵ)², for what was written and for
  // the round-to-nearest reference of the same type. 0 when not measured.
  double weighted_error = 0, weighted_error_rtn = 0;
  // With a Hessian entry for the tensor: quantized by GPTQ (gptq), and the second-order error
  // Σ_rows (w − ŵ)·H·(w − ŵ)ᵀ (H the mean x·xᵀ of its input) of what was written and of
  // round-to-nearest. 0 when not measured.
  bool gptq = false;
  double hessian_error = 0, hessian_error_rtn = 0;
};

struct QuantizeReport {
  std::vector<TensorPlan> tensors;  // in file order
  uint64_t bytes_in = 0, bytes_out = 0;
  int n_fallback = 0;
  int n_imatrix = 0;  // tensors quantized with importance weights
  int n_gptq = 0;     // tensors quantized by GPTQ
};

struct QuantizeOptions {
  FileType file_type = FileType::q8_0;  // default Q8_0
  bool pure = false;                    // default false (llama.cpp's mix); true: one type for all
  std::vector<TensorTypeOverride> overrides;  // default none; applied after the recipe
  const ImportanceMatrix* imatrix = nullptr;  // default none (round-to-nearest)
  // default none. With it, every 2-D tensor with an entry whose type is Q4_0, Q4_1, Q5_0, Q5_1,
  // Q8_0, Q4_K, Q5_K or Q6_K is quantized by GPTQ (docs/quantization.md); other types use diag(H)
  // as their importance when there is no imatrix. Counts as an imatrix for the recipe.
  const HessianSet* hessian = nullptr;
  double gptq_damp = 0.01;        // default 0.01: fraction of mean diag(H) added to the diagonal
  int n_threads = 2;              // default 2 workers per tensor (rows are split)
  bool allow_requantize = false;  // default false: quantized inputs are refused
  // default none. Called after each tensor is done (i counts from 1 to n).
  std::function<void(const TensorPlan& tensor, size_t i, size_t n)> on_tensor;
};

// Decides every tensor's output type without quantizing (the plan quantize_model follows).
// Throws Error(unsupported) for a quantized input tensor that would be requantized without
// allow_requantize, Error(invalid_argument/invalid_file) for an importance-matrix entry whose
// size does not fit its tensor.
QuantizeReport plan_quantization(const gguf::File& input, const QuantizeOptions& options);

// Reads `input_path`, quantizes, writes `output_path` atomically (nothing is left behind on
// failure). Metadata keys and tensor order are kept; general.quantization_version (2) and
// general.file_type are rewritten at the end of the key list, as llama-quantize does.
// Throws Error(invalid_argument) when output and input are the same file.
QuantizeReport quantize_model(const std::string& input_path, const std::string& output_path,
                              const QuantizeOptions& options);

// Quantizes `nrows` rows of `n_per_row` F32 values to `type`. With `importance` (n_per_row
// per-column weights) the importance-weighted search of llama.cpp's quantize_row_*_impl is
// used for Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K (others ignore it); without, the
// round-to-nearest reference. Throws as quantize_row_reference does.
void quantize_rows(TensorType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                   const float* importance);

}  // namespace thinkmesh
