// An inference context: a KV cache shared by several sequences, and decode(Batch).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "thinkmesh/batch.h"
#include "thinkmesh/model.h"

namespace thinkmesh {

enum class KvType { f16, f32 };

struct ContextOptions {
  int32_t n_ctx = 0;             // default 0 = min(the model's training context, 4096); KV cells
  int32_t n_batch = 512;         // default 512; decode() runs a larger batch in chunks this size
  int32_t n_seq_max = 8;         // default 8; sequence ids must be in [0, n_seq_max)
  int32_t n_threads = 0;         // default 0 = hardware threads
  KvType kv_type = KvType::f16;  // default F16, as llama.cpp stores K and V
  // default empty. Called by decode() before every matrix product with the product's input:
  // the weight's tensor name ("blk.0.ffn_down.weight", "output.weight"), x as
  // [n_tokens][n_cols] F32. For calibration (importance matrices); runs on the decoding thread.
  std::function<void(const std::string& weight, const float* x, int64_t n_tokens, int64_t n_cols)>
      activation_observer;
};

namespace runtime {
class KvCache;
}
namespace model {
class ThreadPool;
}

class Context {
 public:
  Context(std::shared_ptr<const Model> model, const ContextOptions& options = {});
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Runs the batch through the model, storing every entry's K/V in the cache. Throws
  // Error(invalid_argument) for a token id outside the vocabulary or a bad sequence id,
  // Error(out_of_range) when a position is >= n_ctx or the cache has no free cell (nothing of
  // the failing chunk is kept).
  void decode(const Batch& batch);
  // The logits (n_vocab floats) of entry `i` of the last decoded batch; Error(invalid_argument)
  // when that entry did not ask for logits.
  std::span<const float> logits(int32_t i) const;

  // Removes positions [p0, p1) of sequence `seq` (p1 < 0: to the end; seq < 0: all sequences).
  void seq_rm(int32_t seq, int32_t p0, int32_t p1);
  // Makes positions [p0, p1) of `src` visible to `dst` too (a shared prefix; no copy).
  void seq_cp(int32_t src, int32_t dst, int32_t p0, int32_t p1);
  void clear();
  // The largest position of `seq` in the cache, -1 when empty.
  int32_t seq_pos_max(int32_t seq) const;

  int32_t n_ctx() const;
  // Bytes the KV cache holds (allocated at construction).
  size_t kv_bytes() const;
  int32_t n_batch() const { return options_.n_batch; }
  int32_t n_threads() const { return options_.n_threads; }
  const Model& model() const { return *model_; }

 private:
  void decode_chunk(std::span<const BatchEntry> entries, size_t first_index);

  std::shared_ptr<const Model> model_;
  ContextOptions options_;
  std::unique_ptr<runtime::KvCache> kv_;
  std::unique_ptr<model::ThreadPool> pool_;
  std::vector<float> logits_;        // [n_outputs][n_vocab]
  std::vector<int32_t> logits_row_;  // batch index → row in logits_, -1 if none
};

}  // namespace thinkmesh
