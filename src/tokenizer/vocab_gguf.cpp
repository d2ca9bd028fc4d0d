// Reading a vocabulary from GGUF metadata (`tokenizer.ggml.*`) with llama.cpp's defaults
// (c392e50, llama_vocab::impl::load): per-model default special ids, per-pre-tokenizer flags,
// then the file's keys on top. Tokenizer::from_gguf picks the family.
#include <algorithm>
#include <array>
#include <iterator>
#include <string>

#include <fmt/core.h>
#include <fmt/format.h>

#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"
#include "tokenizer/families.h"
#include "tokenizer/vocab.h"

namespace thinkmesh::tokenizer {
namespace {

constexpr std::string_view kSupportedModels = "llama (SentencePiece), gpt2 (byte-level BPE), bert (WordPiece)";

// Pre-tokenizer names llama.cpp c392e50 accepts for "gpt2" vocabularies.
constexpr std::string_view kKnownPre[] = {
    "default",     "llama3",     "llama-v3",       "llama-bpe",        "falcon3",
    "deepseek-llm", "deepseek-coder", "deepseek-v3", "falcon",          "mpt",
    "starcoder",   "gpt-2",      "phi-2",          "jina-es",          "jina-de",
    "gigachat",    "jina-v1-en", "jina-v2-es",     "jina-v2-de",       "jina-v2-code",
    "roberta-bpe", "refact",     "command-r",      "qwen2",            "deepseek-r1-qwen",
    "stablelm2",   "olmo",       "dbrx",           "smaug-bpe",        "poro-chat",
    "chatglm-bpe", "viking",     "jais",           "tekken",           "smollm",
    "codeshell",   "bloom",      "gpt3-finnish",   "exaone",           "chameleon",
    "minerva-7b",  "megrez"};

bool known_pre(std::string_view pre) {
  return std::find(std::begin(kKnownPre), std::end(kKnownPre), pre) != std::end(kKnownPre);
}

// An id key, or nullopt when absent or outside the vocabulary.
std::optional<TokenId> read_id(const gguf::File& file, std::string_view key, size_t n_tokens) {
  const gguf::Value* value = file.find(key);
  if (!value) return std::nullopt;
  const int64_t id = value->as_int();
  // Converters write 0xFFFFFFFF (or -1) for "no such token" (stories260K's separator). As in
  // llama.cpp, an id outside the vocabulary leaves the family's default in place.
  if (id < 0 || static_cast<uint64_t>(id) >= n_tokens) return std::nullopt;
  return static_cast<TokenId>(id);
}

TokenKind kind_from_type(int64_t type) {
  return (type >= 0 && type <= 6) ? static_cast<TokenKind>(type) : TokenKind::undefined;
}

}  // namespace

// Flags llama.cpp derives from the pre-tokenizer name of a BPE vocabulary.
void apply_bpe_pre_defaults(Vocab& v, const std::string& path) {
  v.add_space_prefix = false;
  v.clean_spaces = true;
  if (v.pre.empty()) v.pre = "default";
  if (!known_pre(v.pre)) {
    std::string names;
    for (auto k : kKnownPre) {
      names += fmt::format("{}{}", names.empty() ? "" : ", ", k);
    }
    throw Error(ErrorKind::unsupported,
                fmt::format("{}: unknown pre-tokenizer '{}' (tokenizer.ggml.pre); supported: {}",
                            path, v.pre, names));
  }
  const auto& p = v.pre;
  if (p == "llama3" || p == "llama-v3" || p == "llama-bpe" || p == "falcon3") {
    v.ignore_merges = true;
    v.add_bos = true;
  } else if (p == "tekken") {
    v.clean_spaces = false;
    v.ignore_merges = true;
    v.add_bos = true;
  } else if (p == "chameleon") {
    v.add_bos = true;
    v.clean_spaces = false;
  } else if (p == "chatglm-bpe") {
    v.bos.reset();
  } else if (p == "deepseek-llm" || p == "deepseek-coder" || p == "deepseek-v3" ||
             p == "command-r" || p == "qwen2" || p == "deepseek-r1-qwen" || p == "poro-chat" ||
             p == "viking" || p == "smollm") {
    v.clean_spaces = false;
  }
}


Vocab vocab_from_gguf(const gguf::File& file) {
  const std::string& path = file.path();
  Vocab v;
  const gguf::Value* model_value = file.find("tokenizer.ggml.model");
  if (!model_value) {
    throw Error(ErrorKind::not_found, fmt::format("{}: no tokenizer.ggml.model key: the file has "
                                                  "no vocabulary",
                                                  path));
  }
  const std::string model = model_value->as_string();
  v.pre = file.get_string_or("tokenizer.ggml.pre", "");
  v.model_name = file.get_string_or("general.name", "");

  // Per-model defaults; an id that does not fit the vocabulary is dropped below.
  if (model == "llama") {
    v.family = VocabFamily::spm;
    v.bos = 1, v.eos = 2, v.unk = 0;
    v.add_space_prefix = true, v.clean_spaces = false, v.add_bos = true, v.add_eos = false;
    v.pre = v.pre.empty() ? "default" : v.pre;
  } else if (model == "bert") {
    v.family = VocabFamily::wpm;
    v.bos = 101, v.unk = 100, v.sep = 102, v.pad = 0, v.mask = 103;
    v.add_space_prefix = false, v.clean_spaces = true, v.add_bos = true, v.add_eos = false;
  } else if (model == "gpt2") {
    v.family = VocabFamily::bpe;
    v.bos = 11, v.eos = 11;
    apply_bpe_pre_defaults(v, path);
  } else {
    throw Error(ErrorKind::unsupported,
                fmt::format("{}: unsupported tokenizer model '{}' (tokenizer.ggml.model); "
                            "supported: {}",
                            path, model, kSupportedModels));
  }
  v.add_space_prefix = file.get_bool_or("tokenizer.ggml.add_space_prefix", v.add_space_prefix);

  const gguf::Value* tokens_value = file.find("tokenizer.ggml.tokens");
  if (!tokens_value) {
    throw Error(ErrorKind::invalid_file, fmt::format("{}: no tokenizer.ggml.tokens array", path));
  }
  v.tokens = file.get_string_array("tokenizer.ggml.tokens");
  const size_t n = v.tokens.size();
  if (file.find("tokenizer.ggml.scores")) {
    v.scores = file.get_float_array("tokenizer.ggml.scores");
    if (v.scores.size() != n) {
      throw Error(ErrorKind::invalid_file,
                  fmt::format("{}: tokenizer.ggml.scores has {} entries for {} tokens", path,
                              v.scores.size(), n));
    }
  }
  if (file.find("tokenizer.ggml.token_type")) {
    const auto types = file.get_int_array("tokenizer.ggml.token_type");
    if (types.size() != n) {
      throw Error(ErrorKind::invalid_file,
                  fmt::format("{}: tokenizer.ggml.token_type has {} entries for {} tokens", path,
                              types.size(), n));
    }
    v.kinds.reserve(n);
    for (int64_t t : types) v.kinds.push_back(kind_from_type(t));
  } else {
    v.kinds.assign(n, TokenKind::normal);
  }

  if (v.family == VocabFamily::bpe) {
    if (!file.find("tokenizer.ggml.merges")) {
      throw Error(ErrorKind::invalid_file, fmt::format("{}: no tokenizer.ggml.merges array", path));
    }
    const auto merges = file.get_string_array("tokenizer.ggml.merges");
    v.merge_rank.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
      // "left right", split at the first space after the first byte; the first of duplicate
      // merges keeps its rank.
      const size_t space = merges[i].size() > 1 ? merges[i].find(' ', 1) : std::string::npos;
      if (space == std::string::npos) {
        throw Error(ErrorKind::invalid_file,
                    fmt::format("{}: tokenizer.ggml.merges[{}] = '{}' is not 'left right'", path,
                                i, merges[i]));
      }
      v.merge_rank.emplace(merges[i], static_cast<int32_t>(i));
    }
  }

