// Parsing and validating a GGUF file (see gguf.h for the layout). Nothing from the file is used
// before it is checked: counts against the bytes left, types against the known ids, tensor
// shapes against int64 overflow, tensor byte ranges against the file and against each other.
#include <algorithm>
#include <limits>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "gguf/byte_cursor.h"
#include "gguf/file_impl.h"
#include "gguf/metadata_reader.h"
#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"

namespace thinkmesh::gguf {
namespace {

constexpr uint8_t kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kMaxDims = 4;
// Smallest encodings: a KV is an 8-byte key length, a 4-byte type and a 1-byte value; a tensor
// info is an 8-byte name length, n_dims, one dimension, a type and an offset.
constexpr uint64_t kMinKeyValueBytes = 8 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;
constexpr std::string_view kAlignmentKey = "general.alignment";
constexpr uint64_t kMaxAlignment = uint64_t{1} << 31;

uint64_t align_up(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

std::string quoted(std::string_view text) {
  std::string out(1, '\'');
  out.append(text);
  out += '\'';
  return out;
}

struct Counts {
  uint64_t n_tensors = 0;
  uint64_t n_kv = 0;
};

Counts read_header(ByteCursor& in, FileContents& file) {
  for (const uint8_t expected : kMagic) {
    const uint64_t at = in.offset();
    if (in.read<uint8_t>("the magic") != expected) {
      in.fail(at, "bad magic: the file does not start with \"GGUF\"");
    }
  }
  const uint64_t version_at = in.offset();
  file.version = in.read<uint32_t>("the version");
  if (file.version != 2 && file.version != 3) {
    std::string problem = "unsupported GGUF version " + std::to_string(file.version);
    if (file.version == 1) {
      problem += " (version 1 used 32-bit counts; convert the file with a current llama.cpp)";
    } else if ((file.version & 0xFFFF) == 0) {
      problem += " (a big-endian file?)";
    }
    in.fail(version_at, problem + "; only versions 2 and 3 are supported");
  }

  // Reject counts the file cannot possibly hold before anything is reserved for them.
  Counts counts;
  const uint64_t n_tensors_at = in.offset();
  counts.n_tensors = in.read<uint64_t>("the tensor count");
  const uint64_t n_kv_at = in.offset();
  counts.n_kv = in.read<uint64_t>("the metadata count");
  const uint64_t left = in.remaining();
  if (counts.n_tensors > left / kMinTensorInfoBytes) {
    in.fail(n_tensors_at, "tensor count " + std::to_string(counts.n_tensors) +
                              " is implausible: the " + std::to_string(left) +
                              " bytes left hold at most " +
                              std::to_string(left / kMinTensorInfoBytes) + " tensor infos");
  }
  const uint64_t left_for_kv = left - counts.n_tensors * kMinTensorInfoBytes;
  if (counts.n_kv > left_for_kv / kMinKeyValueBytes) {
    in.fail(n_kv_at, "metadata count " + std::to_string(counts.n_kv) + " is implausible: with " +
                         std::to_string(counts.n_tensors) + " tensors the " + std::to_string(left) +
                         " bytes left hold at most " +
                         std::to_string(left_for_kv / kMinKeyValueBytes) + " key-value pairs");
  }
  return counts;
}

// Returns the offset of general.alignment's value (0 when absent), for its error messages.
uint64_t read_metadata(ByteCursor& in, FileContents& file, uint64_t n_kv) {
  uint64_t alignment_at = 0;
  MetadataReader reader(in);
  file.metadata.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    const uint64_t key_at = in.offset();
    std::string key(in.read_string("metadata key"));
    if (file.key_index.count(key) != 0) in.fail(key_at, "duplicate metadata key " + quoted(key));
    const ValueType type = reader.read_type(key);
    if (key == kAlignmentKey) alignment_at = in.offset();
    Value value = reader.read_value(type, key);
    file.key_index.emplace(key, file.metadata.size());
    file.metadata.push_back({std::move(key), std::move(value)});
  }
  return alignment_at;
}

// general.alignment: an integer, a power of two; 32 when absent. `at` locates its value.
void read_alignment(const ByteCursor& in, FileContents& file, uint64_t at) {
  const auto it = file.key_index.find(kAlignmentKey);
  if (it == file.key_index.end()) return;
  const Value& value = file.metadata[it->second].value;
  if (!value.is_integer()) {
    in.fail(at, std::string(kAlignmentKey) + " is " + std::string(to_string(value.type())) +
                    ", not an integer");
  }
  const int64_t alignment = value.as_int();  // u64 beyond int64 throws invalid_file
  if (alignment <= 0 || static_cast<uint64_t>(alignment) > kMaxAlignment ||
      (alignment & (alignment - 1)) != 0) {
    in.fail(at, std::string(kAlignmentKey) + " is " + std::to_string(alignment) +
                    " (must be a power of two, at most 2^31)");
  }
  file.alignment = static_cast<uint64_t>(alignment);
}

// One tensor info; `offset_at` receives the position of its offset field (for later errors).
TensorInfo read_tensor_info(ByteCursor& in, FileContents& file, uint64_t& offset_at) {
  TensorInfo info;
  const uint64_t name_at = in.offset();
  info.name = std::string(in.read_string("tensor name"));
  if (file.tensor_index.count(info.name) != 0) {
    in.fail(name_at, "duplicate tensor name " + quoted(info.name));
  }
  const std::string what = "tensor info of " + quoted(info.name);

  const uint64_t dims_at = in.offset();
  const auto n_dims = in.read<uint32_t>(what);
  if (n_dims == 0 || n_dims > kMaxDims) {
    in.fail(dims_at, "tensor " + quoted(info.name) + " has " + std::to_string(n_dims) +
                         " dimensions (must be 1 to 4)");
  }
  int64_t n_elements = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const uint64_t dim_at = in.offset();
    const auto dim = in.read<uint64_t>(what);
    if (dim == 0 || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      in.fail(dim_at, "tensor " + quoted(info.name) + " has dimension ne[" + std::to_string(d) +
                          "] = " + std::to_string(static_cast<int64_t>(dim)) +
                          " (must be positive)");
    }
    if (__builtin_mul_overflow(n_elements, static_cast<int64_t>(dim), &n_elements)) {
      in.fail(dim_at, "tensor " + quoted(info.name) + " has more elements than int64 can count");
    }
    info.ne.push_back(static_cast<int64_t>(dim));
  }

