// The broker's basics: numbering, fan-out without copies, one post per executor, RAII subscriptions, patterns,
// limits, statistics and metrics.
#include <switchboard/pubsub/broker.hpp>

#include "pubsub/broker_support.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

#include <asio/io_context.hpp>

#include <memory>
#include <string>
#include <system_error>
#include <vector>

using namespace switchboard::pubsub;
using switchboard::pubsub::test::recorder;
using switchboard::pubsub::test::text;
using switchboard::test::poll;

TEST_CASE("broker: each topic numbers its messages from 1", "[pubsub][broker]") {
  asio::io_context ctx;
  broker b(ctx);
  recorder r;
  auto sub = b.subscribe("t", {.on_event = r.callback()});
  CHECK(b.last_sequence("t") == 0);
  const publish_result first = b.publish("t", text("a"));
  CHECK(first);
  CHECK(first.sequence == 1);
  CHECK(first.subscribers == 1);
  CHECK(b.publish("t", text("b")).sequence == 2);
  CHECK(b.publish("other", text("x")).sequence == 1);  // another topic, its own numbering
  CHECK(b.last_sequence("t") == 2);
  CHECK(b.last_sequence("other") == 1);
  CHECK(b.last_sequence("unknown") == 0);
  poll(ctx);
  CHECK(r.log == std::vector<std::string>{"t#1=a", "t#2=b"});
}

TEST_CASE("broker: the default message carries payload, headers and key", "[pubsub][broker][message]") {
  asio::io_context ctx;
  broker b(ctx);
  std::vector<event> got;
  auto sub = b.subscribe("t", {.on_event = [&](std::error_code, const event& e) { got.push_back(e); }});
  b.publish("t", {.payload = switchboard::shared_bytes::copy("{}"),
                  .headers = {{"content-type", "application/json"}, {"event", "update"}},
                  .key = "k"});
  poll(ctx);
  REQUIRE(got.size() == 1);
  REQUIRE(got[0].is_message());
  const message& m = got[0].message();
  CHECK(m.topic() == "t");
  CHECK(m.sequence() == 1);
  CHECK(m.data() == "{}");
  CHECK(m.content_type() == "application/json");
  CHECK(m.header("event") == "update");
  CHECK_FALSE(m.header("Event"));  // names compare exactly
  CHECK(m.headers().size() == 2);
  CHECK(m.conflation_key() == "k");
  CHECK(m.size() == 2 + 12 + 16 + 5 + 6 + 1);  // payload, both headers' names and values, key
}

TEST_CASE("broker: publishing to many subscribers shares one payload", "[pubsub][broker]") {
  asio::io_context ctx;
  broker b(ctx);
  std::vector<message> got;
  std::vector<subscription> subs;
  for (int i = 0; i < 10; ++i) {
    subs.push_back(b.subscribe("t", {.on_event = [&](std::error_code, const event& e) { got.push_back(e.message()); }}));
  }
  const auto payload = switchboard::shared_bytes::copy(std::string(1000, 'x'));
  const publish_result r = b.publish("t", {.payload = payload});
  CHECK(r.subscribers == 10);
  // The caller's handle and the message's: ten queued copies of the message share one body.
  CHECK(payload.use_count() == 2);
  poll(ctx);
  REQUIRE(got.size() == 10);
  for (const message& m : got) CHECK(m.data().data() == payload.data());
}

TEST_CASE("broker: a publish posts one drain per executor, not one per subscriber", "[pubsub][broker]") {
  asio::io_context a;
  asio::io_context c;
  broker b(a);
  int on_a = 0;
  int on_c = 0;
  std::vector<subscription> subs;
  for (int i = 0; i < 100; ++i) {
    subs.push_back(b.subscribe("t", {.on_event = [&](std::error_code, const event&) { ++on_a; }}));
    subs.push_back(
        b.subscribe("t", {.executor = c.get_executor(), .on_event = [&](std::error_code, const event&) { ++on_c; }}));
  }
  b.publish("t", text("1"));
  CHECK(poll(a) == 1);
  CHECK(poll(c) == 1);
  CHECK(on_a == 100);
  CHECK(on_c == 100);

  SECTION("and a busy executor drains many publishes in one") {
    for (int i = 0; i < 10; ++i) b.publish("t", text("more"));
    CHECK(poll(a) == 1);
    CHECK(on_a == 1100);
  }
}

