// The imatrix.dat reader/writer and collector (src/quant/imatrix.cpp): byte round trips, the
// layout llama.cpp writes (checked against bytes assembled by hand), the collector's
// arithmetic, and clear errors for hostile files.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "thinkmesh/error.h"
#include "thinkmesh/imatrix.h"

namespace thinkmesh {
namespace {

void put(std::vector<uint8_t>& b, int32_t v) {
  uint8_t raw[4];
  std::memcpy(raw, &v, 4);
  b.insert(b.end(), raw, raw + 4);
}
void put_f(std::vector<uint8_t>& b, float v) {
  put(b, std::bit_cast<int32_t>(v));
}
void put_s(std::vector<uint8_t>& b, const std::string& s) {
  put(b, static_cast<int32_t>(s.size()));
  b.insert(b.end(), s.begin(), s.end());
}

// One entry "blk.0.attn_q.weight" (ncall 2, values 4 and 6), trailer (2, "data.txt").
std::vector<uint8_t> valid_file() {
  std::vector<uint8_t> b;
  put(b, 1);
  put_s(b, "blk.0.attn_q.weight");
  put(b, 2);
  put(b, 2);
  put_f(b, 4.f);
  put_f(b, 6.f);
  put(b, 2);
  put_s(b, "data.txt");
  return b;
}

std::string error_of(const std::vector<uint8_t>& bytes) {
  try {
    ImportanceMatrix::parse(bytes, "hostile.dat");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_file) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(Imatrix, ParsesLlamaCppLayoutAndWritesItBack) {
  const auto bytes = valid_file();
  const ImportanceMatrix m = ImportanceMatrix::parse(bytes);
  ASSERT_EQ(m.size(), 1u);
  const auto* e = m.find("blk.0.attn_q.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->ncall, 2);
  EXPECT_EQ(e->values, (std::vector<float>{4.f, 6.f}));
  EXPECT_EQ(ImportanceMatrix::importance(*e), (std::vector<float>{2.f, 3.f}));
  EXPECT_EQ(m.last_call, 2);
  EXPECT_EQ(m.dataset, "data.txt");
  EXPECT_EQ(m.to_bytes(), bytes);
}

TEST(Imatrix, TrailerIsOptional) {
  auto bytes = valid_file();
  bytes.resize(bytes.size() - 16);  // drop last_call + dataset
  const ImportanceMatrix m = ImportanceMatrix::parse(bytes);
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.dataset, "");
}

TEST(Imatrix, CollectorStoresMeanSquareTimesCalls) {
  ImatrixCollector c;
  std::vector<float> x(16 * 2);
  for (int t = 0; t < 16; ++t) {
    x[t * 2] = 1.f;
    x[t * 2 + 1] = static_cast<float>(t);
  }
  c.observe("blk.0.ffn_up.weight", x.data(), 16, 2);
  c.observe("blk.0.ffn_up.weight", x.data(), 16, 2);
  c.observe("blk.0.ffn_up.weight", x.data(), 8, 2);  // fewer than 16 rows: ignored
  c.observe("output.weight", x.data(), 16, 2);       // not collected by default
  c.observe("token_embd.weight", x.data(), 16, 2);   // not a blk.* weight
  const ImportanceMatrix m = c.result("t.txt");
  ASSERT_EQ(m.size(), 1u);
  const auto* e = m.find("blk.0.ffn_up.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->ncall, 2);
  double mean_sq = 0;
  for (int t = 0; t < 16; ++t) mean_sq += t * t;
  mean_sq /= 16;
  EXPECT_FLOAT_EQ(e->values[0], 2.f);
  EXPECT_FLOAT_EQ(e->values[1], static_cast<float>(mean_sq) * 2);
  EXPECT_FLOAT_EQ(ImportanceMatrix::importance(*e)[1], static_cast<float>(mean_sq));
  EXPECT_EQ(m.last_call, 2);
  const auto round = ImportanceMatrix::parse(m.to_bytes());
  EXPECT_EQ(round.to_bytes(), m.to_bytes());

  ImatrixCollector with_output(true);
  with_output.observe("output.weight", x.data(), 16, 2);
  EXPECT_NE(with_output.result().find("output.weight"), nullptr);
  EXPECT_THROW(c.observe("blk.0.ffn_up.weight", x.data(), 16, 1), Error);
}

TEST(Imatrix, HostileFilesGiveClearErrors) {
  EXPECT_NE(error_of({}).find("truncated"), std::string::npos);
  {
    std::vector<uint8_t> b;
    put(b, 0);
    EXPECT_NE(error_of(b).find("entry count 0"), std::string::npos);
  }
  {
    std::vector<uint8_t> b;
    put(b, 1 << 30);
    EXPECT_NE(error_of(b).find("cannot fit"), std::string::npos);
  }
  {
    auto b = valid_file();
    std::memset(b.data() + 4, 0xff, 4);  // name length -1
    EXPECT_NE(error_of(b).find("name length -1"), std::string::npos);
  }
  {
    auto b = valid_file();
    b[8] = 0;  // NUL inside the name
    EXPECT_NE(error_of(b).find("NUL"), std::string::npos);
  }
  {
    auto b = valid_file();
    const size_t ncall_at = 8 + 19;
    const int32_t neg = -3;
    std::memcpy(b.data() + ncall_at, &neg, 4);
    EXPECT_NE(error_of(b).find("ncall -3"), std::string::npos);
  }
  {
    auto b = valid_file();
    const int32_t huge = 1 << 28;
    std::memcpy(b.data() + 8 + 19 + 4, &huge, 4);  // nval
    EXPECT_NE(error_of(b).find("values claimed"), std::string::npos);
  }
  for (float bad :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), -1.f}) {
    auto b = valid_file();
    std::memcpy(b.data() + 8 + 19 + 8, &bad, 4);  // first value
    EXPECT_NE(error_of(b).find("value 0"), std::string::npos);
  }
  {
    auto b = valid_file();
    b.resize(b.size() - 3);  // cut inside the dataset name
    EXPECT_NE(error_of(b).find("dataset name length"), std::string::npos);
  }
  {
    auto b = valid_file();
    b.push_back(0);
    EXPECT_NE(error_of(b).find("unexpected bytes"), std::string::npos);
  }
  {
    auto b = valid_file();
    b.resize(b.size() - 14);  // 2 bytes of the trailer left
    EXPECT_NE(error_of(b).find("truncated"), std::string::npos);
  }
  {
    std::vector<uint8_t> b;
    put(b, 2);
    for (int i = 0; i < 2; ++i) {
      put_s(b, "blk.0.x.weight");
      put(b, 1);
      put(b, 1);
      put_f(b, 1.f);
    }
    EXPECT_NE(error_of(b).find("duplicate"), std::string::npos);
  }
  {
    auto b = valid_file();
    b.resize(20);  // truncated inside the name
    EXPECT_NE(error_of(b).find("truncated"), std::string::npos);
  }
}

TEST(Imatrix, MissingFileIsNotFound) {
  try {
    ImportanceMatrix::read("/nonexistent/imatrix.dat");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::not_found);
  }
}

TEST(Imatrix, EmptyMatrixIsNotWritten) {
  EXPECT_THROW(ImportanceMatrix{}.to_bytes(), Error);
}

}  // namespace
}  // namespace thinkmesh
