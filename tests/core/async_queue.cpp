#include <switchboard/core/async_queue.hpp>

#include "support/catch.hpp"
#include "support/test_support.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <climits>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using switchboard::async_queue;
using switchboard::overflow_policy;
using switchboard::push_outcome;
using switchboard::queue_limits;

TEST_CASE("async_queue: a waiting pop completes when an item arrives", "[core][async_queue]") {
  asio::io_context ctx;
  async_queue<int> q(ctx.get_executor(), queue_limits{.max_messages = 4});
  std::optional<int> got;
  q.async_pop([&](std::error_code ec, int v) {
    REQUIRE_FALSE(ec);
    got = v;
  });
  switchboard::test::poll(ctx);
  CHECK_FALSE(got);
  q.async_push(7, [](std::error_code ec, push_outcome o) {
    CHECK_FALSE(ec);
    CHECK(o == push_outcome::queued);
  });
  REQUIRE(switchboard::test::run_until(ctx, [&] { return got.has_value(); }));
  CHECK(*got == 7);
}

TEST_CASE("async_queue: wait policy holds producers until there is room, in order", "[core][async_queue]") {
  asio::io_context ctx;
  async_queue<int> q(ctx.get_executor(), queue_limits{.max_messages = 2, .policy = overflow_policy::wait});
  std::vector<int> completed;
  for (int i = 0; i < 5; ++i) {
    q.async_push(i, [&, i](std::error_code ec, push_outcome) {
      REQUIRE_FALSE(ec);
      completed.push_back(i);
    });
  }
  switchboard::test::poll(ctx);
  CHECK(completed == std::vector<int>{0, 1});  // 2, 3, 4 wait for room
  std::vector<int> popped;
  while (popped.size() < 5) {
    switchboard::test::poll(ctx);
    if (auto v = q.try_pop()) popped.push_back(*v);
  }
  switchboard::test::poll(ctx);
  CHECK(popped == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(completed == std::vector<int>{0, 1, 2, 3, 4});
}

// A negative timeout (a deadline already past, computed as `deadline - now`) times out at once; it used to wait for ever.
TEST_CASE("async_queue: a waiting push times out", "[core][async_queue]") {
  const std::chrono::milliseconds timeout = GENERATE(20ms, -20ms);
  asio::io_context ctx;
  async_queue<int> q(ctx.get_executor(), queue_limits{.max_messages = 1, .policy = overflow_policy::wait});
  q.async_push(1, [](std::error_code, push_outcome) {});
  std::error_code result;
  bool done = false;
  q.async_push(2, timeout, [&](std::error_code ec, push_outcome) {
    result = ec;
    done = true;
  });
  REQUIRE(switchboard::test::run_until(ctx, [&] { return done; }));
  CHECK(result == switchboard::error::timeout);
  CHECK(q.try_pop() == 1);
  CHECK_FALSE(q.try_pop());  // the timed-out item was not queued
}

TEST_CASE("async_queue: a push with a deadline already past is not admitted by room made just after", "[core][async_queue]") {
  asio::io_context ctx;
  async_queue<int> q(ctx.get_executor(), queue_limits{.max_messages = 1, .policy = overflow_policy::wait});
  q.async_push(1, [](std::error_code, push_outcome) {});
  std::optional<std::error_code> result;
  q.async_push(2, -1ms, [&](std::error_code ec, push_outcome) { result = ec; });
  // Run the two pushes and nothing after them: the second finds the queue full. Then make room at once, before
  // anything else runs (a timer for the past would only now be due).
  ctx.poll_one();
  ctx.poll_one();
  CHECK(q.try_pop() == 1);
  REQUIRE(switchboard::test::run_until(ctx, [&] { return result.has_value(); }));
  CHECK(*result == switchboard::error::timeout);
  CHECK_FALSE(q.try_pop());
}

// A waiting push that stops waiting (its timeout, its cancellation) lets in the pushes behind it that fit where it did
// not: a smaller item under max_bytes. They used to wait until the consumer next took an item, which a slow consumer
// (the reason the queue is full) may not do before their own deadlines.
TEST_CASE("async_queue: the pushes behind one that stops waiting are let in if they fit", "[core][async_queue]") {
  const bool by_timeout = GENERATE(true, false);
  asio::io_context ctx;
  async_queue<std::string> q(ctx.get_executor(),
                             queue_limits{.max_messages = 8, .max_bytes = 10, .policy = overflow_policy::wait});
  q.async_push(std::string(6, 'a'), [](std::error_code, push_outcome) {});
  asio::cancellation_signal signal;
  std::optional<std::error_code> large, small;
  auto on_large = [&](std::error_code ec, push_outcome) { large = ec; };
  if (by_timeout) {
    q.async_push(std::string(8, 'b'), 1ms, on_large);
  } else {
    q.async_push(std::string(8, 'b'), asio::bind_cancellation_slot(signal.slot(), on_large));
  }
  q.async_push(std::string(2, 'c'), [&](std::error_code ec, push_outcome) { small = ec; });
  switchboard::test::poll(ctx);
  if (!large) CHECK_FALSE(small);  // 6 + 8 bytes do not fit, and the small push may not overtake the large one
  if (!by_timeout) signal.emit(asio::cancellation_type::terminal);
  REQUIRE(switchboard::test::run_until(ctx, [&] { return large.has_value(); }));
  CHECK(*large == (by_timeout ? std::error_code(switchboard::error::timeout)
                              : std::error_code(asio::error::operation_aborted)));
  switchboard::test::poll(ctx);
  REQUIRE(small);  // 6 + 2 bytes fit: queued without waiting for the consumer
  CHECK_FALSE(*small);
  CHECK(q.stats().depth == 2);
  CHECK(q.try_pop() == std::string(6, 'a'));
  CHECK(q.try_pop() == std::string(2, 'c'));
}

TEST_CASE("async_queue: a completed pop's cancellation slot does not keep a destroyed queue's items", "[core][async_queue]") {
  asio::io_context ctx;
  asio::cancellation_signal signal;  // outlives the queue, as a long-lived coroutine's would
  std::weak_ptr<int> queued;
  {
    async_queue<std::shared_ptr<int>> q(ctx.get_executor(), queue_limits{.max_messages = 4});
    bool popped = false;
    q.async_pop(asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, std::shared_ptr<int>) {
      CHECK_FALSE(ec);
      popped = true;
    }));
    q.async_push(std::make_shared<int>(1), [](std::error_code, push_outcome) {});
    REQUIRE(switchboard::test::run_until(ctx, [&] { return popped; }));
    auto left = std::make_shared<int>(2);
    queued = left;
    q.async_push(std::move(left), [](std::error_code, push_outcome) {});
    switchboard::test::poll(ctx);
    CHECK(q.stats().depth == 1);
  }
  switchboard::test::poll(ctx);  // the close the destructor posted
  CHECK(queued.expired());
  signal.emit(asio::cancellation_type::terminal);  // finds nothing to cancel
  switchboard::test::poll(ctx);
}

