// libFuzzer target: every tokenizer family on arbitrary bytes. The first input byte picks the
// vocabulary and the options; the rest is the text. Ids must be inside the vocabulary and
// detokenizing them must not fail. Vocabularies are read once from the shared fixtures
// ($THINKMESH_FIXTURES, default ../shared beside the source tree).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/tokenizer.h"

namespace {

std::vector<std::unique_ptr<thinkmesh::Tokenizer>> load_all() {
  std::filesystem::path dir = std::filesystem::path(THINKMESH_SOURCE_DIR) / ".." / "shared";
  if (const char* env = std::getenv("THINKMESH_FIXTURES"); env && *env) dir = env;
  const char* files[] = {
      "models/tokenizers/llama.cpp-vocab/ggml-vocab-llama-spm.gguf",  // SentencePiece
      "models/tokenizers/llama.cpp-vocab/ggml-vocab-phi-3.gguf",      // SentencePiece + specials
      "models/tokenizers/llama.cpp-vocab/ggml-vocab-bert-bge.gguf",   // WordPiece
      "models/tokenizers/llama.cpp-vocab/ggml-vocab-gpt-2.gguf",      // BPE gpt-2
      "fixtures/models/tiny-llama3-Q8_0.gguf",                        // BPE llama3
      "fixtures/models/tiny-qwen2-Q8_0.gguf",                         // BPE qwen2
  };
  std::vector<std::unique_ptr<thinkmesh::Tokenizer>> out;
  for (const char* f : files) {
    const auto file = thinkmesh::gguf::File::open((dir / f).string());
    out.push_back(thinkmesh::Tokenizer::from_gguf(file));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto tokenizers = load_all();
  if (size == 0) return 0;
  const auto& tok = *tokenizers[data[0] % tokenizers.size()];
  thinkmesh::TokenizeOptions options;
  options.add_special = (data[0] & 0x40) != 0;
  options.parse_special = (data[0] & 0x80) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto ids = tok.tokenize(text, options);
  for (const auto id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= tok.vocab_size()) std::abort();
  }
  volatile size_t sink = tok.detokenize(ids, {}).size();
  (void)sink;
  return 0;
}
