// The Redis bridge against real redis-servers started by the test: two bridged brokers (two "processes") sharing
// topics, interest reference-counted in Redis, a Redis restart with the outage reported as a gap, and a 3-node
// Redis Cluster with sharded pub/sub and a MOVED redirection. Every wait is on an observable state, with a deadline.
#include <switchboard/pubsub/redis_bridge.hpp>

#include "pubsub/broker_support.hpp"
#include "pubsub/redis_bridge_support.hpp"
#include "support/catch.hpp"
#include "support/redis_server.hpp"
#include "support/test_support.hpp"

#include <switchboard/pubsub/glob.hpp>

#include <asio/io_context.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard;
using namespace switchboard::pubsub;
using switchboard::pubsub::test::peer;
using switchboard::pubsub::test::recorder;
using switchboard::pubsub::test::text;
using switchboard::pubsub::test::to;
using switchboard::test::run_until;

namespace {

/// What a recorder received, without the gap lines.
std::vector<std::string> messages_of(const recorder& r) {
  std::vector<std::string> out;
  for (const std::string& line : r.log) {
    if (line.find(" gap ") == std::string::npos) out.push_back(line);
  }
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

TEST_CASE("redis bridge: envelopes", "[pubsub][redis_bridge]") {
  message m({"t", 7}, message_draft{.payload = shared_bytes::copy(std::string("p\0q", 3)),
                                    .headers = {{"content-type", "text/plain"}, {"", "1:2\n"}},
                                    .key = "k"});
  const std::string wire = pubsub::detail::encode_envelope("origin1", m);
  const pubsub::detail::envelope e = pubsub::detail::decode_envelope(wire);
  CHECK(e.origin == "origin1");
  CHECK(e.draft.payload.view() == std::string("p\0q", 3));
  CHECK(e.draft.key == "k");
  REQUIRE(e.draft.headers.size() == 2);
  CHECK(e.draft.headers[1].value == "1:2\n");
  SECTION("other publishers' payloads are taken as they are") {
    for (std::string raw : {std::string("plain"), std::string(""), std::string("\0sb1\n", 5),
                            std::string("\0sb1\no\n99:k0\n", 13), std::string("\0sb1\no\n1:k2\n1:a")}) {
      const pubsub::detail::envelope r = pubsub::detail::decode_envelope(raw);
      CHECK(r.origin.empty());
      CHECK(r.draft.payload.view() == raw);
    }
  }
  SECTION("redirections") {
    const auto moved = pubsub::detail::parse_redirection("MOVED 3999 127.0.0.1:6381");
    REQUIRE(moved);
    CHECK_FALSE(moved->ask);
    CHECK(moved->slot == 3999);
    CHECK(moved->address == "127.0.0.1:6381");
    CHECK(pubsub::detail::parse_redirection("ASK 1 [::1]:7000")->ask);
    CHECK_FALSE(pubsub::detail::parse_redirection("MOVED 16384 h:1"));
    CHECK_FALSE(pubsub::detail::parse_redirection("ERR MOVED"));
  }
}

TEST_CASE("redis bridge: two brokers share topics", "[pubsub][redis_bridge]") {
  REQUIRE(switchboard::test::have_program("redis-server"));
  switchboard::test::redis_server redis;
  asio::io_context ctx;
  peer a(ctx, to(redis.port()));
  redis_bridge_options resp2 = to(redis.port());
  resp2.redis.protocol = 2;  // z speaks RESP2: pushes are plain arrays on its subscribed connection
  peer z(ctx, resp2);

  recorder a_news, z_news, z_pattern, z_wide;
  auto s1 = a.b.subscribe("news", {.on_event = a_news.callback()});
  auto s2 = z.b.subscribe("news", {.on_event = z_news.callback()});
  auto s3 = z.b.subscribe_pattern("ne*", {.on_event = z_pattern.callback()});
  auto s4 = z.b.subscribe_pattern("*", {.on_event = z_wide.callback()});
  // Redis has confirmed the subscriptions: one channel and two patterns at z, one channel at a.
  REQUIRE(run_until(ctx, [&] {
    const auto sa = a.bridge.stats(), sz = z.bridge.stats();
    return sa.channels == 1 && sz.channels == 1 && sz.patterns == 2;
  }));

  z.b.publish("news", text("local at z"));  // z's own: z#1
  a.b.publish("news", text("from a"));
  a.b.publish("other", text("to the pattern"));
  REQUIRE(run_until(ctx, [&] { return z_news.log.size() == 2 && z_wide.log.size() == 3; }));
  CHECK(z_news.log == std::vector<std::string>{"news#1=local at z", "news#2=from a"});  // z's own numbering
  CHECK(z_pattern.log == z_news.log);
  CHECK(z_wide.log == std::vector<std::string>{"news#1=local at z", "news#2=from a", "other#1=to the pattern"});

  SECTION("no message is delivered twice locally") {
    // A fence: once it arrives everywhere, every echo and duplicate push of what came before has been handled.
    z.b.publish("news", text("fence"));
    REQUIRE(run_until(ctx, [&] {
      return a_news.log.size() == 3 && z_news.log.size() == 3 && a.bridge.stats().echoes == 1 &&
             a.bridge.stats().sent == 2;
    }));
    ctx.poll();
    CHECK(a_news.log == std::vector<std::string>{"news#1=from a", "news#2=local at z", "news#3=fence"});
    CHECK(z_news.log == std::vector<std::string>{"news#1=local at z", "news#2=from a", "news#3=fence"});
    CHECK(z_pattern.log == z_news.log);  // one copy, though Redis sent z a message and two pmessages for each
    CHECK(z_wide.log.size() == 4);
    CHECK(z.bridge.stats().received == 2);  // "from a" and "to the pattern"
    CHECK(a.bridge.stats().received == 2);  // "local at z" and the fence
  }
  SECTION("messages from Redis carry their origin, and are not forwarded again") {
    std::vector<std::string> origins;
    auto s = z.b.subscribe("tagged", {.on_event = [&](std::error_code, const event& e) {
      if (e.is_message()) origins.emplace_back(e.message().header("switchboard-origin").value_or("none"));
    }});
    REQUIRE(run_until(ctx, [&] { return z.bridge.stats().channels == 2; }));
    a.b.publish("tagged", text("x"));
    asio::io_context control;
    switchboard::test::redis_client plain(control, redis.port());
    // z's bridge is one client, counted once for its channel and once for its pattern "*".
    CHECK(plain.call({"PUBLISH", "tagged", "from redis-cli"}).integer == 2);
    REQUIRE(run_until(ctx, [&] { return origins.size() == 2; }));
    std::sort(origins.begin(), origins.end());  // the two publishers raced
    std::vector<std::string> expected{a.bridge.origin(), "redis"};
    std::sort(expected.begin(), expected.end());
    CHECK(origins == expected);
    CHECK(z.bridge.stats().sent == 1);  // only its own "local at z": nothing that came from Redis
  }
}

TEST_CASE("redis bridge: subscribes in Redis only to what is subscribed locally", "[pubsub][redis_bridge]") {
  REQUIRE(switchboard::test::have_program("redis-server"));
  switchboard::test::redis_server redis;
  asio::io_context ctx;
  asio::io_context control;
  switchboard::test::redis_client plain(control, redis.port());
  const auto channels = [&] {
    std::vector<std::string> out;
    for (const resp::value& v : plain.call({"PUBSUB", "CHANNELS"}).elements) out.push_back(v.text);
    std::sort(out.begin(), out.end());
    return out;
  };
  const auto numpat = [&] { return plain.call({"PUBSUB", "NUMPAT"}).integer; };

  peer a(ctx, {.redis = {.port = redis.port()}, .topics = "shared.*"});
  auto early = a.b.subscribe("shared.early");  // before the connection: subscribed once it is up
  REQUIRE(run_until(ctx, [&] { return channels() == std::vector<std::string>{"shared.early"}; }));
  {
    auto s1 = a.b.subscribe("shared.t");
    auto s2 = a.b.subscribe("shared.t");
    auto local = a.b.subscribe("private");  // not matched by `topics`: stays local
    auto p1 = a.b.subscribe_pattern("shared.p*");
    auto p2 = a.b.subscribe_pattern("shared.p*");
    REQUIRE(run_until(ctx, [&] { return channels().size() == 2 && numpat() == 1; }));
    CHECK(channels() == std::vector<std::string>{"shared.early", "shared.t"});
    CHECK(plain.call({"PUBSUB", "NUMSUB", "shared.t"}).elements[1].integer == 1);  // one connection, not two
    s1.unsubscribe();
    p1.unsubscribe();
    // Still one local subscription each: a fence shows that no unsubscription went out.
    auto fence = a.b.subscribe("shared.fence");
    REQUIRE(run_until(ctx, [&] { return channels().size() == 3; }));
    CHECK(contains(channels(), "shared.t"));
    CHECK(numpat() == 1);
  }
  REQUIRE(run_until(ctx, [&] { return channels().size() == 1 && numpat() == 0; }));
  CHECK(channels() == std::vector<std::string>{"shared.early"});
  CHECK(run_until(ctx, [&] { return a.bridge.stats().channels == 1; }));  // the confirmations follow
}

TEST_CASE("redis bridge: a Redis restart", "[pubsub][redis_bridge]") {
  REQUIRE(switchboard::test::have_program("redis-server"));
  auto redis = std::make_unique<switchboard::test::redis_server>();
  const std::uint16_t port = redis->port();
  asio::io_context ctx;
  peer a(ctx, to(port));
  peer z(ctx, to(port));
  recorder got, wide;
  auto s = z.b.subscribe("t", {.on_event = got.callback()});
  auto p = z.b.subscribe_pattern("t*", {.on_event = wide.callback()});
  REQUIRE(run_until(ctx, [&] { return z.bridge.stats().channels == 1 && z.bridge.stats().patterns == 1; }));
  a.b.publish("t", text("before"));
  REQUIRE(run_until(ctx, [&] { return got.log.size() == 1; }));

  redis->stop();
  REQUIRE(run_until(ctx, [&] { return a.bridge.stats().nodes_up == 0 && z.bridge.stats().nodes_up == 0; }));
  a.b.publish("t", text("during"));  // waits in a's outgoing queue
  redis = std::make_unique<switchboard::test::redis_server>(port, std::vector<std::string>{});
  REQUIRE(run_until(ctx, [&] {
    const auto sz = z.bridge.stats();
    return sz.outages == 1 && sz.channels == 1 && sz.patterns == 1 && a.bridge.stats().nodes_up == 1;
  }, 20s));
  a.b.publish("t", text("after"));
  REQUIRE(run_until(ctx, [&] { return !got.log.empty() && got.log.back().ends_with("=after"); }));

  // "during" reached Redis when a came back, before or after z resubscribed: either is right. The gap is there.
  REQUIRE(got.log.size() >= 3);
  CHECK(got.log[0] == "t#1=before");
  CHECK(got.log[1] == "t gap 2-2 upstream");
  CHECK(got.log.size() <= 4);
  if (got.log.size() == 4) CHECK(got.log[2] == "t#3=during");
  CHECK(wide.log == got.log);  // the pattern subscriber's topic got one gap, not one per subscription
  CHECK(a.bridge.stats().reconnects == 1);
  CHECK(z.bridge.stats().reconnects == 1);
  CHECK(a.bridge.stats().dropped_outgoing == 0);
}

// A Redis that hangs (frozen with SIGSTOP: its connections stay open, nothing is answered) is found by the Redis
// client's liveness check, and its outage is reported as a gap like a lost connection's.
TEST_CASE("redis bridge: a hung Redis", "[pubsub][redis_bridge]") {
  REQUIRE(switchboard::test::have_program("redis-server"));
  switchboard::test::redis_server redis;
  asio::io_context ctx;
  auto options = to(redis.port());
  options.redis.health_check_interval = 50ms;
  peer a(ctx, options);
  peer z(ctx, options);
  recorder got;
  auto s = z.b.subscribe("t", {.on_event = got.callback()});
  REQUIRE(run_until(ctx, [&] { return z.bridge.stats().channels == 1 && a.bridge.stats().nodes_up == 1; }));
  a.b.publish("t", text("before"));
  REQUIRE(run_until(ctx, [&] { return got.log.size() == 1; }));

  redis.pause();
  REQUIRE(run_until(ctx, [&] { return z.bridge.stats().nodes_up == 0; }));
  redis.resume();
  REQUIRE(run_until(ctx, [&] {
    const auto sz = z.bridge.stats();
    return sz.outages == 1 && sz.channels == 1 && sz.nodes_up == 1 && a.bridge.stats().nodes_up == 1;
  }, 20s));
  a.b.publish("t", text("after"));
  REQUIRE(run_until(ctx, [&] { return !got.log.empty() && got.log.back().ends_with("=after"); }));
  CHECK(got.log == std::vector<std::string>{"t#1=before", "t gap 2-2 upstream", "t#3=after"});
}

TEST_CASE("redis bridge: Redis Cluster, sharded pub/sub", "[pubsub][redis_bridge][cluster]") {
  REQUIRE(switchboard::test::have_program("redis-server"));
  switchboard::test::redis_cluster cluster(3);
  asio::io_context control;
  std::vector<std::unique_ptr<switchboard::test::redis_client>> nodes;
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    nodes.push_back(std::make_unique<switchboard::test::redis_client>(control, cluster.port(i)));
    ids.push_back(nodes.back()->call({"CLUSTER", "MYID"}).text);
  }
  // Which node owns a slot, by CLUSTER SLOTS.
  const auto owner = [&](std::uint16_t slot) -> std::size_t {
    for (const resp::value& range : nodes[0]->call({"CLUSTER", "SLOTS"}).elements) {
      if (range.elements[0].integer <= slot && slot <= range.elements[1].integer) {
        for (std::size_t i = 0; i < cluster.size(); ++i) {
          if (range.elements[2].elements[1].integer == cluster.port(i)) return i;
        }
      }
    }
    FAIL("no owner for slot " << slot);
    return 0;
  };
  // One topic on each node.
  std::vector<std::string> topics(cluster.size());
  for (int i = 0; std::any_of(topics.begin(), topics.end(), [](const auto& t) { return t.empty(); }); ++i) {
    const std::string name = "room." + std::to_string(i);
    std::string& slot = topics[owner(resp::hash_slot(name))];
    if (slot.empty()) slot = name;
  }

  asio::io_context ctx;
  redis_bridge_options options{.redis = {.port = cluster.port(0)}, .cluster = true, .initial_backoff = 20ms,
                               .max_backoff = 200ms, .cluster_refresh_interval = 0ms};
  peer a(ctx, options);
  peer z(ctx, options);
  std::map<std::string, recorder> got;
  std::vector<broker::subscription_type> subs;
  for (const std::string& t : topics) subs.push_back(z.b.subscribe(t, {.on_event = got[t].callback()}));
  auto pattern = z.b.subscribe_pattern("room.*");  // stays local in a cluster
  REQUIRE(run_until(ctx, [&] { return z.bridge.stats().channels == topics.size(); }));
  for (std::size_t i = 0; i < topics.size(); ++i) {
    // Each node carries the channel of its own slots, and only that one.
    const resp::value shard = nodes[i]->call({"PUBSUB", "SHARDCHANNELS"});
    REQUIRE(shard.elements.size() == 1);
    CHECK(shard.elements[0].text == topics[i]);
  }
  CHECK(z.bridge.stats().patterns == 0);
  CHECK(nodes[0]->call({"PUBSUB", "NUMPAT"}).integer == 0);

  for (const std::string& t : topics) a.b.publish(t, text("hello " + t));
  REQUIRE(run_until(ctx, [&] {
    return std::all_of(topics.begin(), topics.end(), [&](const auto& t) { return got[t].log.size() == 1; });
  }));
  for (const std::string& t : topics) CHECK(got[t].log[0] == t + "#1=hello " + t);
  CHECK(a.bridge.stats().nodes_up == cluster.size());
  CHECK(a.bridge.stats().redirects == 0);

  SECTION("a slot moves: MOVED is followed, the subscriber follows the slot") {
    // Move the (empty) slot of topics[0] from node 0 to node 1, as a resharding does (CLUSTER SETSLOT, in the
    // order the specification gives: importing, migrating, then the new owner everywhere).
    const std::string moving = topics[0];
    const std::string slot = std::to_string(resp::hash_slot(moving));
    CHECK(nodes[1]->call({"CLUSTER", "SETSLOT", slot, "IMPORTING", ids[0]}).text == "OK");
    CHECK(nodes[0]->call({"CLUSTER", "SETSLOT", slot, "MIGRATING", ids[1]}).text == "OK");
    for (std::size_t i : {1, 0, 2}) CHECK(nodes[i]->call({"CLUSTER", "SETSLOT", slot, "NODE", ids[1]}).text == "OK");
    // z's shard subscription at node 0 ended (Redis sends sunsubscribe); z subscribes at node 1.
    REQUIRE(run_until(ctx, [&] {
      const resp::value n = nodes[1]->call({"PUBSUB", "SHARDNUMSUB", moving});
      return n.elements.size() == 2 && n.elements[1].integer == 1;
    }, 20s));
    CHECK(z.bridge.stats().outages >= 1);
    // a still routes the slot to node 0, which answers MOVED: a follows it and refreshes its map.
    a.b.publish(moving, text("moved"));
    REQUIRE(run_until(ctx, [&] { return messages_of(got[moving]).size() == 2; }));
    CHECK(messages_of(got[moving])[1] == moving + "#3=moved");  // #2 is the gap of the move
    CHECK(a.bridge.stats().redirects >= 1);
    CHECK(run_until(ctx, [&] { return a.bridge.stats().slot_refreshes >= 2; }));  // the redirection's refresh
    CHECK(a.bridge.stats().dropped_outgoing == 0);
  }
}

TEST_CASE("redis bridge: local messages wait for Redis in a bounded queue", "[pubsub][redis_bridge]") {
  asio::io_context ctx;
  const std::uint16_t nobody = switchboard::test::free_loopback_port();  // nothing listens there
  redis_bridge_options options = to(nobody);
  options.max_outgoing = 3;
  peer a(ctx, options);
  recorder local;
  auto s = a.b.subscribe("t", {.on_event = local.callback()});
  for (int i = 1; i <= 10; ++i) a.b.publish("t", text(std::to_string(i)));
  // Local subscribers are served without Redis; what waits for Redis is bounded, and the excess counted.
  REQUIRE(run_until(ctx, [&] { return local.log.size() == 10 && a.bridge.stats().dropped_outgoing == 7; }));
  CHECK(a.bridge.stats().nodes_up == 0);
  CHECK(a.bridge.stats().sent == 0);
}

TEST_CASE("redis bridge: the queue for Redis is bounded in bytes too", "[pubsub][redis_bridge]") {
  asio::io_context ctx;
  redis_bridge_options options = to(switchboard::test::free_loopback_port());  // nothing listens there
  options.max_outgoing = 100;
  options.max_outgoing_bytes = 2500;  // two messages of 1 + 1,000 bytes (topic and payload), not three
  peer a(ctx, options);
  // Taken by the bridge's thread one at a time (the outgoing queue's bound), or all at once from the broker's
  // observer (its own bound): either way two are kept.
  const bool one_at_a_time = GENERATE(true, false);
  for (int i = 0; i < 10; ++i) {
    a.b.publish("t", text(std::string(1000, 'x')));
    if (one_at_a_time) ctx.poll();
  }
  CHECK(run_until(ctx, [&] { return a.bridge.stats().dropped_outgoing == 8; }));
  CHECK_THROWS_AS(peer(ctx, [] {
                    redis_bridge_options o;
                    o.max_outgoing_bytes = 0;
                    return o;
                  }()),
                  std::invalid_argument);
}

// Two bridged brokers under a random stream of publishes from both sides, to exact topics and topics matched by
// several overlapping patterns (Redis sends a message and a pmessage per matching subscription of the bridge's one
// client): every local subscriber must get each matching message once, from each origin in publish order.
TEST_CASE("redis bridge: a random stream of publishes from both brokers reaches every subscriber once, in order",
          "[pubsub][redis_bridge]") {
  switchboard::test::redis_server redis;
  asio::io_context ctx;
  peer a(ctx, to(redis.port()));
  peer z(ctx, to(redis.port()));
  const std::vector<std::string> names{"t0", "t1", "t[01]", "t*", "*", "u?"};  // exact first, then patterns
  struct listener {
    std::string name;
    recorder r;
    subscription s;
  };
  std::vector<std::unique_ptr<listener>> listeners;
  for (peer* p : {&a, &z}) {
    for (const std::string& name : names) {
      auto l = std::make_unique<listener>();
      l->name = name;
      const bool pattern = name.find_first_of("*?[") != std::string::npos;
      l->s = pattern ? p->b.subscribe_pattern(name, {.on_event = l->r.callback()})
                     : p->b.subscribe(name, {.on_event = l->r.callback()});
      listeners.push_back(std::move(l));
    }
  }
  REQUIRE(run_until(ctx, [&] {
    return a.bridge.stats().channels == 2 && a.bridge.stats().patterns == 4 && z.bridge.stats().channels == 2 &&
           z.bridge.stats().patterns == 4;
  }));

  std::mt19937 rng(2026);
  const std::vector<std::string> topics{"t0", "t1", "t2", "u1", "v"};
  std::vector<std::pair<std::string, std::string>> published;  // topic, payload "<origin>:<n>"
  for (int n = 0; n < 400; ++n) {
    peer& from = rng() % 2 == 0 ? a : z;
    const std::string& topic = topics[rng() % topics.size()];
    published.emplace_back(topic, std::string(&from == &a ? "a" : "z") + ":" + std::to_string(n));
    REQUIRE(from.b.publish(topic, text(published.back().second)));
    if (rng() % 4 == 0) ctx.poll();  // let Redis traffic interleave with the publishes
  }
  // What each listener must get: the payloads of the matching topics, in publish order per origin.
  auto expected_for = [&](const std::string& name) {
    std::vector<std::string> out;
    for (const auto& [topic, payload] : published) {
      if (pubsub::glob_match(name, topic)) out.push_back(payload);
    }
    return out;
  };
  auto payloads_of = [](const recorder& r) {
    std::vector<std::string> out;
    for (const std::string& line : messages_of(r)) out.push_back(line.substr(line.find('=') + 1));
    return out;
  };
  REQUIRE(run_until(ctx, [&] {
    return std::all_of(listeners.begin(), listeners.end(), [&](const auto& l) {
      return messages_of(l->r).size() >= expected_for(l->name).size();
    });
  }));
  ctx.poll();  // anything extra (a duplicate) that was on its way
  for (const auto& l : listeners) {
    INFO(l->name);
    std::vector<std::string> got = payloads_of(l->r);
    std::vector<std::string> want = expected_for(l->name);
    CHECK(got.size() == want.size());
    // Per origin, in publish order (the two origins interleave differently at each broker).
    for (const char origin : {'a', 'z'}) {
      auto only = [origin](std::vector<std::string> v) {
        std::erase_if(v, [origin](const std::string& p) { return p[0] != origin; });
        return v;
      };
      CHECK(only(got) == only(want));
    }
    CHECK(l->r.log.size() == messages_of(l->r).size());  // no gap
  }
}
