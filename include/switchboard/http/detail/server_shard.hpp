// switchboard/http/detail/server_shard.hpp
//
// The part of an HTTP server that lives on one event-loop thread: its connections (an intrusive list, no locks),
// pools of per-request state and read buffers, the clock that enforces timeouts, the cached Date value, and the
// drain of its connections. Only ever touched from its own executor.
#pragma once

#include <switchboard/core/detail/arena.hpp>
#include <switchboard/core/detail/coarse_clock.hpp>
#include <switchboard/core/detail/page_pool.hpp>
#include <switchboard/core/detail/reuse_stack.hpp>
#include <switchboard/core/detail/per_key_count.hpp>
#include <switchboard/core/drain.hpp>
#include <switchboard/http/date.hpp>
#include <switchboard/http/detail/output_queue.hpp>
#include <switchboard/http/detail/read_buffer.hpp>
#include <switchboard/http/parser.hpp>
#include <switchboard/http/request.hpp>
#include <switchboard/http/router.hpp>
#include <switchboard/http/server_options.hpp>
#include <switchboard/net/listener.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <span>
#include <utility>
#include <vector>

namespace switchboard::http {

/// Counters of a server since it started, over all threads.
struct server_stats {
  std::uint64_t accepted = 0;      ///< connections accepted
  std::uint64_t active = 0;        ///< connections open now
  std::uint64_t requests = 0;      ///< requests whose header was parsed
  std::uint64_t responses_2xx = 0;
  std::uint64_t responses_4xx = 0;
  std::uint64_t responses_5xx = 0;
  std::uint64_t bad_requests = 0;  ///< connections closed for a malformed request (any status from status_for)
  std::uint64_t timeouts = 0;      ///< connections closed by a timeout
  std::uint64_t handler_errors = 0;///< handlers that threw something other than problem_error
  std::uint64_t refused_per_address = 0;  ///< connections closed at `max_connections_per_address`
};

namespace detail {

class server_shard;

/// Counters and limits shared by the shards of one server (atomics: touched from every thread).
struct server_shared {
  std::atomic<std::uint64_t> accepted{0}, active{0}, requests{0}, responses_2xx{0}, responses_4xx{0},
      responses_5xx{0}, bad_requests{0}, timeouts{0}, handler_errors{0}, refused_per_address{0};
  /// Connections open per client address, when `max_connections_per_address` is set.
  switchboard::detail::shared_per_key_count<asio::ip::address> connections_per_address;
  /// Every running shard, so that a connection closing on one thread can wake the shards that paused at
  /// `max_connections` on the others (server_shard::remove). Under `shards_mutex`: shards start on their own threads.
  std::mutex shards_mutex;
  std::vector<std::weak_ptr<server_shard>> shards;

  server_stats snapshot() const noexcept {
    return {accepted.load(),      active.load(),        requests.load(), responses_2xx.load(),
            responses_4xx.load(), responses_5xx.load(), bad_requests.load(), timeouts.load(),
            handler_errors.load(), refused_per_address.load()};
  }
};

using switchboard::detail::coarse_now;

/// What a shard needs to know of each connection.
class connection_base {
 public:
  /// Called by the shard's clock: close the connection if its deadline has passed.
  virtual void check_deadline(std::chrono::steady_clock::time_point now) = 0;
  /// Drain: leave as soon as the request in progress has been answered (idle connections leave at once).
  virtual void leave() = 0;
  /// Drain deadline: close now.
  virtual void cut() = 0;
  /// A response that the handler of request `sequence` delivered later, from this shard's thread, handed back by
  /// `server_shard::post_response` in a later turn of the event loop.
  virtual void on_async_response(std::uint64_t sequence, response r) = 0;

  connection_base* prev_ = nullptr;
  connection_base* next_ = nullptr;
  bool linked_ = false;
  asio::ip::tcp::endpoint remote_;  // the client's; its address is counted while the connection is open

