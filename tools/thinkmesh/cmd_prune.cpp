// `thinkmesh prune`: remove the least important feed-forward neurons of every layer (a
// smaller model) and/or zero the smallest weights of every layer matrix (same shapes)
// (include/thinkmesh/prune.h, docs/pruning.md).
//
//   thinkmesh prune in.gguf out.gguf --ffn 0.3                    magnitude importance
//   thinkmesh prune in.gguf out.gguf --ffn 0.3 --calib text.txt   activation importance
//   thinkmesh prune in.gguf out.gguf --heads 2                    two query heads per layer
//   thinkmesh prune in.gguf out.gguf --unstructured 0.5
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "thinkmesh/error.h"
#include "thinkmesh/prune.h"

namespace thinkmesh::cli {
namespace {

struct PruneArgs {
  std::string in;
  std::string out;
  std::string calib;
  PruneOptions options;
  bool json = false;
};

void run_prune(PruneArgs args) {
  if (!args.calib.empty()) {
    std::ifstream in(args.calib, std::ios::binary);
    if (!in) throw Error(ErrorKind::not_found, fmt::format("{}: cannot open", args.calib));
    std::ostringstream s;
    s << in.rdbuf();
    args.options.calib_text = s.str();
    if (args.options.calib_text.empty())
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("{}: empty calibration text", args.calib));
  }
  const PruneReport r = prune_model(args.in, args.out, args.options);
  if (args.json) {
    nlohmann::ordered_json j;
    j["in"] = args.in;
    j["out"] = args.out;
    j["importance"] = r.calibrated ? "calibration" : "magnitude";
    j["calib_tokens"] = r.calib_tokens;
    auto& layers = j["layers"] = nlohmann::ordered_json::array();
    for (const auto& l : r.layers)
      layers.push_back({{"n_ff_before", l.n_ff_before},
                        {"n_ff_after", l.n_ff_after},
                        {"ffn_down_type", l.down_type}});
    if (r.n_head_before > 0) {
      j["n_head_before"] = r.n_head_before;
      j["n_head_after"] = r.n_head_after;
      j["attn_output_types"] = r.attn_output_types;
    }
    j["zeroed"] = r.zeroed;
    j["unstructured_total"] = r.unstructured_total;
    j["bytes_in"] = r.bytes_in;
    j["bytes_out"] = r.bytes_out;
    fmt::print("{}\n", j.dump(1));
    return;
  }
  if (!r.layers.empty()) {
    fmt::print("FFN importance: {}{}\n", r.calibrated ? "calibration" : "magnitude",
               r.calibrated ? fmt::format(" ({} tokens)", r.calib_tokens) : "");
    fmt::print("layer  n_ff  kept  ffn_down\n");
    for (size_t i = 0; i < r.layers.size(); ++i) {
      const auto& l = r.layers[i];
      fmt::print("{:5}  {:4}  {:4}  {}\n", i, l.n_ff_before, l.n_ff_after, l.down_type);
    }
  }
  if (r.n_head_before > 0) {
    fmt::print("attention heads per layer: {} -> {} (attn_output written as {})\n", r.n_head_before,
               r.n_head_after, r.attn_output_types.empty() ? "" : r.attn_output_types.front());
  }
  if (r.unstructured_total > 0) {
    fmt::print("zeroed {} of {} weights ({:.2f}%)\n", r.zeroed, r.unstructured_total,
               100.0 * static_cast<double>(r.zeroed) / static_cast<double>(r.unstructured_total));
  }
  fmt::print("{}: {} bytes -> {}: {} bytes ({:.1f}%)\n", args.in, r.bytes_in, args.out, r.bytes_out,
             100.0 * static_cast<double>(r.bytes_out) / static_cast<double>(r.bytes_in));
}

}  // namespace

void register_prune(CLI::App& app) {
  auto args = std::make_shared<PruneArgs>();
  CLI::App* cmd =
      app.add_subcommand("prune", "Remove feed-forward neurons or zero the smallest weights");
  cmd->add_option("input", args->in, "GGUF model to prune")->required();
  cmd->add_option("output", args->out, "GGUF file to write")->required();
  cmd->add_option("--ffn", args->options.ffn_fraction,
                  "fraction of each layer's FFN neurons to remove, e.g. 0.3");
  cmd->add_option("--heads", args->options.heads,
                  "query heads to remove per layer (whole KV groups: a multiple of the GQA group)");
  cmd->add_option("--unstructured", args->options.unstructured,
                  "fraction of each layer matrix's smallest-magnitude weights to zero");
  cmd->add_option("--calib", args->calib,
                  "calibration text: rank neurons by mean |activation| x ||down column||");
  cmd->add_option("--calib-ctx", args->options.calib_ctx, "tokens per calibration chunk (512)");
  cmd->add_option("--calib-chunks", args->options.calib_chunks,
                  "calibration chunks to decode (default: all)");
  cmd->add_option("--multiple", args->options.multiple,
                  "round kept widths to a multiple of N (default: ffn_down's block size)");
  cmd->add_option("-t,--threads", args->options.n_threads, "threads (default: all)");
  cmd->add_flag("--json", args->json, "print the report as one JSON object");
  cmd->callback([args] { run_prune(*args); });
}

}  // namespace thinkmesh::cli
