// curl as a real long-poll client of the endpoint: immediate and parked polls, the ETag round trip
// (--etag-save / --etag-compare send If-None-Match), and a client that gives up while parked.
#include "longpoll/longpoll_support.hpp"
#include "support/catch.hpp"
#include "support/test_support.hpp"

#include <nlohmann/json.hpp>

#include <future>
#include <string>

using namespace std::chrono_literals;
using switchboard::test::poll_server;
using switchboard::test::run_process;

namespace {

switchboard::test::process_result curl(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"curl", "-s", "--max-time", "30"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, 60s);
}

std::string base(poll_server& s) { return "http://127.0.0.1:" + std::to_string(s.server.port()) + "/topics/"; }

}  // namespace

TEST_CASE("curl polls the long-poll endpoint", "[conformance][longpoll]") {
  REQUIRE(switchboard::test::have_program("curl"));
  poll_server s;
  s.publish("news", "first");

  SECTION("retained messages at once") {
    const auto r = curl({base(s) + "news/poll?cursor=0"});
    REQUIRE(r.exit_code == 0);
    const auto body = nlohmann::json::parse(r.out);
    CHECK(body["messages"][0]["data"] == "first");
    CHECK(body["cursor"] == 1);
  }
  SECTION("a parked poll answered by a publish") {
    auto pending = std::async(std::launch::async, [&] { return curl({base(s) + "news/poll?cursor=1&timeout=25"}); });
    REQUIRE(s.wait_for([&] { return s.polls.parked() == 1; }));
    s.publish("news", "second");
    const auto r = pending.get();
    REQUIRE(r.exit_code == 0);
    CHECK(nlohmann::json::parse(r.out)["messages"][0]["data"] == "second");
  }
  SECTION("the ETag saved and sent back as If-None-Match") {
    const std::string etag = switchboard::test::write_temp_file("longpoll.etag", "");
    auto r = curl({"--etag-save", etag, base(s) + "news/poll?cursor=0"});
    REQUIRE(r.exit_code == 0);
    CHECK(switchboard::test::read_file(etag).starts_with("\"1\""));
    r = curl({"-o", "/dev/null", "-w", "%{http_code}", "--etag-compare", etag, base(s) + "news/poll?timeout=0"});
    CHECK(r.out == "304");
    s.publish("news", "third");
    r = curl({"--etag-compare", etag, base(s) + "news/poll?timeout=0"});
    CHECK(nlohmann::json::parse(r.out)["messages"][0]["data"] == "third");
  }
  SECTION("a client that gives up while parked is released") {
    const auto r = curl({"--max-time", "1", base(s) + "news/poll?cursor=1&timeout=25"});
    CHECK(r.exit_code == 28);  // curl: operation timed out
    REQUIRE(s.wait_for([&] { return s.polls.parked() == 0; }));
    CHECK(s.polls.stats().disconnected == 1);
  }
}
