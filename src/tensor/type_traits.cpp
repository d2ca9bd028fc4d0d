// The table of ggml tensor types: names and block geometry. Sizes are checked against the
// block structs in blocks.h with static_assert.
#include <algorithm>
#include <array>
#include <cctype>
#include <string>

#include "tensor/blocks.h"
#include "thinkmesh/error.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh {
namespace {

struct Entry {
  bool valid;
  TensorTypeTraits traits;
};

constexpr TensorTypeTraits plain(std::string_view name, size_t bytes, bool deq) {
  return {name, 1, bytes, false, deq};
}
constexpr TensorTypeTraits quant(std::string_view name, int64_t block, size_t bytes, bool deq) {
  return {name, block, bytes, true, deq};
}

constexpr std::array<Entry, kTensorTypeIdLimit> make_table() {
  std::array<Entry, kTensorTypeIdLimit> t{};
  auto set = [&](TensorType id, TensorTypeTraits tr) { t[static_cast<uint32_t>(id)] = {true, tr}; };
  set(TensorType::F32, plain("F32", 4, true));
  set(TensorType::F16, plain("F16", 2, true));
  set(TensorType::Q4_0, quant("Q4_0", 32, sizeof(block_q4_0), true));
  set(TensorType::Q4_1, quant("Q4_1", 32, sizeof(block_q4_1), true));
  set(TensorType::Q5_0, quant("Q5_0", 32, sizeof(block_q5_0), true));
  set(TensorType::Q5_1, quant("Q5_1", 32, sizeof(block_q5_1), true));
  set(TensorType::Q8_0, quant("Q8_0", 32, sizeof(block_q8_0), true));
  set(TensorType::Q8_1, quant("Q8_1", 32, 36, false));
  set(TensorType::Q2_K, quant("Q2_K", 256, sizeof(block_q2_K), true));
  set(TensorType::Q3_K, quant("Q3_K", 256, sizeof(block_q3_K), true));
  set(TensorType::Q4_K, quant("Q4_K", 256, sizeof(block_q4_K), true));
  set(TensorType::Q5_K, quant("Q5_K", 256, sizeof(block_q5_K), true));
  set(TensorType::Q6_K, quant("Q6_K", 256, sizeof(block_q6_K), true));
  set(TensorType::Q8_K, quant("Q8_K", 256, sizeof(block_q8_K), true));
  set(TensorType::IQ2_XXS, quant("IQ2_XXS", 256, 66, false));
  set(TensorType::IQ2_XS, quant("IQ2_XS", 256, 74, false));
  set(TensorType::IQ3_XXS, quant("IQ3_XXS", 256, 98, false));
  set(TensorType::IQ1_S, quant("IQ1_S", 256, 50, false));
  set(TensorType::IQ4_NL, quant("IQ4_NL", 32, 18, false));
  set(TensorType::IQ3_S, quant("IQ3_S", 256, 110, false));
  set(TensorType::IQ2_S, quant("IQ2_S", 256, 82, false));
  set(TensorType::IQ4_XS, quant("IQ4_XS", 256, 136, false));
  set(TensorType::I8, plain("I8", 1, false));
  set(TensorType::I16, plain("I16", 2, false));
  set(TensorType::I32, plain("I32", 4, false));
  set(TensorType::I64, plain("I64", 8, false));
  set(TensorType::F64, plain("F64", 8, false));
  set(TensorType::IQ1_M, quant("IQ1_M", 256, 56, false));
  set(TensorType::BF16, plain("BF16", 2, true));
  set(TensorType::TQ1_0, quant("TQ1_0", 256, 54, false));
  set(TensorType::TQ2_0, quant("TQ2_0", 256, 66, false));
  return t;
}

constexpr auto kTable = make_table();

}  // namespace

std::optional<TensorTypeTraits> tensor_type_traits(uint32_t id) {
  if (id >= kTensorTypeIdLimit || !kTable[id].valid) return std::nullopt;
  return kTable[id].traits;
}

const TensorTypeTraits& traits(TensorType type) {
  const auto id = static_cast<uint32_t>(type);
  if (id >= kTensorTypeIdLimit || !kTable[id].valid)
    throw Error(ErrorKind::internal, "invalid tensor type id " + std::to_string(id));
  return kTable[id].traits;
}

std::optional<TensorType> parse_tensor_type(std::string_view text) {
  std::string upper(text);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  for (uint32_t id = 0; id < kTensorTypeIdLimit; ++id)
    if (kTable[id].valid && kTable[id].traits.name == upper) return static_cast<TensorType>(id);
  return std::nullopt;
}

size_t row_bytes(TensorType type, int64_t n) {
  const auto& t = traits(type);
  if (n < 0 || n % t.block_size != 0)
    throw Error(ErrorKind::invalid_argument,
                "row of " + std::to_string(n) + " values is not a multiple of the " +
                    std::string(t.name) + " block size " + std::to_string(t.block_size));
  return static_cast<size_t>(n / t.block_size) * t.type_size;
}

}  // namespace thinkmesh
