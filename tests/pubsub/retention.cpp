// The retained log of a topic on its own: count, byte and age limits, with the clock passed in.
#include <switchboard/pubsub/retention.hpp>

#include "support/catch.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using switchboard::pubsub::basic_retained_log;
using switchboard::pubsub::retention_budget;
using switchboard::pubsub::retention_limits;

namespace {

// A minimal message: a sequence number and a size.
struct numbered {
  std::uint64_t seq;
  std::size_t bytes;
  std::uint64_t sequence() const noexcept { return seq; }
  std::size_t size() const noexcept { return bytes; }
};

using log_type = basic_retained_log<numbered>;
const auto t0 = std::chrono::steady_clock::time_point{} + 1h;

// The documented semantics on a std::deque: every limit applies, the oldest go first, the newest message stays
// even when it alone is over `max_bytes`, and a message is evicted by age only once it is strictly older than
// `max_age`. Written as "keep the longest suffix that fits" rather than as the log's loops of pops.
class reference_log {
 public:
  struct entry {
    std::uint64_t seq;
    std::size_t bytes;
    std::chrono::steady_clock::time_point at;
  };

  explicit reference_log(retention_limits limits) : limits_(limits) {}

  const retention_limits& limits() const { return limits_; }
  const std::deque<entry>& entries() const { return entries_; }
  std::size_t bytes() const {
    std::size_t n = 0;
    for (const entry& e : entries_) n += e.bytes;
    return n;
  }

  // Returns how many it evicted.
  std::size_t append(const entry& e, std::chrono::steady_clock::time_point now) {
    if (limits_.off()) return 0;
    entries_.push_back(e);
    return trim(now);
  }
  std::size_t set_limits(retention_limits limits, std::chrono::steady_clock::time_point now) {
    limits_ = limits;
    return trim(now);
  }
  std::size_t trim(std::chrono::steady_clock::time_point now) {
    std::size_t keep = 0;  // the longest suffix within every limit
    std::size_t suffix_bytes = 0;
    while (keep < entries_.size()) {
      const entry& e = entries_[entries_.size() - 1 - keep];
      if (keep + 1 > limits_.max_messages) break;
      if (keep + 1 > 1 && suffix_bytes + e.bytes > limits_.max_bytes) break;
      if (limits_.max_age > std::chrono::steady_clock::duration::zero() && now - e.at > limits_.max_age) break;
      suffix_bytes += e.bytes;
      ++keep;
    }
    const std::size_t evicted = entries_.size() - keep;
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(evicted));
    return evicted;
  }
  void clear() { entries_.clear(); }
  void evict_oldest() { entries_.pop_front(); }

 private:
  retention_limits limits_;
  std::deque<entry> entries_;
};

}  // namespace

TEST_CASE("retained log: off by default", "[pubsub][retention]") {
  log_type log;
  CHECK(log.limits().off());
  log.append({1, 10}, t0);
  CHECK(log.empty());
  CHECK(log.first_sequence() == 0);
  CHECK(log.last_sequence() == 0);
}

TEST_CASE("retained log: keeps the newest within every limit", "[pubsub][retention]") {
  SECTION("count") {
    log_type log({.max_messages = 3});
    for (std::uint64_t i = 1; i <= 5; ++i) log.append({i, 1}, t0);
    CHECK(log.size() == 3);
    CHECK(log.first_sequence() == 3);
    CHECK(log.last_sequence() == 5);
    CHECK(log.at_sequence(4).seq == 4);
    CHECK(log.back().seq == 5);
    CHECK(log.bytes() == 3);
  }

  SECTION("bytes") {
    log_type log({.max_messages = 100, .max_bytes = 25});
    for (std::uint64_t i = 1; i <= 5; ++i) log.append({i, 10}, t0);
    CHECK(log.size() == 2);
    CHECK(log.bytes() == 20);
    CHECK(log.first_sequence() == 4);
  }

  SECTION("the newest message even if larger than the byte limit alone") {
    log_type log({.max_messages = 100, .max_bytes = 5});
    log.append({1, 3}, t0);
    log.append({2, 50}, t0);
    CHECK(log.size() == 1);
    CHECK(log.first_sequence() == 2);
  }

  SECTION("age") {
    log_type log({.max_messages = 100, .max_age = 10s});
    log.append({1, 1}, t0);
    log.append({2, 1}, t0 + 5s);
    log.append({3, 1}, t0 + 9s);
    CHECK(log.size() == 3);
    log.trim(t0 + 12s);  // 1 is 12 s old
    CHECK(log.first_sequence() == 2);
    log.trim(t0 + 10s + 5s);  // exactly 10 s old is still kept
    CHECK(log.first_sequence() == 2);
    log.trim(t0 + 30s);
    CHECK(log.empty());
    log.append({4, 1}, t0 + 30s);  // numbering goes on after an empty log
    CHECK(log.first_sequence() == 4);
  }

  SECTION("changing the limits evicts at once") {
    log_type log({.max_messages = 10});
    for (std::uint64_t i = 1; i <= 10; ++i) log.append({i, 1}, t0);
    log.set_limits({.max_messages = 4}, t0);
    CHECK(log.size() == 4);
    CHECK(log.first_sequence() == 7);
    log.set_limits({}, t0);  // off
    CHECK(log.empty());
  }
}

