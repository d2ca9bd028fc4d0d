// ThreadPool: every part of every dispatch runs exactly once, whatever the thread count (more
// threads than cores included: workers then get descheduled mid-dispatch, the case the
// generation-tagged claims exist for), and nothing of one dispatch leaks into the next.
#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "model/thread_pool.h"
#include "thinkmesh/error.h"

namespace thinkmesh::model {
namespace {

TEST(ThreadPool, EveryPartOfEveryDispatchRunsExactlyOnce) {
  for (int32_t threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    std::mt19937 rng(static_cast<uint32_t>(threads));
    std::uniform_int_distribution<int32_t> size(0, 300);
    for (int round = 0; round < 3000; ++round) {
      const int32_t n = round % 50 == 0 ? 5000 : size(rng);
      // a fresh vector per dispatch: a part of an old dispatch run late would write freed or
      // wrong memory (ASan) or leave a count != 1 here
      std::vector<std::atomic<int32_t>> hits(static_cast<size_t>(n));
      pool.run(n, [&](int32_t part) { hits[static_cast<size_t>(part)].fetch_add(1); });
      for (int32_t i = 0; i < n; ++i)
        ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1)
            << "part " << i << " of " << n << ", round " << round << ", " << threads << " threads";
    }
  }
}

TEST(ThreadPool, WorkersSleepingBetweenDispatchesAreWokenUp) {
  ThreadPool pool(2);
  for (int round = 0; round < 3; ++round) {
    // past the spin phase (~1 ms): the worker sleeps on the condition variable
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::atomic<int32_t> sum{0};
    pool.run(1000, [&](int32_t part) { sum.fetch_add(part); });
    EXPECT_EQ(sum.load(), 999 * 1000 / 2);
  }
}

TEST(ThreadPool, ForEachVisitsEveryIndexOnce) {
  for (int32_t threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 7, 8, 9, 31, 128, 1001}) {
      std::vector<std::atomic<int32_t>> hits(static_cast<size_t>(n));
      pool.for_each(n, [&](int64_t i) { hits[static_cast<size_t>(i)].fetch_add(1); });
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << i << " of " << n;
    }
  }
}

TEST(ThreadPool, TooManyPartsIsAnError) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.run(1 << 21, [](int32_t) {}), Error);
}

}  // namespace
}  // namespace thinkmesh::model
