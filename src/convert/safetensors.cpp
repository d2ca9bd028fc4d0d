// SafetensorsFile / SafetensorsSet: see safetensors.h. Every number read from the header is
// checked before it is used to index the file, so a hostile file gives an Error, never a read
// outside the map.
#include "convert/safetensors.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <optional>
#include <utility>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "thinkmesh/error.h"

namespace thinkmesh::convert {
namespace {

using nlohmann::json;

// safetensors itself refuses headers above 100 MB; so do we (it bounds the JSON parse).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr size_t kMaxDims = 8;

struct DtypeInfo {
  StDtype dtype;
  std::string_view name;
  size_t size;
};
constexpr std::array<DtypeInfo, 15> kDtypes = {{
    {StDtype::F64, "F64", 8},
    {StDtype::F32, "F32", 4},
    {StDtype::F16, "F16", 2},
    {StDtype::BF16, "BF16", 2},
    {StDtype::I64, "I64", 8},
    {StDtype::I32, "I32", 4},
    {StDtype::I16, "I16", 2},
    {StDtype::I8, "I8", 1},
    {StDtype::U64, "U64", 8},
    {StDtype::U32, "U32", 4},
    {StDtype::U16, "U16", 2},
    {StDtype::U8, "U8", 1},
    {StDtype::BOOL, "BOOL", 1},
    {StDtype::F8_E4M3, "F8_E4M3", 1},
    {StDtype::F8_E5M2, "F8_E5M2", 1},
}};

std::optional<StDtype> parse_dtype(std::string_view name) {
  for (const auto& d : kDtypes) {
    if (d.name == name) return d.dtype;
  }
  return std::nullopt;
}

[[noreturn]] void fail(const std::string& path, uint64_t offset, const std::string& what) {
  throw Error(ErrorKind::invalid_file,
              fmt::format("{}: invalid safetensors file at offset {}: {}", path, offset, what));
}

[[noreturn]] void fail_tensor(const std::string& path, const std::string& tensor,
                              const std::string& what) {
  fail(path, 8, fmt::format("tensor '{}': {}", tensor, what));
}

}  // namespace

std::string_view to_string(StDtype dtype) {
  for (const auto& d : kDtypes) {
    if (d.dtype == dtype) return d.name;
  }
  return "?";
}

size_t element_size(StDtype dtype) {
  for (const auto& d : kDtypes) {
    if (d.dtype == dtype) return d.size;
  }
  return 0;
}

int64_t StTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

struct SafetensorsFile::Impl {
  std::string path;
  std::optional<MappedFile> map;
  std::span<const uint8_t> bytes;
  uint64_t data_offset = 0;
  std::vector<StTensor> tensors;
  std::map<std::string, std::string> metadata;
};

SafetensorsFile::SafetensorsFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

const std::string& SafetensorsFile::path() const {
  return impl_->path;
}
const std::vector<StTensor>& SafetensorsFile::tensors() const {
  return impl_->tensors;
}
const std::map<std::string, std::string>& SafetensorsFile::metadata() const {
  return impl_->metadata;
}
uint64_t SafetensorsFile::data_offset() const {
  return impl_->data_offset;
}

const StTensor* SafetensorsFile::find(std::string_view name) const {
  const auto& t = impl_->tensors;
  const auto it = std::lower_bound(
      t.begin(), t.end(), name, [](const StTensor& a, std::string_view b) { return a.name < b; });
  return it != t.end() && it->name == name ? &*it : nullptr;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->map.emplace(path);
  const auto bytes = impl->map->bytes();
  SafetensorsFile parsed = parse(bytes, path);
  parsed.impl_->map = std::move(impl->map);
  return parsed;
}

SafetensorsFile SafetensorsFile::parse(std::span<const uint8_t> bytes, std::string display_name) {
  auto impl = std::make_unique<Impl>();
  impl->path = std::move(display_name);
  impl->bytes = bytes;
  const std::string& path = impl->path;
  const uint64_t size = bytes.size();
  if (size < 8)
    fail(path, 0, fmt::format("{} bytes, too short for the 8-byte header length", size));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[static_cast<size_t>(i)];
  if (n > kMaxHeaderBytes) {
    fail(path, 0, fmt::format("header length {} exceeds the {} byte limit", n, kMaxHeaderBytes));
  }
  if (n > size - 8) {
    fail(path, 0,
         fmt::format("header length {} runs past the end of the file ({} bytes)", n, size));
  }
  if (n < 2) fail(path, 8, fmt::format("header length {} cannot hold a JSON object", n));
  impl->data_offset = 8 + n;
  const uint64_t data_size = size - impl->data_offset;

  json header;
  try {
    header = json::parse(bytes.begin() + 8, bytes.begin() + static_cast<ptrdiff_t>(8 + n));
  } catch (const json::exception& e) {
    fail(path, 8, fmt::format("header is not valid JSON: {}", e.what()));
  }
  if (!header.is_object()) fail(path, 8, "header JSON is not an object");

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail(path, 8, "__metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) fail(path, 8, fmt::format("__metadata__.{} is not a string", key));
        impl->metadata.emplace(key, value.get<std::string>());
      }
      continue;
    }
    if (!entry.is_object()) fail_tensor(path, name, "entry is not an object");
    StTensor t;
    t.name = name;
    const auto dtype_it = entry.find("dtype");
    if (dtype_it == entry.end() || !dtype_it->is_string())
      fail_tensor(path, name, "no \"dtype\" string");
    const auto dtype = parse_dtype(dtype_it->get<std::string>());
    if (!dtype)
      fail_tensor(path, name, fmt::format("unknown dtype '{}'", dtype_it->get<std::string>()));
    t.dtype = *dtype;

