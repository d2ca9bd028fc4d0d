// `thinkmesh bench --embed -m MODEL [-t 1,2] [--batch 1,32] [--texts N] [--words N] [-r 3]`
//
// Texts are made of common English words drawn with a fixed seed, so every run embeds the same
// texts: 30 words (≈ 32 BERT tokens with [CLS]/[SEP]) for encoders, 7 for word vectors (the
// short sentences the static embedder is meant for). Each (threads, batch) test embeds one
// batch untimed (warm-up), then --texts texts per call `-r` times, each time repeating the
// call until 0.2 s have passed; the table shows texts/s mean ± sd. The static embedder is
// single-threaded and has no batches: it runs once, as threads 1 / batch 1.
#include "bench_embed_cmd.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "thinkmesh/embed.h"
#include "thinkmesh/encoder.h"
#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"

namespace thinkmesh::cli {
namespace {

constexpr double kMinSeconds = 0.2;  // each timed repetition lasts at least this long

constexpr const char* kWords[] = {
    "the",     "cat",    "sat",     "on",      "mat",     "people",   "often",  "walk",
    "through", "old",    "city",    "streets", "during",  "warm",     "summer", "evenings",
    "a",       "small",  "team",    "built",   "new",     "software", "for",    "local",
    "schools", "and",    "parents", "read",    "stories", "to",       "their",  "children",
    "market",  "prices", "rose",    "sharply", "after",   "the",      "storm",  "weather",
    "river",   "flows",  "past",    "quiet",   "village", "near",     "green",  "hills",
    "doctor",  "asked",  "about",   "recent",  "sleep",   "problems", "while",  "music",
    "played",  "softly", "in",      "kitchen", "cooking", "rice",     "with",   "fresh",
    "herbs",   "is",     "easy",    "when",    "you",     "follow",   "simple", "steps",
};

std::vector<int32_t> parse_counts(const std::string& text, const char* flag) {
  std::vector<int32_t> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    int32_t v = 0;
    try {
      v = std::stoi(item);
    } catch (const std::exception&) {
      throw Error(ErrorKind::invalid_argument, fmt::format("{}: '{}' is not a number", flag, item));
    }
    if (v <= 0)
      throw Error(ErrorKind::invalid_argument, fmt::format("{}: values must be > 0", flag));
    out.push_back(v);
    pos = comma + 1;
  }
  return out;
}

std::vector<std::string> make_texts(int32_t n_texts, int32_t n_words) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<size_t> pick(0, std::size(kWords) - 1);
  std::vector<std::string> texts;
  for (int32_t i = 0; i < n_texts; ++i) {
    std::string t;
    for (int32_t w = 0; w < n_words; ++w) t += (w ? " " : "") + std::string(kWords[pick(rng)]);
    texts.push_back(t + ".");
  }
  return texts;
}

// The most common type among the file's 2-D tensors, by bytes ("F16", "Q8_0", ...).
std::string weight_type(const std::string& path) {
  const gguf::File f = gguf::File::open(path);
  std::map<std::string, uint64_t> bytes;
  for (const auto& t : f.tensors()) {
    if (t.ne.size() >= 2) bytes[std::string(name(t.type))] += t.nbytes;
  }
  std::string best = "?";
  uint64_t most = 0;
  for (const auto& [type, n] : bytes) {
    if (n > most) most = n, best = type;
  }
  return best;
}

// Texts per second of one timed repetition.
double time_once(Embedder& e, const std::vector<std::string>& texts) {
  const auto start = std::chrono::steady_clock::now();
  double seconds = 0;
  int64_t calls = 0;
  do {
    const EmbeddingMatrix m = e.embed(texts);
    if (m.n_rows != static_cast<int64_t>(texts.size())) throw Error(ErrorKind::io, "bench: rows");
    ++calls;
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (seconds < kMinSeconds);
  return static_cast<double>(calls) * static_cast<double>(texts.size()) / seconds;
}

}  // namespace

