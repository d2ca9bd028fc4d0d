// The read kernels and the timing of measure_read_bandwidth. The AVX2 / AVX-512 functions are
// compiled for those targets one by one (target attributes), so the default build runs anywhere
// and picks the widest one __builtin_cpu_supports finds.
#include "bench_support/membw.h"

#include <immintrin.h>
#include <time.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "thinkmesh/error.h"

namespace thinkmesh::bench {
namespace {

// 64 bytes (one cache line) per step; four independent accumulators keep several loads in
// flight.
uint64_t sum_scalar(const uint64_t* p, size_t words) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (size_t i = 0; i < words; i += 8) {
    a += p[i] + p[i + 4];
    b += p[i + 1] + p[i + 5];
    c += p[i + 2] + p[i + 6];
    d += p[i + 3] + p[i + 7];
  }
  return a + b + c + d;
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) uint64_t sum_avx2(const uint64_t* p, size_t words) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  size_t i = 0;
  for (; i + 16 <= words; i += 16) {  // 128 bytes per step
    a = _mm256_add_epi64(a, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    b = _mm256_add_epi64(b, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
    c = _mm256_add_epi64(c, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
    d = _mm256_add_epi64(d, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes),
                     _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d)));
  return lanes[0] + lanes[1] + lanes[2] + lanes[3] + sum_scalar(p + i, words - i);
}

__attribute__((target("avx512f"))) uint64_t sum_avx512(const uint64_t* p, size_t words) {
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  size_t i = 0;
  for (; i + 32 <= words; i += 32) {  // 256 bytes per step
    a = _mm512_add_epi64(a, _mm512_load_si512(p + i));
    b = _mm512_add_epi64(b, _mm512_load_si512(p + i + 8));
    c = _mm512_add_epi64(c, _mm512_load_si512(p + i + 16));
    d = _mm512_add_epi64(d, _mm512_load_si512(p + i + 24));
  }
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d)));
  uint64_t sum = 0;
  for (const uint64_t lane : lanes) sum += lane;
  return sum + sum_scalar(p + i, words - i);
}
#endif

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void print_header(std::FILE* out) {
  fmt::print(out, "| {:>7} | {:>10} | {:>6} | {:>6} | {:>12} | {:>10} | {:>14} |\n", "threads",
             "buffer", "kernel", "passes", "median GB/s", "best GB/s", "per CPU-s GB/s");
  fmt::print(out, "| {:->7} | {:->10} | {:->6} | {:->6} | {:->12} | {:->10} | {:->14} |\n", "", "",
             "", "", "", "", "");
}

void print_row(const BandwidthResult& r, std::FILE* out) {
  fmt::print(out, "| {:>7} | {:>6} MiB | {:>6} | {:>6} | {:>12.2f} | {:>10.2f} | {:>14.2f} |\n",
             r.threads, r.bytes >> 20, name(r.kernel), r.pass_gbs.size(), r.median_gbs, r.best_gbs,
             r.median_cpu_gbs);
  std::fflush(out);
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

}  // namespace

ReadKernel best_read_kernel() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return ReadKernel::avx512;
  if (__builtin_cpu_supports("avx2")) return ReadKernel::avx2;
#endif
  return ReadKernel::scalar;
}

std::string_view name(ReadKernel kernel) {
  switch (kernel) {
    case ReadKernel::avx512:
      return "avx512";
    case ReadKernel::avx2:
      return "avx2";
    case ReadKernel::scalar:
      return "scalar";
  }
  return "?";
}

uint64_t read_sum(ReadKernel kernel, const void* data, size_t bytes) {
  const auto* p = static_cast<const uint64_t*>(data);
  const size_t words = bytes / 8;
#if defined(__x86_64__)
  if (kernel == ReadKernel::avx512) return sum_avx512(p, words);
  if (kernel == ReadKernel::avx2) return sum_avx2(p, words);
#endif
  (void)kernel;
  return sum_scalar(p, words);
}

