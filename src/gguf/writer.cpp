// Writing GGUF files. Layout, as llama.cpp's gguf_write_to_buf and gguf-py's GGUFWriter produce
// it: header, KVs and tensor infos in insertion order; zeros up to the alignment; then each
// tensor's data followed by zeros up to the alignment. A file without tensors ends right after
// its KVs (gguf-py writes no padding then; the vocab-only GGUFs of llama.cpp look like that).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"

namespace thinkmesh::gguf {
namespace {

constexpr std::string_view kAlignmentKey = "general.alignment";
constexpr int kMaxArrayNesting = 4;  // as the reader accepts

[[noreturn]] void invalid(const std::string& message) {
  throw Error(ErrorKind::invalid_argument, "GGUF writer: " + message);
}

uint64_t align_up(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

uint32_t checked_alignment(const Value& value) {
  if (!value.is_integer()) invalid("general.alignment must be an integer");
  const int64_t a = value.as_int();
  if (a <= 0 || a > (int64_t{1} << 31) || (a & (a - 1)) != 0) {
    invalid("general.alignment " + std::to_string(a) + " is not a power of two up to 2^31");
  }
  return static_cast<uint32_t>(a);
}

// The storage must hold the alternative `type` names, recursively for arrays.
void check_value(const Value& value, std::string_view key, int enclosing_arrays) {
  const auto& s = value.storage();
  bool ok = false;
  switch (value.type()) {
    case ValueType::u8:
      ok = std::holds_alternative<uint8_t>(s);
      break;
    case ValueType::i8:
      ok = std::holds_alternative<int8_t>(s);
      break;
    case ValueType::u16:
      ok = std::holds_alternative<uint16_t>(s);
      break;
    case ValueType::i16:
      ok = std::holds_alternative<int16_t>(s);
      break;
    case ValueType::u32:
      ok = std::holds_alternative<uint32_t>(s);
      break;
    case ValueType::i32:
      ok = std::holds_alternative<int32_t>(s);
      break;
    case ValueType::f32:
      ok = std::holds_alternative<float>(s);
      break;
    case ValueType::boolean:
      ok = std::holds_alternative<bool>(s);
      break;
    case ValueType::string:
      ok = std::holds_alternative<std::string>(s);
      break;
    case ValueType::u64:
      ok = std::holds_alternative<uint64_t>(s);
      break;
    case ValueType::i64:
      ok = std::holds_alternative<int64_t>(s);
      break;
    case ValueType::f64:
      ok = std::holds_alternative<double>(s);
      break;
    case ValueType::array: {
      const auto* array = std::get_if<Value::Array>(&s);
      if (!array) break;
      if (enclosing_arrays + 1 > kMaxArrayNesting) {
        invalid("metadata key '" + std::string(key) + "' nests arrays deeper than 4 levels");
      }
      for (const Value& item : array->items) {
        if (item.type() != array->element_type) {
          invalid("metadata key '" + std::string(key) + "': a " +
                  std::string(to_string(item.type())) + " item in an array of " +
                  std::string(to_string(array->element_type)));
        }
        check_value(item, key, enclosing_arrays + 1);
      }
      ok = true;
      break;
    }
  }
  if (!ok) {
    invalid("metadata key '" + std::string(key) + "': stored value does not hold its type " +
            std::string(to_string(value.type())));
  }
}

// Sinks: append bytes somewhere and count them.
class MemorySink {
 public:
  explicit MemorySink(std::vector<uint8_t>& out) : out_(out) {}
  void write(const void* data, size_t n) {
    if (n == 0) return;
    const size_t old_size = out_.size();
    out_.resize(old_size + n);
    std::memcpy(out_.data() + old_size, data, n);
  }
  uint64_t position() const { return out_.size(); }

 private:
  std::vector<uint8_t>& out_;
};

class FileSink {
 public:
  FileSink(std::FILE* file, const std::string& path) : file_(file), path_(path) {}
  void write(const void* data, size_t n) {
    if (n != 0 && std::fwrite(data, 1, n, file_) != n) {
      throw Error(ErrorKind::io, "cannot write '" + path_ + "': " + std::strerror(errno));
    }
    position_ += n;
  }
  uint64_t position() const { return position_; }

 private:
  std::FILE* file_;
  const std::string& path_;
  uint64_t position_ = 0;
};

template <class Sink>
void put_string(Sink& sink, std::string_view text) {
  const uint64_t length = text.size();
  sink.write(&length, sizeof length);
  sink.write(text.data(), text.size());
}

template <class Sink>
void put_zeros(Sink& sink, uint64_t n) {
  static constexpr uint8_t kZeros[4096] = {};
  while (n > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, sizeof kZeros));
    sink.write(kZeros, chunk);
    n -= chunk;
  }
}

template <class Sink>
void pad_to(Sink& sink, uint64_t alignment) {
  put_zeros(sink, align_up(sink.position(), alignment) - sink.position());
}

// The payload of a value (no type tag); check_value has validated it.
template <class Sink>
void put_value(Sink& sink, const Value& value) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          const uint8_t byte = v ? 1 : 0;
          sink.write(&byte, 1);
        } else if constexpr (std::is_arithmetic_v<T>) {
          sink.write(&v, sizeof v);
        } else if constexpr (std::is_same_v<T, std::string>) {
          put_string(sink, v);
        } else {
          const auto element_type = static_cast<uint32_t>(v.element_type);
          const uint64_t count = v.items.size();
          sink.write(&element_type, sizeof element_type);
          sink.write(&count, sizeof count);
          for (const Value& item : v.items) put_value(sink, item);
        }
      },
      value.storage());
}

}  // namespace

