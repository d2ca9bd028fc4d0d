// Metadata values: type names, typed accessors and the human-readable rendering.
#include <charconv>
#include <limits>
#include <string>
#include <type_traits>

#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"

namespace thinkmesh::gguf {
namespace {

[[noreturn]] void type_mismatch(ValueType actual, std::string_view wanted) {
  throw Error(ErrorKind::invalid_file, "metadata value is " + std::string(to_string(actual)) +
                                           ", not " + std::string(wanted));
}

// Shortest text that reads back to the same value ("0.1", "1e-05", "inf").
template <class F>
std::string format_float(F value) {
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, result.ptr);
}

// A string between double quotes; quotes, backslashes and control bytes escaped so a value
// always prints on one line.
std::string quote(const std::string& text) {
  std::string out = "\"";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          static constexpr char kHex[] = "0123456789ABCDEF";
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
  return out;
}

}  // namespace

std::string_view to_string(ValueType type) {
  // The names gguf-py uses, which models.json and `thinkmesh inspect` print.
  switch (type) {
    case ValueType::u8:
      return "uint8";
    case ValueType::i8:
      return "int8";
    case ValueType::u16:
      return "uint16";
    case ValueType::i16:
      return "int16";
    case ValueType::u32:
      return "uint32";
    case ValueType::i32:
      return "int32";
    case ValueType::f32:
      return "float32";
    case ValueType::boolean:
      return "bool";
    case ValueType::string:
      return "string";
    case ValueType::array:
      return "array";
    case ValueType::u64:
      return "uint64";
    case ValueType::i64:
      return "int64";
    case ValueType::f64:
      return "float64";
  }
  return "unknown";
}

Value Value::string_array(const std::vector<std::string>& items) {
  std::vector<Value> values;
  values.reserve(items.size());
  for (const auto& item : items) values.push_back(Value::string(item));
  return array(ValueType::string, std::move(values));
}

Value Value::f32_array(const std::vector<float>& items) {
  std::vector<Value> values;
  values.reserve(items.size());
  for (const float item : items) values.push_back(Value::f32(item));
  return array(ValueType::f32, std::move(values));
}

Value Value::i32_array(const std::vector<int32_t>& items) {
  std::vector<Value> values;
  values.reserve(items.size());
  for (const int32_t item : items) values.push_back(Value::i32(item));
  return array(ValueType::i32, std::move(values));
}

bool Value::is_integer() const {
  switch (type_) {
    case ValueType::u8:
    case ValueType::i8:
    case ValueType::u16:
    case ValueType::i16:
    case ValueType::u32:
    case ValueType::i32:
    case ValueType::u64:
    case ValueType::i64:
      return true;
    default:
      return false;
  }
}

int64_t Value::as_int() const {
  if (!is_integer()) type_mismatch(type_, "an integer");
  return std::visit(
      [&](const auto& v) -> int64_t {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, uint64_t>) {
          if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            throw Error(ErrorKind::invalid_file,
                        "metadata value " + std::to_string(v) + " does not fit in int64");
          }
          return static_cast<int64_t>(v);
        } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          return static_cast<int64_t>(v);
        } else {
          type_mismatch(type_, "an integer");
        }
      },
      storage_);
}

double Value::as_double() const {
  if (type_ != ValueType::f32 && type_ != ValueType::f64 && !is_integer()) {
    type_mismatch(type_, "a number");
  }
  return std::visit(
      [&](const auto& v) -> double {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
          return static_cast<double>(v);
        } else {
          type_mismatch(type_, "a number");
        }
      },
      storage_);
}

bool Value::as_bool() const {
  const bool* v = std::get_if<bool>(&storage_);
  if (type_ != ValueType::boolean || !v) type_mismatch(type_, "bool");
  return *v;
}

const std::string& Value::as_string() const {
  const std::string* v = std::get_if<std::string>(&storage_);
  if (type_ != ValueType::string || !v) type_mismatch(type_, "string");
  return *v;
}

const Value::Array& Value::as_array() const {
  const Array* v = std::get_if<Array>(&storage_);
  if (type_ != ValueType::array || !v) type_mismatch(type_, "array");
  return *v;
}

std::string Value::to_display_string(size_t max_items) const {
  return std::visit(
      [&](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_floating_point_v<T>) {
          return format_float(v);
        } else if constexpr (std::is_integral_v<T>) {
          return std::to_string(v);
        } else if constexpr (std::is_same_v<T, std::string>) {
          return quote(v);
        } else {
          // [array uint32 ×3: 1, 2, 3] or, past max_items, [array string ×32000: "a", "b", …]
          std::string out = "[array " + std::string(to_string(v.element_type)) + " \u00D7" +
                            std::to_string(v.items.size());
          const size_t shown = std::min(v.items.size(), max_items);
          for (size_t i = 0; i < shown; ++i) {
            out += i == 0 ? ": " : ", ";
            out += v.items[i].to_display_string(std::max<size_t>(1, max_items / 2));
          }
          if (shown < v.items.size()) out += shown == 0 ? ": \u2026" : ", \u2026";
          out += ']';
          return out;
        }
      },
      storage_);
}

}  // namespace thinkmesh::gguf
