// The long-poll client against the endpoint: resuming by cursor through dropped connections, and backing off.
#include <switchboard/longpoll/client.hpp>

#include "http/client_support.hpp"
#include "longpoll_support.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_future.hpp>

#include <atomic>
#include <filesystem>
#include <future>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace switchboard;
using namespace std::chrono_literals;
using test::poll_server;

namespace {

std::string url(const poll_server& s, std::string_view topic) {
  return "http://127.0.0.1:" + std::to_string(const_cast<poll_server&>(s).server.port()) + "/topics/" +
         std::string(topic) + "/poll";
}

// The client under test and the io_context it runs on, here run by the test's thread (test::run_until). So that a
// test that fails while an operation is in flight (a REQUIRE past its deadline) still reports its failure and goes
// on, with every operation ended and its handler run, operations are started bound to `cancel` (`bound`), and the
// destructor ends them before the client goes: it emits `cancel` (terminal) and runs the io_context until nothing is
// left; then the client goes, then the io_context. (Destroying a client with an operation in flight is safe too, as
// the last test cases check; this fixture ends the operations first all the same.) Completion handlers may run in
// the destructor, so what they refer to must outlive the loop: declared before it, or owned by the handler.
struct client_loop {
  asio::io_context ctx;
  asio::cancellation_signal cancel;  // emitted on the io_context's thread only
  std::optional<longpoll::client> client;

  longpoll::client& start(std::string url, longpoll::client_options options = {},
                          std::optional<std::uint64_t> cursor = std::nullopt) {
    return client.emplace(asio::make_strand(ctx), std::move(url), std::move(options), cursor);
  }

  /// `token` bound to `cancel`, for `client->async_next`.
  template <class Token>
  auto bound(Token token) {
    return asio::bind_cancellation_slot(cancel.slot(), std::move(token));
  }

  ~client_loop() {
    cancel.emit(asio::cancellation_type::terminal);
    ctx.restart();
    ctx.run();  // returns once the cancelled operation has ended and nothing else is queued
  }
};

// The same with the io_context run by a thread of its own, the test waiting on futures. The destructor cancels the
// operation on that thread, where the client's handlers run, and waits for the thread to run out of work before
// `~client_loop` (which then finds nothing to do) destroys the client.
struct client_thread : client_loop {
  asio::executor_work_guard<asio::io_context::executor_type> work{ctx.get_executor()};
  std::thread thread{[this] { ctx.run(); }};

  /// The next batch, bound to `cancel`.
  std::future<longpoll::batch> next() { return client->async_next(bound(asio::use_future)); }

  ~client_thread() {
    asio::post(ctx, [this] { cancel.emit(asio::cancellation_type::terminal); });
    work.reset();
    thread.join();
  }
};

// The value of `f`, which the test fails waiting for after 10 s (the client's operation is then still in flight,
// and the loop's destructor ends it).
template <class T>
T got(std::future<T> f) {
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  return f.get();
}

// The error the next batch ends with, waited for on the test's thread. Not through `asio::use_future`, which hands
// an error over as an exception: its reference count lives in the C++ runtime, where ThreadSanitizer cannot see it.
// The promise is the handler's own, as the handler may run after this returns (in the loop's destructor).
std::error_code error_of_next(client_thread& io) {
  auto done = std::make_shared<std::promise<std::error_code>>();
  auto result = done->get_future();
  io.client->async_next(io.bound([done](std::error_code ec, const longpoll::batch&) { done->set_value(ec); }));
  return got(std::move(result));
}

// What the next batch ends with, run on the test's thread. The result is the handler's own, as above.
std::pair<std::error_code, longpoll::batch> next_on(client_loop& loop) {
  auto out = std::make_shared<std::optional<std::pair<std::error_code, longpoll::batch>>>();
  loop.client->async_next(loop.bound([out](std::error_code ec, longpoll::batch b) { out->emplace(ec, std::move(b)); }));
  REQUIRE(test::run_until(loop.ctx, [&] { return out->has_value(); }));
  return std::move(**out);
}

// The file descriptors this process has open (those of other threads included: call it while they open none).
std::size_t open_fds() {
  const std::filesystem::directory_iterator entries("/proc/self/fd");
  return static_cast<std::size_t>(std::distance(begin(entries), end(entries)));
}

// The cursor each poll sent (nullopt: none), in order.
using cursors = std::vector<std::optional<std::uint64_t>>;

// A long-poll server whose answers the test scripts, for answers the endpoint never gives: the n-th poll gets the
// n-th answer whatever it asks (a poll past the script gets 404, which ends the client's operation), and the cursor
// each poll sent is recorded.
class scripted_poll_server {
 public:
  struct answer {
    http::status status;
    std::string body;
  };

