// switchboard/pubsub/redis_bridge.hpp
//
// `redis_bridge`: connects a local `pubsub::broker` to Redis (or a Redis Cluster) so that several processes share
// topics. Each process keeps its own broker (its subscribers, queues, policies, sequence numbers and retention stay
// local); the bridge carries messages between the brokers through Redis channels. See docs/pubsub.md, "Scale-out".
//
//     pubsub::broker broker(runtime.executor());
//     pubsub::redis_bridge bridge(broker, executor, {.redis = {.host = "10.0.0.5", .port = 6379}});
//     bridge.start();
//     broker.publish("chat.42", {...});   // delivered here at once, and to every other bridged process via Redis
//
//  - Interest: the bridge subscribes in Redis only to the topics and patterns that have local subscriptions (the
//    broker counts them and tells the bridge of the first and the last, see observer.hpp), so a process receives
//    only what its own subscribers want.
//  - No double delivery: every message published to the local broker is delivered locally at once (Redis being up
//    or not) and published to Redis wrapped in an envelope with this bridge's origin id (detail/redis_envelope.hpp);
//    when Redis echoes it back, the bridge recognises its origin and drops it. Messages that come from Redis are
//    published to the local broker once, however many of the bridge's Redis subscriptions matched (a channel and
//    a pattern, or two patterns), and carry the header `switchboard-origin` (the publishing bridge's origin id, or
//    "redis" for a payload published by another Redis client); the bridge never forwards such messages back.
//  - Outages: a lost connection is retried with exponential backoff and jitter; once it is back, the bridge
//    resubscribes and gives every local topic it covered a gap event (`gap_reason::upstream`) at the point of the
//    outage, since messages published elsewhere meanwhile are lost. Local messages published meanwhile wait in a
//    bounded queue and are sent when Redis is back (beyond the bound the oldest are dropped and counted).
//  - A full local `wait` subscriber holds up the messages from Redis as it holds up any publisher, up to
//    `max_incoming` of them per topic; beyond that they are dropped, counted, and reported to the topic's
//    subscribers as an upstream gap.
//  - Redis Cluster (`cluster = true`): sharded pub/sub. SPUBLISH and SSUBSCRIBE go to the master that owns the
//    channel's hash slot (resp/hash_slot.hpp), found with CLUSTER SLOTS (a node that does not answer within
//    `cluster_refresh_timeout` is dropped and the map read at another); MOVED and ASK redirections are followed
//    and refresh the slot map; when a slot moves, Redis ends the shard subscriptions of the old owner and the bridge
//    subscribes at the new one. Sharded pub/sub has no patterns: in a cluster, pattern subscriptions stay local.
//
// Threading: the bridge's work runs on its executor (use a strand if that executor is multi-threaded); `start`,
// `stats` and the destructor may be called from any thread. The bridge must be destroyed before its broker.
#pragma once

#include <switchboard/core/log.hpp>
#include <switchboard/pubsub/broker.hpp>
#include <switchboard/core/metrics.hpp>
#include <switchboard/pubsub/detail/redis_bridge_impl.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/dispatch.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::pubsub {

class redis_bridge {
 public:
  /// A bridge between `broker` and the Redis described by `options` (not connected until `start`). Throws
  /// `std::invalid_argument` on bad options.
  redis_bridge(broker& broker, asio::any_io_executor executor, redis_bridge_options options = {})
      : impl_(std::make_shared<detail::redis_bridge_impl>(broker, std::move(executor), std::move(options))) {}

  redis_bridge(const redis_bridge&) = delete;
  redis_bridge& operator=(const redis_bridge&) = delete;

  /// Stops bridging: the broker's observer is removed at once (local messages are no longer forwarded) and the
  /// bridge lets go of the broker (a delivery from Redis running meanwhile on the executor is waited for; none comes
  /// after), so that the broker may be destroyed as soon as this returns; then the connections are closed on the
  /// bridge's executor.
  ~redis_bridge() {
    impl_->detach();
    asio::dispatch(impl_->executor(), [impl = impl_] { impl->stop(); });
  }

