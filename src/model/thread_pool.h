// The thread pool every forward pass runs on: run(n, fn) calls fn(i) for i < n on the calling
// thread and the workers, and returns when all n calls are done.
//
// Built for the many tiny dispatches of one token (a few microseconds each): workers spin
// between dispatches instead of sleeping, and a dispatch never waits for a worker that has not
// started on it — parts are claimed one by one, so when the machine is oversubscribed and a
// worker is descheduled the calling thread simply does its parts (waiting for the worker to
// wake up would cost a scheduler time slice, milliseconds, per dispatch).
#pragma once

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

 private:
  void run_impl(int32_t n_parts, void (*call)(void*, int32_t), void* ctx);
  struct Shared;
  int32_t n_threads_;
  std::unique_ptr<Shared> shared_;
};

}  // namespace thinkmesh::model
