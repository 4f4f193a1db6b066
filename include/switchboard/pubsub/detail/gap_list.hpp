// switchboard/pubsub/detail/gap_list.hpp
//
// The gaps a subscriber has not been told about yet, at one position of its stream: before a queued message, or
// after the last one. Each gap is a range of one topic's sequence numbers; ranges of the same topic and reason
// that touch are merged, so a subscriber that loses 10,000 consecutive messages gets one gap event, not 10,000.
//
// An empty list is one null pointer: every queued message carries one, and almost all are empty.
#pragma once

#include <switchboard/pubsub/event.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace switchboard::pubsub::detail {

/// Missing ranges, by topic. `TopicRef` identifies a topic (compared with `==`).
template <class TopicRef>
class gap_list {
 public:
  struct range {
    TopicRef topic;
    std::uint64_t first;
    std::uint64_t last;
    gap_reason reason;
  };

  bool empty() const noexcept { return !ranges_ || ranges_->empty(); }
  std::size_t size() const noexcept { return ranges_ ? ranges_->size() : 0; }

  /// Records that `first`..`last` of `topic` are missing, after every range already recorded for that topic.
  void add_later(const TopicRef& topic, std::uint64_t first, std::uint64_t last, gap_reason reason) {
    if (ranges_) {
      for (range& r : *ranges_) {
        if (r.topic == topic && r.reason == reason && r.last + 1 == first) {
          r.last = last;
          return;
        }
      }
    } else {
      ranges_ = std::make_unique<std::vector<range>>();
    }
    ranges_->push_back(range{topic, first, last, reason});
  }

  /// Moves the ranges of `earlier`, which all come before this list's ranges of the same topic, into this list.
  void absorb_earlier(gap_list&& earlier) {
    if (earlier.empty()) return;
    if (empty()) {
      ranges_ = std::move(earlier.ranges_);
      return;
    }
    std::vector<range> before;  // the earlier ranges that touch none of ours, kept in their order
    for (range& e : *earlier.ranges_) {
      bool merged = false;
      for (range& r : *ranges_) {
        if (r.topic == e.topic && r.reason == e.reason && e.last + 1 == r.first) {
          r.first = e.first;
          merged = true;
          break;
        }
      }
      if (!merged) before.push_back(std::move(e));
    }
    ranges_->insert(ranges_->begin(), std::make_move_iterator(before.begin()), std::make_move_iterator(before.end()));
    earlier.ranges_.reset();
  }

  /// Moves every range of `later`, which all come after this list's ranges of the same topic, into this list.
  void absorb_later(gap_list&& later) {
    if (later.empty()) return;
    for (range& r : *later.ranges_) add_later(r.topic, r.first, r.last, r.reason);
    later.ranges_.reset();
  }

  /// Removes and returns the first range, in the order the ranges of each topic were recorded. Precondition:
  /// `!empty()`.
  range take_front() {
    range r = std::move(ranges_->front());
    ranges_->erase(ranges_->begin());
    if (ranges_->empty()) ranges_.reset();
    return r;
  }

  void clear() noexcept { ranges_.reset(); }

 private:
  std::unique_ptr<std::vector<range>> ranges_;  // null when empty
};

}  // namespace switchboard::pubsub::detail