  /// Starts bridging: observes the broker (subscribing in Redis to what is subscribed locally now and later) and
  /// connects, retrying with backoff until Redis answers. Call once.
  void start() {
    impl_->attach();
    asio::dispatch(impl_->executor(), [impl = impl_] { impl->connect(); });
  }

  /// This bridge's origin id (in every envelope it publishes, and in the `switchboard-origin` header of the
  /// messages other bridges receive from it).
  const std::string& origin() const noexcept { return impl_->options().origin; }

  /// The bridge's counters. Any thread.
  redis_bridge_stats stats() const { return impl_->stats(); }

  /// Exposes `stats()` in `registry`, labelled `bridge="<name>"`, for as long as the returned handles live (they keep
  /// the counters readable after the bridge is destroyed, and must not outlive the registry): the counters
  /// `switchboard_redis_bridge_sent_total`, `..._received_total`, `..._echoes_total`, `..._dropped_outgoing_total`,
  /// `..._dropped_incoming_total`, `..._reconnects_total`, `..._outages_total`, `..._redirects_total` and
  /// `..._slot_refreshes_total`, and the gauges `switchboard_redis_bridge_channels`, `..._patterns` and
  /// `..._nodes_up`.
  std::vector<metric_callback> export_metrics(metrics_registry& registry, std::string_view name = "redis") const {
    static constexpr stats_series<std::uint64_t> counters[] = {
        {"switchboard_redis_bridge_sent_total", "Local messages published to Redis.", &redis_bridge_stats::sent},
        {"switchboard_redis_bridge_received_total", "Messages from Redis published to the local broker.",
         &redis_bridge_stats::received},
        {"switchboard_redis_bridge_echoes_total", "This bridge's own messages echoed back by Redis, dropped.",
         &redis_bridge_stats::echoes},
        {"switchboard_redis_bridge_dropped_outgoing_total", "Local messages that did not reach Redis.",
         &redis_bridge_stats::dropped_outgoing},
        {"switchboard_redis_bridge_dropped_incoming_total", "Messages from Redis not published to the local broker.",
         &redis_bridge_stats::dropped_incoming},
        {"switchboard_redis_bridge_reconnects_total", "Connections to Redis made again after a loss.",
         &redis_bridge_stats::reconnects},
        {"switchboard_redis_bridge_outages_total", "Outages of Redis nodes reported to subscribers as gaps.",
         &redis_bridge_stats::outages},
        {"switchboard_redis_bridge_redirects_total", "MOVED and ASK redirections followed.",
         &redis_bridge_stats::redirects},
        {"switchboard_redis_bridge_slot_refreshes_total", "Cluster slot maps read.", &redis_bridge_stats::slot_refreshes},
    };
    static constexpr stats_series<std::size_t> gauges[] = {
        {"switchboard_redis_bridge_channels", "Channels subscribed in Redis.", &redis_bridge_stats::channels},
        {"switchboard_redis_bridge_patterns", "Patterns subscribed in Redis.", &redis_bridge_stats::patterns},
        {"switchboard_redis_bridge_nodes_up", "Redis nodes connected.", &redis_bridge_stats::nodes_up},
    };
    std::vector<metric_callback> out;
    const std::vector<metric_label> labels{{"bridge", name}};
    const std::shared_ptr<const detail::redis_bridge_impl> impl = impl_;
    for (const auto& c : counters) {
      out.push_back(registry.counter_callback(c.name, c.help, labels, [impl, f = c.field] { return impl->stats().*f; }));
    }
    for (const auto& g : gauges) {
      out.push_back(
          registry.gauge_callback(g.name, g.help, labels, [impl, f = g.field] { return double(impl->stats().*f); }));
    }
    return out;
  }

 private:
  // A series of `export_metrics`, read from `stats().*field`.
  template <class Count>
  struct stats_series {
    const char* name;
    const char* help;
    Count redis_bridge_stats::*field;
  };

  std::shared_ptr<detail::redis_bridge_impl> impl_;
};

}  // namespace switchboard::pubsub
