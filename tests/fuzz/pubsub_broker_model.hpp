// A checker for the broker, driven by a script of operations (random bytes from libFuzzer or a seeded generator):
// publishes and async publishes on three topics, some with one of two conflation keys, exact and pattern
// subscriptions with every policy, resumes from cursors, partial reads, unsubscribes; and waiting reads
// (`async_read`, as long polling uses them) from cursors, some cancelled while they wait; topics retired
// (`retire_topic`) while in use or not; with retention per topic and a broker-wide retention budget small enough to
// evict across topics all the time. It runs on one io_context, so the moment each subscription starts is known
// exactly, and checks:
//  - per subscriber and topic, messages and gap events cover consecutive sequence numbers exactly once, in order,
//    from where the subscription started; and at the end, once everything is drained, up to the topic's last;
//  - except under `conflate`, where a newer message with the same key takes the queued one out of the queue: there
//    events still come in increasing order, but a number may be skipped (no message, no gap) when it was
//    superseded: a later message of its topic (and numbering) was published with the same non-empty key. Gaps
//    cover the rest, since a gap only ever reports lost messages, and the subscription's `superseded` count is
//    exactly the numbers it skipped; the last number of a topic is never superseded, so the drained subscriber
//    still reaches it;
//  - `wait` subscribers never get a gap; only `disconnect` subscribers are closed, and nothing follows the error;
//  - queues never held more than their limits;
//  - a publish numbers its message one past the topic's last; `would_block` only when a wait subscriber of the
//    topic is full or publishers wait on it;
//  - a read returns, after its cursor, a gap (only if the cursor is older than what is retained) and then
//    consecutive messages of its topic, at most as many as asked, and the cursor after them; a read that waits is
//    answered by the next publish of its topic, or ends with `operation_aborted` only when it was cancelled; every
//    read completes exactly once;
//  - a topic with a message is forgotten only when retired: at once when nothing but pattern subscriptions uses
//    it, else as soon as its last exact subscription or waiting read leaves, unless a message was published to it
//    in between; one without is there exactly while an exact subscription or a waiting read uses it (or a
//    publisher waits), and forgotten once they have left (vacant topics), or at once when a subscription from a
//    cursor ahead of it is refused;
//  - a retired topic numbers from 1 again once forgotten: pattern subscribers get what was queued of the old
//    numbering, then the new one (and readers start again from 0, as a client told the topic is new would).
// `run` returns the first violation found, or an empty string.
#pragma once

#include <switchboard/pubsub/broker.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::pubsub::fuzz {

class broker_model {
 public:
  /// What a run exercised, so that a test can show the checks were not vacuous.
  struct coverage_counts {
    std::uint64_t messages = 0;
    std::uint64_t overflow_gaps = 0;
    std::uint64_t retention_gaps = 0;
    std::uint64_t would_block = 0;
    std::uint64_t disconnects = 0;
    std::uint64_t async_published = 0;
    std::uint64_t read_messages = 0;
    std::uint64_t read_gaps = 0;
    std::uint64_t reads_woken = 0;  // reads that waited, then got a publish
    std::uint64_t reads_cancelled = 0;
    std::uint64_t topics_reclaimed = 0;  // a topic without messages seen gone after it had been there
    std::uint64_t budget_evictions = 0;  // retained messages evicted by `max_retained_bytes`
    std::uint64_t topics_retired = 0;    // topics with messages forgotten after `retire_topic`
    std::uint64_t retirements_deferred = 0;  // `retire_topic` calls that found the topic in use
    std::uint64_t renumbered = 0;        // pattern subscribers that went on from an old numbering to the new
    std::uint64_t superseded = 0;        // numbers a conflate subscriber skipped, superseded by a newer message
  };

  const coverage_counts& coverage() const noexcept { return coverage_; }

  /// Runs the script in `bytes` (pairs of an operation byte and an argument byte), then drains and checks.
  std::string run(std::string_view bytes) {
    for (std::size_t i = 0; i + 1 < bytes.size() && failure_.empty(); i += 2) {
      step(static_cast<std::uint8_t>(bytes[i]), static_cast<std::uint8_t>(bytes[i + 1]));
    }
    if (failure_.empty()) finish();
    cancel_waiting_reads();
    subs_.clear();  // unsubscribe before the broker and io_context go
    return failure_;
  }

 private:
  static constexpr const char* topics[3] = {"ta", "tb", "u"};
  static constexpr std::size_t max_subscribers = 8;
  static constexpr std::size_t max_waiting_publishes = 8;
  static constexpr std::size_t max_readers = 8;

