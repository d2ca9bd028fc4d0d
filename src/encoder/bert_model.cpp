// BertModel::load: `bert.*` hyperparameters and the encoder tensors, each checked before use.
#include "encoder/bert_model.h"

#include <fmt/core.h>

#include "kernels/vec_dot.h"
#include "thinkmesh/error.h"

namespace thinkmesh::encoder {
namespace {

using model::shape_text;
using model::tensor;
using model::TensorView;

[[noreturn]] void fail(const gguf::File& f, const std::string& what) {
  throw Error(ErrorKind::invalid_file, fmt::format("{}: bert model: {}", f.path(), what));
}

// A [D] vector (norm weight or bias): F32, as llama.cpp's converter writes them.
TensorView vector_f32(const gguf::File& f, const std::string& name, int64_t n) {
  TensorView v = tensor(f, name, {n});
  if (v.type != TensorType::F32) {
    throw Error(ErrorKind::unsupported, fmt::format("{}: tensor '{}' is {}, expected F32", f.path(),
                                                    name, thinkmesh::name(v.type)));
  }
  return v;
}

// A weight matrix [cols, rows]: any type the matrix product has a kernel for.
TensorView matrix(const gguf::File& f, const std::string& name, int64_t cols, int64_t rows) {
  TensorView v = tensor(f, name, {cols, rows});
  if (!kernels::has_vec_dot(v.type)) {
    throw Error(ErrorKind::unsupported,
                fmt::format("{}: tensor '{}' has type {}, which has no matrix-product kernel",
                            f.path(), name, thinkmesh::name(v.type)));
  }
  return v;
}

// A table read row by row (embeddings): [cols, any rows], dequantizable.
TensorView table(const gguf::File& f, const std::string& name, int64_t cols) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  if (t == nullptr)
    fail(f, fmt::format("tensor '{}' is missing (expected shape [{}, rows])", name, cols));
  std::vector<int64_t> actual = t->ne;
  while (actual.size() > 2 && actual.back() == 1) actual.pop_back();
  if (actual.size() != 2 || actual[0] != cols || actual[1] < 1) {
    fail(f, fmt::format("tensor '{}' has shape {}, expected [{}, rows]", name, shape_text(t->ne),
                        cols));
  }
  if (!traits(t->type).can_dequantize) {
    throw Error(ErrorKind::unsupported, fmt::format("{}: tensor '{}' has type {}, which cannot be "
                                                    "read as F32",
                                                    f.path(), name, thinkmesh::name(t->type)));
  }
  return tensor(f, name, actual);
}

int32_t positive(const gguf::File& f, const std::string& key) {
  const int64_t v = f.get_int(key);
  if (v <= 0 || v > (1 << 24)) fail(f, fmt::format("{} = {} is out of range", key, v));
  return static_cast<int32_t>(v);
}

BertHparams read_hparams(const gguf::File& f) {
  BertHparams hp;
  hp.n_embd = positive(f, "bert.embedding_length");
  hp.n_layer = positive(f, "bert.block_count");
  const gguf::Value* heads = f.find("bert.attention.head_count");
  if (heads != nullptr && heads->is_array()) {
    throw Error(ErrorKind::unsupported,
                fmt::format("{}: bert.attention.head_count per layer is not supported", f.path()));
  }
  hp.n_head = positive(f, "bert.attention.head_count");
  if (hp.n_embd % hp.n_head != 0) {
    fail(f, fmt::format("{} heads do not divide embedding length {}", hp.n_head, hp.n_embd));
  }
  hp.head_dim = hp.n_embd / hp.n_head;
  if (const gguf::Value* kv = f.find("bert.attention.head_count_kv");
      kv != nullptr && !kv->is_array() && kv->as_int() != hp.n_head) {
    throw Error(ErrorKind::unsupported,
                fmt::format("{}: bert.attention.head_count_kv {} != head_count {} (grouped-query "
                            "attention is not part of BERT)",
                            f.path(), kv->as_int(), hp.n_head));
  }
  hp.n_ff = positive(f, "bert.feed_forward_length");
  const double eps = f.get_float_or("bert.attention.layer_norm_epsilon", 1e-12);
  if (!(eps >= 0) || eps > 1) fail(f, fmt::format("layer_norm_epsilon = {} is out of range", eps));
  hp.norm_eps = static_cast<float>(eps);
  if (f.get_bool_or("bert.attention.causal", false)) {
    throw Error(ErrorKind::unsupported,
                fmt::format("{}: bert.attention.causal is true; only bidirectional (non-causal) "
                            "BERT encoders are supported",
                            f.path()));
  }
  const int64_t pooling = f.get_int_or("bert.pooling_type", 0);
  if (pooling < 0 || pooling > 2) {
    throw Error(ErrorKind::unsupported,
                fmt::format("{}: bert.pooling_type {} is not supported (0 none, 1 mean, 2 cls)",
                            f.path(), pooling));
  }
  hp.pooling = static_cast<PoolingType>(pooling);
  return hp;
}

}  // namespace