Writer::Writer(uint32_t version, uint32_t alignment) : version_(version), alignment_(alignment) {
  if (version != 2 && version != 3) invalid("version " + std::to_string(version) + " (2 or 3)");
  checked_alignment(Value::u32(alignment));
  // A file with another alignment must say so, or readers would assume 32.
  if (alignment != kDefaultAlignment) set(std::string(kAlignmentKey), Value::u32(alignment));
}

void Writer::set(std::string key, Value value) {
  check_value(value, key, 0);
  if (key == kAlignmentKey) alignment_ = checked_alignment(value);
  for (auto& kv : metadata_) {
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  }
  metadata_.push_back({std::move(key), std::move(value)});
}

void Writer::remove(std::string_view key) {
  std::erase_if(metadata_, [&](const KeyValue& kv) { return kv.key == key; });
  if (key == kAlignmentKey) alignment_ = kDefaultAlignment;
}

TensorInfo Writer::checked_info(std::string name, TensorType type, std::vector<int64_t> ne) const {
  for (const auto& t : tensors_) {
    if (t.info.name == name) invalid("duplicate tensor name '" + name + "'");
  }
  if (ne.empty() || ne.size() > 4) {
    invalid("tensor '" + name + "' has " + std::to_string(ne.size()) + " dimensions (1 to 4)");
  }
  for (const int64_t d : ne) {
    if (d <= 0) invalid("tensor '" + name + "' has a dimension " + std::to_string(d));
  }
  TensorInfo info{std::move(name), type, std::move(ne), 0, 0};
  const int64_t n_rows = info.n_elements() / info.ne[0];  // throws on int64 overflow
  const uint64_t row = row_bytes(type, info.ne[0]);       // throws unless whole blocks
  if (__builtin_mul_overflow(row, static_cast<uint64_t>(n_rows), &info.nbytes)) {
    invalid("tensor '" + info.name + "' byte size overflows 64 bits");
  }
  return info;
}

void Writer::add_tensor(std::string name, TensorType type, std::vector<int64_t> ne,
                        std::span<const uint8_t> data) {
  TensorInfo info = checked_info(std::move(name), type, std::move(ne));
  if (data.size() != info.nbytes) {
    invalid("tensor '" + info.name + "' needs " + std::to_string(info.nbytes) + " bytes, got " +
            std::to_string(data.size()));
  }
  tensors_.push_back({std::move(info), data, nullptr, nullptr});
}

void Writer::add_tensor(std::string name, TensorType type, std::vector<int64_t> ne,
                        RowFiller fill) {
  if (!fill) invalid("tensor '" + name + "' has no row filler");
  TensorInfo info = checked_info(std::move(name), type, std::move(ne));
  tensors_.push_back({std::move(info), {}, nullptr, std::move(fill)});
}

