// A small fork-join thread pool. The calling thread takes part in every job.
// Between jobs a worker polls for the next one - spinning for 50 us, then
// yielding the CPU between polls, for up to 300 us after the last job ended
// (a network's nodes, and a loop's runs, come in quick succession, and waking
// a sleeping thread costs tens of microseconds) - then sleeps on a condition
// variable, so an idle pool costs nothing. Details in thread_pool.cpp.
#pragma once
#include <atomic>
#include <condition_variable>
#include <exception>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace pyengine {

class ThreadPool {
 public:
  // `num_threads` counts the caller: 1 means everything runs inline.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return num_threads_; }

  // Splits [0, n) into contiguous chunks of at least `grain` items and calls
  // fn(begin, end) on them from up to size() threads. The partition depends
  // only on n, grain and size(), never on timing, so results are reproducible.
  // An exception thrown by fn stops the remaining chunks and is rethrown here.
  // If another job is already running on this pool (a second Python thread
  // running the same session), the work runs inline on the caller instead.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // Index of the calling thread inside the current parallel_for (0..size()-1);
  // kernels use it to pick their slice of per-thread scratch memory.
  static int thread_index();

  // Number of physical cores available to this process (best effort).
  static int default_num_threads();

 private:
  void worker_loop(int index);
  // Claims and runs chunks of job `gen` until none is left; returns how many it ran.
  void run_chunks(uint32_t gen, const std::function<void(int64_t, int64_t)>& fn, int64_t n,
                  int64_t num_chunks);

  int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex job_mutex_;  // held by the caller for the whole job

  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int64_t num_chunks_ = 0;
  // Read without the lock by threads spinning briefly (see kSpin in the .cpp);
  // written under mu_.
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  // The next unclaimed chunk, tagged with its job's generation in the high 32
  // bits: a worker that wakes after its job is finished cannot claim a chunk
  // of the next job with the old job's function. The caller waits for
  // finished chunks, not for every worker to check in, so a worker the OS
  // has not scheduled yet never delays the job's end.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> done_chunks_{0};
  std::atomic<bool> failed_{false};  // a chunk threw: the rest are skipped
  std::exception_ptr error_;  // first exception thrown by a chunk, rethrown by the caller
};

}  // namespace pyengine
