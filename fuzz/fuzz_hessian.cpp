// libFuzzer target: the Hessian file reader (HessianSet::parse, a GGUF with thinkmesh.hessian.*
// metadata) on arbitrary bytes. Every input must either parse into square, finite entries with
// non-negative diagonals whose serialisation parses back to the same bytes, or throw
// thinkmesh::Error; nothing else is acceptable.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "thinkmesh/error.h"
#include "thinkmesh/imatrix.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace thinkmesh;
  try {
    const auto set = HessianSet::parse(std::span<const uint8_t>(data, size), "<fuzz>");
    for (const auto& e : set.entries()) {
      if (e.n < 1 || e.n_tokens < 1 || e.weights.empty()) std::abort();
      if (e.mean.size() != static_cast<size_t>(e.n * e.n)) std::abort();
      for (float v : e.mean)
        if (!std::isfinite(v)) std::abort();
      for (const auto& w : e.weights)
        if (set.find(w) != &e) std::abort();
    }
    const auto bytes = set.to_bytes();
    if (HessianSet::parse(bytes).to_bytes() != bytes) std::abort();
  } catch (const Error&) {
  }
  return 0;
}
