// The tokenizer.ggml.* metadata of a Hugging Face folder, as convert_hf_to_gguf.py (c392e50)
// writes it without running `transformers`:
//   - tokenizer.model (SentencePiece) → "llama" vocab: _create_vocab_sentencepiece;
//   - tokenizer.json BPE → "gpt2" vocab: get_vocab_base + gguf.SpecialVocab(load_merges);
//   - tokenizer.json WordPiece → "bert" vocab in phantom-space form: BertModel.set_vocab.
// The pre-tokenizer name is recognised from tokenizer.json's pre_tokenizer (the tokenizer
// library's hf_bpe_pre_name) instead of llama.cpp's hash of a tokenised check text; see
// docs/convert.md.
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "convert/hf_internal.h"
#include "thinkmesh/error.h"
#include "tokenizer/families.h"

namespace thinkmesh::convert {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6;

// convert_hf_to_gguf.py's does_token_look_special.
bool looks_special(const std::string& t) {
  const auto wrapped = [&](std::string_view open, std::string_view close) {
    return t.size() >= open.size() + close.size() && t.compare(0, open.size(), open) == 0 &&
           t.compare(t.size() - close.size(), close.size(), close) == 0;
  };
  return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" || wrapped("<|", "|>") ||
         wrapped("<\xEF\xBD\x9C", "\xEF\xBD\x9C>") || wrapped("<unused", ">");
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

// gguf.SpecialVocab: special ids from tokenizer_config.json ("bos_token" text looked up among
// tokenizer.json's added_tokens), then config.json's "<type>_token_id"; add_bos/add_eos and the
// chat template from tokenizer_config.json. The first value found for a type wins.
struct SpecialVocab {
  std::vector<std::pair<std::string, uint32_t>> ids;  // in the order they were found
  std::vector<std::pair<std::string, bool>> add;
  std::optional<std::string> chat_template;

  void set(const std::string& type, const json& id, std::optional<size_t> n_vocab) {
    if (!id.is_number_integer()) return;
    const int64_t v = id.get<int64_t>();
    if (v < 0) {
      throw Error(ErrorKind::invalid_file,
                  fmt::format("invalid value for special token type {}: {}", type, v));
    }
    if (n_vocab && static_cast<uint64_t>(v) >= *n_vocab) return;  // llama.cpp skips with a warning
    for (const auto& [t, _] : ids) {
      if (t == type) return;
    }
    ids.emplace_back(type, static_cast<uint32_t>(v));
  }
};

constexpr const char* kSpecialTypes[] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};

SpecialVocab load_special_vocab(const HfFolder& f, std::optional<size_t> n_vocab) {
  SpecialVocab sv;
  const json added = f.tokenizer_json.is_object()
                         ? f.tokenizer_json.value("added_tokens", json::array())
                         : json::array();
  if (f.tokenizer_config.is_object()) {
    const json& tc = f.tokenizer_config;
    if (tc.contains("chat_template")) {
      const json& ct = tc["chat_template"];
      if (ct.is_string()) {
        sv.chat_template = ct.get<std::string>();
      } else if (ct.is_array()) {
        // A list of named templates: the "default" one becomes tokenizer.chat_template.
        for (const auto& entry : ct) {
          if (entry.is_object() && entry.value("name", "") == "default" &&
              entry.contains("template") && entry["template"].is_string()) {
            sv.chat_template = entry["template"].get<std::string>();
          }
        }
      }
    }
    for (const char* type : kSpecialTypes) {
      const std::string add_key = fmt::format("add_{}_token", type);
      if (tc.contains(add_key) && tc[add_key].is_boolean()) {
        sv.add.emplace_back(type, tc[add_key].get<bool>());
      }
      const std::string key = fmt::format("{}_token", type);
      if (!tc.contains(key)) continue;
      const json& entry = tc[key];
      std::string content;
      if (entry.is_string()) {
        content = entry.get<std::string>();
      } else if (entry.is_object() && entry.contains("content") && entry["content"].is_string()) {
        content = entry["content"].get<std::string>();
      } else {
        continue;
      }
      for (const auto& a : added) {
        if (a.is_object() && a.value("content", "") == content && a.contains("id")) {
          sv.set(type, a["id"], n_vocab);
          break;
        }
      }
    }
  }
  for (const char* type : kSpecialTypes) {
    const std::string key = fmt::format("{}_token_id", type);
    if (f.config.contains(key)) sv.set(type, f.config[key], n_vocab);
  }
  return sv;
}

void write_special_vocab(gguf::Writer& w, const SpecialVocab& sv) {
  for (const auto& [type, id] : sv.ids) {
    // gguf-py has a writer method for these types only (no cls_token_id at c392e50).
    const char* key = type == "bos"    ? "tokenizer.ggml.bos_token_id"
                      : type == "eos"  ? "tokenizer.ggml.eos_token_id"
                      : type == "unk"  ? "tokenizer.ggml.unknown_token_id"
                      : type == "sep"  ? "tokenizer.ggml.seperator_token_id"
                      : type == "pad"  ? "tokenizer.ggml.padding_token_id"
                      : type == "mask" ? "tokenizer.ggml.mask_token_id"
                                       : nullptr;
    if (key) w.set(key, gguf::Value::u32(id));
  }
  for (const auto& [type, value] : sv.add) {
    if (type == "bos") w.set("tokenizer.ggml.add_bos_token", gguf::Value::boolean(value));
    if (type == "eos") w.set("tokenizer.ggml.add_eos_token", gguf::Value::boolean(value));
  }
  if (sv.chat_template) w.set("tokenizer.chat_template", gguf::Value::string(*sv.chat_template));
}

struct BaseVocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
};