TEST_CASE("async_queue: disconnect policy closes the queue", "[core][async_queue]") {
  asio::io_context ctx;
  async_queue<int> q(ctx.get_executor(), queue_limits{.max_messages = 1, .policy = overflow_policy::disconnect});
  std::vector<std::error_code> results;
  for (int i = 0; i < 3; ++i) q.async_push(i, [&](std::error_code ec, push_outcome) { results.push_back(ec); });
  switchboard::test::poll(ctx);
  REQUIRE(results.size() == 3);
  CHECK_FALSE(results[0]);
  CHECK(results[1] == switchboard::error::overflow_disconnect);
  CHECK(results[2] == switchboard::error::closed);
  CHECK(q.is_closed());
  // What was queued before the cut is still delivered, then the consumer learns it is closed.
  std::vector<std::error_code> pops;
  q.async_pop([&](std::error_code ec, int) { pops.push_back(ec); });
  q.async_pop([&](std::error_code ec, int) { pops.push_back(ec); });
  switchboard::test::poll(ctx);
  REQUIRE(pops.size() == 2);
  CHECK_FALSE(pops[0]);
  CHECK(pops[1] == switchboard::error::closed);
}

TEST_CASE("async_queue: close completes waiting producers and the consumer", "[core][async_queue]") {
  asio::io_context ctx;
  std::error_code pop_result, push_result;
  {
    async_queue<int> q(ctx.get_executor(), queue_limits{.max_messages = 1, .policy = overflow_policy::wait});
    q.async_push(1, [](std::error_code, push_outcome) {});
    q.async_push(2, [&](std::error_code ec, push_outcome) { push_result = ec; });
    switchboard::test::poll(ctx);
    CHECK(q.try_pop() == 1);  // admits 2
    switchboard::test::poll(ctx);
    CHECK_FALSE(push_result);
    CHECK(q.try_pop() == 2);
    q.async_pop([&](std::error_code ec, int) { pop_result = ec; });
    switchboard::test::poll(ctx);
  }  // destroyed while the pop waits
  switchboard::test::poll(ctx);
  CHECK(pop_result == switchboard::error::closed);
}

