// Structured FFN pruning and unstructured magnitude pruning of a GGUF decoder
// (include/thinkmesh/prune.h). Works on the GGUF tensors by name (blk.N.ffn_gate.weight, ...):
// matrices are [rows][cols] with cols = ne[0], so ffn_gate/ffn_up are [n_ff][n_embd] and
// ffn_down is [n_embd][n_ff].
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <optional>
#include <set>

#include <fmt/core.h>

#include "thinkmesh/context.h"
#include "thinkmesh/error.h"
#include "thinkmesh/evaluate.h"
#include "thinkmesh/gguf.h"
#include "thinkmesh/model.h"
#include "thinkmesh/prune.h"
#include "thinkmesh/tensor_type.h"

namespace thinkmesh {
namespace {

// Types quantize_row_reference can write.
bool can_quantize(TensorType t) {
  switch (t) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::Q8_0:
    case TensorType::Q4_0:
    case TensorType::Q4_1:
    case TensorType::Q5_0:
    case TensorType::Q5_1:
    case TensorType::Q2_K:
    case TensorType::Q3_K:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
      return true;
    default:
      return false;
  }
}

// A 2-D tensor as F32, [rows][cols].
struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> v;
  float* row(int64_t r) { return v.data() + static_cast<size_t>(r * cols); }
};

const gguf::TensorInfo& require_tensor(const gguf::File& f, const std::string& tname) {
  const gguf::TensorInfo* t = f.find_tensor(tname);
  if (t == nullptr) {
    throw Error(
        ErrorKind::unsupported,
        fmt::format("prune: {} has no tensor {} (only gated FFNs are supported)", f.path(), tname));
  }
  if (t->ne.size() != 2) {
    throw Error(ErrorKind::invalid_file, fmt::format("prune: {}: {} is not 2-D", f.path(), tname));
  }
  if (!traits(t->type).can_dequantize) {
    throw Error(ErrorKind::unsupported, fmt::format("prune: {}: cannot dequantize {} ({})",
                                                    f.path(), tname, traits(t->type).name));
  }
  return *t;
}

Matrix dequantize(const gguf::File& f, const gguf::TensorInfo& t) {
  Matrix m;
  m.cols = t.ne[0];
  m.rows = t.n_rows();
  m.v.resize(static_cast<size_t>(m.rows * m.cols));
  const auto bytes = f.tensor_data(t);
  const size_t rb = row_bytes(t.type, m.cols);
  for (int64_t r = 0; r < m.rows; ++r)
    dequantize_row(t.type, bytes.data() + static_cast<size_t>(r) * rb, m.row(r), m.cols);
  return m;
}

std::vector<uint8_t> quantize(const Matrix& m, TensorType type) {
  const size_t rb = row_bytes(type, m.cols);
  std::vector<uint8_t> out(rb * static_cast<size_t>(m.rows));
  for (int64_t r = 0; r < m.rows; ++r) {
    quantize_row_reference(type, m.v.data() + static_cast<size_t>(r * m.cols),
                           out.data() + static_cast<size_t>(r) * rb, m.cols);
  }
  return out;
}

// Zeroes the round(fraction · n) entries of smallest |w| (ties: lowest index first).
// Returns how many were zeroed.
int64_t zero_smallest(std::vector<float>& w, double fraction) {
  const auto k = static_cast<size_t>(std::llround(fraction * static_cast<double>(w.size())));
  if (k == 0) return 0;
  std::vector<uint32_t> idx(w.size());
  std::iota(idx.begin(), idx.end(), 0u);
  std::nth_element(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k - 1), idx.end(),
                   [&](uint32_t a, uint32_t b) {
                     const float fa = std::fabs(w[a]), fb = std::fabs(w[b]);
                     return fa < fb || (fa == fb && a < b);
                   });
  for (size_t i = 0; i < k; ++i) w[idx[i]] = 0.0f;
  return static_cast<int64_t>(k);
}

// The type a rewritten matrix of `cols` columns is stored in: its source type when that can
// be written at that width, else F16 (F32 for an F32 source).
TensorType rewrite_type(TensorType source, int64_t cols) {
  if (can_quantize(source) && cols % traits(source).block_size == 0) return source;
  return source == TensorType::F32 ? TensorType::F32 : TensorType::F16;
}

