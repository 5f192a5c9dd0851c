#include "runtime/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#if defined(__linux__)
#include <sched.h>
#endif

namespace pyengine {

namespace {
// How long a thread spins for the next job (worker) or for the job's end
// (caller) before it blocks.
constexpr auto kSpin = std::chrono::microseconds(50);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// How long the caller, having run its own chunks, keeps polling for the
// others' before it blocks. Its chunks and the workers' usually end within
// microseconds of each other, but a worker that was asleep when the job came
// starts tens of microseconds late (longer inside a VM); blocking then adds a
// second wake-up, the caller's own, to every such job. Past kSpin it yields
// instead of pausing, so on a busy machine the CPU goes to whoever needs it
// (possibly the very worker it waits for).
constexpr auto kMaxWorkerSpin = std::chrono::microseconds(2000);
// How long an idle worker keeps polling (yielding past kSpin) after its last
// job ended: a small network's run is a few tens of microseconds, and in a
// loop of runs the next run's first threaded node comes that long after the
// last one. Sleeping in between made every such node wait for a futex
// wake-up (digits_mlp at batch 1 gained nothing from a second thread).
constexpr auto kIdlePoll = std::chrono::microseconds(300);
constexpr auto kCallerPoll = std::chrono::microseconds(1000);

template <class Pred>
bool spin_until(Pred done) {
  auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (done()) return true;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > deadline) return false;
  }
}

template <class Pred>
bool yield_until(Pred done) {
  auto deadline = std::chrono::steady_clock::now() + kCallerPoll;
  for (;;) {
    if (done()) return true;
    std::this_thread::yield();
    if (std::chrono::steady_clock::now() > deadline) return done();
  }
}

thread_local int tls_thread_index = 0;
// True while this thread executes chunks of some job: a nested parallel_for
// (a kernel calling another threaded kernel) then runs inline.
thread_local bool tls_in_job = false;

int64_t chunk_begin(int64_t chunk, int64_t num_chunks, int64_t n) {
  return n * chunk / num_chunks;
}
}  // namespace

ThreadPool::ThreadPool(int num_threads) : num_threads_(std::max(1, num_threads)) {
  for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

int ThreadPool::thread_index() { return tls_thread_index; }

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int64_t max_chunks = (n + grain - 1) / grain;
  int64_t num_chunks = std::min<int64_t>(max_chunks, num_threads_);
  if (num_chunks <= 1 || tls_in_job) {
    fn(0, n);  // inline: keeps the caller's thread index (and its scratch slice)
    return;
  }
  std::unique_lock<std::mutex> job(job_mutex_, std::try_to_lock);
  if (!job.owns_lock()) {
    // Another run is using the pool; do this one on the calling thread.
    tls_in_job = true;
    tls_thread_index = 0;
    fn(0, n);
    tls_in_job = false;
    return;
  }
  uint32_t gen;
  {
    std::lock_guard<std::mutex> lk(mu_);
    fn_ = &fn;
    n_ = n;
    num_chunks_ = num_chunks;
    error_ = nullptr;
    failed_.store(false);
    done_chunks_.store(0);
    gen = static_cast<uint32_t>(generation_.load() + 1);
    claim_.store(static_cast<uint64_t>(gen) << 32, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_release);
  }
  work_cv_.notify_all();
  // The caller works too; chunk i always covers the same range whoever runs it.
  tls_thread_index = 0;
  tls_in_job = true;
  run_chunks(gen, fn, n, num_chunks);
  tls_in_job = false;
  auto finished = [this, num_chunks] { return done_chunks_.load(std::memory_order_acquire) == num_chunks; };
  if (!spin_until(finished) && !yield_until(finished)) {
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, finished);
  }
  std::lock_guard<std::mutex> lk(mu_);
  fn_ = nullptr;
  if (error_) {
    std::exception_ptr e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

void ThreadPool::run_chunks(uint32_t gen, const std::function<void(int64_t, int64_t)>& fn, int64_t n,
                            int64_t num_chunks) {
  for (;;) {
    uint64_t v = claim_.load(std::memory_order_acquire);
    int64_t c;
    do {
      if (static_cast<uint32_t>(v >> 32) != gen) return;  // a later job: not ours to run
      c = static_cast<int64_t>(v & 0xffffffffu);
      if (c >= num_chunks) return;
    } while (!claim_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel));
    if (!failed_.load(std::memory_order_relaxed)) {
      try {
        fn(chunk_begin(c, num_chunks, n), chunk_begin(c + 1, num_chunks, n));
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu_);
        if (!error_) error_ = std::current_exception();
        failed_.store(true);
      }
    }
    if (done_chunks_.fetch_add(1, std::memory_order_acq_rel) + 1 == num_chunks) {
      std::lock_guard<std::mutex> lk(mu_);  // the caller may be about to wait on done_cv_
      done_cv_.notify_one();
    }
  }
}

void ThreadPool::worker_loop(int index) {
  tls_thread_index = index;
  tls_in_job = true;
  uint64_t seen = 0;
  int64_t num_chunks = 0;  // of job `seen`
  // Spins until a job after `seen` (or stop) is published, or until the spin
  // runs out. The kSpin window starts when job `seen` is finished, not when
  // this worker's chunks are: a worker done early (its share was smaller, or
  // the caller's chunk was slower) would otherwise fall asleep while the
  // caller still works on the same job, and the caller's next job, which
  // comes right after, would wait for its wake-up. At most kMaxWorkerSpin;
  // past kSpin it yields between polls (as the caller does).
  auto wait_for_next_job = [this](uint64_t job, int64_t job_chunks) {
    const auto start = std::chrono::steady_clock::now();
    auto last_busy = start;
    bool yielding = false;
    for (int i = 0;; ++i) {
      if (stop_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != job) return;
      if (!yielding) cpu_relax();
      else std::this_thread::yield();  // long wait: leave the CPU to whoever needs it
      if (!yielding && (i & 63) != 63) continue;
      const auto now = std::chrono::steady_clock::now();
      yielding = now - start > kSpin;
      if (done_chunks_.load(std::memory_order_relaxed) < job_chunks) last_busy = now;  // job still running
      if (now - last_busy > kIdlePoll || now - start > kMaxWorkerSpin) return;
    }
  };
  for (;;) {
    const std::function<void(int64_t, int64_t)>* fn;
    int64_t n;
    wait_for_next_job(seen, num_chunks);
    {
      std::unique_lock<std::mutex> lk(mu_);
      work_cv_.wait(lk, [&] { return stop_.load() || generation_.load() != seen; });
      if (stop_) return;
      seen = generation_.load();
      fn = fn_;
      n = n_;
      num_chunks = num_chunks_;
    }
    // fn is only called after claiming a chunk of generation `seen`, which
    // keeps the caller (and fn) waiting until that chunk is done.
    if (fn) run_chunks(static_cast<uint32_t>(seen), *fn, n, num_chunks);
  }
}

int ThreadPool::default_num_threads() {
  int logical = static_cast<int>(std::thread::hardware_concurrency());
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    // Count distinct physical cores among the CPUs this process may use.
    std::set<std::pair<std::string, std::string>> cores;
    int allowed = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &set)) continue;
      ++allowed;
      std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
      std::ifstream pkg(base + "physical_package_id"), core(base + "core_id");
      std::string p, c;
      if (pkg >> p && core >> c) cores.insert({p, c});
      else cores.insert({"cpu", std::to_string(cpu)});
    }
    if (!cores.empty()) return static_cast<int>(cores.size());
    if (allowed > 0) return allowed;
  }
#endif
  return std::max(1, logical);
}

}  // namespace pyengine