BandwidthResult measure_read_bandwidth(size_t bytes, int threads, int passes, ReadKernel kernel) {
  if (threads < 1 || passes < 1) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("membw: threads ({}) and passes ({}) must be >= 1", threads, passes));
  }
  const size_t share = bytes / static_cast<size_t>(threads) / 64 * 64;  // bytes per thread
  if (share < 4096) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("membw: {} bytes is too small for {} threads", bytes, threads));
  }
  BandwidthResult result;
  result.threads = threads;
  result.bytes = share * static_cast<size_t>(threads);
  result.kernel = kernel;
  std::unique_ptr<uint8_t, AlignedFree> buffer(
      static_cast<uint8_t*>(std::aligned_alloc(4096, result.bytes)));
  if (!buffer) {
    throw Error(ErrorKind::io, fmt::format("membw: cannot allocate {} bytes", result.bytes));
  }

  // Per pass: all threads meet at a barrier, each notes its own start and end (wall clock and
  // its CPU time), meet again. A pass lasts from the first start to the last end; the CPU-time
  // figure uses the longest thread CPU time of the pass, which time slicing by other processes
  // does not stretch.
  std::barrier sync(threads);
  const int total_passes = passes + 1;  // the first one untimed (warm-up)
  struct Timing {
    std::chrono::steady_clock::time_point start, end;
    double cpu_seconds = 0;
  };
  std::vector<std::vector<Timing>> timings(static_cast<size_t>(threads),
                                           std::vector<Timing>(static_cast<size_t>(total_passes)));
  std::vector<uint64_t> sums(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      uint8_t* mine = buffer.get() + static_cast<size_t>(t) * share;
      std::memset(mine, t + 1, share);  // first touch: pages local to this thread
      for (int p = 0; p < total_passes; ++p) {
        sync.arrive_and_wait();
        Timing& timing = timings[static_cast<size_t>(t)][static_cast<size_t>(p)];
        const double cpu_start = thread_cpu_seconds();
        timing.start = std::chrono::steady_clock::now();
        sums[static_cast<size_t>(t)] += read_sum(kernel, mine, share);
        timing.end = std::chrono::steady_clock::now();
        timing.cpu_seconds = thread_cpu_seconds() - cpu_start;
        sync.arrive_and_wait();
      }
    });
  }
  for (auto& th : pool) th.join();
  // Keep the sums observable so the reads cannot be optimised away.
  uint64_t total = 0;
  for (const uint64_t s : sums) total += s;
  volatile uint64_t sink = total;
  (void)sink;
  for (size_t p = 1; p < static_cast<size_t>(total_passes); ++p) {
    auto start = timings[0][p].start, end = timings[0][p].end;
    double cpu = 0;
    for (const auto& per_thread : timings) {
      start = std::min(start, per_thread[p].start);
      end = std::max(end, per_thread[p].end);
      cpu = std::max(cpu, per_thread[p].cpu_seconds);
    }
    const double seconds = std::chrono::duration<double>(end - start).count();
    result.pass_gbs.push_back(static_cast<double>(result.bytes) / seconds / 1e9);
    result.pass_cpu_gbs.push_back(static_cast<double>(result.bytes) / (cpu > 0 ? cpu : seconds) /
                                  1e9);
  }
  result.median_cpu_gbs = median(result.pass_cpu_gbs);
  result.median_gbs = median(result.pass_gbs);
  result.best_gbs = *std::max_element(result.pass_gbs.begin(), result.pass_gbs.end());
  return result;
}

double read_bandwidth_gbs(size_t bytes, int threads, int passes) {
  return measure_read_bandwidth(bytes, threads, passes).median_gbs;
}

void print_bandwidth_table(const std::vector<BandwidthResult>& results, std::FILE* out) {
  print_header(out);
  for (const BandwidthResult& r : results) print_row(r, out);
}

std::string bandwidth_json(const std::vector<BandwidthResult>& results) {
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const BandwidthResult& r : results) {
    rows.push_back({{"test", "membw"},
                    {"threads", r.threads},
                    {"buffer_bytes", r.bytes},
                    {"kernel", name(r.kernel)},
                    {"passes", r.pass_gbs.size()},
                    {"median_gbs", r.median_gbs},
                    {"best_gbs", r.best_gbs},
                    {"median_cpu_gbs", r.median_cpu_gbs},
                    {"pass_gbs", r.pass_gbs},
                    {"pass_cpu_gbs", r.pass_cpu_gbs}});
  }
  return rows.dump(2);
}

void run_membw_bench(const std::vector<int32_t>& thread_counts, int64_t size_mib, int passes,
                     bool json) {
  if (size_mib < 1) throw Error(ErrorKind::invalid_argument, "--size-mib must be >= 1");
  const size_t bytes = static_cast<size_t>(size_mib) << 20;
  std::vector<BandwidthResult> results;
  for (const int32_t threads : thread_counts) {
    results.push_back(measure_read_bandwidth(bytes, threads, passes));
    if (!json) {
      if (results.size() == 1) print_header(stdout);
      print_row(results.back(), stdout);
    }
  }
  if (json) fmt::print("{}\n", bandwidth_json(results));
}

}  // namespace thinkmesh::bench
