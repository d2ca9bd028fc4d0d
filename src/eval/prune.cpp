// Structured FFN pruning and unstructured magnitude pruning of a GGUF decoder
// (include/thinkmesh/prune.h). Works on the GGUF tensors by name (blk.N.ffn_gate.weight, ...):
// matrices are [rows][cols] with cols = ne[0], so ffn_gate/ffn_up are [n_ff][n_embd] and
// ffn_down is [n_embd][n_ff].
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>

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

// Mean |a_j| of ffn_down's input per layer over the calibration text, [layer][n_ff].
std::vector<std::vector<double>> calibrate_ffn(const std::string& path, const PruneOptions& o,
                                               int64_t& n_tokens_out) {
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

  std::vector<std::vector<double>> sum_abs(static_cast<size_t>(info.n_layer));
  for (int32_t l = 0; l < info.n_layer; ++l)
    sum_abs[static_cast<size_t>(l)].assign(static_cast<size_t>(info.n_ff[static_cast<size_t>(l)]),
                                           0.0);
  int64_t n_seen = 0;
  ContextOptions co;
  co.n_ctx = n_ctx;
  co.n_batch = n_ctx;
  co.n_seq_max = 1;
  co.n_threads = o.n_threads;
  co.activation_observer = [&](const std::string& w, const float* x, int64_t n_tok,
                               int64_t n_cols) {
    // "blk.<L>.ffn_down.weight"
    constexpr std::string_view kSuffix = ".ffn_down.weight";
    if (!w.starts_with("blk.") || !w.ends_with(kSuffix)) return;
    const int layer = std::stoi(w.substr(4, w.size() - 4 - kSuffix.size()));
    auto& acc = sum_abs.at(static_cast<size_t>(layer));
    if (static_cast<int64_t>(acc.size()) != n_cols) return;
    for (int64_t t = 0; t < n_tok; ++t) {
      const float* row = x + t * n_cols;
      for (int64_t j = 0; j < n_cols; ++j) acc[static_cast<size_t>(j)] += std::fabs(row[j]);
    }
    if (layer == 0) n_seen += n_tok;
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
  for (auto& layer : sum_abs)
    for (double& v : layer) v /= static_cast<double>(std::max<int64_t>(1, n_seen));
  n_tokens_out = n_seen;
  return sum_abs;
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
  if (o.ffn_fraction == 0 && o.unstructured == 0) {
    throw Error(ErrorKind::invalid_argument,
                "prune: nothing to do (give --ffn and/or --unstructured)");
  }
  const gguf::File src = gguf::File::open(in_path);
  const std::string arch = src.get_string("general.architecture");
  const auto n_layer = static_cast<int32_t>(src.get_int(arch + ".block_count"));
  const std::string ff_key = arch + ".feed_forward_length";

  PruneReport report;
  report.bytes_in = src.file_size();

  // Replacement bytes and types by tensor name; tensors absent here are copied as they are.
  struct Rewritten {
    TensorType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> bytes;
  };
  std::vector<std::pair<std::string, Rewritten>> rewritten;
  auto rewrite = [&](const std::string& tname, TensorType type, std::vector<int64_t> ne,
                     std::vector<uint8_t> bytes) {
    rewritten.push_back({tname, {type, std::move(ne), std::move(bytes)}});
  };
  auto unstructured = [&](Matrix& m) {
    if (o.unstructured <= 0) return;
    report.zeroed += zero_smallest(m.v, o.unstructured);
    report.unstructured_total += static_cast<int64_t>(m.v.size());
  };

  std::vector<int32_t> new_ff;
  if (o.ffn_fraction > 0) {
    std::vector<std::vector<double>> act;
    if (!o.calib_text.empty()) {
      act = calibrate_ffn(in_path, o, report.calib_tokens);
      report.calibrated = true;
    }
    for (int32_t l = 0; l < n_layer; ++l) {
      const auto& tg = require_tensor(src, layer_tensor(l, "ffn_gate"));
      const auto& tu = require_tensor(src, layer_tensor(l, "ffn_up"));
      const auto& td = require_tensor(src, layer_tensor(l, "ffn_down"));
      const int64_t n_ff = tg.n_rows();
      if (tu.n_rows() != n_ff || td.ne[0] != n_ff || tg.ne[0] != tu.ne[0]) {
        throw Error(ErrorKind::invalid_file,
                    fmt::format("prune: {}: layer {} FFN shapes disagree", in_path, l));
      }
      Matrix g = dequantize(src, tg), u = dequantize(src, tu), d = dequantize(src, td);
      std::vector<double> down_norm(static_cast<size_t>(n_ff), 0.0);
      for (int64_t r = 0; r < d.rows; ++r) {
        const float* row = d.row(r);
        for (int64_t j = 0; j < n_ff; ++j)
          down_norm[static_cast<size_t>(j)] += static_cast<double>(row[j]) * row[j];
      }
      std::vector<double> score(static_cast<size_t>(n_ff));
      for (int64_t j = 0; j < n_ff; ++j) {
        const double dn = std::sqrt(down_norm[static_cast<size_t>(j)]);
        if (report.calibrated) {
          score[static_cast<size_t>(j)] = act[static_cast<size_t>(l)][static_cast<size_t>(j)] * dn;
        } else {
          double gn = 0, un = 0;
          for (int64_t c = 0; c < g.cols; ++c) {
            gn += static_cast<double>(g.row(j)[c]) * g.row(j)[c];
            un += static_cast<double>(u.row(j)[c]) * u.row(j)[c];
          }
          score[static_cast<size_t>(j)] = std::sqrt(gn) * std::sqrt(un) * dn;
        }
      }
      const bool down_quantized = traits(td.type).quantized;
      const int64_t multiple =
          o.multiple > 0 ? o.multiple : (down_quantized ? traits(td.type).block_size : 1);
      const double want = (1.0 - o.ffn_fraction) * static_cast<double>(n_ff);
      int64_t keep = std::llround(want / static_cast<double>(multiple)) * multiple;
      keep = std::clamp<int64_t>(keep, std::min<int64_t>(multiple, n_ff), n_ff);
      const std::vector<int64_t> kept = top_indices(score, keep);

      // gate/up: keep rows; copied block for block unless the unstructured step changes them.
      for (const auto* t : {&tg, &tu}) {
        if (o.unstructured > 0) {
          Matrix full = t == &tg ? std::move(g) : std::move(u);
          Matrix m;
          m.rows = keep;
          m.cols = full.cols;
          m.v.resize(static_cast<size_t>(keep * m.cols));
          for (int64_t i = 0; i < keep; ++i)
            std::memcpy(m.row(i), full.row(kept[static_cast<size_t>(i)]),
                        static_cast<size_t>(m.cols) * sizeof(float));
          unstructured(m);
          const TensorType type = rewrite_type(t->type, m.cols);
          rewrite(t->name, type, {m.cols, keep}, quantize(m, type));
        } else {
          const auto bytes = src.tensor_data(*t);
          const size_t rb = row_bytes(t->type, t->ne[0]);
          std::vector<uint8_t> out(rb * static_cast<size_t>(keep));
          for (int64_t i = 0; i < keep; ++i)
            std::memcpy(out.data() + static_cast<size_t>(i) * rb,
                        bytes.data() + static_cast<size_t>(kept[static_cast<size_t>(i)]) * rb, rb);
          rewrite(t->name, t->type, {t->ne[0], keep}, std::move(out));
        }
      }
      // down: keep columns.
      Matrix m;
      m.rows = d.rows;
      m.cols = keep;
      m.v.resize(static_cast<size_t>(m.rows * keep));
      for (int64_t r = 0; r < d.rows; ++r)
        for (int64_t i = 0; i < keep; ++i) m.row(r)[i] = d.row(r)[kept[static_cast<size_t>(i)]];
      unstructured(m);
      const TensorType down_type = rewrite_type(td.type, keep);
      rewrite(td.name, down_type, {keep, m.rows}, quantize(m, down_type));
      new_ff.push_back(static_cast<int32_t>(keep));
      report.layers.push_back({static_cast<int32_t>(n_ff), static_cast<int32_t>(keep),
                               std::string(traits(down_type).name)});
    }
  }
  if (o.unstructured > 0) {
    for (const auto& t : src.tensors()) {
      if (!is_layer_matrix(t.name)) continue;
      const bool done = std::any_of(rewritten.begin(), rewritten.end(),
                                    [&](const auto& r) { return r.first == t.name; });
      if (done) continue;
      if (!traits(t.type).can_dequantize) {
        throw Error(ErrorKind::unsupported, fmt::format("prune: {}: cannot dequantize {} ({})",
                                                        in_path, t.name, traits(t.type).name));
      }
      Matrix m = dequantize(src, t);
      unstructured(m);
      const TensorType type = rewrite_type(t.type, m.cols);
      rewrite(t.name, type, t.ne, quantize(m, type));
    }
  }

  gguf::Writer writer(src.version(), static_cast<uint32_t>(src.alignment()));
  for (const auto& kv : src.metadata()) writer.set(kv.key, kv.value);
  if (!new_ff.empty()) writer.set(ff_key, gguf::Value::i32_array(new_ff));
  for (const auto& t : src.tensors()) {
    const auto it = std::find_if(rewritten.begin(), rewritten.end(),
                                 [&](const auto& r) { return r.first == t.name; });
    if (it == rewritten.end()) {
      writer.add_tensor(t.name, t.type, t.ne, src.tensor_data(t));
    } else {
      writer.add_tensor(t.name, it->second.type, it->second.ne, std::move(it->second.bytes));
    }
  }
  writer.write(out_path);
  report.bytes_out = gguf::File::open(out_path).file_size();
  return report;
}

}  // namespace thinkmesh
