// Retention and cursors (DESIGN promise 4): resuming a subscription from a sequence number (replay, then live,
// with nothing missed or repeated at the switch), gap events for what is no longer retained, and the polling
// reads (`read`, `latest`, `async_read`).
#include <switchboard/pubsub/broker.hpp>

#include "pubsub/broker_support.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/strand.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard::pubsub;
using switchboard::overflow_policy;
using switchboard::queue_limits;
using switchboard::pubsub::test::numbered;
using switchboard::pubsub::test::recorder;
using switchboard::pubsub::test::text;
using switchboard::test::poll;
using switchboard::test::run_until;

namespace {

using strings = std::vector<std::string>;

void publish_numbered(broker& b, std::string_view topic, int first, int last) {
  for (int i = first; i <= last; ++i) b.publish(topic, text("m" + std::to_string(i)));
}

strings concat(strings a, const strings& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("replay: resume after a cursor, then live", "[pubsub][broker][replay]") {
  asio::io_context ctx;
  broker b(ctx, {.retention = {.max_messages = 4}});
  publish_numbered(b, "t", 1, 6);  // retains 3..6
  recorder r;

  SECTION("from a retained cursor") {
    auto sub = b.subscribe("t", {.from = 4, .on_event = r.callback()});
    publish_numbered(b, "t", 7, 8);
    poll(ctx);
    CHECK(r.log == numbered("t", 5, 8, "m"));
    CHECK(sub.stats().delivered == 4);
  }

  SECTION("from a cursor older than what is retained: a gap first") {
    auto sub = b.subscribe("t", {.from = 1, .on_event = r.callback()});
    poll(ctx);
    CHECK(r.log == concat({"t gap 2-2 retention"}, numbered("t", 3, 6, "m")));
    CHECK(sub.stats().gaps == 1);
    CHECK(sub.stats().missed == 1);
  }

  SECTION("from 0: everything retained") {
    auto sub = b.subscribe("t", {.from = 0, .on_event = r.callback()});
    poll(ctx);
    CHECK(r.log == concat({"t gap 1-2 retention"}, numbered("t", 3, 6, "m")));
  }

  SECTION("from the last sequence number: live only") {
    auto sub = b.subscribe("t", {.from = 6, .on_event = r.callback()});
    publish_numbered(b, "t", 7, 7);
    poll(ctx);
    CHECK(r.log == strings{"t#7=m7"});
  }

  SECTION("from a cursor past the last sequence number: an error") {
    std::error_code ec;
    auto sub = b.subscribe("t", {.from = 7}, ec);
    CHECK(ec == error::cursor_ahead);
    CHECK_FALSE(sub);
    CHECK_THROWS_AS(b.subscribe("new-topic", {.from = 1}), std::system_error);
  }

  SECTION("with async_receive") {
    auto sub = b.subscribe("t", {.from = 2});
    publish_numbered(b, "t", 7, 7);  // evicts 3 before the replay reads it
    strings got;
    std::function<void(std::error_code, event)> next = [&](std::error_code ec, event e) {
      got.push_back(switchboard::pubsub::test::describe(ec, e));
      if (got.size() < 5) sub.async_receive(next);
    };
    sub.async_receive(next);
    CHECK(run_until(ctx, [&] { return got.size() == 5; }));
    CHECK(got == concat({"t gap 3-3 retention"}, numbered("t", 4, 7, "m")));
  }

  SECTION("the replay is not bounded by the subscriber's queue") {
    b.set_retention("t", {.max_messages = 1000});
    publish_numbered(b, "t", 7, 300);
    auto sub = b.subscribe("t", {.limits = queue_limits{.max_messages = 4, .policy = overflow_policy::drop_oldest},
                                 .from = 2,
                                 .on_event = r.callback()});
    poll(ctx);
    CHECK(r.log == numbered("t", 3, 300, "m"));
    CHECK(sub.stats().dropped == 0);
  }

  SECTION("messages evicted while replaying become a gap") {
    auto sub = b.subscribe("t", {.from = 2, .on_event = r.callback()});
    publish_numbered(b, "t", 7, 12);  // retains 9..12 now; the replay (3..6) has not started
    poll(ctx);
    // Live messages 7..12 were queued as they came; the replay's part is no longer retained.
    CHECK(r.log == concat({"t gap 3-6 retention"}, numbered("t", 7, 12, "m")));
  }
}

TEST_CASE("replay: retention off, rules and per-topic settings", "[pubsub][broker][replay]") {
  asio::io_context ctx;
  broker b(ctx, {.retention_rules = {{"chat.*", {.max_messages = 2}}}});
  publish_numbered(b, "t", 1, 3);
  publish_numbered(b, "chat.1", 1, 3);
  recorder r;

  SECTION("without retention a cursor resumes with a gap") {
    auto sub = b.subscribe("t", {.from = 1, .on_event = r.callback()});
    publish_numbered(b, "t", 4, 4);
    poll(ctx);
    CHECK(r.log == strings{"t gap 2-3 retention", "t#4=m4"});
    CHECK_FALSE(b.latest("t"));
    CHECK(b.stats("t")->retained == 0);
  }

  SECTION("a rule gives matching topics their retention") {
    CHECK(b.stats("chat.1")->retained == 2);
    CHECK(b.latest("chat.1")->data() == "m3");
  }

  SECTION("set_retention changes one topic") {
    b.set_retention("t", {.max_messages = 10});
    publish_numbered(b, "t", 4, 5);
    CHECK(b.stats("t")->retained == 2);
    auto sub = b.subscribe("t", {.from = 0, .on_event = r.callback()});
    poll(ctx);
    CHECK(r.log == strings{"t gap 1-3 retention", "t#4=m4", "t#5=m5"});
  }
}

TEST_CASE("replay: concurrent publishers, no message missed or repeated at the switch",
          "[pubsub][broker][replay][threads]") {
  // Publishers run on other threads while subscribers resume from cursors; each subscriber must then see every
  // sequence number from its cursor + 1 to the end exactly once, in order, without a gap, and each publisher's
  // messages in the order it published them.
  constexpr int publishers = 2;
  constexpr int per_publisher = 5000;
  constexpr std::uint64_t before = 500;
  constexpr std::uint64_t last = before + publishers * per_publisher;

  struct seen {
    std::mutex mutex;
    std::condition_variable done;
    std::vector<std::uint64_t> sequences;
    int gaps = 0;
    std::map<int, int> next_per_publisher;  // publisher -> index it should publish next
    bool in_order = true;
  };

  asio::io_context ctx;
  auto work = asio::make_work_guard(ctx);
  std::thread consumer([&] { ctx.run(); });
  {
    broker b(ctx, {.retention = {.max_messages = 100'000, .max_bytes = 64 << 20}});
    publish_numbered(b, "t", 1, static_cast<int>(before));
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int p = 0; p < publishers; ++p) {
      threads.emplace_back([&, p] {
        while (!go) std::this_thread::yield();
        for (int i = 0; i < per_publisher; ++i) b.publish("t", text(std::to_string(p) + ":" + std::to_string(i)));
      });
    }
    const std::vector<std::uint64_t> cursors{0, 100, 450, 499};
    std::vector<std::unique_ptr<seen>> results;
    std::vector<subscription> subs;
    go = true;
    for (const std::uint64_t from : cursors) {
      results.push_back(std::make_unique<seen>());
      seen& s = *results.back();
      subs.push_back(b.subscribe(
          "t", {.limits = queue_limits{.max_messages = 1'000'000, .max_bytes = std::size_t{1} << 30},
                .from = from,
                .on_event = [&s](std::error_code, const event& e) {
                  const std::lock_guard lock(s.mutex);
                  if (e.is_gap()) {
                    ++s.gaps;
                    return;
                  }
                  s.sequences.push_back(e.message().sequence());
                  const std::string_view data = e.message().data();
                  if (data[0] != 'm') {  // published by a thread: "<publisher>:<index>"
                    const int p = data[0] - '0';
                    const int i = std::stoi(std::string(data.substr(2)));
                    int& next = s.next_per_publisher[p];
                    if (i != next) s.in_order = false;
                    next = i + 1;
                  }
                  if (e.message().sequence() == last) s.done.notify_all();
                }}));
    }
    for (auto& t : threads) t.join();
    REQUIRE(b.last_sequence("t") == last);
    for (std::size_t k = 0; k < cursors.size(); ++k) {
      seen& s = *results[k];
      std::unique_lock lock(s.mutex);
      REQUIRE(s.done.wait_for(lock, 30s, [&] { return !s.sequences.empty() && s.sequences.back() == last; }));
      INFO("cursor " << cursors[k]);
      CHECK(s.gaps == 0);
      CHECK(s.in_order);
      CHECK(s.sequences.size() == last - cursors[k]);
      bool consecutive = true;
      for (std::size_t i = 0; i < s.sequences.size(); ++i) consecutive = consecutive && s.sequences[i] == cursors[k] + 1 + i;
      CHECK(consecutive);
    }
  }
  work.reset();
  consumer.join();
}

TEST_CASE("read: what a topic retains after a cursor", "[pubsub][broker][read]") {
  asio::io_context ctx;
  broker b(ctx, {.retention = {.max_messages = 3}});
  publish_numbered(b, "t", 1, 5);  // retains 3..5

  const auto sequences = [](const read_result& r) {
    std::vector<std::uint64_t> out;
    for (const message& m : r.messages) out.push_back(m.sequence());
    return out;
  };

  SECTION("from the start: a gap, then what is retained") {
    const read_result r = b.read("t", 0, 10);
    CHECK_FALSE(r.error);
    REQUIRE(r.missed);
    CHECK(*r.missed == gap{"t", 1, 2, gap_reason::retention});
    CHECK(sequences(r) == std::vector<std::uint64_t>{3, 4, 5});
    CHECK(r.last_sequence == 5);
    CHECK(r.next_cursor == 5);
  }

  SECTION("at most `max`") {
    const read_result r = b.read("t", 0, 2);
    CHECK(r.missed);
    CHECK(sequences(r) == std::vector<std::uint64_t>{3, 4});
    CHECK(r.next_cursor == 4);
    const read_result rest = b.read("t", r.next_cursor, 2);
    CHECK_FALSE(rest.missed);
    CHECK(sequences(rest) == std::vector<std::uint64_t>{5});
  }

  SECTION("caught up") {
    const read_result r = b.read("t", 5, 10);
    CHECK_FALSE(r.error);
    CHECK_FALSE(r.missed);
    CHECK(r.messages.empty());
    CHECK(r.next_cursor == 5);
  }

  SECTION("a cursor from the future") {
    CHECK(b.read("t", 6, 10).error == error::cursor_ahead);
    CHECK(b.read("unknown", 1, 10).error == error::cursor_ahead);
    CHECK_FALSE(b.read("unknown", 0, 10).error);
  }

  SECTION("latest") {
    REQUIRE(b.latest("t"));
    CHECK(b.latest("t")->sequence() == 5);
    CHECK_FALSE(b.latest("unknown"));
  }
}

TEST_CASE("async_read: long polling", "[pubsub][broker][read]") {
  asio::io_context ctx;
  std::optional<std::error_code> ec;
  read_result result;
  const auto store = [&](std::error_code e, read_result r) {
    ec = e;
    result = std::move(r);
  };

  SECTION("completes at once when something follows the cursor") {
    broker b(ctx, {.retention = {.max_messages = 10}});
    publish_numbered(b, "t", 1, 3);
    b.async_read("t", 1, 10, store);
    REQUIRE(run_until(ctx, [&] { return ec.has_value(); }));
    CHECK_FALSE(*ec);
    CHECK(result.messages.size() == 2);
  }

  SECTION("waits for the next message, retained or not") {
    for (const std::size_t retained : {0, 10}) {
      ec.reset();
      broker b(ctx, {.retention = {.max_messages = retained}});
      publish_numbered(b, "t", 1, 3);
      b.async_read("t", 3, 10, store);
      poll(ctx);
      CHECK_FALSE(ec);
      CHECK(b.stats("t")->waiting_reads == 1);
      publish_numbered(b, "t", 4, 4);
      REQUIRE(run_until(ctx, [&] { return ec.has_value(); }));
      CHECK_FALSE(*ec);
      REQUIRE(result.messages.size() == 1);
      CHECK(result.messages[0].sequence() == 4);
      CHECK(result.messages[0].data() == "m4");
      CHECK(result.next_cursor == 4);
    }
  }

  SECTION("on a topic that does not exist yet") {
    broker b(ctx);
    b.async_read("new", 0, 10, store);
    poll(ctx);
    CHECK_FALSE(ec);
    b.publish("new", text("first"));
    REQUIRE(run_until(ctx, [&] { return ec.has_value(); }));
    REQUIRE(result.messages.size() == 1);
    CHECK(result.messages[0].sequence() == 1);
  }

  SECTION("with a deadline") {
    broker b(ctx);
    b.async_read("t", 0, 10, 5ms, store);
    REQUIRE(run_until(ctx, [&] { return ec.has_value(); }));
    CHECK(*ec == switchboard::error::timeout);
    CHECK_FALSE(b.stats("t"));  // nothing was ever published to it: forgotten (see "vacant topics" below)
  }

  SECTION("cancelled") {
    broker b(ctx);
    asio::cancellation_signal signal;
    b.async_read("t", 0, 10, asio::bind_cancellation_slot(signal.slot(), store));
    poll(ctx);
    signal.emit(asio::cancellation_type::terminal);
    REQUIRE(run_until(ctx, [&] { return ec.has_value(); }));
    CHECK(*ec == asio::error::operation_aborted);
  }

  SECTION("many waiting, most cancelled in a scrambled order: the next message wakes exactly the others") {
    // Enough cancellations that the topic sweeps out the slots of those that left while others still leave.
    broker b(ctx);
    constexpr std::size_t readers = 100;
    std::vector<asio::cancellation_signal> signals(readers);
    std::vector<std::optional<std::error_code>> outcomes(readers);
    std::vector<read_result> results(readers);
    for (std::size_t i = 0; i < readers; ++i) {
      const auto record = [&, i](std::error_code e, read_result r) {
        outcomes[i] = e;
        results[i] = std::move(r);
      };
      b.async_read("t", 0, 10, asio::bind_cancellation_slot(signals[i].slot(), record));
    }
    poll(ctx);
    std::vector<bool> cancelled(readers, false);
    for (std::size_t k = 0; k < 70; ++k) {
      const std::size_t i = (k * 37 + 11) % readers;  // 37 is prime to 100: 70 different readers
      REQUIRE_FALSE(cancelled[i]);
      cancelled[i] = true;
      signals[i].emit(asio::cancellation_type::terminal);
      signals[i].emit(asio::cancellation_type::terminal);  // a second time: nothing more happens
      CHECK(b.stats("t")->waiting_reads == readers - k - 1);
    }
    b.publish("t", text("after"));
    REQUIRE(run_until(ctx, [&] {
      return std::all_of(outcomes.begin(), outcomes.end(), [](const auto& o) { return o.has_value(); });
    }));
    for (std::size_t i = 0; i < readers; ++i) {
      if (cancelled[i]) {
        CHECK(*outcomes[i] == asio::error::operation_aborted);
        CHECK(results[i].messages.empty());
      } else {
        CHECK_FALSE(*outcomes[i]);
        REQUIRE(results[i].messages.size() == 1);
        CHECK(results[i].messages[0].data() == "after");
      }
    }
    CHECK(b.stats("t")->waiting_reads == 0);
  }

  SECTION("one message wakes the readers of each event loop with one post, in order; a throw loses no other") {
    broker b(ctx);
    asio::io_context other, third;
    std::vector<int> order;
    const auto reader = [&](asio::io_context& loop, int id) {
      b.async_read("t", 0, 10, asio::bind_executor(loop, [&order, id](std::error_code e, read_result r) {
                     CHECK_FALSE(e);
                     CHECK(r.messages.size() == 1);
                     order.push_back(id);
                     if (id == 2) throw std::runtime_error("reader 2 throws");
                   }));
    };
    for (int id = 0; id < 6; ++id) reader(id % 2 == 0 ? ctx : other, id);
    // A handler on another kind of executor (a strand) is posted alone, as before.
    b.async_read("t", 0, 10, asio::bind_executor(asio::make_strand(third), [&](std::error_code, read_result) {
                   order.push_back(6);
                 }));
    poll(ctx);
    b.publish("t", text("m1"));
    CHECK(other.poll_one() == 1);  // one operation ran all three of its readers
    CHECK(order == std::vector<int>{1, 3, 5});
    CHECK_THROWS_WITH(ctx.poll_one(), "reader 2 throws");
    CHECK(order == std::vector<int>{1, 3, 5, 0, 2});
    CHECK(ctx.poll_one() == 1);  // the reader after the one that threw, posted again
    CHECK(order == std::vector<int>{1, 3, 5, 0, 2, 4});
    CHECK(third.poll() == 1);
    CHECK(order.back() == 6);
    CHECK(b.stats("t")->waiting_reads == 0);
  }

  SECTION("with a cursor from the future") {
    broker b(ctx);
    b.async_read("t", 3, 10, store);
    REQUIRE(run_until(ctx, [&] { return ec.has_value(); }));
    CHECK(*ec == error::cursor_ahead);
  }

  SECTION("the broker's destruction completes it") {
    std::optional<broker> b;
    b.emplace(ctx);
    b->async_read("t", 0, 10, store);
    poll(ctx);
    b.reset();
    REQUIRE(run_until(ctx, [&] { return ec.has_value(); }));
    CHECK(*ec == switchboard::error::closed);
  }
}

TEST_CASE("erase_topic: for topics that are gone for good", "[pubsub][broker][erase]") {
  asio::io_context ctx;
  broker b(ctx, {.retention = {.max_messages = 10}});
  recorder r;
  auto pattern = b.subscribe_pattern("room.*", {.on_event = r.callback()});
  auto exact = b.subscribe("room.1");
  publish_numbered(b, "room.1", 1, 3);
  CHECK_FALSE(b.erase_topic("room.1"));  // an exact subscriber still uses it
  CHECK_FALSE(b.erase_topic("unknown"));
  exact.unsubscribe();
  CHECK(b.erase_topic("room.1"));
  CHECK(b.stats().topics == 0);
  CHECK_FALSE(b.stats("room.1"));
  CHECK(b.publish("room.1", text("again")).sequence == 1);  // numbering starts again
  poll(ctx);
  CHECK(r.log == strings{"room.1#1=m1", "room.1#2=m2", "room.1#3=m3", "room.1#1=again"});
}

TEST_CASE("erase_topic: a drop of the erased topic's messages still counts in the broker's total",
          "[pubsub][broker][erase]") {
  asio::io_context ctx;
  broker b(ctx);
  recorder r;
  auto pattern = b.subscribe_pattern(
      "t.*", {.limits = queue_limits{.max_messages = 1, .policy = overflow_policy::drop_oldest}, .on_event = r.callback()});
  b.publish("t.a", text("old"));  // queued, not yet delivered
  REQUIRE(b.erase_topic("t.a"));
  b.publish("t.a", text("new"));  // a new topic t.a: its message pushes the old one out of the queue
  CHECK(pattern.stats().dropped == 1);
  CHECK(b.stats().dropped == 1);
}

TEST_CASE("retire_topic: erased now, or when the last subscriber, reader or publisher leaves",
          "[pubsub][broker][erase]") {
  asio::io_context ctx;
  broker b(ctx, {.retention = {.max_messages = 10}});
  publish_numbered(b, "job.1", 1, 2);

  SECTION("unused: at once") {
    CHECK(b.retire_topic("job.1"));
    CHECK_FALSE(b.stats("job.1"));
    CHECK_FALSE(b.retire_topic("never.made"));
    CHECK(b.stats().topics == 0);
  }

  SECTION("a subscriber still listening: when it leaves") {
    recorder r;
    auto pattern = b.subscribe_pattern("job.*", {.on_event = r.callback()});
    auto listener = b.subscribe("job.1");
    auto other = b.subscribe("job.1");
    CHECK_FALSE(b.retire_topic("job.1"));
    CHECK(b.stats("job.1")->last_sequence == 2);  // still there, numbering and all, while they listen
    listener.unsubscribe();
    CHECK(b.stats("job.1"));
    other.unsubscribe();
    CHECK_FALSE(b.stats("job.1"));
    CHECK(b.stats().topics == 0);
    CHECK(b.publish("job.1", text("new life")).sequence == 1);  // the pattern subscriber did not hold it
    poll(ctx);
    CHECK(r.log.back() == "job.1#1=new life");
  }

  SECTION("a waiting read: when it times out") {
    std::optional<std::error_code> ec;
    b.async_read("job.1", 2, 10, 1ms, [&](std::error_code e, read_result) { ec = e; });
    CHECK_FALSE(b.retire_topic("job.1"));
    REQUIRE(run_until(ctx, [&] { return ec.has_value(); }));
    CHECK(*ec == switchboard::error::timeout);
    CHECK_FALSE(b.stats("job.1"));
  }

  SECTION("kept topics too: the application asked") {
    b.set_retention("job.1", {.max_messages = 5});
    auto listener = b.subscribe("job.1");
    CHECK_FALSE(b.retire_topic("job.1"));
    listener.unsubscribe();
    CHECK_FALSE(b.stats("job.1"));
  }

  SECTION("a message published meanwhile cancels the retirement") {
    auto listener = b.subscribe("job.1");
    CHECK_FALSE(b.retire_topic("job.1"));
    CHECK(b.publish("job.1", text("in use again")).sequence == 3);
    listener.unsubscribe();
    CHECK(b.stats("job.1")->last_sequence == 3);
  }
}

TEST_CASE("max_retained_bytes: the oldest retained messages of every topic are evicted first",
          "[pubsub][broker][retention]") {
  asio::io_context ctx;
  const std::string payload(100, 'x');
  // Measure what one message counts, then allow ten of them over every topic.
  std::size_t one = 0;
  {
    broker probe(ctx, {.retention = {.max_messages = 1}});
    probe.publish("t", text(payload));
    one = probe.stats().retained_bytes;
  }
  REQUIRE(one >= payload.size());
  broker b(ctx, {.max_retained_bytes = 10 * one, .retention = {.max_messages = 100}});
  for (int i = 0; i < 5; ++i) b.publish("older", text(payload));
  for (int i = 0; i < 10; ++i) b.publish("newer", text(payload));
  CHECK(b.stats().retained_bytes == 15 * one);  // over: the trim runs on the broker's executor
  poll(ctx);
  // Down to 90% of the limit: 9 messages. The 5 of "older" went first, then the oldest of "newer".
  CHECK(b.stats().retained_bytes == 9 * one);
  CHECK(b.stats().retained_evicted == 6);
  CHECK(b.stats("older")->retained == 0);
  CHECK(b.stats("older")->last_sequence == 5);  // the numbering stays
  CHECK(b.stats("newer")->retained == 9);
  CHECK(b.read("newer", 0, 100).messages.front().sequence() == 2);

  // A client resuming from before what was evicted gets a retention gap, as for any eviction.
  recorder r;
  auto sub = b.subscribe("older", {.from = 0, .on_event = r.callback()});
  poll(ctx);
  REQUIRE_FALSE(r.log.empty());
  CHECK(r.log.front().starts_with("older gap 1-5 "));

  // Erasing a topic gives its bytes back at once.
  CHECK(b.erase_topic("newer"));
  CHECK(b.stats().retained_bytes == 0);
  CHECK_THROWS_AS(broker(ctx, {.max_retained_bytes = 0}), std::invalid_argument);
}

TEST_CASE("vacant topics: made for a name nobody published to, forgotten when the last user leaves",
          "[pubsub][broker][erase]") {
  asio::io_context ctx;
  broker b(ctx, {.retention = {.max_messages = 10}});
  std::optional<std::error_code> ec;
  const auto store = [&](std::error_code e, read_result) { ec = e; };

  SECTION("exact subscribers; pattern subscribers do not hold it and still match it when it is made again") {
    recorder r;
    auto pattern = b.subscribe_pattern("made.*", {.on_event = r.callback()});
    auto first = b.subscribe("made.up");
    auto second = b.subscribe("made.up");
    CHECK(b.stats().topics == 1);
    first.unsubscribe();
    CHECK(b.stats().topics == 1);  // the second still uses it
    second.unsubscribe();
    CHECK(b.stats().topics == 0);
    CHECK(b.publish("made.up", text("now")).sequence == 1);
    poll(ctx);
    CHECK(r.log == strings{"made.up#1=now"});
  }

  SECTION("a waiting read that times out or is cancelled; another still waiting holds it") {
    b.async_read("polled", 0, 10, 1ms, store);
    REQUIRE(run_until(ctx, [&] { return ec.has_value(); }));
    CHECK(*ec == switchboard::error::timeout);
    CHECK(b.stats().topics == 0);

    ec.reset();
    std::optional<std::error_code> other;
    asio::cancellation_signal signal;
    b.async_read("polled", 0, 10, asio::bind_cancellation_slot(signal.slot(), store));
    b.async_read("polled", 0, 10, 1h, [&](std::error_code e, read_result) { other = e; });
    signal.emit(asio::cancellation_type::terminal);
    REQUIRE(run_until(ctx, [&] { return ec.has_value(); }));
    CHECK(*ec == asio::error::operation_aborted);
    CHECK(b.stats("polled")->waiting_reads == 1);
    b.publish("polled", text("news"));
    REQUIRE(run_until(ctx, [&] { return other.has_value(); }));
    CHECK_FALSE(*other);
    CHECK(b.stats("polled")->last_sequence == 1);  // it has a message now: kept
  }

  SECTION("a publisher refused by a full pattern subscriber, or that gives up waiting") {
    auto full = b.subscribe_pattern(
        "x.*", {.limits = queue_limits{.max_messages = 1, .max_bytes = 1024, .policy = overflow_policy::wait}});
    CHECK(b.publish("x.0", text("fills it")));
    CHECK(b.publish("x.1", text("refused")).error == error::would_block);
    CHECK_FALSE(b.stats("x.1"));
    b.async_publish("x.2", text("waits"), 1ms, [&](std::error_code e, std::uint64_t) { ec = e; });
    REQUIRE(run_until(ctx, [&] { return ec.has_value(); }));
    CHECK(*ec == switchboard::error::timeout);
    CHECK_FALSE(b.stats("x.2"));
    CHECK(b.stats().topics == 1);
  }

  SECTION("a subscription or a read from a cursor ahead of a new topic, a read of 0 messages") {
    std::error_code refused;
    CHECK_FALSE(b.subscribe("ahead", {.from = 5}, refused));
    CHECK(refused == error::cursor_ahead);
    b.async_read("read-ahead", 5, 10, store);
    REQUIRE(run_until(ctx, [&] { return ec.has_value(); }));
    CHECK(*ec == error::cursor_ahead);
    ec.reset();
    b.async_read("read-nothing", 0, 0, store);
    REQUIRE(run_until(ctx, [&] { return ec.has_value(); }));
    CHECK_FALSE(*ec);
    CHECK(b.stats().topics == 0);
  }

  SECTION("a topic that had a message keeps its numbering") {
    auto sub = b.subscribe("t");
    publish_numbered(b, "t", 1, 2);
    sub.unsubscribe();
    b.async_read("t", 2, 10, 1ms, store);
    REQUIRE(run_until(ctx, [&] { return ec.has_value(); }));
    CHECK(b.stats("t")->last_sequence == 2);
  }

  SECTION("topics the application kept") {
    b.set_retention("configured", {.max_messages = 5});
    switchboard::metrics_registry registry;
    const auto metrics = b.export_topic_metrics(registry, "exported");
    b.subscribe("configured").unsubscribe();
    b.subscribe("exported").unsubscribe();
    CHECK(b.stats().topics == 2);
  }
}

TEST_CASE("vacant topics: clients polling made-up names do not use up max_topics", "[pubsub][broker][limits]") {
  asio::io_context ctx;
  broker b(ctx, {.max_topics = 2});
  int timed_out = 0;
  for (int i = 0; i < 10; ++i) {
    b.async_read("made-up-" + std::to_string(i), 0, 10, 1ms, [&](std::error_code e, read_result) {
      if (e == switchboard::error::timeout) ++timed_out;
    });
    b.subscribe("subscribed-" + std::to_string(i)).unsubscribe();
    REQUIRE(run_until(ctx, [&] { return timed_out == i + 1; }));
  }
  CHECK(b.stats().topics == 0);
  CHECK(b.publish("a", text("1")));
  CHECK(b.publish("b", text("1")));
  CHECK(b.publish("c", text("1")).error == error::too_many_topics);  // topics with messages count
}

TEST_CASE("vacant topics: reclaimed while other threads publish, subscribe and poll the same names",
          "[pubsub][broker][erase][threads]") {
  // Two threads keep subscribing to, polling and leaving names nobody has published to yet, so those topics are
  // made and reclaimed all the time; a third publishes once to each name. A publish may meet a topic at the moment
  // it is reclaimed: it must then reach the topic made again, never the forgotten one, so every name must end
  // with its one message.
  asio::io_context ctx;
  broker b(ctx);
  constexpr int names = 500;
  const auto name = [](int i) { return "n" + std::to_string(i % names); };
  std::atomic<int> published{0};
  std::vector<std::thread> churn;
  for (int t = 0; t < 2; ++t) {
    churn.emplace_back([&, t] {
      for (int i = 0; published.load() < names; ++i) {
        const int n = published.load() + i % 4;  // the next names to be published, and a few after
        if (t == 0) {
          b.subscribe(name(n)).unsubscribe();
        } else {
          asio::cancellation_signal signal;
          b.async_read(name(n), 0, 1, asio::bind_cancellation_slot(signal.slot(), [](auto...) {}));
          signal.emit(asio::cancellation_type::terminal);
        }
      }
    });
  }
  int first_numbers = 0;
  for (int n = 0; n < names; ++n) {
    if (b.publish(name(n), text("m")).sequence == 1) ++first_numbers;
    published = n + 1;
    std::this_thread::yield();
  }
  for (auto& t : churn) t.join();
  CHECK(first_numbers == names);
  int kept = 0;
  for (int n = 0; n < names; ++n) kept += b.last_sequence(name(n)) == 1 ? 1 : 0;
  CHECK(kept == names);
  CHECK(b.stats().topics == names);
}
