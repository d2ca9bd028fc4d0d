// Typed metadata getters of gguf::File. Errors name the file and the key.
#include <string>
#include <vector>

#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"

namespace thinkmesh::gguf {
namespace {

[[noreturn]] void missing(const std::string& path, std::string_view key) {
  throw Error(ErrorKind::not_found,
              "'" + path + "' has no metadata key '" + std::string(key) + "'");
}

// Runs `read` on the value, rethrowing a type mismatch with the file and key in the message.
template <class Read>
auto read_as(const std::string& path, std::string_view key, const Value& value, Read read) {
  try {
    return read(value);
  } catch (const Error& e) {
    throw Error(e.kind(), "'" + path + "': metadata key '" + std::string(key) + "': " + e.what());
  }
}

template <class Read>
auto get_required(const File& file, std::string_view key, Read read) {
  const Value* value = file.find(key);
  if (!value) missing(file.path(), key);
  return read_as(file.path(), key, *value, read);
}

// The items of an array value, each read with `read_item`.
template <class T, class ReadItem>
std::vector<T> get_array(const File& file, std::string_view key, ReadItem read_item) {
  return get_required(file, key, [&](const Value& value) {
    std::vector<T> out;
    const auto& items = value.as_array().items;
    out.reserve(items.size());
    for (const Value& item : items) out.push_back(read_item(item));
    return out;
  });
}

}  // namespace

std::string File::get_string(std::string_view key) const {
  return get_required(*this, key, [](const Value& v) { return v.as_string(); });
}

std::string File::get_string_or(std::string_view key, std::string fallback) const {
  if (!find(key)) return fallback;
  return get_string(key);
}

int64_t File::get_int(std::string_view key) const {
  return get_required(*this, key, [](const Value& v) { return v.as_int(); });
}

int64_t File::get_int_or(std::string_view key, int64_t fallback) const {
  return find(key) ? get_int(key) : fallback;
}

double File::get_float(std::string_view key) const {
  return get_required(*this, key, [](const Value& v) { return v.as_double(); });
}

double File::get_float_or(std::string_view key, double fallback) const {
  return find(key) ? get_float(key) : fallback;
}

bool File::get_bool_or(std::string_view key, bool fallback) const {
  if (!find(key)) return fallback;
  return get_required(*this, key, [](const Value& v) { return v.as_bool(); });
}

std::vector<std::string> File::get_string_array(std::string_view key) const {
  return get_array<std::string>(*this, key, [](const Value& v) { return v.as_string(); });
}

std::vector<float> File::get_float_array(std::string_view key) const {
  return get_array<float>(*this, key,
                          [](const Value& v) { return static_cast<float>(v.as_double()); });
}

std::vector<int64_t> File::get_int_array(std::string_view key) const {
  return get_array<int64_t>(*this, key, [](const Value& v) { return v.as_int(); });
}

}  // namespace thinkmesh::gguf