  struct sub_state {
    subscription handle;
    overflow_policy policy;
    queue_limits limits;
    std::vector<std::string> topics;            // topics it receives
    std::map<std::string, std::uint64_t> next;  // per topic, the next sequence number expected
    std::size_t credit = 0;                     // events the consumer will still take
    bool waiting = false;                       // an async_receive is pending
    bool closed = false;
    bool exact = false;                         // a subscription to one topic, not a pattern
    std::uint64_t skipped = 0;                  // numbers skipped as superseded (conflate)
    // Per topic, the last sequence number of each earlier numbering of a retired topic (oldest first): once the
    // subscriber has had everything up to it, the next it expects is 1.
    std::map<std::string, std::deque<std::uint64_t>> numbering_ends;
  };

  // A long-poll client: reads its topic from its cursor, again and again.
  struct reader_state {
    std::string topic;
    std::uint64_t cursor = 0;
    std::size_t max = 1;
    bool reading = false;           // an async_read is pending
    bool parked = false;            // ... and it found nothing, so it waits for a publish
    bool woken = false;             // ... and one came: its answer is on the way
    bool cancel_requested = false;  // its cancellation signal was emitted while it was pending
    bool renumbered = false;        // its topic was forgotten while its answer was on the way: then from 0
    asio::cancellation_signal signal;
  };

  void fail(std::string what) {
    if (failure_.empty()) failure_ = std::move(what);
  }

  void step(std::uint8_t op, std::uint8_t arg) {
    switch (op % 10) {
      case 0: publish(arg); break;
      case 1: async_publish(arg); break;
      case 2: subscribe(arg, false); break;
      case 3: subscribe(arg, true); break;
      case 4: take(arg); break;
      case 5: unsubscribe(arg); break;
      case 6: poll(); break;
      case 7: read(arg); break;
      case 8: cancel_read(arg); break;
      default: retire(topics[arg % 3]); break;
    }
  }

  void poll() {
    ctx_.restart();
    ctx_.poll();
    // Every completion has run: a read still waiting has read all of its topic.
    for (const auto& r : readers_) {
      if (r->parked && !r->cancel_requested && r->cursor < b_.last_sequence(r->topic)) {
        fail(r->topic + ": a waiting read at " + std::to_string(r->cursor) + " missed the publish of " +
             std::to_string(b_.last_sequence(r->topic)));
      }
    }
    check_topics();
  }

  // Whether each topic exists in the broker. Between polls, completions still queued may hold nothing: only a
  // waiting read, a live exact subscription or a waiting publisher does.
  void check_topics() {
    for (const char* topic : topics) {
      const bool exists = b_.stats(topic).has_value();
      bool& existed = existed_[topic];
      std::uint64_t& last = last_seen_[topic];
      // Users: live exact subscriptions (one closed by its `disconnect` policy has let go, its end perhaps still
      // queued) and waiting reads (not those a publish woke, whose answers are on the way).
      bool used = false;
      for (const auto& s : subs_) {
        used = used || (s->exact && s->handle && !s->handle.stats().closed && s->topics[0] == topic);
      }
      for (const auto& r : readers_) used = used || (r->reading && r->parked && !r->woken && r->topic == topic);
      if (!exists && last > 0) {  // a numbered topic was forgotten
        if (!retiring_[topic]) fail(std::string(topic) + ": forgotten with messages, and not retired");
        if (used) fail(std::string(topic) + ": retired, and forgotten while in use");
        renumber(topic);
      }
      last = b_.last_sequence(topic);
      if (last > 0 || waiting_publishes_ > 0) {
        if (retiring_[topic] && !used && waiting_publishes_ == 0) fail(std::string(topic) + ": retired and unused");
        existed = exists;
        continue;
      }
      if (used && !exists) fail(std::string(topic) + ": forgotten while in use");
      if (!used && exists) fail(std::string(topic) + ": vacant, but not forgotten");
      if (existed && !exists) ++coverage_.topics_reclaimed;
      existed = exists;
    }
  }

  // A message was published to `topic`: it is in use again (no longer retired), and its waiting reads are answered
  // (their completions are on the way).
  void published(const std::string& topic) {
    retiring_[topic] = false;
    for (auto& r : readers_) {
      if (r->topic == topic && r->parked) r->woken = true;
    }
  }