    const auto shape_it = entry.find("shape");
    if (shape_it == entry.end() || !shape_it->is_array())
      fail_tensor(path, name, "no \"shape\" array");
    if (shape_it->size() > kMaxDims) {
      fail_tensor(path, name,
                  fmt::format("{} dimensions (at most {})", shape_it->size(), kMaxDims));
    }
    // Element count with overflow checks: every product stays below 2^60 (× ≤ 8 bytes fits u64).
    uint64_t elements = 1;
    for (const auto& d : *shape_it) {
      if (!d.is_number_unsigned())
        fail_tensor(path, name,
                    fmt::format("shape entry {} is not a non-negative integer", d.dump()));
      const uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && elements > (uint64_t{1} << 60) / dim)
        fail_tensor(path, name, "shape's element count overflows");
      elements *= dim;
      t.shape.push_back(static_cast<int64_t>(dim));
    }

    const auto off_it = entry.find("data_offsets");
    if (off_it == entry.end() || !off_it->is_array() || off_it->size() != 2 ||
        !(*off_it)[0].is_number_unsigned() || !(*off_it)[1].is_number_unsigned()) {
      fail_tensor(path, name, "\"data_offsets\" is not a pair of non-negative integers");
    }
    t.begin = (*off_it)[0].get<uint64_t>();
    t.end = (*off_it)[1].get<uint64_t>();
    if (t.begin > t.end)
      fail_tensor(path, name, fmt::format("data_offsets [{}, {}] run backwards", t.begin, t.end));
    if (t.end > data_size) {
      fail(path, impl->data_offset + t.begin,
           fmt::format("tensor '{}': data_offsets [{}, {}] run past the end of the data ({} bytes "
                       "from offset {})",
                       name, t.begin, t.end, data_size, impl->data_offset));
    }
    const uint64_t expected = elements * element_size(t.dtype);
    if (t.end - t.begin != expected) {
      fail(path, impl->data_offset + t.begin,
           fmt::format("tensor '{}': {} × {} needs {} bytes but data_offsets [{}, {}] hold {}",
                       name, shape_it->dump(), to_string(t.dtype), expected, t.begin, t.end,
                       t.end - t.begin));
    }
    t.data = bytes.subspan(static_cast<size_t>(impl->data_offset + t.begin),
                           static_cast<size_t>(t.end - t.begin));
    impl->tensors.push_back(std::move(t));
  }

  // The format forbids overlapping tensors (a reader could otherwise alias one onto another).
  std::vector<const StTensor*> by_offset;
  for (const auto& t : impl->tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const StTensor* a, const StTensor* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const StTensor* prev = by_offset[i - 1];
    const StTensor* cur = by_offset[i];
    if (cur->begin < prev->end) {
      fail(path, impl->data_offset + cur->begin,
           fmt::format("tensors '{}' [{}, {}] and '{}' [{}, {}] overlap", prev->name, prev->begin,
                       prev->end, cur->name, cur->begin, cur->end));
    }
  }
  // json objects iterate in key order, so tensors are already sorted by name.
  return SafetensorsFile(std::move(impl));
}

