// ThreadPool (thread_pool.h).
//
// One 64-bit word describes the current dispatch and hands out its parts:
//   claim = generation (24 bits) | n_parts (20 bits) | next part (20 bits)
// A part is taken by a compare-and-swap that keeps generation and n_parts: a worker that read
// an old dispatch's function and then slept can never take a part of a newer dispatch (its CAS
// fails), and a successful CAS proves the dispatch it belongs to is still running, so the
// function and context it read are that dispatch's (the caller writes them before publishing
// the generation and cannot change them before every part is done). The caller waits for the
// parts to be done, not for the workers to check in.
#include "model/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "thinkmesh/error.h"

namespace thinkmesh::model {

namespace {

constexpr int kPartBits = 20;
constexpr uint64_t kPartMask = (uint64_t{1} << kPartBits) - 1;

constexpr uint64_t pack(uint64_t generation, uint64_t n_parts, uint64_t next) {
  return (generation << (2 * kPartBits)) | (n_parts << kPartBits) | next;
}
constexpr uint64_t generation_of(uint64_t c) {
  return c >> (2 * kPartBits);
}
constexpr int32_t n_parts_of(uint64_t c) {
  return static_cast<int32_t>((c >> kPartBits) & kPartMask);
}
constexpr int32_t next_of(uint64_t c) {
  return static_cast<int32_t>(c & kPartMask);
}

void pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

struct ThreadPool::Shared {
  // ~1 ms of pause instructions before a worker sleeps: the operations of one token take
  // microseconds, far less than a futex wake-up, so sleeping between them would leave the
  // workers idle (measured: 2 threads no faster than 1).
  static constexpr int kSpinRounds = 1 << 16;

  std::atomic<uint64_t> claim{0};
  std::atomic<int32_t> done{0};
  std::atomic<void (*)(void*, int32_t)> call{nullptr};
  std::atomic<void*> ctx{nullptr};
  std::atomic<int32_t> sleepers{0};
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::condition_variable wake;
  std::vector<std::thread> workers;

  // Takes and runs parts of the dispatch whose claim word was `c` until none is left (or a
  // newer dispatch replaced it). Returns the number of parts run.
  int32_t work(uint64_t c, void (*fn)(void*, int32_t), void* arg) {
    const uint64_t generation = generation_of(c);
    int32_t ran = 0;
    while (next_of(c) < n_parts_of(c)) {
      if (claim.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        fn(arg, next_of(c));
        ++ran;
        c += 1;
      } else if (generation_of(c) != generation) {
        break;  // (c now holds the current word) a newer dispatch: fn is not its function
      }
    }
    return ran;
  }

  void worker_loop() {
    uint64_t seen = 0;
    while (true) {
      uint64_t c = claim.load(std::memory_order_acquire);
      for (int spins = 0; generation_of(c) == seen; c = claim.load(std::memory_order_acquire)) {
        if (stop.load(std::memory_order_relaxed)) return;
        if (++spins < kSpinRounds) {
          pause();
          continue;
        }
        std::unique_lock lock(mutex);
        sleepers.fetch_add(1, std::memory_order_seq_cst);
        wake.wait(lock, [&] {
          return stop.load() || generation_of(claim.load(std::memory_order_seq_cst)) != seen;
        });
        sleepers.fetch_sub(1, std::memory_order_relaxed);
        spins = 0;
      }
      seen = generation_of(c);
      void (*fn)(void*, int32_t) = call.load(std::memory_order_relaxed);
      void* arg = ctx.load(std::memory_order_relaxed);
      const int32_t ran = work(c, fn, arg);
      if (ran > 0) done.fetch_add(ran, std::memory_order_release);
    }
  }
};

ThreadPool::ThreadPool(int32_t n_threads)
    : n_threads_(std::max(1, n_threads)), shared_(std::make_unique<Shared>()) {
  for (int32_t i = 1; i < n_threads_; ++i) {
    shared_->workers.emplace_back([s = shared_.get()] { s->worker_loop(); });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(shared_->mutex);
    shared_->stop = true;
  }
  shared_->wake.notify_all();
  for (auto& t : shared_->workers) t.join();
}

void ThreadPool::run_impl(int32_t n_parts, void (*call)(void*, int32_t), void* ctx) {
  if (n_threads_ == 1 || n_parts <= 1) {
    for (int32_t i = 0; i < n_parts; ++i) call(ctx, i);
    return;
  }
  if (static_cast<uint64_t>(n_parts) > kPartMask) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("ThreadPool::run: {} parts (at most {})", n_parts, kPartMask));
  }
  Shared& s = *shared_;
  s.call.store(call, std::memory_order_relaxed);
  s.ctx.store(ctx, std::memory_order_relaxed);
  s.done.store(0, std::memory_order_relaxed);
  const uint64_t generation = generation_of(s.claim.load(std::memory_order_relaxed)) + 1;
  const uint64_t c =
      pack(generation & ((uint64_t{1} << 24) - 1), static_cast<uint64_t>(n_parts), 0);
  // seq_cst store and load: pairs with a sleeping worker's increment of `sleepers` and its
  // predicate check (one of the two sides sees the other).
  s.claim.store(c, std::memory_order_seq_cst);
  if (s.sleepers.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard lock(s.mutex);
    s.wake.notify_all();
  }
  const int32_t ran = s.work(c, call, ctx);
  // Parts a worker has taken are running now; wait for them only. After a short spin yield
  // the core: an oversubscribed machine may have descheduled the worker mid-part.
  for (int spins = 0; s.done.load(std::memory_order_acquire) + ran < n_parts; ++spins) {
    if (spins < 4096) {
      pause();
    } else {
      std::this_thread::yield();
    }
  }
}

}  // namespace thinkmesh::model
