// switchboard/pubsub/redis_bridge_options.hpp
//
// The configuration and the counters of `redis_bridge` (redis_bridge.hpp), with safe defaults: bounded queues,
// bounded backoff.
#pragma once

#include <switchboard/resp/client.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace switchboard::pubsub {

/// How a `redis_bridge` reaches Redis and behaves.
struct redis_bridge_options {
  /// The Redis server (host, port, AUTH, TLS, protocol), or with `cluster` one node of the cluster to discover the
  /// others from. Each Redis node gets two connections with these settings: one publishes, one subscribes.
  resp::client_options redis{};
  /// Redis Cluster: sharded pub/sub (SPUBLISH, SSUBSCRIBE) routed by hash slot; patterns are not bridged.
  bool cluster = false;
  /// Only topics (and patterns) whose name this Redis glob matches are bridged; the others stay local. A pattern
  /// subscription is bridged when its own text matches (so "shared.*" covers the pattern "shared.news.*").
  std::string topics = "*";
  /// The first retry after a lost or failed connection waits about this long; each failure doubles it.
  std::chrono::milliseconds initial_backoff{100};
  /// The longest wait between retries. Each wait is drawn between half the current delay and the whole of it, so
  /// that the processes of a fleet do not all come back at the same instant.
  std::chrono::milliseconds max_backoff{10'000};
  /// Most local messages waiting to go to Redis (while a connection is down, or already in flight); past it the
  /// oldest is dropped and counted in `dropped_outgoing`.
  std::size_t max_outgoing = 10'000;
  /// The same in bytes (topic and payload), so that large messages cannot make `max_outgoing` of them take
  /// gigabytes while Redis is down. Past it the oldest are dropped and counted in `dropped_outgoing`.
  std::size_t max_outgoing_bytes = 64 * 1024 * 1024;
  /// Most PUBLISH commands in flight on one connection (pipelined) before the next wait for replies.
  std::size_t publish_window = 1'000;
  /// Most messages from Redis waiting to be published to one local topic. A `wait` subscriber of the topic that
  /// has no room holds them up, in order, as it holds up any publisher; Redis itself is not held up (its connection
  /// carries every channel of the node, and one slow topic must not stall the others). Past the bound, further
  /// messages for that topic are dropped and counted in `dropped_incoming`, and the topic's subscribers get a
  /// `gap_reason::upstream` gap where they were lost (one for each run of them). A message counts until the
  /// broker's completion of its publish has run, so the rest of the read that brought it counts too: keep the bound
  /// well above what one read can bring (the defaults are).
  std::size_t max_incoming = 10'000;
  /// The same in bytes (topic and payload as Redis sent them), per topic. A single message larger than this still
  /// passes when nothing else waits for its topic (`redis.limits` bound its size).
  std::size_t max_incoming_bytes = 64 * 1024 * 1024;
  /// With `cluster`: how often the slot map is read again even without a redirection (zero: only on redirections
  /// and lost connections).
  std::chrono::milliseconds cluster_refresh_interval{60'000};
  /// With `cluster`: how long the CLUSTER SLOTS reply may take. A node that accepts the connection and then never
  /// answers (hung, overloaded) would otherwise stop every later refresh of the slot map; past this the control
  /// connection is dropped and the map read again, at the next known node, after a backoff, as after any failed
  /// connection. Zero: no deadline. (Connecting has its own, `redis.connect_timeout`.)
  std::chrono::milliseconds cluster_refresh_timeout{5'000};
  /// This bridge's origin id: empty picks a random one (16 hex digits). Must not contain a line feed.
  std::string origin{};
};

/// A `redis_bridge`'s counters since it was made.
struct redis_bridge_stats {
  /// Local messages published to Redis (the server acknowledged the PUBLISH).
  std::uint64_t sent = 0;
  /// Messages from Redis published to the local broker.
  std::uint64_t received = 0;
  /// This bridge's own messages that Redis echoed back, dropped.
  std::uint64_t echoes = 0;
  /// Local messages that did not reach Redis: the outgoing queue overflowed, or the connection was lost with the
  /// PUBLISH in flight (Redis may or may not have had it).
  std::uint64_t dropped_outgoing = 0;
  /// Messages from Redis not published to the local broker: over `max_incoming` or `max_incoming_bytes` for their
  /// topic (its subscribers get an upstream gap), or refused by the broker (`too_many_topics`, `topic_too_long`:
  /// logged).
  std::uint64_t dropped_incoming = 0;
  /// Connections to Redis nodes established after the first (reconnections).
  std::uint64_t reconnects = 0;
  /// Outages reported to local subscribers as gaps (one per outage of a node, for every topic it covered).
  std::uint64_t outages = 0;
  /// MOVED and ASK redirections followed (cluster).
  std::uint64_t redirects = 0;
  /// Slot maps read (cluster).
  std::uint64_t slot_refreshes = 0;
  /// Channels and patterns subscribed in Redis now (confirmed by Redis).
  std::size_t channels = 0;
  std::size_t patterns = 0;
  /// Redis nodes connected now (1 at most without a cluster).
  std::size_t nodes_up = 0;
};

}  // namespace switchboard::pubsub