BertModel BertModel::load(gguf::File file) {
  const gguf::File& f = file;
  const std::string arch = f.get_string_or("general.architecture", "");
  if (arch != kBertArchitecture) {
    throw Error(ErrorKind::unsupported, fmt::format("{}: architecture '{}' is not '{}'", f.path(),
                                                    arch, kBertArchitecture));
  }
  BertModel m{.file = std::move(file)};
  BertHparams& hp = m.hp;
  hp = read_hparams(m.file);
  const int64_t D = hp.n_embd, F = hp.n_ff;

  m.token_embd = table(m.file, "token_embd.weight", D);
  hp.n_vocab = static_cast<int32_t>(m.token_embd.rows);
  m.token_types = table(m.file, "token_types.weight", D);
  hp.n_token_types = static_cast<int32_t>(m.token_types.rows);
  m.position_embd = table(m.file, "position_embd.weight", D);
  const int64_t n_pos = m.file.get_int_or("bert.context_length", m.position_embd.rows);
  if (n_pos <= 0 || n_pos > m.position_embd.rows) {
    fail(m.file, fmt::format("bert.context_length {} does not fit position_embd.weight's {} rows",
                             n_pos, m.position_embd.rows));
  }
  hp.n_positions = static_cast<int32_t>(n_pos);
  m.embd_norm_w = vector_f32(m.file, "token_embd_norm.weight", D);
  m.embd_norm_b = vector_f32(m.file, "token_embd_norm.bias", D);

  for (int32_t l = 0; l < hp.n_layer; ++l) {
    const std::string b = fmt::format("blk.{}.", l);
    BertLayer L;
    L.wq = matrix(m.file, b + "attn_q.weight", D, D);
    L.wk = matrix(m.file, b + "attn_k.weight", D, D);
    L.wv = matrix(m.file, b + "attn_v.weight", D, D);
    L.wo = matrix(m.file, b + "attn_output.weight", D, D);
    L.bq = vector_f32(m.file, b + "attn_q.bias", D);
    L.bk = vector_f32(m.file, b + "attn_k.bias", D);
    L.bv = vector_f32(m.file, b + "attn_v.bias", D);
    L.bo = vector_f32(m.file, b + "attn_output.bias", D);
    L.attn_norm_w = vector_f32(m.file, b + "attn_output_norm.weight", D);
    L.attn_norm_b = vector_f32(m.file, b + "attn_output_norm.bias", D);
    L.ffn_up = matrix(m.file, b + "ffn_up.weight", D, F);
    L.ffn_up_b = vector_f32(m.file, b + "ffn_up.bias", F);
    L.ffn_down = matrix(m.file, b + "ffn_down.weight", F, D);
    L.ffn_down_b = vector_f32(m.file, b + "ffn_down.bias", D);
    L.out_norm_w = vector_f32(m.file, b + "layer_output_norm.weight", D);
    L.out_norm_b = vector_f32(m.file, b + "layer_output_norm.bias", D);
    m.layers.push_back(std::move(L));
  }
  return m;
}

}  // namespace thinkmesh::encoder