void add_embed_bench_options(CLI::App& cmd, EmbedBenchArgs& args) {
  cmd.add_flag("--embed", args.enabled,
               "measure sentence-embedding speed (texts/s) instead of pp/tg");
  cmd.add_option("--batch", args.batches,
                 "with --embed: comma-separated texts per forward pass (default 1,32)");
  cmd.add_option("--texts", args.n_texts,
                 "with --embed: texts per timed call (default 32; 1000 for word vectors)");
  cmd.add_option("--words", args.n_words,
                 "with --embed: words per text (default 30 ≈ 32 BERT tokens; 7 for word vectors)");
}

void run_embed_bench(const std::vector<std::string>& models, const std::string& threads,
                     int32_t reps, bool json, const EmbedBenchArgs& args) {
  register_bert_embedder();
  const std::vector<int32_t> thread_counts = parse_counts(threads, "-t");
  const std::vector<int32_t> batches = parse_counts(args.batches, "--batch");
  if (reps < 1) throw Error(ErrorKind::invalid_argument, "-r must be >= 1");
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  if (!json) {
    fmt::print("| {:<24} | {:>8} | {:>5} | {:>7} | {:>5} | {:>11} | {:>22} |\n", "model", "arch",
               "type", "threads", "batch", "tokens/text", "texts/s");
    fmt::print("| {:-<24} | {:->8} | {:->5} | {:->7} | {:->5} | {:->11} | {:->22} |\n", "", "", "",
               "", "", "", "");
  }
  for (const auto& path : models) {
    const std::string type = weight_type(path);
    const std::string model_name = std::filesystem::path(path).stem().string();
    std::string arch;
    {
      const gguf::File f = gguf::File::open(path);
      arch = f.get_string_or("general.architecture", "?");
    }
    const bool encoder = arch != "wordvec";
    const int32_t n_texts = args.n_texts > 0 ? args.n_texts : encoder ? 32 : 1000;
    const int32_t n_words = args.n_words > 0 ? args.n_words : encoder ? 30 : 7;
    const std::vector<std::string> texts = make_texts(n_texts, n_words);
    for (const int32_t t : encoder ? thread_counts : std::vector<int32_t>{1}) {
      for (const int32_t batch : encoder ? batches : std::vector<int32_t>{1}) {
        EmbedOptions o;
        o.n_threads = t;
        o.batch_size = batch;
        const auto e = Embedder::open(path, o);
        // Warm-up: one pass (maps the weights in, grows the scratch); also the token counts.
        const std::vector<std::string> first(
            texts.begin(),
            texts.begin() + std::min<size_t>(texts.size(), static_cast<size_t>(batch)));
        const EmbeddingMatrix warm = e->embed(first);
        double tokens = 0;
        for (const auto& info : warm.rows) tokens += info.n_tokens;
        tokens /= static_cast<double>(warm.rows.size());
        std::vector<double> tps;
        for (int32_t r = 0; r < reps; ++r) tps.push_back(time_once(*e, texts));
        double mean = 0, var = 0;
        for (const double v : tps) mean += v / static_cast<double>(tps.size());
        for (const double v : tps) var += (v - mean) * (v - mean);
        const double sd = tps.size() > 1 ? std::sqrt(var / static_cast<double>(tps.size() - 1)) : 0;
        if (json) {
          rows.push_back({{"model", model_name},
                          {"architecture", arch},
                          {"type", type},
                          {"threads", t},
                          {"batch", batch},
                          {"tokens_per_text", tokens},
                          {"texts_per_second", mean},
                          {"stddev", sd},
                          {"repetitions", reps}});
        } else {
          fmt::print("| {:<24} | {:>8} | {:>5} | {:>7} | {:>5} | {:>11.1f} | {:>22} |\n",
                     model_name, arch, type, t, batch, tokens,
                     fmt::format("{:.2f} ± {:.2f}", mean, sd));
          std::fflush(stdout);
        }
      }
    }
  }
  if (json) fmt::print("{}\n", rows.dump(2));
}

}  // namespace thinkmesh::cli
