// libFuzzer target: the safetensors reader on arbitrary bytes. Every input must either parse
// into tensors whose data lie inside the input and whose byte counts match shape × dtype, or
// throw thinkmesh::Error; nothing else (crash, sanitizer report, other exception) is
// acceptable.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "convert/safetensors.h"
#include "thinkmesh/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace thinkmesh;
  try {
    const auto file =
        convert::SafetensorsFile::parse(std::span<const uint8_t>(data, size), "<fuzz>");
    volatile uint64_t sink = 0;
    for (const auto& t : file.tensors()) {
      if (t.data.data() < data || t.data.data() + t.data.size() > data + size) std::abort();
      if (t.data.size() != static_cast<uint64_t>(t.n_elements()) * convert::element_size(t.dtype)) {
        std::abort();
      }
      if (!t.data.empty()) sink = sink + t.data[0] + t.data[t.data.size() - 1];
      if (file.find(t.name) != &t) std::abort();
    }
    for (const auto& [k, v] : file.metadata()) sink = sink + k.size() + v.size();
  } catch (const Error&) {
    // A clear error is the expected outcome for most inputs.
  }
  return 0;
}
