// switchboard/push/outbox.hpp
//
// `push::outbox`: one client's bounded queue of encoded events (SSE events or WebSocket frames), between the
// topic feeds that produce them and the connection that writes them (DESIGN promises 2 and 3).
//
// The queue is bounded in messages and bytes with an overflow policy. What the policy discards is not lost
// silently: the outbox remembers, per topic, which sequence numbers it dropped, and hands out a gap (made by the
// owner's `encode_gap`) in their place, before the first later message of that topic (or when the queue runs
// empty). A message replaced under `conflate` by a newer one with the same key is superseded, not lost: no gap.
// Under `disconnect`, a full queue marks the outbox overflowed and its owner ends the connection; the client
// resumes from its last sequence number when it reconnects. `wait` is refused: one slow client must not hold up
// the feed that serves every other client of the topic (a broker subscription with `wait` does that, for the
// few consumers that need it).
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

  std::size_t size() const noexcept { return bytes.size(); }
  std::string_view conflation_key() const noexcept { return source ? source->conflation_key() : std::string_view(); }
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
  /// already overflowed); the item is then not queued.
  bool offer(outbound item) {
    if (overflowed_) return false;
    // Views into the message, whose shared body outlives the push whichever copy ends up holding it.
    const std::string_view new_key = item.conflation_key();
    const std::string_view new_topic = item.source ? item.source->topic() : std::string_view();
    const push_outcome outcome = queue_.push(std::move(item), [&](outbound&& dropped) {
      if (!dropped.source) return;
      const bool superseded =
          !new_key.empty() && dropped.conflation_key() == new_key && dropped.source->topic() == new_topic;
      if (!superseded) record_loss(*dropped.source);
    });
    if (outcome == push_outcome::must_disconnect) {
      overflowed_ = true;
      queue_.clear();
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
  /// True once the `disconnect` policy has cut the client.
  bool overflowed() const noexcept { return overflowed_; }

  outbox_stats stats() const noexcept { return {queue_.stats(), gaps_, overflowed_}; }

 private:
  // Remembers that `m` was dropped, merging it into a run of its topic when adjacent.
  void record_loss(const pubsub::message& m) {
    const std::uint64_t seq = m.sequence();
    pubsub::gap* newest = nullptr;
    std::size_t runs = 0;
    for (pubsub::gap& g : lost_) {
      if (g.topic != m.topic()) continue;
      ++runs;
      newest = &g;
      if (g.last + 1 == seq) return void(g.last = seq);
      if (seq + 1 == g.first) return void(g.first = seq);
    }
    if (newest && runs >= max_runs_per_topic) {
      newest->first = std::min(newest->first, seq);
      newest->last = std::max(newest->last, seq);
      return;
    }
    lost_.push_back(pubsub::gap{std::string(m.topic()), seq, seq, pubsub::gap_reason::overflow});
  }

  // The gap that must be written before the next queued item: one whose topic's next queued message comes after
  // it, or any once the queue is empty. Runs of one topic are handed out in sequence order.
  std::optional<pubsub::gap> due_gap() {
    if (lost_.empty()) return std::nullopt;
    const outbound* front = queue_.empty() ? nullptr : &queue_.front();
    auto due = lost_.end();
    for (auto it = lost_.begin(); it != lost_.end(); ++it) {
      const bool before_front = !front || !front->source || front->source->topic() != it->topic ||
                                front->source->sequence() > it->last;
      if (!before_front) continue;
      if (due == lost_.end() || (due->topic == it->topic && it->first < due->first)) due = it;
    }
    if (due == lost_.end()) return std::nullopt;
    pubsub::gap g = std::move(*due);
    lost_.erase(due);
    return g;
  }

  bounded_queue<outbound> queue_;
  gap_encoder encode_gap_;
  std::vector<pubsub::gap> lost_;  // runs of dropped messages not yet reported
  std::uint64_t gaps_ = 0;
  bool overflowed_ = false;
};

}  // namespace switchboard::push
