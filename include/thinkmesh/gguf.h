// GGUF files: reading (memory-mapped, validated before use) and writing.
//
// Layout of a GGUF file (v2 and v3; all integers little-endian):
//   magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv × (string key | u32 value type | value)
//   n_tensors × (string name | u32 n_dims | n_dims × u64 ne | u32 type | u64 offset)
//   padding to `general.alignment` (default 32) | tensor data
// A string is u64 length + bytes (no terminator). An array value is u32 element type + u64
// count + elements; arrays may nest. Tensor offsets are relative to the start of the data
// section and aligned. ne[0] is the row length (the dimension quantization blocks run along).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "thinkmesh/tensor_type.h"

namespace thinkmesh::gguf {

inline constexpr uint32_t kDefaultAlignment = 32;

enum class ValueType : uint32_t {
  u8 = 0,
  i8 = 1,
  u16 = 2,
  i16 = 3,
  u32 = 4,
  i32 = 5,
  f32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  u64 = 10,
  i64 = 11,
  f64 = 12,
};

std::string_view to_string(ValueType type);

// A metadata value. Arrays keep their element type (so writing reproduces the file) and may
// hold arrays themselves.
class Value {
 public:
  struct Array {
    ValueType element_type = ValueType::u8;
    std::vector<Value> items;
  };
  using Storage = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                               std::string, Array, uint64_t, int64_t, double>;

  Value() = default;
  Value(ValueType type, Storage storage) : type_(type), storage_(std::move(storage)) {}

  // Convenience constructors with the natural GGUF type.
  static Value u8(uint8_t v) { return {ValueType::u8, v}; }
  static Value u32(uint32_t v) { return {ValueType::u32, v}; }
  static Value i32(int32_t v) { return {ValueType::i32, v}; }
  static Value u64(uint64_t v) { return {ValueType::u64, v}; }
  static Value f32(float v) { return {ValueType::f32, v}; }
  static Value boolean(bool v) { return {ValueType::boolean, v}; }
  static Value string(std::string v) { return {ValueType::string, std::move(v)}; }
  static Value array(ValueType element_type, std::vector<Value> items) {
    return {ValueType::array, Array{element_type, std::move(items)}};
  }
  static Value string_array(const std::vector<std::string>& items);
  static Value f32_array(const std::vector<float>& items);
  static Value i32_array(const std::vector<int32_t>& items);

  ValueType type() const { return type_; }
  const Storage& storage() const { return storage_; }
  bool is_integer() const;
  bool is_array() const { return type_ == ValueType::array; }

  // Typed reads; each throws Error(invalid_file) naming the actual type on mismatch.
  int64_t as_int() const;    // any integer type (u64 above INT64_MAX throws)
  double as_double() const;  // f32, f64 or any integer
  bool as_bool() const;
  const std::string& as_string() const;
  const Array& as_array() const;

  // Human-readable rendering; long arrays are summarised.
  std::string to_display_string(size_t max_items = 8) const;

 private:
  ValueType type_ = ValueType::u8;
  Storage storage_ = uint8_t{0};
};

struct KeyValue {
  std::string key;
  Value value;
};

struct TensorInfo {
  std::string name;
  TensorType type = TensorType::F32;
  std::vector<int64_t> ne;  // GGML order: ne[0] = row length; 1..4 dimensions
  uint64_t offset = 0;      // bytes from the start of the data section
  uint64_t nbytes = 0;      // computed from type and ne

  int64_t n_elements() const;
  int64_t n_rows() const { return ne.empty() || ne[0] == 0 ? 0 : n_elements() / ne[0]; }
};

// A parsed, validated GGUF file. Immutable; tensor data is a view into the memory map (or into
// the caller's buffer for `parse`).
class File {
 public:
  // Maps and parses `path`. Throws Error(invalid_file) naming the path, the problem and the
  // byte offset where it was found; Error(io/not_found) when the file cannot be mapped.
  static File open(const std::string& path);
  // Parses bytes the caller keeps alive for the lifetime of the File (tests, fuzzing).
  static File parse(std::span<const uint8_t> bytes, std::string display_name = "<memory>");

  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  ~File();