TEST_CASE("broker: a subscription is an RAII handle", "[pubsub][broker][subscription]") {
  asio::io_context ctx;
  broker b(ctx);
  recorder r;

  SECTION("destroying it unsubscribes") {
    {
      auto sub = b.subscribe("t", {.on_event = r.callback()});
      CHECK(b.stats("t")->subscribers == 1);
      CHECK(b.stats().subscriptions == 1);
    }
    CHECK_FALSE(b.stats("t"));  // nothing was published to it: forgotten with its last subscriber
    CHECK(b.stats().subscriptions == 0);
    CHECK(b.publish("t", text("a")).subscribers == 0);
    poll(ctx);
    CHECK(r.log.empty());
  }

  SECTION("queued events are not delivered after unsubscribing") {
    auto sub = b.subscribe("t", {.on_event = r.callback()});
    b.publish("t", text("a"));
    sub.unsubscribe();
    CHECK_FALSE(sub);
    sub.unsubscribe();  // idempotent
    poll(ctx);
    CHECK(r.log.empty());
  }

  SECTION("moving it moves the subscription") {
    auto sub = b.subscribe("t", {.on_event = r.callback()});
    subscription moved = std::move(sub);
    CHECK_FALSE(sub);
    REQUIRE(moved);
    CHECK(moved.topic() == "t");
    b.publish("t", text("a"));
    poll(ctx);
    CHECK(r.log == std::vector<std::string>{"t#1=a"});

    recorder other;
    moved = b.subscribe("u", {.on_event = other.callback()});  // the old subscription ends
    CHECK(b.stats("t")->subscribers == 0);
    b.publish("t", text("b"));
    b.publish("u", text("c"));
    poll(ctx);
    CHECK(r.log == std::vector<std::string>{"t#1=a"});
    CHECK(other.log == std::vector<std::string>{"u#1=c"});
  }

  SECTION("destroyed from its own callback, no further callback runs") {
    subscription sub;
    int calls = 0;
    sub = b.subscribe("t", {.on_event = [&](std::error_code, const event&) {
                              ++calls;
                              sub.unsubscribe();
                            }});
    for (int i = 0; i < 5; ++i) b.publish("t", text("x"));
    poll(ctx);
    CHECK(calls == 1);
  }

  SECTION("destroyed on its executor, messages queued before are not delivered") {
    auto sub = b.subscribe("t", {.on_event = r.callback()});
    asio::post(ctx, [&] { sub.unsubscribe(); });
    b.publish("t", text("a"));  // queued; its drain runs after the unsubscribe
    poll(ctx);
    CHECK(r.log.empty());
  }

  SECTION("it may outlive its broker") {
    subscription sub;
    {
      broker short_lived(ctx);
      sub = short_lived.subscribe("t", {.on_event = r.callback()});
    }
    poll(ctx);
    CHECK(r.log == std::vector<std::string>{"error: closed"});
    sub.unsubscribe();
  }
}

TEST_CASE("broker: pattern subscriptions", "[pubsub][broker][pattern]") {
  asio::io_context ctx;
  broker b(ctx);
  recorder r;
  b.publish("news.asia", text("before"));  // a topic that exists before the pattern
  auto sub = b.subscribe_pattern("news.*", {.on_event = r.callback()});
  CHECK(sub.is_pattern());
  CHECK(sub.topic() == "news.*");
  CHECK(b.stats().patterns == 1);
  b.publish("news.eu", text("a"));    // a topic made after the pattern
  b.publish("sport.eu", text("b"));   // no match
  b.publish("news.asia", text("c"));
  b.publish("news", text("d"));       // no match: the pattern needs the dot
  b.publish("", text("e"));           // Redis: an empty channel matches no pattern but ""
  poll(ctx);
  CHECK(r.log == std::vector<std::string>{"news.eu#1=a", "news.asia#2=c"});

  SECTION("an exact and a pattern subscription both receive") {
    recorder exact;
    auto e = b.subscribe("news.eu", {.on_event = exact.callback()});
    CHECK(b.publish("news.eu", text("f")).subscribers == 2);
    poll(ctx);
    CHECK(exact.log == std::vector<std::string>{"news.eu#2=f"});
    CHECK(r.log.back() == "news.eu#2=f");
  }

  SECTION("unsubscribing the last subscriber of a pattern forgets the pattern") {
    sub.unsubscribe();
    CHECK(b.stats().patterns == 0);
    CHECK(b.stats("news.eu")->subscribers == 0);
    CHECK(b.publish("news.eu", text("g")).subscribers == 0);
  }

  SECTION("`from` needs an exact topic") {
    CHECK_THROWS_AS(b.subscribe_pattern("news.*", {.from = 0}), std::invalid_argument);
  }
}

