// The --like table: one row per public model, values from its config.json (docs/synth.md).
#include <cmath>
#include <string>

#include <fmt/core.h>

#include "thinkmesh/error.h"
#include "thinkmesh/synth.h"

namespace thinkmesh::synth {
namespace {

// clang-format off
constexpr ModelShape kShapes[] = {
  // like            source                                   arch     vocab   embd  lay head kv  ff    ctx     theta     eps    tied  qkvb  hd_cfg llama3
  {"qwen2.5-0.5b",  "Qwen/Qwen2.5-0.5B config.json",          "qwen2", 151936,  896, 24, 14,  2, 4864,  32768, 1000000.f, 1e-6f,  true,  true, false, 0.f},
  {"llama-1b",      "meta-llama/Llama-3.2-1B config.json",    "llama", 128256, 2048, 16, 32,  8, 8192, 131072,  500000.f, 1e-5f,  true, false,  true, 32.f},
  {"smollm2-135m",  "HuggingFaceTB/SmolLM2-135M config.json", "llama",  49152,  576, 30,  9,  3, 1536,   8192,  100000.f, 1e-5f,  true, false, false, 0.f},
  {"stories15m",    "karpathy/tinyllamas stories15M.pt args", "llama",  32000,  288,  6,  6,  6,  768,    256,   10000.f, 1e-5f, false, false, false, 0.f},
  {"minilm-l6",     "sentence-transformers/all-MiniLM-L6-v2", "bert",   30522,  384,  6, 12, 12, 1536,    512,       0.f, 1e-12f, false,  true, false, 0.f},
};
// clang-format on

}  // namespace

std::span<const ModelShape> model_shapes() {
  return kShapes;
}

const ModelShape& find_model_shape(std::string_view like) {
  std::string names;
  for (const ModelShape& s : kShapes) {
    if (s.like == like) return s;
    names += fmt::format("{}{}", names.empty() ? "" : ", ", s.like);
  }
  throw Error(ErrorKind::invalid_argument,
              fmt::format("synth: unknown model '{}'; known: {}", like, names));
}

std::string size_label(uint64_t n_params) {
  // gguf-py's model_weight_count_rounded_notation(count, min_digits=2).
  const double count = static_cast<double>(n_params);
  double scaled = count * 1e-3;
  const char* suffix = "K";
  if (count > 1e12) {
    scaled = count * 1e-12, suffix = "T";
  } else if (count > 1e9) {
    scaled = count * 1e-9, suffix = "B";
  } else if (count > 1e6) {
    scaled = count * 1e-6, suffix = "M";
  }
  const int digits = static_cast<int>(std::to_string(std::llround(scaled)).size());
  const int decimals = std::max(0, 2 - digits);
  return fmt::format("{:.{}f}{}", scaled, decimals, suffix);
}

}  // namespace thinkmesh::synth
