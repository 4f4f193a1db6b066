// switchboard/push/outbox.hpp
//
// `push::outbox`: one client's bounded queue of encoded events (SSE events or WebSocket frames), between the
// topic feeds that produce them and the connection that writes them (DESIGN promises 2 and 3).
//
// The queue is bounded in messages and bytes with an overflow policy. What the policy discards is not lost
// silently: the outbox remembers, per topic, which sequence numbers it dropped, and hands out a gap (made by the
// owner's `encode_gap`) in their place, before the first later message of that topic (or when the queue runs
// empty). A message replaced under `conflate` by a newer one with the same key is superseded, not lost: no gap.
// Under `disconnect`, a full queue marks the outbox overflowed: it takes nothing more, its owner writes what it
// holds and then ends the connection; the client resumes from its last sequence number when it reconnects. `wait`
// is refused: one slow client must not hold up the feed that serves every other client of the topic (a broker
// subscription with `wait` does that, for the few consumers that need it).
#pragma once

#include <switchboard/core/bounded_queue.hpp>
#include <switchboard/core/overflow_policy.hpp>
#include <switchboard/core/shared_bytes.hpp>
#include <switchboard/pubsub/event.hpp>
#include <switchboard/pubsub/message.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::push {

/// One encoded item for one client: the bytes to write, and the message they encode (absent for control items
/// such as a rooms acknowledgement), which says what was lost if the item is dropped.
struct outbound {
  /// The bytes to write, shared with every other client that gets the same encoding.
  shared_bytes bytes;
  /// The message encoded, if any: its topic, sequence number and conflation key.
  std::optional<pubsub::message> source = std::nullopt;
  /// The gap encoded, if any (a retention gap of a replay, a feed's gap). Dropped, it is not lost either: the outbox
  /// reports its numbers again in a gap of its own (DESIGN promise 3).
  std::optional<pubsub::gap> gap = std::nullopt;
  /// Set by the outbox under `conflate`: the message's topic and key, so that a message replaces only one of its
  /// own topic. (A room's socket gets several topics: keyed by the key alone, a message of one topic would replace
  /// one of another in place, losing it while the queue has room, and jump ahead of its own topic's earlier
  /// messages and "joined".)
  std::string scoped_key{};

  std::size_t size() const noexcept { return bytes.size(); }
  std::string_view conflation_key() const noexcept {
    if (!scoped_key.empty()) return scoped_key;
    return source ? source->conflation_key() : std::string_view();
  }
};

/// The counters of an outbox.
struct outbox_stats {
  queue_stats queue;           ///< depth, bytes and counts of the queue
  std::uint64_t gaps = 0;      ///< gaps handed out for dropped messages
  bool overflowed = false;     ///< the `disconnect` policy cut the client
};

/// A client's queue. Not thread-safe: used on the client connection's executor only.
class outbox {
 public:
  /// Encodes the gap that replaces dropped messages of one topic.
  using gap_encoder = std::function<shared_bytes(const pubsub::gap&)>;

  /// Most distinct runs of dropped messages remembered per topic; beyond it, the newest run is widened to cover
  /// the next dropped message (a gap may then span messages that were delivered: it errs on reporting more).
  static constexpr std::size_t max_runs_per_topic = 64;

  /// Throws `std::invalid_argument` for `overflow_policy::wait` or a zero limit.
  outbox(queue_limits limits, gap_encoder encode_gap) : queue_(limits), encode_gap_(std::move(encode_gap)) {
    if (limits.policy == overflow_policy::wait) {
      throw std::invalid_argument("switchboard::push: a client queue cannot use overflow_policy::wait");
    }
  }