  // Retires a topic: forgotten at once when nothing but pattern subscriptions uses it, else when the last user
  // leaves (unless a publish comes first). `check_topics` sees which.
  void retire(const std::string& topic) {
    // Publishes since the last check moved the numbering on: the old numbering ends here, whenever it is forgotten
    // (a publish before then would cancel the retirement).
    last_seen_[topic] = b_.last_sequence(topic);
    const bool had_messages = last_seen_[topic] > 0;
    if (!b_.retire_topic(topic) && b_.stats(topic)) {
      retiring_[topic] = true;
      if (had_messages) ++coverage_.retirements_deferred;
    } else {
      retiring_[topic] = had_messages;  // for check_topics, which clears it
    }
    check_topics();
  }

  // `topic` was forgotten after `retire_topic`: its numbering starts again. Pattern subscribers receiving it will
  // get the rest of the old numbering first; readers start again from 0; async publishes count anew.
  void renumber(const std::string& topic) {
    ++coverage_.topics_retired;
    for (auto& s : subs_) {
      if (s->next.contains(topic)) s->numbering_ends[topic].push_back(last_seen_[topic]);
    }
    for (auto& r : readers_) {
      if (r->topic != topic) continue;
      if (r->reading) r->renumbered = true;  // its answer, of the old numbering, is on the way
      else r->cursor = 0;
    }
    ++numbering_[topic];
    retiring_[topic] = false;
  }

  // Moves `s` on to the next numbering of `topic` once it has had all of the current one.
  static void follow_renumbering(sub_state& s, const std::string& topic, std::uint64_t& next, bool count,
                                 std::uint64_t& renumbered) {
    auto& ends = s.numbering_ends[topic];
    while (!ends.empty() && next == ends.front() + 1) {
      next = 1;
      ends.pop_front();
      if (count) ++renumbered;
    }
  }

  static std::vector<std::string> matching(std::string_view pattern) {
    std::vector<std::string> out;
    for (const char* t : topics) {
      if (glob_match(pattern, t)) out.emplace_back(t);
    }
    return out;
  }

  bool would_have_to_wait(const std::string& topic) {
    if (b_.stats(topic) && b_.stats(topic)->waiting_publishers > 0) return true;
    for (const auto& s : subs_) {
      if (!s->handle || s->closed || s->policy != overflow_policy::wait) continue;
      bool receives = false;
      for (const auto& t : s->topics) receives = receives || t == topic;
      if (receives && s->handle.stats().depth >= s->limits.max_messages) return true;
    }
    return false;
  }

  // The stream of `topic` that `numbering` (numbering_[topic], or an earlier one) numbers: the numbers of a retired
  // topic begin again once it is forgotten.
  static std::string stream(const std::string& topic, std::uint64_t numbering) {
    return topic + "#" + std::to_string(numbering);
  }

  // The conflation key of a publish with argument `arg` to the stream named `in`: (arg >> 2) % 3 picks none or
  // one of two. A key names its stream, as a publisher's should where keys could collide (a pattern subscription
  // compares keys across its topics, and a retired topic made again is another stream): so a message supersedes
  // only an earlier one of its own stream, and keys_ tells which those can be.
  static std::string key_for(std::uint8_t arg, const std::string& in) {
    const int k = (arg >> 2) % 3;
    return k == 0 ? std::string() : in + (k == 1 ? "x" : "y");
  }

  void publish(std::uint8_t arg) {
    const std::string topic = topics[arg % 3];
    const std::string in = stream(topic, numbering_[topic]);
    const std::string key = key_for(arg, in);
    const std::uint64_t before = b_.last_sequence(topic);
    const bool full = would_have_to_wait(topic);
    const publish_result r = b_.publish(topic, {.payload = shared_bytes::copy(topic), .key = key});
    if (r) {
      if (r.sequence != before + 1) fail("publish numbered " + std::to_string(r.sequence) + " after " + std::to_string(before));
      if (full) fail("publish went past a full wait subscriber");
      keys_[in][r.sequence] = key;
      published(topic);
    } else if (r.error == error::would_block) {
      ++coverage_.would_block;
      if (!full) fail("would_block without a full wait subscriber");
      if (b_.last_sequence(topic) != before) fail("would_block used a sequence number");
    } else {
      fail("publish failed: " + r.error.message());
    }
  }

