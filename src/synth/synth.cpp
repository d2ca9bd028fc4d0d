// synthesize(): the tensor plan of a --like model, its metadata, and rows of seeded random
// weights quantized by the reference quantizers while the GGUF writer streams them to disk.
#include "thinkmesh/synth.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <numbers>
#include <thread>

#include <fmt/core.h>

#include "synth/random.h"
#include "synth/vocab.h"
#include "thinkmesh/error.h"
#include "thinkmesh/gguf.h"

namespace thinkmesh::synth {
namespace {

// How a tensor's values are drawn.
enum class Init {
  weight,  // 0.02 × N(0, 1)
  norm,    // 1 + 0.01 × N(0, 1)
  bias,    // 0.02 × N(0, 1)
  values,  // fixed values (rope_freqs)
};

struct PlannedTensor {
  std::string name;
  std::vector<int64_t> ne;  // GGML order
  Init init = Init::weight;
  std::vector<float> values;  // Init::values: ne[0] values
  TensorType type = TensorType::F32;
};

void add(std::vector<PlannedTensor>& plan, std::string name, std::vector<int64_t> ne, Init init) {
  plan.push_back({std::move(name), std::move(ne), init, {}, TensorType::F32});
}

// rope_freqs.weight as convert_hf_to_gguf.py computes it for rope_scaling "llama3"
// (LlamaModel.generate_extra_tensors): one factor per rotated pair.
std::vector<float> llama3_rope_factors(const ModelShape& s, int32_t head_dim) {
  const double factor = s.llama3_rope_factor, low_freq_factor = 1.0, high_freq_factor = 4.0;
  const double old_context = 8192;  // original_max_position_embeddings
  const double low_wavelen = old_context / low_freq_factor;
  const double high_wavelen = old_context / high_freq_factor;
  std::vector<float> out;
  for (int32_t i = 0; i < head_dim; i += 2) {
    // float32 as torch computes freqs.
    const float freq = 1.0f / std::pow(s.rope_theta, static_cast<float>(i) / head_dim);
    const double wavelen = 2 * std::numbers::pi / freq;
    if (wavelen < high_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      out.push_back(static_cast<float>(factor));
    } else {
      const double smooth =
          (old_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      out.push_back(static_cast<float>(1 / ((1 - smooth) / factor + smooth)));
    }
  }
  return out;
}

// Llama / Qwen2: tensor names and order as convert_hf_to_gguf.py maps a HF checkpoint.
std::vector<PlannedTensor> plan_decoder(const ModelShape& s, int32_t n_layer, int32_t n_vocab) {
  const int64_t head_dim = s.n_embd / s.n_head;
  const int64_t q_dim = head_dim * s.n_head, kv_dim = head_dim * s.n_head_kv;
  std::vector<PlannedTensor> plan;
  add(plan, "token_embd.weight", {s.n_embd, n_vocab}, Init::weight);
  if (s.llama3_rope_factor > 0) {
    add(plan, "rope_freqs.weight", {head_dim / 2}, Init::values);
    plan.back().values = llama3_rope_factors(s, static_cast<int32_t>(head_dim));
  }
  for (int32_t l = 0; l < n_layer; ++l) {
    const std::string b = fmt::format("blk.{}.", l);
    add(plan, b + "attn_norm.weight", {s.n_embd}, Init::norm);
    add(plan, b + "attn_q.weight", {s.n_embd, q_dim}, Init::weight);
    if (s.qkv_bias) add(plan, b + "attn_q.bias", {q_dim}, Init::bias);
    add(plan, b + "attn_k.weight", {s.n_embd, kv_dim}, Init::weight);
    if (s.qkv_bias) add(plan, b + "attn_k.bias", {kv_dim}, Init::bias);
    add(plan, b + "attn_v.weight", {s.n_embd, kv_dim}, Init::weight);
    if (s.qkv_bias) add(plan, b + "attn_v.bias", {kv_dim}, Init::bias);
    add(plan, b + "attn_output.weight", {q_dim, s.n_embd}, Init::weight);
    add(plan, b + "ffn_norm.weight", {s.n_embd}, Init::norm);
    add(plan, b + "ffn_gate.weight", {s.n_embd, s.n_ff}, Init::weight);
    add(plan, b + "ffn_up.weight", {s.n_embd, s.n_ff}, Init::weight);
    add(plan, b + "ffn_down.weight", {s.n_ff, s.n_embd}, Init::weight);
  }
  add(plan, "output_norm.weight", {s.n_embd}, Init::norm);
  if (!s.tied_embeddings) add(plan, "output.weight", {s.n_embd, n_vocab}, Init::weight);
  return plan;
}

// BERT: exactly the tensors and order of fixtures/models/minilm-shape-F16.gguf.
std::vector<PlannedTensor> plan_bert(const ModelShape& s, int32_t n_layer, int32_t n_vocab,
                                     int32_t n_ctx) {
  std::vector<PlannedTensor> plan;
  add(plan, "position_embd.weight", {s.n_embd, n_ctx}, Init::weight);
  add(plan, "token_embd.weight", {s.n_embd, n_vocab}, Init::weight);
  add(plan, "token_embd_norm.bias", {s.n_embd}, Init::bias);
  add(plan, "token_embd_norm.weight", {s.n_embd}, Init::norm);
  add(plan, "token_types.weight", {s.n_embd, 2}, Init::weight);
  for (int32_t l = 0; l < n_layer; ++l) {
    const std::string b = fmt::format("blk.{}.", l);
    for (const char* m : {"attn_k", "attn_output"}) {
      add(plan, b + m + ".bias", {s.n_embd}, Init::bias);
      add(plan, b + m + ".weight", {s.n_embd, s.n_embd}, Init::weight);
    }
    add(plan, b + "attn_output_norm.bias", {s.n_embd}, Init::bias);
    add(plan, b + "attn_output_norm.weight", {s.n_embd}, Init::norm);
    for (const char* m : {"attn_q", "attn_v"}) {
      add(plan, b + m + ".bias", {s.n_embd}, Init::bias);
      add(plan, b + m + ".weight", {s.n_embd, s.n_embd}, Init::weight);
    }
    add(plan, b + "ffn_down.bias", {s.n_embd}, Init::bias);
    add(plan, b + "ffn_down.weight", {s.n_ff, s.n_embd}, Init::weight);
    add(plan, b + "ffn_up.bias", {s.n_ff}, Init::bias);
    add(plan, b + "ffn_up.weight", {s.n_embd, s.n_ff}, Init::weight);
    add(plan, b + "layer_output_norm.bias", {s.n_embd}, Init::bias);
    add(plan, b + "layer_output_norm.weight", {s.n_embd}, Init::norm);
  }
  return plan;
}

// general.file_type (llama_ftype) for a request.
uint32_t file_type(std::string_view request) {
  std::string upper(request);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::map<std::string, uint32_t> kTypes = {{"F32", 0},   {"F16", 1},   {"Q4_0", 2},
                                                  {"Q8_0", 7},  {"Q4_K", 14}, {"Q4_K_M", 15},
                                                  {"Q6_K", 18}, {"BF16", 32}};
  return kTypes.at(upper);  // tensor_type_for has rejected anything else
}

// Rows [first, first + n) of `t`, each drawn from its own generator, into `out`; the rows are
// split between `threads` threads.
void fill_rows(const PlannedTensor& t, uint64_t seed, int64_t first, int64_t n,
               std::span<uint8_t> out, int32_t threads) {
  const int64_t cols = t.ne[0];
  const size_t row = row_bytes(t.type, cols);
  auto run = [&](int64_t begin, int64_t end) {
    std::vector<float> values(static_cast<size_t>(cols));
    for (int64_t r = begin; r < end; ++r) {
      if (t.init == Init::values) {
        values = t.values;
      } else {
        NormalStream normal(row_seed(seed, first + r));
        const float mean = t.init == Init::norm ? 1.0f : 0.0f;
        const float sd = t.init == Init::norm ? 0.01f : 0.02f;
        for (float& v : values) v = mean + sd * normal.next();
      }
      quantize_row_reference(t.type, values.data(), out.data() + static_cast<size_t>(r) * row,
                             cols);
    }
  };
  const int64_t work = n * cols;
  const int32_t n_threads =
      static_cast<int32_t>(std::clamp<int64_t>(work / (int64_t{1} << 16), 1, threads));
  if (n_threads <= 1) return run(0, n);
  std::vector<std::thread> pool;
  const int64_t per = (n + n_threads - 1) / n_threads;
  for (int32_t i = 1; i < n_threads; ++i) {
    const int64_t b = std::min(n, i * per), e = std::min(n, (i + 1) * per);
    pool.emplace_back(run, b, e);
  }
  run(0, std::min(n, per));
  for (auto& th : pool) th.join();
}

void check_range(std::string_view what, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("synth: {} {} is out of range [{}, {}]", what, value, lo, hi));
  }
}

}  // namespace