TEST_CASE("broker: limits", "[pubsub][broker][limits]") {
  asio::io_context ctx;
  broker b(ctx, {.max_topics = 2, .max_topic_length = 8, .max_subscriptions = 2});

  SECTION("topics") {
    CHECK(b.publish("a", text("1")));
    CHECK(b.publish("b", text("1")));
    const publish_result r = b.publish("c", text("1"));
    CHECK(r.error == error::too_many_topics);
    CHECK(r.sequence == 0);
    CHECK(b.publish("a", text("2")).sequence == 2);  // existing topics still work
    std::error_code ec;
    auto sub = b.subscribe("c", {}, ec);
    CHECK(ec == error::too_many_topics);
    CHECK_FALSE(sub);
    CHECK(b.stats().topics == 2);
    CHECK(b.erase_topic("a"));
    CHECK(b.publish("c", text("1")));
  }

  SECTION("topic and pattern length") {
    CHECK(b.publish("12345678", text("1")));
    CHECK(b.publish("123456789", text("1")).error == error::topic_too_long);
    std::error_code ec;
    b.subscribe_pattern("123456789", {}, ec);
    CHECK(ec == error::topic_too_long);
    CHECK_THROWS_AS(b.subscribe("123456789"), std::system_error);
  }

  SECTION("subscriptions") {
    auto s1 = b.subscribe("a");
    auto s2 = b.subscribe_pattern("*");
    std::error_code ec;
    auto s3 = b.subscribe("a", {}, ec);
    CHECK(ec == error::too_many_subscriptions);
    CHECK_FALSE(s3);
    try {
      b.subscribe("a");
      FAIL("no exception");
    } catch (const std::system_error& e) {
      CHECK(e.code() == error::too_many_subscriptions);
    }
    s1.unsubscribe();
    CHECK(b.subscribe("a"));
  }

  SECTION("bad configuration throws") {
    CHECK_THROWS_AS(broker(ctx, {.max_topics = 0}), std::invalid_argument);
    CHECK_THROWS_AS(b.subscribe("a", {.limits = switchboard::queue_limits{.max_messages = 0}}), std::invalid_argument);
  }
}

TEST_CASE("broker: statistics and metrics", "[pubsub][broker][metrics]") {
  asio::io_context ctx;
  broker b(ctx, {.retention = {.max_messages = 10}});
  auto sub = b.subscribe(
      "t", {.limits = switchboard::queue_limits{.max_messages = 2, .policy = switchboard::overflow_policy::drop_oldest}});
  for (int i = 0; i < 5; ++i) b.publish("t", text("abc"));

  const subscription_stats s = sub.stats();
  CHECK(s.depth == 2);
  CHECK(s.bytes == 6);
  CHECK(s.peak_depth == 2);
  CHECK(s.dropped == 3);
  CHECK(s.delivered == 0);
  const topic_stats t = *b.stats("t");
  CHECK(t.last_sequence == 5);
  CHECK(t.published == 5);
  CHECK(t.enqueued == 5);
  CHECK(t.dropped == 3);
  CHECK(t.subscribers == 1);
  CHECK(t.retained == 5);
  CHECK(t.retained_bytes == 15);
  CHECK_FALSE(b.stats("unknown"));

  switchboard::metrics_registry registry;
  const auto broker_metrics = b.export_metrics(registry);
  const auto topic_metrics = b.export_topic_metrics(registry, "t");
  const auto sub_metrics = sub.export_metrics(registry, "s1");
  std::string text_format;
  registry.expose(text_format);
  CHECK(text_format.find("switchboard_pubsub_published_total 5\n") != std::string::npos);
  CHECK(text_format.find("switchboard_pubsub_dropped_total 3\n") != std::string::npos);
  CHECK(text_format.find("switchboard_pubsub_topics 1\n") != std::string::npos);
  CHECK(text_format.find("switchboard_pubsub_topic_last_sequence{topic=\"t\"} 5\n") != std::string::npos);
  CHECK(text_format.find("switchboard_pubsub_topic_retained_bytes{topic=\"t\"} 15\n") != std::string::npos);
  CHECK(text_format.find("switchboard_pubsub_subscription_queue_depth{subscription=\"s1\"} 2\n") != std::string::npos);
  CHECK(text_format.find("switchboard_pubsub_subscription_dropped_total{subscription=\"s1\"} 3\n") != std::string::npos);
  // An empty handle has nothing to export: refused now, not read through at the next scrape.
  subscription empty;
  CHECK_THROWS_AS(empty.export_metrics(registry, "none"), std::logic_error);

  SECTION("the broker's totals never go down when a topic is erased") {
    sub.unsubscribe();
    REQUIRE(b.erase_topic("t"));
    CHECK(b.stats().published == 5);
    CHECK(b.stats().dropped == 3);
    CHECK(b.stats().topics == 0);
  }
}