void Writer::add_tensor(std::string name, TensorType type, std::vector<int64_t> ne,
                        std::vector<uint8_t> owned_data) {
  auto owned = std::make_shared<std::vector<uint8_t>>(std::move(owned_data));
  add_tensor(std::move(name), type, std::move(ne), std::span<const uint8_t>(*owned));
  tensors_.back().owned = std::move(owned);
}

template <class Sink>
void Writer::serialise(Sink& sink) const {
  static constexpr uint8_t kMagic[4] = {'G', 'G', 'U', 'F'};
  sink.write(kMagic, sizeof kMagic);
  sink.write(&version_, sizeof version_);
  const uint64_t n_tensors = tensors_.size();
  const uint64_t n_kv = metadata_.size();
  sink.write(&n_tensors, sizeof n_tensors);
  sink.write(&n_kv, sizeof n_kv);

  for (const auto& kv : metadata_) {
    put_string(sink, kv.key);
    const auto type = static_cast<uint32_t>(kv.value.type());
    sink.write(&type, sizeof type);
    put_value(sink, kv.value);
  }

  uint64_t offset = 0;  // relative to the data section; each tensor padded to the alignment
  for (const auto& t : tensors_) {
    put_string(sink, t.info.name);
    const auto n_dims = static_cast<uint32_t>(t.info.ne.size());
    sink.write(&n_dims, sizeof n_dims);
    for (const int64_t d : t.info.ne) {
      const auto dim = static_cast<uint64_t>(d);
      sink.write(&dim, sizeof dim);
    }
    const auto type = static_cast<uint32_t>(t.info.type);
    sink.write(&type, sizeof type);
    sink.write(&offset, sizeof offset);
    offset += align_up(t.info.nbytes, alignment_);
  }

  if (tensors_.empty()) return;
  pad_to(sink, alignment_);
  std::vector<uint8_t> chunk;  // streamed tensors: one chunk of rows at a time
  for (const auto& t : tensors_) {
    if (t.fill) {
      const int64_t n_rows = t.info.n_rows();
      const uint64_t row = row_bytes(t.info.type, t.info.ne[0]);
      const int64_t rows_per_chunk =
          static_cast<int64_t>(std::max<uint64_t>(1, kFillChunkBytes / std::max<uint64_t>(row, 1)));
      for (int64_t first = 0; first < n_rows; first += rows_per_chunk) {
        const int64_t n = std::min(rows_per_chunk, n_rows - first);
        chunk.resize(static_cast<size_t>(n) * row);
        t.fill(first, n, std::span<uint8_t>(chunk));
        sink.write(chunk.data(), chunk.size());
      }
    } else {
      sink.write(t.view.data(), t.view.size());
    }
    pad_to(sink, alignment_);  // the data section starts aligned, so this pads nbytes
  }
}

std::vector<uint8_t> Writer::to_bytes() const {
  std::vector<uint8_t> out;
  MemorySink sink(out);
  serialise(sink);
  return out;
}

void Writer::write(const std::string& path) const {
  // Write beside the target and rename, so readers never see a half-written file.
  std::string temp = path + ".tmp-XXXXXX";
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) {
    throw Error(ErrorKind::io,
                "cannot create a temporary file beside '" + path + "': " + std::strerror(errno));
  }
  std::FILE* file = ::fdopen(fd, "wb");
  if (!file) {
    const int err = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    throw Error(ErrorKind::io, "cannot write '" + temp + "': " + std::strerror(err));
  }
  try {
    std::setvbuf(file, nullptr, _IOFBF, 1 << 20);
    FileSink sink(file, temp);
    serialise(sink);
    if (std::fflush(file) != 0 || ::fsync(::fileno(file)) != 0) {
      throw Error(ErrorKind::io, "cannot write '" + temp + "': " + std::strerror(errno));
    }
    ::fchmod(::fileno(file), 0644);  // mkstemp creates 0600; a model file is world-readable
    const int closed = std::fclose(file);
    file = nullptr;
    if (closed != 0) {
      throw Error(ErrorKind::io, "cannot write '" + temp + "': " + std::strerror(errno));
    }
    if (std::rename(temp.c_str(), path.c_str()) != 0) {
      throw Error(ErrorKind::io,
                  "cannot rename '" + temp + "' to '" + path + "': " + std::strerror(errno));
    }
  } catch (...) {
    if (file) std::fclose(file);
    ::unlink(temp.c_str());
    throw;
  }
}

}  // namespace thinkmesh::gguf
