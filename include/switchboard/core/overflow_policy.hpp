// switchboard/core/overflow_policy.hpp
//
// The limits and overflow policies shared by every outbound path (DESIGN promise 2): a connection's send
// queue, a subscriber's queue, a stream window. Nothing grows without bound.
#pragma once

#include <cstddef>
#include <string_view>

namespace switchboard {

/// What a bounded queue does with a new item when it is full (in messages or in bytes).
enum class overflow_policy {
  /// Refuse the item for now: the producer's asynchronous push completes when there is room (optionally with a
  /// deadline). The synchronous `bounded_queue::push` reports `push_outcome::must_wait` and leaves the queue as is.
  wait,
  /// Discard the oldest queued items until the new one fits. The consumer loses the oldest data.
  drop_oldest,
  /// Discard the new item. The consumer keeps the oldest data.
  drop_newest,
  /// Keep only the latest item per key: a new item replaces a queued item with the same key, which is taken out,
  /// and goes to the back (so the queue stays in push order: sequence-numbered messages are not reordered). Items
  /// without a key, or with a new key on a full queue, fall back to `drop_oldest`, and so does a replacement that
  /// would take the queue past `max_bytes` (the older item then stays queued before it, unless dropped as the
  /// oldest). A replacement costs O(items queued behind the replaced one).
  conflate,
  /// Close the consumer: the queue reports `push_outcome::must_disconnect` and its owner cuts the connection
  /// or subscription (counted, and reported with `error::overflow_disconnect`).
  disconnect,
};

/// The name of a policy as used in configuration files and metrics labels.
constexpr std::string_view to_string(overflow_policy p) noexcept {
  switch (p) {
    case overflow_policy::wait: return "wait";
    case overflow_policy::drop_oldest: return "drop_oldest";
    case overflow_policy::drop_newest: return "drop_newest";
    case overflow_policy::conflate: return "conflate";
    case overflow_policy::disconnect: return "disconnect";
  }
  return "unknown";
}

/// The bounds of a queue. Both limits apply; whichever is reached first makes the queue full.
struct queue_limits {
  /// Most items queued at once. Must be at least 1.
  std::size_t max_messages = 1024;
  /// Most bytes queued at once, as counted by the queue's traits. A single item larger than this is still
  /// accepted when the queue is empty, so that it can make progress; the item size limits of each protocol
  /// (frame, message, body limits) bound that case.
  std::size_t max_bytes = 1024 * 1024;
  /// What happens to a new item when the queue is full.
  overflow_policy policy = overflow_policy::wait;
};

}  // namespace switchboard
