// The broker's hooks for bridges: the observer (first and last subscription of a name, every message published)
// and `report_gap` (a gap the broker cannot see itself, placed in each subscriber's stream in order).
#include <switchboard/pubsub/broker.hpp>

#include "pubsub/broker_support.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

#include <asio/io_context.hpp>

#include <memory>
#include <string>
#include <vector>

using namespace switchboard::pubsub;
using switchboard::pubsub::test::recorder;
using switchboard::pubsub::test::text;
using switchboard::test::poll;

namespace {

struct log_observer : broker_observer {
  std::vector<std::string> log;
  void on_interest(std::string_view name, bool is_pattern, bool active) override {
    log.push_back(std::string(active ? "+" : "-") + (is_pattern ? "p:" : "t:") + std::string(name));
  }
  void on_publish(const message& m) override {
    log.push_back(std::string(m.topic()) + "#" + std::to_string(m.sequence()) + "=" + std::string(m.data()));
  }
};

}  // namespace

TEST_CASE("broker observer: interest is counted per name", "[pubsub][broker][observer]") {
  asio::io_context ctx;
  broker b(ctx);
  auto before = b.subscribe("early");  // subscribed before the observer: reported when it is installed
  auto obs = std::make_shared<log_observer>();
  b.set_observer(obs);
  CHECK(obs->log == std::vector<std::string>{"+t:early"});
  obs->log.clear();

  {
    auto a1 = b.subscribe("a");
    auto a2 = b.subscribe("a");
    auto p1 = b.subscribe_pattern("a*");
    auto p2 = b.subscribe_pattern("a*");
    CHECK(obs->log == std::vector<std::string>{"+t:a", "+p:a*"});  // the second ones are not news
    a1.unsubscribe();
    p2.unsubscribe();
    CHECK(obs->log.size() == 2);  // one of each is left
  }
  CHECK(obs->log == std::vector<std::string>{"+t:a", "+p:a*", "-p:a*", "-t:a"});  // p1 went before a2

  SECTION("a topic that only a pattern reaches has no interest of its own") {
    obs->log.clear();
    auto p = b.subscribe_pattern("x.*");
    b.publish("x.1", text("m"));
    CHECK(obs->log == std::vector<std::string>{"+p:x.*", "x.1#1=m"});
  }
  SECTION("a closed subscription keeps its interest until its handle goes") {
    obs->log.clear();
    const switchboard::queue_limits one{.max_messages = 1, .max_bytes = 100,
                                        .policy = switchboard::overflow_policy::disconnect};
    auto s = b.subscribe("d", {.limits = one});
    b.publish("d", text("1"));
    b.publish("d", text("2"));  // disconnects it
    CHECK(s.stats().closed);
    CHECK(obs->log == std::vector<std::string>{"+t:d", "d#1=1", "d#2=2"});
    s.unsubscribe();
    CHECK(obs->log.back() == "-t:d");
  }
  SECTION("a removed observer hears nothing more") {
    b.set_observer(nullptr);
    obs->log.clear();
    auto s = b.subscribe("quiet");
    b.publish("quiet", text("m"));
    CHECK(obs->log.empty());
  }
}

TEST_CASE("broker observer: every message, in sequence order", "[pubsub][broker][observer]") {
  asio::io_context ctx;
  broker b(ctx);
  auto obs = std::make_shared<log_observer>();
  b.set_observer(obs);
  b.publish("t", text("a"));  // no subscriber: still published, still observed
  b.publish("t", text("b"));
  b.publish("u", text("c"));
  CHECK(obs->log == std::vector<std::string>{"t#1=a", "t#2=b", "u#1=c"});

  SECTION("a publisher that waits is observed when its message is published") {
    obs->log.clear();
    recorder r;
    auto full = b.subscribe("w", {.limits = switchboard::queue_limits{.max_messages = 1, .max_bytes = 100,
                                                                      .policy = switchboard::overflow_policy::wait},
                                  .on_event = r.callback()});
    b.publish("w", text("1"));
    bool done = false;
    b.async_publish("w", text("2"), [&](std::error_code, std::uint64_t) { done = true; });
    CHECK(obs->log == std::vector<std::string>{"+t:w", "w#1=1"});
    switchboard::test::run_until(ctx, [&] { return done; });  // the callback takes 1, which makes room
    CHECK(obs->log == std::vector<std::string>{"+t:w", "w#1=1", "w#2=2"});
  }
}