  // Defaults that do not fit this vocabulary are dropped; ids from the file must fit.
  for (auto* id : {&v.bos, &v.eos, &v.unk, &v.sep, &v.pad, &v.mask}) {
    if (*id && static_cast<size_t>(**id) >= n) id->reset();
  }
  const std::array<std::pair<std::optional<TokenId> Vocab::*, std::string_view>, 17> keys = {{
      {&Vocab::bos, "tokenizer.ggml.bos_token_id"},
      {&Vocab::eos, "tokenizer.ggml.eos_token_id"},
      {&Vocab::eot, "tokenizer.ggml.eot_token_id"},
      {&Vocab::eom, "tokenizer.ggml.eom_token_id"},
      {&Vocab::unk, "tokenizer.ggml.unknown_token_id"},
      {&Vocab::sep, "tokenizer.ggml.seperator_token_id"},  // sic: llama.cpp's key name
      {&Vocab::pad, "tokenizer.ggml.padding_token_id"},
      {&Vocab::mask, "tokenizer.ggml.mask_token_id"},
      {&Vocab::fim_pre, "tokenizer.ggml.fim_pre_token_id"},
      {&Vocab::fim_suf, "tokenizer.ggml.fim_suf_token_id"},
      {&Vocab::fim_mid, "tokenizer.ggml.fim_mid_token_id"},
      {&Vocab::fim_pad, "tokenizer.ggml.fim_pad_token_id"},
      {&Vocab::fim_rep, "tokenizer.ggml.fim_rep_token_id"},
      {&Vocab::fim_sep, "tokenizer.ggml.fim_sep_token_id"},
      {&Vocab::fim_pre, "tokenizer.ggml.prefix_token_id"},  // deprecated spellings
      {&Vocab::fim_suf, "tokenizer.ggml.suffix_token_id"},
      {&Vocab::fim_mid, "tokenizer.ggml.middle_token_id"},
  }};
  for (const auto& [field, key] : keys) {
    if (auto id = read_id(file, key, n)) v.*field = id;
  }
  // llama.cpp has a cls_token_id key but uses BOS as [CLS].
  v.cls = v.family == VocabFamily::wpm ? v.bos : read_id(file, "tokenizer.ggml.cls_token_id", n);
  v.add_bos = file.get_bool_or("tokenizer.ggml.add_bos_token", v.add_bos);
  v.add_eos = file.get_bool_or("tokenizer.ggml.add_eos_token", v.add_eos);

