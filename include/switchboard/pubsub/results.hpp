// switchboard/pubsub/results.hpp
//
// What `publish` and `read` return.
#pragma once

#include <switchboard/pubsub/event.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <system_error>
#include <vector>

namespace switchboard::pubsub {

/// The outcome of a synchronous `publish`.
struct publish_result {
  /// Empty on success; `error::would_block`, `error::too_many_topics`, `error::topic_too_long`, or
  /// `switchboard::error::closed` otherwise (then nothing was published).
  std::error_code error;
  /// The message's sequence number in its topic (0 when not published).
  std::uint64_t sequence = 0;
  /// How many subscriber queues accepted it (a `drop_newest` subscriber that discarded it is not counted).
  std::size_t subscribers = 0;

  /// True when the message was published.
  explicit operator bool() const noexcept { return !error; }
};

/// What `read` and `async_read` return: the messages of a topic after a cursor, oldest first.
template <class Message>
struct basic_read_result {
  /// Empty, or `error::cursor_ahead` when the cursor is past the topic's last sequence number.
  std::error_code error;
  /// Set when messages right after the cursor are no longer retained: they come before `messages`.
  std::optional<pubsub::gap> missed;
  /// Consecutive messages after the cursor (or after `missed`), at most the number asked for.
  std::vector<Message> messages;
  /// The topic's last sequence number when it was read.
  std::uint64_t last_sequence = 0;
  /// The cursor for the next read: the sequence number of the last message (or missed one) returned, or the
  /// cursor given when there was nothing new.
  std::uint64_t next_cursor = 0;
};

/// What `latest_reading` returns: a topic's newest retained message with the numbers that say which topic, and
/// which state of it, the message belongs to, read together (two calls could read two topics, if the name was
/// erased and made again between them).
template <class Message>
struct basic_latest_reading {
  /// The topic's incarnation (`topic_stats::incarnation`); 0 for a topic that does not exist.
  std::uint64_t incarnation = 0;
  /// The topic's last sequence number; 0 before its first message.
  std::uint64_t last_sequence = 0;
  /// Its newest message, if it is retained (not when it was evicted, or a gap came after it).
  std::optional<Message> message;
};

}  // namespace switchboard::pubsub