  /// Queues `item` under the policy. Returns false when the client must be disconnected (`disconnect` policy, or
  /// already overflowed); the item is then not queued, and `next` still hands out what was queued before it.
  bool offer(outbound item) {
    if (overflowed_) return false;
    // Views into the message, whose shared body outlives the push whichever copy ends up holding it.
    const std::string_view new_key = item.source ? item.source->conflation_key() : std::string_view();
    const std::string_view new_topic = item.source ? item.source->topic() : std::string_view();
    if (queue_.limits().policy == overflow_policy::conflate && !new_key.empty()) {
      item.scoped_key.assign(new_topic).append(1, '\0').append(new_key);
    }
    const push_outcome outcome = queue_.push(std::move(item), [&](outbound&& dropped) {
      // A dropped gap is a loss too: without this, a replay that overflows the queue would drop its retention gap
      // and the client would never hear of the messages it covered.
      if (dropped.gap) {
        return record_loss(dropped.gap->topic, dropped.gap->first, dropped.gap->last, dropped.gap->reason);
      }
      if (!dropped.source) return;
      const bool superseded =
          !new_key.empty() && dropped.source->conflation_key() == new_key && dropped.source->topic() == new_topic;
      if (!superseded) {
        const std::uint64_t seq = dropped.source->sequence();
        record_loss(dropped.source->topic(), seq, seq, pubsub::gap_reason::overflow);
      }
    });
    if (outcome == push_outcome::must_disconnect) {
      // What is queued stays, for the owner to write before it ends the connection. Cleared, a client that resumes
      // with more to replay than its queue holds would be cut before it received anything, reconnect, and be cut
      // again, for ever: DESIGN promise 3 ("nothing is lost if the topic still retains what it missed", docs/push.md)
      // needs each connection to make progress. The queue is bounded: this holds no more than it did.
      overflowed_ = true;
      return false;
    }
    return true;
  }

  /// The next item to write, oldest first, with a gap in place of dropped messages; nullopt when there is none.
  std::optional<outbound> next() {
    if (auto gap = due_gap()) {
      ++gaps_;
      return outbound{encode_gap_(*gap)};
    }
    if (queue_.empty()) return std::nullopt;
    return queue_.pop();
  }

  /// True when nothing is queued and no gap is due.
  bool empty() const noexcept { return queue_.empty() && lost_.empty(); }
  /// True once the `disconnect` policy has cut the client: its owner ends the connection once `next` has nothing.
  bool overflowed() const noexcept { return overflowed_; }

  outbox_stats stats() const noexcept { return {queue_.stats(), gaps_, overflowed_}; }

 private:
  // Remembers that `first`..`last` of `topic` were dropped, merging them into a run of the topic (with the same
  // reason) when adjacent.
  void record_loss(std::string_view topic, std::uint64_t first, std::uint64_t last, pubsub::gap_reason reason) {
    pubsub::gap* newest = nullptr;
    std::size_t runs = 0;
    for (pubsub::gap& g : lost_) {
      if (g.topic != topic) continue;
      ++runs;
      newest = &g;
      if (g.reason != reason) continue;
      if (g.last + 1 == first) return void(g.last = last);
      if (last + 1 == g.first) return void(g.first = first);
    }
    if (newest && runs >= max_runs_per_topic) {
      newest->first = std::min(newest->first, first);
      newest->last = std::max(newest->last, last);
      return;
    }
    lost_.push_back(pubsub::gap{std::string(topic), first, last, reason});
  }

  // The gap that must be written before the next queued item: one that every queued message of its topic comes
  // after, or any once the queue is empty. Runs of one topic are handed out in sequence order.
  //
  // Every queued message of the topic, not only the front: behind a front of another topic (a room's other topic, a
  // control item) older messages of the gap's topic may still be queued (`drop_newest` drops the newest; `conflate`
  // replaces in place), and a gap written before them would break the order of the topic (docs/push.md: "with gaps
  // exactly where messages are missing"), and an SSE client that reconnected after it would resume past them.
  std::optional<pubsub::gap> due_gap() {
    if (lost_.empty()) return std::nullopt;
    auto due = lost_.end();
    for (auto it = lost_.begin(); it != lost_.end(); ++it) {
      if (!before_queued(*it)) continue;
      if (due == lost_.end() || (due->topic == it->topic && it->first < due->first)) due = it;
    }
    if (due == lost_.end()) return std::nullopt;
    pubsub::gap g = std::move(*due);
    lost_.erase(due);
    return g;
  }

  // True when no queued message (or gap) of `g`'s topic starts at or before `g.last`.
  bool before_queued(const pubsub::gap& g) noexcept {
    for (std::size_t i = 0; i < queue_.size(); ++i) {
      const outbound& item = queue_.at(i);
      if (item.source && item.source->topic() == g.topic && item.source->sequence() <= g.last) return false;
      if (item.gap && item.gap->topic == g.topic && item.gap->first <= g.last) return false;
    }
    return true;
  }

  bounded_queue<outbound> queue_;
  gap_encoder encode_gap_;
  std::vector<pubsub::gap> lost_;  // runs of dropped messages not yet reported
  std::uint64_t gaps_ = 0;
  bool overflowed_ = false;
};

}  // namespace switchboard::push