  void async_publish(std::uint8_t arg) {
    if (waiting_publishes_ >= max_waiting_publishes) return;
    ++waiting_publishes_;
    const std::string topic = topics[arg % 3];
    const std::uint64_t before = b_.last_sequence(topic);
    // Numbers count per numbering of the topic (a retired topic starts again at 1; one with a waiting publisher is
    // not forgotten).
    const std::string in = stream(topic, numbering_[topic]);
    std::uint64_t& last = async_last_[in];
    const std::string key = key_for(arg, in);
    // Whether it had to wait, for its completion, which runs at the next poll at the earliest (it is posted).
    bool& waited = waiting_flags_.emplace_back(true);
    b_.async_publish(topic, {.payload = shared_bytes::copy(topic), .key = key},
                     [this, topic, in, key, &last, &waited](std::error_code ec, std::uint64_t seq) {
      --waiting_publishes_;
      if (ec) return fail("async_publish failed: " + ec.message());
      ++coverage_.async_published;
      if (seq <= last) fail("async_publish numbers out of order");
      last = seq;
      // Its number is known only now, perhaps after subscribers skipped it: skips are checked in `finish`.
      keys_[in][seq] = key;
      if (waited) published(topic);  // just now
    });
    // Published at once (its completion still to come): the topic is in use again now.
    waited = b_.last_sequence(topic) == before;
    if (!waited) published(topic);
  }

  void subscribe(std::uint8_t arg, bool pattern) {
    std::erase_if(subs_, [](const auto& s) { return !s->handle && !s->waiting; });
    if (subs_.size() >= max_subscribers) return;
    static constexpr overflow_policy policies[5] = {overflow_policy::drop_oldest, overflow_policy::drop_newest,
                                                    overflow_policy::disconnect, overflow_policy::wait,
                                                    overflow_policy::conflate};
    auto s = std::make_unique<sub_state>();
    s->policy = policies[arg % 5];
    s->limits = queue_limits{.max_messages = 1u + (arg >> 2) % 4, .max_bytes = 1 << 20, .policy = s->policy};
    subscription_options o{.limits = s->limits};
    if (pattern) {
      const char* p = (arg & 0x40) ? "t*" : "*";
      s->topics = matching(p);
      for (const auto& t : s->topics) s->next[t] = b_.last_sequence(t) + 1;
      s->handle = b_.subscribe_pattern(p, o);
    } else {
      const std::string topic = topics[(arg >> 4) % 3];
      const std::uint64_t last = b_.last_sequence(topic);
      s->topics = {topic};
      s->exact = true;
      s->next[topic] = last + 1;
      if ((arg & 0x80) && last > 0) {  // resume from a cursor
        o.from = (arg >> 1) % (last + 1);
        s->next[topic] = *o.from + 1;
      } else if (arg & 0x80) {  // from a cursor ahead of the topic: refused
        o.from = last + 1;
        std::error_code ec;
        if (b_.subscribe(topic, o, ec) || ec != error::cursor_ahead) fail(topic + ": a subscription from ahead");
        return check_topics();
      }
      s->handle = b_.subscribe(topic, o);
    }
    subs_.push_back(std::move(s));
  }

  void arm(sub_state& s) {
    if (s.waiting || s.credit == 0 || !s.handle || s.closed) return;
    s.waiting = true;
    s.handle.async_receive([this, &s](std::error_code ec, event e) {
      s.waiting = false;
      if (ec == asio::error::operation_aborted) return;  // unsubscribed
      --s.credit;
      check(s, ec, e);
      arm(s);
    });
  }

  void take(std::uint8_t arg) {
    if (subs_.empty()) return;
    sub_state& s = *subs_[arg % subs_.size()];
    s.credit += 1u + (arg >> 4);
    arm(s);
    poll();
  }

  void unsubscribe(std::uint8_t arg) {
    if (subs_.empty()) return;
    subs_[arg % subs_.size()]->handle.unsubscribe();
    poll();
  }

  // Starts reader arg % max_readers (made on first use: a topic, and the newest cursor or an older one) unless it
  // is reading already.
  void read(std::uint8_t arg) {
    const std::size_t index = arg % max_readers;
    if (index >= readers_.size()) {
      auto r = std::make_unique<reader_state>();
      r->topic = topics[(arg >> 3) % 3];
      const std::uint64_t last = b_.last_sequence(r->topic);
      r->cursor = (arg & 0x80) ? (arg >> 1) % (last + 1) : last;
      r->max = 1u + (arg >> 5) % 3;
      readers_.push_back(std::move(r));
      return read(static_cast<std::uint8_t>(readers_.size() - 1));
    }
    reader_state& r = *readers_[index];
    if (r.reading) return;
    r.reading = true;
    r.cancel_requested = false;
    const std::uint64_t last = b_.last_sequence(r.topic);
    b_.async_read(r.topic, r.cursor, r.max,
                  asio::bind_cancellation_slot(r.signal.slot(), [this, &r](std::error_code ec, read_result result) {
                    check(r, ec, result);
                  }));
    // Nothing after the cursor: the read waits (a read that found something has its completion posted, so
    // `reading` is still set here either way).
    r.parked = r.cursor == last;
  }