  explicit scripted_poll_server(std::vector<answer> script) : script_(std::move(script)) {
    server_.routes().get("/topics/{topic}/poll", [this](http::request& req) {
      const std::lock_guard lock(mutex_);
      sent_.push_back(req.query_number<std::uint64_t>("cursor"));
      if (sent_.size() > script_.size()) return http::response(http::status::not_found, "", "text/plain");
      const answer& a = script_[sent_.size() - 1];
      return http::response(a.status, a.body, "application/json");
    });
    server_.start();
  }

  std::string url() { return "http://127.0.0.1:" + std::to_string(server_.port()) + "/topics/t/poll"; }

  cursors sent() {
    const std::lock_guard lock(mutex_);
    return sent_;
  }

 private:
  const std::vector<answer> script_;
  std::mutex mutex_;
  cursors sent_;
  test::test_server server_;  // last: stopped before what its handler uses goes
};

}  // namespace

TEST_CASE("the client delivers batches in order and resumes by cursor", "[longpoll][client]") {
  poll_server s;
  for (int i = 1; i <= 5; ++i) s.publish("t", "m" + std::to_string(i));
  client_thread io;
  longpoll::client& c = io.start(url(s, "t"), {.max_batch = 3}, 0);

  auto first = got(io.next());
  REQUIRE(first.messages.size() == 3);
  CHECK(first.messages[0].data == "m1");
  auto second = got(io.next());
  REQUIRE(second.messages.size() == 2);
  CHECK(second.messages[1].sequence == 5);
  CHECK(c.cursor() == 5);

  // Caught up: the next poll parks until a publish.
  auto third = io.next();
  REQUIRE(s.wait_for([&] { return s.polls.parked() == 1; }));
  s.publish("t", "m6");
  const auto b = got(std::move(third));
  REQUIRE(b.messages.size() == 1);
  CHECK(b.messages[0].data == "m6");
}

TEST_CASE("the client starts at the newest message without a cursor", "[longpoll][client]") {
  poll_server s;
  s.publish("t", "old");
  client_thread io;
  longpoll::client& c = io.start(url(s, "t"));
  CHECK_FALSE(c.cursor());
  auto next = io.next();
  REQUIRE(s.wait_for([&] { return s.polls.parked() == 1; }));
  s.publish("t", "new");
  const auto b = got(std::move(next));
  REQUIRE(b.messages.size() == 1);
  CHECK(b.messages[0].data == "new");
}

TEST_CASE("the client repeats polls that time out", "[longpoll][client]") {
  poll_server s({.max_timeout = 50ms});
  client_thread io;
  io.start(url(s, "t"), {.min_poll_interval = 10ms}, 0);
  auto next = io.next();
  REQUIRE(s.wait_for([&] { return s.polls.stats().timed_out >= 2 && s.polls.parked() == 1; }));
  s.publish("t", "late");
  CHECK(got(std::move(next)).messages.at(0).data == "late");
}

