// Internals of the Hugging Face converter: the folder's JSON files, the vocabulary writer
// (hf_vocab.cpp) and the SentencePiece model reader (sentencepiece_model.cpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "thinkmesh/gguf.h"

namespace thinkmesh::convert {

enum class HfArch { llama, qwen2, bert };

struct HfFolder {
  std::filesystem::path dir;
  nlohmann::json config;            // config.json
  nlohmann::json tokenizer_json;    // tokenizer.json; null when absent
  nlohmann::json tokenizer_config;  // tokenizer_config.json; null when absent
};

// Parses a JSON file; Error(not_found) / Error(invalid_file) naming it.
nlohmann::json read_json_file(const std::filesystem::path& path);

// Writes the tokenizer.ggml.* (and tokenizer.chat_template) keys; returns the token count.
size_t write_hf_vocab(gguf::Writer& w, const HfFolder& folder, HfArch arch);
// LlamaModel.set_vocab: tokenizer.ggml.add_space_prefix from tokenizer_config's
// add_prefix_space, when present.
void write_add_space_prefix(gguf::Writer& w, const HfFolder& folder);

// One piece of a SentencePiece ModelProto.
struct SpmPiece {
  std::string piece;
  float score = 0;
  int32_t type = 1;  // sentencepiece Type: NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4,
                     // UNUSED 5, BYTE 6
};
// Reads the pieces of a tokenizer.model (protobuf ModelProto, field 1). Throws
// Error(invalid_file) naming the path and offset for malformed input.
std::vector<SpmPiece> read_sentencepiece_model(const std::string& path);
std::vector<SpmPiece> parse_sentencepiece_model(const uint8_t* data, size_t size,
                                                const std::string& path);

}  // namespace thinkmesh::convert
