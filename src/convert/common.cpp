// Shared converter pieces: type choice, encodings, size labels, the tensor sink.
#include <cmath>
#include <cstring>
#include <filesystem>

#include <fmt/core.h>

#include "convert/convert_internal.h"
#include "thinkmesh/error.h"
#include "thinkmesh/half.h"

namespace thinkmesh::convert {

TensorType weight_type(const ConvertOptions& options, TensorType fallback) {
  const TensorType type = options.type.value_or(fallback);
  if (type != TensorType::F32 && type != TensorType::F16 && type != TensorType::BF16) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("convert: output type {} is not supported (f32, f16, bf16; quantize "
                            "the converted file for the others)",
                            name(type)));
  }
  return type;
}

uint32_t file_type_id(TensorType type) {
  switch (type) {
    case TensorType::F32:
      return 0;  // LLAMA_FTYPE_ALL_F32
    case TensorType::F16:
      return 1;  // LLAMA_FTYPE_MOSTLY_F16
    case TensorType::BF16:
      return 32;  // LLAMA_FTYPE_MOSTLY_BF16
    default:
      break;
  }
  throw Error(ErrorKind::internal, fmt::format("convert: no file type for {}", name(type)));
}

namespace {
bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

TensorType storage_type(const std::string& gguf_name, size_t n_dims, TensorType requested) {
  if (n_dims <= 1 || ends_with(gguf_name, "_norm.weight")) return TensorType::F32;
  if (gguf_name == "position_embd.weight" || gguf_name == "token_types.weight") {
    return TensorType::F32;
  }
  if (!ends_with(gguf_name, ".weight")) return TensorType::F32;
  return requested;
}

std::string size_label(uint64_t n) {
  const double count = static_cast<double>(n);
  double scaled = count * 1e-3;
  char suffix = 'K';
  if (count > 1e12) {
    scaled = count * 1e-12, suffix = 'T';
  } else if (count > 1e9) {
    scaled = count * 1e-9, suffix = 'B';
  } else if (count > 1e6) {
    scaled = count * 1e-6, suffix = 'M';
  }
  // Python: len(str(round(scaled)).lstrip('0')); round() is half-to-even like nearbyint.
  std::string digits = fmt::format("{}", static_cast<long long>(std::nearbyint(scaled)));
  digits.erase(0, digits.find_first_not_of('0') == std::string::npos
                      ? digits.size()
                      : digits.find_first_not_of('0'));
  const int fix = std::max(2 - static_cast<int>(digits.size()), 0);
  return fmt::format("{:.{}f}{}", scaled, fix, suffix);
}

std::vector<float> to_f32(const StTensor& tensor, const std::string& file) {
  const size_t n = static_cast<size_t>(tensor.n_elements());
  std::vector<float> out(n);
  const uint8_t* p = tensor.data.data();
  switch (tensor.dtype) {
    case StDtype::F32:
      std::memcpy(out.data(), p, n * 4);
      break;
    case StDtype::F16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = fp16_to_fp32(h);
      }
      break;
    case StDtype::BF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = bf16_to_fp32(h);
      }
      break;
    default:
      throw Error(ErrorKind::unsupported,
                  fmt::format("{}: tensor '{}' has dtype {}; the converter reads F32, F16 and BF16",
                              file, tensor.name, to_string(tensor.dtype)));
  }
  return out;
}

std::vector<uint8_t> encode(std::span<const float> values, TensorType type) {
  std::vector<uint8_t> out;
  if (type == TensorType::F32) {
    out.resize(values.size() * 4);
    std::memcpy(out.data(), values.data(), out.size());
  } else if (type == TensorType::F16 || type == TensorType::BF16) {
    out.resize(values.size() * 2);
    for (size_t i = 0; i < values.size(); ++i) {
      const uint16_t h =
          type == TensorType::F16 ? fp32_to_fp16(values[i]) : fp32_to_bf16(values[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  } else {
    throw Error(ErrorKind::internal, fmt::format("convert: cannot encode {}", name(type)));
  }
  return out;
}

void TensorSink::add(const std::string& name, std::vector<int64_t> ne,
                     std::span<const float> values, TensorType requested) {
  const TensorType type = storage_type(name, ne.size(), requested);
  n_params_ += values.size();
  ++n_tensors_;
  writer_.add_tensor(name, type, std::move(ne), encode(values, type));
}

void TensorSink::add_view(const std::string& name, std::vector<int64_t> ne, TensorType type,
                          std::span<const uint8_t> bytes) {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  n_params_ += static_cast<uint64_t>(n);
  ++n_tensors_;
  writer_.add_tensor(name, type, std::move(ne), bytes);
}

void write_output(const gguf::Writer& writer, const std::string& output) {
  const auto parent = std::filesystem::path(output).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  writer.write(output);
}

}  // namespace thinkmesh::convert