TEST_CASE("broker: report_gap", "[pubsub][broker][observer]") {
  asio::io_context ctx;
  broker b(ctx);
  recorder exact, pattern;
  auto s1 = b.subscribe("t", {.on_event = exact.callback()});
  auto s2 = b.subscribe_pattern("t*", {.on_event = pattern.callback()});
  b.publish("t", text("a"));
  b.report_gap("t", gap_reason::upstream);
  b.publish("t", text("b"));
  poll(ctx);
  const std::vector<std::string> expected{"t#1=a", "t gap 2-2 upstream", "t#3=b"};
  CHECK(exact.log == expected);
  CHECK(pattern.log == expected);
  CHECK(b.last_sequence("t") == 3);

  SECTION("by name and by pattern, once per topic") {
    recorder u;
    auto s3 = b.subscribe("u", {.on_event = u.callback()});
    b.publish("u", text("x"));
    b.report_gaps({"t", "nobody"}, {"t*", "u"}, gap_reason::upstream);
    poll(ctx);
    CHECK(exact.log.back() == "t gap 4-4 upstream");
    CHECK(exact.log.size() == 4);
    CHECK(pattern.log.size() == 4);
    CHECK(u.log == std::vector<std::string>{"u#1=x", "u gap 2-2 upstream"});
    CHECK_FALSE(b.stats("nobody"));
  }
  SECTION("an unknown topic is not made") {
    b.report_gap("nobody", gap_reason::upstream);
    CHECK_FALSE(b.stats("nobody"));
  }
  SECTION("the retained log is cleared: a replay from before the gap starts with a gap") {
    b.set_retention("r", {.max_messages = 10});
    b.publish("r", text("1"));
    b.publish("r", text("2"));
    b.report_gap("r", gap_reason::upstream);
    b.publish("r", text("4"));
    recorder replay;
    auto s = b.subscribe("r", {.from = 0, .on_event = replay.callback()});
    poll(ctx);
    CHECK(replay.log == std::vector<std::string>{"r gap 1-3 retention", "r#4=4"});
    const auto page = b.read("r", 3, 10);
    CHECK_FALSE(page.missed);
    CHECK(page.messages.size() == 1);
  }
  SECTION("a waiting reader learns of the gap") {
    std::optional<read_result> got;
    b.async_read("t", 3, 10, [&](std::error_code, read_result r) { got = std::move(r); });
    poll(ctx);
    CHECK_FALSE(got);
    b.report_gap("t", gap_reason::upstream);
    switchboard::test::run_until(ctx, [&] { return got.has_value(); });
    REQUIRE(got->missed);
    CHECK(*got->missed == gap{"t", 4, 4, gap_reason::upstream});
    CHECK(got->next_cursor == 4);
  }
  SECTION("after publishers waiting in line") {
    recorder slow;
    auto w = b.subscribe("q", {.limits = switchboard::queue_limits{.max_messages = 1, .max_bytes = 100,
                                                                   .policy = switchboard::overflow_policy::wait},
                               .on_event = slow.callback()});
    b.publish("q", text("1"));
    bool done = false;
    b.async_publish("q", text("2"), [&](std::error_code, std::uint64_t) { done = true; });
    b.report_gap("q", gap_reason::upstream);
    b.async_publish("q", text("4"), [&](std::error_code, std::uint64_t) {});
    CHECK(switchboard::test::run_until(ctx, [&] { return slow.log.size() == 4 && done; }));
    CHECK(slow.log == std::vector<std::string>{"q#1=1", "q#2=2", "q gap 3-3 upstream", "q#4=4"});
  }
}
