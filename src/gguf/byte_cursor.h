// A bounded little-endian reader over untrusted bytes. Every read checks the bytes left first
// and throws Error(invalid_file) naming the file, what was being read and the byte offset, so
// the parser above it never reads past the end, whatever the input.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "thinkmesh/error.h"

namespace thinkmesh::gguf {

static_assert(std::endian::native == std::endian::little,
              "the GGUF reader assumes a little-endian host");

class ByteCursor {
 public:
  ByteCursor(std::span<const uint8_t> bytes, std::string_view display_name)
      : bytes_(bytes), name_(display_name) {}

  uint64_t offset() const { return offset_; }
  uint64_t remaining() const { return bytes_.size() - offset_; }
  uint64_t size() const { return bytes_.size(); }

  // Throws the error every malformed-file path uses: "'<file>': <problem> (at byte offset N)".
  // Names read from a damaged file may hold any bytes: control bytes are shown as \xHH (a NUL
  // would otherwise cut what() short) and an overlong problem is shortened.
  [[noreturn]] void fail(uint64_t at, const std::string& problem) const {
    static constexpr size_t kMaxProblem = 400;
    std::string shown;
    for (const char c : problem) {
      if (shown.size() >= kMaxProblem) {
        shown += "...";
        break;
      }
      const auto b = static_cast<unsigned char>(c);
      if (b < 0x20 || b == 0x7F) {
        static constexpr char kHex[] = "0123456789abcdef";
        shown += "\\x";
        shown += kHex[b >> 4];
        shown += kHex[b & 15];
      } else {
        shown += c;
      }
    }
    throw Error(ErrorKind::invalid_file, "invalid GGUF file '" + std::string(name_) +
                                             "': " + shown + " (at byte offset " +
                                             std::to_string(at) + ")");
  }

  // Reads one fixed-size little-endian scalar; `what` names it in the error.
  template <class T>
  T read(std::string_view what) {
    static_assert(std::is_trivially_copyable_v<T>);
    require(sizeof(T), what);
    T value;
    std::memcpy(&value, bytes_.data() + offset_, sizeof(T));
    offset_ += sizeof(T);
    return value;
  }

  // A GGUF string: u64 byte length, then the bytes. The length is checked against the bytes
  // left before anything is allocated.
  std::string_view read_string(std::string_view what) {
    const uint64_t at = offset_;
    const auto length = read<uint64_t>(what);
    if (length > remaining()) {
      fail(at, std::string(what) + " length " + std::to_string(length) + " exceeds the " +
                   std::to_string(remaining()) + " bytes left in the file");
    }
    std::string_view text(reinterpret_cast<const char*>(bytes_.data() + offset_),
                          static_cast<size_t>(length));
    offset_ += length;
    return text;
  }

 private:
  void require(uint64_t n, std::string_view what) const {
    if (n > remaining()) {
      fail(offset_, "file ends inside " + std::string(what) + " (needs " + std::to_string(n) +
                        " bytes, " + std::to_string(remaining()) + " left)");
    }
  }

  std::span<const uint8_t> bytes_;
  std::string_view name_;
  uint64_t offset_ = 0;
};

}  // namespace thinkmesh::gguf