SynthSummary synthesize(const SynthOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  const ModelShape& s = find_model_shape(o.like);
  if (o.output.empty()) throw Error(ErrorKind::invalid_argument, "synth: no output file (-o)");
  tensor_type_for(o.type, "x.weight", {256, 1}, 0, 0, 1, true);  // rejects an unknown type early
  const int32_t n_layer = o.n_layer > 0 ? o.n_layer : s.n_layer;
  const int32_t n_ctx = o.n_ctx > 0 ? o.n_ctx : s.n_ctx;
  check_range("--layers", n_layer, 1, 1024);
  check_range("--ctx", n_ctx, 1, 1 << 24);
  check_range("--threads", o.n_threads, 1, 256);
  const bool bert = s.arch == "bert";

  std::vector<gguf::KeyValue> vocab;
  if (!o.vocab_from.empty()) {
    if (o.n_vocab > 0) {
      throw Error(ErrorKind::invalid_argument,
                  "synth: --vocab-size and --vocab-from exclude each other (the copied "
                  "vocabulary has its own size)");
    }
    vocab = vocab_keys_from(gguf::File::open(o.vocab_from));
  } else {
    const int32_t size = o.n_vocab > 0 ? o.n_vocab : s.n_vocab;
    check_range("--vocab-size", size, 512, 1 << 22);
    vocab = bert ? synthetic_wordpiece_vocab(size) : synthetic_spm_vocab(size);
  }
  const int32_t n_vocab = vocab_size(vocab);

  std::vector<PlannedTensor> plan =
      bert ? plan_bert(s, n_layer, n_vocab, n_ctx) : plan_decoder(s, n_layer, n_vocab);
  const bool has_output = std::any_of(
      plan.begin(), plan.end(), [](const PlannedTensor& t) { return t.name == "output.weight"; });
  int32_t i_attn_v = 0, i_ffn_down = 0;
  uint64_t n_params = 0;
  for (PlannedTensor& t : plan) {
    t.type = tensor_type_for(o.type, t.name, t.ne, i_attn_v, i_ffn_down, n_layer, has_output);
    if (t.name.find("attn_v.weight") != std::string::npos) ++i_attn_v;
    if (t.name.find("ffn_down.weight") != std::string::npos) ++i_ffn_down;
    if (t.init != Init::values) {
      uint64_t n = 1;
      for (const int64_t d : t.ne) n *= static_cast<uint64_t>(d);
      n_params += n;
    }
  }

  SynthSummary summary;
  summary.output = o.output;
  summary.name = "synth-" + o.like;
  summary.n_vocab = n_vocab;
  summary.n_layer = n_layer;
  summary.n_params = n_params;
  summary.n_tensors = static_cast<int32_t>(plan.size());

  gguf::Writer w;
  const std::string a = std::string(s.arch) + ".";
  w.set("general.architecture", gguf::Value::string(std::string(s.arch)));
  w.set("general.type", gguf::Value::string("model"));
  w.set("general.name", gguf::Value::string(summary.name));
  w.set("general.size_label", gguf::Value::string(size_label(n_params)));
  w.set(a + "block_count", gguf::Value::u32(static_cast<uint32_t>(n_layer)));
  w.set(a + "context_length", gguf::Value::u32(static_cast<uint32_t>(n_ctx)));
  w.set(a + "embedding_length", gguf::Value::u32(static_cast<uint32_t>(s.n_embd)));
  w.set(a + "feed_forward_length", gguf::Value::u32(static_cast<uint32_t>(s.n_ff)));
  w.set(a + "attention.head_count", gguf::Value::u32(static_cast<uint32_t>(s.n_head)));
  if (bert) {
    w.set(a + "attention.layer_norm_epsilon", gguf::Value::f32(s.norm_eps));
    w.set(a + "attention.causal", gguf::Value::boolean(false));
    w.set(a + "pooling_type", gguf::Value::u32(1));  // mean, as sentence-transformers pools
    w.set("tokenizer.ggml.token_type_count", gguf::Value::u32(2));
  } else {
    const auto head_dim = static_cast<uint32_t>(s.n_embd / s.n_head);
    w.set(a + "attention.head_count_kv", gguf::Value::u32(static_cast<uint32_t>(s.n_head_kv)));
    w.set(a + "rope.freq_base", gguf::Value::f32(s.rope_theta));
    w.set(a + "attention.layer_norm_rms_epsilon", gguf::Value::f32(s.norm_eps));
    if (s.head_dim_in_config) {
      w.set(a + "attention.key_length", gguf::Value::u32(head_dim));
      w.set(a + "attention.value_length", gguf::Value::u32(head_dim));
    }
    if (s.arch == "llama") {  // LlamaModel.set_gguf_parameters adds these two
      w.set(a + "vocab_size", gguf::Value::u32(static_cast<uint32_t>(n_vocab)));
      w.set(a + "rope.dimension_count", gguf::Value::u32(head_dim));
    }
  }
  for (gguf::KeyValue& kv : vocab) w.set(std::move(kv.key), std::move(kv.value));
  vocab.clear();
  w.set("general.quantization_version", gguf::Value::u32(2));
  w.set("general.file_type", gguf::Value::u32(file_type(o.type)));

  std::map<std::string, int32_t> type_counts;
  for (const PlannedTensor& t : plan) {
    ++type_counts[std::string(name(t.type))];
    const uint64_t seed = tensor_seed(o.seed, t.name);
    const int32_t threads = o.n_threads;
    w.add_tensor(t.name, t.type, t.ne,
                 [&t, seed, threads](int64_t first, int64_t n, std::span<uint8_t> out) {
                   fill_rows(t, seed, first, n, out, threads);
                 });
  }
  w.write(o.output);

  summary.type_counts.assign(type_counts.begin(), type_counts.end());
  summary.file_bytes = std::filesystem::file_size(o.output);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace thinkmesh::synth
