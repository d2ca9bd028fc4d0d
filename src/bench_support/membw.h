// DRAM read bandwidth: how fast this machine streams a buffer far larger than its caches, the
// ceiling for decoding a model whose weights do not fit in cache (each token reads them all).
//
//   auto r = thinkmesh::bench::measure_read_bandwidth(size_t{2} << 30, /*threads=*/2, 5);
//   fmt::print("{:.1f} GB/s\n", r.median_gbs);
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace thinkmesh::bench {

// The widest loads this CPU has (checked at run time; the build stays portable).
enum class ReadKernel { avx512, avx2, scalar };
ReadKernel best_read_kernel();
std::string_view name(ReadKernel kernel);

// Reads `bytes` (a multiple of 64, `data` 64-byte aligned) with `kernel` and returns the 64-bit
// wrapping sum of its 64-bit words (the same for every kernel, so the loads cannot be dropped
// and tests can check them).
uint64_t read_sum(ReadKernel kernel, const void* data, size_t bytes);

struct BandwidthResult {
  int threads = 0;   // reading threads, each over its own share of the buffer
  size_t bytes = 0;  // buffer size
  ReadKernel kernel = ReadKernel::scalar;
  std::vector<double> pass_gbs;  // per timed pass: bytes / seconds / 1e9, wall clock from the
                                 // first thread's start to the last one's end
  double median_gbs = 0;
  double best_gbs = 0;
  // Per pass: bytes / (the longest thread CPU time of the pass) / 1e9. On a machine shared with
  // other processes the wall-clock figures include time the threads sat descheduled; this one
  // does not (it still shares the memory bus).
  std::vector<double> pass_cpu_gbs;
  double median_cpu_gbs = 0;
};

// Allocates `bytes` (rounded down to 64 × threads; each thread writes its own share first, so
// its pages are local), runs one untimed pass, then `passes` timed passes in which all threads
// start together; a pass lasts from the first thread's start to the last one's end.
// Error(invalid_argument) for threads < 1, passes < 1 or fewer than 4 KiB per thread; Error(io)
// when the allocation fails.
BandwidthResult measure_read_bandwidth(size_t bytes, int threads, int passes,
                                       ReadKernel kernel = best_read_kernel());
// The median GB/s of measure_read_bandwidth.
double read_bandwidth_gbs(size_t bytes, int threads, int passes);

// A markdown table (threads, buffer, kernel, passes, median and best GB/s, median per CPU
// second), one row per result.
void print_bandwidth_table(const std::vector<BandwidthResult>& results, std::FILE* out = stdout);
// The same as a JSON array.
std::string bandwidth_json(const std::vector<BandwidthResult>& results);

// `thinkmesh bench --membw`: measures every thread count and prints the table (or JSON).
void run_membw_bench(const std::vector<int32_t>& thread_counts, int64_t size_mib, int passes,
                     bool json);

}  // namespace thinkmesh::bench