// A server that answers every poll at once with nothing new (here: one that holds polls for 1 ms at most) is
// polled again only after `min_poll_interval`, not in a tight loop: after the first answer the client schedules a
// delay of the interval less the time the poll took, and polls no more meanwhile.
TEST_CASE("the client paces polls answered at once with nothing new", "[longpoll][client]") {
  poll_server s({.max_timeout = 1ms});
  std::optional<std::error_code> done;  // before the loop, whose destructor may complete the operation
  client_loop loop;
  longpoll::client& c = loop.start(url(s, "t"), {.min_poll_interval = 1h}, 0);
  const auto started = std::chrono::steady_clock::now();
  c.async_next(loop.bound([&done](std::error_code ec, const longpoll::batch&) { done = ec; }));
  CHECK(test::run_until(loop.ctx, [&] { return c.stats().paced == 1 || done; }));  // not REQUIRE: cancel it below
  const auto paced = std::chrono::steady_clock::now();
  CHECK(c.stats().polls == 1);
  CHECK(s.polls.stats().timed_out == 1);
  // The poll was sent after `started` and answered before `paced`: what is left of the interval is at least this.
  CHECK(c.stats().last_delay >= std::chrono::floor<std::chrono::milliseconds>(1h - (paced - started)));
  loop.cancel.emit(asio::cancellation_type::terminal);
  REQUIRE(test::run_until(loop.ctx, [&] { return done.has_value(); }));
  CHECK(*done == asio::error::operation_aborted);
  CHECK(c.stats().polls == 1);
}

// A 408 Request Timeout (a server or proxy that would not hold the poll any longer) is a transient failure: the
// client may repeat the request (RFC 9110 §15.5.9), after its backoff. It used to fail with unexpected_status.
TEST_CASE("the client retries a 408 Request Timeout", "[longpoll][client]") {
  scripted_poll_server s({{http::status::request_timeout, ""},
                          {http::status::ok, R"({"cursor":1,"messages":[{"data":"m1","seq":1}]})"}});
  client_loop loop;
  longpoll::client& c = loop.start(s.url(), {.initial_backoff = 1ms}, 0);
  const auto [ec, b] = next_on(loop);
  REQUIRE_FALSE(ec);
  REQUIRE(b.messages.size() == 1);
  CHECK(b.messages[0].data == "m1");
  CHECK(s.sent() == cursors{0, 0});
  CHECK(c.stats().polls == 2);
  CHECK(c.stats().failures == 1);
  CHECK(c.stats().last_error == longpoll::error::unexpected_status);
  CHECK(c.stats().last_delay == 1ms);  // the first backoff, which jitter does not shorten below a millisecond
}

// An answer that does not continue from the cursor the client sent (5 here) is a protocol error: retried from the
// same cursor, none of it delivered, the cursor unchanged. Its numbers come from a server that numbers the topic
// differently, so its messages are not duplicates to drop, and taking its cursor would have the next poll deliver
// messages again or skip some.
TEST_CASE("the client refuses answers that do not continue from its cursor", "[longpoll][client]") {
  std::string wrong;
  SECTION("a cursor going back") { wrong = R"({"cursor":3,"messages":[]})"; }
  SECTION("a message at the cursor") { wrong = R"({"cursor":5,"messages":[{"data":"again","seq":5}]})"; }
  SECTION("messages below and at the cursor") {
    wrong = R"({"cursor":6,"messages":[{"data":"four","seq":4},{"data":"five","seq":5},{"data":"six","seq":6}]})";
  }
  SECTION("a gap that starts below the cursor") {
    wrong = R"({"cursor":6,"gap":{"first":2,"last":5,"reason":"retention"},"messages":[{"data":"six","seq":6}]})";
  }
  SECTION("a message past the next one, without a gap") { wrong = R"({"cursor":7,"messages":[{"data":"x","seq":7}]})"; }
  SECTION("a cursor moving ahead with nothing") { wrong = R"({"cursor":9,"messages":[]})"; }
  SECTION("a reset whose cursor is not below") { wrong = R"({"cursor":5,"messages":[],"reset":true})"; }
  scripted_poll_server s({{http::status::ok, wrong},
                          {http::status::ok, R"({"cursor":6,"messages":[{"data":"six","seq":6}]})"}});
  client_loop loop;
  longpoll::client& c = loop.start(s.url(), {.initial_backoff = 1ms, .min_poll_interval = 0ms}, 5);
  const auto [ec, b] = next_on(loop);
  REQUIRE_FALSE(ec);
  CHECK_FALSE(b.missed);
  REQUIRE(b.messages.size() == 1);
  CHECK(b.messages[0].sequence == 6);
  CHECK(b.messages[0].data == "six");
  CHECK(c.cursor() == 6);
  CHECK(s.sent() == cursors{5, 5});
  CHECK(c.stats().failures == 1);
  CHECK(c.stats().last_error == longpoll::error::bad_response);
}

