// Test helpers for the converter: writing safetensors files and Hugging Face folders from a
// GGUF model (the inverse of what `thinkmesh convert` does), and comparing GGUF files.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "thinkmesh/gguf.h"
#include "thinkmesh/half.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh::test {

struct StEntry {
  std::string name;
  std::string dtype;           // "F32", "F16", "BF16"
  std::vector<int64_t> shape;  // PyTorch order
  std::vector<uint8_t> bytes;
};

// Writes a safetensors file: u64 header length | JSON (padded with spaces to 8 bytes) | data.
inline void write_safetensors(const std::filesystem::path& path,
                              const std::vector<StEntry>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t at = 0;
  for (const auto& t : tensors) {
    header[t.name] = {
        {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {at, at + t.bytes.size()}}};
    at += t.bytes.size();
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text += ' ';
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>(n >> (8 * i)));
  out << text;
  for (const auto& t : tensors)
    out.write(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
}

inline std::vector<float> tensor_values(const gguf::File& file, const gguf::TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  const auto bytes = file.tensor_data(t);
  const size_t row_size = row_bytes(t.type, t.ne[0]);
  for (int64_t r = 0; r < t.n_rows(); ++r) {
    dequantize_row(t.type, bytes.data() + r * row_size, out.data() + r * t.ne[0], t.ne[0]);
  }
  return out;
}

inline std::vector<uint8_t> encode_values(const std::vector<float>& v, const std::string& dtype) {
  std::vector<uint8_t> out;
  if (dtype == "F32") {
    out.resize(v.size() * 4);
    std::memcpy(out.data(), v.data(), out.size());
    return out;
  }
  out.resize(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = dtype == "F16" ? fp32_to_fp16(v[i]) : fp32_to_bf16(v[i]);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

// The inverse of llama.cpp's LlamaModel.permute: GGUF rows (interleaved RoPE pairs) back to
// HF rows (halves). Within a head of d rows: HF row s·d/2 + i = GGUF row 2i + s.
inline std::vector<float> unpermute_rows(const std::vector<float>& v, int64_t rows, int64_t cols,
                                         int64_t n_head) {
  std::vector<float> out(v.size());
  const int64_t d = rows / n_head, half = d / 2;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t s = 0; s < 2; ++s)
      for (int64_t i = 0; i < half; ++i)
        std::memcpy(out.data() + (h * d + s * half + i) * cols,
                    v.data() + (h * d + 2 * i + s) * cols, cols * sizeof(float));
  return out;
}

// GGUF tensor name → Hugging Face name (Llama/Qwen2 or BERT layout).
inline std::string hf_name(const std::string& gguf_name, bool bert) {
  const size_t dot = gguf_name.rfind('.');
  const std::string base = gguf_name.substr(0, dot), suffix = gguf_name.substr(dot);
  static const std::map<std::string, std::string> decoder = {
      {"token_embd", "model.embed_tokens"},
      {"output_norm", "model.norm"},
      {"output", "lm_head"},
      {"attn_norm", "input_layernorm"},
      {"attn_q", "self_attn.q_proj"},
      {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},
      {"attn_output", "self_attn.o_proj"},
      {"ffn_norm", "post_attention_layernorm"},
      {"ffn_gate", "mlp.gate_proj"},
      {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"}};
  static const std::map<std::string, std::string> encoder = {
      {"token_embd", "embeddings.word_embeddings"},
      {"token_types", "embeddings.token_type_embeddings"},
      {"position_embd", "embeddings.position_embeddings"},
      {"token_embd_norm", "embeddings.LayerNorm"},
      {"attn_q", "attention.self.query"},
      {"attn_k", "attention.self.key"},
      {"attn_v", "attention.self.value"},
      {"attn_output", "attention.output.dense"},
      {"attn_output_norm", "attention.output.LayerNorm"},
      {"ffn_up", "intermediate.dense"},
      {"ffn_down", "output.dense"},
      {"layer_output_norm", "output.LayerNorm"}};
  const auto& map = bert ? encoder : decoder;
  if (base.rfind("blk.", 0) == 0) {
    const size_t second = base.find('.', 4);
    const std::string block = base.substr(4, second - 4), part = base.substr(second + 1);
    return (bert ? "encoder.layer." : "model.layers.") + block + "." + map.at(part) + suffix;
  }
  return map.at(base) + suffix;
}

// Deep equality of metadata values (arrays element by element).
inline bool same_value(const gguf::Value& a, const gguf::Value& b) {
  if (a.type() != b.type()) return false;
  if (!a.is_array()) {
    return std::visit(
        [&](const auto& x) -> bool {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, gguf::Value::Array>) {
            return false;
          } else {
            const T* y = std::get_if<T>(&b.storage());
            return y && *y == x;
          }
        },
        a.storage());
  }
  const auto& x = a.as_array();
  const auto& y = b.as_array();
  if (x.element_type != y.element_type || x.items.size() != y.items.size()) return false;
  for (size_t i = 0; i < x.items.size(); ++i) {
    if (!same_value(x.items[i], y.items[i])) return false;
  }
  return true;
}

// Keys whose values differ or that only one file has, "key (why)" each.
inline std::vector<std::string> metadata_differences(const gguf::File& a, const gguf::File& b) {
  std::vector<std::string> out;
  for (const auto& kv : a.metadata()) {
    const gguf::Value* other = b.find(kv.key);
    if (!other) {
      out.push_back(kv.key + " (only in " + a.path() + ")");
    } else if (!same_value(kv.value, *other)) {
      out.push_back(kv.key + " (" + kv.value.to_display_string(4) + " vs " +
                    other->to_display_string(4) + ")");
    }
  }
  for (const auto& kv : b.metadata()) {
    if (!a.find(kv.key)) out.push_back(kv.key + " (only in " + b.path() + ")");
  }
  return out;
}

}  // namespace thinkmesh::test