// get_vocab_base: tokenizer.json's vocab and added tokens by id, padded to config.json's
// vocab_size with "[PAD<i>]" UNUSED entries.
BaseVocab vocab_base(const HfFolder& f) {
  const json& root = f.tokenizer_json;
  const std::string path = (f.dir / "tokenizer.json").string();
  std::map<uint64_t, std::string> by_id;
  std::map<uint64_t, bool> added_special;  // id → special, for added tokens
  for (const auto& [text, id] : root.at("model").at("vocab").items()) {
    by_id[id.get<uint64_t>()] = text;
  }
  for (const auto& a : root.value("added_tokens", json::array())) {
    const uint64_t id = a.at("id").get<uint64_t>();
    by_id[id] = a.at("content").get<std::string>();
    added_special[id] = a.value("special", false);
  }
  const uint64_t max_id = by_id.empty() ? 0 : by_id.rbegin()->first;
  const uint64_t n = f.config.contains("vocab_size") ? f.config["vocab_size"].get<uint64_t>()
                                                     : static_cast<uint64_t>(by_id.size());
  if (!by_id.empty() && max_id >= n) {
    throw Error(
        ErrorKind::invalid_file,
        fmt::format("{}: token id {} is not below config.json's vocab_size {}", path, max_id, n));
  }
  if (n > 4'000'000) {
    throw Error(ErrorKind::invalid_file, fmt::format("{}: vocab_size {} is implausible", path, n));
  }
  BaseVocab v;
  v.tokens.reserve(n);
  v.types.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    const auto it = by_id.find(i);
    if (it == by_id.end()) {
      v.tokens.push_back(fmt::format("[PAD{}]", i));
      v.types.push_back(kUnused);
      continue;
    }
    std::string token = it->second;
    int32_t type = kNormal;
    if (const auto a = added_special.find(i); a != added_special.end()) {
      if (a->second || looks_special(token)) {
        type = kControl;
      } else {
        token = replace_all(token, "\xE2\x96\x81", " ");  // pre-normalise user-defined spaces
        type = kUserDefined;
      }
    }
    v.tokens.push_back(std::move(token));
    v.types.push_back(type);
  }
  return v;
}

