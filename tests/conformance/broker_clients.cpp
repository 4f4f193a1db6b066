// Real Redis clients against examples/broker (the broker's Redis-protocol front end): redis-cli and
// redis-benchmark from Debian's redis-tools, ioredis (RESP2) and node-redis (RESP3) from npm.
#include "support/catch.hpp"
#include "support/test_support.hpp"

#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using switchboard::test::background_process;
using switchboard::test::run_process;

namespace {

/// examples/broker on a free port; `port` is read from its "listening on redis://HOST:PORT" line.
struct broker_process {
  explicit broker_process(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv{std::string(SWITCHBOARD_EXAMPLES_DIR) + "/broker", "--port", "0", "--threads", "2"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process = std::make_unique<background_process>(argv, std::string(SWITCHBOARD_TEST_BINARY_DIR) + "/broker.log");
    const std::string line = process->wait_for_line("listening on redis://");
    REQUIRE_FALSE(line.empty());
    port = line.substr(line.rfind(':') + 1);
    while (!port.empty() && (port.back() == '\n' || port.back() == '\r')) port.pop_back();
  }
  std::unique_ptr<background_process> process;
  std::string port;
};

/// Runs redis-cli against the broker and returns its standard output and error (redis-cli prints an error
/// reply followed by an empty line, and a failed AUTH on standard error).
std::string cli(const broker_process& b, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"redis-cli", "-h", "127.0.0.1", "-p", b.port};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto r = run_process(argv, 20s);
  REQUIRE(r.exit_code == 0);
  return r.err + r.out;
}

}  // namespace

TEST_CASE("redis-cli against the broker", "[conformance][redis]") {
  REQUIRE(switchboard::test::have_program("redis-cli"));  // Debian's redis-tools, from scripts/install-deps.sh
  broker_process broker;
  CHECK(cli(broker, {"ping"}) == "PONG\n");
  CHECK(cli(broker, {"echo", "hello world"}) == "hello world\n");
  CHECK(cli(broker, {"publish", "news", "nobody"}) == "0\n");
  CHECK(cli(broker, {"get", "k"}) == "ERR unknown command 'get', with args beginning with: 'k' \n\n");
  CHECK(cli(broker, {"-3", "hello", "3"}).find("proto 3\n") != std::string::npos);
  CHECK(cli(broker, {"pubsub", "numpat"}) == "0\n");
  // Inline commands (as typed into telnet) through redis-cli's standard input are sent as multibulk; the raw
  // inline form is tested in tests/pubsub/resp_server.cpp.
  CHECK(run_process({"redis-cli", "-p", broker.port}, 20s, "PING\nECHO x\n").out == "PONG\nx\n");

  SECTION("subscribe and publish") {
    background_process sub({"redis-cli", "-p", broker.port, "subscribe", "news"},
                           std::string(SWITCHBOARD_TEST_BINARY_DIR) + "/redis-cli-subscribe.log");
    REQUIRE_FALSE(sub.wait_for_line("subscribe", 10s).empty());
    // The subscription is in place once the broker counts it.
    for (int i = 0; i < 1000 && cli(broker, {"pubsub", "numsub", "news"}) != "news\n1\n"; ++i) {
      REQUIRE(sub.running());
    }
    CHECK(cli(broker, {"publish", "news", "hello from redis-cli"}) == "1\n");
    CHECK_FALSE(sub.wait_for_line("hello from redis-cli", 10s).empty());
    sub.stop();
  }

  SECTION("SIGTERM drains and exits cleanly") {
    CHECK(broker.process->stop() == 0);
    CHECK(broker.process->log().find("drained") != std::string::npos);
  }
}

TEST_CASE("redis-cli with requirepass", "[conformance][redis]") {
  REQUIRE(switchboard::test::have_program("redis-cli"));
  broker_process broker({"--requirepass", "s3cret"});
  CHECK(cli(broker, {"ping"}) == "NOAUTH Authentication required.\n\n");
  CHECK(cli(broker, {"--no-auth-warning", "-a", "s3cret", "ping"}) == "PONG\n");
  CHECK(cli(broker, {"--no-auth-warning", "-a", "wrong", "ping"}).find("WRONGPASS") != std::string::npos);
  CHECK(cli(broker, {"--no-auth-warning", "-3", "-a", "s3cret", "ping"}) == "PONG\n");
}

TEST_CASE("redis-benchmark PUBLISH against the broker", "[conformance][redis]") {
  REQUIRE(switchboard::test::have_program("redis-benchmark"));
  broker_process broker;
  for (const std::string pipeline : {"1", "16"}) {
    INFO("-P " << pipeline);
    // Bounded: 2,000 requests over 10 connections.
    const auto r = run_process({"redis-benchmark", "-h", "127.0.0.1", "-p", broker.port, "-n", "2000", "-c", "10", "-P",
                                pipeline, "-q", "publish", "channel", "payload"},
                               60s);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("requests per second") != std::string::npos);
  }
  CHECK(cli(broker, {"ping"}) == "PONG\n");  // still serving
}

TEST_CASE("ioredis (RESP2) and node-redis (RESP3) against the broker", "[conformance][redis][node]") {
  REQUIRE(switchboard::test::have_program("node"));
  for (const std::string password : {"", "s3cret"}) {
    broker_process broker(password.empty() ? std::vector<std::string>{}
                                           : std::vector<std::string>{"--requirepass", password});
    for (const std::string client : {"ioredis", "node-redis"}) {
      INFO(client << (password.empty() ? "" : " with a password"));
      std::vector<std::string> argv{"node", std::string(SWITCHBOARD_NODE_PEERS) + "/redis_clients.mjs", client,
                                    broker.port};
      if (!password.empty()) argv.push_back(password);
      const auto r = run_process(argv, 30s);
      INFO(r.out << r.err);
      CHECK(r.exit_code == 0);
      CHECK(r.out.find("\"errors\":[]") != std::string::npos);
    }
  }
}
