// switchboard/core/detail/drain_shards.hpp
//
// The drain of a server made of shards (one per event-loop thread): each shard drains on its own executor, and the
// caller hears once, with the sum of their reports, when the last one is done.
#pragma once

#include <switchboard/core/drain.hpp>

#include <asio/post.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>

namespace switchboard::detail {

/// Calls `shard->drain(deadline, on_done)` on each shard's executor (`shard->executor()`) and `done` once (from
/// the thread of the last shard to finish) with the reports added up. `Shards` is a range of shared pointers.
template <class Shards>
void drain_shards(const Shards& shards, std::chrono::steady_clock::time_point deadline,
                  std::function<void(drain_report)> done) {
  struct tally {
    std::mutex mutex;
    drain_report report;
    std::size_t remaining = 0;
    std::function<void(drain_report)> done;
  };
  auto t = std::make_shared<tally>();
  t->remaining = std::size(shards);
  t->done = std::move(done);
  if (t->remaining == 0) return t->done(drain_report{});
  for (const auto& shard : shards) {
    asio::post(shard->executor(), [shard, deadline, t] {
      shard->drain(deadline, [t](drain_report r) {
        std::function<void(drain_report)> finished;
        drain_report total;
        {
          std::lock_guard lock(t->mutex);
          t->report += r;
          if (--t->remaining == 0) {
            finished = std::move(t->done);
            total = t->report;
          }
        }
        if (finished) finished(total);
      });
    });
  }
}

}  // namespace switchboard::detail