size_t write_gpt2_vocab(gguf::Writer& w, const HfFolder& f) {
  const std::string path = (f.dir / "tokenizer.json").string();
  BaseVocab v = vocab_base(f);
  w.set("tokenizer.ggml.model", gguf::Value::string("gpt2"));
  w.set("tokenizer.ggml.pre",
        gguf::Value::string(tokenizer::hf_bpe_pre_name(f.tokenizer_json, path)));
  const size_t n = v.tokens.size();
  w.set("tokenizer.ggml.tokens", gguf::Value::string_array(v.tokens));
  w.set("tokenizer.ggml.token_type", gguf::Value::i32_array(v.types));
  // Merges: "a b" strings, or [a, b] pairs whose spaces become U+0120 "Ġ".
  std::vector<std::string> merges;
  const json& m = f.tokenizer_json.at("model").value("merges", json::array());
  merges.reserve(m.size());
  for (const auto& entry : m) {
    if (entry.is_string()) {
      merges.push_back(entry.get<std::string>());
    } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() &&
               entry[1].is_string()) {
      merges.push_back(replace_all(entry[0].get<std::string>(), " ", "\xC4\xA0") + " " +
                       replace_all(entry[1].get<std::string>(), " ", "\xC4\xA0"));
    } else {
      throw Error(ErrorKind::invalid_file, fmt::format("{}: unknown merges format", path));
    }
  }
  if (merges.empty()) {
    throw Error(ErrorKind::invalid_file, fmt::format("{}: a BPE tokenizer without merges", path));
  }
  w.set("tokenizer.ggml.merges", gguf::Value::string_array(merges));
  write_special_vocab(w, load_special_vocab(f, std::nullopt));
  return n;
}

size_t write_bert_vocab(gguf::Writer& w, const HfFolder& f) {
  BaseVocab v = vocab_base(f);
  w.set("tokenizer.ggml.token_type_count",
        gguf::Value::u32(f.config.value("type_vocab_size", uint32_t{1})));
  const std::string prefix = f.tokenizer_json.at("model").value("continuing_subword_prefix", "##");
  for (auto& t : v.tokens) t = tokenizer::wordpiece_gguf_form(t, prefix);
  w.set("tokenizer.ggml.model", gguf::Value::string("bert"));
  // llama.cpp names BERT WordPiece vocabularies by hash; the uncased English BERT vocabulary
  // (bge, MiniLM, jina-v2-en) hashes to "jina-v2-en" (the last match in its table). llama.cpp
  // ignores the name for WordPiece.
  w.set("tokenizer.ggml.pre", gguf::Value::string("jina-v2-en"));
  w.set("tokenizer.ggml.tokens", gguf::Value::string_array(v.tokens));
  w.set("tokenizer.ggml.token_type", gguf::Value::i32_array(v.types));
  write_special_vocab(w, load_special_vocab(f, v.tokens.size()));
  return v.tokens.size();
}

size_t write_spm_vocab(gguf::Writer& w, const HfFolder& f) {
  const fs::path model_path = f.dir / "tokenizer.model";
  const std::vector<SpmPiece> pieces = read_sentencepiece_model(model_path.string());
  const size_t n =
      f.config.contains("vocab_size") ? f.config["vocab_size"].get<size_t>() : pieces.size();
  if (n > 4'000'000) {
    throw Error(ErrorKind::invalid_file, fmt::format("{}: vocab_size {} is implausible",
                                                     (f.dir / "config.json").string(), n));
  }
  std::vector<std::string> tokens(n);
  std::vector<float> scores(n, -10000.0f);
  std::vector<int32_t> types(n, kUnused);
  for (size_t i = 0; i < n; ++i) tokens[i] = fmt::format("[PAD{}]", i);
  for (size_t i = 0; i < pieces.size(); ++i) {
    // SentencePiece's IsUnknown/IsControl/IsUnused/IsByte; everything else (user-defined
    // pieces too) is NORMAL, as llama.cpp's converter has it.
    const int32_t t = pieces[i].type;
    const int32_t type = t == 2   ? kUnknown
                         : t == 3 ? kControl
                         : t == 5 ? kUnused
                         : t == 6 ? kByte
                                  : kNormal;
    if (i >= n) {  // more pieces than vocab_size: the list grows, as the Python lists do
      tokens.push_back(pieces[i].piece), scores.push_back(pieces[i].score), types.push_back(type);
      continue;
    }
    tokens[i] = pieces[i].piece, scores[i] = pieces[i].score, types[i] = type;
  }
  const auto put = [&](size_t id, std::string text, int32_t type) {
    if (id >= tokens.size()) return;  // "ignore token: id is out of range"
    tokens[id] = std::move(text), scores[id] = -1000.0f, types[id] = type;
  };
  const fs::path added = f.dir / "added_tokens.json";
  if (fs::exists(added)) {
    const json a = read_json_file(added);
    if (!a.is_object())
      throw Error(ErrorKind::invalid_file, fmt::format("{}: not an object", added.string()));
    for (const auto& [text, id] : a.items()) {
      if (id.is_number_unsigned()) put(id.get<size_t>(), text, kUserDefined);
    }
  }
  if (f.tokenizer_config.is_object() && f.tokenizer_config.contains("added_tokens_decoder") &&
      f.tokenizer_config["added_tokens_decoder"].is_object()) {
    for (const auto& [key, data] : f.tokenizer_config["added_tokens_decoder"].items()) {
      size_t id = 0;
      try {
        id = std::stoul(key);
      } catch (const std::exception&) {
        continue;
      }
      if (!data.is_object() || !data.contains("content") || !data["content"].is_string()) continue;
      std::string text = data["content"].get<std::string>();
      if (data.value("special", false) || looks_special(text)) {
        put(id, std::move(text), kControl);
      } else {
        put(id, replace_all(text, "\xE2\x96\x81", " "), kUserDefined);
      }
    }
  }
  w.set("tokenizer.ggml.model", gguf::Value::string("llama"));
  w.set("tokenizer.ggml.pre", gguf::Value::string("default"));
  w.set("tokenizer.ggml.tokens", gguf::Value::string_array(tokens));
  w.set("tokenizer.ggml.scores", gguf::Value::f32_array(scores));
  w.set("tokenizer.ggml.token_type", gguf::Value::i32_array(types));
  write_special_vocab(w, load_special_vocab(f, tokens.size()));
  return tokens.size();
}

}  // namespace

