// libFuzzer target: the GGUF reader on arbitrary bytes. Every input must either parse into a
// File whose tensors all lie inside the input, or throw thinkmesh::Error; nothing else
// (crash, sanitizer report, other exception, huge allocation) is acceptable.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace thinkmesh;
  try {
    const gguf::File file = gguf::File::parse(std::span<const uint8_t>(data, size), "<fuzz>");
    volatile uint64_t sink = 0;
    for (const auto& kv : file.metadata()) {
      sink = sink + kv.value.to_display_string().size();
      try {
        sink = sink + static_cast<uint64_t>(kv.value.as_int());
      } catch (const Error&) {
      }
    }
    sink = sink + file.get_int_or("general.alignment", 0);
    sink = sink + file.get_string_or("general.architecture", "").size();
    for (const auto& t : file.tensors()) {
      const auto bytes = file.tensor_data(t);
      if (bytes.data() < data || bytes.data() + bytes.size() > data + size) std::abort();
      if (!bytes.empty()) sink = sink + bytes[0] + bytes[bytes.size() - 1];
      sink = sink + static_cast<uint64_t>(t.n_elements());
    }
  } catch (const Error&) {
    // A clear error is the expected outcome for most inputs.
  }
  return 0;
}
