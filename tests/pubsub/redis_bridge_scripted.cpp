// The Redis bridge against scripted stand-ins for Redis nodes, for what a real redis-server cannot be made to do on
// cue: stream messages without end while the bridge is destroyed from another thread, fail a cluster's master over
// to another node that the bridge has not yet seen go down, and hang on CLUSTER SLOTS. Every wait is on an
// observable state, with a deadline.
#include <switchboard/pubsub/redis_bridge.hpp>

#include "pubsub/broker_support.hpp"
#include "support/catch.hpp"
#include "support/eventually.hpp"
#include "support/test_support.hpp"

#include <switchboard/pubsub/observer.hpp>
#include <switchboard/resp/command_parser.hpp>
#include <switchboard/resp/hash_slot.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <array>
#include <atomic>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard;
using namespace switchboard::pubsub;
using switchboard::pubsub::test::describe;
using switchboard::pubsub::test::numbered;
using switchboard::pubsub::test::recorder;
using switchboard::test::eventually;
using switchboard::test::run_until;

namespace {

std::string bulk(std::string_view s) { return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n"; }

/// A RESP3 push of three bulk strings ("smessage", channel, payload), or a confirmation with its count.
std::string push(std::string_view kind, std::string_view channel, std::string_view payload) {
  return ">3\r\n" + bulk(kind) + bulk(channel) + bulk(payload);
}
std::string confirmation(std::string_view kind, std::string_view channel, int count) {
  return ">3\r\n" + bulk(kind) + bulk(channel) + ":" + std::to_string(count) + "\r\n";
}

/// A scripted Redis node on `ctx`, on a free loopback port. It answers HELLO with an empty map (RESP3), CLUSTER
/// SLOTS with `slots`, SUBSCRIBE and SSUBSCRIBE with their confirmation (one channel per command), and anything
/// else with +OK, but never answers the commands named in `silent` (a hung server). `send` pushes a message to the
/// connections subscribed to a channel; with `stream` set, a connection that subscribes is sent `stream` over and
/// over, as fast as it reads, until it goes.
class scripted_node {
 public:
  explicit scripted_node(asio::io_context& ctx) : acceptor_(ctx, {asio::ip::address_v4::loopback(), 0}) { accept(); }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  /// Connections subscribed to `channel` now.
  std::size_t subscribers(const std::string& channel) const {
    std::size_t n = 0;
    for (const auto& c : connections_) n += c->socket.is_open() && c->channels.count(channel);
    return n;
  }

  void send(std::string_view kind, const std::string& channel, std::string_view payload) {
    for (const auto& c : connections_) {
      if (c->socket.is_open() && c->channels.count(channel)) write(c, push(kind, channel, payload));
    }
  }

  /// How many times `command` was received, over every connection.
  std::size_t asked(const std::string& command) const {
    const auto it = asked_.find(command);
    return it == asked_.end() ? 0 : it->second;
  }

  /// Closes the listening socket and every connection: connections to this node are refused from now on.
  void kill() {
    std::error_code ignored;
    acceptor_.close(ignored);
    for (const auto& c : connections_) c->socket.close(ignored);
  }

  std::function<std::string()> slots;
  std::string stream;
  std::set<std::string> silent;

 private:
  struct connection {
    explicit connection(asio::ip::tcp::socket s) : socket(std::move(s)) {}
    asio::ip::tcp::socket socket;
    resp::command_parser parser;
    std::string in, out, writing;
    std::array<char, 4096> buffer{};
    std::set<std::string> channels;
  };
  using connection_ptr = std::shared_ptr<connection>;

  void accept() {
    acceptor_.async_accept([this](std::error_code ec, asio::ip::tcp::socket s) {
      if (ec) return;
      connections_.push_back(std::make_shared<connection>(std::move(s)));
      read(connections_.back());
      accept();
    });
  }

  void read(const connection_ptr& c) {
    c->socket.async_read_some(asio::buffer(c->buffer), [this, c](std::error_code ec, std::size_t n) {
      if (ec) return;
      c->in.append(c->buffer.data(), n);
      for (;;) {
        const std::size_t used = c->parser.parse(c->in, ec);
        if (ec) return;
        if (!c->parser.has_command()) {
          c->in.erase(0, used);
          break;
        }
        const std::vector<std::string> args(c->parser.args().begin(), c->parser.args().end());
        c->in.erase(0, used);
        answer(c, args);
      }
      read(c);
    });
  }

  void answer(const connection_ptr& c, const std::vector<std::string>& args) {
    ++asked_[args[0]];
    if (silent.count(args[0])) return;
    if (args[0] == "HELLO") return write(c, "%0\r\n");
    if (args[0] == "CLUSTER") return write(c, slots());
    if ((args[0] == "SSUBSCRIBE" || args[0] == "SUBSCRIBE") && args.size() == 2) {
      c->channels.insert(args[1]);
      return write(c, confirmation(args[0] == "SSUBSCRIBE" ? "ssubscribe" : "subscribe", args[1], 1));
    }
    write(c, "+OK\r\n");
  }

  void write(const connection_ptr& c, std::string_view bytes) {
    c->out += bytes;
    if (c->writing.empty()) write_queued(c);
  }

  void write_queued(const connection_ptr& c) {
    if (c->out.empty() && !c->channels.empty()) c->out = stream;
    if (c->out.empty() || !c->socket.is_open()) return;
    c->writing.swap(c->out);
    asio::async_write(c->socket, asio::buffer(c->writing), [this, c](std::error_code ec, std::size_t) {
      c->writing.clear();
      if (!ec) write_queued(c);
    });
  }

  asio::ip::tcp::acceptor acceptor_;
  std::vector<connection_ptr> connections_;
  std::map<std::string, std::size_t> asked_;
};

/// CLUSTER SLOTS's entry for slots `first`..`last` at 127.0.0.1:`port`.
std::string slot_range(int first, int last, std::uint16_t port) {
  return "*3\r\n:" + std::to_string(first) + "\r\n:" + std::to_string(last) + "\r\n*3\r\n" + bulk("127.0.0.1") +
         ":" + std::to_string(port) + "\r\n" + bulk("id");
}

/// Counts what is published to the broker it observes.
struct counting_observer final : broker_observer {
  void on_interest(std::string_view, bool, bool) override {}
  void on_publish(const message&) override { published.fetch_add(1); }
  std::atomic<std::uint64_t> published{0};
};

}  // namespace

// redis_bridge.hpp: "the destructor may be called from any thread; the bridge must be destroyed before its broker".
// The bridge's executor runs on another thread, busy delivering a stream of messages from Redis; the bridge is
// destroyed from the test's thread. Once the destructor has returned, nothing may reach the broker (which the
// application may destroy at once): an observer installed then sees nothing published, even after everything
// queued on the executor before has run. (Under AddressSanitizer a use of a destroyed broker would show as well.)
TEST_CASE("redis bridge: nothing reaches the broker once the bridge's destructor has returned",
          "[pubsub][redis_bridge]") {
  asio::io_context ctx;
  auto work = asio::make_work_guard(ctx);
  scripted_node redis(ctx);
  for (int i = 0; i < 200; ++i) redis.stream += push("message", "t", "x");
  std::thread loop([&] { ctx.run(); });

  for (int round = 0; round < 5; ++round) {
    INFO("round " << round);
    auto b = std::make_unique<broker>(ctx.get_executor());
    auto s = b->subscribe("t", {.on_event = [](std::error_code, const event&) {}});
    auto bridge = std::make_unique<redis_bridge>(*b, ctx.get_executor(),
                                                 redis_bridge_options{.redis = {.port = redis.port()}});
    bridge->start();
    const std::uint64_t before = 2000;
    REQUIRE(eventually([&] { return bridge->stats().received >= before; }));

    bridge.reset();
    const auto observer = std::make_shared<counting_observer>();
    b->set_observer(observer);
    std::promise<void> caught_up;
    asio::post(ctx, [&] { caught_up.set_value(); });  // runs after whatever was running or queued
    REQUIRE(caught_up.get_future().wait_for(10s) == std::future_status::ready);
    CHECK(observer->published == 0);
    b->set_observer(nullptr);
    s.unsubscribe();
    b.reset();
  }

  std::promise<void> stopped;
  asio::post(ctx, [&] {
    redis.kill();
    stopped.set_value();
  });
  REQUIRE(stopped.get_future().wait_for(10s) == std::future_status::ready);
  work.reset();
  ctx.stop();
  loop.join();
}

// docs/pubsub.md, "Scale-out": loss is never silent. In a cluster, the channel's master A goes down and a failover
// gives its slot to B: the bridge subscribes at B, and messages published between A's end and B's subscription are
// lost, so the local subscriber gets an upstream gap between A's last message and B's first, though A never comes
// back (its gap is not left for a reconnection to A that will not happen).
TEST_CASE("redis bridge: a cluster failover to another node reports the gap", "[pubsub][redis_bridge][cluster]") {
  asio::io_context ctx;
  scripted_node a(ctx), b(ctx);
  const int slot = resp::hash_slot("t");
  bool failed_over = false;
  const auto slots = [&] {
    if (failed_over) return "*1\r\n" + slot_range(0, resp::cluster_slots - 1, b.port());
    std::string ranges = slot_range(slot, slot, a.port());
    int n = 1;
    if (slot > 0) {
      ranges += slot_range(0, slot - 1, b.port());
      ++n;
    }
    if (slot < resp::cluster_slots - 1) {
      ranges += slot_range(slot + 1, resp::cluster_slots - 1, b.port());
      ++n;
    }
    return "*" + std::to_string(n) + "\r\n" + ranges;
  };
  a.slots = slots;
  b.slots = slots;

  broker local(ctx.get_executor());
  recorder got;
  auto s = local.subscribe("t", {.on_event = got.callback()});
  redis_bridge bridge(local, ctx.get_executor(),
                      {.redis = {.port = a.port()}, .cluster = true, .initial_backoff = 10ms, .max_backoff = 50ms});
  bridge.start();
  REQUIRE(run_until(ctx, [&] { return a.subscribers("t") == 1 && bridge.stats().nodes_up == 2; }));
  a.send("smessage", "t", "fromA");
  REQUIRE(run_until(ctx, [&] { return got.log.size() == 1; }));

  failed_over = true;
  a.kill();
  REQUIRE(run_until(ctx, [&] { return b.subscribers("t") == 1; }));
  b.send("smessage", "t", "fromB");
  REQUIRE(run_until(ctx, [&] { return !got.log.empty() && got.log.back().ends_with("=fromB"); }));
  CHECK(got.log == std::vector<std::string>{"t#1=fromA", "t gap 2-2 upstream", "t#3=fromB"});
  CHECK(bridge.stats().outages == 1);
}

// redis_bridge_options.hpp, `max_incoming`: a local `wait` subscriber that does not read holds up the messages from
// Redis, but no more than `max_incoming` of them wait (DESIGN promise 2: nothing grows without bound); the rest are
// dropped, counted, and the subscriber is told where with one upstream gap (promise 3: loss is never silent).
TEST_CASE("redis bridge: messages from Redis held up by a full wait subscriber are bounded and their loss reported",
          "[pubsub][redis_bridge]") {
  asio::io_context ctx;
  scripted_node redis(ctx);
  broker local(ctx.get_executor());
  auto full = local.subscribe("t", {.limits = queue_limits{.max_messages = 1, .policy = overflow_policy::wait}});
  recorder fence;
  auto f = local.subscribe("fence", {.on_event = fence.callback()});
  const std::size_t max_incoming = 4;
  redis_bridge bridge(local, ctx.get_executor(), {.redis = {.port = redis.port()}, .max_incoming = max_incoming});
  bridge.start();
  REQUIRE(run_until(ctx, [&] { return redis.subscribers("t") == 1 && redis.subscribers("fence") == 1; }));

  const std::uint64_t sent = 100;
  for (std::uint64_t i = 1; i <= sent; ++i) redis.send("message", "t", "m" + std::to_string(i));
  redis.send("message", "fence", "f");  // one connection, in order: once it is here, every "t" has been handled
  REQUIRE(run_until(ctx, [&] { return fence.log.size() == 1; }));
  // One message in the queue; behind it, `max_incoming` at most (the one published counts until its completion
  // has run, so maybe one fewer) and the gap.
  CHECK(local.stats("t")->waiting_publishers <= max_incoming + 1);

  // The subscriber reads: the messages that waited, then the gap where the others were lost, then what comes next.
  std::vector<std::string> got;
  const auto receive = [&] {
    std::optional<std::string> event_text;
    full.async_receive([&](std::error_code ec, event e) { event_text = describe(ec, e); });
    REQUIRE(run_until(ctx, [&] { return event_text.has_value(); }));
    got.push_back(*event_text);
  };
  receive();
  while (got.back().find(" gap ") == std::string::npos && got.size() <= max_incoming + 1) receive();
  const std::uint64_t passed = got.size() - 1;
  REQUIRE(passed >= max_incoming);
  std::vector<std::string> expected = numbered("t", 1, passed, "m");
  const std::string gap = std::to_string(passed + 1);
  expected.push_back("t gap " + gap + "-" + gap + " upstream");
  CHECK(got == expected);
  redis.send("message", "t", "last");
  receive();
  CHECK(got.back() == "t#" + std::to_string(passed + 2) + "=last");

  REQUIRE(run_until(ctx, [&] { return bridge.stats().received == passed + 2; }));  // with the fence and "last"
  CHECK(bridge.stats().dropped_incoming == sent - passed);
  // The same counts as metrics.
  metrics_registry registry;
  const auto handles = bridge.export_metrics(registry);
  std::string text_format;
  registry.expose(text_format);
  CHECK(text_format.find("switchboard_redis_bridge_dropped_incoming_total{bridge=\"redis\"} " +
                         std::to_string(sent - passed) + "\n") != std::string::npos);
  CHECK(text_format.find("switchboard_redis_bridge_received_total{bridge=\"redis\"} " + std::to_string(passed + 2) +
                         "\n") != std::string::npos);
  CHECK(text_format.find("switchboard_redis_bridge_channels{bridge=\"redis\"} 2\n") != std::string::npos);
}

// redis_bridge_options.hpp, `cluster_refresh_timeout`: a node that accepts the control connection and then never
// answers CLUSTER SLOTS does not stop the refreshes of the slot map. The map names two masters: W, the seed, and H,
// which never answers CLUSTER SLOTS. The periodic refresh goes round the known nodes (the seed, then the map's), so
// it reaches H; that read ends at the deadline and is retried at the next node. H asked a second time shows that the
// refreshes went on past it.
TEST_CASE("redis bridge: a control connection that never answers does not stop the slot map refreshes",
          "[pubsub][redis_bridge][cluster]") {
  asio::io_context ctx;
  scripted_node working(ctx), hung(ctx);
  hung.silent.insert("CLUSTER");
  working.slots = [&] {
    return "*2\r\n" + slot_range(0, 8191, working.port()) + slot_range(8192, resp::cluster_slots - 1, hung.port());
  };

  broker local(ctx.get_executor());
  redis_bridge bridge(local, ctx.get_executor(),
                      {.redis = {.port = working.port()},
                       .cluster = true,
                       .initial_backoff = 10ms,
                       .max_backoff = 50ms,
                       .cluster_refresh_interval = 20ms,
                       .cluster_refresh_timeout = 100ms});
  bridge.start();
  REQUIRE(run_until(ctx, [&] { return hung.asked("CLUSTER") == 2; }));
  CHECK(bridge.stats().slot_refreshes >= 3);  // the first read, and the two at W between H's
  CHECK(bridge.stats().nodes_up == 2);
}
