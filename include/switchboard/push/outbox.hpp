// switchboard/push/outbox.hpp
//
// `push::outbox`: one client's bounded queue of encoded events (SSE events or WebSocket frames), between the
// topic feeds that produce them and the connection that writes them (DESIGN promises 2 and 3).
//
// The queue is bounded in messages and bytes with an overflow policy. What the policy discards is not lost
// silently: the outbox remembers, per topic, which sequence numbers it dropped, and hands out a gap (made by the
// owner's `encode_gap`) in their place, before the first later message of that topic (or when the queue runs
// empty). A message replaced under `conflate` by a newer one with the same key is superseded, not lost: no gap; the
// newer one goes to the back of the queue, so that the client still receives each topic in sequence order.
// Under `disconnect`, a full queue marks the outbox overflowed: it takes nothing more, its owner writes what it
// holds and then ends the connection; the client resumes from its last sequence number when it reconnects. `wait`
// is refused: one slow client must not hold up the feed that serves every other client of the topic (a broker
// subscription with `wait` does that, for the few consumers that need it).
//
// Control items (the rooms protocol's "joined", "left" and error replies) are never lost, whatever the policy: a
// client waiting for an acknowledgement would wait for ever. Under `drop_oldest` and `conflate` a control item that
// the policy drops was the oldest item: it is kept aside and handed out before anything still queued, in the order
// dropped. Under `drop_newest` one that the queue refuses is kept pending, after everything queued: until the
// pending ones are handed out (after the queue), later messages and gaps are dropped as the policy drops them (and
// reported as gaps after the pending items), and later control items join the pending ones. More than
// `max_held_controls` kept aside (a client that sends requests without reading the replies) is an overflow of the
// `disconnect` kind. Under `disconnect` a control item that does not fit is an overflow like any other item. Gaps
// keep their place around control items: a gap comes after every control item offered before the messages it
// reports and before every one offered after them, and a gap of a topic after its "joined" (`outbound::topic`).
#pragma once

#include <switchboard/core/bounded_queue.hpp>
#include <switchboard/core/detail/lazy_deque.hpp>
#include <switchboard/core/overflow_policy.hpp>
#include <switchboard/core/shared_bytes.hpp>
#include <switchboard/pubsub/event.hpp>
#include <switchboard/pubsub/message.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
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
  /// For a control item, the topic it acknowledges ("joined", "left"), if any: a gap of that topic for messages
  /// offered after the item is not written before it (a gap before "joined" would be of a topic not yet joined).
  std::string topic{};
  /// Set by the outbox: how many control items were offered before this item (its own number, for a control item),
  /// so that a gap keeps its place around control items.
  std::uint64_t epoch = 0;
  /// Set by the outbox under `conflate`: the message's topic and key, so that a message replaces only one of its
  /// own topic. (A room's socket gets several topics: keyed by the key alone, a message of one topic would replace
  /// one of another, losing it while the queue has room.)
  std::string scoped_key{};

  std::size_t size() const noexcept { return bytes.size(); }
  /// True for a control item: neither a message nor a gap.
  bool is_control() const noexcept { return !source && !gap; }
  std::string_view conflation_key() const noexcept {
    if (!scoped_key.empty()) return scoped_key;
    return source ? source->conflation_key() : std::string_view();
  }
};

/// The counters of an outbox.
struct outbox_stats {
  queue_stats queue;           ///< depth, bytes and counts of the queue (`dropped` includes the control items held)
  std::size_t held = 0;        ///< control items dropped by the policy and kept aside, still to hand out
  std::uint64_t gaps = 0;      ///< gaps handed out for dropped messages
  bool overflowed = false;     ///< the `disconnect` policy (or too many control items held) cut the client
};

/// A client's queue. Not thread-safe: used on the client connection's executor only.
class outbox {
 public:
  /// Encodes the gap that replaces dropped messages of one topic.
  using gap_encoder = std::function<shared_bytes(const pubsub::gap&)>;

