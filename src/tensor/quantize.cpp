// quantize_row_reference: validates the row and dispatches to the per-type reference
// quantizers (quantize_legacy.cpp, quantize_kquants.cpp). Plain types convert element-wise with
// ggml's rounding (F16: nearest even; BF16: nearest even, NaNs kept quiet).
#include <cstring>
#include <string>

#include "tensor/quantize_internal.h"
#include "thinkmesh/error.h"
#include "thinkmesh/half.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh {
namespace {

template <class Block>
Block* blocks(void* dst) {
  return static_cast<Block*>(dst);
}

bool has_reference_quantizer(TensorType type) {
  switch (type) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::Q4_0:
    case TensorType::Q4_1:
    case TensorType::Q5_0:
    case TensorType::Q5_1:
    case TensorType::Q8_0:
    case TensorType::Q2_K:
    case TensorType::Q3_K:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
    case TensorType::Q8_K:
      return true;
    default:
      return false;
  }
}

}  // namespace

void quantize_row_reference(TensorType type, const float* src, void* dst, int64_t n) {
  const auto& t = traits(type);
  if (!has_reference_quantizer(type))
    throw Error(ErrorKind::unsupported,
                "no reference quantizer for tensor type " + std::string(t.name));
  const int64_t nb = static_cast<int64_t>(row_bytes(type, n) / t.type_size);  // validates n
  switch (type) {
    case TensorType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case TensorType::F16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
      return;
    }
    case TensorType::BF16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(src[i]);
      return;
    }
    case TensorType::Q4_0:
      return detail::quantize_q4_0(src, blocks<block_q4_0>(dst), nb);
    case TensorType::Q4_1:
      return detail::quantize_q4_1(src, blocks<block_q4_1>(dst), nb);
    case TensorType::Q5_0:
      return detail::quantize_q5_0(src, blocks<block_q5_0>(dst), nb);
    case TensorType::Q5_1:
      return detail::quantize_q5_1(src, blocks<block_q5_1>(dst), nb);
    case TensorType::Q8_0:
      return detail::quantize_q8_0(src, blocks<block_q8_0>(dst), nb);
    case TensorType::Q2_K:
      return detail::quantize_q2_K(src, blocks<block_q2_K>(dst), nb);
    case TensorType::Q3_K:
      return detail::quantize_q3_K(src, blocks<block_q3_K>(dst), nb);
    case TensorType::Q4_K:
      return detail::quantize_q4_K(src, blocks<block_q4_K>(dst), nb);
    case TensorType::Q5_K:
      return detail::quantize_q5_K(src, blocks<block_q5_K>(dst), nb);
    case TensorType::Q6_K:
      return detail::quantize_q6_K(src, blocks<block_q6_K>(dst), nb);
    case TensorType::Q8_K:
      return detail::quantize_q8_K(src, blocks<block_q8_K>(dst), nb);
    default:
      break;
  }
  throw Error(ErrorKind::internal,
              "tensor type " + std::string(t.name) + " has a quantizer but no case");
}

}  // namespace thinkmesh