// Assigning another queue over one with waiting operations closes it, as destroying it does: they complete with
// `closed`. They used to be destroyed without ever completing.
TEST_CASE("async_queue: assigning over a queue closes it", "[core][async_queue]") {
  asio::io_context ctx;
  async_queue<int> popped(ctx.get_executor(), queue_limits{});
  async_queue<int> pushed(ctx.get_executor(), queue_limits{.max_messages = 1, .policy = overflow_policy::wait});
  std::optional<std::error_code> pop_result, push_result;
  popped.async_pop([&](std::error_code ec, int) { pop_result = ec; });
  pushed.async_push(1, [](std::error_code, push_outcome) {});
  pushed.async_push(2, [&](std::error_code ec, push_outcome) { push_result = ec; });
  switchboard::test::poll(ctx);
  REQUIRE_FALSE(pop_result);
  REQUIRE_FALSE(push_result);
  popped = async_queue<int>(ctx.get_executor(), queue_limits{});
  pushed = std::move(popped);
  switchboard::test::poll(ctx);
  REQUIRE(pop_result);
  CHECK(*pop_result == switchboard::error::closed);
  REQUIRE(push_result);
  CHECK(*push_result == switchboard::error::closed);
  // `pushed` now holds the new queue, which works.
  pushed.async_push(3, [](std::error_code, push_outcome) {});
  switchboard::test::poll(ctx);
  CHECK(pushed.try_pop() == 3);
}

// The consumer's own fast path (a WebSocket session's writer): items pushed without waking its waiting pop
// (`try_push_for_consumer`), the queue closed while it holds them, and the consumer taking them with `try_pop`. Its
// pop, left waiting by `close`, must then learn that the queue is closed and empty; it used to wait for ever (and the
// session never wrote its close frame).
TEST_CASE("async_queue: try_pop emptying a closed queue completes the waiting pop", "[core][async_queue]") {
  asio::io_context ctx;
  async_queue<int> q(ctx.get_executor(), queue_limits{});
  std::optional<std::error_code> pop_result;
  q.async_pop([&](std::error_code ec, int) { pop_result = ec; });
  switchboard::test::poll(ctx);
  REQUIRE(q.consumer_waiting());
  REQUIRE(q.try_push_for_consumer(1) == push_outcome::queued);
  REQUIRE(q.try_push_for_consumer(2) == push_outcome::queued);
  q.close();
  switchboard::test::poll(ctx);
  CHECK_FALSE(pop_result);  // the queue still holds items for the consumer
  CHECK(q.try_pop() == 1);
  switchboard::test::poll(ctx);
  CHECK_FALSE(pop_result);
  CHECK(q.try_pop() == 2);
  switchboard::test::poll(ctx);
  REQUIRE(pop_result);
  CHECK(*pop_result == switchboard::error::closed);
  CHECK_FALSE(q.consumer_waiting());
}

