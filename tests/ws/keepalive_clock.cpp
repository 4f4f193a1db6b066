// The keep-alive clock that WebSocket sessions share per execution context: who is ticked, leaving (from any
// place in the list), a shorter period taking effect, and the clock stopping with its last member.
#include <switchboard/ws/detail/keepalive_clock.hpp>

#include "support/catch.hpp"
#include "support/test_support.hpp"

#include <asio/io_context.hpp>

#include <future>
#include <memory>
#include <vector>

using namespace std::chrono_literals;
using switchboard::ws::detail::keepalive_clock;

namespace {

// A member that counts its ticks.
class counting_member final : public keepalive_clock::member, public std::enable_shared_from_this<counting_member> {
 public:
  ~counting_member() { keepalive_clock::leave(*this); }
  void keepalive_tick(std::chrono::steady_clock::time_point) override { ++ticks; }
  std::shared_ptr<keepalive_clock::member> keepalive_ref() noexcept override { return shared_from_this(); }
  int ticks = 0;
};

}  // namespace

TEST_CASE("keepalive clock: ticks its members until they leave, then stops", "[ws][keepalive]") {
  asio::io_context ctx;
  const asio::any_io_executor executor = ctx.get_executor();
  keepalive_clock& clock = keepalive_clock::of(executor);
  CHECK(&clock == &keepalive_clock::of(executor));  // one per context

  std::vector<std::shared_ptr<counting_member>> members;
  for (int i = 0; i < 4; ++i) {
    members.push_back(std::make_shared<counting_member>());
    clock.join(*members.back(), executor, 40ms);
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
  keepalive_clock::leave(*members[0]);
  const int first_ticks = members[0]->ticks;
  auto gone = std::move(members[0]);
  const int others = members[3]->ticks;
  REQUIRE(switchboard::test::run_until(ctx, all_reach(others + 3)));
  CHECK(gone->ticks == first_ticks);

  // Leaving twice, or after the destructor's own leave, is harmless.
  keepalive_clock::leave(*gone);
  gone.reset();

  // Once the last member has left, the context has nothing left to do: run() returns.
  members.clear();
  ctx.restart();
  auto run = std::async(std::launch::async, [&] { ctx.run(); });
  const bool returned = run.wait_for(10s) == std::future_status::ready;
  if (!returned) ctx.stop();
  CHECK(returned);
}

TEST_CASE("keepalive clock: a member with a shorter timeout shortens the period", "[ws][keepalive]") {
  asio::io_context ctx;
  const asio::any_io_executor executor = ctx.get_executor();
  keepalive_clock& clock = keepalive_clock::of(executor);
  auto slow = std::make_shared<counting_member>();
  clock.join(*slow, executor, 1h);  // a period of 1 s
  auto fast = std::make_shared<counting_member>();
  clock.join(*fast, executor, 40ms);  // 10 ms from now on
  // 20 ticks at the first period would take 20 s; the deadline is 10 s.
  REQUIRE(switchboard::test::run_until(ctx, [&] { return slow->ticks >= 20; }));
  CHECK(fast->ticks >= 20);
}
