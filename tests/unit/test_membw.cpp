// The bandwidth probe: every read kernel this CPU has sums the buffer exactly as a plain loop
// does (so it reads all of it), and a small measurement gives one positive figure per pass.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <memory>

#include "bench_support/membw.h"
#include "thinkmesh/error.h"

namespace thinkmesh::bench {
namespace {

TEST(Membw, KernelsSumEveryWord) {
  const size_t bytes = (size_t{1} << 20) + 192;  // not a multiple of the widest step
  std::unique_ptr<uint64_t, decltype(&std::free)> buf(
      static_cast<uint64_t*>(std::aligned_alloc(64, bytes)), &std::free);
  uint64_t expected = 0;
  for (size_t i = 0; i < bytes / 8; ++i) {
    buf.get()[i] = i * 0x9E3779B97F4A7C15ull;
    expected += buf.get()[i];
  }
  std::vector<ReadKernel> kernels = {ReadKernel::scalar};
  const ReadKernel best = best_read_kernel();
  if (best == ReadKernel::avx2 || best == ReadKernel::avx512) kernels.push_back(ReadKernel::avx2);
  if (best == ReadKernel::avx512) kernels.push_back(ReadKernel::avx512);
  for (const ReadKernel k : kernels) EXPECT_EQ(read_sum(k, buf.get(), bytes), expected) << name(k);
}

TEST(Membw, SmallMeasurementGivesOneFigurePerPass) {
  const BandwidthResult r = measure_read_bandwidth(size_t{8} << 20, 2, 3);
  EXPECT_EQ(r.threads, 2);
  EXPECT_EQ(r.bytes, size_t{8} << 20);
  ASSERT_EQ(r.pass_gbs.size(), 3u);
  for (const double v : r.pass_gbs) EXPECT_TRUE(std::isfinite(v) && v > 0);
  ASSERT_EQ(r.pass_cpu_gbs.size(), 3u);
  for (const double v : r.pass_cpu_gbs) EXPECT_TRUE(std::isfinite(v) && v > 0);
  EXPECT_LE(r.median_gbs, r.best_gbs);
  EXPECT_NE(bandwidth_json({r}).find("\"median_gbs\""), std::string::npos);
}

TEST(Membw, BadArgumentsAreErrors) {
  EXPECT_THROW(measure_read_bandwidth(size_t{1} << 20, 0, 1), Error);
  EXPECT_THROW(measure_read_bandwidth(size_t{1} << 20, 1, 0), Error);
  EXPECT_THROW(measure_read_bandwidth(1024, 1, 1), Error);
}

}  // namespace
}  // namespace thinkmesh::bench