TEST_CASE("async_queue: cancellation of a waiting pop", "[core][async_queue]") {
  asio::io_context ctx;
  async_queue<int> q(ctx.get_executor(), queue_limits{});
  asio::cancellation_signal signal;
  std::error_code result;
  bool done = false;
  q.async_pop(asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, int) {
    result = ec;
    done = true;
  }));
  switchboard::test::poll(ctx);
  signal.emit(asio::cancellation_type::terminal);
  REQUIRE(switchboard::test::run_until(ctx, [&] { return done; }));
  CHECK(result == asio::error::operation_aborted);
}

TEST_CASE("async_queue: coroutine producers on other threads lose nothing under wait", "[core][async_queue]") {
  asio::io_context consumer_ctx;
  asio::io_context producer_ctx;
  constexpr int producers = 4, per_producer = 5000;
  async_queue<int> q(consumer_ctx.get_executor(), queue_limits{.max_messages = 8, .policy = overflow_policy::wait});
  for (int p = 0; p < producers; ++p) {
    asio::co_spawn(producer_ctx, [&q, p]() -> asio::awaitable<void> {
      for (int i = 0; i < per_producer; ++i) co_await q.async_push(p * per_producer + i, asio::use_awaitable);
    }, asio::detached);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) threads.emplace_back([&] { producer_ctx.run(); });
  std::vector<int> last(producers, -1);
  int received = 0;
  bool in_order = true;
  std::function<void()> pop_next = [&] {
    q.async_pop([&](std::error_code ec, int v) {
      REQUIRE_FALSE(ec);
      const int p = v / per_producer;
      if (v <= last[p]) in_order = false;
      last[p] = v;
      if (++received < producers * per_producer) pop_next();
    });
  };
  pop_next();
  REQUIRE(switchboard::test::run_until(consumer_ctx, [&] { return received == producers * per_producer; }, 60s));
  for (auto& t : threads) t.join();
  CHECK(in_order);
  CHECK(q.stats().dropped == 0);
}

TEST_CASE("async_queue: try_push queues at once and refuses without taking the item", "[core][async_queue]") {
  asio::io_context ctx;
  async_queue<std::string> q(ctx.get_executor(), queue_limits{.max_messages = 1, .policy = overflow_policy::wait});
  std::optional<std::string> got;
  q.async_pop([&](std::error_code ec, std::string v) {
    REQUIRE_FALSE(ec);
    got = std::move(v);
  });
  switchboard::test::poll(ctx);
  std::string first = "first";
  CHECK(q.try_push(std::move(first)) == push_outcome::queued);
  REQUIRE(switchboard::test::run_until(ctx, [&] { return got.has_value(); }));  // the waiting pop was woken
  CHECK(*got == "first");

  std::string second = "second";
  CHECK(q.try_push(std::move(second)) == push_outcome::queued);
  std::string third = "third";
  CHECK(q.try_push(std::move(third)) == push_outcome::must_wait);  // full under `wait`
  CHECK(third == "third");                                          // left whole, for async_push
  bool third_queued = false;
  q.async_push(std::move(third), [&](std::error_code ec, push_outcome) { third_queued = !ec; });
  switchboard::test::poll(ctx);
  CHECK_FALSE(third_queued);  // waits for room
  REQUIRE(q.try_pop() == std::optional<std::string>("second"));
  // Room now, but "third" waits ahead of it: a try_push must not overtake a waiting producer.
  std::string fourth = "fourth";
  CHECK(q.try_push(std::move(fourth)) == push_outcome::must_wait);
  CHECK(fourth == "fourth");
  REQUIRE(switchboard::test::run_until(ctx, [&] { return third_queued; }));
  REQUIRE(q.try_pop() == std::optional<std::string>("third"));

  q.close();
  switchboard::test::poll(ctx);  // close runs on the queue's executor
  std::string fifth = "fifth";
  CHECK(q.try_push(std::move(fifth)) == push_outcome::must_disconnect);
  CHECK(fifth == "fifth");
}