TEST_CASE("retained log: random appends, trims and reads agree with a model", "[pubsub][retention]") {
  const unsigned seed = GENERATE(range(1u, 41u));
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  auto pick = [&rng](std::size_t lo, std::size_t hi) { return std::uniform_int_distribution<std::size_t>(lo, hi)(rng); };
  // Small limits, so that each of them is reached often; sometimes off, sometimes a byte limit of 0 (only the
  // newest then stays), sometimes no age limit. Ages in seconds, with the clock moving 0 to 3 s a step, so that
  // messages exactly `max_age` old (kept) are common.
  auto random_limits = [&] {
    return retention_limits{.max_messages = pick(0, 9) == 0 ? 0 : pick(1, 8),
                            .max_bytes = pick(0, 9) == 0 ? 0 : pick(1, 40),
                            .max_age = pick(0, 2) == 0 ? 0s : std::chrono::seconds(pick(1, 12))};
  };
  // Two logs sharing a small budget, as two topics of one broker.
  const auto budget = std::make_shared<retention_budget>(pick(10, 60));
  INFO("budget " << budget->limit);
  std::unique_ptr<log_type> logs[2];
  std::vector<reference_log> models;
  std::uint64_t published[2] = {0, 0};  // each topic's last sequence number
  for (int i = 0; i < 2; ++i) {
    const retention_limits limits = random_limits();
    logs[i] = std::make_unique<log_type>(limits, budget);
    models.emplace_back(limits);
  }
  std::uint64_t evicted_for_budget = 0;
  bool trim_pending = false;  // the model of `retention_budget::trim_pending`
  auto now = t0;

  for (int step = 0; step < 1500; ++step) {
    INFO("step " << step);
    const std::size_t which = pick(0, 1);
    log_type& log = *logs[which];
    reference_log& model = models[which];
    INFO("log " << which << ": max_messages " << model.limits().max_messages << ", max_bytes "
                << model.limits().max_bytes << ", max_age " << std::chrono::duration_cast<std::chrono::seconds>(
                                                                    model.limits().max_age).count() << " s");
    now += std::chrono::seconds(pick(0, 3) == 0 ? pick(1, 3) : 0);
    bool trimmed_now = false;  // the operation evicted by age at `now`: every message is then within max_age
    const std::size_t roll = pick(0, 99);
    if (roll < 50) {
      // A publish: the next number, or (when nothing is retained, as after a clear) a few numbers later. Sizes
      // mostly small, some larger than any byte limit.
      if (model.entries().empty()) published[which] += pick(0, 3) == 0 ? pick(1, 5) : 0;
      const numbered m{++published[which], pick(0, 9) == 0 ? pick(0, 90) : pick(0, 12)};
      INFO("append " << m.seq << " (" << m.bytes << " bytes)");
      model.append({m.seq, m.bytes, now}, now);
      log.append(m, now);
      trimmed_now = true;
    } else if (roll < 65) {
      log.trim(now);
      model.trim(now);
      trimmed_now = true;
    } else if (roll < 72) {
      const retention_limits limits = random_limits();
      log.set_limits(limits, now);
      model.set_limits(limits, now);
      trimmed_now = true;
    } else if (roll < 75) {
      log.clear();
      model.clear();
    } else if (roll < 80) {
      if (model.entries().empty()) continue;
      log.evict_oldest_for_budget();
      model.evict_oldest();
      ++evicted_for_budget;
    } else if (roll < 85) {
      // The broker asks for one trim at a time: true only when over the budget and not already asked.
      std::size_t used = 0;
      for (const reference_log& m : models) used += m.bytes();
      const bool expected = used > budget->limit && !trim_pending;
      CHECK(log.claim_budget_trim() == expected);
      if (expected) trim_pending = true;
      if (pick(0, 1) == 0) {
        // The trim has run (what it evicted, if anything, is in the other steps): it asks for another exactly when
        // the logs are still over the budget, since appends meanwhile found it pending and asked for none.
        trim_pending = used > budget->limit;
        CHECK(budget->finish_trim() == trim_pending);
      }
    } else if (roll < 88) {
      // The topic goes away and is made again: its bytes leave the budget, and the new log starts empty (the
      // numbering goes on, as for a topic kept by the application).
      const retention_limits limits = random_limits();
      logs[which].reset();
      logs[which] = std::make_unique<log_type>(limits, budget);
      models[which] = reference_log(limits);
    } else {
      // A reader resuming after a random cursor (0, one it missed, the oldest retained, one retained, the newest,
      // one ahead): the next message it gets from the log is at_sequence(cursor + 1) when that is retained,
      // otherwise a gap up to first_sequence() - 1 (or to the newest number, if nothing after it is retained).
      const std::uint64_t first = model.entries().empty() ? 0 : model.entries().front().seq;
      const std::uint64_t last = model.entries().empty() ? 0 : model.entries().back().seq;
      const std::uint64_t candidates[] = {0, first > 1 ? pick(0, first - 2) : 0, first == 0 ? 0 : first - 1,
                                          first == 0 ? 0 : pick(first - 1, last), last,
                                          published[which], published[which] + 1 + pick(0, 3)};
      const std::uint64_t after = candidates[pick(0, std::size(candidates) - 1)];
      INFO("read after " << after);
      const std::size_t max = pick(0, 10);
      std::uint64_t cursor = after;
      std::vector<std::uint64_t> got;
      bool gap = false;
      while (cursor < published[which] && got.size() < max) {
        if (!log.empty() && cursor + 1 >= log.first_sequence() && cursor + 1 <= log.last_sequence()) {
          const numbered& m = log.at_sequence(cursor + 1);
          REQUIRE(m.seq == cursor + 1);
          got.push_back(m.seq);
          ++cursor;
        } else {
          REQUIRE_FALSE(gap);  // one gap at most, before the messages
          REQUIRE(got.empty());
          gap = true;
          cursor = !log.empty() && log.first_sequence() > cursor + 1 ? log.first_sequence() - 1 : published[which];
        }
      }
      std::vector<std::uint64_t> expected;
      bool expected_gap = false;
      for (std::uint64_t s = after + 1; s <= published[which] && expected.size() < max; ++s) {
        const auto it = std::find_if(model.entries().begin(), model.entries().end(),
                                     [s](const reference_log::entry& e) { return e.seq == s; });
        if (it == model.entries().end()) {
          expected_gap = true;
        } else {
          expected.push_back(s);
        }
      }
      CHECK(got == expected);
      if (max > 0 && after < published[which]) CHECK(gap == expected_gap);
    }

    for (int i = 0; i < 2; ++i) {
      INFO("checking log " << i);
      const log_type& l = *logs[i];
      const reference_log& m = models[i];
      const auto& entries = m.entries();
      REQUIRE(l.size() == entries.size());
      CHECK(l.empty() == entries.empty());
      CHECK(l.bytes() == m.bytes());
      CHECK(l.first_sequence() == (entries.empty() ? 0 : entries.front().seq));
      CHECK(l.last_sequence() == (entries.empty() ? 0 : entries.back().seq));
      for (const reference_log::entry& e : entries) {
        REQUIRE(l.at_sequence(e.seq).seq == e.seq);  // also: consecutive numbers (at_sequence indexes by them)
        CHECK(l.at_sequence(e.seq).bytes == e.bytes);
      }
      if (!entries.empty()) {
        CHECK(l.back().seq == entries.back().seq);
        CHECK(l.oldest_published_at() == entries.front().at);
      }
      // The bounds, apart from the model: count, bytes (but the newest message), and age right after a trim.
      const retention_limits& limits = l.limits();
      if (limits.off()) CHECK(l.empty());
      CHECK(l.size() <= limits.max_messages);
      CHECK((l.bytes() <= limits.max_bytes || l.size() == 1));
      if (i == static_cast<int>(which) && trimmed_now && !l.empty() && limits.max_age > 0s) {
        CHECK(now - l.oldest_published_at() <= limits.max_age);
      }
    }
    CHECK(budget->used.load() == models[0].bytes() + models[1].bytes());
    CHECK(budget->evicted.load() == evicted_for_budget);
    CHECK(budget->trim_pending.load() == trim_pending);
    CHECK(budget->exceeded() == (budget->used.load() > budget->limit));
  }
  logs[0].reset();
  logs[1].reset();
  CHECK(budget->used.load() == 0);  // every byte given back
}