  /// Most distinct runs of dropped messages remembered per topic; beyond it, the newest run is widened to cover
  /// the next dropped message (a gap may then span messages that were delivered: it errs on reporting more).
  static constexpr std::size_t max_runs_per_topic = 64;

  /// Most control items kept aside (dropped by the policy, to hand out in their place: see the file comment); one
  /// more makes the outbox overflowed, as under `disconnect`. A client that sends requests without reading the
  /// replies is then cut rather than growing its queue without bound.
  static constexpr std::size_t max_held_controls = 64;

  /// Throws `std::invalid_argument` for `overflow_policy::wait` or a zero limit.
  outbox(queue_limits limits, gap_encoder encode_gap) : queue_(limits), encode_gap_(std::move(encode_gap)) {
    if (limits.policy == overflow_policy::wait) {
      throw std::invalid_argument("switchboard::push: a client queue cannot use overflow_policy::wait");
    }
  }

  /// Queues `item` under the policy. Returns false when the client must be disconnected (`disconnect` policy, more
  /// than `max_held_controls` control items held, or already overflowed); `next` still hands out what was queued
  /// (and held) before, and the item too when holding a control item was the overflow.
  bool offer(outbound item) {
    if (overflowed_) return false;
    item.epoch = item.is_control() ? controls_++ : controls_;
    if (!held_.empty() && queue_.limits().policy == overflow_policy::drop_newest) {
      // A control item is pending after the queue: nothing offered later may come before it.
      ++held_dropped_;
      drop(std::move(item), {}, {});
      return held_.size() <= max_held_controls || overflow();
    }
    // Views into the message, whose shared body outlives the push whichever copy ends up holding it. A key counts
    // only under `conflate`: under another policy a dropped message with the same key (under `drop_newest`, the
    // new message itself) is lost, not superseded, and needs its gap.
    const bool conflating = queue_.limits().policy == overflow_policy::conflate;
    const std::string_view new_key = conflating && item.source ? item.source->conflation_key() : std::string_view();
    const std::string_view new_topic = item.source ? item.source->topic() : std::string_view();
    if (!new_key.empty()) {
      item.scoped_key.assign(new_topic).append(1, '\0').append(new_key);
    }
    const push_outcome outcome = queue_.push(std::move(item), [&](outbound&& dropped) {
      drop(std::move(dropped), new_key, new_topic);
    });
    if (outcome == push_outcome::must_disconnect) {
      // What is queued stays, for the owner to write before it ends the connection. Cleared, a client that resumes
      // with more to replay than its queue holds would be cut before it received anything, reconnect, and be cut
      // again, for ever: DESIGN promise 3 ("nothing is lost if the topic still retains what it missed", docs/push.md)
      // needs each connection to make progress. The queue is bounded: this holds no more than it did.
      return overflow();
    }
    // Past the bound, what is held stays too (at most the bound and a queueful): the client is cut once it is written.
    return held_.size() <= max_held_controls || overflow();
  }

  /// The next item to write, oldest first, with a gap in place of dropped messages and the control items held in
  /// theirs; nullopt when there is none.
  std::optional<outbound> next() {
    if (auto gap = due_gap()) {
      ++gaps_;
      return outbound{encode_gap_(*gap)};
    }
    // Held under drop_oldest or conflate: dropped from the front, so before everything queued. Under drop_newest:
    // refused, so after everything queued.
    if (!held_.empty() && (queue_.empty() || queue_.limits().policy != overflow_policy::drop_newest)) {
      outbound item = std::move(held_.front());
      held_.pop_front();
      return item;
    }
    if (queue_.empty()) return std::nullopt;
    return queue_.pop();
  }

  /// True when nothing is queued or held and no gap is due.
  bool empty() const noexcept { return queue_.empty() && held_.empty() && lost_.empty(); }
  /// True once the `disconnect` policy has cut the client: its owner ends the connection once `next` has nothing.
  bool overflowed() const noexcept { return overflowed_; }

