#include <switchboard/net/listener.hpp>

#include "support/catch.hpp"
#include "support/eventually.hpp"
#include "support/test_support.hpp"

#include <switchboard/core/runtime.hpp>

#include <atomic>
#include <fstream>
#include <sstream>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using switchboard::net::listen_options;
using switchboard::net::listener;

namespace {

// Connects `count` clients and returns the shards that accepted them.
std::vector<std::size_t> accept_many(bool reuse_port, std::size_t threads, int count) {
  switchboard::runtime rt({.threads = threads, .handle_signals = false});
  listener l(rt.executors(), listen_options{.address = "127.0.0.1", .port = 0, .reuse_port = reuse_port});
  l.listen();
  // Recorded by the shards' threads and checked here: Catch's assertions are for the test's own thread.
  std::mutex m;
  std::vector<std::size_t> shards;
  std::vector<asio::ip::tcp::socket> accepted;
  int on_wrong_executor = 0;
  int blocking = 0;
  std::promise<void> all;
  l.start([&](std::size_t shard, asio::ip::tcp::socket s) {
    std::lock_guard lock(m);
    if (s.get_executor() != rt.executor(shard)) ++on_wrong_executor;
    if (!s.non_blocking()) ++blocking;
    shards.push_back(shard);
    accepted.push_back(std::move(s));
    if (static_cast<int>(shards.size()) == count) all.set_value();
  });
  rt.start();
  asio::io_context client_ctx;
  std::vector<asio::ip::tcp::socket> clients;
  for (int i = 0; i < count; ++i) {
    clients.emplace_back(client_ctx);
    clients.back().connect(l.local_endpoint());
  }
  CHECK(all.get_future().wait_for(10s) == std::future_status::ready);
  CHECK(l.sharded() == (reuse_port && threads > 1));
  l.close();
  rt.stop(0ms);
  rt.wait();
  std::lock_guard lock(m);
  CHECK(on_wrong_executor == 0);
  CHECK(blocking == 0);
  return shards;
}

// How many connections wait in the accept queue of the IPv4 socket listening on `port` (Linux: the rx_queue
// column of a LISTEN socket's line in /proc/net/tcp is its accept backlog); -1 when there is no such socket.
int accept_queue_length(std::uint16_t port) {
  std::ifstream table("/proc/net/tcp");
  std::string line;
  std::getline(table, line);  // the column names
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues;
    fields >> slot >> local >> remote >> state >> queues;
    if (state != "0A" || std::stoul(local.substr(local.find(':') + 1), nullptr, 16) != port) continue;
    return static_cast<int>(std::stoul(queues.substr(queues.find(':') + 1), nullptr, 16));
  }
  return -1;
}

}  // namespace

TEST_CASE("listener: SO_REUSEPORT gives every thread its own acceptor", "[net][listener]") {
  const auto shards = accept_many(true, 4, 200);
  REQUIRE(shards.size() == 200);
  // The kernel hashes connections over the acceptors: with 200 connections every one of 4 shards gets some
  // (the chance that one gets none is below 1e-24).
  CHECK(std::set<std::size_t>(shards.begin(), shards.end()).size() == 4);
}

TEST_CASE("listener: without SO_REUSEPORT one acceptor deals connections round-robin", "[net][listener]") {
  const auto shards = accept_many(false, 3, 30);
  REQUIRE(shards.size() == 30);
  std::vector<int> per_shard(3);
  for (auto s : shards) ++per_shard.at(s);
  CHECK(per_shard == std::vector<int>{10, 10, 10});
}

TEST_CASE("listener: binding a port in use fails clearly", "[net][listener]") {
  asio::io_context ctx;
  listener a({ctx.get_executor()}, listen_options{});
  a.listen();
  listener b({ctx.get_executor()}, listen_options{.port = a.local_endpoint().port(), .reuse_port = false});
  CHECK_THROWS_AS(b.listen(), std::system_error);
  listener bad({ctx.get_executor()}, listen_options{.address = "not-an-address"});
  CHECK_THROWS(bad.listen());
}

TEST_CASE("listener: sharded acceptors do not join a port that another socket holds", "[net][listener]") {
  // With SO_REUSEPORT alone the second group would bind beside the first and the kernel would split the connections.
  asio::io_context ctx;
  const std::vector<asio::any_io_executor> two{ctx.get_executor(), ctx.get_executor()};
  listener a(two, listen_options{});
  a.listen();
  REQUIRE(a.sharded());
  listener b(two, listen_options{.port = a.local_endpoint().port()});
  CHECK_THROWS_AS(b.listen(), std::system_error);
  // A port given explicitly that is free still takes every shard.
  const std::uint16_t free_port = a.local_endpoint().port();
  a.close();
  ctx.run();
  ctx.restart();
  listener c(two, listen_options{.port = free_port});
  c.listen();
  CHECK(c.sharded());
  CHECK(c.local_endpoint().port() == free_port);
}

