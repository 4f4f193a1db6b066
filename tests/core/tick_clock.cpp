// The clock that objects on one execution context share for coarse deadlines: who is ticked and when (due times),
// leaving (from any place in the list), a shorter period taking effect, and the clock stopping with its last member.
#include <switchboard/core/detail/tick_clock.hpp>

#include "support/catch.hpp"
#include "support/test_support.hpp"

#include <asio/io_context.hpp>

#include <future>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using switchboard::detail::tick_clock;

namespace {

// A member that counts its ticks and asks to be called again `every` later.
class counting_member final : public tick_clock::member, public std::enable_shared_from_this<counting_member> {
 public:
  explicit counting_member(std::chrono::milliseconds every_tick = 0ms) : every(every_tick) {}
  ~counting_member() { tick_clock::leave(*this); }
  tick_clock::time_point tick(tick_clock::time_point now) override {
    ++ticks;
    return now + every;
  }
  std::shared_ptr<tick_clock::member> tick_ref() noexcept override { return shared_from_this(); }
  std::chrono::milliseconds every;
  int ticks = 0;
};

std::future<void> run_in_thread(asio::io_context& ctx) {
  ctx.restart();
  return std::async(std::launch::async, [&ctx] { ctx.run(); });
}

}  // namespace

TEST_CASE("tick clock: ticks its members until they leave, then stops", "[core][tick_clock]") {
  asio::io_context ctx;
  const asio::any_io_executor executor = ctx.get_executor();
  tick_clock& clock = tick_clock::of(executor);
  CHECK(&clock == &tick_clock::of(executor));  // one per context

  std::vector<std::shared_ptr<counting_member>> members;
  for (int i = 0; i < 4; ++i) {
    members.push_back(std::make_shared<counting_member>());
    clock.join(*members.back(), executor, std::chrono::steady_clock::now(), 40ms);
  }
  const auto all_reach = [&](int n) {
    return [&members, n] {
      for (const auto& m : members) {
        if (m && m->ticks < n) return false;
      }
      return true;
    };
  };
  REQUIRE(switchboard::test::run_until(ctx, all_reach(2)));

  // The first member leaves (the last one takes its place in the list); the others keep being ticked.
  tick_clock::leave(*members[0]);
  const int first_ticks = members[0]->ticks;
  auto gone = std::move(members[0]);
  const int others = members[3]->ticks;
  REQUIRE(switchboard::test::run_until(ctx, all_reach(others + 3)));
  CHECK(gone->ticks == first_ticks);

  // Leaving twice, or after the destructor's own leave, is harmless.
  tick_clock::leave(*gone);
  gone.reset();

  // Once the last member has left, the context has nothing left to do: run() returns.
  members.clear();
  auto run = run_in_thread(ctx);
  const bool returned = run.wait_for(10s) == std::future_status::ready;
  if (!returned) ctx.stop();
  CHECK(returned);
}

TEST_CASE("tick clock: a member is called only once it is due", "[core][tick_clock]") {
  asio::io_context ctx;
  const asio::any_io_executor executor = ctx.get_executor();
  tick_clock& clock = tick_clock::of(executor);
  auto often = std::make_shared<counting_member>();       // due at every tick
  auto later = std::make_shared<counting_member>(1h);     // due now, then in an hour
  auto never = std::make_shared<counting_member>();
  const auto now = std::chrono::steady_clock::now();
  clock.join(*often, executor, now, 40ms);
  clock.join(*later, executor, now, 40ms);
  clock.join(*never, executor, now + 1h, 40ms);
  REQUIRE(switchboard::test::run_until(ctx, [&] { return often->ticks >= 10; }));
  CHECK(later->ticks == 1);
  CHECK(never->ticks == 0);
}

TEST_CASE("tick clock: a member with a shorter timeout shortens the period", "[core][tick_clock]") {
  asio::io_context ctx;
  const asio::any_io_executor executor = ctx.get_executor();
  tick_clock& clock = tick_clock::of(executor);
  const auto now = std::chrono::steady_clock::now();
  auto slow = std::make_shared<counting_member>();
  clock.join(*slow, executor, now, 1h);  // a period of 1 s
  auto fast = std::make_shared<counting_member>();
  clock.join(*fast, executor, now, 40ms);  // 10 ms from now on
  // 20 ticks at the first period would take 20 s; the deadline is 10 s.
  REQUIRE(switchboard::test::run_until(ctx, [&] { return slow->ticks >= 20; }));
  CHECK(fast->ticks >= 20);
}

TEST_CASE("tick clock: a member that outlives its context forgets that context's clock", "[core][tick_clock]") {
  // The context's destruction shuts its clock down and frees it: leaving or advancing must not touch the freed
  // clock, and the member must still be able to join another context's clock.
  auto member = std::make_shared<counting_member>(1h);
  {
    asio::io_context gone;
    const asio::any_io_executor executor = gone.get_executor();
    tick_clock::of(executor).join(*member, executor, std::chrono::steady_clock::now() + 1h, 40ms);
  }
  tick_clock::advance(*member, std::chrono::steady_clock::now());
  tick_clock::leave(*member);

  asio::io_context ctx;
  const asio::any_io_executor executor = ctx.get_executor();
  tick_clock::of(executor).join(*member, executor, std::chrono::steady_clock::now(), 40ms);
  CHECK(switchboard::test::run_until(ctx, [&] { return member->ticks == 1; }));
}

TEST_CASE("tick clock: members leave on other threads while the context is destroyed", "[core][tick_clock]") {
  // A member's destructor leaves the clock on the member's thread; the context's destruction shuts the clock down
  // and frees it on another. Neither may touch what the other frees or writes unguarded. Nothing to check here but
  // survival: run under ThreadSanitizer or AddressSanitizer, which report the race and the use of the freed clock.
  constexpr int rounds = 200;
  constexpr int threads_per_round = 3;
  for (int round = 0; round < rounds; ++round) {
    auto ctx = std::make_unique<asio::io_context>();
    std::latch start(threads_per_round + 1);
    std::vector<std::thread> threads;
    {
      const asio::any_io_executor executor = ctx->get_executor();
      for (int i = 0; i < threads_per_round; ++i) {
        auto member = std::make_unique<counting_member>();
        tick_clock::of(executor).join(*member, executor, std::chrono::steady_clock::now() + 1h, 1h);
        threads.emplace_back([member = std::move(member), &start, advances = i % 2 == 0]() mutable {
          start.arrive_and_wait();
          if (advances) tick_clock::advance(*member, std::chrono::steady_clock::now());
          member.reset();  // leaves
        });
      }
    }
    start.arrive_and_wait();
    ctx.reset();
    for (std::thread& t : threads) t.join();
  }
}