  const uint64_t type_at = in.offset();
  const auto type_id = in.read<uint32_t>(what);
  const auto traits = tensor_type_traits(type_id);
  if (!traits) {
    in.fail(type_at, "tensor " + quoted(info.name) + " has unknown or removed type id " +
                         std::to_string(type_id));
  }
  info.type = static_cast<TensorType>(type_id);
  if (info.ne[0] % traits->block_size != 0) {
    in.fail(dims_at, "tensor " + quoted(info.name) + " row length " + std::to_string(info.ne[0]) +
                         " is not a multiple of the " + std::string(traits->name) + " block size " +
                         std::to_string(traits->block_size));
  }
  // nbytes = blocks per row × block bytes × rows, each step overflow-checked.
  const auto blocks_per_row = static_cast<uint64_t>(info.ne[0] / traits->block_size);
  const auto n_rows = static_cast<uint64_t>(n_elements / info.ne[0]);
  uint64_t row_bytes = 0;
  if (__builtin_mul_overflow(blocks_per_row, uint64_t{traits->type_size}, &row_bytes) ||
      __builtin_mul_overflow(row_bytes, n_rows, &info.nbytes)) {
    in.fail(type_at, "tensor " + quoted(info.name) + " byte size overflows 64 bits");
  }

  offset_at = in.offset();
  info.offset = in.read<uint64_t>(what);
  if (info.offset % file.alignment != 0) {
    in.fail(offset_at, "tensor " + quoted(info.name) + " offset " + std::to_string(info.offset) +
                           " is not a multiple of the alignment " + std::to_string(file.alignment));
  }
  return info;
}

// Every tensor's bytes lie inside the file and no two tensors share a byte.
void check_tensor_ranges(const ByteCursor& in, const FileContents& file,
                         const std::vector<uint64_t>& offset_fields) {
  const uint64_t size = in.size();
  const auto& tensors = file.tensors;
  if (!tensors.empty() && file.data_offset > size) {
    in.fail(in.offset(), "the data section would start at " + std::to_string(file.data_offset) +
                             ", past the end of the " + std::to_string(size) + "-byte file");
  }
  const uint64_t data_bytes = tensors.empty() ? 0 : size - file.data_offset;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& t = tensors[i];
    if (t.offset > data_bytes || t.nbytes > data_bytes - t.offset) {
      in.fail(offset_fields[i],
              "tensor " + quoted(t.name) + " data [" + std::to_string(t.offset) + ", +" +
                  std::to_string(t.nbytes) + ") relative to the data section at " +
                  std::to_string(file.data_offset) + " extends past the end of the " +
                  std::to_string(size) + "-byte file");
    }
  }
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return tensors[a].offset < tensors[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const TensorInfo& prev = tensors[order[k - 1]];
    const TensorInfo& next = tensors[order[k]];
    if (prev.offset + prev.nbytes > next.offset) {  // both checked to lie inside the file
      in.fail(offset_fields[order[k]],
              "tensors " + quoted(prev.name) + " [" + std::to_string(prev.offset) + ", +" +
                  std::to_string(prev.nbytes) + ") and " + quoted(next.name) + " [" +
                  std::to_string(next.offset) + ", +" + std::to_string(next.nbytes) + ") overlap");
    }
  }
}

