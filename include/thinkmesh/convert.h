// Converting models to GGUF with the metadata keys and tensor names llama.cpp's converters
// (c392e50) write, so the output loads in thinkmesh and in llama.cpp alike:
//   - a llama2.c checkpoint (`stories260K.bin`) + its `tokenizer.bin`, as
//     examples/convert-llama2c-to-ggml does;
//   - a Hugging Face model folder (config.json, *.safetensors, tokenizer files) of the Llama,
//     Qwen2 or BERT families, as convert_hf_to_gguf.py does.
// docs/convert.md describes the mapping, the Q/K permutation and the tokenizer handling.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "thinkmesh/tensor_type.h"

namespace thinkmesh::convert {

struct ConvertOptions {
  // Type of the 2-D weights: F32, F16 or BF16. Default nullopt: F32 for llama2.c (as its
  // converter), F16 for Hugging Face folders (convert_hf_to_gguf.py's default). 1-D tensors,
  // norms, biases, position and token-type embeddings stay F32 whatever is asked.
  std::optional<TensorType> type;
  // llama2.c only: the tokenizer.bin. Default empty: tokenizer.bin, else the only tok*.bin,
  // in the checkpoint's folder.
  std::string tokenizer;
  // general.name. Default empty: the folder's name (Hugging Face), "llama" (llama2.c).
  std::string name;
};

struct ConvertResult {
  std::string source_format;          // "llama2.c" or "safetensors"
  std::string architecture;           // general.architecture written ("llama", "qwen2", "bert")
  TensorType type = TensorType::F32;  // the type of the 2-D weights
  size_t n_tensors = 0;
  uint64_t n_params = 0;  // elements of all tensors written
  size_t n_vocab = 0;     // tokens written
};

// A llama2.c checkpoint (version 0 "legacy" export: 7 × int32 header, F32 weights; a negative
// vocab_size means an untied classifier follows) with a llama2.c tokenizer.bin.
ConvertResult convert_llama2c(const std::string& checkpoint, const std::string& output,
                              const ConvertOptions& options = {});
// A Hugging Face folder: config.json, model.safetensors or model-*-of-*.safetensors with
// model.safetensors.index.json, and tokenizer.json (BPE, WordPiece) or tokenizer.model
// (SentencePiece), plus tokenizer_config.json when present.
ConvertResult convert_hf(const std::string& folder, const std::string& output,
                         const ConvertOptions& options = {});
// Picks the converter: a folder with config.json → convert_hf; a .bin file, or a folder
// holding one .bin checkpoint → convert_llama2c. Throws Error(invalid_argument) otherwise.
ConvertResult convert_any(const std::string& source, const std::string& output,
                          const ConvertOptions& options = {});

// Architectures (config.json "architectures") convert_hf accepts, comma-separated.
std::string supported_hf_architectures();

}  // namespace thinkmesh::convert