 protected:
  ~connection_base() = default;
};

/// Per-request state, pooled: an idle connection returns it, so it costs nothing while the connection waits. It
/// lives at the start of a unit of whole pages from the shard's page_pool: then comes the arena its output queue
/// allocates from, then its read buffer (see server_shard::acquire_exchange).
struct exchange {
  exchange(const parser_limits& limits, std::span<char> arena_region, std::span<char> read_storage)
      : scratch(arena_region), in(read_storage), parser(limits), out(switchboard::detail::arena_allocator<char>(&scratch)) {}
  switchboard::detail::arena scratch;  // declared first: the containers below allocate from it
  read_buffer in;
  request_parser parser;
  request req;
  basic_output_queue<switchboard::detail::arena_allocator<char>> out;
  const route* current_route = nullptr;
  std::uint64_t body_pieces = 0;
  bool views_in_buffer = false;  // req's views point into `in` (see request::make_self_contained)
  bool continue_sent = false;    // "100 Continue" already queued for this request
  std::optional<response> sync_response;  // a response delivered while the handler was still being called

  void reset_request() {
    parser.reset();
    current_route = nullptr;
    body_pieces = 0;
    views_in_buffer = false;
    continue_sent = false;
    sync_response.reset();
  }
};

/// Destroys an exchange and gives its unit back to the page pool it came from.
struct exchange_deleter {
  switchboard::detail::page_pool* pool;
  void operator()(exchange* e) const noexcept {
    e->~exchange();
    pool->release(e);
  }
};
using exchange_ptr = std::unique_ptr<exchange, exchange_deleter>;

class server_shard : public std::enable_shared_from_this<server_shard> {
 public:
  server_shard(std::size_t index, asio::any_io_executor executor, const server_options& options,
               const router& routes, std::shared_ptr<server_shared> shared, std::shared_ptr<net::listener> listener)
      : index_(index),
        executor_(std::move(executor)),
        options_(options),
        routes_(&routes),
        shared_(std::move(shared)),
        listener_(std::move(listener)),
        ticker_(executor_),
        drain_timer_(executor_),
        exchange_pages_(exchange_unit_size) {
    if (const auto* plain = executor_.target<asio::io_context::executor_type>()) context_executor_.emplace(*plain);
  }

  std::size_t index() const noexcept { return index_; }
  const asio::any_io_executor& executor() const noexcept { return executor_; }
  const server_options& options() const noexcept { return options_; }
  const router& routes() const noexcept { return *routes_; }
  server_shared& shared() noexcept { return *shared_; }
  /// The largest a read buffer may grow: a whole header section, or chunk line, plus room to tell that it is too
  /// large. Saturating: a limit of SIZE_MAX ("none") must not wrap to a buffer that cannot hold a request.
  std::size_t max_read_buffer() const noexcept {
    const std::size_t longest = std::max(options_.limits.max_header_bytes, options_.limits.max_chunk_line);
    const std::size_t with_room = longest > SIZE_MAX - 1024 ? SIZE_MAX : longest + 1024;
    return std::max<std::size_t>(with_room, exchange_unit_size - read_storage_offset);
  }

  /// The current Date field value (IMF-fixdate, RFC 9110 §5.6.7), formatted at most once per second per thread.
  std::string_view date() const noexcept { return current_http_date(); }

  bool draining() const noexcept { return draining_; }

  exchange_ptr acquire_exchange() {
    if (!free_exchanges_.empty()) return free_exchanges_.pop();
    void* unit = exchange_pages_.acquire();
    auto* bytes = static_cast<char*>(unit);
    try {
      const std::span<char> arena_region(bytes + arena_offset, arena_size);
      const std::span<char> read_storage(bytes + read_storage_offset, exchange_pages_.unit_size() - read_storage_offset);
      return exchange_ptr(new (unit) exchange(options_.limits, arena_region, read_storage),
                          exchange_deleter{&exchange_pages_});
    } catch (...) {
      exchange_pages_.release(unit);
      throw;
    }
  }
  void release_exchange(exchange_ptr e) {
    e->in.release();
    e->reset_request();
    e->out.clear();
    free_exchanges_.push(std::move(e));
  }

  void start() {
    {
      const std::lock_guard lock(shared_->shards_mutex);
      shared_->shards.push_back(weak_from_this());
    }
    tick();
  }

