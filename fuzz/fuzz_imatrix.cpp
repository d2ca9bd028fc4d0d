// libFuzzer target: the imatrix.dat reader on arbitrary bytes. Every input must either parse
// into entries whose values are finite and non-negative and whose serialisation parses back
// to the same matrix, or throw thinkmesh::Error; nothing else is acceptable.
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
    const auto m = ImportanceMatrix::parse(std::span<const uint8_t>(data, size), "<fuzz>");
    for (const auto& [name, e] : m.entries()) {
      if (name.empty() || e.values.empty() || e.ncall < 0) std::abort();
      for (float v : ImportanceMatrix::importance(e))
        if (!std::isfinite(v) || v < 0) std::abort();
    }
    const auto bytes = m.to_bytes();
    if (ImportanceMatrix::parse(bytes).to_bytes() != bytes) std::abort();
  } catch (const Error&) {
  }
  return 0;
}
