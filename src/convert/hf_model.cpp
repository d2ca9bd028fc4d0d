// convert_hf: a Hugging Face folder → GGUF with convert_hf_to_gguf.py's (c392e50) keys,
// tensor names and tensor types, for LlamaModel, Qwen2Model and BertModel.
//
// Tensors come in llama.cpp's order (shards by file name, tensors by name within a shard).
// Llama's q_proj/k_proj rows are permuted from HF's half-split RoPE layout to GGUF's
// interleaved pairs: within each head of d rows, GGUF row 2i+s = HF row s·d/2 + i
// (s ∈ {0,1}, i < d/2); k_proj uses the KV head count. Qwen2 (NEOX RoPE) and BERT are copied.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <map>
#include <regex>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "convert/convert_internal.h"
#include "convert/hf_internal.h"
#include "thinkmesh/error.h"

namespace thinkmesh::convert {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct ArchEntry {
  const char* hf_name;
  HfArch arch;
};
constexpr ArchEntry kArchitectures[] = {
    {"LlamaForCausalLM", HfArch::llama},   {"LLaMAForCausalLM", HfArch::llama},
    {"MistralForCausalLM", HfArch::llama}, {"Qwen2ForCausalLM", HfArch::qwen2},
    {"BertModel", HfArch::bert},           {"BertForMaskedLM", HfArch::bert},
};

const char* gguf_arch_name(HfArch arch) {
  switch (arch) {
    case HfArch::llama:
      return "llama";
    case HfArch::qwen2:
      return "qwen2";
    case HfArch::bert:
      return "bert";
  }
  return "?";
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// HF name (without its .weight/.bias suffix) → GGUF base name; {bid} is the block number.
struct NamePattern {
  std::regex hf;
  std::string gguf;
};

const std::vector<NamePattern>& decoder_patterns() {
  static const std::vector<NamePattern> patterns = [] {
    std::vector<std::pair<std::string, std::string>> p = {
        {"model\\.embed_tokens", "token_embd"},
        {"model\\.norm", "output_norm"},
        {"lm_head", "output"},
        {"model\\.layers\\.(\\d+)\\.input_layernorm", "blk.{}.attn_norm"},
        {"model\\.layers\\.(\\d+)\\.self_attn\\.q_proj", "blk.{}.attn_q"},
        {"model\\.layers\\.(\\d+)\\.self_attn\\.k_proj", "blk.{}.attn_k"},
        {"model\\.layers\\.(\\d+)\\.self_attn\\.v_proj", "blk.{}.attn_v"},
        {"model\\.layers\\.(\\d+)\\.self_attn\\.o_proj", "blk.{}.attn_output"},
        {"model\\.layers\\.(\\d+)\\.post_attention_layernorm", "blk.{}.ffn_norm"},
        {"model\\.layers\\.(\\d+)\\.mlp\\.gate_proj", "blk.{}.ffn_gate"},
        {"model\\.layers\\.(\\d+)\\.mlp\\.up_proj", "blk.{}.ffn_up"},
        {"model\\.layers\\.(\\d+)\\.mlp\\.down_proj", "blk.{}.ffn_down"},
    };
    std::vector<NamePattern> out;
    for (auto& [hf, gguf] : p) out.push_back({std::regex(hf), gguf});
    return out;
  }();
  return patterns;
}

const std::vector<NamePattern>& bert_patterns() {
  static const std::vector<NamePattern> patterns = [] {
    std::vector<std::pair<std::string, std::string>> p = {
        {"embeddings\\.word_embeddings", "token_embd"},
        {"embeddings\\.token_type_embeddings", "token_types"},
        {"embeddings\\.position_embeddings", "position_embd"},
        {"embeddings\\.LayerNorm", "token_embd_norm"},
        {"encoder\\.layer\\.(\\d+)\\.attention\\.self\\.query", "blk.{}.attn_q"},
        {"encoder\\.layer\\.(\\d+)\\.attention\\.self\\.key", "blk.{}.attn_k"},
        {"encoder\\.layer\\.(\\d+)\\.attention\\.self\\.value", "blk.{}.attn_v"},
        {"encoder\\.layer\\.(\\d+)\\.attention\\.output\\.dense", "blk.{}.attn_output"},
        {"encoder\\.layer\\.(\\d+)\\.attention\\.output\\.LayerNorm", "blk.{}.attn_output_norm"},
        {"encoder\\.layer\\.(\\d+)\\.intermediate\\.dense", "blk.{}.ffn_up"},
        {"encoder\\.layer\\.(\\d+)\\.output\\.dense", "blk.{}.ffn_down"},
        {"encoder\\.layer\\.(\\d+)\\.output\\.LayerNorm", "blk.{}.layer_output_norm"},
    };
    std::vector<NamePattern> out;
    for (auto& [hf, gguf] : p) out.push_back({std::regex(hf), gguf});
    return out;
  }();
  return patterns;
}

// The GGUF name of an HF tensor; "" for tensors llama.cpp drops. Error(unsupported) for
// names it cannot map (as convert_hf_to_gguf.py's "Can not map tensor").
std::string map_name(std::string name, HfArch arch, int64_t n_layer, const std::string& file) {
  if (ends_with(name, ".attention.masked_bias") || ends_with(name, ".attention.bias") ||
      ends_with(name, ".rotary_emb.inv_freq")) {
    return "";
  }
  if (arch == HfArch::bert) {
    if (name.rfind("bert.", 0) == 0) name = name.substr(5);
    if (ends_with(name, ".gamma")) name = name.substr(0, name.size() - 6) + ".weight";
    if (ends_with(name, ".beta")) name = name.substr(0, name.size() - 5) + ".bias";
    if (name == "embeddings.position_ids" || name == "pooler.dense.weight" ||
        name == "pooler.dense.bias" || name.rfind("cls.predictions", 0) == 0 ||
        name.rfind("cls.seq_relationship", 0) == 0) {
      return "";
    }
  }
  std::string suffix;
  std::string base = name;
  for (const char* s : {".weight", ".bias"}) {
    if (ends_with(name, s)) {
      suffix = s;
      base = name.substr(0, name.size() - std::string_view(s).size());
      break;
    }
  }
  const auto& patterns = arch == HfArch::bert ? bert_patterns() : decoder_patterns();
  for (const auto& p : patterns) {
    std::smatch m;
    if (!std::regex_match(base, m, p.hf)) continue;
    if (m.size() > 1) {
      const int64_t bid = std::stoll(m[1].str());
      if (bid >= n_layer) break;  // a block the config does not have
      return fmt::format(fmt::runtime(p.gguf), bid) + suffix;
    }
    return p.gguf + suffix;
  }
  throw Error(ErrorKind::unsupported, fmt::format("{}: cannot map tensor '{}' to a {} GGUF name",
                                                  file, name, gguf_arch_name(arch)));
}

// LlamaModel.permute on the rows of `values` ([rows][cols], row-major).
std::vector<float> permute_rows(const std::vector<float>& values, int64_t rows, int64_t cols,
                                int64_t n_head, const std::string& what) {
  if (n_head <= 0 || rows % (2 * n_head) != 0) {
    throw Error(
        ErrorKind::invalid_file,
        fmt::format("{}: {} rows cannot be split into {} heads of pairs", what, rows, n_head));
  }
  const int64_t d = rows / n_head, half = d / 2;
  std::vector<float> out(values.size());
  for (int64_t h = 0; h < n_head; ++h) {
    for (int64_t s = 0; s < 2; ++s) {
      for (int64_t i = 0; i < half; ++i) {
        const float* src = values.data() + (h * d + s * half + i) * cols;
        std::copy(src, src + cols, out.data() + (h * d + 2 * i + s) * cols);
      }
    }
  }
  return out;
}

// First of `keys` present in config.json.
const json* find_hparam(const json& config, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    if (config.contains(k) && !config[k].is_null()) return &config[k];
  }
  return nullptr;
}

uint32_t as_u32(const json& v, const char* what, const fs::path& path) {
  if (!v.is_number_unsigned() || v.get<uint64_t>() > 0xFFFFFFFFu) {
    throw Error(ErrorKind::invalid_file,
                fmt::format("{}: {} = {} is not a non-negative 32-bit integer", path.string(), what,
                            v.dump()));
  }
  return v.get<uint32_t>();
}

float as_f32(const json& v, const char* what, const fs::path& path) {
  if (!v.is_number()) {
    throw Error(ErrorKind::invalid_file,
                fmt::format("{}: {} = {} is not a number", path.string(), what, v.dump()));
  }
  return static_cast<float>(v.get<double>());
}

// Model.set_gguf_parameters and the per-architecture additions.
void write_hparams(gguf::Writer& w, const HfFolder& f, HfArch arch, uint32_t n_layer,
                   TensorType type) {
  const std::string a = gguf_arch_name(arch);
  const fs::path cfg = f.dir / "config.json";
  const json& c = f.config;
  const auto u32 = [&](const std::string& key, const json& v, const char* what) {
    w.set(a + "." + key, gguf::Value::u32(as_u32(v, what, cfg)));
  };
  const auto f32 = [&](const std::string& key, const json& v, const char* what) {
    w.set(a + "." + key, gguf::Value::f32(as_f32(v, what, cfg)));
  };
  w.set(a + ".block_count", gguf::Value::u32(n_layer));
  if (const json* v = find_hparam(c, {"max_position_embeddings", "n_ctx"}))
    u32("context_length", *v, "context length");
  if (const json* v = find_hparam(c, {"hidden_size", "n_embd"}))
    u32("embedding_length", *v, "hidden_size");
  if (const json* v = find_hparam(c, {"intermediate_size", "n_inner"}))
    u32("feed_forward_length", *v, "intermediate_size");
  if (const json* v = find_hparam(c, {"num_attention_heads", "n_head"}))
    u32("attention.head_count", *v, "num_attention_heads");
  if (const json* v = find_hparam(c, {"num_key_value_heads"}))
    u32("attention.head_count_kv", *v, "num_key_value_heads");
  if (const json* v = find_hparam(c, {"rope_theta"})) f32("rope.freq_base", *v, "rope_theta");
  if (const json* v = find_hparam(c, {"rms_norm_eps"}))
    f32("attention.layer_norm_rms_epsilon", *v, "rms_norm_eps");
  if (const json* v = find_hparam(c, {"layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"})) {
    f32("attention.layer_norm_epsilon", *v, "layer_norm_eps");
  }
  if (const json* v = find_hparam(c, {"head_dim"})) {
    u32("attention.key_length", *v, "head_dim");
    u32("attention.value_length", *v, "head_dim");
  }
  w.set("general.file_type", gguf::Value::u32(file_type_id(type)));

  const json* scaling = find_hparam(c, {"rope_scaling"});
  const bool scaled = scaling && scaling->is_object() && scaling->contains("factor");
  if (arch == HfArch::llama) {
    const json* vocab = find_hparam(c, {"vocab_size"});
    if (!vocab)
      throw Error(ErrorKind::invalid_file, fmt::format("{}: no vocab_size", cfg.string()));
    u32("vocab_size", *vocab, "vocab_size");
    const json* head_dim = find_hparam(c, {"head_dim"});
    uint32_t rope_dims = 0;
    if (head_dim) {
      rope_dims = as_u32(*head_dim, "head_dim", cfg);
    } else {
      const json* hidden = find_hparam(c, {"hidden_size"});
      const json* heads = find_hparam(c, {"num_attention_heads"});
      if (!hidden || !heads || as_u32(*heads, "num_attention_heads", cfg) == 0) {
        throw Error(ErrorKind::invalid_file,
                    fmt::format("{}: needs hidden_size and num_attention_heads", cfg.string()));
      }
      rope_dims = as_u32(*hidden, "hidden_size", cfg) / as_u32(*heads, "num_attention_heads", cfg);
    }
    w.set(a + ".rope.dimension_count", gguf::Value::u32(rope_dims));
    if (scaled) {
      const std::string kind = scaling->value("type", scaling->value("rope_type", ""));
      if (kind == "linear") {
        w.set(a + ".rope.scaling.type", gguf::Value::string("linear"));
        f32("rope.scaling.factor", (*scaling)["factor"], "rope_scaling.factor");
      }
    }
  } else if (arch == HfArch::qwen2) {
    if (scaled && scaling->value("type", "") == "yarn") {
      w.set(a + ".rope.scaling.type", gguf::Value::string("yarn"));
      f32("rope.scaling.factor", (*scaling)["factor"], "rope_scaling.factor");
      if (const json* orig = find_hparam(*scaling, {"original_max_position_embeddings"})) {
        u32("rope.scaling.original_context_length", *orig, "original_max_position_embeddings");
      }
    }
  } else {  // bert
    w.set(a + ".attention.causal", gguf::Value::boolean(false));
    // The pooling of a sentence-transformers folder: modules.json → <Pooling>/config.json.
    const fs::path modules = f.dir / "modules.json";
    if (fs::exists(modules)) {
      const json m = read_json_file(modules);
      for (const auto& mod : m.is_array() ? m : json::array()) {
        if (!mod.is_object() || mod.value("type", "") != "sentence_transformers.models.Pooling")
          continue;
        const fs::path rel = mod.value("path", "");
        if (rel.is_absolute() || rel.string().find("..") != std::string::npos) {
          throw Error(ErrorKind::invalid_file,
                      fmt::format("{}: pooling path '{}' leaves the folder", modules.string(),
                                  rel.string()));
        }
        const json pooling = read_json_file(f.dir / rel / "config.json");
        uint32_t pooling_type = 0;
        if (pooling.value("pooling_mode_mean_tokens", false)) {
          pooling_type = 1;  // MEAN
        } else if (pooling.value("pooling_mode_cls_token", false)) {
          pooling_type = 2;  // CLS
        } else {
          throw Error(ErrorKind::unsupported,
                      fmt::format("{}: only MEAN and CLS pooling are supported",
                                  (f.dir / rel / "config.json").string()));
        }
        w.set(a + ".pooling_type", gguf::Value::u32(pooling_type));
        break;
      }
    }
  }
}

// LlamaModel.generate_extra_tensors: Llama 3.1's "llama3" rope scaling as per-dimension
// frequency divisors, rope_freqs.weight [head_dim / 2] (float32 arithmetic, as torch does).
std::vector<float> llama3_rope_factors(const json& c, const json& scaling, const fs::path& cfg) {
  const float base =
      c.contains("rope_theta") ? as_f32(c["rope_theta"], "rope_theta", cfg) : 10000.0f;
  uint32_t dim = 0;
  if (c.contains("head_dim")) {
    dim = as_u32(c["head_dim"], "head_dim", cfg);
  } else {
    const uint32_t heads =
        as_u32(c.value("num_attention_heads", json(0)), "num_attention_heads", cfg);
    if (heads == 0)
      throw Error(ErrorKind::invalid_file,
                  fmt::format("{}: num_attention_heads is 0", cfg.string()));
    dim = as_u32(c.value("hidden_size", json(0)), "hidden_size", cfg) / heads;
  }
  const auto number = [&](const char* key, float fallback) {
    return scaling.contains(key) ? as_f32(scaling[key], key, cfg) : fallback;
  };
  const float factor = number("factor", 8.0f), low = number("low_freq_factor", 1.0f),
              high = number("high_freq_factor", 4.0f);
  const float old_ctx =
      c.contains("original_max_position_embeddings")
          ? as_f32(c["original_max_position_embeddings"], "original_max_position_embeddings", cfg)
          : 8192.0f;
  const float low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
  if (low_wavelen == high_wavelen) {
    throw Error(
        ErrorKind::invalid_file,
        fmt::format("{}: rope_scaling low_freq_factor equals high_freq_factor", cfg.string()));
  }
  std::vector<float> factors;
  for (uint32_t i = 0; i < dim; i += 2) {
    const float freq = 1.0f / std::pow(base, static_cast<float>(i) / static_cast<float>(dim));
    const float wavelen = static_cast<float>(2 * M_PI) / freq;
    if (wavelen < high_wavelen) {
      factors.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      factors.push_back(factor);
    } else {
      const float smooth = (old_ctx / wavelen - low) / (high - low);
      factors.push_back(1.0f / ((1.0f - smooth) / factor + smooth));
    }
  }
  return factors;
}

}  // namespace