// Mean |x_j| of the input of every matrix named in `names`, over the calibration text:
// name → one value per input column.
std::map<std::string, std::vector<double>> calibrate(const std::string& path,
                                                     const std::set<std::string>& names,
                                                     const PruneOptions& o, int64_t& n_tokens_out) {
  const auto model = Model::load(path);
  const ModelInfo& info = model->info();
  const std::vector<TokenId> tokens = tokenize_for_eval(*model, o.calib_text);
  if (tokens.size() < 2) {
    throw Error(ErrorKind::invalid_argument, "prune: the calibration text has under 2 tokens");
  }
  int32_t n_ctx = std::max<int32_t>(2, o.calib_ctx);
  if (info.n_ctx_train > 0) n_ctx = std::min(n_ctx, info.n_ctx_train);
  n_ctx = static_cast<int32_t>(std::min<size_t>(static_cast<size_t>(n_ctx), tokens.size()));
  auto n_chunks = static_cast<int32_t>(tokens.size() / static_cast<size_t>(n_ctx));
  if (o.calib_chunks > 0) n_chunks = std::min(n_chunks, o.calib_chunks);

  struct Acc {
    std::vector<double> sum_abs;
    int64_t n = 0;
  };
  std::map<std::string, Acc> acc;
  ContextOptions co;
  co.n_ctx = n_ctx;
  co.n_batch = n_ctx;
  co.n_seq_max = 1;
  co.n_threads = o.n_threads;
  co.activation_observer = [&](const std::string& w, const float* x, int64_t n_tok,
                               int64_t n_cols) {
    if (!names.contains(w)) return;
    Acc& a = acc[w];
    if (a.sum_abs.empty()) a.sum_abs.assign(static_cast<size_t>(n_cols), 0.0);
    for (int64_t t = 0; t < n_tok; ++t) {
      const float* row = x + t * n_cols;
      for (int64_t j = 0; j < n_cols; ++j) a.sum_abs[static_cast<size_t>(j)] += std::fabs(row[j]);
    }
    a.n += n_tok;
  };
  Context ctx(model, co);
  const std::optional<TokenId> bos =
      model->tokenizer().adds_bos() ? model->tokenizer().bos() : std::nullopt;
  for (int32_t c = 0; c < n_chunks; ++c) {
    ctx.clear();
    Batch b;
    for (int32_t k = 0; k < n_ctx; ++k) {
      const TokenId t = k == 0 && bos ? *bos : tokens[static_cast<size_t>(c * n_ctx + k)];
      b.add(t, k, 0, k == n_ctx - 1);
    }
    ctx.decode(b);
  }
  std::map<std::string, std::vector<double>> out;
  for (auto& [name, a] : acc) {
    for (double& v : a.sum_abs) v /= static_cast<double>(std::max<int64_t>(1, a.n));
    out.emplace(name, std::move(a.sum_abs));
    n_tokens_out = a.n;
  }
  return out;
}

// Indices of the `keep` highest scores, in increasing index order.
std::vector<int64_t> top_indices(const std::vector<double>& score, int64_t keep) {
  std::vector<int64_t> idx(score.size());
  std::iota(idx.begin(), idx.end(), int64_t{0});
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
    return score[static_cast<size_t>(a)] > score[static_cast<size_t>(b)];
  });
  idx.resize(static_cast<size_t>(keep));
  std::sort(idx.begin(), idx.end());
  return idx;
}

bool is_layer_matrix(const std::string& n) {
  if (!n.starts_with("blk.")) return false;
  for (const char* s : {".attn_q.weight", ".attn_k.weight", ".attn_v.weight", ".attn_output.weight",
                        ".ffn_gate.weight", ".ffn_up.weight", ".ffn_down.weight"})
    if (n.ends_with(s)) return true;
  return false;
}

std::string layer_tensor(int32_t l, const char* what) {
  return fmt::format("blk.{}.{}.weight", l, what);
}

// Squared L2 norm of each column of m.
std::vector<double> column_norms2(Matrix& m) {
  std::vector<double> n(static_cast<size_t>(m.cols), 0.0);
  for (int64_t r = 0; r < m.rows; ++r) {
    const float* row = m.row(r);
    for (int64_t j = 0; j < m.cols; ++j) n[static_cast<size_t>(j)] += double{row[j]} * row[j];
  }
  return n;
}

double row_norm2(Matrix& m, int64_t r) {
  double s = 0;
  for (int64_t c = 0; c < m.cols; ++c) s += double{m.row(r)[c]} * m.row(r)[c];
  return s;
}

