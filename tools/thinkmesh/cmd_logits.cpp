// `thinkmesh logits`: raw logits of every prompt position, to check numerics against a
// reference implementation.
//
//   thinkmesh logits -m model.gguf --ids 1,15043 --out logits.f32
//
// Writes little-endian float32 [n_pos][n_vocab], all positions decoded as one batch.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "commands.h"
#include "thinkmesh/context.h"
#include "thinkmesh/error.h"
#include "thinkmesh/model.h"

namespace thinkmesh::cli {
namespace {

struct LogitsArgs {
  std::string model;
  std::string ids;
  std::string out;
  int32_t threads = 0;
  int32_t ctx = 0;
  std::string kv = "f16";
};

std::vector<TokenId> parse_ids(const std::string& text) {
  std::vector<TokenId> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = text.find(',', pos);
    const std::string item =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    try {
      size_t used = 0;
      const long v = std::stol(item, &used);
      if (used != item.size()) throw std::invalid_argument(item);
      ids.push_back(static_cast<TokenId>(v));
    } catch (const std::exception&) {
      throw Error(ErrorKind::invalid_argument, fmt::format("--ids: '{}' is not an integer", item));
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return ids;
}

void run_logits(const LogitsArgs& args) {
  const std::vector<TokenId> ids = parse_ids(args.ids);
  if (ids.empty()) throw Error(ErrorKind::invalid_argument, "--ids: no token ids");
  ModelOptions mo;
  mo.load_tokenizer = false;
  const auto model = Model::load(args.model, mo);
  ContextOptions co;
  co.n_threads = args.threads;
  co.n_ctx = args.ctx > 0 ? args.ctx : std::max<int32_t>(static_cast<int32_t>(ids.size()), 512);
  co.n_batch = static_cast<int32_t>(ids.size());
  if (args.kv == "f32") {
    co.kv_type = KvType::f32;
  } else if (args.kv != "f16") {
    throw Error(ErrorKind::invalid_argument, fmt::format("--kv: '{}' is not f16 or f32", args.kv));
  }
  Context ctx(model, co);
  Batch batch;
  for (size_t i = 0; i < ids.size(); ++i) batch.add(ids[i], static_cast<int32_t>(i), 0, true);
  ctx.decode(batch);
  std::ofstream out(args.out, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(ErrorKind::io, fmt::format("{}: cannot write", args.out));
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto row = ctx.logits(static_cast<int32_t>(i));
    out.write(reinterpret_cast<const char*>(row.data()),
              static_cast<std::streamsize>(row.size_bytes()));
  }
  if (!out) throw Error(ErrorKind::io, fmt::format("{}: write failed", args.out));
  fmt::print(stderr, "wrote {} x {} logits to {}\n", ids.size(), model->info().n_vocab, args.out);
}

}  // namespace

void register_logits(CLI::App& app) {
  auto args = std::make_shared<LogitsArgs>();
  CLI::App* cmd = app.add_subcommand("logits", "Write raw float32 logits of every prompt position");
  cmd->add_option("-m,--model", args->model, "GGUF model")->required();
  cmd->add_option("--ids", args->ids, "comma-separated token ids")->required();
  cmd->add_option("--out", args->out, "output file: little-endian float32 [n_pos][n_vocab]")
      ->required();
  cmd->add_option("-t,--threads", args->threads, "threads (default: all)");
  cmd->add_option("--ctx", args->ctx, "context size (default: max(512, n_pos))");
  cmd->add_option("--kv", args->kv, "KV cache type: f16 (default) or f32");
  cmd->callback([args] { run_logits(*args); });
}

}  // namespace thinkmesh::cli