  outbox_stats stats() const noexcept {
    outbox_stats s{queue_.stats(), held_.size(), gaps_, overflowed_};
    s.queue.dropped += held_dropped_;
    return s;
  }

 private:
  // A lost run: dropped messages of one topic, offered after the same control items (`epoch` of them).
  struct lost_run {
    pubsub::gap gap;
    std::uint64_t epoch = 0;
  };

  // What the queue holds of one topic with runs (see `due_gap`): a run of it is due when no queued message or gap of
  // the topic starts at or before its last number and no queued control item of the topic was offered before it.
  struct queued_summary {
    // The topic, a view of its runs' topic (valid during `due_gap`).
    std::string_view topic;
    // The lowest last number of its runs: once `first` is at or below it, none of them is due (the topic is closed).
    std::uint64_t lowest_last = std::numeric_limits<std::uint64_t>::max();
    // The lowest number a queued message or gap of the topic starts at.
    std::optional<std::uint64_t> first = std::nullopt;
    // The lowest epoch of a queued control item of the topic.
    std::uint64_t control_epoch = std::numeric_limits<std::uint64_t>::max();
  };

  bool overflow() noexcept {
    overflowed_ = true;
    return false;
  }

  // What the policy dropped: a control item is held; a message or gap is remembered as lost, unless `conflate`
  // replaced it with a newer one of its topic and key (`new_key` of `new_topic`), which supersedes it.
  void drop(outbound&& dropped, std::string_view new_key, std::string_view new_topic) {
    if (dropped.is_control()) return held_.push_back(std::move(dropped));
    // A dropped gap is a loss too: without this, a replay that overflows the queue would drop its retention gap and
    // the client would never hear of the messages it covered.
    if (dropped.gap) {
      const pubsub::gap& g = *dropped.gap;
      return record_loss(g.topic, g.first, g.last, g.reason, dropped.epoch);
    }
    const bool superseded =
        !new_key.empty() && dropped.source->conflation_key() == new_key && dropped.source->topic() == new_topic;
    if (!superseded) {
      const std::uint64_t seq = dropped.source->sequence();
      record_loss(dropped.source->topic(), seq, seq, pubsub::gap_reason::overflow, dropped.epoch);
    }
  }

  // Remembers that `first`..`last` of `topic` were dropped, merging them into a run of the topic (with the same
  // reason, offered after the same control items) when adjacent.
  void record_loss(std::string_view topic, std::uint64_t first, std::uint64_t last, pubsub::gap_reason reason,
                   std::uint64_t epoch) {
    lost_run* newest = nullptr;
    std::size_t runs = 0;
    for (lost_run& r : lost_) {
      pubsub::gap& g = r.gap;
      if (g.topic != topic) continue;
      ++runs;
      newest = &r;
      if (g.reason != reason || r.epoch != epoch) continue;
      if (g.last + 1 == first) return void(g.last = last);
      if (last + 1 == g.first) return void(g.first = first);
    }
    if (newest && runs >= max_runs_per_topic) {
      // Widened over later messages, the run waits for the control items before them (a gap may then come after a
      // "left" of its topic: it errs on lateness rather than before a "joined").
      newest->gap.first = std::min(newest->gap.first, first);
      newest->gap.last = std::max(newest->gap.last, last);
      newest->epoch = std::max(newest->epoch, epoch);
      return;
    }
    lost_.push_back(lost_run{pubsub::gap{std::string(topic), first, last, reason}, epoch});
  }

  // The gap that must be written before the next queued item: one that every queued message of its topic comes
  // after, or any once the queue is empty. Runs of one topic are handed out in sequence order.
  //
  // Every queued message of the topic, not only the front: behind a front of another topic (a room's other topic, a
  // control item) older messages of the gap's topic may still be queued (`drop_newest` drops the newest), and a gap
  // written before them would break the order of the topic (docs/push.md: "with gaps exactly where messages are
  // missing"), and an SSE client that reconnected after it would resume past them.
  //
  // Nor before a queued control item of its topic ("joined") offered before its messages, nor before a control item
  // held that was offered before its messages: the first held comes before any run offered after it, whether it goes
  // before the queue or after it.
  std::optional<pubsub::gap> due_gap() {
    if (lost_.empty()) return std::nullopt;
    const auto due = due_run();
    if (due == lost_.end()) return std::nullopt;
    pubsub::gap g = std::move(due->gap);
    lost_.erase(due);
    return g;
  }

