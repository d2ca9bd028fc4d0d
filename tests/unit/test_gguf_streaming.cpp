// Writer::add_tensor with a row filler: the same bytes as the tensor given whole, the filler
// called in row order over chunks of about kFillChunkBytes, and its errors.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <numeric>
#include <vector>

#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"

namespace thinkmesh {
namespace {

// Row r, column c of a test tensor, as F32.
float value(int64_t r, int64_t c) {
  return static_cast<float>(r) * 0.5f + static_cast<float>(c);
}

TEST(GgufStreaming, FilledTensorWritesTheSameBytesAsAWholeOne) {
  // 6 MiB rows × 5: more than one chunk.
  const int64_t cols = 1 << 18, rows = 20;
  std::vector<float> whole(static_cast<size_t>(cols * rows));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) whole[static_cast<size_t>(r * cols + c)] = value(r, c);
  std::vector<uint8_t> bytes(whole.size() * sizeof(float));
  std::memcpy(bytes.data(), whole.data(), bytes.size());

  gguf::Writer direct;
  direct.set("general.architecture", gguf::Value::string("test"));
  direct.add_tensor("small", TensorType::F32, {3}, std::vector<uint8_t>(12, 7));
  direct.add_tensor("big", TensorType::F32, {cols, rows}, bytes);

  std::vector<std::pair<int64_t, int64_t>> calls;
  gguf::Writer streamed;
  streamed.set("general.architecture", gguf::Value::string("test"));
  streamed.add_tensor("small", TensorType::F32, {3}, std::vector<uint8_t>(12, 7));
  streamed.add_tensor("big", TensorType::F32, {cols, rows},
                      [&](int64_t first, int64_t n, std::span<uint8_t> out) {
                        calls.emplace_back(first, n);
                        ASSERT_EQ(out.size(), static_cast<size_t>(n * cols) * sizeof(float));
                        auto* f = reinterpret_cast<float*>(out.data());
                        for (int64_t r = 0; r < n; ++r)
                          for (int64_t c = 0; c < cols; ++c) f[r * cols + c] = value(first + r, c);
                      });
  const std::vector<uint8_t> expected = direct.to_bytes();
  EXPECT_EQ(streamed.to_bytes(), expected);
  // Chunks cover every row once, in order, none larger than the chunk size.
  ASSERT_GT(calls.size(), 1u);
  int64_t next = 0;
  for (const auto& [first, n] : calls) {
    EXPECT_EQ(first, next);
    EXPECT_LE(static_cast<uint64_t>(n * cols) * sizeof(float), gguf::Writer::kFillChunkBytes);
    next = first + n;
  }
  EXPECT_EQ(next, rows);

  // And to a file, which reads back.
  const auto path = std::filesystem::temp_directory_path() / "thinkmesh_gguf_streaming.gguf";
  streamed.write(path.string());
  const auto file = gguf::File::open(path.string());
  const auto data = file.tensor_data(*file.find_tensor("big"));
  EXPECT_TRUE(std::equal(data.begin(), data.end(), bytes.begin()));
  std::filesystem::remove(path);
}

TEST(GgufStreaming, BadTensorsAreRejectedWhenAdded) {
  gguf::Writer w;
  auto fill = [](int64_t, int64_t, std::span<uint8_t>) {};
  EXPECT_THROW(w.add_tensor("q", TensorType::Q8_0, {33, 2}, fill), Error);  // not whole blocks
  EXPECT_THROW(w.add_tensor("z", TensorType::F32, {0}, fill), Error);
  EXPECT_THROW(w.add_tensor("n", TensorType::F32, {4}, gguf::Writer::RowFiller{}), Error);
  w.add_tensor("a", TensorType::F32, {4}, fill);
  EXPECT_THROW(w.add_tensor("a", TensorType::F32, {4}, fill), Error);  // duplicate
}

}  // namespace
}  // namespace thinkmesh