std::string supported_hf_architectures() {
  std::string names;
  for (const auto& e : kArchitectures)
    names += fmt::format("{}{}", names.empty() ? "" : ", ", e.hf_name);
  return names;
}

namespace {

ConvertResult convert_hf_folder(const std::string& folder, const std::string& output,
                                const ConvertOptions& options) {
  const TensorType type = weight_type(options, TensorType::F16);
  HfFolder f;
  f.dir = fs::path(folder);
  const fs::path cfg = f.dir / "config.json";
  f.config = read_json_file(cfg);
  if (!f.config.is_object())
    throw Error(ErrorKind::invalid_file, fmt::format("{}: not an object", cfg.string()));
  if (fs::exists(f.dir / "tokenizer.json"))
    f.tokenizer_json = read_json_file(f.dir / "tokenizer.json");
  if (fs::exists(f.dir / "tokenizer_config.json")) {
    f.tokenizer_config = read_json_file(f.dir / "tokenizer_config.json");
  }

  const json archs = f.config.value("architectures", json::array());
  const std::string hf_arch = archs.is_array() && !archs.empty() && archs[0].is_string()
                                  ? archs[0].get<std::string>()
                                  : std::string();
  const ArchEntry* entry = nullptr;
  for (const auto& e : kArchitectures) {
    if (hf_arch == e.hf_name) entry = &e;
  }
  if (!entry) {
    throw Error(
        ErrorKind::unsupported,
        fmt::format("{}: architecture '{}' is not supported; supported: {}", cfg.string(),
                    hf_arch.empty() ? "(none listed)" : hf_arch, supported_hf_architectures()));
  }
  const HfArch arch = entry->arch;
  const json* layers =
      find_hparam(f.config, {"n_layers", "num_hidden_layers", "n_layer", "num_layers"});
  if (!layers)
    throw Error(ErrorKind::invalid_file, fmt::format("{}: no num_hidden_layers", cfg.string()));
  const uint32_t n_layer = as_u32(*layers, "num_hidden_layers", cfg);
  const json* heads_v = find_hparam(f.config, {"num_attention_heads"});
  const int64_t n_head = heads_v ? as_u32(*heads_v, "num_attention_heads", cfg) : 0;
  const json* kv_v = find_hparam(f.config, {"num_key_value_heads"});
  const int64_t n_head_kv = kv_v ? as_u32(*kv_v, "num_key_value_heads", cfg) : n_head;

  const SafetensorsSet weights = SafetensorsSet::open_folder(folder);
  gguf::Writer w;
  TensorSink sink(w);
  if (arch == HfArch::llama && f.config.contains("rope_scaling") &&
      f.config["rope_scaling"].is_object()) {
    std::string kind = f.config["rope_scaling"].value("rope_type", "");
    std::transform(kind.begin(), kind.end(), kind.begin(),
                   [](unsigned char ch) { return std::tolower(ch); });
    if (kind == "llama3") {
      const auto factors = llama3_rope_factors(f.config, f.config["rope_scaling"], cfg);
      sink.add("rope_freqs.weight", {static_cast<int64_t>(factors.size())}, factors, type);
    }
  }
  // Permuted or re-encoded tensors own their bytes; unchanged ones are views into the maps.
  for (const auto& [file, t] : weights.entries()) {
    const std::string gguf_name = map_name(t->name, arch, n_layer, file->path());
    if (gguf_name.empty()) continue;
    if (t->shape.empty() || t->shape.size() > 4) {
      throw Error(ErrorKind::unsupported, fmt::format("{}: tensor '{}' has {} dimensions",
                                                      file->path(), t->name, t->shape.size()));
    }
    std::vector<int64_t> ne(t->shape.rbegin(), t->shape.rend());
    const TensorType store = storage_type(gguf_name, ne.size(), type);
    const bool permute =
        arch == HfArch::llama &&
        (ends_with(t->name, "q_proj.weight") || ends_with(t->name, "q_proj.bias") ||
         ends_with(t->name, "k_proj.weight") || ends_with(t->name, "k_proj.bias"));
    const bool same_encoding = (t->dtype == StDtype::F32 && store == TensorType::F32) ||
                               (t->dtype == StDtype::F16 && store == TensorType::F16) ||
                               (t->dtype == StDtype::BF16 && store == TensorType::BF16);
    if (!permute && same_encoding) {
      sink.add_view(gguf_name, std::move(ne), store, t->data);
      continue;
    }
    std::vector<float> values = to_f32(*t, file->path());
    if (permute) {
      const int64_t rows = t->shape[0];
      const int64_t cols = t->shape.size() > 1 ? values.size() / std::max<int64_t>(rows, 1) : 1;
      const bool is_q = t->name.find("q_proj") != std::string::npos;
      values = permute_rows(values, rows, cols, is_q ? n_head : n_head_kv,
                            fmt::format("{}: tensor '{}'", file->path(), t->name));
    }
    sink.add(gguf_name, std::move(ne), values, type);
  }
  if (sink.n_tensors() == 0) {
    throw Error(ErrorKind::invalid_file, fmt::format("{}: no tensors to convert", folder));
  }

  // Metadata in convert_hf_to_gguf.py's order (llama.cpp does not depend on it).
  fs::path normal = fs::absolute(f.dir).lexically_normal();
  if (normal.filename().empty()) normal = normal.parent_path();  // "folder/"
  const std::string dir_name = normal.filename().string();
  w.set("general.architecture", gguf::Value::string(gguf_arch_name(arch)));
  w.set("general.type", gguf::Value::string("model"));
  w.set("general.name",
        gguf::Value::string(options.name.empty() ? (dir_name.empty() ? "model" : dir_name)
                                                 : options.name));
  w.set("general.size_label", gguf::Value::string(size_label(sink.n_params())));
  write_hparams(w, f, arch, n_layer, type);
  const size_t n_vocab = write_hf_vocab(w, f, arch);
  w.set("general.quantization_version", gguf::Value::u32(kQuantizationVersion));
  write_output(w, output);

  ConvertResult result;
  result.source_format = "safetensors";
  result.architecture = gguf_arch_name(arch);
  result.type = type;
  result.n_tensors = sink.n_tensors();
  result.n_params = sink.n_params();
  result.n_vocab = n_vocab;
  return result;
}

}  // namespace

