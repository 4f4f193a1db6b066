// switchboard/pubsub/observer.hpp
//
// `basic_broker_observer`: what a broker tells one outside party (the Redis bridge, see redis_bridge.hpp) about its
// traffic, so that it can mirror the broker elsewhere without the broker knowing how:
//  - which topics and patterns have local subscribers, as transitions: the first subscription to a name, and the
//    last one leaving it (the bridge subscribes in Redis only to those, reference-counted by the broker);
//  - every message published, in each topic's sequence order (the bridge forwards them to Redis).
//
// The calls are made under the broker's locks, so that transitions of one name and messages of one topic arrive in
// the order they happened, on whatever thread caused them. An observer must therefore be quick (record and return,
// e.g. push to its own queue and post to its executor), must not throw, and must not call back into the broker.
#pragma once

#include <switchboard/pubsub/message.hpp>

#include <string_view>

namespace switchboard::pubsub {

/// Observes a `basic_broker<Message>` (see `basic_broker::set_observer`).
template <class Message>
class basic_broker_observer {
 public:
  virtual ~basic_broker_observer() = default;

  /// `name` (a topic, or a pattern when `is_pattern`) gained its first subscription (`active`), or lost its last
  /// one. Exact subscriptions count for topics, pattern subscriptions for patterns: a topic that only patterns
  /// reach has no interest of its own. Called with the broker's lock held.
  virtual void on_interest(std::string_view name, bool is_pattern, bool active) = 0;

  /// `m` was published (numbered, retained and queued). Called with its topic's lock held, in sequence order.
  virtual void on_publish(const Message& m) = 0;
};

/// The observer of the default broker.
using broker_observer = basic_broker_observer<message>;

}  // namespace switchboard::pubsub