  // The newline token (informational): SPM's byte token, BPE's "Ċ", else PAD.
  auto find_text = [&](std::string_view text) -> std::optional<TokenId> {
    for (size_t i = 0; i < n; ++i) {
      if (v.tokens[i] == text) return static_cast<TokenId>(i);
    }
    return std::nullopt;
  };
  if (v.family == VocabFamily::spm) {
    v.linefeed = find_text("<0x0A>");
    if (!v.linefeed) v.linefeed = find_text("\n");
  } else if (v.family == VocabFamily::bpe) {
    v.linefeed = find_text("\xC4\x8A");  // "Ċ", GPT-2's image of '\n'
  }
  if (!v.linefeed) v.linefeed = v.pad;
  return v;
}

}  // namespace thinkmesh::tokenizer

namespace thinkmesh {

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& file) {
  tokenizer::Vocab vocab = tokenizer::vocab_from_gguf(file);
  switch (vocab.family) {
    case VocabFamily::spm: return tokenizer::make_spm_tokenizer(std::move(vocab));
    case VocabFamily::bpe: return tokenizer::make_bpe_tokenizer(std::move(vocab));
    case VocabFamily::wpm: return tokenizer::make_wpm_tokenizer(std::move(vocab));
  }
  throw Error(ErrorKind::internal, "tokenizer: unknown vocabulary family");
}

}  // namespace thinkmesh

