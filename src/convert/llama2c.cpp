// convert_llama2c: a llama2.c checkpoint + tokenizer.bin → GGUF, with the keys, tensor names
// and tensor order of llama.cpp's examples/convert-llama2c-to-ggml (c392e50).
//
// Checkpoint (llama2.c "legacy" version 0 export, little-endian):
//   int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
//   (vocab_size < 0: the classifier is not tied to the embedding and is stored at the end)
//   F32 token_embedding [vocab][dim], rms_att [L][dim], wq [L][dim][dim],
//   wk [L][kv_dim][dim], wv [L][kv_dim][dim], wo [L][dim][dim], rms_ffn [L][dim],
//   w1 [L][hidden][dim], w2 [L][dim][hidden], w3 [L][hidden][dim], rms_final [dim],
//   freq_cis [seq_len][head_dim] (skipped), wcls [vocab][dim] (untied only).
// Every matrix is a PyTorch Linear weight [out][in], i.e. GGUF ne = [in, out], and the Q/K
// rows are already in Meta's interleaved-pair order, which is GGUF's: no permutation.
// tokenizer.bin: u32 max_token_length, then per token f32 score, u32 length, bytes.
#include <algorithm>
#include <bit>
#include <cctype>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <fmt/core.h>

#include "convert/convert_internal.h"
#include "core/mapped_file.h"
#include "thinkmesh/error.h"

namespace thinkmesh::convert {
namespace {

struct Llama2cConfig {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

// Reads little-endian values from a mapped file, failing with the path and offset.
class Reader {
 public:
  Reader(std::span<const uint8_t> bytes, const std::string& path) : bytes_(bytes), path_(path) {}
  uint32_t u32() {
    need(4, "a 32-bit value");
    uint32_t v;
    std::memcpy(&v, bytes_.data() + pos_, 4);
    pos_ += 4;
    return v;
  }
  float f32() { return std::bit_cast<float>(u32()); }
  std::string str(uint32_t n) {
    need(n, "token text");
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  size_t pos() const { return pos_; }

 private:
  void need(uint64_t n, const char* what) const {
    if (n > bytes_.size() - pos_) {
      throw Error(ErrorKind::invalid_file,
                  fmt::format("{}: truncated at offset {}: {} needs {} bytes, {} left", path_, pos_,
                              what, n, bytes_.size() - pos_));
    }
  }
  std::span<const uint8_t> bytes_;
  const std::string& path_;
  size_t pos_ = 0;
};

// llama.cpp's byte-token test: sscanf(text, "<0x%02hhX>") == 1, i.e. "<0x" then a hex digit.
bool looks_like_byte_token(const std::string& text) {
  return text.size() >= 4 && text.compare(0, 3, "<0x") == 0 &&
         std::isxdigit(static_cast<unsigned char>(text[3]));
}

struct Llama2cVocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
};

Llama2cVocab read_tokenizer_bin(const std::string& path, size_t n_vocab) {
  const MappedFile file(path);
  if (file.size() >= 4 && std::memcmp(file.data(), "GGUF", 4) == 0) {
    throw Error(ErrorKind::unsupported,
                fmt::format("{}: a GGUF vocabulary; give the llama2.c tokenizer.bin", path));
  }
  Reader r(file.bytes(), path);
  r.u32();  // max_token_length, unused
  Llama2cVocab v;
  for (size_t id = 0; id < n_vocab; ++id) {
    const float score = r.f32();
    const uint32_t len = r.u32();
    std::string text = r.str(len);
    int32_t type = 1;  // NORMAL
    if (id == 0) {
      text = "<unk>", type = 2;  // UNKNOWN
    } else if (id == 1) {
      text = "<s>", type = 3;  // CONTROL
    } else if (id == 2) {
      text = "</s>", type = 3;
    } else if (text.empty()) {
      type = 3;
    } else if (looks_like_byte_token(text)) {
      type = 6;  // BYTE
    }
    std::string escaped;  // spaces become U+2581 "▁", as SentencePiece stores them
    for (char c : text) {
      if (c == ' ') {
        escaped += "\xE2\x96\x81";
      } else {
        escaped += c;
      }
    }
    v.tokens.push_back(std::move(escaped));
    v.scores.push_back(score);
    v.types.push_back(type);
  }
  return v;
}

std::string find_tokenizer(const std::string& checkpoint) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(checkpoint).parent_path().empty()
                           ? fs::path(".")
                           : fs::path(checkpoint).parent_path();
  if (fs::exists(dir / "tokenizer.bin")) return (dir / "tokenizer.bin").string();
  std::vector<fs::path> candidates;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("tok", 0) == 0 && e.path().extension() == ".bin") candidates.push_back(e.path());
  }
  if (candidates.size() == 1) return candidates[0].string();
  throw Error(ErrorKind::not_found,
              fmt::format("{}: no tokenizer.bin (or single tok*.bin) beside the checkpoint; name "
                          "it with --tokenizer",
                          checkpoint));
}

}  // namespace