TEST_CASE("listener: a resume before start accepts nothing until start", "[net][listener]") {
  asio::io_context ctx;
  listener l({ctx.get_executor()}, listen_options{});
  l.listen();
  l.pause(0);
  l.resume(0);  // no handler yet: arms no accept
  asio::io_context client_ctx;
  asio::ip::tcp::socket client(client_ctx);
  client.connect(l.local_endpoint());  // waits in the kernel's backlog
  ctx.poll();
  int accepted = 0;
  l.start([&](std::size_t, asio::ip::tcp::socket) { ++accepted; });
  REQUIRE(switchboard::test::run_until(ctx, [&] { return accepted == 1; }));
  l.close();
  ctx.poll();
}

TEST_CASE("listener: destroyed without close, it releases its port and calls nothing", "[net][listener]") {
  asio::io_context ctx;
  int accepted = 0;
  asio::ip::tcp::endpoint endpoint;
  {
    listener l({ctx.get_executor()}, listen_options{});
    l.listen();
    endpoint = l.local_endpoint();
    l.start([&](std::size_t, asio::ip::tcp::socket) { ++accepted; });
    ctx.poll();  // the accept is now waiting
  }
  ctx.poll();  // the close the destructor posted, and the accept it aborts
  asio::io_context client_ctx;
  asio::ip::tcp::socket client(client_ctx);
  std::error_code ec;
  client.connect(endpoint, ec);
  CHECK(ec == asio::error::connection_refused);
  ctx.restart();
  ctx.poll();
  CHECK(accepted == 0);
}

TEST_CASE("listener: a shard that shares the acceptor pauses and resumes it from its own thread", "[net][listener]") {
  // Without SO_REUSEPORT the one acceptor lives on shard 0; the server's other shards pause and resume it (its
  // connection limit) from their own threads.
  switchboard::runtime rt({.threads = 2, .handle_signals = false});
  listener l(rt.executors(), listen_options{.address = "127.0.0.1", .port = 0, .reuse_port = false});
  l.listen();
  const std::uint16_t port = l.local_endpoint().port();
  std::mutex m;
  std::vector<asio::ip::tcp::socket> accepted;
  const auto accepted_count = [&] {
    std::lock_guard lock(m);
    return accepted.size();
  };
  l.start([&](std::size_t, asio::ip::tcp::socket s) {
    std::lock_guard lock(m);
    accepted.push_back(std::move(s));
  });
  rt.start();
  // Runs `action` on shard 1's thread, then waits until shard 0 has run what it posted there (posts run in order).
  const auto from_shard_1 = [&](std::function<void()> action) {
    std::promise<void> done;
    asio::post(rt.executor(1), [&] {
      action();
      asio::post(rt.executor(0), [&] { done.set_value(); });
    });
    return done.get_future().wait_for(10s) == std::future_status::ready;
  };
  asio::io_context client_ctx;
  asio::ip::tcp::socket first(client_ctx), second(client_ctx);

  // The pause cancels the accept that was waiting: a connection made now stays in the kernel's queue.
  REQUIRE(from_shard_1([&] { l.pause(1); }));
  first.connect(l.local_endpoint());
  CHECK(switchboard::test::eventually([&] { return accept_queue_length(port) == 1 || accepted_count() > 0; }));
  // Shard 0's event loop polls its reactor between rounds of handlers: after three rounds an accept that was
  // waiting would have taken the connection.
  for (int round = 0; round < 3; ++round) REQUIRE(from_shard_1([] {}));
  CHECK(accepted_count() == 0);
  CHECK(accept_queue_length(port) == 1);

  REQUIRE(from_shard_1([&] { l.resume(1); }));
  CHECK(switchboard::test::eventually([&] { return accepted_count() == 1; }));

  // A resume that comes before the cancelled accept has completed still leaves the acceptor accepting.
  REQUIRE(from_shard_1([&] {
    l.pause(1);
    l.resume(1);
  }));
  second.connect(l.local_endpoint());
  CHECK(switchboard::test::eventually([&] { return accepted_count() == 2; }));

  l.close();
  rt.stop(0ms);
  rt.wait();
}
