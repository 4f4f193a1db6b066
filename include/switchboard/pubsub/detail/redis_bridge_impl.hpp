// switchboard/pubsub/detail/redis_bridge_impl.hpp
//
// The state machine of `redis_bridge` (redis_bridge.hpp). Everything below runs on the bridge's executor, except
// the observer (any thread, under the broker's locks), which only queues what it is told and posts one drain, and
// `attach`, `detach` and `stats` (any thread).
//
// The broker is reached through a pointer that `detach` clears, under a mutex that every use holds: the bridge is
// destroyed from any thread while its executor may be running a delivery, and its broker may be destroyed as soon
// as the destructor returns, before the `stop` it dispatched has run; so after `detach` nothing reaches the broker.
//
// Nodes. Without a cluster there is one node, the configured server. With a cluster there is one node per master
// named by CLUSTER SLOTS (or by a redirection), and a slot map from hash slot to node. Each node has a publishing
// connection and a subscribing one (RESP2 forbids commands other than (un)subscriptions on a subscribed connection,
// and keeping them apart means a refused subscription's error can never be taken for a PUBLISH reply). A node is
// up when both are connected; when either is lost, both are closed and retried with backoff.
//
// Interest. `wanted_` holds the channels and patterns with local subscriptions (bridged ones only); `placed_` maps
// each channel to the node it was subscribed at. Subscribing follows the slot map: when a channel's slot moves,
// the channel is unsubscribed at the old node (if Redis has not already ended it) and subscribed at the new one.
//
// One local delivery per Redis publish. Redis sends a client one push per matching subscription: for a channel
// and two patterns that match it, three. The node's subscribing connection keeps the channels and patterns Redis
// has confirmed (confirmations and messages share one ordered stream, so this is exactly the set Redis used for
// each message); a "message" is delivered, and a "pmessage" only when no confirmed channel is the same and its
// pattern is the smallest confirmed pattern that matches, so that exactly one of the pushes is kept.
#pragma once

#include <switchboard/core/error.hpp>
#include <switchboard/core/log.hpp>
#include <switchboard/pubsub/broker.hpp>
#include <switchboard/pubsub/detail/redis_envelope.hpp>
#include <switchboard/pubsub/glob.hpp>
#include <switchboard/pubsub/observer.hpp>
#include <switchboard/pubsub/redis_bridge_options.hpp>
#include <switchboard/resp/client.hpp>
#include <switchboard/resp/hash_slot.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/bind_executor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

