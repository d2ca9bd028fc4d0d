// Model::load: hyperparameters from `<arch>.*` metadata and the layer tensors by llama.cpp's
// names, each checked for presence and shape before anything runs.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string_view>

#include <fmt/core.h>

#include "kernels/isa.h"
#include "kernels/repack.h"
#include "model/weights.h"
#include "thinkmesh/error.h"
#include "thinkmesh/model.h"

namespace thinkmesh {
namespace model {

extern const Architecture kLlamaArchitecture;
extern const Architecture kQwen2Architecture;

namespace {
const Architecture* const kArchitectures[] = {&kLlamaArchitecture, &kQwen2Architecture};
}  // namespace

const Architecture* find_architecture(const std::string& name) {
  for (const Architecture* a : kArchitectures) {
    if (name == a->name) return a;
  }
  return nullptr;
}

std::string architecture_names() {
  std::string out;
  for (const Architecture* a : kArchitectures)
    out += (out.empty() ? "" : ", ") + std::string(a->name);
  return out;
}

std::string shape_text(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

TensorView tensor(const gguf::File& file, const std::string& name, std::vector<int64_t> ne,
                  bool optional) {
  const gguf::TensorInfo* t = file.find_tensor(name);
  if (t == nullptr) {
    if (optional) return {};
    throw Error(ErrorKind::invalid_file,
                fmt::format("{}: tensor '{}' is missing (expected shape {})", file.path(), name,
                            shape_text(ne)));
  }
  std::vector<int64_t> actual = t->ne;
  while (actual.size() > ne.size() && actual.back() == 1) actual.pop_back();
  if (actual != ne) {
    throw Error(ErrorKind::invalid_file,
                fmt::format("{}: tensor '{}' has shape {}, expected {}", file.path(), name,
                            shape_text(t->ne), shape_text(ne)));
  }
  TensorView v;
  v.data = file.tensor_data(*t).data();
  v.type = t->type;
  v.cols = ne[0];
  v.rows = ne.size() > 1 ? ne[1] : 1;
  v.row_bytes = row_bytes(t->type, v.cols);
  v.name = name;
  return v;
}

}  // namespace model

struct Model::Impl {
  model::Weights weights;
  ModelInfo info;
  std::unique_ptr<Tokenizer> tokenizer;
  std::string tokenizer_error;  // why there is no tokenizer (an unsupported family), if so
  std::string chat_template;
};

namespace {

using model::tensor;
using model::TensorView;

int32_t get_i32(const gguf::File& f, const std::string& key) {
  const int64_t v = f.get_int(key);
  if (v <= 0 || v > (1 << 30)) {
    throw Error(ErrorKind::invalid_file,
                fmt::format("{}: {} = {} is out of range", f.path(), key, v));
  }
  return static_cast<int32_t>(v);
}

// A head count that may be given per layer (an array of block_count entries). The engine uses one
// head count for every layer (the KV cache has one row width), so an array must be uniform.
int32_t head_count(const gguf::File& f, const std::string& key, int32_t n_layer) {
  const gguf::Value* v = f.find(key);
  if (v == nullptr || !v->is_array()) return get_i32(f, key);
  const std::vector<int64_t> counts = f.get_int_array(key);
  if (counts.size() != static_cast<size_t>(n_layer)) {
    throw Error(ErrorKind::invalid_file, fmt::format("{}: {} has {} entries for {} layers",
                                                     f.path(), key, counts.size(), n_layer));
  }
  for (const int64_t c : counts) {
    if (c != counts[0] || c <= 0 || c > (1 << 20)) {
      throw Error(ErrorKind::unsupported,
                  fmt::format("{}: {} differs between layers or is not positive ({} in one "
                              "layer, {} in layer 0); only one head count for all layers is "
                              "supported",
                              f.path(), key, c, counts[0]));
    }
  }
  return static_cast<int32_t>(counts[0]);
}

ModelInfo read_info(const gguf::File& f, const std::string& arch) {
  ModelInfo m;
  m.architecture = arch;
  m.name = f.get_string_or("general.name", std::filesystem::path(f.path()).stem().string());
  const std::string p = arch + ".";
  m.n_embd = get_i32(f, p + "embedding_length");
  m.n_layer = get_i32(f, p + "block_count");
  m.n_head = head_count(f, p + "attention.head_count", m.n_layer);
  m.n_head_kv = f.find(p + "attention.head_count_kv")
                    ? head_count(f, p + "attention.head_count_kv", m.n_layer)
                    : m.n_head;
  // Head size: <arch>.attention.key_length when present (llama.cpp's n_embd_head_k; a model
  // whose attention heads were pruned keeps its head size), else n_embd / n_head.
  const int64_t key_length = f.get_int_or(p + "attention.key_length", 0);
  const int64_t value_length = f.get_int_or(p + "attention.value_length", key_length);
  if (key_length != value_length || key_length < 0 || key_length > 65536) {
    throw Error(ErrorKind::unsupported,
                fmt::format("{}: attention key_length {} / value_length {} (equal sizes up to "
                            "65536 are supported)",
                            f.path(), key_length, value_length));
  }
  if ((key_length == 0 && m.n_embd % m.n_head != 0) || m.n_head % m.n_head_kv != 0) {
    throw Error(ErrorKind::invalid_file,
                fmt::format("{}: {} heads ({} KV heads) do not divide embedding length {}",
                            f.path(), m.n_head, m.n_head_kv, m.n_embd));
  }
  m.head_dim = key_length > 0 ? static_cast<int32_t>(key_length) : m.n_embd / m.n_head;
  const gguf::Value* ff = f.find(p + "feed_forward_length");
  if (ff == nullptr)
    throw Error(ErrorKind::not_found, fmt::format("{}: no {}feed_forward_length", f.path(), p));
  if (ff->is_array()) {
    for (const int64_t v : f.get_int_array(p + "feed_forward_length"))
      m.n_ff.push_back(static_cast<int32_t>(v));
    if (m.n_ff.size() != static_cast<size_t>(m.n_layer)) {
      throw Error(ErrorKind::invalid_file,
                  fmt::format("{}: {}feed_forward_length has {} entries for {} layers", f.path(), p,
                              m.n_ff.size(), m.n_layer));
    }
  } else {
    m.n_ff.assign(static_cast<size_t>(m.n_layer), get_i32(f, p + "feed_forward_length"));
  }
  m.n_ctx_train = static_cast<int32_t>(f.get_int_or(p + "context_length", 2048));
  m.rms_eps = static_cast<float>(f.get_float_or(p + "attention.layer_norm_rms_epsilon", 1e-5));
  m.rope_freq_base = static_cast<float>(f.get_float_or(p + "rope.freq_base", 10000.0));
  const double scaling = f.get_float_or(p + "rope.scaling.factor", 0.0);
  m.rope_freq_scale = scaling > 0 ? static_cast<float>(1.0 / scaling) : 1.0f;
  m.rope_dims = static_cast<int32_t>(f.get_int_or(p + "rope.dimension_count", m.head_dim));
  if (m.rope_dims <= 0 || m.rope_dims > m.head_dim || m.rope_dims % 2 != 0) {
    throw Error(ErrorKind::invalid_file,
                fmt::format("{}: rope.dimension_count {} does not fit head size {}", f.path(),
                            m.rope_dims, m.head_dim));
  }
  m.file_bytes = f.file_size();
  std::map<std::string, uint64_t> bytes_by_type;
  for (const auto& t : f.tensors()) {
    m.weight_bytes += t.nbytes;
    if (t.ne.size() >= 2) bytes_by_type[std::string(name(t.type))] += t.nbytes;
  }
  uint64_t best = 0;
  for (const auto& [type, bytes] : bytes_by_type) {
    if (bytes > best) best = bytes, m.weight_type = type;
  }
  return m;
}

}  // namespace

Model::Model() : impl_(std::make_unique<Impl>()) {}
Model::~Model() = default;

namespace {

// THINKMESH_REPACK=0 turns load-time repacking off (for comparisons).
bool repack_enabled_by_environment() {
  const char* env = std::getenv("THINKMESH_REPACK");
  return env == nullptr || std::string_view(env) != "0";
}

// Copies the matrices the active kernel level has an interleaved kernel for into that layout
// (kernels/repack.h). The file's own layout stays mapped and is used whenever the level changes
// or for embedding lookups.
void repack_weights(model::Weights& w, ModelInfo& info) {
  const kernels::Isa isa = kernels::active_isa();
  auto pack = [&](model::TensorView& v) {
    if (!v || !kernels::can_repack(isa, v.type, v.rows, v.cols)) return;
    const size_t bytes = kernels::repacked_bytes(v.type, v.rows, v.cols);
    auto buffer = std::make_unique<uint8_t[]>(bytes);
    kernels::repack(v.type, v.data, v.row_bytes, v.rows, v.cols, buffer.get());
    v.packed = buffer.get();
    w.packed_storage.push_back(std::move(buffer));
    info.repacked_bytes += bytes;
  };
  for (model::LayerWeights& l : w.layers) {
    for (model::TensorView* v : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
      pack(*v);
  }
  pack(w.output);
}

}  // namespace

std::shared_ptr<const Model> Model::load(const std::string& path, const ModelOptions& options) {
  gguf::File file = gguf::File::open(path);
  const std::string arch_name = file.get_string_or("general.architecture", "");
  const model::Architecture* arch = model::find_architecture(arch_name);
  if (arch == nullptr) {
    throw Error(ErrorKind::unsupported,
                fmt::format("{}: architecture '{}' is not supported; supported: {}", path,
                            arch_name, model::architecture_names()));
  }
  std::shared_ptr<Model> m(new Model());
  Impl& impl = *m->impl_;
  impl.info = read_info(file, arch_name);
  ModelInfo& info = impl.info;

  const TensorView embd = [&] {
    const gguf::TensorInfo* t = file.find_tensor("token_embd.weight");
    if (t == nullptr || t->ne.size() < 2) {
      throw Error(ErrorKind::invalid_file,
                  fmt::format("{}: tensor 'token_embd.weight' is missing", path));
    }
    return tensor(file, "token_embd.weight", {info.n_embd, t->ne[1]});
  }();
  info.n_vocab = static_cast<int32_t>(embd.rows);
  model::Weights& w = impl.weights;
  w.arch = *arch;
  info.rope_neox = arch->rope_neox;
  w.token_embd = embd;
  w.output_norm = tensor(file, "output_norm.weight", {info.n_embd});
  w.output = tensor(file, "output.weight", {info.n_embd, info.n_vocab}, /*optional=*/true);
  if (!w.output) w.output = embd;  // tied embeddings
  const int64_t q_dim = int64_t{info.n_head} * info.head_dim;
  const int64_t kv_dim = int64_t{info.n_head_kv} * info.head_dim;
  for (int32_t l = 0; l < info.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    const int64_t n_ff = info.n_ff[static_cast<size_t>(l)];
    model::LayerWeights lw;
    lw.attn_norm = tensor(file, b + "attn_norm.weight", {info.n_embd});
    lw.wq = tensor(file, b + "attn_q.weight", {info.n_embd, q_dim});
    lw.wk = tensor(file, b + "attn_k.weight", {info.n_embd, kv_dim});
    lw.wv = tensor(file, b + "attn_v.weight", {info.n_embd, kv_dim});
    lw.wo = tensor(file, b + "attn_output.weight", {q_dim, info.n_embd});
    if (arch->qkv_bias) {
      lw.bq = tensor(file, b + "attn_q.bias", {q_dim});
      lw.bk = tensor(file, b + "attn_k.bias", {kv_dim});
      lw.bv = tensor(file, b + "attn_v.bias", {kv_dim});
    }
    lw.ffn_norm = tensor(file, b + "ffn_norm.weight", {info.n_embd});
    lw.w_gate = tensor(file, b + "ffn_gate.weight", {info.n_embd, n_ff});
    lw.w_up = tensor(file, b + "ffn_up.weight", {info.n_embd, n_ff});
    lw.w_down = tensor(file, b + "ffn_down.weight", {n_ff, info.n_embd});
    for (const TensorView* norm : {&lw.attn_norm, &lw.ffn_norm}) {
      if (norm->type != TensorType::F32) {
        throw Error(ErrorKind::unsupported, fmt::format("{}: norm tensor '{}' is {}, expected F32",
                                                        path, norm->name, name(norm->type)));
      }
    }
    w.layers.push_back(std::move(lw));
  }
  if (w.output_norm.type != TensorType::F32) {
    throw Error(ErrorKind::unsupported, fmt::format("{}: output_norm.weight must be F32", path));
  }
  impl.chat_template = file.get_string_or("tokenizer.chat_template", "");
  if (options.load_tokenizer) {
    try {
      impl.tokenizer = Tokenizer::from_gguf(file);
    } catch (const Error& e) {
      // A tokenizer family or pre-tokenizer we do not have yet must not stop the weights from
      // running (logits from token ids, the batch API); tokenizer() reports it when asked.
      // Malformed vocabularies (invalid_file) still fail the load.
      if (e.kind() != ErrorKind::unsupported) throw;
      impl.tokenizer_error = e.what();
    }
  }
  if (options.repack && repack_enabled_by_environment()) repack_weights(w, info);
  w.file.emplace(std::move(file));
  return m;
}

const ModelInfo& Model::info() const {
  return impl_->info;
}
const std::string& Model::chat_template() const {
  return impl_->chat_template;
}
const model::Weights& Model::weights() const {
  return impl_->weights;
}
std::string Model::supported_architectures() {
  return model::architecture_names();
}

const Tokenizer& Model::tokenizer() const {
  if (!impl_->tokenizer_error.empty()) throw Error(ErrorKind::unsupported, impl_->tokenizer_error);
  if (!impl_->tokenizer)
    throw Error(ErrorKind::not_found, "the model was loaded without its tokenizer");
  return *impl_->tokenizer;
}

bool Model::has_tokenizer() const {
  return impl_->tokenizer != nullptr;
}

}  // namespace thinkmesh
