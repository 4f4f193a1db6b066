// switchboard/pubsub/options.hpp
//
// The configuration of a broker and of a subscription, with safe defaults: nothing grows without bound (DESIGN
// promise 2). Worst cases with the defaults: 100,000 topics, 100,000 subscriptions of 1,024 messages and 1 MiB
// each, about 2.3 KB in the pattern index for each pattern subscribed (see `max_topic_length`); retention off.
#pragma once

#include <switchboard/core/overflow_policy.hpp>
#include <switchboard/pubsub/event.hpp>
#include <switchboard/pubsub/retention.hpp>

#include <asio/any_io_executor.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <system_error>
#include <vector>

namespace switchboard::pubsub {

/// The limits and defaults of a broker.
struct broker_options {
  /// Most topics at once. A topic is made by its first publish, subscribe or read-wait and lives until
  /// `erase_topic` or `retire_topic`, keeping its sequence number so that cursors stay meaningful; making one more
  /// fails with `error::too_many_topics`. A topic that never had a message is forgotten when its last exact subscriber,
  /// waiting reader or waiting publisher leaves (unless `set_retention` or `export_topic_metrics` kept it), so
  /// subscribing to or polling made-up names does not use topics up.
  std::size_t max_topics = 100'000;
  /// Longest topic name or pattern, in bytes (`error::topic_too_long`). It also bounds what a pattern costs in the
  /// pattern index (pattern_index.hpp): about twice its length plus 250 bytes of heap (its text as a map's key, the
  /// bytes of its literal prefix that no other pattern's prefix shares as a trie edge's label, at most two trie
  /// nodes), given back when it is erased. So with the default a pattern takes about 2.3 KB, and
  /// `max_subscriptions` patterns about 230 MB.
  std::size_t max_topic_length = 1024;
  /// Most subscriptions at once (`error::too_many_subscriptions`).
  std::size_t max_subscriptions = 100'000;
  /// The queue of a subscription that does not set its own: 1,024 messages, 1 MiB, `drop_oldest` (the subscriber
  /// gets a gap event for what it lost; the publishers are never slowed down).
  queue_limits subscriber_limits{.max_messages = 1024, .max_bytes = 1024 * 1024, .policy = overflow_policy::drop_oldest};
  /// Most bytes every topic retains together (1 GiB). Past it, the broker evicts the oldest retained messages over
  /// every topic, whichever topic they belong to, until 90% of it is used; a client resuming from before them gets a
  /// retention gap, as for any evicted message. Without it, publishers to many topics (`max_topics` of them, each up
  /// to its own `max_bytes`) could make retention take all memory. The trim runs on the broker's executor soon after
  /// the limit is passed, so the total can exceed it briefly.
  std::size_t max_retained_bytes = std::size_t{1} << 30;
  /// The retention of a topic no rule matches: off.
  retention_limits retention{};
  /// Retention by topic name, checked in order when a topic is made (`set_retention` changes one topic later).
  std::vector<retention_rule> retention_rules{};
};

/// How to subscribe. For the default message type: `pubsub::subscription_options`.
template <class Message>
struct basic_subscription_options {
  /// The type of `on_event`.
  using on_event_type = std::function<void(std::error_code, const basic_event<Message>&)>;

  /// The subscriber's queue: its bounds and overflow policy. Unset: `broker_options::subscriber_limits`.
  std::optional<queue_limits> limits{};
  /// Exact topics only: resume after this sequence number. The subscriber first receives what the topic retains
  /// after it (a gap event first for what it no longer retains), then live messages, with none missed or repeated
  /// at the switch. 0 replays everything retained. Past the topic's last sequence number: `error::cursor_ahead`.
  std::optional<std::uint64_t> from{};
  /// Where events are delivered (the callback runs there; `async_receive` completes through it). Unset: the
  /// broker's executor. Use an executor that runs one handler at a time (a single-threaded `io_context`, as the
  /// runtime's, or a strand).
  asio::any_io_executor executor{};
  /// Called for each event on `executor`, in order; then, if the subscription is closed by its `disconnect` policy
  /// or the broker's destruction, once with the error and an empty event. Must not throw. Unset: events are taken
  /// with `async_receive`.
  on_event_type on_event{};
};

/// The subscription options of the default message type.
using subscription_options = basic_subscription_options<message>;

}  // namespace switchboard::pubsub