  /// Registers a new connection (it unregisters itself when it closes).
  void add(connection_base* c) {
    c->next_ = head_;
    c->prev_ = nullptr;
    if (head_ != nullptr) head_->prev_ = c;
    head_ = c;
    c->linked_ = true;
    ++count_;
  }

  /// Called by a connection as it closes. `was_cut` tells whether the drain deadline closed it.
  void remove(connection_base* c, bool was_cut) {
    if (!c->linked_) return;
    if (options_.max_connections_per_address != 0) shared_->connections_per_address.remove(c->remote_.address());
    if (c->prev_ != nullptr) c->prev_->next_ = c->next_;
    else head_ = c->next_;
    if (c->next_ != nullptr) c->next_->prev_ = c->prev_;
    c->linked_ = false;
    --count_;
    if (draining_) {
      if (was_cut) ++report_.cut;
      else ++report_.drained;
      if (count_ == 0) finish_drain();
    }
    // The limit counts every thread's connections, and any shard that accepted the one that reached it has paused:
    // not only this one. Each time the count falls below the limit, every shard is told (waking only this shard
    // left the others paused with their backlogs unaccepted for good). A shard pauses in `on_accepted`, after the
    // increment that reached the limit: the decrement that next brings the count below it comes later, and so does
    // its message to that shard, which finds it paused.
    if (shared_->active.fetch_sub(1) == options_.max_connections && !clock_stopped_) resume_all_shards();
  }

  /// Before an accept counts: whether a connection from `remote` may open (`max_connections_per_address`); a
  /// refusal is counted. Then `remove` gives the address back.
  bool admit(const asio::ip::tcp::endpoint& remote) {
    if (options_.max_connections_per_address == 0 ||
        shared_->connections_per_address.try_add(remote.address(), options_.max_connections_per_address)) {
      return true;
    }
    shared_->refused_per_address.fetch_add(1, std::memory_order_relaxed);
    return false;
  }

  /// For a connection handed to another protocol (which the server no longer counts otherwise): keeps `remote`'s
  /// address counted in `max_connections_per_address` until the returned token is destroyed. Null when that limit
  /// is off.
  std::shared_ptr<void> hold_address(const asio::ip::tcp::endpoint& remote) {
    if (options_.max_connections_per_address == 0) return nullptr;
    class hold {
     public:
      hold(std::shared_ptr<server_shared> shared, const asio::ip::address& address)
          : shared_(std::move(shared)), address_(address) {
        shared_->connections_per_address.try_add(address_, std::numeric_limits<std::size_t>::max());
      }
      hold(const hold&) = delete;
      hold& operator=(const hold&) = delete;
      ~hold() { shared_->connections_per_address.remove(address_); }

     private:
      std::shared_ptr<server_shared> shared_;
      asio::ip::address address_;
    };
    return std::make_shared<hold>(shared_, remote.address());
  }

  /// Resumes accepting if this shard paused at the connection limit and the server is below it now.
  void resume_below_limit() {
    if (!paused_ || shared_->active.load() >= options_.max_connections) return;
    paused_ = false;
    listener_->resume(index_);
  }

  /// After an accept: pauses accepting when the server is at its connection limit.
  void on_accepted() {
    shared_->accepted.fetch_add(1, std::memory_order_relaxed);
    if (shared_->active.fetch_add(1) + 1 >= options_.max_connections) {
      paused_ = true;
      listener_->pause(index_);
    }
  }

  /// Starts the drain of this shard's connections; `done` is called on this executor once none is left. A later
  /// call (another drain request) moves the deadline earlier if it is, and gets its own `done` call too.
  void drain(std::chrono::steady_clock::time_point deadline, std::function<void(drain_report)> done) {
    if (drain_finished_) {
      done(report_);
      return;
    }
    drain_waiters_.push_back(std::move(done));
    if (draining_) {
      if (deadline < drain_deadline_) arm_drain_timer(deadline);
      return;
    }
    draining_ = true;
    arm_drain_timer(deadline);
    // Each connection closes itself now (idle) or after its current response; `remove` counts them.
    for (connection_base* c = head_; c != nullptr;) {
      connection_base* next = c->next_;
      c->leave();
      c = next;
    }
    if (count_ == 0) finish_drain();
  }