// The tensors the pruning steps replace, and the unstructured step applied as they are built.
class Rewriter {
 public:
  Rewriter(const gguf::File& src, const PruneOptions& o, PruneReport& report)
      : src_(src), o_(o), report_(report) {}

  // Keeps rows `kept` (in order): their blocks are copied unless zeroing changes them.
  void keep_rows(const gguf::TensorInfo& t, const std::vector<int64_t>& kept) {
    const auto keep = static_cast<int64_t>(kept.size());
    std::vector<int64_t> ne = t.ne;
    ne.back() = keep;
    if (o_.unstructured > 0 && t.ne.size() == 2) {
      Matrix full = dequantize(src_, t), m;
      m.rows = keep;
      m.cols = full.cols;
      m.v.resize(static_cast<size_t>(keep * m.cols));
      for (int64_t i = 0; i < keep; ++i)
        std::memcpy(m.row(i), full.row(kept[static_cast<size_t>(i)]),
                    static_cast<size_t>(m.cols) * sizeof(float));
      store(t, std::move(m), std::move(ne));
      return;
    }
    const auto bytes = src_.tensor_data(t);
    const size_t rb = t.ne.size() == 1 ? traits(t.type).type_size : row_bytes(t.type, t.ne[0]);
    if (t.ne.size() == 1 && traits(t.type).block_size != 1) {
      throw Error(ErrorKind::unsupported,
                  fmt::format("prune: {}: a block-quantized 1-D tensor", t.name));
    }
    std::vector<uint8_t> out(rb * static_cast<size_t>(keep));
    for (int64_t i = 0; i < keep; ++i)
      std::memcpy(out.data() + static_cast<size_t>(i) * rb,
                  bytes.data() + static_cast<size_t>(kept[static_cast<size_t>(i)]) * rb, rb);
    tensors_.push_back({t.name, {t.type, std::move(ne), std::move(out)}});
  }

  // Keeps columns `kept` of an already dequantized matrix m of tensor t.
  void keep_cols(const gguf::TensorInfo& t, Matrix& full, const std::vector<int64_t>& kept) {
    const auto keep = static_cast<int64_t>(kept.size());
    Matrix m;
    m.rows = full.rows;
    m.cols = keep;
    m.v.resize(static_cast<size_t>(m.rows * keep));
    for (int64_t r = 0; r < m.rows; ++r)
      for (int64_t i = 0; i < keep; ++i) m.row(r)[i] = full.row(r)[kept[static_cast<size_t>(i)]];
    store(t, std::move(m), {keep, full.rows});
  }

  // The unstructured step alone on a tensor no other step replaced.
  void zero_only(const gguf::TensorInfo& t) {
    if (find(t.name) != nullptr) return;
    store(t, dequantize(src_, t), t.ne);
  }

  // The type tensor `name` was written in (its source type when not rewritten).
  TensorType type_of(const gguf::TensorInfo& t) const {
    const auto* r = find(t.name);
    return r == nullptr ? t.type : r->type;
  }

  void add_all(gguf::Writer& w) {
    for (const auto& t : src_.tensors()) {
      auto* r = find(t.name);
      if (r == nullptr) {
        w.add_tensor(t.name, t.type, t.ne, src_.tensor_data(t));
      } else {
        w.add_tensor(t.name, r->type, r->ne, std::move(r->bytes));
      }
    }
  }

 private:
  struct Replacement {
    TensorType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> bytes;
  };

  void store(const gguf::TensorInfo& t, Matrix m, std::vector<int64_t> ne) {
    if (o_.unstructured > 0 && is_layer_matrix(t.name)) {
      report_.zeroed += zero_smallest(m.v, o_.unstructured);
      report_.unstructured_total += static_cast<int64_t>(m.v.size());
    }
    const TensorType type = rewrite_type(t.type, m.cols);
    tensors_.push_back({t.name, {type, std::move(ne), quantize(m, type)}});
  }
  const Replacement* find(const std::string& name) const {
    for (const auto& [n, r] : tensors_)
      if (n == name) return &r;
    return nullptr;
  }
  Replacement* find(const std::string& name) {
    for (auto& [n, r] : tensors_)
      if (n == name) return &r;
    return nullptr;
  }

  const gguf::File& src_;
  const PruneOptions& o_;
  PruneReport& report_;
  std::vector<std::pair<std::string, Replacement>> tensors_;
};

