// `thinkmesh inspect`: what a GGUF file holds, read from its header only (the file is
// memory-mapped and validated; no tensor data is touched).
//
//   thinkmesh inspect model.gguf          version, alignment, metadata, a tensor table
//   thinkmesh inspect model.gguf --json   the same as one JSON object
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <type_traits>

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
  fmt::print("  {:<{}}  {:<7}  {:<24}  {:>12}  {:>12}\n", "name", name_width, "type",
             "ne", "bytes", "offset");
  for (const auto& t : file.tensors()) {
    fmt::print("  {:<{}}  {:<7}  {:<24}  {:>12}  {:>12}\n", t.name, name_width, name(t.type),
               shape_string(t.ne), t.nbytes, file.data_offset() + t.offset);
  }
}

}  // namespace

void register_inspect(CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* cmd =
      app.add_subcommand("inspect", "Show a GGUF file's version, metadata and tensors");
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