namespace {

// An item of the model test: who pushed it, its place in that producer's sequence, a conflation key and a payload
// that says where it came from (so that a mixed-up item shows).
struct message {
  int producer = -1;
  int seq = -1;
  std::string key;
  std::string payload;
  std::size_t size() const noexcept { return payload.size(); }
  std::string_view conflation_key() const noexcept { return key; }
};

std::string payload_of(int producer, int seq) {
  return std::string(static_cast<std::size_t>((producer * 31 + seq) % 13), static_cast<char>('a' + producer));
}

// What became of one async_push.
struct push_record {
  bool initiated = false;
  bool done = false;
  std::error_code ec;
  push_outcome outcome{};
  bool timed = false;        // pushed with a timeout
  bool cancelled = false;    // a terminal cancellation was emitted for it
  bool after_close = false;  // initiated by the thread that closed the queue, after it did
  std::shared_ptr<asio::cancellation_signal> signal;  // kept until the end: the slot points into it
};

// Runs `f` on `ctx` after `turns` posts, each behind what was posted before it.
void after_turns(asio::io_context& ctx, int turns, std::function<void()> f) {
  asio::post(ctx, [&ctx, turns, f = std::move(f)]() mutable {
    if (turns <= 1) return f();
    after_turns(ctx, turns - 1, std::move(f));
  });
}

bool allowed_outcome(overflow_policy policy, push_outcome o) {
  switch (policy) {
    case overflow_policy::wait:
    case overflow_policy::disconnect: return o == push_outcome::queued;
    case overflow_policy::drop_newest: return o == push_outcome::queued || o == push_outcome::dropped;
    case overflow_policy::drop_oldest: return o == push_outcome::queued || o == push_outcome::queued_dropping;
    case overflow_policy::conflate:
      return o == push_outcome::queued || o == push_outcome::queued_dropping || o == push_outcome::replaced;
  }
  return false;
}

}  // namespace