  void cancel_read(std::uint8_t arg) {
    if (readers_.empty()) return;
    reader_state& r = *readers_[arg % readers_.size()];
    if (!r.reading) return;
    r.cancel_requested = true;
    r.signal.emit(asio::cancellation_type::terminal);
    poll();
  }

  void cancel_waiting_reads() {
    for (auto& r : readers_) {
      if (r->reading) {
        r->cancel_requested = true;
        r->signal.emit(asio::cancellation_type::terminal);
      }
    }
    ctx_.restart();
    ctx_.poll();
    for (const auto& r : readers_) {
      if (r->reading) fail(r->topic + ": a cancelled read never completed");
    }
  }

  void check(reader_state& r, std::error_code ec, const read_result& result) {
    if (!r.reading) return fail(r.topic + ": a read completed twice");
    const bool was_parked = std::exchange(r.parked, false);
    r.woken = false;
    r.reading = false;
    if (ec == asio::error::operation_aborted) {
      if (!r.cancel_requested) fail(r.topic + ": a read aborted that nobody cancelled");
      if (!result.messages.empty() || result.missed) fail(r.topic + ": an aborted read with messages");
      if (std::exchange(r.renumbered, false)) r.cursor = 0;
      ++coverage_.reads_cancelled;
      return;
    }
    if (ec || result.error) return fail(r.topic + ": read failed: " + (ec ? ec : result.error).message());
    std::uint64_t next = r.cursor + 1;
    if (result.missed) {
      if (result.missed->first != next || result.missed->last < next) {
        fail(r.topic + ": read gap " + std::to_string(result.missed->first) + "-" +
             std::to_string(result.missed->last) + " after cursor " + std::to_string(r.cursor));
      }
      next = result.missed->last + 1;
      ++coverage_.read_gaps;
    }
    if (result.messages.size() > r.max) fail(r.topic + ": a read returned more than asked");
    if (result.messages.empty() && !result.missed) fail(r.topic + ": a read completed with nothing");
    for (const auto& m : result.messages) {
      if (m.topic() != r.topic || m.sequence() != next) {
        fail(r.topic + ": read " + std::string(m.topic()) + " " + std::to_string(m.sequence()) + " where " +
             std::to_string(next) + " was next");
      }
      ++next;
    }
    if (result.next_cursor != next - 1) fail(r.topic + ": read's next cursor " + std::to_string(result.next_cursor));
    r.cursor = std::exchange(r.renumbered, false) ? 0 : next - 1;
    coverage_.read_messages += result.messages.size();
    if (was_parked) ++coverage_.reads_woken;
  }

  void check(sub_state& s, std::error_code ec, const event& e) {
    if (s.closed) return fail("an event after the close");
    if (ec) {
      if (s.policy != overflow_policy::disconnect || ec != switchboard::error::overflow_disconnect) {
        return fail("unexpected close: " + ec.message());
      }
      s.closed = true;
      ++coverage_.disconnects;
      return;
    }
    const std::string topic = e.is_gap() ? e.gap().topic : std::string(e.message().topic());
    const auto next = s.next.find(topic);
    if (next == s.next.end()) return fail("an event of a topic not subscribed: " + topic);
    follow_renumbering(s, topic, next->second, true, coverage_.renumbered);
    // The first number this event accounts for: under conflate, those before it since the last event were
    // superseded (checked in `finish`, once every publish's number is known); under any other policy it is the next.
    const std::uint64_t first = e.is_gap() ? e.gap().first : e.message().sequence();
    if (s.policy == overflow_policy::conflate && first > next->second) {
      const std::uint64_t numbering = numbering_[topic] - s.numbering_ends[topic].size();
      skips_.push_back(skip{stream(topic, numbering), next->second, first - 1});
      s.skipped += first - next->second;
      coverage_.superseded += first - next->second;
    } else if (first != next->second) {
      fail(topic + (e.is_gap() ? ": gap from " : ": message ") + std::to_string(first) + " where " +
           std::to_string(next->second) + " was next");
    }
    if (e.is_gap()) {
      if (s.policy == overflow_policy::wait && e.gap().reason == gap_reason::overflow) fail("a wait subscriber lost messages");
      if (e.gap().last < e.gap().first) {
        fail(topic + ": gap " + std::to_string(e.gap().first) + "-" + std::to_string(e.gap().last));
      }
      next->second = e.gap().last + 1;
      ++(e.gap().reason == gap_reason::overflow ? coverage_.overflow_gaps : coverage_.retention_gaps);
    } else {
      ++coverage_.messages;
      next->second = e.message().sequence() + 1;
    }
  }

