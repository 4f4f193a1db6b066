// switchboard/pubsub/error.hpp
//
// Errors of the in-process publish/subscribe broker. Failures shared with other modules use the core codes
// (`switchboard::error`): `closed` (the broker or subscription is gone), `overflow_disconnect` (the `disconnect`
// overflow policy cut a slow subscriber), `timeout` (an `async_publish` or `async_read` deadline passed).
#pragma once

#include <string>
#include <system_error>

namespace switchboard::pubsub {

/// Errors reported by the broker.
enum class error {
  /// A synchronous `publish` found a `wait`-policy subscriber with no room: nothing was published and no sequence
  /// number was used. `async_publish` waits for room instead.
  would_block = 1,
  /// Making a new topic would exceed `broker_options::max_topics`.
  too_many_topics,
  /// The topic name or pattern is longer than `broker_options::max_topic_length`.
  topic_too_long,
  /// Making a new subscription would exceed `broker_options::max_subscriptions`.
  too_many_subscriptions,
  /// The cursor is past the topic's last sequence number: it belongs to an earlier life of the topic (the process
  /// restarted, or the topic was erased). Resume from 0, or from `last_sequence`.
  cursor_ahead,
};

namespace detail {
class pubsub_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "switchboard.pubsub"; }
  std::string message(int value) const override {
    switch (static_cast<error>(value)) {
      case error::would_block: return "a wait-policy subscriber is full: nothing published";
      case error::too_many_topics: return "too many topics";
      case error::topic_too_long: return "topic name too long";
      case error::too_many_subscriptions: return "too many subscriptions";
      case error::cursor_ahead: return "cursor is past the topic's last sequence number";
    }
    return "unknown switchboard.pubsub error";
  }
};
}  // namespace detail

/// The category of `switchboard::pubsub::error`.
inline const std::error_category& pubsub_category() noexcept {
  static const detail::pubsub_category_impl instance;
  return instance;
}

inline std::error_code make_error_code(error e) noexcept { return {static_cast<int>(e), pubsub_category()}; }

}  // namespace switchboard::pubsub

template <>
struct std::is_error_code_enum<switchboard::pubsub::error> : std::true_type {};
