// Real clients against the example servers: curl (and, for load, wrk) talking to the built binaries.
#include "support/catch.hpp"
#include "support/test_support.hpp"

#include <nlohmann/json.hpp>
#include <switchboard/ws/connect.hpp>

#include <csignal>
#include <string>

using namespace std::chrono_literals;
using switchboard::test::background_process;
using switchboard::test::run_process;

namespace {

// Starts an example on a free port and returns its base URL (from its "listening on URL" line).
std::string start_example(std::unique_ptr<background_process>& p, const std::string& name,
                          const std::vector<std::string>& extra_args = {}) {
  const std::string binary = std::string(SWITCHBOARD_EXAMPLES_DIR) + "/" + name;
  std::vector<std::string> argv{binary, "--port", "0", "--threads", "2"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  p = std::make_unique<background_process>(argv, std::string(SWITCHBOARD_TEST_BINARY_DIR) + "/" + name + ".log");
  const std::string line = p->wait_for_line("listening on ");
  REQUIRE_FALSE(line.empty());
  return line.substr(line.find("http"));
}

std::string curl(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"curl", "-s", "--max-time", "10"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run_process(argv);
  REQUIRE(r.exit_code == 0);
  return r.out;
}

}  // namespace

TEST_CASE("curl against hello", "[conformance][curl]") {
  REQUIRE(switchboard::test::have_program("curl"));
  std::unique_ptr<background_process> server;
  const std::string url = start_example(server, "hello");
  CHECK(curl({url + "/plaintext"}) == "Hello, World!");
  CHECK(nlohmann::json::parse(curl({url + "/json"})) == nlohmann::json{{"message", "Hello, World!"}});
  const std::string head = curl({"-I", url + "/plaintext"});
  CHECK(head.find("HTTP/1.1 200 OK") == 0);
  CHECK(head.find("Content-Length: 13") != std::string::npos);
  CHECK(head.find("Date: ") != std::string::npos);
  // Keep-alive: curl reuses one connection for several URLs on the command line.
  const std::string verbose = run_process({"curl", "-sv", url + "/plaintext", url + "/json"}).err;
  CHECK(verbose.find("Re-using existing connection") != std::string::npos);
  // HTTP/1.0
  CHECK(curl({"--http1.0", url + "/plaintext"}) == "Hello, World!");
  CHECK(curl({"-o", "/dev/null", "-w", "%{http_code}", url + "/missing"}) == "404");
  CHECK(curl({"-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", url + "/plaintext"}) == "405");
  // SIGTERM drains and exits cleanly.
  CHECK(server->stop() == 0);
  CHECK(server->log().find("drained") != std::string::npos);
}

TEST_CASE("curl against rest_crud", "[conformance][curl]") {
  std::unique_ptr<background_process> server;
  const std::string url = start_example(server, "rest_crud", {"--max-users", "3"});
  auto status_of = [&](const std::vector<std::string>& args) {
    std::vector<std::string> all{"-o", "/dev/null", "-w", "%{http_code}"};
    all.insert(all.end(), args.begin(), args.end());
    return curl(all);
  };
  const std::string json = "Content-Type: application/json";
  auto created = nlohmann::json::parse(curl({"-H", json, "-d", R"({"name":"Ada","email":"ada@example.com"})", url + "/users"}));
  CHECK(created["id"] == 1);
  CHECK(status_of({"-H", json, "-d", R"({"name":"Bob","email":"ada@example.com"})", url + "/users"}) == "409");
  CHECK(status_of({"-H", json, "-d", R"({"name":""})", url + "/users"}) == "422");
  CHECK(status_of({"-H", json, "-d", R"({"name":)", url + "/users"}) == "400");
  CHECK(status_of({"-H", json, "-d", "[1,2]", url + "/users"}) == "400");
  auto patched = nlohmann::json::parse(curl({"-X", "PATCH", "-H", json, "-d", R"({"name":"Ada L."})", url + "/users/1"}));
  CHECK(patched["name"] == "Ada L.");
  CHECK(patched["email"] == "ada@example.com");
  CHECK(status_of({"-X", "PUT", "-H", json, "-d", R"({"name":"X"})", url + "/users/1"}) == "422");
  CHECK(status_of({"-X", "PUT", "-H", json, "-d", R"({"name":"X","email":"x@y.z"})", url + "/users/1"}) == "200");
  CHECK(nlohmann::json::parse(curl({url + "/users"})).size() == 1);
  CHECK(status_of({url + "/users/999"}) == "404");
  CHECK(status_of({url + "/users/abc"}) == "404");
  CHECK(status_of({"-X", "DELETE", url + "/users/1"}) == "204");
  CHECK(status_of({"-X", "DELETE", url + "/users/1"}) == "404");
  const std::string problem = curl({"-i", url + "/users/999"});
  CHECK(problem.find("Content-Type: application/problem+json") != std::string::npos);

  SECTION("a deleted user's email is free again, and a full store answers 507") {
    for (const char* name : {"a", "b", "c"}) {
      const std::string body = std::string(R"({"name":")") + name + R"(","email":")" + name + R"(@example.com"})";
      CHECK(status_of({"-H", json, "-d", body, url + "/users"}) == "201");
    }
    CHECK(status_of({"-H", json, "-d", R"({"name":"d","email":"d@example.com"})", url + "/users"}) == "507");
    // Ada had id 1: "a", "b" and "c" have 2, 3 and 4.
    CHECK(status_of({"-X", "DELETE", url + "/users/2"}) == "204");
    CHECK(status_of({"-X", "PATCH", "-H", json, "-d", R"({"email":"a@example.com"})", url + "/users/4"}) == "200");
    CHECK(status_of({"-H", json, "-d", R"({"name":"d","email":"b@example.com"})", url + "/users"}) == "409");
    CHECK(status_of({"-H", json, "-d", R"({"name":"d","email":"d@example.com"})", url + "/users"}) == "201");
  }

  SECTION("the list comes in pages linked by Link rel=next") {
    for (const char* name : {"a", "b"}) {
      const std::string body = std::string(R"({"name":")") + name + R"(","email":")" + name + R"(@example.com"})";
      CHECK(status_of({"-H", json, "-d", body, url + "/users"}) == "201");
    }
    const std::string first = curl({"-i", url + "/users?limit=1"});
    CHECK(first.find("Link: </users?after=2&limit=1>; rel=\"next\"\r\n") != std::string::npos);
    CHECK(nlohmann::json::parse(first.substr(first.find("\r\n\r\n") + 4)) ==
          nlohmann::json::parse(R"([{"id":2,"name":"a","email":"a@example.com"}])"));
    const std::string last = curl({"-i", url + "/users?after=2&limit=1"});
    CHECK(last.find("Link:") == std::string::npos);
    CHECK(nlohmann::json::parse(last.substr(last.find("\r\n\r\n") + 4))[0]["id"] == 3);
    CHECK(nlohmann::json::parse(curl({url + "/users?after=3"})).empty());
    CHECK(status_of({url + "/users?limit=0"}) == "400");
    CHECK(status_of({url + "/users?limit=1001"}) == "400");
    CHECK(status_of({url + "/users?after=x"}) == "400");
    CHECK(status_of({url + "/users?after=-1"}) == "400");
  }
  CHECK(server->stop() == 0);
}

TEST_CASE("curl against jobs: the session of its README", "[conformance][curl]") {
  std::unique_ptr<background_process> server;
  const std::string url = start_example(server, "jobs");
  const auto status_of = [&](const std::vector<std::string>& args) {
    std::vector<std::string> all{"-o", "/dev/null", "-w", "%{http_code}"};
    all.insert(all.end(), args.begin(), args.end());
    return curl(all);
  };
  const auto submit = [&](const std::string& body, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"-i", "-X", "POST", "-H", "Content-Type: application/json", "-d", body};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(url + "/jobs");
    return curl(args);
  };
  const auto location_of = [](const std::string& head) {
    const std::size_t at = head.find("Location: ");
    REQUIRE(at != std::string::npos);
    return head.substr(at + 10, head.find("\r\n", at) - at - 10);
  };

  // The synchronous form: a small job answers 200 with its result.
  const auto done = nlohmann::json::parse(curl({"-X", "POST", "-d", R"({"kind": "primes", "limit": 1000})",
                                                url + "/jobs?wait=10"}));
  CHECK(done["status"] == "succeeded");
  CHECK(done["result"] == nlohmann::json{{"count", 168}});
  const std::string finished = url + "/jobs/" + done["id"].get<std::string>();
  CHECK(nlohmann::json::parse(curl({finished + "/result"})) == nlohmann::json{{"count", 168}});
  // Its whole history by SSE (the stream ends after the final status) and by long polling.
  const std::string events = curl({"-N", finished + "/events"});
  CHECK(events.starts_with("event: status\nid: 1\ndata: "));
  CHECK(events.find(R"("status":"succeeded")", events.rfind("data: ")) != std::string::npos);  // the last event
  // An EventSource that reconnects after the final status is told to stop (204: it was held open for ever); one
  // with an id past the topic's end (an earlier run's) starts over (it got a 200, then a cut stream).
  const std::size_t last_id_at = events.rfind("id: ") + 4;
  const std::string last_id = events.substr(last_id_at, events.find('\n', last_id_at) - last_id_at);
  CHECK(status_of({"-H", "Last-Event-ID: " + last_id, finished + "/events"}) == "204");
  CHECK(curl({"-N", "-H", "Last-Event-ID: 999999", finished + "/events"}) == events);
  const auto history = nlohmann::json::parse(curl({finished + "/poll?cursor=0"}));
  REQUIRE_FALSE(history["messages"].empty());
  CHECK(nlohmann::json::parse(history["messages"].back()["data"].get<std::string>())["status"] == "succeeded");

  // The asynchronous form: 202, Location, Retry-After; a long job, then cancelled.
  const std::string accepted = submit(R"({"kind": "primes", "limit": 50000000})");
  CHECK(accepted.starts_with("HTTP/1.1 202 Accepted"));
  CHECK(accepted.find("Retry-After: 1\r\n") != std::string::npos);
  const std::string job = url + location_of(accepted);
  CHECK(status_of({job + "/result"}) == "303");
  CHECK(status_of({"-X", "DELETE", job}) != "404");
  // Long polls until a status shows (each waits for the next change, or 5 s).
  const auto await_status = [&](const std::string& at, std::string_view wanted) {
    std::string last_status;
    std::uint64_t cursor = 0;
    for (int i = 0; i < 200 && last_status != wanted; ++i) {
      const auto page = nlohmann::json::parse(curl({at + "/poll?timeout=5&cursor=" + std::to_string(cursor)}));
      cursor = page["cursor"];
      for (const auto& m : page["messages"]) last_status = nlohmann::json::parse(m["data"].get<std::string>())["status"];
    }
    return last_status;
  };
  CHECK(await_status(job, "cancelled") == "cancelled");
  CHECK(nlohmann::json::parse(curl({job}))["status"] == "cancelled");

  // The same Idempotency-Key, the same job.
  const std::vector<std::string> key{"-H", "Idempotency-Key: 7f1c"};
  CHECK(location_of(submit(R"({"kind": "primes", "limit": 100})", key)) ==
        location_of(submit(R"({"kind": "primes", "limit": 100})", key)));

  // Bad input and unknown jobs: clear answers, and no long poll or stream waiting for a job that is not there.
  CHECK(status_of({"-X", "POST", "-d", R"({"kind": "primes"})", url + "/jobs"}) == "400");
  CHECK(status_of({url + "/jobs/nope"}) == "404");
  CHECK(status_of({url + "/jobs/nope/poll?timeout=25"}) == "404");
  CHECK(status_of({url + "/jobs/nope/events"}) == "404");

  // A job still running at shutdown is cancelled: the server ends within stop()'s 5 s, not when the job would
  // have (about half a minute; its broker was also destroyed under it, a use-after-free).
  const std::string busy = url + location_of(submit(R"({"kind": "primes", "limit": 50000000})"));
  REQUIRE(await_status(busy, "running") == "running");
  CHECK(server->stop() == 0);
}

TEST_CASE("wrk against hello: bounded load, every response a 200", "[conformance][wrk]") {
  REQUIRE(switchboard::test::have_program("wrk"));
  std::unique_ptr<background_process> server;
  const std::string url = start_example(server, "hello");
  auto r = run_process({"wrk", "-t1", "-c20", "-d1s", url + "/plaintext"}, 30s);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("Requests/sec") != std::string::npos);
  CHECK(r.out.find("Non-2xx") == std::string::npos);
  CHECK(r.out.find("Socket errors") == std::string::npos);
  CHECK(server->stop() == 0);
}

TEST_CASE("the ws package (npm) against hello's WebSocket echo", "[conformance][ws]") {
  REQUIRE(switchboard::test::have_program("node"));
  std::unique_ptr<background_process> server;
  std::string url = start_example(server, "hello");
  url.replace(0, 4, "ws");  // http://... -> ws://...
  for (const char* mode : {"plain", "deflate"}) {
    INFO(mode);
    const std::string path = std::string(mode) == "deflate" ? "/echo-deflate" : "/echo";
    auto r = run_process({"node", std::string(SWITCHBOARD_NODE_PEERS) + "/ws_client.mjs", url + path, mode}, 30s);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
  }
  CHECK(server->stop() == 0);
}

TEST_CASE("switchboard's WebSocket client against the ws package's server", "[conformance][ws]") {
  using namespace switchboard;
  background_process node({"node", std::string(SWITCHBOARD_NODE_PEERS) + "/ws_server.mjs"},
                          std::string(SWITCHBOARD_TEST_BINARY_DIR) + "/ws_server.log");
  const std::string line = node.wait_for_line("listening ");
  REQUIRE_FALSE(line.empty());
  const std::string port = line.substr(line.find(' ') + 1);
  asio::io_context ctx;
  for (bool deflate : {false, true}) {
    INFO("deflate " << deflate);
    std::error_code ec;
    std::shared_ptr<ws::session> client;
    bool done = false;
    ws::async_connect(ctx.get_executor(), "ws://127.0.0.1:" + port + "/", {.deflate = {.enabled = deflate}},
                      [&](std::error_code e, std::shared_ptr<ws::session> c) {
                        ec = e;
                        client = std::move(c);
                        done = true;
                      });
    REQUIRE(switchboard::test::run_until(ctx, [&] { return done; }));
    REQUIRE_FALSE(ec);
    std::vector<ws::message> got;
    std::optional<ws::close_info> closed;
    client->on_message([&](ws::message&& m) { got.push_back(std::move(m)); });
    client->on_close([&](const ws::close_info& info) { closed = info; });
    client->start();
    client->send_text("héllo ✓");
    client->send_binary(std::string("\0\1\2\xff", 4));
    client->send_text(std::string(70'000, 'z'));
    REQUIRE(switchboard::test::run_until(ctx, [&] { return got.size() == 3; }));
    CHECK(got[0].is_text());
    CHECK(got[0].data == "héllo ✓");
    CHECK_FALSE(got[1].is_text());
    CHECK(got[1].data == std::string("\0\1\2\xff", 4));
    CHECK(got[2].data.size() == 70'000);
    client->close();
    REQUIRE(switchboard::test::run_until(ctx, [&] { return closed.has_value(); }));
    CHECK(closed->code == ws::close_code::normal);
  }
  CHECK(node.stop() == 0);
}
