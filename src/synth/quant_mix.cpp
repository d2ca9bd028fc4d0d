// Which type each tensor gets, as llama.cpp c392e50's llama-quantize decides it
// (llama_tensor_get_type in src/llama-quant.cpp): the Q4_K_M mix, and for pure types the
// same fallback for rows that are not a whole number of blocks.
#include <cctype>

#include <fmt/core.h>

#include "thinkmesh/error.h"
#include "thinkmesh/synth.h"

namespace thinkmesh::synth {
namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

// llama.cpp: more bits for the first and last eighth of the layers and every third between.
bool use_more_bits(int32_t i_layer, int32_t n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

// A k-quant whose rows are not a multiple of its 256-value block falls back as llama.cpp does;
// F16 when even the fallback does not fit.
TensorType fit_rows(TensorType type, int64_t row) {
  if (row % traits(type).block_size == 0) return type;
  TensorType fallback = TensorType::F16;
  switch (type) {
    case TensorType::Q4_K:
      fallback = TensorType::Q5_0;
      break;
    case TensorType::Q5_K:
      fallback = TensorType::Q5_1;
      break;
    case TensorType::Q6_K:
      fallback = TensorType::Q8_0;
      break;
    default:
      break;
  }
  return row % traits(fallback).block_size == 0 ? fallback : TensorType::F16;
}

TensorType parse_request(std::string_view type, bool& q4_k_m) {
  q4_k_m = false;
  std::string upper(type);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (upper == "Q4_K_M") {
    q4_k_m = true;
    return TensorType::Q4_K;
  }
  for (const TensorType t : {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q8_0,
                             TensorType::Q4_0, TensorType::Q4_K, TensorType::Q6_K}) {
    if (upper == name(t)) return t;
  }
  throw Error(ErrorKind::invalid_argument,
              fmt::format("synth: type '{}' is not one of F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, "
                          "Q4_K_M",
                          type));
}

}  // namespace

TensorType tensor_type_for(std::string_view type, const std::string& name,
                           const std::vector<int64_t>& ne, int32_t i_attn_v, int32_t i_ffn_down,
                           int32_t n_layer, bool has_output) {
  bool q4_k_m = false;
  const TensorType request = parse_request(type, q4_k_m);
  // What llama-quantize never quantizes (and convert writes as F32).
  if (ne.size() < 2 || !ends_with(name, "weight") || contains(name, "_norm.weight") ||
      name == "position_embd.weight" || name == "token_types.weight") {
    return TensorType::F32;
  }
  const int64_t row = ne[0];
  if (!q4_k_m) return fit_rows(request, row);

  TensorType t = TensorType::Q4_K;
  if (name == "output.weight" || (!has_output && name == "token_embd.weight")) {
    // The output matrix (or the tied embedding standing for it): Q6_K, or Q8_0 when its rows
    // are not whole k-quant blocks.
    return fit_rows(
        row % traits(TensorType::Q4_K).block_size != 0 ? TensorType::Q8_0 : TensorType::Q6_K, row);
  }
  if (contains(name, "attn_v.weight")) {
    if (use_more_bits(i_attn_v, n_layer)) t = TensorType::Q6_K;
  } else if (contains(name, "ffn_down")) {
    if (use_more_bits(i_ffn_down, n_layer)) t = TensorType::Q6_K;
  }
  return fit_rows(t, row);
}

}  // namespace thinkmesh::synth
