// Tokenizer::from_hf_json: a Hugging Face `tokenizer.json` (+ optional `tokenizer_config.json`)
// turned into the same Vocab that llama.cpp's convert_hf_to_gguf.py would write, so both paths
// give identical ids.
//
// Supported models:
//   BPE with a ByteLevel pre-tokenizer → byte-level BPE; the pre-tokenizer name is recognised
//     from the Split regex / Digits step (llama3, qwen2, smollm, gpt-2), as the converter's
//     checksum table would name it;
//   WordPiece (BERT) → WordPiece, vocabulary converted to the phantom-space form.
// Added tokens become CONTROL (special) or USER_DEFINED tokens. Normalizers are not applied
// (llama.cpp applies none for these families: e.g. Qwen2's NFC step is skipped there too).
#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "thinkmesh/error.h"
#include "tokenizer/families.h"
#include "tokenizer/vocab.h"

namespace thinkmesh {
namespace {

using nlohmann::json;
using tokenizer::Vocab;

json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::not_found, fmt::format("{}: cannot open", path));
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw Error(ErrorKind::invalid_file, fmt::format("{}: not valid JSON: {}", path, e.what()));
  }
}

// The regexes of the Split pre-tokenizers llama.cpp's converter maps to each pre name.
constexpr std::string_view kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// The id of `text` before Vocab::finalize has built its map (a handful of lookups per file).
std::optional<TokenId> find_token(const Vocab& v, std::string_view text) {
  const auto it = std::find(v.tokens.begin(), v.tokens.end(), text);
  if (it == v.tokens.end()) return std::nullopt;
  return static_cast<TokenId>(it - v.tokens.begin());
}

// Token id of a special token named in tokenizer_config.json ("bos_token": "<s>" or
// {"content": "<s>"}), if it is in the vocabulary.
std::optional<TokenId> config_token(const json& config, const char* key, const Vocab& v) {
  if (!config.contains(key)) return std::nullopt;
  const json& value = config[key];
  std::string text;
  if (value.is_string()) {
    text = value.get<std::string>();
  } else if (value.is_object() && value.contains("content")) {
    text = value["content"].get<std::string>();
  } else {
    return std::nullopt;
  }
  return find_token(v, text);
}

// Places `text` at `id`, growing the vocabulary with "[PAD<n>]" holes as the converter does.
void put_token(Vocab& v, size_t id, std::string text, TokenKind kind) {
  if (id >= 4'000'000)
    throw Error(ErrorKind::invalid_file, fmt::format("token id {} is implausible", id));
  if (v.tokens.size() <= id) {
    const size_t old = v.tokens.size();
    v.tokens.resize(id + 1);
    v.kinds.resize(id + 1, TokenKind::unused);
    for (size_t i = old; i < id; ++i) v.tokens[i] = fmt::format("[PAD{}]", i);
  }
  v.tokens[id] = std::move(text);
  v.kinds[id] = kind;
}

Vocab bpe_vocab(const json& root, const json& config, const std::string& path) {
  const json& model = root.at("model");
  if (model.value("byte_fallback", false)) {
    throw Error(ErrorKind::unsupported,
                fmt::format("{}: SentencePiece-style BPE (byte_fallback) tokenizer.json is not "
                            "supported; use the model's GGUF file",
                            path));
  }
  Vocab v;
  v.family = VocabFamily::bpe;
  v.pre = tokenizer::hf_bpe_pre_name(root, path);
  for (const auto& [text, id] : model.at("vocab").items()) {
    put_token(v, id.get<size_t>(), text, TokenKind::normal);
  }
  for (const auto& added : root.value("added_tokens", json::array())) {
    put_token(v, added.at("id").get<size_t>(), added.at("content").get<std::string>(),
              added.value("special", false) ? TokenKind::control : TokenKind::user_defined);
  }
  // Merges are "a b" strings or ["a", "b"] pairs; the GGUF stores "a b".
  const json& merges = model.at("merges");
  v.merge_rank.reserve(merges.size());
  int32_t rank = 0;
  for (const auto& m : merges) {
    std::string joined = m.is_string()
                             ? m.get<std::string>()
                             : m.at(0).get<std::string>() + " " + m.at(1).get<std::string>();
    v.merge_rank.emplace(std::move(joined), rank++);
  }
  tokenizer::apply_bpe_pre_defaults(v, path);
  v.bos = config_token(config, "bos_token", v);
  v.eos = config_token(config, "eos_token", v);
  v.pad = config_token(config, "pad_token", v);
  v.unk = config_token(config, "unk_token", v);
  if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean()) {
    v.add_bos = config["add_bos_token"].get<bool>();
  }
  if (config.contains("add_eos_token") && config["add_eos_token"].is_boolean()) {
    v.add_eos = config["add_eos_token"].get<bool>();
  }
  if (v.add_bos && !v.bos) v.add_bos = false;  // nothing to add (Qwen2 has no BOS)
  return v;
}