// Producers on three threads push under each policy (waiting pushes with and without deadlines, some cancelled),
// a consumer on the queue's thread pops with random pauses, through try_pop too, and cancels some of its pops; the
// queue is closed at a random point, by a producer thread, or at the end. The reference is what the documentation
// promises, checked item by item: nothing is lost but what the policy reports (outcomes and the dropped counter),
// each producer's items arrive in order and intact, every push completes (a waiting push that is cancelled at
// once, with operation_aborted), pushes after close fail with `closed`, the counters add up.
TEST_CASE("async_queue: producers on threads and a pausing consumer agree with the reference under every policy",
          "[core][async_queue]") {
  const overflow_policy policy = GENERATE(overflow_policy::wait, overflow_policy::disconnect,
                                          overflow_policy::drop_newest, overflow_policy::drop_oldest,
                                          overflow_policy::conflate);
  const unsigned seed = GENERATE(range(1u, 9u));
  std::mt19937 rng(seed);
  auto pick = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const queue_limits limits{.max_messages = static_cast<std::size_t>(pick(1, 6)),
                            .max_bytes = pick(0, 1) == 0 ? std::size_t{1} << 20 : static_cast<std::size_t>(pick(8, 40)),
                            .policy = policy};
  constexpr int producers = 3, per_producer = 150;
  const int close_after = pick(0, 2) == 0 ? INT_MAX : pick(0, producers * per_producer);
  // Under conflate each producer's items share its key in odd seeds (replacement in place keeps the producer's
  // order: it only ever replaces its own older item); even seeds have no keys.
  const bool keyed = seed % 2 == 1;
  INFO(switchboard::to_string(policy) << ", seed " << seed << ", max_messages " << limits.max_messages
                                      << ", max_bytes " << limits.max_bytes << ", close after " << close_after);

  asio::io_context ctx;  // the queue's executor, run by this thread: completions and checks run here
  async_queue<message> q(ctx.get_executor(), limits);
  std::mutex mutex;
  std::condition_variable room;
  std::vector<std::vector<push_record>> records(producers, std::vector<push_record>(per_producer));
  std::vector<int> outstanding(producers, 0);
  std::vector<std::string> problems;
  int initiated = 0, completed = 0, finished_producers = 0;
  std::atomic<int> started{0};
  auto problem = [&](std::string what) {
    std::lock_guard lock(mutex);
    problems.push_back(std::move(what));
  };
  auto name = [](int p, int i) { return std::to_string(p) + "/" + std::to_string(i); };
  const auto deadline = std::chrono::steady_clock::now() + 5s;

  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p, window = pick(1, 4), producer_seed = seed * 7919 + static_cast<unsigned>(p)] {
      std::mt19937 prng(producer_seed);
      auto roll = [&prng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(prng); };
      bool closed_it = false;
      for (int i = 0; i < per_producer; ++i) {
        push_record* rec = nullptr;
        {
          std::unique_lock lock(mutex);
          if (!room.wait_until(lock, deadline, [&] { return outstanding[p] < window; })) {
            problems.push_back("producer " + std::to_string(p) + ": pushes never completed");
            break;
          }
          ++outstanding[p];
          ++initiated;
          rec = &records[p][i];
          rec->initiated = true;
          rec->after_close = closed_it;
          rec->timed = policy == overflow_policy::wait && roll(0, 2) == 0;
          if (roll(0, 5) == 0) rec->signal = std::make_shared<asio::cancellation_signal>();
        }
        message m{p, i, keyed ? "p" + std::to_string(p) : "", payload_of(p, i)};
        const auto timeout = rec->timed ? std::chrono::microseconds(roll(50, 3000)) : std::chrono::microseconds(0);
        auto handler = [&, p, i](std::error_code ec, push_outcome outcome) {
          std::lock_guard lock(mutex);
          push_record& r = records[p][i];
          if (r.done) problems.push_back("push " + name(p, i) + " completed twice");
          r.done = true;
          r.ec = ec;
          r.outcome = outcome;
          --outstanding[p];
          ++completed;
          room.notify_all();
        };
        if (rec->signal) {
          q.async_push(std::move(m), timeout, asio::bind_cancellation_slot(rec->signal->slot(), handler));
          // Cancel it on the queue's thread, after a few turns of the loop; then, once everything already posted
          // has run, the push must have completed: it waited and was aborted, or it had completed anyway.
          after_turns(ctx, roll(1, 4), [&, p, i] {
            std::shared_ptr<asio::cancellation_signal> signal;
            {
              std::lock_guard lock(mutex);
              records[p][i].cancelled = true;
              signal = records[p][i].signal;
            }
            signal->emit(asio::cancellation_type::terminal);
            asio::post(ctx, [&, p, i] {
              std::lock_guard lock(mutex);
              if (!records[p][i].done) problems.push_back("push " + name(p, i) + " still waits after its cancellation");
            });
          });
        } else {
          q.async_push(std::move(m), timeout, handler);
        }
        if (started.fetch_add(1) + 1 == close_after) {
          q.close();  // from a producer thread; this thread's later pushes must fail with `closed`
          closed_it = true;
        }
        if (roll(0, 15) == 0) std::this_thread::yield();  // now and then, let the other threads run first
      }
      std::lock_guard lock(mutex);
      ++finished_producers;
    });
  }

  // The consumer, on this thread.
  std::set<std::pair<int, int>> received;
  std::vector<int> last_seq(producers, -1);
  std::uint64_t delivered = 0;
  bool consumer_closed = false;
  int pops_after_close = 0;
  asio::steady_timer pause(ctx);
  std::shared_ptr<asio::cancellation_signal> stale;  // the signal of a pop that has completed
  auto take = [&](const message& m) {
    if (m.producer < 0 || m.producer >= producers || m.seq < 0 || m.seq >= per_producer) {
      problem("an item that was never pushed: " + name(m.producer, m.seq));
      return;
    }
    ++delivered;
    if (!received.insert({m.producer, m.seq}).second) problem("item " + name(m.producer, m.seq) + " delivered twice");
    if (m.seq <= last_seq[m.producer]) {
      problem("item " + name(m.producer, m.seq) + " after " + name(m.producer, last_seq[m.producer]));
    }
    last_seq[m.producer] = m.seq;
    if (m.payload != payload_of(m.producer, m.seq)) problem("item " + name(m.producer, m.seq) + " changed");
  };
  std::function<void()> next = [&] {
    const int r = pick(0, 99);
    if (r < 10) {
      if (auto m = q.try_pop()) take(*m);
      asio::post(ctx, next);
    } else if (r < 20) {
      pause.expires_after(std::chrono::microseconds(pick(0, 300)));
      pause.async_wait([&](std::error_code) { next(); });
    } else {
      auto own = r < 30 ? std::make_shared<asio::cancellation_signal>() : nullptr;
      auto emitted = std::make_shared<bool>(false);
      auto done = std::make_shared<bool>(false);
      auto handler = [&, own, emitted, done](std::error_code ec, message m) {
        *done = true;
        if (consumer_closed) ++pops_after_close;
        if (!ec) {
          take(m);
          if (own) stale = own;
        } else if (ec == switchboard::error::closed) {
          consumer_closed = true;
          return;
        } else if (ec == asio::error::operation_aborted) {
          if (!*emitted) problem("a pop aborted that nobody cancelled");
        } else {
          problem("pop failed: " + ec.message());
        }
        next();
      };
      if (own) {
        q.async_pop(asio::bind_cancellation_slot(own->slot(), handler));
        asio::post(ctx, [&, own, emitted, done] {
          *emitted = true;
          own->emit(asio::cancellation_type::terminal);
          asio::post(ctx, [&, done] {
            if (!*done) problem("a pop still waits after its cancellation");
          });
        });
      } else {
        q.async_pop(handler);
        if (stale && pick(0, 1) == 0) {
          // Cancelling a pop that has completed does nothing: it must not abort the pop waiting now.
          asio::post(ctx, [s = std::exchange(stale, nullptr)] { s->emit(asio::cancellation_type::terminal); });
        }
      }
    }
  };
  next();

  const bool all_pushed = switchboard::test::run_until(ctx, [&] {
    std::lock_guard lock(mutex);
    return finished_producers == producers && completed == initiated;
  });
  q.close();
  const bool consumer_done = switchboard::test::run_until(ctx, [&] { return consumer_closed; });
  for (auto& t : threads) t.join();
  switchboard::test::poll(ctx);  // the cancellation checks still posted

  for (const std::string& p : problems) FAIL_CHECK(p);
  REQUIRE(all_pushed);
  REQUIRE(consumer_done);
  CHECK(pops_after_close == 0);

  std::uint64_t accepted_count = 0, dropped_outcomes = 0, reported_drops = 0, disconnects = 0;
  for (int p = 0; p < producers; ++p) {
    for (int i = 0; i < per_producer; ++i) {
      const push_record& r = records[p][i];
      if (!r.initiated) continue;
      INFO("push " << name(p, i) << ": " << r.ec.message());
      REQUIRE(r.done);
      const bool got = received.count({p, i}) != 0;
      if (r.after_close) CHECK(r.ec == switchboard::error::closed);
      if (r.ec) {
        CHECK_FALSE(got);  // a failed push queued nothing
        if (r.ec == switchboard::error::timeout) CHECK(r.timed);
        else if (r.ec == asio::error::operation_aborted) CHECK(r.cancelled);
        else if (r.ec == switchboard::error::overflow_disconnect) CHECK(policy == overflow_policy::disconnect);
        else CHECK(r.ec == switchboard::error::closed);
        disconnects += r.ec == switchboard::error::overflow_disconnect ? 1 : 0;
        continue;
      }
      CHECK(allowed_outcome(policy, r.outcome));
      if (accepted(r.outcome)) {
        ++accepted_count;
        if (r.outcome != push_outcome::queued) ++reported_drops;  // queued_dropping and replaced: one or more
      } else {
        CHECK_FALSE(got);
        ++dropped_outcomes;
      }
    }
  }
  CHECK(disconnects <= 1);
  const switchboard::queue_stats stats = q.stats();
  CHECK(stats.depth == 0);
  CHECK(stats.bytes == 0);
  CHECK(stats.pushed == accepted_count);
  CHECK(stats.popped == delivered);
  CHECK(stats.dropped == dropped_outcomes + (accepted_count - delivered));
  if (policy == overflow_policy::drop_oldest || policy == overflow_policy::conflate) {
    CHECK(accepted_count - delivered >= reported_drops);
  } else {
    CHECK(accepted_count == delivered);  // nothing lost that the outcome did not report
  }
}
