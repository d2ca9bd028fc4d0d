// Matrix-kernel throughput (GMAC/s) at the active kernel level: every SIMD weight type on the
// shapes of a small decoder's projections (768 x 256 and 256 x 768), for one token (decode)
// and 128 tokens (a prompt), with the file's layout and, where a level has one, the repacked
// layout (Q8_0, Q4_0, Q4_1, Q5_1, Q4_K, Q6_K), plus the 32000 x 256 Q6_K output matrix of
// tiny-llama-spm-Q4_K_M. Single thread: what one core gets from each kernel.
//   build/release/bench/bench_gemm [--benchmark_filter=Q8_0]
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/repack.h"
#include "kernels/vec_dot.h"
#include "thinkmesh/tensor_type.h"

namespace {

using namespace thinkmesh;
using namespace thinkmesh::kernels;

// args: type, rows, n, tokens, repacked
void BM_Gemm(benchmark::State& state) {
  const auto type = static_cast<TensorType>(state.range(0));
  const int64_t rows = state.range(1), n = state.range(2), tokens = state.range(3);
  const bool packed = state.range(4) != 0;
  const Isa isa = active_isa();
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> wf(static_cast<size_t>(rows * n)), xf(static_cast<size_t>(tokens * n));
  for (float& v : wf) v = normal(rng);
  for (float& v : xf) v = normal(rng);
  const size_t wrow = row_bytes(type, n);
  std::vector<uint8_t> w(wrow * static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r)
    quantize_row_reference(type, &wf[static_cast<size_t>(r * n)], &w[wrow * r], n);
  const TensorType act = activation_type(type);
  const size_t arow = row_bytes(act, n);
  std::vector<uint8_t> a(arow * static_cast<size_t>(tokens));
  for (int64_t t = 0; t < tokens; ++t)
    quantize_activations(act, &xf[static_cast<size_t>(t * n)], &a[arow * t], n);
  std::vector<float> y(static_cast<size_t>(rows * tokens));

  GemmProblem p;
  p.w_type = type;
  p.w = w.data();
  p.w_stride = wrow;
  p.n = n;
  p.act = a.data();
  p.act_stride = arow;
  p.n_tokens = tokens;
  p.y = y.data();
  p.y_stride = rows;
  GemmKernel kernel = select_gemm(isa, type);
  std::vector<uint8_t> repacked;
  if (packed) {
    if (!can_repack(isa, type, rows, n)) {
      state.SkipWithError("no repacked kernel at this level");
      return;
    }
    repacked.resize(repacked_bytes(type, rows, n));
    repack(type, w.data(), wrow, rows, n, repacked.data());
    p.w = repacked.data();
    kernel = find_repacked_gemm(isa, type);
  }
  for (auto _ : state) {
    kernel(p, 0, rows);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(rows * n * tokens) * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(name(type)) + (packed ? "x8 " : " ") + std::string(isa_name(isa)));
}

void Shapes(benchmark::internal::Benchmark* b) {
  for (TensorType t :
       {TensorType::Q8_0, TensorType::Q4_0, TensorType::Q5_0, TensorType::Q4_1, TensorType::Q5_1,
        TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::F16}) {
    for (int64_t tokens : {1, 128}) {
      for (int64_t packed : {0, 1}) {
        if (packed && t != TensorType::Q8_0 && t != TensorType::Q4_0 && t != TensorType::Q4_1 &&
            t != TensorType::Q5_1 && t != TensorType::Q4_K && t != TensorType::Q6_K)
          continue;
        b->Args({static_cast<int64_t>(t), 768, 256, tokens, packed});
        b->Args({static_cast<int64_t>(t), 256, 768, tokens, packed});
      }
    }
  }
  // The output matrix of tiny-llama-spm-Q4_K_M (32000 x 256, Q6_K): it dominates decode.
  for (int64_t tokens : {1, 128})
    for (int64_t packed : {0, 1})
      b->Args({static_cast<int64_t>(TensorType::Q6_K), 32000, 256, tokens, packed});
}

BENCHMARK(BM_Gemm)->Apply(Shapes);

}  // namespace

BENCHMARK_MAIN();
