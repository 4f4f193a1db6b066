// switchboard/jobs/worker_pool.hpp
//
// `worker_pool`: a fixed set of threads for CPU-bound work, with a bounded queue in front, so that the I/O threads
// never run (or wait for) long computations. A full pool refuses new work at once (`try_post` returns false)
// instead of queueing without bound: the caller answers 503 with `Retry-After` (DESIGN promise 2, backpressure).
// A caller that must not show its work to anyone before the pool has taken it reserves a place first
// (`try_reserve`), then posts into it (`post`, never refused). A caller that cancels work still queued takes its task
// back (`take_back`), so that its place is free again at once rather than when a worker gets to it.
//
//   switchboard::jobs::worker_pool pool({.threads = 4, .max_queued = 256});
//   auto n = co_await switchboard::jobs::offload(pool, [] { return count_primes(1'000'000); }, asio::use_awaitable);
//
// Thread safety: every member may be called from any thread. The destructor stops the workers after the task each
// is running; tasks still queued are destroyed without running (their owners see that: `offload` completes them
// with `switchboard::error::shutting_down`).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace switchboard::jobs {

struct worker_pool_options {
  /// Worker threads; 0: one per hardware thread. Leave room for the I/O threads on the same machine.
  std::size_t threads = 0;
  /// Tasks waiting for a worker at most; past it `try_post` refuses.
  std::size_t max_queued = 1024;
};

/// The pool's counters.
struct worker_pool_stats {
  std::size_t threads = 0;       ///< worker threads
  std::size_t busy = 0;          ///< workers running a task now
  std::size_t queued = 0;        ///< tasks waiting for a worker
  std::uint64_t completed = 0;   ///< tasks run (counted after each returns, so after its completion was posted)
  std::uint64_t refused = 0;     ///< tasks refused because the pool was full
};

class worker_pool {
 public:
  /// Names a task queued by `post`, for `take_back`. Never reused by a pool.
  using task_id = std::uint64_t;

  /// Starts the workers. Throws `std::invalid_argument` when `max_queued` is 0.
  explicit worker_pool(worker_pool_options options = {}) : options_(options) {
    if (options_.max_queued == 0) throw std::invalid_argument("switchboard::jobs::worker_pool: max_queued is 0");
    std::size_t n = options_.threads != 0 ? options_.threads : std::thread::hardware_concurrency();
    if (n == 0) n = 1;
    workers_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) workers_.emplace_back([this] { work(); });
  }

  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  /// Stops the workers (each finishes its task) and destroys the tasks still queued.
  ~worker_pool() {
    std::deque<queued_task> dropped;
    {
      const std::lock_guard lock(mutex_);
      stopping_ = true;
      dropped.swap(queue_);
    }
    ready_.notify_all();
    dropped.clear();  // before waiting for the busy workers: their owners hear at once that they will not run
    for (auto& t : workers_) t.join();
  }

  /// A place in the pool's queue held for one task (`try_reserve`); `post` fills it. Dropped unused, it is given
  /// back. Must not outlive its pool.
  class reservation {
   public:
    reservation(reservation&& other) noexcept : pool_(std::exchange(other.pool_, nullptr)) {}
    reservation& operator=(reservation&& other) noexcept {
      if (this != &other) {
        if (pool_) pool_->give_back();
        pool_ = std::exchange(other.pool_, nullptr);
      }
      return *this;
    }
    reservation(const reservation&) = delete;
    reservation& operator=(const reservation&) = delete;
    ~reservation() {
      if (pool_) pool_->give_back();
    }

   private:
    friend class worker_pool;
    explicit reservation(worker_pool& pool) noexcept : pool_(&pool) {}
    worker_pool* pool_;
  };

  /// Holds a place in the queue, or returns nothing (counted as refused) when the queue, with the places already
  /// held, is full or the pool is stopping.
  std::optional<reservation> try_reserve() {
    const std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() + reserved_ >= options_.max_queued) {
      ++refused_;
      return std::nullopt;
    }
    ++reserved_;
    return reservation(*this);
  }

  /// Queues `task` in the place `held` (this pool's): never refused. A pool stopping meanwhile destroys the task
  /// without running it, as it does the tasks still queued. Returns the task's id, for `take_back`.
  task_id post(reservation held, std::function<void()> task) {
    task_id id = 0;
    {
      const std::lock_guard lock(mutex_);
      held.pool_ = nullptr;  // the place is filled, not given back
      --reserved_;
      id = ++last_id_;
      if (!stopping_) queue_.push_back({id, std::move(task)});
    }
    ready_.notify_one();
    return id;
  }  // a task not queued is destroyed here, outside the lock

  /// Takes task `id` back out of the queue if no worker has taken it yet, and so frees its place at once: returns the
  /// task, not run (the caller destroys it, outside its own locks if the task's captures may need them). Returns an
  /// empty function when the task is no longer queued: a worker has taken it (it runs or has run), or the pool,
  /// stopping, destroyed it. Not counted as completed or refused.
  std::function<void()> take_back(task_id id) {
    const std::lock_guard lock(mutex_);
    // Ids grow in the order tasks are queued, and the queue keeps that order.
    const auto it = std::lower_bound(queue_.begin(), queue_.end(), id,
                                     [](const queued_task& t, task_id wanted) { return t.id < wanted; });
    if (it == queue_.end() || it->id != id) return {};
    std::function<void()> task = std::move(it->run);
    queue_.erase(it);
    return task;
  }

  /// Queues `task` for a worker, or returns false (and leaves `task` untouched) when the queue is full or the pool
  /// is stopping.
  bool try_post(std::function<void()>& task) {
    std::optional<reservation> place = try_reserve();
    if (!place) return false;
    post(std::move(*place), std::move(task));
    return true;
  }

  worker_pool_stats stats() const {
    const std::lock_guard lock(mutex_);
    return {workers_.size(), busy_, queue_.size(), completed_, refused_};
  }

 private:
  struct queued_task {
    task_id id;
    std::function<void()> run;
  };

  void give_back() {
    const std::lock_guard lock(mutex_);
    --reserved_;
  }

  void work() {
    std::unique_lock lock(mutex_);
    for (;;) {
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      std::function<void()> task = std::move(queue_.front().run);
      queue_.pop_front();
      ++busy_;
      lock.unlock();
      task();  // tasks report their own failures (offload catches); an escaping exception ends the program
      task = nullptr;
      lock.lock();
      --busy_;
      ++completed_;
    }
  }

  worker_pool_options options_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<queued_task> queue_;  // in the order posted, so by id
  task_id last_id_ = 0;            // the id of the task posted last
  std::size_t reserved_ = 0;  // places held by reservations, counted against max_queued
  std::size_t busy_ = 0;
  std::uint64_t completed_ = 0;
  std::uint64_t refused_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace switchboard::jobs
