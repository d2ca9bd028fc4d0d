// Loops a tile kernel over a block of rows and tokens. A kernel type K provides
//   static constexpr int kRows, kTokens;                  // the full tile
//   template <int R, int T> static void tile(const GemmProblem&, int64_t r, int64_t t);
// computing y for rows [r, r+R) and tokens [t, t+T). Tokens go in groups of kTokens (the
// activations of a group stay in L1 while every row of the range passes), rows in groups of
// kRows; the ragged ends use the smaller instantiations.
//
// Everything here is in an anonymous namespace on purpose: this header is included by
// translation units compiled for different instruction sets, and a shared inline function
// could otherwise be merged by the linker into one ISA's copy.
#pragma once

#include <cstdint>

#include "kernels/gemm.h"

namespace thinkmesh::kernels {
namespace {

template <class K, int T>
void tile_rows(const GemmProblem& p, int64_t r0, int64_t r1, int64_t t) {
  int64_t r = r0;
  for (; r + K::kRows <= r1; r += K::kRows) K::template tile<K::kRows, T>(p, r, t);
  const int64_t left = r1 - r;
  if constexpr (K::kRows > 1) {
    if (left == 1) K::template tile<1, T>(p, r, t);
  }
  if constexpr (K::kRows > 2) {
    if (left == 2) K::template tile<2, T>(p, r, t);
  }
  if constexpr (K::kRows > 3) {
    if (left == 3) K::template tile<3, T>(p, r, t);
  }
  static_assert(K::kRows <= 4, "tile_rows handles remainders of up to 3 rows");
}

template <class K>
void run_tiles(const GemmProblem& p, int64_t r0, int64_t r1) {
  int64_t t = 0;
  for (; t + K::kTokens <= p.n_tokens; t += K::kTokens) tile_rows<K, K::kTokens>(p, r0, r1, t);
  const int64_t left = p.n_tokens - t;
  if constexpr (K::kTokens > 1) {
    if (left == 1) tile_rows<K, 1>(p, r0, r1, t);
  }
  if constexpr (K::kTokens > 2) {
    if (left == 2) tile_rows<K, 2>(p, r0, r1, t);
  }
  if constexpr (K::kTokens > 3) {
    if (left == 3) tile_rows<K, 3>(p, r0, r1, t);
  }
  static_assert(K::kTokens <= 4, "run_tiles handles remainders of up to 3 tokens");
}

}  // namespace
}  // namespace thinkmesh::kernels
