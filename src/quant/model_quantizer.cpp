// quantize_model: GGUF in → per-tensor plan (recipe.cpp) → rows converted to F32 and
// quantized on worker threads → GGUF out, written atomically. Tensors that keep their type are
// written straight from the input's memory map.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "quant/gptq.h"
#include "quant/quantize_weighted.h"
#include "quant/recipe.h"
#include "thinkmesh/error.h"
#include "thinkmesh/imatrix.h"
#include "thinkmesh/quantize.h"

namespace thinkmesh {
namespace {

constexpr int64_t kRowsPerStep = 32;  // rows a worker converts to F32 at a time

// Types whose quantizer uses an importance matrix (Q8_0 and the plain types ignore it, as in
// llama.cpp).
bool uses_importance(TensorType t) {
  switch (t) {
    case TensorType::Q4_0:
    case TensorType::Q4_1:
    case TensorType::Q5_0:
    case TensorType::Q5_1:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
      return true;
    default:
      return false;
  }
}

int64_t dim(const gguf::TensorInfo& t, size_t i) {
  return i < t.ne.size() ? t.ne[i] : 1;
}

// Σ_j importance[j]·(x[j] − x̂[j])² of one row.
double weighted_sq_error(const float* x, const float* xq, const float* importance, int64_t n) {
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    const double d = static_cast<double>(x[j]) - xq[j];
    sum += static_cast<double>(importance[j]) * d * d;
  }
  return sum;
}

// Quantizes one tensor per `plan`, splitting its rows over `n_threads` workers. `importance`
// holds ne[0] values per expert slice (ne[2]) or is empty. With `measure`, also fills the
// plan's weighted errors (of the result and of round-to-nearest).
std::vector<uint8_t> quantize_tensor(const gguf::File& in, const gguf::TensorInfo& t,
                                     TensorPlan& plan, const std::vector<float>& importance,
                                     bool measure, int n_threads,
                                     const HessianSet::Entry* hessian = nullptr,
                                     const quant::GptqFactor* factor = nullptr) {
  const int64_t n = t.ne[0], nrows = t.n_rows(), rows_per_slice = std::max<int64_t>(1, dim(t, 1));
  const size_t in_row = row_bytes(t.type, n), out_row = row_bytes(plan.to, n);
  std::vector<uint8_t> out(out_row * static_cast<size_t>(nrows));
  const uint8_t* src = in.tensor_data(t).data();
  const bool weighted = !importance.empty() && uses_importance(plan.to);
  measure = measure && !importance.empty();
  const bool measure_h = hessian != nullptr && hessian->n == n;
  const bool gptq = factor != nullptr;

  std::mutex mutex;
  double err = 0, err_rtn = 0, herr = 0, herr_rtn = 0;
  std::exception_ptr failure;
  auto work = [&](int64_t r0, int64_t r1) {
    try {
      std::vector<float> x(static_cast<size_t>(kRowsPerStep * n)), back(static_cast<size_t>(n));
      std::vector<uint8_t> rtn(measure || measure_h ? out_row : 0);
      std::vector<float> back_rtn(measure_h ? static_cast<size_t>(n) : 0);
      std::vector<double> gptq_work;
      double my_err = 0, my_rtn = 0, my_herr = 0, my_hrtn = 0;
      for (int64_t r = r0; r < r1; r += kRowsPerStep) {
        const int64_t rows = std::min(kRowsPerStep, r1 - r);
        for (int64_t i = 0; i < rows; ++i)
          dequantize_row(t.type, src + static_cast<size_t>(r + i) * in_row, x.data() + i * n, n);
        for (int64_t i = 0; i < rows; ++i) {
          const int64_t row = r + i;
          const float* imp =
              importance.empty() ? nullptr : importance.data() + (row / rows_per_slice) * n;
          const float* xr = x.data() + i * n;
          uint8_t* yr = out.data() + static_cast<size_t>(row) * out_row;
          if (gptq)
            quant::gptq_quantize_row(plan.to, xr, *factor, yr, gptq_work);
          else
            quantize_rows(plan.to, xr, yr, 1, n, weighted ? imp : nullptr);
          if (measure_h) {
            dequantize_row(plan.to, yr, back.data(), n);
            my_herr += quant::hessian_error(xr, back.data(), hessian->mean.data(), n);
            quantize_row_reference(plan.to, xr, rtn.data(), n);
            dequantize_row(plan.to, rtn.data(), back_rtn.data(), n);
            my_hrtn += quant::hessian_error(xr, back_rtn.data(), hessian->mean.data(), n);
          }
          if (measure) {
            dequantize_row(plan.to, yr, back.data(), n);
            my_err += weighted_sq_error(xr, back.data(), imp, n);
            quantize_row_reference(plan.to, xr, rtn.data(), n);
            dequantize_row(plan.to, rtn.data(), back.data(), n);
            my_rtn += weighted_sq_error(xr, back.data(), imp, n);
          }
        }
      }
      std::lock_guard lock(mutex);
      err += my_err;
      err_rtn += my_rtn;
      herr += my_herr;
      herr_rtn += my_hrtn;
    } catch (...) {
      std::lock_guard lock(mutex);
      if (!failure) failure = std::current_exception();
    }
  };
  const int64_t workers = std::clamp<int64_t>(n_threads, 1, std::max<int64_t>(1, nrows));
  std::vector<std::thread> threads;
  for (int64_t w = 1; w < workers; ++w)
    threads.emplace_back(work, nrows * w / workers, nrows * (w + 1) / workers);
  work(0, nrows / workers);
  for (auto& th : threads) th.join();
  if (failure) std::rethrow_exception(failure);
  plan.imatrix_used = weighted && !gptq;
  plan.gptq = gptq;
  if (measure_h) {
    plan.hessian_error = herr;
    plan.hessian_error_rtn = herr_rtn;
  }
  if (measure) {
    plan.weighted_error = err;
    plan.weighted_error_rtn = err_rtn;
  }
  return out;
}

bool is_split_key(const std::string& key) {
  return key == "split.no" || key == "split.count" || key == "split.tensors.count";
}

}  // namespace

