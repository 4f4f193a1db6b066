// switchboard/pubsub/event.hpp
//
// What a subscriber receives: a message, or a gap event saying which sequence numbers of a topic it will never
// receive (DESIGN promise 3: loss is never silent).
//
// For each topic a subscription receives, the events follow the topic's numbering: messages in increasing
// sequence order, and a gap exactly where the missing messages would have been, so that the sequence numbers of
// messages and gaps together cover every number once, without hole or overlap, from where the subscription
// started. (The one exception is `overflow_policy::conflate`: the numbers of messages replaced by a newer one with
// the same key are in neither; see subscription.hpp.)
#pragma once

#include <switchboard/pubsub/message.hpp>

#include <cassert>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace switchboard::pubsub {

/// Why a subscriber missed messages.
enum class gap_reason {
  /// Its queue was full and its overflow policy (`drop_oldest`, `drop_newest`, or `conflate` when no key matched)
  /// discarded them.
  overflow,
  /// It asked to resume from a cursor older than what the topic retains (or retention evicted them while it was
  /// still replaying).
  retention,
  /// Messages published outside this process (another process behind the Redis bridge) may have been lost: while
  /// the bridge's connection to Redis was down, or because the bridge dropped messages from Redis that its local
  /// subscribers could not take (`redis_bridge_options::max_incoming`). How many is unknown: the gap stands for
  /// all of them and takes one sequence number of the topic (see `basic_broker::report_gap`).
  upstream,
};

/// The name of a reason, for logs and wire formats.
constexpr std::string_view to_string(gap_reason r) noexcept {
  switch (r) {
    case gap_reason::overflow: return "overflow";
    case gap_reason::retention: return "retention";
    case gap_reason::upstream: return "upstream";
  }
  return "unknown";
}

/// Messages `first` to `last` (inclusive) of `topic` will not be delivered to this subscriber.
struct gap {
  std::string topic;
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  gap_reason reason = gap_reason::overflow;

  /// How many messages were missed.
  std::uint64_t count() const noexcept { return last - first + 1; }

  friend bool operator==(const gap&, const gap&) = default;
};

/// A message or a gap, as delivered to a subscriber. Empty (neither) only when it accompanies an error.
template <class Message>
class basic_event {
 public:
  /// Empty.
  basic_event() = default;
  basic_event(Message m) : value_(std::move(m)) {}
  basic_event(pubsub::gap g) : value_(std::move(g)) {}

  bool is_message() const noexcept { return std::holds_alternative<Message>(value_); }
  bool is_gap() const noexcept { return std::holds_alternative<pubsub::gap>(value_); }
  bool empty() const noexcept { return std::holds_alternative<std::monostate>(value_); }

  /// The message. Precondition: `is_message()`.
  const Message& message() const noexcept {
    assert(is_message());
    return *std::get_if<Message>(&value_);
  }
  /// The gap. Precondition: `is_gap()`.
  const pubsub::gap& gap() const noexcept {
    assert(is_gap());
    return *std::get_if<pubsub::gap>(&value_);
  }

 private:
  std::variant<std::monostate, Message, pubsub::gap> value_;
};

/// The event of the default message type.
using event = basic_event<message>;

}  // namespace switchboard::pubsub