Vocab wordpiece_vocab(const json& root, const std::string& path) {
  const json& model = root.at("model");
  const std::string prefix = model.value("continuing_subword_prefix", "##");
  Vocab v;
  v.family = VocabFamily::wpm;
  v.pre = "default";
  v.add_bos = true;
  v.clean_spaces = true;
  for (const auto& [text, id] : model.at("vocab").items()) {
    put_token(v, id.get<size_t>(), tokenizer::wordpiece_gguf_form(text, prefix), TokenKind::normal);
  }
  tokenizer::set_bert_special_tokens(v, path);
  return v;
}

}  // namespace

namespace tokenizer {

// Flattens a pre_tokenizer (possibly a Sequence) into its steps.
static void collect_steps(const json& node, std::vector<json>& steps) {
  if (node.is_null()) return;
  if (node.value("type", "") == "Sequence") {
    for (const auto& step : node.at("pretokenizers")) collect_steps(step, steps);
  } else {
    steps.push_back(node);
  }
}

std::string hf_bpe_pre_name(const json& root, const std::string& path) {
  std::vector<json> steps;
  collect_steps(root.value("pre_tokenizer", json()), steps);
  std::string regex;
  bool digits_individual = false, byte_level_regex = false;
  for (const auto& step : steps) {
    const std::string type = step.value("type", "");
    if (type == "Split" && step.contains("pattern") && step["pattern"].contains("Regex")) {
      regex = step["pattern"]["Regex"].get<std::string>();
    } else if (type == "Digits") {
      digits_individual = step.value("individual_digits", false);
    } else if (type == "ByteLevel") {
      byte_level_regex = step.value("use_regex", true);
    }
  }
  if (regex == kLlama3Regex) return "llama-bpe";
  if (regex == kQwen2Regex) return "qwen2";
  if (regex.empty() && digits_individual && byte_level_regex) return "smollm";
  if (regex.empty() && byte_level_regex) return "gpt-2";
  throw Error(ErrorKind::unsupported,
              fmt::format("{}: unrecognised BPE pre-tokenizer (regex '{}'); supported: the "
                          "gpt-2, llama3, qwen2 and smollm pipelines",
                          path, regex));
}

}  // namespace tokenizer

std::unique_ptr<Tokenizer> Tokenizer::from_hf_json(const std::string& tokenizer_json,
                                                   const std::string& config_json) {
  const json root = read_json(tokenizer_json);
  const json config = config_json.empty() ? json::object() : read_json(config_json);
  try {
    if (!root.is_object() || !root.contains("model")) {
      throw Error(ErrorKind::invalid_file,
                  fmt::format("{}: no \"model\" object: not a tokenizer.json", tokenizer_json));
    }
    const std::string type = root["model"].value("type", "");
    if (type == "BPE") {
      return tokenizer::make_bpe_tokenizer(bpe_vocab(root, config, tokenizer_json));
    }
    if (type == "WordPiece") {
      return tokenizer::make_wpm_tokenizer(wordpiece_vocab(root, tokenizer_json));
    }
    throw Error(ErrorKind::unsupported,
                fmt::format("{}: tokenizer model type '{}' is not supported (BPE, WordPiece)",
                            tokenizer_json, type));
  } catch (const json::exception& e) {
    throw Error(ErrorKind::invalid_file,
                fmt::format("{}: unexpected structure: {}", tokenizer_json, e.what()));
  }
}

}  // namespace thinkmesh