ConvertResult convert_hf(const std::string& folder, const std::string& output,
                         const ConvertOptions& options) {
  try {
    return convert_hf_folder(folder, output, options);
  } catch (const json::exception& e) {
    // A config.json / tokenizer file value of an unexpected JSON type.
    throw Error(ErrorKind::invalid_file,
                fmt::format("{}: unexpected JSON structure: {}", folder, e.what()));
  }
}

ConvertResult convert_any(const std::string& source, const std::string& output,
                          const ConvertOptions& options) {
  const fs::path p(source);
  if (!fs::exists(p)) throw Error(ErrorKind::not_found, fmt::format("{}: not found", source));
  if (fs::is_directory(p)) {
    if (fs::exists(p / "config.json")) return convert_hf(source, output, options);
    std::vector<fs::path> checkpoints;
    for (const auto& e : fs::directory_iterator(p)) {
      const std::string name = e.path().filename().string();
      if (e.path().extension() == ".bin" && name.rfind("tok", 0) != 0)
        checkpoints.push_back(e.path());
    }
    if (checkpoints.size() == 1) return convert_llama2c(checkpoints[0].string(), output, options);
    throw Error(ErrorKind::invalid_argument,
                fmt::format("{}: neither a Hugging Face folder (config.json) nor a folder with one "
                            "llama2.c checkpoint (.bin besides tok*.bin; found {})",
                            source, checkpoints.size()));
  }
  if (p.extension() == ".bin") return convert_llama2c(source, output, options);
  throw Error(ErrorKind::invalid_argument,
              fmt::format("{}: give a Hugging Face folder or a llama2.c .bin checkpoint", source));
}

}  // namespace thinkmesh::convert
