// A minimal protobuf reader for SentencePiece's tokenizer.model: only ModelProto.pieces
// (field 1: message {1: string piece, 2: float score, 3: enum type}) is read; every other
// field is skipped by its wire type. Every length is checked against the bytes left.
#include <bit>
#include <cstring>

#include <fmt/core.h>

#include "convert/hf_internal.h"
#include "core/mapped_file.h"
#include "thinkmesh/error.h"

namespace thinkmesh::convert {
namespace {

class Wire {
 public:
  Wire(const uint8_t* data, size_t size, size_t base, const std::string& path)
      : p_(data), size_(size), base_(base), path_(path) {}
  bool done() const { return pos_ >= size_; }
  size_t offset() const { return base_ + pos_; }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= size_) fail("truncated varint");
      const uint8_t b = p_[pos_++];
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint longer than 10 bytes");
  }
  uint32_t fixed32() {
    if (size_ - pos_ < 4) fail("truncated 32-bit field");
    uint32_t v;
    std::memcpy(&v, p_ + pos_, 4);
    pos_ += 4;
    return v;
  }
  // A length-delimited field: returns (start, length) and moves past it.
  std::pair<size_t, size_t> bytes() {
    const uint64_t n = varint();
    if (n > size_ - pos_) fail(fmt::format("field of {} bytes runs past its message", n));
    const size_t start = pos_;
    pos_ += static_cast<size_t>(n);
    return {start, static_cast<size_t>(n)};
  }
  void skip(uint32_t wire_type) {
    switch (wire_type) {
      case 0:
        varint();
        return;
      case 1:
        if (size_ - pos_ < 8) fail("truncated 64-bit field");
        pos_ += 8;
        return;
      case 2:
        bytes();
        return;
      case 5:
        fixed32();
        return;
      default:
        fail(fmt::format("unsupported protobuf wire type {}", wire_type));
    }
  }
  const uint8_t* data() const { return p_; }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(
        ErrorKind::invalid_file,
        fmt::format("{}: not a SentencePiece model: {} at offset {}", path_, what, offset()));
  }

 private:
  const uint8_t* p_;
  size_t size_;
  size_t base_;
  const std::string& path_;
  size_t pos_ = 0;
};

SpmPiece parse_piece(const uint8_t* data, size_t size, size_t base, const std::string& path) {
  Wire w(data, size, base, path);
  SpmPiece piece;
  while (!w.done()) {
    const uint64_t key = w.varint();
    const uint32_t field = static_cast<uint32_t>(key >> 3), wire = static_cast<uint32_t>(key & 7);
    if (field == 1 && wire == 2) {
      const auto [start, n] = w.bytes();
      piece.piece.assign(reinterpret_cast<const char*>(data + start), n);
    } else if (field == 2 && wire == 5) {
      piece.score = std::bit_cast<float>(w.fixed32());
    } else if (field == 3 && wire == 0) {
      piece.type = static_cast<int32_t>(w.varint());
    } else {
      w.skip(wire);
    }
  }
  return piece;
}

}  // namespace

std::vector<SpmPiece> parse_sentencepiece_model(const uint8_t* data, size_t size,
                                                const std::string& path) {
  Wire w(data, size, 0, path);
  std::vector<SpmPiece> pieces;
  while (!w.done()) {
    const uint64_t key = w.varint();
    const uint32_t field = static_cast<uint32_t>(key >> 3), wire = static_cast<uint32_t>(key & 7);
    if (field == 1 && wire == 2) {
      const auto [start, n] = w.bytes();
      pieces.push_back(parse_piece(data + start, n, start, path));
    } else {
      w.skip(wire);
    }
  }
  if (pieces.empty()) w.fail("no pieces");
  return pieces;
}

std::vector<SpmPiece> read_sentencepiece_model(const std::string& path) {
  const MappedFile file(path);
  return parse_sentencepiece_model(file.data(), file.size(), path);
}

}  // namespace thinkmesh::convert