const StTensor* SafetensorsSet::find(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : entries_[it->second].tensor;
}

SafetensorsSet SafetensorsSet::open_folder(const std::string& folder) {
  namespace fs = std::filesystem;
  SafetensorsSet set;
  const fs::path dir(folder);
  const fs::path single = dir / "model.safetensors";
  const fs::path index = dir / "model.safetensors.index.json";
  std::map<std::string, std::string> weight_map;  // tensor → shard, from the index
  if (fs::exists(single)) {
    set.file_names_.push_back("model.safetensors");
  } else if (fs::exists(index)) {
    std::ifstream in(index, std::ios::binary);
    json root;
    try {
      root = json::parse(in);
    } catch (const json::exception& e) {
      throw Error(ErrorKind::invalid_file,
                  fmt::format("{}: not valid JSON: {}", index.string(), e.what()));
    }
    if (!root.is_object() || !root.contains("weight_map") || !root["weight_map"].is_object()) {
      throw Error(ErrorKind::invalid_file,
                  fmt::format("{}: no \"weight_map\" object", index.string()));
    }
    std::vector<std::string> shards;
    for (const auto& [tensor, shard] : root["weight_map"].items()) {
      if (!shard.is_string()) {
        throw Error(
            ErrorKind::invalid_file,
            fmt::format("{}: weight_map[\"{}\"] is not a file name", index.string(), tensor));
      }
      const std::string file = shard.get<std::string>();
      // A shard name must stay inside the folder.
      if (file.empty() || file.find('/') != std::string::npos ||
          file.find('\\') != std::string::npos || file == "." || file == "..") {
        throw Error(ErrorKind::invalid_file,
                    fmt::format("{}: weight_map[\"{}\"] = '{}' is not a file in the folder",
                                index.string(), tensor, file));
      }
      weight_map.emplace(tensor, file);
      shards.push_back(file);
    }
    std::sort(shards.begin(), shards.end());
    shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
    set.file_names_ = shards;
  } else {
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().extension() == ".safetensors")
        set.file_names_.push_back(e.path().filename().string());
    }
    std::sort(set.file_names_.begin(), set.file_names_.end());
  }
  if (set.file_names_.empty()) {
    throw Error(ErrorKind::not_found,
                fmt::format("{}: no model.safetensors, model.safetensors.index.json or "
                            "*.safetensors file",
                            folder));
  }
  for (const auto& name : set.file_names_) {
    set.files_.push_back(
        std::make_unique<SafetensorsFile>(SafetensorsFile::open((dir / name).string())));
  }
  for (const auto& file : set.files_) {
    for (const auto& t : file->tensors()) {
      if (set.by_name_.count(t.name)) {
        throw Error(
            ErrorKind::invalid_file,
            fmt::format("{}: tensor '{}' is also in an earlier shard", file->path(), t.name));
      }
      set.by_name_.emplace(t.name, set.entries_.size());
      set.entries_.push_back({file.get(), &t});
    }
  }
  for (const auto& [tensor, shard] : weight_map) {
    const auto it = set.by_name_.find(tensor);
    const std::string actual =
        it == set.by_name_.end()
            ? std::string()
            : fs::path(set.entries_[it->second].file->path()).filename().string();
    if (actual != shard) {
      throw Error(ErrorKind::invalid_file,
                  fmt::format("{}: the index puts '{}' in {}, but {}", index.string(), tensor,
                              shard, actual.empty() ? "no shard holds it" : "it is in " + actual));
    }
  }
  return set;
}

}  // namespace thinkmesh::convert