void parse_into(FileContents& file) {
  ByteCursor in(file.bytes, file.path);
  const Counts counts = read_header(in, file);
  const uint64_t alignment_at = read_metadata(in, file, counts.n_kv);
  read_alignment(in, file, alignment_at);

  std::vector<uint64_t> offset_fields(static_cast<size_t>(counts.n_tensors));
  file.tensors.reserve(static_cast<size_t>(counts.n_tensors));
  for (uint64_t i = 0; i < counts.n_tensors; ++i) {
    TensorInfo info = read_tensor_info(in, file, offset_fields[i]);
    file.tensor_index.emplace(info.name, file.tensors.size());
    file.tensors.push_back(std::move(info));
  }
  // Without tensors the data section may lie past the end: writers stop after the infos then.
  file.data_offset = align_up(in.offset(), file.alignment);
  check_tensor_ranges(in, file, offset_fields);
}

}  // namespace

int64_t TensorInfo::n_elements() const {
  int64_t n = 1;
  for (const int64_t d : ne) {
    if (__builtin_mul_overflow(n, d, &n)) {
      throw Error(ErrorKind::invalid_argument,
                  "tensor '" + name + "' has more elements than int64 can count");
    }
  }
  return n;
}

File::File(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;
File::~File() = default;

File File::open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->map.emplace(path);
  impl->bytes = impl->map->bytes();
  impl->path = path;
  parse_into(*impl);
  return File(std::move(impl));
}

File File::parse(std::span<const uint8_t> bytes, std::string display_name) {
  auto impl = std::make_unique<Impl>();
  impl->bytes = bytes;
  impl->path = std::move(display_name);
  parse_into(*impl);
  return File(std::move(impl));
}

const std::string& File::path() const {
  return impl_->path;
}
uint32_t File::version() const {
  return impl_->version;
}
uint64_t File::alignment() const {
  return impl_->alignment;
}
uint64_t File::data_offset() const {
  return impl_->data_offset;
}
uint64_t File::file_size() const {
  return impl_->bytes.size();
}
const std::vector<KeyValue>& File::metadata() const {
  return impl_->metadata;
}
const std::vector<TensorInfo>& File::tensors() const {
  return impl_->tensors;
}
std::span<const uint8_t> File::bytes() const {
  return impl_->bytes;
}

const Value* File::find(std::string_view key) const {
  const auto it = impl_->key_index.find(key);
  return it == impl_->key_index.end() ? nullptr : &impl_->metadata[it->second].value;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  const auto it = impl_->tensor_index.find(name);
  return it == impl_->tensor_index.end() ? nullptr : &impl_->tensors[it->second];
}

std::span<const uint8_t> File::tensor_data(const TensorInfo& tensor) const {
  // Callers may pass a TensorInfo of their own; check it against this file again.
  const uint64_t size = impl_->bytes.size();
  const uint64_t data_bytes = impl_->data_offset > size ? 0 : size - impl_->data_offset;
  if (tensor.offset > data_bytes || tensor.nbytes > data_bytes - tensor.offset) {
    throw Error(
        ErrorKind::invalid_argument,
        "tensor '" + tensor.name + "' does not lie inside the data of '" + impl_->path + "'");
  }
  return impl_->bytes.subspan(static_cast<size_t>(impl_->data_offset + tensor.offset),
                              static_cast<size_t>(tensor.nbytes));
}

}  // namespace thinkmesh::gguf
