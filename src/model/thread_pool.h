// The thread pool every forward pass runs on: run(n, fn) calls fn(i) for i < n on the calling
// thread and the workers, and returns when all n calls are done.
//
// Built for the many tiny dispatches of one token (a few microseconds each): workers spin
// between dispatches instead of sleeping, and a dispatch never waits for a worker that has not
// started on it — parts are claimed one by one, so when the machine is oversubscribed and a
// worker is descheduled the calling thread simply does its parts (waiting for the worker to
// wake up would cost a scheduler time slice, milliseconds, per dispatch).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <type_traits>

namespace thinkmesh::model {

class ThreadPool {
 public:
  explicit ThreadPool(int32_t n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int32_t size() const { return n_threads_; }
  // Calls fn(part) for part in [0, n_parts) (n_parts < 2^20), spread over the threads; returns
  // when all are done. Not reentrant: fn must not call run on the same pool.
  template <class Fn>
  void run(int32_t n_parts, Fn&& fn) {
    using F = std::remove_reference_t<Fn>;
    run_impl(
        n_parts, [](void* ctx, int32_t part) { (*static_cast<F*>(ctx))(part); }, &fn);
  }

  // Calls fn(i) for i in [0, n) in contiguous chunks, about four per thread (inline when n < 8
  // or the pool has one thread): for many tiny items, where a claim per item would cost more
  // than the item.
  template <class Fn>
  void for_each(int64_t n, Fn&& fn) {
    if (n_threads_ == 1 || n < 8) {
      for (int64_t i = 0; i < n; ++i) fn(i);
      return;
    }
    const int64_t per = int64_t{4} * n_threads_;
    const int64_t chunk = (n + per - 1) / per;
    run(static_cast<int32_t>((n + chunk - 1) / chunk), [&](int32_t part) {
      const int64_t end = std::min(n, (part + 1) * chunk);
      for (int64_t i = part * chunk; i < end; ++i) fn(i);
    });
  }

 private:
  void run_impl(int32_t n_parts, void (*call)(void*, int32_t), void* ctx);
  struct Shared;
  int32_t n_threads_;
  std::unique_ptr<Shared> shared_;
};

}  // namespace thinkmesh::model