  /// Whether the caller runs on this shard's event loop, so that `post_response` may be called. False when the shard's
  /// executor is not an io_context's own (a strand, say): then responses are posted one by one.
  bool in_own_thread() const noexcept { return context_executor_ && context_executor_->running_in_this_thread(); }

  /// Hands `r` to `c->on_async_response(sequence, r)` in a later turn of this event loop; call only when
  /// `in_own_thread()`. Responses posted before that turn are handed over together, in the order they came, by one
  /// posted operation: a publish that answers 10,000 parked long polls on this thread makes one post, not 10,000
  /// (each of which allocated twice), as the broker's fan-out does (docs/pubsub.md).
  void post_response(std::shared_ptr<connection_base> c, std::uint64_t sequence, response r) {
    posted_responses_.push_back(posted_response{std::move(c), sequence, std::move(r)});
    if (posted_responses_.size() == 1) asio::post(*context_executor_, run_posted_responses{shared_from_this()});
  }

  /// Closes every connection at once (server destroyed without a drain).
  void close_all() {
    stop_clock();
    while (head_ != nullptr) head_->cut();
  }

 private:
  // An exchange's unit: the exchange, its arena (the output queue's pieces, and the text of typical responses:
  // heads and small bodies), then its read buffer (about 6 KiB: a whole browser request header fits, and a small
  // request touches only the first page).
  static constexpr std::size_t exchange_unit_size = 8 * 1024;
  static constexpr std::size_t arena_offset = (sizeof(exchange) + 63) / 64 * 64;
  static constexpr std::size_t arena_size = 1024;
  static constexpr std::size_t read_storage_offset = arena_offset + arena_size;
  static_assert(read_storage_offset + 4096 <= exchange_unit_size);

  struct posted_response {
    std::shared_ptr<connection_base> connection;
    std::uint64_t sequence;
    response r;
  };

  // The operation `post_response` posts. Destroyed without having run (the event loop shut down with it queued), it
  // lets the connections go: they hold the shard, which would otherwise hold them for ever.
  struct run_posted_responses {
    explicit run_posted_responses(std::shared_ptr<server_shard> s) : shard(std::move(s)) {}
    run_posted_responses(run_posted_responses&&) = default;
    run_posted_responses& operator=(run_posted_responses&&) = default;
    ~run_posted_responses() {
      if (shard) shard->posted_responses_.clear();
    }

    void operator()() { std::exchange(shard, nullptr)->hand_over_posted_responses(); }

    std::shared_ptr<server_shard> shard;  // empty once run, and in a moved-from one
  };

  // Responses posted while these are handed over wait for the next turn. The vector's storage is kept for the next
  // batch. A connection that throws lets the exception out of the event loop, as a posted handler would; the
  // responses after it are handed over in a turn posted first, so that none is lost.
  void hand_over_posted_responses() {
    std::vector<posted_response> batch;
    batch.swap(spare_posted_responses_);
    batch.swap(posted_responses_);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      posted_response& p = batch[i];
      try {
        p.connection->on_async_response(p.sequence, std::move(p.r));
      } catch (...) {
        const bool was_idle = posted_responses_.empty();
        const auto rest = batch.begin() + static_cast<std::ptrdiff_t>(i + 1);
        posted_responses_.insert(posted_responses_.begin(), std::make_move_iterator(rest),
                                 std::make_move_iterator(batch.end()));
        if (was_idle && !posted_responses_.empty()) {
          asio::post(*context_executor_, run_posted_responses{shared_from_this()});
        }
        throw;
      }
    }
    batch.clear();
    if (batch.capacity() > spare_posted_responses_.capacity()) spare_posted_responses_ = std::move(batch);
  }

  // This shard at once, the others through their executors.
  void resume_all_shards() {
    std::vector<std::shared_ptr<server_shard>> others;
    {
      const std::lock_guard lock(shared_->shards_mutex);
      for (const auto& weak : shared_->shards) {
        if (auto s = weak.lock(); s && s.get() != this) others.push_back(std::move(s));
      }
    }
    resume_below_limit();
    for (auto& s : others) {
      asio::post(s->executor_, [s] { s->resume_below_limit(); });
    }
  }

