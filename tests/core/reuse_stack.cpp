// reuse_stack: released things kept for reuse, most recent first, and let go once unused for a whole interval.
#include <switchboard/core/detail/reuse_stack.hpp>

#include "support/catch.hpp"

#include <memory>
#include <vector>

using switchboard::detail::reuse_stack;

namespace {

std::vector<int> trim_all(reuse_stack<int>& stack) {
  std::vector<int> discarded;
  stack.trim([&](int item) { discarded.push_back(item); });
  return discarded;
}

}  // namespace

TEST_CASE("reuse_stack: the most recently pushed item is taken first", "[core][reuse_stack]") {
  reuse_stack<int> stack;
  CHECK(stack.empty());
  stack.push(1);
  stack.push(2);
  stack.push(3);
  CHECK(stack.size() == 3);
  CHECK(stack.pop() == 3);
  CHECK(stack.pop() == 2);
  stack.push(4);
  CHECK(stack.pop() == 4);
  CHECK(stack.pop() == 1);
  CHECK(stack.empty());
}

TEST_CASE("reuse_stack: trim lets go of what stayed unused since the previous trim, oldest first",
          "[core][reuse_stack]") {
  reuse_stack<int> stack;
  for (int i = 1; i <= 5; ++i) stack.push(i);
  CHECK(trim_all(stack).empty());  // pushed during this interval, never counted as unused yet
  CHECK(stack.size() == 5);

  // A burst takes three and gives them back: two stayed in the stack the whole interval.
  const int a = stack.pop();
  const int b = stack.pop();
  const int c = stack.pop();
  stack.push(c);
  stack.push(b);
  stack.push(a);
  CHECK(trim_all(stack) == std::vector<int>{1, 2});
  CHECK(stack.size() == 3);

  // The same burst again: the whole of what is left is what it needs.
  for (int i = 0; i < 3; ++i) (void)stack.pop();
  for (int i = 0; i < 3; ++i) stack.push(10 + i);
  CHECK(trim_all(stack).empty());

  // No load for an interval: all of it goes.
  CHECK(trim_all(stack) == std::vector<int>{10, 11, 12});
  CHECK(stack.empty());
  CHECK(trim_all(stack).empty());
}

TEST_CASE("reuse_stack: a burst larger than anything before keeps all of it for the next interval",
          "[core][reuse_stack]") {
  reuse_stack<std::unique_ptr<int>> stack;
  for (int i = 0; i < 1000; ++i) stack.push(std::make_unique<int>(i));
  std::size_t discarded = 0;
  stack.trim([&](std::unique_ptr<int> p) { discarded += p != nullptr; });
  CHECK(discarded == 0);
  std::vector<std::unique_ptr<int>> taken;
  for (int i = 0; i < 1000; ++i) taken.push_back(stack.pop());  // the whole burst
  for (auto& p : taken) stack.push(std::move(p));
  stack.trim([&](std::unique_ptr<int> p) { discarded += p != nullptr; });
  CHECK(discarded == 0);
  CHECK(stack.size() == 1000);
  stack.trim([&](std::unique_ptr<int> p) { discarded += p != nullptr; });
  CHECK(discarded == 1000);
  CHECK(stack.empty());
}
