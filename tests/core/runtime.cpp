#include <switchboard/core/runtime.hpp>

#include "support/catch.hpp"

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <csignal>
#include <future>
#include <mutex>
#include <set>
#include <thread>

using namespace std::chrono_literals;
using switchboard::drain_report;
using switchboard::runtime;
using switchboard::runtime_options;

namespace {

// A component that reports `report` when drained, after `delay` (or at once).
class fake_component final : public switchboard::drainable {
 public:
  fake_component(asio::any_io_executor ex, drain_report report, std::chrono::milliseconds delay = 0ms)
      : timer_(ex), report_(report), delay_(delay) {}
  void async_drain(std::chrono::steady_clock::time_point deadline, std::function<void(drain_report)> done) override {
    ++calls;
    last_deadline = deadline;
    timer_.expires_after(delay_);
    timer_.async_wait([this, done = std::move(done)](std::error_code) { done(report_); });
  }
  std::atomic<int> calls{0};
  std::chrono::steady_clock::time_point last_deadline;

 private:
  asio::steady_timer timer_;
  drain_report report_;
  std::chrono::milliseconds delay_;
};

}  // namespace

TEST_CASE("runtime: one io_context per thread, each run by its own thread", "[core][runtime]") {
  runtime rt({.threads = 3, .handle_signals = false});
  REQUIRE(rt.size() == 3);
  // Recorded by the threads and checked here: Catch's assertions are for the test's own thread.
  std::mutex m;
  std::set<std::thread::id> ids;
  int done = 0;
  int on_own_thread = 0;
  for (std::size_t i = 0; i < rt.size(); ++i) {
    asio::post(rt.executor(i), [&, i] {
      const bool own = rt.context(i).get_executor().running_in_this_thread();
      std::lock_guard lock(m);
      ids.insert(std::this_thread::get_id());
      ++done;
      if (own) ++on_own_thread;
    });
  }
  rt.start();
  rt.stop(0ms);
  rt.wait();
  std::lock_guard lock(m);
  CHECK(done == 3);
  CHECK(on_own_thread == 3);
  CHECK(ids.size() == 3);
}

// What the HTTP server leaves behind when it is destroyed after the runtime stopped: handlers queued on the second
// thread, never run, holding objects with I/O objects of the first (its shards share a listener with an acceptor
// per thread). The runtime must shut every context down before it destroys any, or destroying such a handler uses
// the first context's services after they are gone (AddressSanitizer reports it; the release build cannot see it).
TEST_CASE("runtime: handlers left queued on one thread may hold I/O objects of another", "[core][runtime]") {
  struct timer_holder {
    explicit timer_holder(const asio::any_io_executor& ex, bool& destroyed) : timer(ex), destroyed(&destroyed) {}
    ~timer_holder() { *destroyed = true; }
    asio::steady_timer timer;
    bool* destroyed;
  };
  bool destroyed = false;
  {
    runtime rt({.threads = 2, .handle_signals = false});
    auto holder = std::make_shared<timer_holder>(rt.executor(0), destroyed);
    asio::post(rt.executor(1), [holder] {});
  }
  CHECK(destroyed);  // with the handler that held it, when the runtime went
}

TEST_CASE("runtime: stop drains every component and sums their reports", "[core][runtime]") {
  runtime rt({.threads = 2, .handle_signals = false});
  fake_component a(rt.executor(0), {.drained = 2, .cut = 1}, 20ms);
  fake_component b(rt.executor(1), {.drained = 5, .cut = 0});
  rt.add(a);
  rt.add(b);
  rt.start();
  const auto before = std::chrono::steady_clock::now();
  rt.stop(1s);
  const drain_report r = rt.wait();
  CHECK(r.drained == 7);
  CHECK(r.cut == 1);
  CHECK(a.calls == 1);
  CHECK(b.calls == 1);
  CHECK(a.last_deadline >= before + 1s);
  CHECK(rt.stopping());
}

TEST_CASE("runtime: run() on the calling thread returns after the drain", "[core][runtime]") {
  runtime rt({.threads = 2, .handle_signals = false});
  fake_component a(rt.executor(1), {.drained = 1});
  rt.add(a);
  std::thread stopper([&] { rt.stop(0ms); });
  const drain_report r = rt.run();
  stopper.join();
  CHECK(r.drained == 1);
}

TEST_CASE("runtime: SIGTERM starts the drain", "[core][runtime]") {
  runtime rt({.threads = 1, .handle_signals = true});
  fake_component a(rt.executor(0), {.drained = 3});
  rt.add(a);
  rt.start();
  std::raise(SIGTERM);  // delivered to this process; the runtime's signal_set turns it into a drain
  const drain_report r = rt.wait();
  CHECK(r.drained == 3);
  CHECK(a.calls >= 1);
}

TEST_CASE("runtime: SIGTERM with nothing to drain ends the run", "[core][runtime]") {
  runtime rt({.threads = 1, .handle_signals = true});
  rt.start();
  std::raise(SIGTERM);
  auto waited = std::async(std::launch::async, [&] { return rt.wait(); });
  const bool returned = waited.wait_for(10s) == std::future_status::ready;
  REQUIRE(returned);  // else the runtime's threads never end and the watchdog names this test
  CHECK(waited.get().drained == 0);
  CHECK(rt.stopping());
}

TEST_CASE("runtime: once drained, SIGTERM has its default action again", "[core][runtime]") {
  const auto sigterm_action = [] {
    struct sigaction now {};
    ::sigaction(SIGTERM, nullptr, &now);
    return now.sa_handler;
  };
  runtime rt({.threads = 1, .handle_signals = true});
  rt.start();
  CHECK(sigterm_action() != SIG_DFL);  // the runtime's while it runs
  rt.stop(0ms);
  rt.wait();
  CHECK(sigterm_action() == SIG_DFL);  // a signal during the rest of the shutdown is not swallowed
}

TEST_CASE("runtime: an application's own io_context", "[core][runtime]") {
  asio::io_context ctx;
  runtime rt(ctx, {.handle_signals = false});
  CHECK(rt.size() == 1);
  bool ran = false;
  asio::post(rt.executor(), [&] { ran = true; });
  fake_component a(rt.executor(), {.drained = 4});
  rt.add(a);
  rt.stop(0ms);
  const drain_report r = rt.run();  // runs ctx on this thread until the drain is over and ctx has no work
  CHECK(ran);
  CHECK(r.drained == 4);
}

// An application's context outlives the runtime over it, and runs afterwards what the runtime had posted: a stop
// whose drain had not begun, and a component's drain report that came late. Neither may touch the destroyed
// runtime (AddressSanitizer reported a heap-use-after-free in both before).
TEST_CASE("runtime: an application's io_context run after the runtime is gone runs nothing of it", "[core][runtime]") {
  asio::io_context ctx;
  fake_component slow(ctx.get_executor(), {.drained = 1}, 20ms);
  {
    auto rt = std::make_unique<runtime>(ctx, runtime_options{.handle_signals = false});
    rt->add(slow);
    rt->stop(0ms);
    ctx.run_one();  // the drain begins: `slow` reports in 20 ms, to a runtime gone by then
    CHECK(slow.calls == 1);
    rt->stop(0ms);  // and a second stop, posted, not yet run
  }
  ctx.run();  // the report and the second stop find no runtime: nothing happens
  CHECK(slow.calls == 1);
}