  void arm_drain_timer(std::chrono::steady_clock::time_point deadline) {
    drain_deadline_ = deadline;
    drain_timer_.expires_at(deadline);
    drain_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (ec) return;
      while (self->head_ != nullptr) self->head_->cut();  // cut() unlinks
      if (self->count_ == 0) self->finish_drain();
    });
  }

  void finish_drain() {
    if (drain_finished_) return;
    drain_finished_ = true;
    drain_timer_.cancel();
    stop_clock();
    auto waiters = std::move(drain_waiters_);
    for (auto& done : waiters) done(report_);
  }

  // The clock: checks every connection's deadline. Its period is a
  // quarter of the shortest timeout (between 10 ms and 1 s), so a timeout fires at most 25% late.
  std::chrono::milliseconds tick_period() const {
    std::chrono::milliseconds shortest{1000};
    for (auto t : {options_.timeouts.header, options_.timeouts.body, options_.timeouts.idle, options_.timeouts.write}) {
      if (t.count() > 0) shortest = std::min(shortest, t / 4);
    }
    return std::clamp(shortest, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  }

  void tick() {
    const auto now = std::chrono::steady_clock::now();
    for (connection_base* c = head_; c != nullptr;) {
      connection_base* next = c->next_;  // check_deadline may unlink c
      c->check_deadline(now);
      c = next;
    }
    // Released exchanges stay constructed (with their strings' capacity) for as long as the load reuses them: a
    // thousand long polls answered at once take a thousand, and park again. One unused since the last tick is
    // destroyed and its pages go back to the system.
    free_exchanges_.trim([this](exchange_ptr e) {
      exchange* unused = e.release();
      unused->~exchange();
      exchange_pages_.discard(unused);
    });
    exchange_pages_.trim();  // units released otherwise: an exchange destroyed with its connection
    ticker_.expires_after(tick_period());
    ticker_.async_wait([weak = weak_from_this()](std::error_code ec) {
      if (ec) return;
      if (auto self = weak.lock(); self && !self->clock_stopped_) self->tick();
    });
  }

  // Stops the clock for good (the drain has finished, or the server is gone), so that the event loop can run out
  // of work. Cancelling is not enough: a wait that expired while the loop was busy has its completion queued
  // already, with success, and that tick would arm the timer again (a runtime's threads then never returned).
  // A stopped shard is no longer told to resume accepting (server_shard::remove): its event loop may be ending.
  void stop_clock() {
    clock_stopped_ = true;
    ticker_.cancel();
    const std::lock_guard lock(shared_->shards_mutex);
    const std::weak_ptr<server_shard> self = weak_from_this();
    std::erase_if(shared_->shards, [&self](const std::weak_ptr<server_shard>& weak) {
      return weak.expired() || (!weak.owner_before(self) && !self.owner_before(weak));
    });
  }

  std::size_t index_;
  asio::any_io_executor executor_;
  std::optional<asio::io_context::executor_type> context_executor_;  // executor_'s, when it is an io_context's own
  server_options options_;
  const router* routes_;
  std::shared_ptr<server_shared> shared_;
  std::shared_ptr<net::listener> listener_;
  asio::steady_timer ticker_;
  bool clock_stopped_ = false;  // `stop_clock` was called: no tick arms the timer again
  asio::steady_timer drain_timer_;
  switchboard::detail::page_pool exchange_pages_;  // declared before free_exchanges_, which it outlives
  switchboard::detail::reuse_stack<exchange_ptr> free_exchanges_;
  connection_base* head_ = nullptr;
  std::size_t count_ = 0;
  bool paused_ = false;
  bool draining_ = false;
  std::chrono::steady_clock::time_point drain_deadline_;
  std::vector<std::function<void(drain_report)>> drain_waiters_;
  bool drain_finished_ = false;
  drain_report report_;
  std::vector<posted_response> posted_responses_;        // waiting for run_posted_responses
  std::vector<posted_response> spare_posted_responses_;  // the storage of the last batch handed over, empty
};

}  // namespace detail
}  // namespace switchboard::http
