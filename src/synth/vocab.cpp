// Synthetic vocabularies. Token types are llama.cpp's: 1 normal, 2 unknown, 3 control, 6 byte.
#include "synth/vocab.h"

#include <fmt/core.h>

#include "thinkmesh/error.h"

namespace thinkmesh::synth {
namespace {

constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kByte = 6;
constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 "▁", SentencePiece's space

// Calls `emit(piece)` with lowercase strings of length `len` in lexicographic order until
// it returns false; returns false when stopped.
template <class Emit>
bool lowercase_strings(int len, std::string& prefix, Emit& emit) {
  if (len == 0) return emit(prefix);
  for (char c = 'a'; c <= 'z'; ++c) {
    prefix.push_back(c);
    const bool more = lowercase_strings(len - 1, prefix, emit);
    prefix.pop_back();
    if (!more) return false;
  }
  return true;
}

// Placeholder pieces: printable ASCII, then per length k = 1, 2, ... the lowercase strings of
// length k, each as a word start ("▁" + w) and, from k = 2, as a piece of a word (w). Every
// piece of length k+1 is a piece of length k plus one character, and all are distinct.
void placeholder_pieces(size_t count, std::vector<std::string>& out) {
  const size_t target = out.size() + count;
  auto emit = [&](const std::string& piece) {
    if (out.size() >= target) return false;
    out.push_back(piece);
    return true;
  };
  if (!emit(std::string(kSpace))) return;
  for (char c = 0x21; c <= 0x7E; ++c) {
    if (!emit(std::string(1, c))) return;
  }
  for (int len = 1; out.size() < target; ++len) {
    std::string prefix;
    auto both = [&](const std::string& w) {
      if (len >= 2 && !emit(w)) return false;
      return emit(std::string(kSpace) + w);
    };
    if (!lowercase_strings(len, prefix, both)) return;
  }
}

gguf::KeyValue kv(std::string key, gguf::Value value) {
  return {std::move(key), std::move(value)};
}

void check_size(int32_t n_vocab, int32_t minimum) {
  if (n_vocab < minimum) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("synth: a synthetic vocabulary needs at least {} tokens, not {}",
                            minimum, n_vocab));
  }
}

}  // namespace

std::vector<gguf::KeyValue> synthetic_spm_vocab(int32_t n_vocab) {
  check_size(n_vocab, 512);
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {kUnknown, kControl, kControl};
  std::vector<float> scores = {0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(fmt::format("<0x{:02X}>", b));
    types.push_back(kByte);
    scores.push_back(0);
  }
  const size_t first_piece = tokens.size();
  placeholder_pieces(static_cast<size_t>(n_vocab) - first_piece, tokens);
  for (size_t i = first_piece; i < tokens.size(); ++i) {
    types.push_back(kNormal);
    scores.push_back(-static_cast<float>(i - first_piece));  // earlier pieces merge first
  }
  std::vector<gguf::KeyValue> keys;
  keys.push_back(kv("tokenizer.ggml.model", gguf::Value::string("llama")));
  keys.push_back(kv("tokenizer.ggml.pre", gguf::Value::string("default")));
  keys.push_back(kv("tokenizer.ggml.tokens", gguf::Value::string_array(tokens)));
  keys.push_back(kv("tokenizer.ggml.scores", gguf::Value::f32_array(scores)));
  keys.push_back(kv("tokenizer.ggml.token_type", gguf::Value::i32_array(types)));
  keys.push_back(kv("tokenizer.ggml.bos_token_id", gguf::Value::u32(1)));
  keys.push_back(kv("tokenizer.ggml.eos_token_id", gguf::Value::u32(2)));
  keys.push_back(kv("tokenizer.ggml.unknown_token_id", gguf::Value::u32(0)));
  keys.push_back(kv("tokenizer.ggml.add_bos_token", gguf::Value::boolean(true)));
  keys.push_back(kv("tokenizer.ggml.add_eos_token", gguf::Value::boolean(false)));
  return keys;
}

std::vector<gguf::KeyValue> synthetic_wordpiece_vocab(int32_t n_vocab) {
  check_size(n_vocab, 512);
  std::vector<std::string> tokens = {"[PAD]"};
  std::vector<int32_t> types = {kControl};
  for (int i = 0; i < 99; ++i) {
    tokens.push_back(fmt::format("[unused{}]", i));
    types.push_back(kNormal);
  }
  for (const char* special : {"[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    tokens.push_back(special);
    types.push_back(kControl);
  }
  // Word starts "▁x" for every printable ASCII character first (BERT splits punctuation into
  // words of its own), then the placeholder pieces.
  for (char c = 0x21; c <= 0x7E; ++c) tokens.push_back(std::string(kSpace) + c);
  std::vector<std::string> pieces;
  placeholder_pieces(static_cast<size_t>(n_vocab) * 2, pieces);
  for (const std::string& p : pieces) {
    if (tokens.size() >= static_cast<size_t>(n_vocab)) break;
    if (p == kSpace || (p.size() == kSpace.size() + 1 && p.compare(0, kSpace.size(), kSpace) == 0 &&
                        static_cast<unsigned char>(p.back()) >= 0x21))
      continue;  // "▁" alone is no WordPiece token; "▁x" is already there
    tokens.push_back(p);
  }
  types.resize(tokens.size(), kNormal);
  std::vector<gguf::KeyValue> keys;
  keys.push_back(kv("tokenizer.ggml.model", gguf::Value::string("bert")));
  keys.push_back(kv("tokenizer.ggml.pre", gguf::Value::string("jina-v2-en")));
  keys.push_back(kv("tokenizer.ggml.tokens", gguf::Value::string_array(tokens)));
  keys.push_back(kv("tokenizer.ggml.token_type", gguf::Value::i32_array(types)));
  keys.push_back(kv("tokenizer.ggml.unknown_token_id", gguf::Value::u32(100)));
  keys.push_back(kv("tokenizer.ggml.seperator_token_id", gguf::Value::u32(102)));  // sic
  keys.push_back(kv("tokenizer.ggml.padding_token_id", gguf::Value::u32(0)));
  keys.push_back(kv("tokenizer.ggml.mask_token_id", gguf::Value::u32(103)));
  return keys;
}

std::vector<gguf::KeyValue> vocab_keys_from(const gguf::File& file) {
  std::vector<gguf::KeyValue> keys;
  for (const gguf::KeyValue& k : file.metadata()) {
    if (k.key.rfind("tokenizer.", 0) == 0) keys.push_back(k);
  }
  const gguf::Value* tokens = file.find("tokenizer.ggml.tokens");
  if (tokens == nullptr || !tokens->is_array() || tokens->as_array().items.empty()) {
    throw Error(
        ErrorKind::invalid_file,
        fmt::format("{}: no tokenizer.ggml.tokens array to copy a vocabulary from", file.path()));
  }
  return keys;
}

int32_t vocab_size(const std::vector<gguf::KeyValue>& keys) {
  for (const gguf::KeyValue& k : keys) {
    if (k.key == "tokenizer.ggml.tokens") {
      return static_cast<int32_t>(k.value.as_array().items.size());
    }
  }
  throw Error(ErrorKind::internal, "synth: vocabulary without tokenizer.ggml.tokens");
}

}  // namespace thinkmesh::synth