// The kept width of a dimension of n entries when `fraction` is removed, rounded to `multiple`.
int64_t kept_width(int64_t n, double fraction, int64_t multiple) {
  const double want = (1.0 - fraction) * static_cast<double>(n);
  const int64_t keep = std::llround(want / static_cast<double>(multiple)) * multiple;
  return std::clamp<int64_t>(keep, std::min<int64_t>(multiple, n), n);
}

}  // namespace

PruneReport prune_model(const std::string& in_path, const std::string& out_path,
                        const PruneOptions& o) {
  if (!(o.ffn_fraction >= 0 && o.ffn_fraction < 1)) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("prune: --ffn {} is outside [0, 1)", o.ffn_fraction));
  }
  if (!(o.unstructured >= 0 && o.unstructured < 1)) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("prune: --unstructured {} is outside [0, 1)", o.unstructured));
  }
  if (o.heads < 0) {
    throw Error(ErrorKind::invalid_argument, fmt::format("prune: --heads {} < 0", o.heads));
  }
  if (o.ffn_fraction == 0 && o.unstructured == 0 && o.heads == 0) {
    throw Error(ErrorKind::invalid_argument,
                "prune: nothing to do (give --ffn, --heads and/or --unstructured)");
  }
  const gguf::File src = gguf::File::open(in_path);
  const std::string arch = src.get_string("general.architecture");
  const std::string p = arch + ".";
  const auto n_layer = static_cast<int32_t>(src.get_int(p + "block_count"));

  PruneReport report;
  report.bytes_in = src.file_size();
  Rewriter rw(src, o, report);
  gguf::Writer writer(src.version(), static_cast<uint32_t>(src.alignment()));
  for (const auto& kv : src.metadata()) writer.set(kv.key, kv.value);

  // Head geometry from the model loader (uniform head counts, head size).
  ModelInfo info;
  if (o.heads > 0) info = Model::load(in_path, {false})->info();
  const int32_t group = o.heads > 0 ? info.n_head / info.n_head_kv : 1;
  if (o.heads > 0 && (o.heads % group != 0 || o.heads >= info.n_head)) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("prune: --heads {} must be a multiple of the {} query heads per KV "
                            "head and below the {} heads",
                            o.heads, group, info.n_head));
  }

  std::map<std::string, std::vector<double>> act;
  if (!o.calib_text.empty() && (o.ffn_fraction > 0 || o.heads > 0)) {
    std::set<std::string> names;
    for (int32_t l = 0; l < n_layer; ++l) {
      if (o.ffn_fraction > 0) names.insert(layer_tensor(l, "ffn_down"));
      if (o.heads > 0) names.insert(layer_tensor(l, "attn_output"));
    }
    act = calibrate(in_path, names, o, report.calib_tokens);
    report.calibrated = true;
  }
  auto activation = [&](const std::string& name, int64_t j) {
    const auto it = act.find(name);
    if (it == act.end() || static_cast<size_t>(j) >= it->second.size()) {
      throw Error(ErrorKind::internal, fmt::format("prune: no calibration data for {}", name));
    }
    return it->second[static_cast<size_t>(j)];
  };

  if (o.heads > 0) {
    const int64_t hd = info.head_dim;
    const int32_t n_kv = info.n_head_kv, n_kv_keep = n_kv - o.heads / group;
    for (int32_t l = 0; l < n_layer; ++l) {
      const auto& tq = require_tensor(src, layer_tensor(l, "attn_q"));
      const auto& tk = require_tensor(src, layer_tensor(l, "attn_k"));
      const auto& tv = require_tensor(src, layer_tensor(l, "attn_v"));
      const auto& to = require_tensor(src, layer_tensor(l, "attn_output"));
      Matrix wv = dequantize(src, tv), wo = dequantize(src, to);
      const std::vector<double> wo_cols = column_norms2(wo);
      // Score of KV group g: the size of what it can add to the residual stream,
      // ‖Wv_g‖ · ‖Wo columns of its query heads‖ (magnitude), or Σ mean|a_i|·‖Wo_:,i‖ over
      // those columns (calibration; a = attention output, attn_output's input).
      std::vector<double> score(static_cast<size_t>(n_kv), 0.0);
      for (int32_t g = 0; g < n_kv; ++g) {
        double v2 = 0, o2 = 0, cal = 0;
        for (int64_t r = g * hd; r < (g + 1) * hd; ++r) v2 += row_norm2(wv, r);
        for (int64_t c = g * group * hd; c < (g + 1) * group * hd; ++c) {
          o2 += wo_cols[static_cast<size_t>(c)];
          if (report.calibrated)
            cal += activation(to.name, c) * std::sqrt(wo_cols[static_cast<size_t>(c)]);
        }
        score[static_cast<size_t>(g)] = report.calibrated ? cal : std::sqrt(v2) * std::sqrt(o2);
      }
      const std::vector<int64_t> groups = top_indices(score, n_kv_keep);
      std::vector<int64_t> q_rows, kv_rows;
      for (const int64_t g : groups) {
        for (int64_t r = g * hd; r < (g + 1) * hd; ++r) kv_rows.push_back(r);
        for (int64_t r = g * group * hd; r < (g + 1) * group * hd; ++r) q_rows.push_back(r);
      }
      rw.keep_rows(tq, q_rows);
      rw.keep_rows(tk, kv_rows);
      rw.keep_rows(tv, kv_rows);
      for (const char* b : {"attn_q.bias", "attn_k.bias", "attn_v.bias"}) {
        const auto* t = src.find_tensor(fmt::format("blk.{}.{}", l, b));
        if (t != nullptr) rw.keep_rows(*t, b[5] == 'q' ? q_rows : kv_rows);
      }
      rw.keep_cols(to, wo, q_rows);
      report.n_head_before = info.n_head;
      report.n_head_after = n_kv_keep * group;
      report.attn_output_types.emplace_back(traits(rw.type_of(to)).name);
    }
    writer.set(p + "attention.head_count",
               gguf::Value::u32(static_cast<uint32_t>(n_kv_keep * group)));
    writer.set(p + "attention.head_count_kv", gguf::Value::u32(static_cast<uint32_t>(n_kv_keep)));
    writer.set(p + "attention.key_length", gguf::Value::u32(static_cast<uint32_t>(hd)));
    writer.set(p + "attention.value_length", gguf::Value::u32(static_cast<uint32_t>(hd)));
  }

  if (o.ffn_fraction > 0) {
    std::vector<int32_t> new_ff;
    for (int32_t l = 0; l < n_layer; ++l) {
      const auto& tg = require_tensor(src, layer_tensor(l, "ffn_gate"));
      const auto& tu = require_tensor(src, layer_tensor(l, "ffn_up"));
      const auto& td = require_tensor(src, layer_tensor(l, "ffn_down"));
      const int64_t n_ff = tg.n_rows();
      if (tu.n_rows() != n_ff || td.ne[0] != n_ff || tg.ne[0] != tu.ne[0]) {
        throw Error(ErrorKind::invalid_file,
                    fmt::format("prune: {}: layer {} FFN shapes disagree", in_path, l));
      }
      Matrix d = dequantize(src, td);
      const std::vector<double> down_norm = column_norms2(d);
      std::vector<double> score(static_cast<size_t>(n_ff));
      if (report.calibrated) {
        for (int64_t j = 0; j < n_ff; ++j)
          score[static_cast<size_t>(j)] =
              activation(td.name, j) * std::sqrt(down_norm[static_cast<size_t>(j)]);
      } else {
        Matrix g = dequantize(src, tg), u = dequantize(src, tu);
        for (int64_t j = 0; j < n_ff; ++j)
          score[static_cast<size_t>(j)] = std::sqrt(row_norm2(g, j)) * std::sqrt(row_norm2(u, j)) *
                                          std::sqrt(down_norm[static_cast<size_t>(j)]);
      }
      const int64_t multiple = o.multiple > 0
                                   ? o.multiple
                                   : (traits(td.type).quantized ? traits(td.type).block_size : 1);
      const int64_t keep = kept_width(n_ff, o.ffn_fraction, multiple);
      const std::vector<int64_t> kept = top_indices(score, keep);
      rw.keep_rows(tg, kept);
      rw.keep_rows(tu, kept);
      rw.keep_cols(td, d, kept);
      new_ff.push_back(static_cast<int32_t>(keep));
      report.layers.push_back({static_cast<int32_t>(n_ff), static_cast<int32_t>(keep),
                               std::string(traits(rw.type_of(td)).name)});
    }
    writer.set(p + "feed_forward_length", gguf::Value::i32_array(new_ff));
  }

  if (o.unstructured > 0) {
    for (const auto& t : src.tensors())
      if (is_layer_matrix(t.name)) rw.zero_only(require_tensor(src, t.name));
  }
  rw.add_all(writer);
  writer.write(out_path);
  report.bytes_out = gguf::File::open(out_path).file_size();
  return report;
}

}  // namespace thinkmesh
