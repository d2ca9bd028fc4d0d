// Helpers shared by the GGUF unit tests: a raw little-endian byte builder (for files the
// Writer refuses to produce), a small sample file, and byte patching.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"

namespace thinkmesh::gguf::testing {

using Bytes = std::vector<uint8_t>;

// Appends little-endian scalars and GGUF strings.
struct ByteBuilder {
  Bytes bytes;
  template <class T>
  ByteBuilder& put(T value) {
    const auto* p = reinterpret_cast<const uint8_t*>(&value);
    bytes.insert(bytes.end(), p, p + sizeof(T));
    return *this;
  }
  ByteBuilder& str(std::string_view text) {
    put<uint64_t>(text.size());
    bytes.insert(bytes.end(), text.begin(), text.end());
    return *this;
  }
  // "GGUF", version, n_tensors, n_kv.
  ByteBuilder& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    bytes.insert(bytes.end(), {'G', 'G', 'U', 'F'});
    return put(version).put(n_tensors).put(n_kv);
  }
};

// Byte offset of the first occurrence of `text` in `bytes` (the test fails when absent).
inline size_t find_text(const Bytes& bytes, std::string_view text) {
  const auto it = std::search(bytes.begin(), bytes.end(), text.begin(), text.end());
  EXPECT_NE(it, bytes.end()) << "pattern not found: " << text;
  return static_cast<size_t>(it - bytes.begin());
}

template <class T>
void patch(Bytes& bytes, size_t offset, T value) {
  ASSERT_LE(offset + sizeof(T), bytes.size());
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

inline File parse(const Bytes& bytes) { return File::parse(std::span<const uint8_t>(bytes)); }

// Parsing must fail with invalid_file; returns the message for further checks.
inline std::string expect_invalid(const Bytes& bytes) {
  try {
    (void)parse(bytes);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_file) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "parse succeeded but should have failed";
  return {};
}

// Deterministic tensor bytes: byte i is (seed + 7i) mod 251.
inline Bytes pattern_bytes(size_t n, uint8_t seed) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>((seed + 7 * i) % 251);
  return out;
}

// A small file with a scalar of several types, a string, arrays (one nested) and three
// tensors (F32 [8], Q8_0 [32, 2], F16 [4, 3]). Keys and names are unique byte patterns so tests
// can find their fields.
inline Bytes sample_file() {
  Writer w;
  w.set("test.u32", Value::u32(7));
  w.set("test.str", Value::string("hello"));
  w.set("test.words", Value::string_array({"alpha", "beta", "gamma"}));
  w.set("test.nest", Value::array(ValueType::array, {Value::i32_array({1, 2}),
                                                     Value::i32_array({3})}));
  w.set("test.flag", Value::boolean(true));
  w.set("test.k1", Value::u32(1));
  w.set("test.k2", Value::u32(2));
  w.add_tensor("tensor_aa", TensorType::F32, {8}, pattern_bytes(32, 1));
  w.add_tensor("tensor_bb", TensorType::Q8_0, {32, 2}, pattern_bytes(68, 2));
  w.add_tensor("tensor_cc", TensorType::F16, {4, 3}, pattern_bytes(24, 3));
  return w.to_bytes();
}

}  // namespace thinkmesh::gguf::testing
