// File types, --tensor-type overrides and llama.cpp c392e50's per-tensor recipe
// (llama_tensor_get_type in src/llama-quant.cpp), restricted to the file types thinkmesh
// writes. Layer indices are parsed from "blk.N." names; llama.cpp counts attn_v / ffn_down
// tensors in its layer-sorted order instead, which gives the same index for every dense model.
#include "quant/recipe.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <string_view>

#include "thinkmesh/error.h"

namespace thinkmesh {
namespace {

struct FileTypeRow {
  FileType type;
  std::string_view name;
  TensorType base;
};

constexpr std::array kFileTypes = {
    FileTypeRow{FileType::all_f32, "F32", TensorType::F32},
    FileTypeRow{FileType::mostly_f16, "F16", TensorType::F16},
    FileTypeRow{FileType::mostly_bf16, "BF16", TensorType::BF16},
    FileTypeRow{FileType::q4_0, "Q4_0", TensorType::Q4_0},
    FileTypeRow{FileType::q4_1, "Q4_1", TensorType::Q4_1},
    FileTypeRow{FileType::q5_0, "Q5_0", TensorType::Q5_0},
    FileTypeRow{FileType::q5_1, "Q5_1", TensorType::Q5_1},
    FileTypeRow{FileType::q8_0, "Q8_0", TensorType::Q8_0},
    FileTypeRow{FileType::q4_k_s, "Q4_K_S", TensorType::Q4_K},
    FileTypeRow{FileType::q4_k_m, "Q4_K_M", TensorType::Q4_K},
    FileTypeRow{FileType::q5_k_s, "Q5_K_S", TensorType::Q5_K},
    FileTypeRow{FileType::q5_k_m, "Q5_K_M", TensorType::Q5_K},
    FileTypeRow{FileType::q6_k, "Q6_K", TensorType::Q6_K},
};

const FileTypeRow& row_of(FileType type) {
  for (const auto& r : kFileTypes)
    if (r.type == type) return r;
  throw Error(ErrorKind::internal, "file type without a table row");
}

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

// Types a tensor can be written in (those with a reference quantizer, except Q8_K which is
// for activations only).
bool can_write(TensorType t) {
  switch (t) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::Q4_0:
    case TensorType::Q4_1:
    case TensorType::Q5_0:
    case TensorType::Q5_1:
    case TensorType::Q8_0:
    case TensorType::Q2_K:
    case TensorType::Q3_K:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
      return true;
    default:
      return false;
  }
}

// The layer index of a "blk.N." tensor, -1 for the others.
int layer_of(const std::string& name) {
  int layer = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
  return layer;
}

// llama.cpp's use_more_bits: the first and last eighth of the layers and every third between.
bool use_more_bits(int i_layer, int n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

}  // namespace

std::optional<FileType> parse_file_type(std::string_view name) {
  for (const auto& r : kFileTypes)
    if (iequal(r.name, name)) return r.type;
  return std::nullopt;
}

std::string_view file_type_name(FileType type) {
  return row_of(type).name;
}
TensorType file_type_base(FileType type) {
  return row_of(type).base;
}

std::string supported_file_types() {
  std::string out;
  for (const auto& r : kFileTypes) {
    if (!out.empty()) out += ", ";
    out += r.name;
  }
  return out;
}

TensorTypeOverride parse_tensor_type_override(std::string_view spec) {
  const size_t eq = spec.rfind('=');
  if (eq == std::string_view::npos)
    throw Error(ErrorKind::invalid_argument,
                "--tensor-type '" + std::string(spec) + "': expected REGEX=TYPE");
  TensorTypeOverride o;
  o.pattern = std::string(spec.substr(0, eq));
  const std::string_view type_name = spec.substr(eq + 1);
  if (o.pattern.empty())
    throw Error(ErrorKind::invalid_argument,
                "--tensor-type '" + std::string(spec) + "': the regex is empty");
  const auto type = parse_tensor_type(type_name);
  if (!type || !can_write(*type))
    throw Error(ErrorKind::invalid_argument,
                "--tensor-type '" + std::string(spec) + "': cannot quantize to '" +
                    std::string(type_name) +
                    "' (types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K)");
  o.type = *type;
  try {
    o.regex = std::regex(o.pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw Error(ErrorKind::invalid_argument, "--tensor-type '" + std::string(spec) +
                                                 "': invalid regex '" + o.pattern +
                                                 "': " + e.what());
  }
  return o;
}

namespace quant {

RecipeModel RecipeModel::from(const gguf::File& file, bool has_imatrix) {
  RecipeModel m;
  m.arch = file.get_string_or("general.architecture", "");
  m.n_layer = static_cast<int>(file.get_int_or(m.arch + ".block_count", 0));
  m.n_expert = static_cast<int>(file.get_int_or(m.arch + ".expert_count", 0));
  for (const auto& t : file.tensors()) {
    if (contains(t.name, "attn_v.weight") || contains(t.name, "attn_qkv.weight") ||
        contains(t.name, "attn_kv_b.weight"))
      ++m.n_attention_wv;
    else if (t.name == "output.weight")
      m.has_output = true;
  }
  // LLM_TYPE_70B: llama and qwen2 with 80 layers (llama with equal head counts is 65B).
  if (m.n_layer == 80 && (m.arch == "llama" || m.arch == "qwen2")) {
    const int64_t n_head = file.get_int_or(m.arch + ".attention.head_count", 0);
    const int64_t n_head_kv = file.get_int_or(m.arch + ".attention.head_count_kv", n_head);
    m.is_70b = m.arch == "qwen2" || n_head != n_head_kv;
  }
  m.has_imatrix = has_imatrix;
  return m;
}

bool should_quantize(const gguf::TensorInfo& t) {
  const std::string& name = t.name;
  if (name.size() < 6 || name.compare(name.size() - 6, 6, "weight") != 0) return false;
  int n_dims = 0;  // ggml_n_dims: trailing dimensions of 1 do not count
  for (size_t i = 0; i < t.ne.size(); ++i)
    if (t.ne[i] != 1) n_dims = static_cast<int>(i) + 1;
  if (n_dims < 2) return false;
  for (std::string_view never :
       {"_norm.weight", "ffn_gate_inp.weight", "ssm_conv1d.weight", "time_mix_first.weight",
        "time_mix_w1.weight", "time_mix_w2.weight", "time_mix_decay_w1.weight",
        "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight", "attn_rel_b.weight"})
    if (contains(name, never)) return false;
  return name != "position_embd.weight" && name != "token_types.weight";
}

TensorType recipe_type(const RecipeModel& m, const gguf::TensorInfo& t, FileType ftype) {
  const std::string& name = t.name;
  const bool falcon = m.arch == "falcon";
  TensorType type = file_type_base(ftype);
  const int i_layer = layer_of(name);
  using FT = FileType;
  if (name == "output.weight" || (!m.has_output && name == "token_embd.weight")) {
    // The output projection (or the tied embedding): Q6_K unless Q8_0 was asked for; Q8_0 when
    // its rows do not fit the base type's blocks.
    if (falcon || t.ne[0] % traits(type).block_size != 0)
      type = TensorType::Q8_0;
    else if (type != TensorType::Q8_0)
      type = TensorType::Q6_K;
  } else if (name == "token_embd.weight") {
    // Only the IQ and TQ file types (not written by thinkmesh) change the embedding.
  } else if (contains(name, "attn_v.weight")) {
    if ((ftype == FT::q4_k_m || ftype == FT::q5_k_m) && use_more_bits(i_layer, m.n_attention_wv))
      type = TensorType::Q6_K;
    else if (ftype == FT::q4_k_s && i_layer < 4)
      type = TensorType::Q5_K;
    if (m.is_70b && (type == TensorType::Q3_K || type == TensorType::Q4_K)) type = TensorType::Q5_K;
    if (m.n_expert == 8) type = TensorType::Q8_0;
  } else if (contains(name, "attn_k.weight")) {
    if (m.n_expert == 8) type = TensorType::Q8_0;
  } else if (contains(name, "ffn_down")) {
    const int n = m.n_layer;
    if (ftype == FT::q4_k_m) {
      if (falcon)
        type = i_layer < n / 16            ? TensorType::Q6_K
               : use_more_bits(i_layer, n) ? TensorType::Q5_K
                                           : TensorType::Q4_K;
      else if (use_more_bits(i_layer, n))
        type = TensorType::Q6_K;
    } else if (ftype == FT::q5_k_m && use_more_bits(i_layer, n)) {
      type = TensorType::Q6_K;
    } else if (ftype == FT::q4_k_s && !falcon && i_layer < n / 8) {
      type = TensorType::Q5_K;
    } else if ((ftype == FT::q4_0 || ftype == FT::q5_0) && m.has_imatrix && i_layer < n / 8) {
      // llama.cpp guards the first ffn_down layers against Q4_0/Q5_0 "craziness", only with
      // an imatrix so that plain runs stay as they always were.
      type = ftype == FT::q4_0 ? TensorType::Q4_1 : TensorType::Q5_1;
    }
  } else if (contains(name, "attn_output.weight")) {
    if (!falcon && m.n_expert == 8 && (ftype == FT::q4_k_s || ftype == FT::q4_k_m))
      type = TensorType::Q5_K;
  } else if (contains(name, "attn_qkv.weight")) {
    if (ftype == FT::q4_k_m)
      type = TensorType::Q5_K;
    else if (ftype == FT::q5_k_m)
      type = TensorType::Q6_K;
  }
  return type;
}

TensorType fit_row_length(TensorType type, int64_t row_length, std::string& why) {
  const int64_t block = traits(type).block_size;
  if (row_length % block == 0) return type;
  TensorType next;
  switch (type) {
    case TensorType::Q4_K:
      next = TensorType::Q5_0;
      break;
    case TensorType::Q5_K:
      next = TensorType::Q5_1;
      break;
    case TensorType::Q6_K:
      next = TensorType::Q8_0;
      break;
    case TensorType::Q2_K:
    case TensorType::Q3_K:
      next = TensorType::Q4_0;  // llama.cpp picks IQ4_NL, which thinkmesh cannot write
      break;
    default:
      next = TensorType::F16;  // llama.cpp stops with "Unsupported tensor size encountered"
      break;
  }
  if (row_length % traits(next).block_size != 0) next = TensorType::F16;
  why = "rows of " + std::to_string(row_length) + " are not a multiple of " +
        std::to_string(block) + " (" + std::string(name(type)) + "): using " +
        std::string(name(next));
  return next;
}

}  // namespace quant
}  // namespace thinkmesh
