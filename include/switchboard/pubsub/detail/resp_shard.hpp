// switchboard/pubsub/detail/resp_shard.hpp
//
// The part of a `resp_server` that lives on one event-loop thread: its clients, the frame cache they share, the
// list of clients with output to write (written together once the thread's current deliveries are done), a
// once-a-second clock for the soft output limit and the idle timeout, and the drain. Only ever touched from its
// own executor; `resp_server_shared` holds what the threads share.
#pragma once

#include <switchboard/core/drain.hpp>
#include <switchboard/pubsub/broker.hpp>
#include <switchboard/pubsub/detail/resp_channels.hpp>
#include <switchboard/pubsub/detail/resp_frames.hpp>
#include <switchboard/pubsub/resp_server_options.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace switchboard::pubsub::detail {

/// What the threads of one server share: options, brokers, the channel registry and the counters.
struct resp_server_shared {
  resp_server_shared(resp_server_options o, broker& ch, broker& sh)
      : options(std::move(o)), channels(&ch), shard_channels(&sh) {}

  const resp_server_options options;
  broker* channels;        ///< SUBSCRIBE / PSUBSCRIBE / PUBLISH
  broker* shard_channels;  ///< SSUBSCRIBE / SPUBLISH: a namespace of their own, as in Redis
  resp_channel_registry registry;
  std::atomic<std::uint64_t> next_client_id{1};
  std::atomic<std::uint64_t> accepted{0}, clients{0}, rejected{0}, commands{0}, protocol_errors{0},
      output_limit_disconnects{0}, messages_sent{0};

  resp_server_stats snapshot() const noexcept {
    return {accepted.load(), clients.load(), rejected.load(), commands.load(), protocol_errors.load(),
            output_limit_disconnects.load(), messages_sent.load()};
  }
};

/// What a shard needs of each client connection.
class resp_session {
 public:
  /// Writes what is queued, unless a write is in flight.
  virtual void flush() = 0;
  /// Once a second: the soft output limit and the idle timeout.
  virtual void tick(std::chrono::steady_clock::time_point now) = 0;
  /// Drain: stop reading and subscribing, send what is queued, then close.
  virtual void leave() = 0;
  /// Close now.
  virtual void cut() = 0;

  std::size_t shard_slot_ = 0;  ///< Its index in the shard's list (for O(1) removal).
  bool flush_queued_ = false;   ///< In the shard's list of clients to flush.

 protected:
  ~resp_session() = default;
};

class resp_shard : public std::enable_shared_from_this<resp_shard> {
 public:
  resp_shard(asio::any_io_executor executor, std::shared_ptr<resp_server_shared> shared)
      : executor_(std::move(executor)), shared_(std::move(shared)), ticker_(executor_), drain_timer_(executor_) {}

  const asio::any_io_executor& executor() const noexcept { return executor_; }
  resp_server_shared& shared() noexcept { return *shared_; }
  resp_frame_cache& frames() noexcept { return frames_; }
  bool draining() const noexcept { return draining_; }

  void start() { tick(); }

  /// Registers a client (it calls `remove` as it closes).
  void add(resp_session* s) {
    s->shard_slot_ = sessions_.size();
    sessions_.push_back(s);
  }

  /// Unregisters a client; `was_cut` tells whether the drain deadline closed it.
  void remove(resp_session* s, bool was_cut) {
    const std::size_t slot = s->shard_slot_;
    if (slot >= sessions_.size() || sessions_[slot] != s) return;
    sessions_[slot] = sessions_.back();
    sessions_[slot]->shard_slot_ = slot;
    sessions_.pop_back();
    s->shard_slot_ = static_cast<std::size_t>(-1);
    if (draining_) {
      if (was_cut) ++report_.cut;
      else ++report_.drained;
      if (sessions_.empty()) finish_drain();
    }
  }

  /// Asks for `s` to be flushed once the handlers already queued on this thread (the broker's deliveries of the
  /// current batch) have run: one write per client per batch instead of one per message.
  void flush_later(std::shared_ptr<resp_session> s) {
    if (s->flush_queued_) return;
    s->flush_queued_ = true;
    to_flush_.push_back(std::move(s));
    if (to_flush_.size() == 1) asio::post(executor_, [self = shared_from_this()] { self->flush_all(); });
  }

  /// Starts draining this thread's clients; `done` is called here once none is left (see http's server_shard).
  void drain(std::chrono::steady_clock::time_point deadline, std::function<void(drain_report)> done) {
    if (drain_finished_) return done(report_);
    drain_waiters_.push_back(std::move(done));
    if (draining_) {
      if (deadline < drain_deadline_) arm_drain_timer(deadline);
      return;
    }
    draining_ = true;
    arm_drain_timer(deadline);
    for (resp_session* s : std::vector<resp_session*>(sessions_)) s->leave();
    if (sessions_.empty()) finish_drain();
  }

  /// Closes every client at once (the server is destroyed without a drain).
  void close_all() {
    ticker_.cancel();
    while (!sessions_.empty()) sessions_.back()->cut();
  }

 private:
  void flush_all() {
    auto batch = std::move(to_flush_);
    to_flush_.clear();
    for (auto& s : batch) {
      s->flush_queued_ = false;
      s->flush();
    }
    frames_.clear();
  }

  void arm_drain_timer(std::chrono::steady_clock::time_point deadline) {
    drain_deadline_ = deadline;
    drain_timer_.expires_at(deadline);
    drain_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (ec) return;
      while (!self->sessions_.empty()) self->sessions_.back()->cut();
      self->finish_drain();
    });
  }

  void finish_drain() {
    if (drain_finished_) return;
    drain_finished_ = true;
    drain_timer_.cancel();
    ticker_.cancel();
    auto waiters = std::move(drain_waiters_);
    for (auto& done : waiters) done(report_);
  }

  void tick() {
    const auto now = std::chrono::steady_clock::now();
    for (resp_session* s : std::vector<resp_session*>(sessions_)) s->tick(now);
    ticker_.expires_after(std::chrono::seconds(1));
    ticker_.async_wait([weak = weak_from_this()](std::error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->tick();
    });
  }

  asio::any_io_executor executor_;
  std::shared_ptr<resp_server_shared> shared_;
  asio::steady_timer ticker_;
  asio::steady_timer drain_timer_;
  resp_frame_cache frames_;
  std::vector<resp_session*> sessions_;
  std::vector<std::shared_ptr<resp_session>> to_flush_;
  bool draining_ = false;
  bool drain_finished_ = false;
  std::chrono::steady_clock::time_point drain_deadline_;
  std::vector<std::function<void(drain_report)>> drain_waiters_;
  drain_report report_;
};

}  // namespace switchboard::pubsub::detail