json read_json_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::not_found, fmt::format("{}: cannot open", path.string()));
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw Error(ErrorKind::invalid_file,
                fmt::format("{}: not valid JSON: {}", path.string(), e.what()));
  }
}

size_t write_hf_vocab(gguf::Writer& w, const HfFolder& f, HfArch arch) {
  const std::string tj = (f.dir / "tokenizer.json").string();
  try {
    if (arch == HfArch::bert) {
      if (f.tokenizer_json.is_null()) {
        throw Error(ErrorKind::not_found, fmt::format("{}: not found (BERT needs it)", tj));
      }
      if (f.tokenizer_json.at("model").value("type", "") != "WordPiece") {
        throw Error(ErrorKind::unsupported,
                    fmt::format("{}: a BERT model needs a WordPiece tokenizer", tj));
      }
      return write_bert_vocab(w, f);
    }
    // Llama and Qwen2 try SentencePiece first, then tokenizer.json, as llama.cpp does.
    // A tokenizer.model that is not a SentencePiece protobuf (Llama 3 ships a tiktoken file
    // of that name) gives way to tokenizer.json.
    bool spm = fs::exists(f.dir / "tokenizer.model");
    if (spm && !f.tokenizer_json.is_null()) {
      try {
        read_sentencepiece_model((f.dir / "tokenizer.model").string());
      } catch (const Error&) {
        spm = false;
      }
    }
    if (spm) {
      const size_t n = write_spm_vocab(w, f);
      if (arch == HfArch::llama) write_add_space_prefix(w, f);
      return n;
    }
    if (f.tokenizer_json.is_null()) {
      throw Error(ErrorKind::not_found,
                  fmt::format("{}: no tokenizer.model or tokenizer.json", f.dir.string()));
    }
    const json& model = f.tokenizer_json.at("model");
    if (model.value("type", "") != "BPE" || model.value("byte_fallback", false)) {
      throw Error(ErrorKind::unsupported,
                  fmt::format("{}: only byte-level BPE tokenizer.json files are supported (a "
                              "SentencePiece model needs its tokenizer.model)",
                              tj));
    }
    const size_t n = write_gpt2_vocab(w, f);
    if (arch == HfArch::llama) write_add_space_prefix(w, f);
    return n;
  } catch (const json::exception& e) {
    throw Error(ErrorKind::invalid_file, fmt::format("{}: unexpected structure: {}", tj, e.what()));
  }
}

void write_add_space_prefix(gguf::Writer& w, const HfFolder& f) {
  if (f.tokenizer_config.is_object() && f.tokenizer_config.contains("add_prefix_space") &&
      f.tokenizer_config["add_prefix_space"].is_boolean()) {
    w.set("tokenizer.ggml.add_space_prefix",
          gguf::Value::boolean(f.tokenizer_config["add_prefix_space"].get<bool>()));
  }
}

}  // namespace thinkmesh::convert
