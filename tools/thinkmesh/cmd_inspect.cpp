// `thinkmesh inspect`: what a GGUF file holds, read from its header only (the file is
// memory-mapped and validated; no tensor data is touched).
//
//   thinkmesh inspect model.gguf          version, alignment, metadata, a tensor table
//   thinkmesh inspect model.gguf --json   the same as one JSON object
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <type_traits>
#include <variant>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "thinkmesh/gguf.h"

namespace thinkmesh::cli {
namespace {

constexpr size_t kArrayItemsShown = 8;

struct InspectArgs {
  std::string file;
  bool json = false;
};

// general.file_type names, by llama.cpp's llama_ftype value (gaps are ids llama.cpp removed).
constexpr std::array<const char*, 38> kFileTypeNames = {
    "ALL_F32", "F16",    "Q4_0",  "Q4_1",    nullptr,  nullptr,  nullptr,  "Q8_0",
    "Q5_0",    "Q5_1",   "Q2_K",  "Q3_K_S",  "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M",
    "Q5_K_S",  "Q5_K_M", "Q6_K",  "IQ2_XXS", "IQ2_XS", "Q2_K_S", "IQ3_XS", "IQ3_XXS",
    "IQ1_S",   "IQ4_NL", "IQ3_S", "IQ3_M",   "IQ2_S",  "IQ2_M",  "IQ4_XS", "IQ1_M",
    "BF16",    nullptr,  nullptr, nullptr,   "TQ1_0",  "TQ2_0"};

// What general.file_type says the file mostly holds, as JSON {"id", "name"}; null when the key
// is absent. A value that is not a small integer is shown, not thrown: inspect must still work.
nlohmann::ordered_json file_type(const gguf::File& file) {
  const gguf::Value* value = file.find("general.file_type");
  if (value == nullptr) return nullptr;
  // Integers only; a u64 above INT64_MAX is as meaningless as a string here.
  const bool usable = value->is_integer() && !(value->type() == gguf::ValueType::u64 &&
                                               std::get<uint64_t>(value->storage()) > INT64_MAX);
  if (!usable) {
    return {{"id", nullptr},
            {"name", "invalid (" + std::string(gguf::to_string(value->type())) + ")"}};
  }
  const int64_t id = value->as_int();
  const bool known = id >= 0 && static_cast<uint64_t>(id) < kFileTypeNames.size() &&
                     kFileTypeNames[static_cast<size_t>(id)] != nullptr;
  return {{"id", id},
          {"name", known ? std::string(kFileTypeNames[static_cast<size_t>(id)])
                         : "unknown (" + std::to_string(id) + ")"}};
}

// Total elements over all tensors: the parameter count llama.cpp's gguf-dump reports.
uint64_t n_params(const gguf::File& file) {
  uint64_t total = 0;
  for (const auto& t : file.tensors()) total += static_cast<uint64_t>(t.n_elements());
  return total;
}

// 260K, 1.10M, 7.24B: the short form next to the exact count.
std::string short_count(uint64_t n) {
  if (n >= 1'000'000'000) return fmt::format("{:.2f}B", static_cast<double>(n) / 1e9);
  if (n >= 1'000'000) return fmt::format("{:.2f}M", static_cast<double>(n) / 1e6);
  if (n >= 1'000) return fmt::format("{:.1f}K", static_cast<double>(n) / 1e3);
  return std::to_string(n);
}

std::string shape_string(const std::vector<int64_t>& ne) {
  std::string out = "[";
  for (size_t i = 0; i < ne.size(); ++i) out += (i ? ", " : "") + std::to_string(ne[i]);
  return out + "]";
}

// A value as JSON: scalars as themselves; an array as its element type, length and first items.
nlohmann::ordered_json value_json(const gguf::Value& value) {
  return std::visit(
      [&](const auto& v) -> nlohmann::ordered_json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, gguf::Value::Array>) {
          nlohmann::ordered_json first = nlohmann::ordered_json::array();
          const size_t shown = std::min(v.items.size(), kArrayItemsShown);
          for (size_t i = 0; i < shown; ++i) first.push_back(value_json(v.items[i]));
          return {{"type", "array"},
                  {"element_type", gguf::to_string(v.element_type)},
                  {"length", v.items.size()},
                  {"first", std::move(first)}};
        } else {
          return v;
        }
      },
      value.storage());
}

void print_json(const gguf::File& file) {
  nlohmann::ordered_json out;
  out["file"] = file.path();
  out["version"] = file.version();
  out["alignment"] = file.alignment();
  out["data_offset"] = file.data_offset();
  out["file_size"] = file.file_size();
  out["n_params"] = n_params(file);
  out["file_type"] = file_type(file);
  auto& metadata = out["metadata"] = nlohmann::ordered_json::object();
  for (const auto& kv : file.metadata()) {
    if (kv.value.is_array()) {
      metadata[kv.key] = value_json(kv.value);
    } else {
      metadata[kv.key] = {{"type", gguf::to_string(kv.value.type())},
                          {"value", value_json(kv.value)}};
    }
  }
  auto& tensors = out["tensors"] = nlohmann::ordered_json::array();
  for (const auto& t : file.tensors()) {
    tensors.push_back({{"name", t.name},
                       {"type", name(t.type)},
                       {"ne", t.ne},
                       {"offset", file.data_offset() + t.offset},
                       {"nbytes", t.nbytes}});
  }
  // Metadata strings need not be valid UTF-8 (byte tokens); print U+FFFD for bad bytes.
  fmt::print("{}\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
}

void print_text(const gguf::File& file) {
  fmt::print("file:        {}\n", file.path());
  fmt::print("version:     {}\n", file.version());
  fmt::print("alignment:   {}\n", file.alignment());
  fmt::print("data offset: {}\n", file.data_offset());
  fmt::print("file size:   {}\n", file.file_size());
  const uint64_t params = n_params(file);
  fmt::print("parameters:  {} ({})\n", params, short_count(params));
  const auto type = file_type(file);
  fmt::print("file type:   {}\n", type.is_null() ? std::string("(general.file_type absent)")
                                                 : type["name"].get<std::string>());

  fmt::print("\nmetadata ({} keys):\n", file.metadata().size());
  size_t key_width = 0;
  for (const auto& kv : file.metadata()) key_width = std::max(key_width, kv.key.size());
  for (const auto& kv : file.metadata()) {
    fmt::print("  {:<{}}  {:<7}  {}\n", kv.key, key_width, gguf::to_string(kv.value.type()),
               kv.value.to_display_string(kArrayItemsShown));
  }

  fmt::print("\ntensors ({}):\n", file.tensors().size());
  size_t name_width = 4;
  for (const auto& t : file.tensors()) name_width = std::max(name_width, t.name.size());
  fmt::print("  {:<{}}  {:<7}  {:<24}  {:>12}  {:>12}\n", "name", name_width, "type", "ne", "bytes",
             "offset");
  for (const auto& t : file.tensors()) {
    fmt::print("  {:<{}}  {:<7}  {:<24}  {:>12}  {:>12}\n", t.name, name_width, name(t.type),
               shape_string(t.ne), t.nbytes, file.data_offset() + t.offset);
  }
}

}  // namespace

void register_inspect(CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* cmd = app.add_subcommand("inspect", "Show a GGUF file's version, metadata and tensors");
  cmd->add_option("file", args->file, "the GGUF file")->required();
  cmd->add_flag("--json", args->json,
                "print one JSON object (version, alignment, metadata, tensors)");
  cmd->callback([args] {
    const gguf::File file = gguf::File::open(args->file);
    if (args->json) {
      print_json(file);
    } else {
      print_text(file);
    }
  });
}

}  // namespace thinkmesh::cli