namespace switchboard::pubsub::detail {

/// The header that marks messages that came from Redis (its value: the origin id of the publishing bridge, or
/// "redis" for a payload without envelope).
inline constexpr std::string_view origin_header = "switchboard-origin";

/// A `MOVED <slot> <host>:<port>` or `ASK <slot> <host>:<port>` error (Redis Cluster specification, "Redirection
/// and resharding").
struct redirection {
  bool ask = false;
  std::uint16_t slot = 0;
  std::string address;  // host:port
};

/// Parses a redirection error; nullopt for any other error.
inline std::optional<redirection> parse_redirection(std::string_view error) {
  redirection r;
  if (error.rfind("MOVED ", 0) == 0) {
    error.remove_prefix(6);
  } else if (error.rfind("ASK ", 0) == 0) {
    r.ask = true;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const std::size_t space = error.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  unsigned slot = 0;
  const auto [ptr, ec] = std::from_chars(error.data(), error.data() + space, slot);
  if (ec != std::errc() || ptr != error.data() + space || slot >= resp::cluster_slots) return std::nullopt;
  r.slot = static_cast<std::uint16_t>(slot);
  r.address = std::string(error.substr(space + 1));
  if (r.address.rfind(':') == std::string::npos) return std::nullopt;
  return r;
}

class redis_bridge_impl : public std::enable_shared_from_this<redis_bridge_impl> {
 public:
  redis_bridge_impl(broker& b, asio::any_io_executor ex, redis_bridge_options opts)
      : broker_(&b), executor_(std::move(ex)), options_(std::move(opts)), refresh_timer_(executor_),
        control_retry_(executor_), control_deadline_(executor_) {
    if (options_.initial_backoff.count() <= 0 || options_.max_backoff < options_.initial_backoff ||
        options_.max_outgoing == 0 || options_.max_outgoing_bytes == 0 || options_.publish_window == 0 ||
        options_.max_incoming == 0 || options_.max_incoming_bytes == 0) {
      throw std::invalid_argument("switchboard::pubsub::redis_bridge_options: backoff, max_outgoing, "
                                  "max_outgoing_bytes, publish_window, max_incoming and max_incoming_bytes must be "
                                  "positive (max_backoff >= initial_backoff)");
    }
    std::random_device entropy;
    random_.seed((std::uint64_t(entropy()) << 32) | entropy());
    if (options_.origin.empty()) {
      static constexpr char hex[] = "0123456789abcdef";
      for (int i = 0; i < 16; ++i) options_.origin.push_back(hex[random_() % 16]);
    }
    if (options_.origin.find('\n') != std::string::npos) {
      throw std::invalid_argument("switchboard::pubsub::redis_bridge_options: origin contains a line feed");
    }
    const std::string seed = address_of(options_.redis.host, options_.redis.port);
    if (options_.cluster) seeds_.push_back(seed);
    else node_at(seed);  // the one node, there before any interest arrives
  }

  const asio::any_io_executor& executor() const noexcept { return executor_; }
  const redis_bridge_options& options() const noexcept { return options_; }

  /// Installs the broker observer. Any thread.
  void attach() {
    const std::lock_guard lock(broker_mutex_);
    if (!broker_) return;
    observer_ = std::make_shared<observer>(weak_from_this(), executor_, options_.topics, options_.max_outgoing,
                                           options_.max_outgoing_bytes, inbox_dropped_);
    broker_->set_observer(observer_);
  }

  /// Removes the broker observer and lets go of the broker: nothing more is queued from the broker, and nothing
  /// reaches it, after this returns (a delivery running on the executor meanwhile finishes first). Any thread.
  void detach() {
    const std::lock_guard lock(broker_mutex_);
    if (observer_ && broker_) broker_->set_observer(nullptr);
    broker_ = nullptr;
  }

  /// Starts connecting (executor).
  void connect() {
    if (options_.cluster) {
      refresh_slots();
      arm_refresh_timer();
    } else {
      connect_node(*nodes_.begin()->second);
    }
  }

  /// Closes everything (executor).
  void stop() {
    stopped_ = true;
    refresh_timer_.cancel();
    control_retry_.cancel();
    control_deadline_.cancel();
    if (control_) control_->close();
    for (auto& [address, n] : nodes_) {
      n->retry.cancel();
      n->pub.close();
      n->sub.close();
    }
  }

  redis_bridge_stats stats() const {
    redis_bridge_stats s;
    {
      const std::lock_guard lock(stats_mutex_);
      s = stats_;
    }
    s.dropped_outgoing += inbox_dropped_->load(std::memory_order_relaxed);
    return s;
  }

 private:
  // --- The broker's side: any thread. ---

  struct interest {
    std::string name;
    bool is_pattern;
    bool active;
  };
  using inbox_item = std::variant<interest, message>;

  class observer final : public broker_observer {
   public:
    observer(std::weak_ptr<redis_bridge_impl> bridge, asio::any_io_executor ex, std::string filter,
             std::size_t max_messages, std::size_t max_bytes, std::shared_ptr<std::atomic<std::uint64_t>> dropped)
        : bridge_(std::move(bridge)),
          executor_(std::move(ex)),
          filter_(std::move(filter)),
          max_messages_(max_messages),
          max_bytes_(max_bytes),
          dropped_(std::move(dropped)) {}

    void on_interest(std::string_view name, bool is_pattern, bool active) override {
      if (glob_match(filter_, name)) add(interest{std::string(name), is_pattern, active});
    }
    void on_publish(const message& m) override {
      if (m.header(origin_header) || !glob_match(filter_, m.topic())) return;  // came from Redis, or stays local
      const std::lock_guard lock(mutex_);
      // Bounded like the outgoing queue, and like it dropping the oldest (as documented), counted: when the
      // bridge's executor falls that far behind, the oldest messages waiting here make room for the new one.
      // Dropping the new one instead would keep the oldest of a burst of more than `max_outgoing` publishes (made
      // while Redis is down, say) and lose its newest. A message over `max_bytes` on its own is dropped, as the
      // outgoing queue would drop it.
      const std::size_t size = message_size(m.topic(), m.data());
      while (messages_ > 0 && (messages_ >= max_messages_ || bytes_ + size > max_bytes_)) drop_oldest_locked();
      if (bytes_ + size > max_bytes_) {
        dropped_->fetch_add(1, std::memory_order_relaxed);
        return;
      }
      ++messages_;
      bytes_ += size;
      add_locked(m);
    }

    std::deque<inbox_item> take() {
      const std::lock_guard lock(mutex_);
      posted_ = false;
      messages_ = 0;
      bytes_ = 0;
      return std::exchange(items_, {});
    }

   private:
    // Drops the oldest message waiting (messages_ > 0). Interest changes are few, so it is near the front.
    void drop_oldest_locked() {
      const auto it = std::find_if(items_.begin(), items_.end(),
                                   [](const inbox_item& i) { return std::holds_alternative<message>(i); });
      const message& oldest = std::get<message>(*it);
      --messages_;
      bytes_ -= message_size(oldest.topic(), oldest.data());
      items_.erase(it);
      dropped_->fetch_add(1, std::memory_order_relaxed);
    }

    void add(inbox_item item) {
      const std::lock_guard lock(mutex_);
      add_locked(std::move(item));
    }

    void add_locked(inbox_item item) {
      items_.push_back(std::move(item));
      if (posted_) return;
      posted_ = true;
      asio::post(executor_, [weak = bridge_] {
        if (auto b = weak.lock()) b->drain_inbox();
      });
    }

    const std::weak_ptr<redis_bridge_impl> bridge_;
    const asio::any_io_executor executor_;
    const std::string filter_;
    const std::size_t max_messages_;
    const std::size_t max_bytes_;
    const std::shared_ptr<std::atomic<std::uint64_t>> dropped_;  // the bridge's count, read by `stats`
    std::mutex mutex_;
    std::deque<inbox_item> items_;   // interest changes (never dropped: a few per subscription) and messages
    std::size_t messages_ = 0;       // messages in items_
    std::size_t bytes_ = 0;          // their `message_size`
    bool posted_ = false;
  };

  // --- Nodes ---

  struct outgoing {
    std::string topic;
    std::string wire;    // the envelope
    bool asking = false;  // send ASKING first (an ASK redirection)
    std::size_t size = 0;  // its `message_size`, counted in outgoing_bytes_
  };

  // What a message counts against `max_outgoing_bytes` (waiting for Redis) and `max_incoming_bytes` (from Redis).
  static std::size_t message_size(std::string_view topic, std::string_view payload) noexcept {
    return topic.size() + payload.size();
  }

  struct node {
    node(const asio::any_io_executor& ex, resp::client_options o, std::string addr)
        : address(std::move(addr)), pub(ex, o), sub(ex, o), retry(ex) {}

    const std::string address;  // host:port
    resp::client pub;
    resp::client sub;
    asio::steady_timer retry;
    std::uint64_t epoch = 0;     // counts connection attempts: handlers of an older one are stale
    int connected = 0;           // of the two connections, in this attempt
    bool up = false;
    bool was_up = false;         // it has been up once: later connections are reconnections
    unsigned failures = 0;       // consecutive, for the backoff
    std::set<std::string> channels, patterns;  // confirmed by Redis on `sub`
    std::set<std::string> lost;                // channels it carried when it went down, to report as gaps
    bool lost_patterns = false;
    bool outage_counted = false;               // the last outage is in `outages` (its first gap was reported)
    std::deque<outgoing> outbox;
    std::size_t in_flight = 0;
  };

  static std::string address_of(std::string_view host, std::uint16_t port) {
    return std::string(host) + ":" + std::to_string(port);
  }

  node& node_at(const std::string& address) {
    auto& slot = nodes_[address];
    if (!slot) {
      resp::client_options o = options_.redis;
      const std::size_t colon = address.rfind(':');
      o.host = address.substr(0, colon);
      o.port = static_cast<std::uint16_t>(std::stoul(address.substr(colon + 1)));
      slot = std::make_unique<node>(executor_, std::move(o), address);
    }
    return *slot;
  }

  // The node that carries `channel` now, or null (cluster, slot map not read yet).
  node* route(std::string_view channel) {
    if (!options_.cluster) return nodes_.begin()->second.get();
    const std::string& address = slots_[resp::hash_slot(channel)];
    return address.empty() ? nullptr : &node_at(address);
  }

  void connect_node(node& n) {
    if (stopped_) return;
    const std::uint64_t epoch = ++n.epoch;
    n.connected = 0;
    const auto weak = weak_from_this();
    node* np = &n;
    n.sub.set_push_handler([weak, np, epoch](resp::value v) {
      if (auto self = weak.lock(); self && np->epoch == epoch) self->on_push(*np, std::move(v));
    });
    for (resp::client* c : {&n.pub, &n.sub}) {
      c->set_disconnect_handler([weak, np, epoch](std::error_code ec) {
        if (auto self = weak.lock(); self && np->epoch == epoch) self->node_down(*np, ec);
      });
      c->async_connect([weak, np, epoch](std::error_code ec) {
        auto self = weak.lock();
        if (!self || np->epoch != epoch) return;
        if (ec) return self->node_down(*np, ec);
        if (++np->connected == 2) self->node_up(*np);
      });
    }
  }

  void node_up(node& n) {
    n.up = true;
    n.failures = 0;
    if (n.was_up) bump(&redis_bridge_stats::reconnects);
    log(n.was_up ? log_level::info : log_level::debug, "pubsub", "redis bridge: connected to ", n.address);
    n.was_up = true;
    // The outage's gap comes before anything the new subscriptions bring (reported before they are sent).
    if (!n.lost.empty() || n.lost_patterns) {
      std::vector<std::string> topics;
      for (const std::string& c : n.lost) {
        if (wanted_channels_.count(c)) topics.push_back(c);
      }
      std::vector<std::string> patterns;
      if (n.lost_patterns) patterns.assign(wanted_patterns_.begin(), wanted_patterns_.end());
      with_broker([&](broker& b) { b.report_gaps(topics, patterns, gap_reason::upstream); });
      if (!std::exchange(n.outage_counted, true)) bump(&redis_bridge_stats::outages);
      n.lost.clear();
      n.lost_patterns = false;
    }
    place_all();
    if (!options_.cluster) {
      for (const std::string& p : wanted_patterns_) subscribe(n, "PSUBSCRIBE", p);
    }
    pump(n);
    update_gauges();
  }

  void node_down(node& n, std::error_code ec) {
    if (stopped_) return;
    ++n.epoch;  // later handlers of this attempt are stale
    if (n.up) {
      log(log_level::warn, "pubsub", "redis bridge: lost ", n.address, ": ", ec);
      for (auto it = placed_.begin(); it != placed_.end();) {
        if (it->second == n.address) {
          n.lost.insert(it->first);
          it = placed_.erase(it);
        } else {
          ++it;
        }
      }
      n.lost_patterns = !options_.cluster && !wanted_patterns_.empty();
      n.outage_counted = false;
    } else {
      log(log_level::debug, "pubsub", "redis bridge: cannot connect to ", n.address, ": ", ec);
    }
    n.up = false;
    n.channels.clear();
    n.patterns.clear();
    n.pub.close();
    n.sub.close();
    update_gauges();
    if (options_.cluster) refresh_slots();  // a failover may have moved its slots
    n.retry.expires_after(backoff(n.failures++));
    n.retry.async_wait([weak = weak_from_this(), np = &n, epoch = n.epoch](std::error_code wait_ec) {
      if (auto self = weak.lock(); self && !wait_ec && np->epoch == epoch) self->connect_node(*np);
    });
  }

  // Exponential backoff with jitter: `initial * 2^failures`, at most `max`, drawn in [delay/2, delay].
  std::chrono::milliseconds backoff(unsigned failures) {
    auto delay = options_.initial_backoff;
    for (unsigned i = 0; i < failures && delay < options_.max_backoff; ++i) delay *= 2;
    delay = std::min(delay, options_.max_backoff);
    const auto half = delay.count() / 2;
    return std::chrono::milliseconds(half + std::int64_t(random_() % std::uint64_t(delay.count() - half + 1)));
  }

  // --- Interest ---

  void drain_inbox() {
    if (stopped_ || !observer_) return;
    for (inbox_item& item : observer_->take()) {
      if (auto* i = std::get_if<interest>(&item)) on_interest(*i);
      else enqueue(std::get<message>(item));
    }
  }

  void on_interest(const interest& i) {
    if (i.is_pattern) {
      if (options_.cluster) {
        if (i.active) log(log_level::warn, "pubsub", "redis bridge: pattern ", i.name, " stays local (cluster)");
        return;
      }
      node& n = *nodes_.begin()->second;
      if (i.active) wanted_patterns_.insert(i.name);
      else wanted_patterns_.erase(i.name);
      if (n.up) subscribe(n, i.active ? "PSUBSCRIBE" : "PUNSUBSCRIBE", i.name);
      return;
    }
    if (i.active) {
      wanted_channels_.insert(i.name);
      place(i.name);
    } else {
      wanted_channels_.erase(i.name);
      for (auto& [address, n] : nodes_) n->lost.erase(i.name);  // no subscriber left to tell of the gap
      if (const auto it = placed_.find(i.name); it != placed_.end()) {
        node& n = node_at(it->second);
        placed_.erase(it);
        if (n.up) subscribe(n, options_.cluster ? "SUNSUBSCRIBE" : "UNSUBSCRIBE", i.name);
      }
    }
  }

  // Subscribes to `channel` where the slot map says, moving it from where it was if the map changed.
  void place(const std::string& channel) {
    node* target = route(channel);
    const auto it = placed_.find(channel);
    if (it != placed_.end()) {
      if (target && it->second == target->address) return;
      node& old = node_at(it->second);
      placed_.erase(it);
      if (old.up && old.channels.count(channel)) subscribe(old, "SUNSUBSCRIBE", channel);
    }
    if (!target || !target->up) return;  // placed when it comes up
    report_lost_elsewhere(*target, channel);
    placed_[channel] = target->address;
    subscribe(*target, options_.cluster ? "SSUBSCRIBE" : "SUBSCRIBE", channel);
  }

  // A channel that a node carried when it went down, now subscribed at another one (a failover promoted a replica,
  // or the slot moved): what was published between the two subscriptions is lost, so its gap is reported now,
  // before the new subscription brings anything, and not when (if ever) the old node comes back.
  void report_lost_elsewhere(const node& target, const std::string& channel) {
    for (auto& [address, n] : nodes_) {
      if (n.get() == &target || !n->lost.erase(channel)) continue;
      with_broker([&](broker& b) { b.report_gap(channel, gap_reason::upstream); });
      if (!std::exchange(n->outage_counted, true)) bump(&redis_bridge_stats::outages);
    }
  }

  void place_all() {
    for (const std::string& c : wanted_channels_) place(c);
  }

  void subscribe(node& n, const char* command, const std::string& name) {
    n.sub.async_exec(resp::command(command, name), [](std::error_code, resp::value) {});
  }

  // --- From Redis ---

  void on_push(node& n, resp::value v) {
    if (v.is_error()) return on_subscribe_error(v.text);
    if (v.elements.size() < 3) return;
    const std::string& kind = v.elements[0].text;
    const std::string& name = v.elements[1].text;
    if (kind == "message" || kind == "smessage") {
      deliver(name, v.elements[2].text);
    } else if (kind == "pmessage" && v.elements.size() == 4) {
      const std::string& channel = v.elements[2].text;
      if (n.channels.count(channel)) return;  // the "message" push of the same publish was delivered
      for (const std::string& p : n.patterns) {  // ordered: the first match is the smallest
        if (glob_match(p, channel)) {
          if (p == name) deliver(channel, v.elements[3].text);
          break;
        }
      }
    } else if (kind == "subscribe" || kind == "ssubscribe") {
      n.channels.insert(name);
    } else if (kind == "psubscribe") {
      n.patterns.insert(name);
    } else if (kind == "unsubscribe") {
      n.channels.erase(name);
    } else if (kind == "punsubscribe") {
      n.patterns.erase(name);
    } else if (kind == "sunsubscribe") {
      n.channels.erase(name);
      const auto it = placed_.find(name);
      if (it != placed_.end() && it->second == n.address) {
        // Not asked for: the slot moved away from this node (resharding or failover). Messages published between
        // this and the subscription at the new owner are lost: tell the local subscribers.
        placed_.erase(it);
        with_broker([&](broker& b) { b.report_gap(name, gap_reason::upstream); });
        bump(&redis_bridge_stats::outages);
        refresh_slots();
      }
    }
    update_gauges();
  }

  void on_subscribe_error(const std::string& text) {
    if (const auto r = parse_redirection(text)) {
      bump(&redis_bridge_stats::redirects);
      slots_[r->slot] = r->address;
      node& target = node_at(r->address);
      if (target.epoch == 0) connect_node(target);
      // The refused channel was recorded as placed at the old node: place it again by the corrected map.
      for (auto it = placed_.begin(); it != placed_.end();) {
        if (resp::hash_slot(it->first) == r->slot && it->second != r->address) it = placed_.erase(it);
        else ++it;
      }
      place_all();
      refresh_slots();
      return;
    }
    log(log_level::warn, "pubsub", "redis bridge: subscription refused: ", text);
  }

  // A topic's messages from Redis handed to the broker and not yet published (`incoming_`).
  struct incoming {
    std::size_t messages = 0;
    std::size_t bytes = 0;       // their `message_size`
    bool gap_reported = false;   // messages were dropped since the last one that passed, and their gap reported
  };
  using incoming_map = std::map<std::string, incoming, std::less<>>;

  void deliver(const std::string& channel, std::string_view wire) {
    envelope e = decode_envelope(wire);
    if (e.origin == options_.origin) {
      bump(&redis_bridge_stats::echoes);
      return;
    }
    // async_publish: a local `wait` subscriber holds Redis's messages up like any publisher's, in order, but only so
    // many (`max_incoming`): Redis cannot be held up for one topic without stalling the others on its connection.
    // Past the bound the newest are dropped, and the gap is reported where they were lost, after the publishes
    // still waiting (report_gap queues behind them), once for each run of them (DESIGN promises 2 and 3).
    const incoming_map::iterator entry = incoming_entry(channel);
    incoming& waiting = entry->second;
    const std::size_t size = message_size(channel, wire);
    if (waiting.messages > 0 && (waiting.messages >= options_.max_incoming ||
                                 waiting.bytes + size > options_.max_incoming_bytes)) {
      bump(&redis_bridge_stats::dropped_incoming);
      if (!std::exchange(waiting.gap_reported, true)) {
        log(log_level::warn, "pubsub", "redis bridge: messages from Redis to ", channel, " dropped (a gap): ",
            waiting.messages, " wait for a full subscriber (max_incoming, max_incoming_bytes)");
        with_broker([&](broker& b) { b.report_gap(channel, gap_reason::upstream); });
      }
      return;
    }
    waiting.gap_reported = false;
    ++waiting.messages;
    waiting.bytes += size;
    e.draft.headers.push_back({std::string(origin_header), e.origin.empty() ? std::string("redis") : e.origin});
    // The completion holds the entry, not a copy of the topic: the entry stays while this message counts in it.
    with_broker([&](broker& b) {
      b.async_publish(channel, std::move(e.draft),
                      asio::bind_executor(executor_, [weak = weak_from_this(), entry, size](std::error_code ec,
                                                                                            std::uint64_t) {
                        if (auto self = weak.lock()) self->delivered(entry, size, ec);
                      }));
    });
  }

  // The entry of `channel` in `incoming_`, made if it has none: in the spare node when there is one.
  incoming_map::iterator incoming_entry(const std::string& channel) {
    const auto at = incoming_.lower_bound(channel);
    if (at != incoming_.end() && at->first == channel) return at;
    if (spare_incoming_.empty()) return incoming_.emplace_hint(at, channel, incoming{});
    spare_incoming_.key() = channel;  // into the buffer of the topic that had it last
    spare_incoming_.mapped() = incoming{};
    return incoming_.insert(at, std::move(spare_incoming_));
  }

  // The broker has published a message from Redis (or refused it).
  void delivered(incoming_map::iterator entry, std::size_t size, std::error_code ec) {
    if (!ec) {
      bump(&redis_bridge_stats::received);
    } else if (!stopped_) {  // stopped: the broker closed after the bridge let go of it, nothing left to tell
      bump(&redis_bridge_stats::dropped_incoming);
      log(log_level::warn, "pubsub", "redis bridge: the broker refused a message from Redis on ", entry->first, ": ",
          ec);
    }
    // The last one out: the next message passes, no run of drops to go on with.
    if (--entry->second.messages == 0) spare_incoming_ = incoming_.extract(entry);
    else entry->second.bytes -= size;
  }

  // --- To Redis ---

  void enqueue(const message& m) {
    const std::size_t size = message_size(m.topic(), m.data());
    outgoing o{std::string(m.topic()), encode_envelope(options_.origin, m), false, size};
    node* n = route(o.topic);
    if (!n) {
      unrouted_.push_back(std::move(o));
    } else {
      n->outbox.push_back(std::move(o));
    }
    ++outgoing_count_;
    outgoing_bytes_ += size;
    while ((outgoing_count_ > options_.max_outgoing || outgoing_bytes_ > options_.max_outgoing_bytes) &&
           drop_oldest()) {
    }
    if (n) pump(*n);
  }

  // Drops the oldest message waiting to go (not yet in flight): the unrouted ones first, then the longest outbox.
  // False when every message is in flight: the counts come down as replies arrive.
  bool drop_oldest() {
    std::deque<outgoing>* longest = &unrouted_;
    for (auto& [address, n] : nodes_) {
      if (longest->empty() || n->outbox.size() > longest->size()) longest = &n->outbox;
    }
    if (longest->empty()) return false;
    gone(longest->front());
    longest->pop_front();
    bump(&redis_bridge_stats::dropped_outgoing);
    return true;
  }

  // A message waiting for Redis is no longer (sent, dropped, or lost in flight).
  void gone(const outgoing& o) {
    --outgoing_count_;
    outgoing_bytes_ -= o.size;
  }

  void pump(node& n) {
    while (n.up && n.in_flight < options_.publish_window && !n.outbox.empty()) {
      outgoing o = std::move(n.outbox.front());
      n.outbox.pop_front();
      ++n.in_flight;
      if (o.asking) n.pub.async_exec(resp::command("ASKING"), [](std::error_code, resp::value) {});
      // The arguments are made before `o` moves into the handler (argument order is unspecified).
      auto args = resp::command(options_.cluster ? "SPUBLISH" : "PUBLISH", o.topic, o.wire);
      n.pub.async_exec(std::move(args),
                       [weak = weak_from_this(), np = &n, o = std::move(o)](std::error_code ec, resp::value v) mutable {
                         if (auto self = weak.lock()) self->published(*np, std::move(o), ec, v);
                       });
    }
  }

  void published(node& n, outgoing o, std::error_code ec, const resp::value& reply) {
    --n.in_flight;
    if (ec || (reply.is_error() && !parse_redirection(reply.text))) {
      gone(o);
      bump(&redis_bridge_stats::dropped_outgoing);
      if (!ec) log(log_level::warn, "pubsub", "redis bridge: PUBLISH refused: ", reply.text);
    } else if (reply.is_error()) {
      const redirection r = *parse_redirection(reply.text);
      bump(&redis_bridge_stats::redirects);
      if (!r.ask) {
        slots_[r.slot] = r.address;
        refresh_slots();
      }
      node& target = node_at(r.address);
      if (target.epoch == 0) connect_node(target);
      o.asking = r.ask;
      target.outbox.push_back(std::move(o));
      pump(target);
    } else {
      gone(o);
      bump(&redis_bridge_stats::sent);
    }
    pump(n);
  }

  // --- Cluster: the slot map ---

  void refresh_slots() {
    if (!options_.cluster || stopped_) return;
    if (refreshing_) {
      refresh_again_ = true;
      return;
    }
    refreshing_ = true;
    const std::uint64_t attempt = control_attempt_;
    // A control connection of its own, to any node known: the seed first, then the nodes of the last map.
    std::vector<std::string> candidates = seeds_;
    for (const auto& [address, n] : nodes_) candidates.push_back(address);
    const std::string address = candidates[control_turn_++ % candidates.size()];
    resp::client_options o = options_.redis;
    const std::size_t colon = address.rfind(':');
    o.host = address.substr(0, colon);
    o.port = static_cast<std::uint16_t>(std::stoul(address.substr(colon + 1)));
    control_ = std::make_unique<resp::client>(executor_, std::move(o));
    const auto current = [weak = weak_from_this(), attempt] {
      auto self = weak.lock();
      return self && !self->stopped_ && self->control_attempt_ == attempt ? self : nullptr;
    };
    control_->async_connect([current](std::error_code ec) {
      const auto self = current();
      if (!self) return;
      if (ec) return self->refreshed(ec, resp::value{});
      // A node may accept the connection and never answer (hung, overloaded): without a deadline this refresh
      // would never end, and with it every later one (they wait for it: refresh_again_).
      if (self->options_.cluster_refresh_timeout.count() > 0) {
        self->control_deadline_.expires_after(self->options_.cluster_refresh_timeout);
        self->control_deadline_.async_wait([current](std::error_code wait_ec) {
          if (const auto s = current(); s && !wait_ec) s->refreshed(switchboard::error::timeout, resp::value{});
        });
      }
      self->control_->async_exec(resp::command("CLUSTER", "SLOTS"), [current](std::error_code ec2, resp::value v) {
        if (const auto s = current()) s->refreshed(ec2, std::move(v));
      });
    });
  }

  // CLUSTER SLOTS: [[start, end, [host, port, id, ...], replicas...], ...]; the first node of each range is its
  // master. An empty host means "the address you reached me on".
  void refreshed(std::error_code ec, resp::value v) {
    ++control_attempt_;  // later handlers of this attempt (the deadline's, the reply's) are stale
    refreshing_ = false;
    control_deadline_.cancel();
    control_.reset();
    if (ec || v.is_error() || v.kind != resp::value_kind::array) {
      log(log_level::warn, "pubsub", "redis bridge: cannot read the cluster's slot map: ",
          ec ? ec.message() : v.text);
      control_retry();
      return;
    }
    control_failures_ = 0;
    bump(&redis_bridge_stats::slot_refreshes);
    for (const resp::value& range : v.elements) {
      if (range.elements.size() < 3 || range.elements[2].elements.size() < 2) continue;
      const auto start = range.elements[0].integer, end = range.elements[1].integer;
      const resp::value& master = range.elements[2];
      std::string host = master.elements[0].text;
      if (host.empty() || host == "?") host = options_.redis.host;
      const std::string address = address_of(host, static_cast<std::uint16_t>(master.elements[1].integer));
      if (start < 0 || end >= resp::cluster_slots || start > end) continue;
      for (auto s = start; s <= end; ++s) slots_[static_cast<std::size_t>(s)] = address;
      node& n = node_at(address);
      if (n.epoch == 0) connect_node(n);
    }
    place_all();
    for (std::deque<outgoing> waiting = std::exchange(unrouted_, {}); !waiting.empty(); waiting.pop_front()) {
      node* n = route(waiting.front().topic);
      if (n) n->outbox.push_back(std::move(waiting.front()));
      else unrouted_.push_back(std::move(waiting.front()));
    }
    for (auto& [address, n] : nodes_) pump(*n);
    if (std::exchange(refresh_again_, false)) refresh_slots();
  }

  // The slot map could not be read: try again (at the next known node) after a backoff.
  void control_retry() {
    control_retry_.expires_after(backoff(control_failures_++));
    control_retry_.async_wait([weak = weak_from_this()](std::error_code ec) {
      if (auto self = weak.lock(); self && !ec) self->refresh_slots();
    });
  }

  void arm_refresh_timer() {
    // Stopped: a refresh whose wait had expired before `stop` cancelled it still runs, and must not go on.
    if (stopped_ || !options_.cluster || options_.cluster_refresh_interval.count() <= 0) return;
    refresh_timer_.expires_after(options_.cluster_refresh_interval);
    refresh_timer_.async_wait([weak = weak_from_this()](std::error_code ec) {
      if (auto self = weak.lock(); self && !ec) {
        self->refresh_slots();
        self->arm_refresh_timer();
      }
    });
  }

  // Calls `f` with the broker unless `detach` has let go of it. The lock is held while `f` runs, so that `detach`
  // (and so the bridge's destructor) returns only after it. No deadlock: the broker never calls the bridge under
  // its locks but through the observer, which takes its own mutex only; and `f` never destroys the bridge.
  template <class F>
  void with_broker(F&& f) {
    const std::lock_guard lock(broker_mutex_);
    if (broker_) f(*broker_);
  }

  // --- Counters ---

  void bump(std::uint64_t redis_bridge_stats::*counter) {
    const std::lock_guard lock(stats_mutex_);
    ++(stats_.*counter);
  }

  void update_gauges() {
    std::size_t channels = 0, patterns = 0, up = 0;
    for (const auto& [address, n] : nodes_) {
      channels += n->channels.size();
      patterns += n->patterns.size();
      up += n->up ? 1 : 0;
    }
    const std::lock_guard lock(stats_mutex_);
    stats_.channels = channels;
    stats_.patterns = patterns;
    stats_.nodes_up = up;
  }

  std::mutex broker_mutex_;
  broker* broker_;  // null once detached; guarded by broker_mutex_
  const asio::any_io_executor executor_;
  redis_bridge_options options_;
  std::shared_ptr<observer> observer_;
  // Local messages the observer dropped because the bridge's executor fell `max_outgoing` messages behind.
  const std::shared_ptr<std::atomic<std::uint64_t>> inbox_dropped_ = std::make_shared<std::atomic<std::uint64_t>>(0);
  std::mt19937_64 random_;
  bool stopped_ = false;

  std::map<std::string, std::unique_ptr<node>> nodes_;  // by address; never erased (handlers hold raw pointers)
  std::set<std::string> wanted_channels_, wanted_patterns_;
  std::map<std::string, std::string> placed_;  // channel -> address of the node it was subscribed at
  std::deque<outgoing> unrouted_;              // cluster: waiting for the first slot map
  std::size_t outgoing_count_ = 0;             // waiting or in flight, everywhere
  std::size_t outgoing_bytes_ = 0;             // their `message_size`

  // Messages from Redis handed to the broker and not yet published (a `wait` subscriber holds them up), by topic;
  // a topic is here while it has some.
  incoming_map incoming_;
  // The node of the last topic to leave `incoming_`, for the next one to enter. When nothing holds messages up,
  // every message enters and leaves (its publish completes later): reusing one node, and its key's buffer, saves
  // the allocation of both per message.
  incoming_map::node_type spare_incoming_;

  // Cluster:
  std::vector<std::string> slots_ = std::vector<std::string>(resp::cluster_slots);  // slot -> master address
  std::vector<std::string> seeds_;
  std::unique_ptr<resp::client> control_;
  std::size_t control_turn_ = 0;
  std::uint64_t control_attempt_ = 0;  // counts finished reads of the slot map: handlers of an older one are stale
  unsigned control_failures_ = 0;
  bool refreshing_ = false;
  bool refresh_again_ = false;
  asio::steady_timer refresh_timer_;  // the periodic refresh
  asio::steady_timer control_retry_;  // after a failed refresh
  asio::steady_timer control_deadline_;  // `cluster_refresh_timeout`, for the CLUSTER SLOTS reply

  mutable std::mutex stats_mutex_;
  redis_bridge_stats stats_;
};

}  // namespace switchboard::pubsub::detail
