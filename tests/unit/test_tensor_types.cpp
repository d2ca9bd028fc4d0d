#include <gtest/gtest.h>

#include "thinkmesh/error.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh {
namespace {

TEST(TensorTypes, KnownIdsAndRemovedIds) {
  EXPECT_TRUE(tensor_type_traits(0).has_value());
  EXPECT_FALSE(tensor_type_traits(4).has_value());   // Q4_2, removed from ggml
  EXPECT_FALSE(tensor_type_traits(31).has_value());  // Q4_0_4_4, removed from GGUF
  EXPECT_FALSE(tensor_type_traits(39).has_value());
  EXPECT_FALSE(tensor_type_traits(0xFFFFFFFFu).has_value());
}

TEST(TensorTypes, RowBytes) {
  EXPECT_EQ(row_bytes(TensorType::F32, 7), 28u);
  EXPECT_EQ(row_bytes(TensorType::Q8_0, 64), 68u);
  EXPECT_EQ(row_bytes(TensorType::Q4_K, 512), 288u);
  EXPECT_THROW(row_bytes(TensorType::Q4_0, 33), Error);
}

TEST(TensorTypes, ParseNames) {
  EXPECT_EQ(parse_tensor_type("q4_k"), TensorType::Q4_K);
  EXPECT_EQ(parse_tensor_type("BF16"), TensorType::BF16);
  EXPECT_FALSE(parse_tensor_type("Q4_K_M").has_value());  // a mix, not a tensor type
}

}  // namespace
}  // namespace thinkmesh