  // The run whose gap is due (see `due_gap`), or the end of `lost_`. One pass over the queue summarises it per topic
  // with runs, and each run is decided against its topic's summary: checking each run against the whole queue cost
  // (runs x queued items) per item handed out, up to 64 runs of each of 64 rooms against 1,024 items, paid by the
  // clients already too slow. Out of `due_gap`, which every `next` calls, so that the common case (no run) stays small.
  std::vector<lost_run>::iterator due_run() {
    const auto waits_for_held = [&](const lost_run& r) { return !held_.empty() && r.epoch > held_.front().epoch; };
    // Sorted by topic: a room's socket has up to `max_rooms` topics, an SSE stream one. One per thread, reused, so
    // that handing out an item allocates nothing (nothing called here re-enters it).
    static thread_local std::vector<queued_summary> topics;
    topics.clear();
    const auto find = [&](std::string_view topic) {
      return std::lower_bound(topics.begin(), topics.end(), topic,
                              [](const queued_summary& s, std::string_view t) { return s.topic < t; });
    };
    for (const lost_run& r : lost_) {
      if (waits_for_held(r)) continue;
      auto s = find(r.gap.topic);
      if (s == topics.end() || s->topic != r.gap.topic) s = topics.insert(s, queued_summary{r.gap.topic});
      s->lowest_last = std::min(s->lowest_last, r.gap.last);
    }
    // Topics not closed: some run of theirs may still be due. When none is left, no run is and the pass stops there:
    // under `drop_newest` the runs are behind queued messages of their topic, found near the front.
    std::size_t open = topics.size();
    const auto closed = [](const queued_summary& s) { return s.first && *s.first <= s.lowest_last; };
    const auto queued_start = [&](std::string_view topic, std::uint64_t first) {
      const auto s = find(topic);
      if (s == topics.end() || s->topic != topic || (s->first && *s->first <= first)) return;
      const bool was_closed = closed(*s);
      s->first = first;
      if (!was_closed && closed(*s)) --open;
    };
    for (std::size_t i = 0; i < queue_.size() && open > 0; ++i) {
      const outbound& item = queue_.at(i);
      if (item.source) queued_start(item.source->topic(), item.source->sequence());
      if (item.gap) queued_start(item.gap->topic, item.gap->first);
      if (item.is_control() && !item.topic.empty()) {
        const auto s = find(item.topic);
        if (s != topics.end() && s->topic == item.topic) s->control_epoch = std::min(s->control_epoch, item.epoch);
      }
    }
    if (open == 0) return lost_.end();
    auto due = lost_.end();
    for (auto it = lost_.begin(); it != lost_.end(); ++it) {
      if (waits_for_held(*it)) continue;
      const queued_summary& s = *find(it->gap.topic);
      if ((s.first && *s.first <= it->gap.last) || s.control_epoch < it->epoch) continue;
      if (due == lost_.end() || (due->gap.topic == it->gap.topic && it->gap.first < due->gap.first)) due = it;
    }
    return due;
  }

  bounded_queue<outbound> queue_;
  gap_encoder encode_gap_;
  std::vector<lost_run> lost_;   // runs of dropped messages not yet reported
  // Control items dropped by the policy, in the order offered (see the file comment).
  switchboard::detail::lazy_deque<outbound> held_;
  std::uint64_t controls_ = 0;   // control items offered so far: the epoch of the next item
  std::uint64_t held_dropped_ = 0;  // items dropped while a control item was pending (drop_newest), not by the queue
  std::uint64_t gaps_ = 0;
  bool overflowed_ = false;
};

}  // namespace switchboard::push
