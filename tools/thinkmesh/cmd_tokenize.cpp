// `thinkmesh tokenize`: text → token ids with a GGUF file's vocabulary (metadata only; the
// file is memory-mapped, no tensor is read), a Hugging Face tokenizer.json or a BERT vocab.txt.
//
//   thinkmesh tokenize -m model.gguf "Hello world"          one "id<TAB>piece" line per token
//   thinkmesh tokenize -m model.gguf --json --file in.txt   one JSON array of ids
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>

#include <fmt/core.h>

#include "commands.h"
#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/tokenizer.h"

namespace thinkmesh::cli {
namespace {

struct TokenizeArgs {
  std::string model;
  std::string file;
  std::optional<std::string> text;
  bool no_bos = false;
  bool parse_special = false;
  bool json = false;
};

// Length of the valid UTF-8 sequence at s[i], or 0 when the bytes there are not one.
size_t valid_utf8_length(const std::string& s, size_t i) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  const size_t n = b0 < 0x80             ? 1
                   : (b0 & 0xE0) == 0xC0 ? 2
                   : (b0 & 0xF0) == 0xE0 ? 3
                   : (b0 & 0xF8) == 0xF0 ? 4
                                         : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return 0;
  }
  return n;
}

// A piece as a quoted string: JSON escapes for quotes, backslashes and control characters;
// bytes that are not valid UTF-8 (a byte token, half of a character) as \xHH.
std::string quote_piece(const std::string& piece) {
  std::string out = "\"";
  for (size_t i = 0; i < piece.size();) {
    const auto c = static_cast<uint8_t>(piece[i]);
    const size_t n = valid_utf8_length(piece, i);
    if (n == 0) {
      out += fmt::format("\\x{:02X}", c);
      ++i;
      continue;
    }
    if (n == 1) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20 || c == 0x7F) {
            out += fmt::format("\\u{:04x}", c);
          } else {
            out.push_back(static_cast<char>(c));
          }
      }
    } else {
      out.append(piece, i, n);
    }
    i += n;
  }
  out += '"';
  return out;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::not_found, fmt::format("{}: cannot open the text file", path));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(ErrorKind::io, fmt::format("{}: read failed", path));
  return data;
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A GGUF file, a Hugging Face tokenizer.json (with tokenizer_config.json beside it, if any) or
// a BERT vocab.txt.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  if (ends_with(path, ".json")) {
    const auto config = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
    return Tokenizer::from_hf_json(path, std::filesystem::exists(config) ? config.string() : "");
  }
  if (ends_with(path, ".txt")) return Tokenizer::from_bert_vocab(path);
  const gguf::File file = gguf::File::open(path);
  return Tokenizer::from_gguf(file);
}

void run_tokenize(const TokenizeArgs& args) {
  if (args.text.has_value() == !args.file.empty()) {
    throw Error(ErrorKind::invalid_argument, "tokenize: give either TEXT or --file FILE");
  }
  const std::string text = args.text ? *args.text : read_bytes(args.file);
  const auto tokenizer = load_tokenizer(args.model);

  TokenizeOptions options;
  options.add_special = !args.no_bos;
  options.parse_special = args.parse_special;
  const std::vector<TokenId> ids = tokenizer->tokenize(text, options);

  if (args.json) {
    std::string out = "[";
    for (size_t i = 0; i < ids.size(); ++i) out += fmt::format("{}{}", i ? "," : "", ids[i]);
    out += "]\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    return;
  }
  for (TokenId id : ids) {
    fmt::print("{}\t{}\n", id, quote_piece(tokenizer->token_to_piece(id, /*render_special=*/true)));
  }
}

}  // namespace

void register_tokenize(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize", "Turn text into token ids with a GGUF file's vocabulary (as llama.cpp does)");
  cmd->add_option("-m,--model", args->model,
                  "GGUF file, tokenizer.json or BERT vocab.txt whose vocabulary to use")
      ->required();
  cmd->add_option("-f,--file", args->file, "read the text from FILE (its bytes, exactly)");
  cmd->add_option("text", args->text, "the text to tokenize");
  cmd->add_flag("--no-bos", args->no_bos,
                "add no special tokens (otherwise BOS/EOS or [CLS]/[SEP] as the vocabulary asks)");
  cmd->add_flag("--parse-special", args->parse_special,
                "turn special-token text such as <|im_start|> into its id");
  cmd->add_flag("--json", args->json, "print one JSON array of ids");
  cmd->callback([args] { run_tokenize(*args); });
}

}  // namespace thinkmesh::cli