  const std::string& path() const;
  uint32_t version() const;
  uint64_t alignment() const;
  uint64_t data_offset() const;  // absolute offset of the data section
  uint64_t file_size() const;

  const std::vector<KeyValue>& metadata() const;
  const Value* find(std::string_view key) const;  // nullptr when absent

  // Typed metadata getters. The plain ones throw Error(not_found) naming the key when absent
  // and Error(invalid_file) when the type does not fit; *_or return the fallback when absent.
  std::string get_string(std::string_view key) const;
  std::string get_string_or(std::string_view key, std::string fallback) const;
  int64_t get_int(std::string_view key) const;
  int64_t get_int_or(std::string_view key, int64_t fallback) const;
  double get_float(std::string_view key) const;
  double get_float_or(std::string_view key, double fallback) const;
  bool get_bool_or(std::string_view key, bool fallback) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<float> get_float_array(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const;
  const TensorInfo* find_tensor(std::string_view name) const;  // nullptr when absent
  // The bytes of a tensor (validated to lie inside the file).
  std::span<const uint8_t> tensor_data(const TensorInfo& tensor) const;
  // The whole file's bytes.
  std::span<const uint8_t> bytes() const;

 private:
  struct Impl;
  explicit File(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Builds a GGUF file. Metadata keys and tensors are written in insertion order; tensor data is
// aligned to `alignment` and padded with zeros, as llama.cpp writes it, so reading a file and
// writing its contents back reproduces it byte for byte.
class Writer {
 public:
  explicit Writer(uint32_t version = 3, uint32_t alignment = kDefaultAlignment);

  // Sets (or replaces, keeping its position) a metadata value. Setting `general.alignment`
  // changes the alignment used for tensor data.
  void set(std::string key, Value value);
  void remove(std::string_view key);
  // Adds a tensor; `data` must hold exactly the bytes the type and shape need. The bytes are
  // copied only when `write` runs if `data` is a view (keep it alive until then).
  void add_tensor(std::string name, TensorType type, std::vector<int64_t> ne,
                  std::span<const uint8_t> data);
  void add_tensor(std::string name, TensorType type, std::vector<int64_t> ne,
                  std::vector<uint8_t> owned_data);
  // Streams a tensor: `write` calls `fill(first_row, n_rows, out)` in row order, in chunks of
  // about kFillChunkBytes, and `out` (n_rows × row_bytes(type, ne[0]) bytes) must receive rows
  // [first_row, first_row + n_rows), a row being ne[0] values. Only one chunk is in memory at a
  // time, so files larger than memory can be written. May be called again by a later write.
  using RowFiller = std::function<void(int64_t first_row, int64_t n_rows, std::span<uint8_t> out)>;
  static constexpr uint64_t kFillChunkBytes = uint64_t{16} << 20;
  void add_tensor(std::string name, TensorType type, std::vector<int64_t> ne, RowFiller fill);

  // Writes to `path` atomically (a temporary file renamed on success). Throws Error(io).
  void write(const std::string& path) const;
  // Serialises to memory (tests).
  std::vector<uint8_t> to_bytes() const;

 private:
  struct PendingTensor {
    TensorInfo info;
    std::span<const uint8_t> view;
    std::shared_ptr<std::vector<uint8_t>> owned;
    RowFiller fill;  // set for streamed tensors (then `view` is empty)
  };
  TensorInfo checked_info(std::string name, TensorType type, std::vector<int64_t> ne) const;
  template <class Sink>
  void serialise(Sink& sink) const;
  uint32_t version_;
  uint32_t alignment_;
  std::vector<KeyValue> metadata_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace thinkmesh::gguf