void quantize_rows(TensorType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                   const float* importance) {
  if (!importance || !uses_importance(type)) {
    quantize_row_reference(type, src, dst, nrows * n_per_row);
    return;
  }
  const size_t rb = row_bytes(type, n_per_row);  // validates the row length
  for (int64_t r = 0; r < nrows; ++r) {
    const float* x = src + r * n_per_row;
    void* y = static_cast<uint8_t*>(dst) + static_cast<size_t>(r) * rb;
    switch (type) {
      case TensorType::Q4_0:
        quant::quantize_q4_0_weighted(x, static_cast<block_q4_0*>(y), n_per_row, importance);
        break;
      case TensorType::Q4_1:
        quant::quantize_q4_1_weighted(x, static_cast<block_q4_1*>(y), n_per_row, importance);
        break;
      case TensorType::Q5_0:
        quant::quantize_q5_0_weighted(x, static_cast<block_q5_0*>(y), n_per_row, importance);
        break;
      case TensorType::Q5_1:
        quant::quantize_q5_1_weighted(x, static_cast<block_q5_1*>(y), n_per_row, importance);
        break;
      case TensorType::Q4_K:
        quant::quantize_q4_K_weighted(x, static_cast<block_q4_K*>(y), n_per_row, importance);
        break;
      case TensorType::Q5_K:
        quant::quantize_q5_K_weighted(x, static_cast<block_q5_K*>(y), n_per_row, importance);
        break;
      case TensorType::Q6_K:
        quant::quantize_q6_K_weighted(x, static_cast<block_q6_K*>(y), n_per_row, importance);
        break;
      default:
        throw Error(ErrorKind::internal, "importance-weighted type without a case");
    }
  }
}

