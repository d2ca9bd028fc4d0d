#include "gguf/metadata_reader.h"

#include <string>
#include <vector>

namespace thinkmesh::gguf {
namespace {

constexpr uint32_t kValueTypeCount = 13;

std::string key_context(std::string_view key) {
  return "value of metadata key '" + std::string(key) + "'";
}

}  // namespace

uint64_t min_encoded_size(ValueType type) {
  switch (type) {
    case ValueType::u8:
    case ValueType::i8:
    case ValueType::boolean:
      return 1;
    case ValueType::u16:
    case ValueType::i16:
      return 2;
    case ValueType::u32:
    case ValueType::i32:
    case ValueType::f32:
      return 4;
    case ValueType::u64:
    case ValueType::i64:
    case ValueType::f64:
    case ValueType::string:
      return 8;
    case ValueType::array:
      return 12;
  }
  return 1;
}

ValueType MetadataReader::read_type(std::string_view key) {
  const uint64_t at = cursor_.offset();
  const auto id = cursor_.read<uint32_t>("value type of metadata key '" + std::string(key) + "'");
  if (id >= kValueTypeCount) {
    cursor_.fail(
        at, "metadata key '" + std::string(key) + "' has unknown value type " + std::to_string(id));
  }
  return static_cast<ValueType>(id);
}

Value MetadataReader::read_value(ValueType type, std::string_view key) {
  const std::string what = key_context(key);
  return read(type, key, what, 0);
}

Value MetadataReader::read(ValueType type, std::string_view key, std::string_view what,
                           int enclosing_arrays) {
  switch (type) {
    case ValueType::u8:
      return {type, cursor_.read<uint8_t>(what)};
    case ValueType::i8:
      return {type, cursor_.read<int8_t>(what)};
    case ValueType::u16:
      return {type, cursor_.read<uint16_t>(what)};
    case ValueType::i16:
      return {type, cursor_.read<int16_t>(what)};
    case ValueType::u32:
      return {type, cursor_.read<uint32_t>(what)};
    case ValueType::i32:
      return {type, cursor_.read<int32_t>(what)};
    case ValueType::f32:
      return {type, cursor_.read<float>(what)};
    case ValueType::u64:
      return {type, cursor_.read<uint64_t>(what)};
    case ValueType::i64:
      return {type, cursor_.read<int64_t>(what)};
    case ValueType::f64:
      return {type, cursor_.read<double>(what)};
    case ValueType::boolean: {
      // Only 0 and 1: any other byte would not survive a read-write round trip.
      const uint64_t at = cursor_.offset();
      const auto byte = cursor_.read<uint8_t>(what);
      if (byte > 1) {
        cursor_.fail(at, "metadata key '" + std::string(key) + "' has bool value " +
                             std::to_string(byte) + " (must be 0 or 1)");
      }
      return {type, byte == 1};
    }
    case ValueType::string:
      return {type, std::string(cursor_.read_string(what))};
    case ValueType::array:
      return read_array(key, what, enclosing_arrays);
  }
  cursor_.fail(cursor_.offset(), "metadata key '" + std::string(key) + "' has unknown value type");
}

Value MetadataReader::read_array(std::string_view key, std::string_view what,
                                 int enclosing_arrays) {
  const uint64_t at = cursor_.offset();
  if (enclosing_arrays >= kMaxArrayNesting) {
    cursor_.fail(at, "metadata key '" + std::string(key) + "' nests arrays deeper than " +
                         std::to_string(kMaxArrayNesting) + " levels");
  }
  const ValueType element_type = read_type(key);
  const uint64_t count_at = cursor_.offset();
  const auto count =
      cursor_.read<uint64_t>("array count of metadata key '" + std::string(key) + "'");
  // count × element size must fit in the bytes left; divide instead of multiplying so a huge
  // count cannot overflow.
  const uint64_t element_size = min_encoded_size(element_type);
  if (count > cursor_.remaining() / element_size) {
    cursor_.fail(count_at, "metadata key '" + std::string(key) + "' has an array of " +
                               std::to_string(count) + " " + std::string(to_string(element_type)) +
                               " elements, more than the " + std::to_string(cursor_.remaining()) +
                               " bytes left can hold");
  }
  if (count > kMaxArrayItemsPerFile - array_items_) {
    cursor_.fail(count_at, "metadata key '" + std::string(key) + "': more than " +
                               std::to_string(kMaxArrayItemsPerFile) +
                               " array elements in the file");
  }
  array_items_ += count;

  Value::Array array{element_type, {}};
  array.items.reserve(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; ++i) {
    array.items.push_back(read(element_type, key, what, enclosing_arrays + 1));
  }
  return {ValueType::array, std::move(array)};
}

}  // namespace thinkmesh::gguf
