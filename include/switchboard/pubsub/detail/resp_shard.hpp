// switchboard/pubsub/detail/resp_shard.hpp
//
// The part of a `resp_server` that lives on one event-loop thread: its clients, their subscriptions, the list of
// clients with output to write (written together once the thread's current deliveries are done), a
// once-a-second clock for the soft output limit and the idle timeout, and the drain. Only ever touched from its
// own executor; `resp_server_shared` holds what the threads share.
//
// Fan-out. A thread holds one broker subscription per channel (pattern, shard channel) that any of its clients
// subscribes to, not one per client: the broker delivers a message once per thread, the thread encodes it once
// per protocol and appends the bytes to the output of each of its clients of that channel. So a delivery costs
// a client a copy of the encoded frame (or a reference, for large ones) and nothing else, which is what lets one
// core deliver more messages than Redis, which formats every message again for each client.
#pragma once

#include <switchboard/core/detail/per_key_count.hpp>
#include <switchboard/core/detail/string_map.hpp>
#include <switchboard/core/drain.hpp>
#include <switchboard/pubsub/broker.hpp>
#include <switchboard/pubsub/detail/resp_channels.hpp>
#include <switchboard/pubsub/detail/resp_frames.hpp>
#include <switchboard/core/shared_bytes.hpp>
#include <switchboard/pubsub/resp_server_options.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/ip/address.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
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
  std::atomic<std::uint64_t> accepted{0}, clients{0}, rejected{0}, rejected_per_address{0}, commands{0},
      protocol_errors{0}, output_limit_disconnects{0}, query_buffer_disconnects{0}, messages_sent{0},
      subscriptions_refused{0}, output_limit_checks{0};
  /// Clients connected per IP address, when `max_clients_per_address` is set.
  switchboard::detail::shared_per_key_count<asio::ip::address> clients_per_address;

  resp_server_stats snapshot() const noexcept {
    return {accepted.load(),        clients.load(),       rejected.load(),
            rejected_per_address.load(), commands.load(), protocol_errors.load(),
            output_limit_disconnects.load(), query_buffer_disconnects.load(), messages_sent.load(),
            subscriptions_refused.load(), output_limit_checks.load()};
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
  /// The protocol it speaks (which frame it takes).
  virtual resp::protocol version() const noexcept = 0;
  /// Takes the encoded frame of a message of one of its subscriptions.
  virtual void deliver(const shared_bytes& frame) = 0;
  /// Its subscription could not keep up (the thread fell behind): close it as over its output limit.
  virtual void overflowed() = 0;

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

  /// Subscribes `s` to `name` of `kind`, through this thread's broker subscription (made if it is the first).
  /// Fails (with the broker's error) only when the broker subscription cannot be made.
  void join(resp_channel_kind kind, std::string_view name, resp_session* s, std::error_code& ec) {
    auto& table = tables_[static_cast<std::size_t>(kind)];
    auto it = table.find(name);
    const bool first = it == table.end();
    if (first) {
      auto local = std::make_unique<local_channel>();
      local->delivery = kind == resp_channel_kind::channel   ? resp_delivery::message
                        : kind == resp_channel_kind::pattern ? resp_delivery::pmessage
                                                             : resp_delivery::smessage;
      subscription_options o;
      o.executor = executor_;
      // The clients' output limits apply in their output queues; this bound only catches a thread that falls far
      // behind its publishers, and then the clients of the channel on this thread are cut (`overflowed`).
      o.limits = queue_limits{.max_messages = 1'000'000,
                              .max_bytes = shared_->options.output_limits.hard,
                              .policy = overflow_policy::disconnect};
      // The pointers stay valid: the subscription is dropped (on this executor) before `local` goes, and the
      // shard outlives its clients' subscriptions.
      o.on_event = [this, l = local.get()](std::error_code e, const event& ev) { fan_out(*l, e, ev); };
      broker& b = broker_for(kind);
      local->sub = kind == resp_channel_kind::pattern ? b.subscribe_pattern(name, std::move(o), ec)
                                                      : b.subscribe(name, std::move(o), ec);
      if (ec) return;
      it = table.emplace(std::string(name), std::move(local)).first;
      it->second->name = it->first;  // the key stays in place until the entry goes
    } else if (const std::size_t queued = it->second->sub.stats().depth; queued > 0) {
      // The thread's subscription already holds messages published before this SUBSCRIBE, not yet fanned out.
      // Redis hands a message to the clients subscribed when it is published, never to a later one (a client that
      // pipelines PUBLISH x then SUBSCRIBE x does not receive its own message): so this client skips those.
      it->second->joined.emplace_back(s, it->second->handed + queued);
    }
    it->second->clients.push_back(s);
    shared_->registry.add(kind, name, first);
  }

  /// Unsubscribes `s` from `name` of `kind` (which it joined); the last client of the thread drops the broker
  /// subscription, and the topic if it retains nothing.
  void leave(resp_channel_kind kind, std::string_view name, resp_session* s) {
    auto& table = tables_[static_cast<std::size_t>(kind)];
    const auto it = table.find(name);
    if (it == table.end()) return;
    local_channel& local = *it->second;
    // Linear: a client leaves a channel once; the list is the thread's subscribers of that one channel.
    const auto pos = std::find(local.clients.begin(), local.clients.end(), s);
    if (pos == local.clients.end()) return;
    if (local.delivering) {
      *pos = nullptr;  // fan_out is walking the list: it compacts it afterwards
    } else {
      local.clients.erase(pos);
    }
    std::erase_if(local.joined, [s](const auto& j) { return j.first == s; });
    const bool last = std::none_of(local.clients.begin(), local.clients.end(), [](auto* c) { return c != nullptr; });
    shared_->registry.remove(kind, name, last);
    if (!last) return;
    // Dropping a subscription from inside its own callback is allowed, but the callback's captures must stay
    // alive until it returns: hand the entry to the executor to destroy.
    auto gone = std::move(it->second);
    table.erase(it);
    gone->sub.unsubscribe();
    if (kind != resp_channel_kind::pattern) forget_if_unused(broker_for(kind), name);
    if (gone->delivering) asio::post(executor_, [g = std::shared_ptr<local_channel>(std::move(gone))] {});
  }

  /// The broker makes a topic on first use and keeps it, with its numbering, until it is erased; a Redis channel
  /// exists only while subscribed, and clients may well use a new name per message. So a topic that retains
  /// nothing is erased once the front end is done with it (the broker refuses while exact subscribers or waiters
  /// use it), which keeps the broker's topic count (`broker_options::max_topics`) from filling up.
  static void forget_if_unused(broker& b, std::string_view topic) {
    const auto stats = b.stats(topic);
    if (stats && stats->retained == 0) b.erase_topic(topic);
  }

  /// A PUBLISH made `topic` (its message was the topic's first): erase it at the next tick if nobody subscribed
  /// by then. Not at once: a client publishing to a channel nobody listens to would otherwise make and erase a
  /// topic per message; this way it is once per second, and the topics made meanwhile stay few.
  void forget_later(resp_channel_kind kind, std::string_view topic) {
    made_.emplace_back(kind, std::string(topic));
    if (made_.size() >= max_made) forget_made();
  }

  broker& broker_for(resp_channel_kind kind) const noexcept {
    return kind == resp_channel_kind::shard ? *shared_->shard_channels : *shared_->channels;
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
    stop_clock();
    while (!sessions_.empty()) sessions_.back()->cut();
  }

 private:
  /// This thread's clients of one channel, pattern or shard channel, and the broker subscription they share.
  struct local_channel {
    subscription sub;
    resp_delivery delivery = resp_delivery::message;
    // The table's key, so that a pattern is held once on this side of the broker. Read only while the entry is in
    // the table: a client that leaves during `fan_out` and takes the entry with it leaves nobody to deliver to.
    std::string_view name;
    std::vector<resp_session*> clients;  // null: left during a fan-out, removed after it
    std::uint64_t handed = 0;            // messages the broker has handed to fan_out
    // Clients that joined while the subscription held messages not yet fanned out, with the value `handed` reaches
    // at the last of them: those were published before the client subscribed, and it does not get them.
    std::vector<std::pair<resp_session*, std::uint64_t>> joined;
    bool delivering = false;
  };

  // One message to every client of `local` on this thread: encoded once per protocol, shared by all.
  void fan_out(local_channel& local, std::error_code ec, const event& ev) {
    local.delivering = true;
    if (ec) {
      // The broker cut the subscription (this thread fell behind), or the broker is gone: so are the clients.
      for (std::size_t i = 0; i < local.clients.size(); ++i) {
        if (local.clients[i] != nullptr) local.clients[i]->overflowed();
      }
    } else if (ev.is_message()) {  // gaps cannot happen under `disconnect`, and RESP has no way to say them
      shared_bytes frames[2];
      std::uint64_t sent = 0;
      const std::uint64_t index = ++local.handed;
      const auto joined_later = [&](const resp_session* c) {
        return std::any_of(local.joined.begin(), local.joined.end(),
                           [&](const auto& j) { return j.first == c && index <= j.second; });
      };
      const std::string_view pattern = local.delivery == resp_delivery::pmessage ? std::string_view(local.name) : "";
      for (std::size_t i = 0; i < local.clients.size(); ++i) {  // the list may grow meanwhile: no iterators
        resp_session* c = local.clients[i];
        if (c == nullptr || (!local.joined.empty() && joined_later(c))) continue;
        const resp::protocol version = c->version();
        shared_bytes& frame = frames[version == resp::protocol::resp3 ? 1 : 0];
        if (frame.empty()) frame = encode_delivery(version, local.delivery, pattern, ev.message());
        c->deliver(frame);
        ++sent;
      }
      shared_->messages_sent.fetch_add(sent, std::memory_order_relaxed);
      std::erase_if(local.joined, [&](const auto& j) { return j.second <= index; });
    }
    local.delivering = false;
    std::erase(local.clients, nullptr);
  }

  void flush_all() {
    auto batch = std::move(to_flush_);
    to_flush_.clear();
    for (auto& s : batch) {
      s->flush_queued_ = false;
      s->flush();
    }
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
    stop_clock();
    auto waiters = std::move(drain_waiters_);
    for (auto& done : waiters) done(report_);
  }

  static constexpr std::size_t max_made = 1024;

  void forget_made() {
    for (const auto& [kind, topic] : made_) forget_if_unused(broker_for(kind), topic);
    made_.clear();
  }

  void tick() {
    forget_made();
    const auto now = std::chrono::steady_clock::now();
    for (resp_session* s : std::vector<resp_session*>(sessions_)) s->tick(now);
    // Counted once the check is done, so that a count read after an event on this thread covers only checks that
    // ran wholly before it or wholly after it.
    shared_->output_limit_checks.fetch_add(1, std::memory_order_relaxed);
    ticker_.expires_after(std::chrono::seconds(1));
    ticker_.async_wait([weak = weak_from_this()](std::error_code ec) {
      if (ec) return;
      if (auto self = weak.lock(); self && !self->clock_stopped_) self->tick();
    });
  }

  // Stops the clock for good, as the HTTP server's shard does (http/detail/server_shard.hpp says why cancelling
  // alone is not enough).
  void stop_clock() {
    clock_stopped_ = true;
    ticker_.cancel();
  }

  asio::any_io_executor executor_;
  std::shared_ptr<resp_server_shared> shared_;
  asio::steady_timer ticker_;
  bool clock_stopped_ = false;  // `stop_clock` was called: no tick arms the timer again
  asio::steady_timer drain_timer_;
  std::array<switchboard::detail::string_map<std::unique_ptr<local_channel>>, 3> tables_;
  std::vector<resp_session*> sessions_;
  std::vector<std::shared_ptr<resp_session>> to_flush_;
  std::vector<std::pair<resp_channel_kind, std::string>> made_;  // topics made by PUBLISH, to erase if unused
  bool draining_ = false;
  bool drain_finished_ = false;
  std::chrono::steady_clock::time_point drain_deadline_;
  std::vector<std::function<void(drain_report)>> drain_waiters_;
  drain_report report_;
};

}  // namespace switchboard::pubsub::detail
