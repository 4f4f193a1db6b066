// switchboard/pubsub/stats.hpp
//
// What the broker counts, per subscription, per topic and in total (DESIGN promise 2: depth, bytes and drop counts
// can be read). `basic_broker::export_metrics` and `basic_subscription::export_metrics` expose the same numbers as
// Prometheus series.
#pragma once

#include <cstddef>
#include <cstdint>

namespace switchboard::pubsub {

/// One subscription's queue and counters.
struct subscription_stats {
  std::size_t depth = 0;            ///< Messages queued now.
  std::size_t bytes = 0;            ///< Bytes queued now (as counted by `queue_traits<Message>::bytes`).
  std::size_t peak_depth = 0;       ///< The most messages ever queued at once (never above the queue limit).
  std::size_t peak_bytes = 0;       ///< The most bytes ever queued at once.
  std::uint64_t delivered = 0;      ///< Messages handed to the subscriber (replayed ones included).
  std::uint64_t dropped = 0;        ///< Messages its overflow policy discarded (each one is reported in a gap).
  std::uint64_t superseded = 0;     ///< Messages replaced by a newer one with the same key (`conflate`).
  std::uint64_t gaps = 0;           ///< Gap events delivered.
  std::uint64_t missed = 0;         ///< Sequence numbers those gap events reported missing.
  bool closed = false;              ///< Closed (by its `disconnect` policy or the broker's destruction).
};

/// One topic.
struct topic_stats {
  /// Which topic of this name this is: a number the broker gives each topic it makes, from 1, never twice. A
  /// topic erased (or reclaimed) and made again numbers its messages from 1 again, under a new incarnation: a
  /// cursor or an entity tag that carries it cannot be taken for one of the earlier topic.
  std::uint64_t incarnation = 0;
  std::uint64_t last_sequence = 0;   ///< Sequence number of its newest message; 0 before the first.
  std::uint64_t published = 0;       ///< Messages published (since the topic was made).
  std::uint64_t enqueued = 0;        ///< Copies of its messages accepted into subscriber queues (the fan-out).
  std::uint64_t dropped = 0;         ///< Copies of its messages discarded by subscribers' overflow policies.
  std::size_t subscribers = 0;       ///< Subscriptions attached (exact and pattern), closed ones not yet gone included.
  std::size_t retained = 0;          ///< Messages retained.
  std::size_t retained_bytes = 0;    ///< Bytes retained.
  std::size_t waiting_publishers = 0;  ///< `async_publish` calls waiting for room (`wait` policy).
  std::size_t waiting_reads = 0;     ///< `async_read` calls waiting for the next message.
};

/// The whole broker.
struct broker_stats {
  std::size_t topics = 0;          ///< Topics (each keeps its sequence number until erased).
  std::size_t subscriptions = 0;   ///< Subscriptions not yet unsubscribed.
  std::size_t patterns = 0;        ///< Distinct patterns subscribed.
  std::uint64_t published = 0;     ///< Messages published, over every topic.
  std::uint64_t enqueued = 0;      ///< Copies accepted into subscriber queues, over every topic.
  std::uint64_t dropped = 0;       ///< Copies discarded by overflow policies, over every topic.
  std::size_t retained_bytes = 0;  ///< Bytes retained, over every topic.
  std::uint64_t retained_evicted = 0;  ///< Retained messages evicted to keep within `max_retained_bytes`.
};

}  // namespace switchboard::pubsub