ConvertResult convert_llama2c(const std::string& checkpoint, const std::string& output,
                              const ConvertOptions& options) {
  const TensorType type = weight_type(options, TensorType::F32);
  const MappedFile file(checkpoint);
  if (file.size() < sizeof(Llama2cConfig)) {
    throw Error(ErrorKind::invalid_file,
                fmt::format("{}: {} bytes, too short for a llama2.c header (28 bytes)", checkpoint,
                            file.size()));
  }
  Llama2cConfig c;
  std::memcpy(&c, file.data(), sizeof c);
  const bool shared = c.vocab_size > 0;
  const int64_t vocab = c.vocab_size == INT32_MIN ? 0 : std::abs(c.vocab_size);
  // Bounds keep every product below 2^62 and reject files that are not checkpoints.
  constexpr int64_t kMax = 1 << 20;
  const auto bad = [&](const std::string& what) {
    return Error(ErrorKind::invalid_file,
                 fmt::format("{}: not a llama2.c checkpoint: {} (header dim={} hidden_dim={} "
                             "n_layers={} n_heads={} n_kv_heads={} vocab_size={} seq_len={})",
                             checkpoint, what, c.dim, c.hidden_dim, c.n_layers, c.n_heads,
                             c.n_kv_heads, c.vocab_size, c.seq_len));
  };
  for (int64_t v : {int64_t{c.dim}, int64_t{c.hidden_dim}, int64_t{c.n_layers}, int64_t{c.n_heads},
                    int64_t{c.n_kv_heads}, vocab, int64_t{c.seq_len}}) {
    if (v <= 0 || v > kMax) throw bad("a header value is out of range");
  }
  if (c.dim % c.n_heads != 0) throw bad("dim is not a multiple of n_heads");
  if (c.n_kv_heads > c.n_heads || c.n_heads % c.n_kv_heads != 0) {
    throw bad("n_heads is not a multiple of n_kv_heads");
  }
  const int64_t dim = c.dim, hidden = c.hidden_dim, L = c.n_layers;
  const int64_t head_dim = dim / c.n_heads;
  const int64_t kv_dim = head_dim * c.n_kv_heads;

  // Offsets (in floats) of each array, then the exact size the file must have.
  int64_t at = 0;
  const auto take = [&at](int64_t n) {
    const int64_t start = at;
    at += n;
    return start;
  };
  const int64_t o_embd = take(vocab * dim), o_rms_att = take(L * dim), o_wq = take(L * dim * dim),
                o_wk = take(L * kv_dim * dim), o_wv = take(L * kv_dim * dim),
                o_wo = take(L * dim * dim), o_rms_ffn = take(L * dim),
                o_w1 = take(L * hidden * dim), o_w2 = take(L * dim * hidden),
                o_w3 = take(L * hidden * dim), o_rms_final = take(dim);
  take(int64_t{c.seq_len} * head_dim);  // freq_cis_real + freq_cis_imag
  const int64_t o_wcls = shared ? o_embd : take(vocab * dim);
  const uint64_t expected = sizeof(Llama2cConfig) + static_cast<uint64_t>(at) * 4;
  if (file.size() != expected) {
    throw bad(
        fmt::format("the header implies {} bytes but the file has {}", expected, file.size()));
  }
  const uint8_t* base = file.data() + sizeof(Llama2cConfig);
  const auto floats = [&](int64_t offset, int64_t n) {
    return std::span<const float>(reinterpret_cast<const float*>(base + offset * 4),
                                  static_cast<size_t>(n));
  };

  const std::string tokenizer_path =
      options.tokenizer.empty() ? find_tokenizer(checkpoint) : options.tokenizer;
  const Llama2cVocab vocab_data = read_tokenizer_bin(tokenizer_path, static_cast<size_t>(vocab));

  gguf::Writer w;
  w.set("tokenizer.ggml.tokens", gguf::Value::string_array(vocab_data.tokens));
  w.set("tokenizer.ggml.scores", gguf::Value::f32_array(vocab_data.scores));
  w.set("tokenizer.ggml.token_type", gguf::Value::i32_array(vocab_data.types));
  w.set("tokenizer.ggml.model", gguf::Value::string("llama"));
  w.set("general.architecture", gguf::Value::string("llama"));
  w.set("general.name", gguf::Value::string(options.name.empty() ? "llama" : options.name));
  w.set("tokenizer.ggml.unknown_token_id", gguf::Value::u32(0));
  w.set("tokenizer.ggml.bos_token_id", gguf::Value::u32(1));
  w.set("tokenizer.ggml.eos_token_id", gguf::Value::u32(2));
  w.set("tokenizer.ggml.seperator_token_id", gguf::Value::u32(0xFFFFFFFFu));  // LLAMA_TOKEN_NULL
  w.set("tokenizer.ggml.padding_token_id", gguf::Value::u32(0xFFFFFFFFu));
  // The checkpoint's seq_len (what llama2.c's run.c allows). llama.cpp's converter writes its
  // built-in n_ctx (128 at c392e50, 2048 in the published stories260K.gguf), which would cap
  // generation; docs/convert.md lists this difference.
  w.set("llama.context_length", gguf::Value::u32(static_cast<uint32_t>(c.seq_len)));
  w.set("llama.embedding_length", gguf::Value::u32(static_cast<uint32_t>(dim)));
  w.set("llama.feed_forward_length", gguf::Value::u32(static_cast<uint32_t>(hidden)));
  w.set("llama.attention.head_count", gguf::Value::u32(static_cast<uint32_t>(c.n_heads)));
  w.set("llama.attention.head_count_kv", gguf::Value::u32(static_cast<uint32_t>(c.n_kv_heads)));
  w.set("llama.block_count", gguf::Value::u32(static_cast<uint32_t>(L)));
  w.set("llama.rope.dimension_count",
        gguf::Value::u32(static_cast<uint32_t>(std::min<int64_t>(64, head_dim))));
  w.set("llama.attention.layer_norm_rms_epsilon", gguf::Value::f32(1e-5f));
  // Not written by llama.cpp's llama2.c converter; added so readers see the type (both are
  // optional keys for llama.cpp).
  w.set("general.file_type", gguf::Value::u32(file_type_id(type)));
  w.set("general.quantization_version", gguf::Value::u32(kQuantizationVersion));

  TensorSink sink(w);
  const auto add = [&](const std::string& name, std::vector<int64_t> ne, int64_t offset) {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    const auto values = floats(offset, n);
    if (storage_type(name, ne.size(), type) == TensorType::F32) {
      sink.add_view(name, std::move(ne), TensorType::F32,
                    std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(values.data()),
                                             values.size_bytes()));
    } else {
      sink.add(name, std::move(ne), values, type);
    }
  };
  add("token_embd.weight", {dim, vocab}, o_embd);
  add("output_norm.weight", {dim}, o_rms_final);
  add("output.weight", {dim, vocab}, o_wcls);
  for (int64_t i = 0; i < L; ++i) {
    const std::string b = fmt::format("blk.{}.", i);
    add(b + "attn_q.weight", {dim, dim}, o_wq + i * dim * dim);
    add(b + "attn_k.weight", {dim, kv_dim}, o_wk + i * kv_dim * dim);
    add(b + "attn_v.weight", {dim, kv_dim}, o_wv + i * kv_dim * dim);
    add(b + "attn_output.weight", {dim, dim}, o_wo + i * dim * dim);
    add(b + "attn_norm.weight", {dim}, o_rms_att + i * dim);
    add(b + "ffn_gate.weight", {dim, hidden}, o_w1 + i * hidden * dim);
    add(b + "ffn_down.weight", {hidden, dim}, o_w2 + i * dim * hidden);
    add(b + "ffn_up.weight", {dim, hidden}, o_w3 + i * hidden * dim);
    add(b + "ffn_norm.weight", {dim}, o_rms_ffn + i * dim);
  }
  write_output(w, output);

  ConvertResult result;
  result.source_format = "llama2.c";
  result.architecture = "llama";
  result.type = type;
  result.n_tensors = sink.n_tensors();
  result.n_params = sink.n_params();
  result.n_vocab = vocab_data.tokens.size();
  return result;
}

}  // namespace thinkmesh::convert