QuantizeReport plan_quantization(const gguf::File& in, const QuantizeOptions& opt) {
  const TensorType base = file_type_base(opt.file_type);
  const bool mixed = !opt.pure && traits(base).quantized;
  const quant::RecipeModel model =
      quant::RecipeModel::from(in, opt.imatrix != nullptr || opt.hessian != nullptr);
  QuantizeReport report;
  for (const auto& t : in.tensors()) {
    TensorPlan p;
    p.name = t.name;
    p.ne = t.ne;
    p.from = p.wanted = p.to = t.type;
    p.bytes_in = p.bytes_out = t.nbytes;
    if (quant::should_quantize(t)) {
      TensorType want = mixed ? quant::recipe_type(model, t, opt.file_type) : base;
      for (const auto& o : opt.overrides) {
        if (std::regex_search(t.name, o.regex)) {
          want = o.type;
          p.overridden = true;
          break;
        }
      }
      p.wanted = want;
      p.to = quant::fit_row_length(want, t.ne[0], p.note);
      p.fallback = p.to != want;
      p.quantize = p.to != t.type;
    }
    if (p.fallback) ++report.n_fallback;
    if (p.quantize) {
      const auto& from = traits(t.type);
      if (from.quantized && !opt.allow_requantize)
        throw Error(ErrorKind::unsupported,
                    in.path() + ": tensor " + t.name + " is already " + std::string(from.name) +
                        "; requantizing loses accuracy and is refused without --allow-requantize");
      if (!from.can_dequantize)
        throw Error(ErrorKind::unsupported, in.path() + ": tensor " + t.name + " of type " +
                                                std::string(from.name) + " cannot be converted");
      if (opt.imatrix) {
        if (const auto* e = opt.imatrix->find(t.name)) {
          const auto want_size = static_cast<size_t>(t.ne[0] * dim(t, 2));
          if (e->values.size() == want_size) {
            p.imatrix_used = uses_importance(p.to);
          } else if (t.name != "token_embd.weight") {
            throw Error(ErrorKind::invalid_file,
                        "imatrix entry " + t.name + " has " + std::to_string(e->values.size()) +
                            " values; the tensor needs " + std::to_string(want_size));
          }
        }
      }
      if (opt.hessian) {
        if (const auto* h = opt.hessian->find(t.name)) {
          if (h->n != t.ne[0] && t.name != "token_embd.weight")
            throw Error(ErrorKind::invalid_file,
                        "hessian entry for " + t.name + " is " + std::to_string(h->n) + " x " +
                            std::to_string(h->n) + "; the tensor has rows of " +
                            std::to_string(t.ne[0]));
          if (h->n == t.ne[0]) {
            p.gptq = dim(t, 2) == 1 && quant::gptq_supports(p.to);
            // Without an imatrix, diag(H) is the importance of the types GPTQ does not cover.
            if (p.gptq)
              p.imatrix_used = false;
            else if (!p.imatrix_used)
              p.imatrix_used = dim(t, 2) == 1 && uses_importance(p.to);
          }
        }
      }
      p.bytes_out = row_bytes(p.to, t.ne[0]) * static_cast<uint64_t>(t.n_rows());
      if (p.imatrix_used) ++report.n_imatrix;
      if (p.gptq) ++report.n_gptq;
    }
    report.bytes_in += p.bytes_in;
    report.bytes_out += p.bytes_out;
    report.tensors.push_back(std::move(p));
  }
  return report;
}

QuantizeReport quantize_model(const std::string& input_path, const std::string& output_path,
                              const QuantizeOptions& opt) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(output_path, ec) && fs::equivalent(input_path, output_path, ec))
    throw Error(ErrorKind::invalid_argument,
                output_path + ": the output would overwrite the input; choose another path");
  if (opt.n_threads < 1)
    throw Error(ErrorKind::invalid_argument,
                "thread count " + std::to_string(opt.n_threads) + " (must be >= 1)");
  const gguf::File in = gguf::File::open(input_path);
  QuantizeReport report = plan_quantization(in, opt);

  gguf::Writer writer(3, static_cast<uint32_t>(in.alignment()));
  for (const auto& kv : in.metadata()) {
    if (kv.key == "general.file_type" || kv.key == "general.quantization_version" ||
        is_split_key(kv.key))
      continue;
    writer.set(kv.key, kv.value);
  }
  writer.set("general.quantization_version", gguf::Value::u32(2));
  writer.set("general.file_type", gguf::Value::u32(static_cast<uint32_t>(opt.file_type)));

  const auto& tensors = in.tensors();
  quant::GptqFactor factor;
  const HessianSet::Entry* factor_of = nullptr;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    TensorPlan& p = report.tensors[i];
    if (!p.quantize) {
      writer.add_tensor(t.name, t.type, t.ne, in.tensor_data(t));
    } else {
      std::vector<float> importance;
      if (opt.imatrix) {
        const auto* e = opt.imatrix->find(t.name);
        if (e && e->values.size() == static_cast<size_t>(t.ne[0] * dim(t, 2)))
          importance = ImportanceMatrix::importance(*e);
      }
      const HessianSet::Entry* h = opt.hessian ? opt.hessian->find(t.name) : nullptr;
      if (h && h->n != t.ne[0]) h = nullptr;
      if (h && importance.empty() && dim(t, 2) == 1) {
        importance.resize(static_cast<size_t>(h->n));
        for (int64_t j = 0; j < h->n; ++j)
          importance[static_cast<size_t>(j)] = h->mean[static_cast<size_t>(j * h->n + j)];
      }
      // Tensors reading one input (q/k/v, gate/up) share the factor.
      if (p.gptq && factor_of != h) {
        factor = quant::gptq_factor(h->mean.data(), h->n, opt.gptq_damp);
        factor_of = h;
      }
      writer.add_tensor(t.name, p.to, t.ne,
                        quantize_tensor(in, t, p, importance, opt.imatrix != nullptr, opt.n_threads,
                                        h, p.gptq ? &factor : nullptr));
    }
    if (opt.on_tensor) opt.on_tensor(p, i + 1, tensors.size());
  }
  writer.write(output_path);
  return report;
}

}  // namespace thinkmesh
