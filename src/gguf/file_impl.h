// The state behind gguf::File. The parser's helpers fill a FileContents; File::Impl (private
// to File) is one.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "thinkmesh/gguf.h"

namespace thinkmesh::gguf {

struct FileContents {
  std::optional<MappedFile> map;  // set by File::open; parse() views the caller's bytes
  std::span<const uint8_t> bytes;
  std::string path;
  uint32_t version = 0;
  uint64_t alignment = kDefaultAlignment;
  uint64_t data_offset = 0;
  std::vector<KeyValue> metadata;
  std::map<std::string, size_t, std::less<>> key_index;  // key → index into metadata
  std::vector<TensorInfo> tensors;
  std::map<std::string, size_t, std::less<>> tensor_index;  // name → index into tensors
};

struct File::Impl : FileContents {};

}  // namespace thinkmesh::gguf
