// Reads metadata values (the 13 GGUF value types, arrays nested up to kMaxArrayNesting deep)
// from untrusted bytes. Every count and length is checked against the bytes left before
// anything is allocated.
#pragma once

#include <cstdint>
#include <string_view>

#include "gguf/byte_cursor.h"
#include "thinkmesh/gguf.h"

namespace thinkmesh::gguf {

// Arrays of arrays are allowed to this many levels in total (llama.cpp reads none).
inline constexpr int kMaxArrayNesting = 4;
// All array elements of one file together, at most. A decoded element takes ~48 bytes of
// memory while it can take 1 byte of file, so this bounds memory on hostile input; real
// vocabularies hold a few hundred thousand items per array.
inline constexpr uint64_t kMaxArrayItemsPerFile = uint64_t{1} << 23;

// Smallest encoding of one value of `type` in bytes (a string: its u64 length alone; an array:
// its element type and count).
uint64_t min_encoded_size(ValueType type);

// Reads value types and values for one metadata key; `key` names it in error messages.
class MetadataReader {
 public:
  explicit MetadataReader(ByteCursor& cursor) : cursor_(cursor) {}

  // A u32 value type, rejected unless it is one of the 13 defined.
  ValueType read_type(std::string_view key);
  // A value of `type` (which read_type validated).
  Value read_value(ValueType type, std::string_view key);

 private:
  // `what` names the value in truncation errors ("value of metadata key 'k'").
  Value read(ValueType type, std::string_view key, std::string_view what, int enclosing_arrays);
  Value read_array(std::string_view key, std::string_view what, int enclosing_arrays);

  ByteCursor& cursor_;
  uint64_t array_items_ = 0;  // elements read so far, all arrays of the file together
};

}  // namespace thinkmesh::gguf