namespace {

// What a client started at cursor `from` takes from a server whose only answer is `body`: the batch, and its cursor
// after it.
struct taken {
  longpoll::batch batch;
  std::optional<std::uint64_t> cursor;
};
taken take_answer(std::string body, std::uint64_t from) {
  scripted_poll_server s({{http::status::ok, std::move(body)}});
  client_loop loop;
  loop.start(s.url(), {}, from);
  auto [ec, b] = next_on(loop);
  REQUIRE_FALSE(ec);
  return {std::move(b), loop.client->cursor()};
}

}  // namespace

// What does follow the cursor is taken: a gap from the next number, and a reset, whose cursor goes back.
TEST_CASE("the client takes gaps and resets that follow its cursor", "[longpoll][client]") {
  SECTION("a gap") {
    const taken t = take_answer(R"({"cursor":7,"gap":{"first":6,"last":7,"reason":"retention"},"messages":[]})", 5);
    REQUIRE(t.batch.missed);
    CHECK(t.batch.missed->first == 6);
    CHECK(t.batch.missed->last == 7);
    CHECK(t.cursor == 7);
  }
  SECTION("a gap then messages") {
    const taken t = take_answer(R"({"cursor":8,"gap":{"first":6,"last":7,"reason":"retention"},)"
                                R"("messages":[{"data":"eight","seq":8}]})",
                                5);
    REQUIRE(t.batch.missed);
    CHECK(t.batch.missed->first == 6);
    CHECK(t.batch.missed->last == 7);
    CHECK(t.batch.messages.at(0).sequence == 8);
    CHECK(t.cursor == 8);
  }
  SECTION("a reset") {
    const taken t = take_answer(R"({"cursor":2,"messages":[],"reset":true})", 5);
    CHECK(t.batch.reset);
    CHECK(t.cursor == 2);
  }
}

TEST_CASE("the client backs off and gives up as told", "[longpoll][client]") {
  client_thread io;
  SECTION("nothing listening: too many failures") {
    std::uint16_t port;
    {
      asio::ip::tcp::acceptor a(io.ctx, {asio::ip::make_address("127.0.0.1"), 0});
      port = a.local_endpoint().port();
    }
    io.start("http://127.0.0.1:" + std::to_string(port) + "/topics/t/poll",
             {.initial_backoff = 1ms, .max_attempts = 3, .http = {.max_retries = 0}});
    CHECK(error_of_next(io) == longpoll::error::too_many_failures);
  }
  SECTION("a refused topic: an error at once") {
    poll_server s({.allow_topic = [](std::string_view) { return false; }});
    io.start(url(s, "t"));
    CHECK(error_of_next(io) == longpoll::error::unexpected_status);
  }
  SECTION("503 with Retry-After: retried until there is room") {
    poll_server s({.max_parked = 1, .retry_after = 0s});
    auto holder = std::make_unique<test::raw_client>(s.server.port());
    holder->send(test::get_request("/topics/t/poll?timeout=60"));
    REQUIRE(s.wait_for([&] { return s.polls.parked() == 1; }));
    io.start(url(s, "t"), {}, 0);
    auto next = io.next();
    REQUIRE(s.wait_for([&] { return s.polls.stats().refused_total >= 1; }));
    holder.reset();  // frees the slot; the client gets it
    REQUIRE(s.wait_for([&] { return s.polls.stats().disconnected == 1 && s.polls.parked() == 1; }));
    s.publish("t", "x");
    CHECK(got(std::move(next)).messages.at(0).data == "x");
  }
}

