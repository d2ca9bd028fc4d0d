// Reading safetensors files (memory-mapped, every field validated before use).
//
// Layout: u64 little-endian N | N bytes of UTF-8 JSON | tensor data.
// The JSON maps each tensor name to {"dtype": "F16", "shape": [rows, cols],
// "data_offsets": [begin, end]}, offsets relative to the first data byte (8 + N); an optional
// "__metadata__" object maps strings to strings. Shapes are in PyTorch order: the LAST
// dimension is contiguous (GGUF's ne is the reverse).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace thinkmesh::convert {

enum class StDtype {
  F64,
  F32,
  F16,
  BF16,
  I64,
  I32,
  I16,
  I8,
  U64,
  U32,
  U16,
  U8,
  BOOL,
  F8_E4M3,
  F8_E5M2
};

std::string_view to_string(StDtype dtype);
size_t element_size(StDtype dtype);

struct StTensor {
  std::string name;
  StDtype dtype = StDtype::F32;
  std::vector<int64_t> shape;  // PyTorch order; empty for a scalar
  uint64_t begin = 0;          // data_offsets, relative to the data section
  uint64_t end = 0;
  std::span<const uint8_t> data;  // the tensor's bytes inside the file

  int64_t n_elements() const;
};

// One parsed safetensors file. Immutable; tensor data are views into the map (or into the
// caller's buffer for `parse`).
class SafetensorsFile {
 public:
  // Maps and parses `path`. Throws Error(invalid_file) naming the path, the problem and the
  // byte offset (header length, JSON, dtype, shape × dtype size vs data_offsets, offsets
  // within the file, overlapping tensors); Error(not_found / io) when it cannot be mapped.
  static SafetensorsFile open(const std::string& path);
  // Parses bytes the caller keeps alive (tests, fuzzing).
  static SafetensorsFile parse(std::span<const uint8_t> bytes,
                               std::string display_name = "<memory>");

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  ~SafetensorsFile();

  const std::string& path() const;
  // Tensors sorted by name (the order safetensors' safe_open().keys() gives llama.cpp).
  const std::vector<StTensor>& tensors() const;
  const StTensor* find(std::string_view name) const;  // nullptr when absent
  const std::map<std::string, std::string>& metadata() const;
  uint64_t data_offset() const;  // 8 + N

 private:
  struct Impl;
  explicit SafetensorsFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The weights of a Hugging Face folder: model.safetensors, or the shards that
// model.safetensors.index.json lists (every tensor of its weight_map must be in the shard it
// names), or else every *.safetensors file (sorted). Names are unique across shards.
class SafetensorsSet {
 public:
  static SafetensorsSet open_folder(const std::string& folder);

  // (shard, tensor) in llama.cpp's order: shards by file name, tensors by name.
  struct Entry {
    const SafetensorsFile* file;
    const StTensor* tensor;
  };
  const std::vector<Entry>& entries() const { return entries_; }
  const StTensor* find(std::string_view name) const;
  const std::vector<std::string>& file_names() const { return file_names_; }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::vector<std::string> file_names_;
  std::vector<Entry> entries_;
  std::map<std::string, size_t, std::less<>> by_name_;
};

}  // namespace thinkmesh::convert
