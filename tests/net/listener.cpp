#include <switchboard/net/listener.hpp>

#include "support/catch.hpp"

#include <switchboard/core/runtime.hpp>

#include <atomic>
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