  // Whether `sequence` of the stream `in` was superseded: published with a key, and a later message of the stream
  // with the same key was published too (all of them, once every publish has completed).
  bool superseded(const std::string& in, std::uint64_t sequence) {
    const std::map<std::uint64_t, std::string>& keys = keys_[in];
    const auto it = keys.find(sequence);
    if (it == keys.end() || it->second.empty()) return false;
    for (auto later = std::next(it); later != keys.end(); ++later) {
      if (later->second == it->second) return true;
    }
    return false;
  }

  void finish() {
    coverage_.budget_evictions = b_.stats().retained_evicted;
    for (auto& s : subs_) s->credit = 1'000'000;
    // Drain until nothing moves: waiting publishers go on as wait subscribers make room.
    for (int round = 0; round < 1000 && failure_.empty(); ++round) {
      for (auto& s : subs_) arm(*s);
      ctx_.restart();
      if (ctx_.poll() == 0 && waiting_publishes_ == 0) break;
    }
    if (waiting_publishes_ != 0) fail("publishers still waiting after every subscriber drained");
    for (const auto& s : subs_) {
      if (!s->handle) continue;
      const subscription_stats st = s->handle.stats();
      if (st.peak_depth > s->limits.max_messages) fail("a queue held more than its limit");
      if (st.superseded != s->skipped) {
        fail("a subscription skipped " + std::to_string(s->skipped) + " numbers and superseded " +
             std::to_string(st.superseded));
      }
      if (s->closed) continue;
      for (auto& [topic, next] : s->next) {
        follow_renumbering(*s, topic, next, false, coverage_.renumbered);
        if (next != b_.last_sequence(topic) + 1) {
          fail(topic + ": ended at " + std::to_string(next - 1) + " of " + std::to_string(b_.last_sequence(topic)));
        }
      }
    }
    for (const skip& k : skips_) {
      for (std::uint64_t n = k.first; n <= k.last; ++n) {
        if (!superseded(k.stream, n)) fail(k.stream + ": " + std::to_string(n) + " skipped, but not superseded");
      }
    }
  }

  // Numbers first..last of a stream that a conflate subscriber skipped: each must have been superseded.
  struct skip {
    std::string stream;
    std::uint64_t first;
    std::uint64_t last;
  };

  asio::io_context ctx_;
  std::vector<std::unique_ptr<reader_state>> readers_;  // before the broker: its waiting reads hold their slots
  // Retention of 4 messages per topic, and 10 bytes over every topic (a payload is its topic's name, 1 or 2 bytes,
  // and a key, when there is one, 4 or more): the broker-wide budget evicts too, across topics, whenever its
  // trim runs.
  broker b_{ctx_, {.max_retained_bytes = 10, .retention = {.max_messages = 4}}};
  std::vector<std::unique_ptr<sub_state>> subs_;
  std::map<std::string, std::uint64_t> async_last_;  // per stream, the last number of an async publish
  std::map<std::string, std::map<std::uint64_t, std::string>> keys_;  // per stream and number, the message's key
  std::vector<skip> skips_;
  std::size_t waiting_publishes_ = 0;
  std::map<std::string, bool> existed_;  // per topic, whether it existed at the last check
  std::map<std::string, std::uint64_t> last_seen_;  // per topic, its last sequence number at the last check
  std::map<std::string, bool> retiring_;            // per topic: retired, to be forgotten when its users leave
  std::map<std::string, std::uint64_t> numbering_;  // per topic, how many times it was forgotten after a retire
  std::deque<bool> waiting_flags_;  // per async publish: whether it had to wait (stable addresses for completions)
  std::string failure_;
  coverage_counts coverage_;
};

}  // namespace switchboard::pubsub::fuzz