TEST_CASE("the client's backoff doubles up to its cap, and Retry-After is capped too", "[longpoll][client]") {
  using longpoll::detail::exponential_backoff;
  using longpoll::detail::retry_after_wait;
  CHECK(exponential_backoff(1, 200ms, 30s) == 200ms);
  CHECK(exponential_backoff(3, 200ms, 30s) == 800ms);
  CHECK(exponential_backoff(100, 200ms, 30s) == 30s);
  // "No cap": doubling stops at the largest wait instead of overflowing into a negative one.
  for (unsigned failures : {57u, 64u, 1000u}) {
    CHECK(exponential_backoff(failures, 200ms, std::chrono::milliseconds::max()) == std::chrono::milliseconds::max());
  }
  CHECK(retry_after_wait("", 30s) == std::nullopt);
  CHECK(retry_after_wait("soon", 30s) == std::nullopt);
  CHECK(retry_after_wait("-1", 30s) == std::nullopt);
  CHECK(retry_after_wait("0", 30s) == 0ms);
  CHECK(retry_after_wait("7", 30s) == 7s);
  CHECK(retry_after_wait("120", 30s) == 30s);
  CHECK(retry_after_wait("0", 500ms) == 0ms);
  CHECK(retry_after_wait("99999999999999999999999", 30s) == 30s);  // past 64 bits: the cap, not a fallback
  CHECK(retry_after_wait("18446744073709551615", std::chrono::milliseconds::max()) ==
        std::chrono::milliseconds::max());
}

// The client drops its connection at random moments (cancelling the poll in flight) while 100,000 messages are
// published: every sequence number reaches it exactly once and in order, as a message or inside a gap.
TEST_CASE("dropped connections lose nothing silently and duplicate nothing", "[longpoll][client]") {
  constexpr std::uint64_t total = 100'000;
  poll_server s({.max_batch = 500}, {}, {.retention = {.max_messages = 2000}});
  std::atomic<std::uint64_t> seen{0};  // the client's cursor, for the publisher's pacing
  std::atomic<bool> stop{false};

  // Publishes in random bursts, staying at most 1,500 ahead of the client so that most (not all) messages are
  // still retained when it asks again: both messages and gaps are exercised.
  std::thread publisher([&] {
    std::minstd_rand rng(42);
    std::uint64_t published = 0;
    while (published < total && !stop) {
      if (published - seen.load() > 1500) {
        std::this_thread::yield();
        continue;
      }
      const std::uint64_t burst = std::min<std::uint64_t>(total - published, 1 + rng() % 700);
      for (std::uint64_t i = 0; i < burst; ++i) s.publish("stream", std::to_string(++published));
    }
  });

  // What the client's handlers use is declared before the loop, whose destructor may complete the last operation.
  std::minstd_rand rng(7);
  std::uint64_t expected = 1, messages = 0, missed = 0, drops = 0, polls = 0;
  bool in_order = true, intact = true, failed = false;
  std::function<void()> next;
  client_loop loop;
  longpoll::client& c = loop.start(url(s, "stream"), {.initial_backoff = 1ms}, 0);
  asio::steady_timer dropper(loop.ctx);

  next = [&] {
    // Every tenth poll is dropped as soon as it starts, so that drops happen however fast the server answers. Of
    // the others, one in three is dropped at a random moment within its first 0.5 ms: while connecting, while
    // parked, or after the server answered (the answer is then lost and must be asked for again).
    const bool drop_at_once = polls++ % 10 == 0;
    if (!drop_at_once && rng() % 3 == 0) {
      dropper.expires_after(std::chrono::microseconds(rng() % 500));
      dropper.async_wait([&](std::error_code ec) {
        if (!ec) loop.cancel.emit(asio::cancellation_type::terminal);
      });
    }
    c.async_next(loop.bound([&](std::error_code ec, longpoll::batch b) {
      if (stop) return;  // the test is over, and the loop's destructor cancelled this: `dropper` is gone
      dropper.cancel();
      if (ec == asio::error::operation_aborted) {
        ++drops;
      } else if (ec) {
        failed = true;
        return;
      } else {
        if (b.missed) {
          in_order = in_order && b.missed->first == expected;
          missed += b.missed->last - b.missed->first + 1;
          expected = b.missed->last + 1;
        }
        for (const auto& m : b.messages) {
          in_order = in_order && m.sequence == expected;
          intact = intact && m.data == std::to_string(m.sequence);
          expected = m.sequence + 1;
          ++messages;
        }
        seen = expected - 1;
      }
      if (expected <= total) next();
    }));
    if (drop_at_once) loop.cancel.emit(asio::cancellation_type::terminal);
  };
  next();
  const bool finished = test::run_until(loop.ctx, [&] { return expected > total || failed || !in_order; }, 120s);
  stop = true;
  publisher.join();
  INFO("parked " << s.polls.parked() << " woken " << s.polls.stats().woken << " disc " << s.polls.stats().disconnected << " last " << s.broker.last_sequence("stream") << " expected " << expected);
  INFO("messages " << messages << ", missed " << missed << ", drops " << drops);
  REQUIRE(finished);
  CHECK_FALSE(failed);
  CHECK(in_order);
  CHECK(intact);
  CHECK(messages + missed == total);
  CHECK(messages > 0);
  CHECK(drops > 0);
  CHECK(c.cursor() == total);
}

// As for the HTTP client: the service that owns the client may go with a poll in flight (after stopping the
// io_context, or on its thread), and the io_context after it. Here without `client_loop`, which would end the poll
// first.
TEST_CASE("a poll in flight when the client is destroyed ends with operation_aborted", "[longpoll][client]") {
  asio::io_context ctx;
  std::vector<asio::ip::tcp::socket*> accepted;  // their polls are never answered
  test::scripted_server srv(ctx, [&](asio::ip::tcp::socket& s, std::size_t) { accepted.push_back(&s); });
  auto c = std::make_unique<longpoll::client>(ctx.get_executor(), srv.url("/topics/t/poll"));
  int calls = 0;
  std::error_code ended;
  c->async_next([&](std::error_code ec, const longpoll::batch&) {
    ++calls;
    ended = ec;
  });
  REQUIRE(test::run_until(ctx, [&] { return accepted.size() == 1; }));

  c.reset();
  CHECK(calls == 0);  // not completed inside the destructor
  REQUIRE(test::run_until(ctx, [&] { return calls > 0; }));
  CHECK(calls == 1);
  CHECK(ended == asio::error::operation_aborted);
  // The poll's connection is closed: the server reads its end.
  bool closed = false;
  char byte;
  accepted[0]->async_read_some(asio::buffer(&byte, 1), [&](std::error_code ec, std::size_t) {
    closed = ec == asio::error::eof;
  });
  CHECK(test::run_until(ctx, [&] { return closed; }));
}

TEST_CASE("the client destroyed with a poll in flight and then its io_context leave nothing open", "[longpoll][client]") {
  const std::size_t fds_before = open_fds();
  int calls = 0;
  {
    asio::io_context ctx;
    std::size_t polls = 0;
    test::scripted_server srv(ctx, [&](asio::ip::tcp::socket&, std::size_t) { ++polls; });  // never answers
    auto c = std::make_unique<longpoll::client>(ctx.get_executor(), srv.url("/topics/t/poll"));
    c->async_next([&](std::error_code, const longpoll::batch&) { ++calls; });
    REQUIRE(test::run_until(ctx, [&] { return polls == 1; }));
    ctx.stop();
    c.reset();
  }  // the server, then the io_context and the poll's coroutine in it
  CHECK(calls == 0);
  CHECK(open_fds() == fds_before);
}
