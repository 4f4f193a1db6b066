// The long-poll endpoint over HTTP: immediate answers, parking, timeouts, cursors and gaps, ETags, limits,
// disconnects and drain.
#include <switchboard/longpoll/endpoint.hpp>

#include "longpoll_support.hpp"
#include "support/catch.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

using namespace switchboard;
using namespace std::chrono_literals;
using test::body_json;
using test::get_request;
using test::poll_server;
using test::raw_client;

namespace {

test::raw_response poll(std::uint16_t port, std::string_view target, std::string_view extra = {}) {
  raw_client c(port);
  c.send(get_request(target, extra));
  auto r = c.read_response();
  REQUIRE(r);
  return *r;
}

std::vector<std::uint64_t> sequences(const nlohmann::json& body) {
  std::vector<std::uint64_t> out;
  for (const auto& m : body["messages"]) out.push_back(m["seq"].get<std::uint64_t>());
  return out;
}

// Opens a connection whose poll parks, and waits until the endpoint holds it.
std::unique_ptr<raw_client> park(poll_server& s, std::string_view target, std::size_t parked_after) {
  auto c = std::make_unique<raw_client>(s.server.port());
  c->send(get_request(target));
  REQUIRE(s.wait_for([&] { return s.polls.parked() == parked_after; }));
  return c;
}

}  // namespace

TEST_CASE("a poll answers at once with what follows the cursor", "[longpoll][endpoint]") {
  poll_server s({.max_batch = 3});
  for (int i = 1; i <= 5; ++i) s.publish("news", "m" + std::to_string(i));

  SECTION("up to the batch limit, with the next cursor in the body and the ETag") {
    const auto r = poll(s.server.port(), "/topics/news/poll?cursor=1");
    CHECK(r.status == 200);
    CHECK(r.header("Content-Type") == "application/json");
    CHECK(r.header("ETag") == "\"4\"");
    CHECK(r.header("Cache-Control") == "no-cache");
    const auto body = body_json(r);
    CHECK(sequences(body) == std::vector<std::uint64_t>{2, 3, 4});
    CHECK(body["messages"][0]["data"] == "m2");
    CHECK_FALSE(body["messages"][0].contains("encoding"));
    CHECK(body["cursor"] == 4);
    CHECK_FALSE(body.contains("gap"));
  }
  SECTION("max asks for fewer") {
    CHECK(sequences(body_json(poll(s.server.port(), "/topics/news/poll?cursor=0&max=2"))) ==
          std::vector<std::uint64_t>{1, 2});
  }
  SECTION("the cursor in If-None-Match, as the ETag sent it") {
    CHECK(sequences(body_json(poll(s.server.port(), "/topics/news/poll", "If-None-Match: \"3\"\r\n"))) ==
          std::vector<std::uint64_t>{4, 5});
    CHECK(sequences(body_json(poll(s.server.port(), "/topics/news/poll", "If-None-Match: W/\"x\", W/\"4\"\r\n"))) ==
          std::vector<std::uint64_t>{5});
  }
  SECTION("timeout=0 with nothing new: an empty answer, same cursor") {
    const auto body = body_json(poll(s.server.port(), "/topics/news/poll?cursor=5&timeout=0"));
    CHECK(body["messages"].empty());
    CHECK(body["cursor"] == 5);
  }
  SECTION("timeout=0 with the newest ETag: 304 Not Modified") {
    const auto r = poll(s.server.port(), "/topics/news/poll?timeout=0", "If-None-Match: \"5\"\r\n");
    CHECK(r.status == 304);
    CHECK(r.header("ETag") == "\"5\"");
    CHECK(r.body.empty());
  }
}

TEST_CASE("binary payloads travel as base64", "[longpoll][endpoint]") {
  poll_server s;
  s.publish("bin", std::string("\xff\x00\x01", 3));
  const auto m = body_json(poll(s.server.port(), "/topics/bin/poll?cursor=0"))["messages"][0];
  CHECK(m["encoding"] == "base64");
  CHECK(m["data"] == "/wAB");
}

TEST_CASE("a cursor older than what is retained gets a gap, never silent loss", "[longpoll][endpoint]") {
  poll_server s({}, {}, {.retention = {.max_messages = 10}});
  for (int i = 1; i <= 30; ++i) s.publish("t", "x");
  const auto body = body_json(poll(s.server.port(), "/topics/t/poll?cursor=5"));
  CHECK(body["gap"] == nlohmann::json{{"first", 6}, {"last", 20}, {"reason", "retention"}});
  CHECK(sequences(body).front() == 21);
  CHECK(body["cursor"] == 30);
}

TEST_CASE("a cursor ahead of the topic is a reset", "[longpoll][endpoint]") {
  poll_server s;
  s.publish("t", "x");
  const auto body = body_json(poll(s.server.port(), "/topics/t/poll?cursor=99"));
  CHECK(body["reset"] == true);
  CHECK(body["cursor"] == 1);
  CHECK(body["messages"].empty());
}

TEST_CASE("a parked poll is answered by the next publish", "[longpoll][endpoint]") {
  poll_server s;
  s.publish("t", "old");

  SECTION("from a cursor") {
    auto c = park(s, "/topics/t/poll?cursor=1&timeout=30", 1);
    CHECK(s.broker.stats("t")->waiting_reads == 1);
    s.publish("t", "new");
    const auto r = c->read_response();
    REQUIRE(r);
    const auto body = body_json(*r);
    CHECK(sequences(body) == std::vector<std::uint64_t>{2});
    CHECK(body["messages"][0]["data"] == "new");
    CHECK(s.polls.parked() == 0);
    CHECK(s.polls.stats().woken == 1);
  }
  SECTION("without a cursor: from the newest on") {
    auto c = park(s, "/topics/t/poll?timeout=30", 1);
    s.publish("t", "next");
    const auto r = c->read_response();
    REQUIRE(r);
    CHECK(sequences(body_json(*r)) == std::vector<std::uint64_t>{2});
  }
  SECTION("a topic nobody published to yet") {
    auto c = park(s, "/topics/fresh/poll?cursor=0&timeout=30", 1);
    s.publish("fresh", "first");
    const auto r = c->read_response();
    REQUIRE(r);
    CHECK(sequences(body_json(*r)) == std::vector<std::uint64_t>{1});
  }
}

// An answer of one message is encoded once per thread and shared by the polls answered with that same message
// (endpoint_state::one_message_body): each poll must still get its own topic's message.
TEST_CASE("answers of one message share their encoding only for the same message", "[longpoll][endpoint]") {
  poll_server s;
  SECTION("the same sequence number and cursor in two topics") {
    s.publish("a", "from a");
    s.publish("b", "from b");
    for (const auto& [topic, data] : {std::pair{"a", "from a"}, std::pair{"b", "from b"}, std::pair{"a", "from a"}}) {
      const auto body = body_json(poll(s.server.port(), "/topics/" + std::string(topic) + "/poll?cursor=0"));
      CHECK(sequences(body) == std::vector<std::uint64_t>{1});
      CHECK(body["messages"][0]["data"] == data);
    }
  }
  SECTION("parked polls woken by one publish, then by the next, with bodies written from shared bytes") {
    constexpr std::size_t pollers = 8;
    s.publish("t", "first");
    std::vector<std::unique_ptr<raw_client>> clients;
    for (std::size_t i = 1; i <= pollers; ++i) clients.push_back(park(s, "/topics/t/poll?cursor=1&timeout=30", i));
    const std::string second(600, 'x');  // past the 512 bytes from which a shared body is not copied
    s.publish("t", second);
    for (auto& c : clients) {
      const auto r = c->read_response();
      REQUIRE(r);
      const auto body = body_json(*r);
      CHECK(sequences(body) == std::vector<std::uint64_t>{2});
      CHECK(body["messages"][0]["data"] == second);
      CHECK(r->header("Content-Length") == std::to_string(r->body.size()));
      c->send(get_request("/topics/t/poll?cursor=2&timeout=30"));
    }
    REQUIRE(s.wait_for([&] { return s.polls.parked() == pollers; }));
    s.publish("t", "third");
    for (auto& c : clients) {
      const auto r = c->read_response();
      REQUIRE(r);
      const auto body = body_json(*r);
      CHECK(sequences(body) == std::vector<std::uint64_t>{3});
      CHECK(body["messages"][0]["data"] == "third");
    }
  }
}

TEST_CASE("a parked poll times out with nothing new", "[longpoll][endpoint]") {
  poll_server s({.max_timeout = 200ms});
  s.publish("t", "x");

  SECTION("an empty answer with the same cursor") {
    const auto r = poll(s.server.port(), "/topics/t/poll?cursor=1&timeout=0.1");
    CHECK(r.status == 200);
    CHECK(body_json(r)["messages"].empty());
    CHECK(body_json(r)["cursor"] == 1);
    CHECK(s.polls.stats().timed_out == 1);
  }
  SECTION("a longer timeout than allowed is capped") {
    const auto r = poll(s.server.port(), "/topics/t/poll?cursor=1&timeout=3600");
    CHECK(body_json(r)["messages"].empty());
  }
  SECTION("with the newest ETag: 304") {
    const auto r = poll(s.server.port(), "/topics/t/poll?timeout=0.1", "If-None-Match: \"1\"\r\n");
    CHECK(r.status == 304);
    CHECK(r.header("ETag") == "\"1\"");
  }
}

TEST_CASE("bad polls are refused", "[longpoll][endpoint]") {
  poll_server s({.allow_topic = [](std::string_view topic) { return topic != "secret"; }});
  CHECK(poll(s.server.port(), "/topics/t/poll?cursor=abc").status == 400);
  CHECK(poll(s.server.port(), "/topics/t/poll?cursor=-1").status == 400);
  CHECK(poll(s.server.port(), "/topics/t/poll?timeout=-1").status == 400);
  CHECK(poll(s.server.port(), "/topics/t/poll?timeout=").status == 400);
  CHECK(poll(s.server.port(), "/topics/t/poll?max=0").status == 400);
  CHECK(poll(s.server.port(), "/topics/secret/poll?timeout=0").status == 404);
  CHECK(s.polls.parked() == 0);
}

TEST_CASE("a client that disconnects while parked is released at once", "[longpoll][endpoint]") {
  poll_server s;
  auto c = park(s, "/topics/t/poll?cursor=0&timeout=60", 1);
  CHECK(s.broker.stats("t")->waiting_reads == 1);
  c.reset();  // closes the connection
  REQUIRE(s.wait_for([&] { return s.polls.parked() == 0; }));
  CHECK(s.polls.stats().disconnected == 1);
  CHECK_FALSE(s.broker.stats("t"));  // its read is gone, and with it the topic: nothing was ever published to it
  // The endpoint still serves others.
  s.publish("t", "x");
  CHECK(sequences(body_json(poll(s.server.port(), "/topics/t/poll?cursor=0"))) == std::vector<std::uint64_t>{1});
}

TEST_CASE("polls of topics nobody publishes to leave no topic behind", "[longpoll][endpoint]") {
  // Else clients polling made-up names would fill the broker's max_topics, and nobody could make a topic.
  poll_server s({}, {}, {.max_topics = 2});
  for (int i = 0; i < 5; ++i) {
    const auto r = poll(s.server.port(), "/topics/made-up-" + std::to_string(i) + "/poll?timeout=0.05");
    CHECK(r.status == 200);
    CHECK(body_json(r)["messages"].empty());
  }
  park(s, "/topics/left/poll?timeout=60", 1).reset();  // a client that goes away while its poll waits
  REQUIRE(s.wait_for([&] { return s.polls.parked() == 0; }));
  CHECK(s.broker.stats().topics == 0);
  CHECK(s.publish("a", "1") == 1);
  CHECK(s.publish("b", "1") == 1);
}

TEST_CASE("parked polls are limited per client and in total", "[longpoll][endpoint]") {
  SECTION("per client: 429 with Retry-After") {
    poll_server s({.max_parked_per_client = 2, .retry_after = 7s});
    auto a = park(s, "/topics/t/poll?timeout=60", 1);
    auto b = park(s, "/topics/u/poll?timeout=60", 2);
    const auto r = poll(s.server.port(), "/topics/t/poll?timeout=60");
    CHECK(r.status == 429);
    CHECK(r.header("Retry-After") == "7");
    CHECK(r.header("Content-Type") == "application/problem+json");
    // Answers that do not park are not limited.
    CHECK(poll(s.server.port(), "/topics/t/poll?timeout=0").status == 200);
    CHECK(s.polls.stats().refused_client == 1);
    // A slot freed is a slot usable again.
    a.reset();
    REQUIRE(s.wait_for([&] { return s.polls.parked() == 1; }));
    auto c = park(s, "/topics/t/poll?timeout=60", 2);
  }
  SECTION("in total: 503 with Retry-After") {
    poll_server s({.max_parked = 2, .max_parked_per_client = 10});
    auto a = park(s, "/topics/t/poll?timeout=60", 1);
    auto b = park(s, "/topics/t/poll?timeout=60", 2);
    const auto r = poll(s.server.port(), "/topics/t/poll?timeout=60");
    CHECK(r.status == 503);
    CHECK(r.header("Retry-After") == "2");
    CHECK(s.polls.stats().refused_total == 1);
    CHECK(s.polls.stats().peak_parked == 2);
  }
  SECTION("by a custom client key") {
    poll_server s({.max_parked_per_client = 1,
                   .client_key = [](const http::request& req) { return std::string(req.header("X-User")); }});
    auto a = std::make_unique<raw_client>(s.server.port());
    a->send(get_request("/topics/t/poll?timeout=60", "X-User: ann\r\n"));
    REQUIRE(s.wait_for([&] { return s.polls.parked() == 1; }));
    auto b = std::make_unique<raw_client>(s.server.port());
    b->send(get_request("/topics/t/poll?timeout=60", "X-User: bob\r\n"));
    REQUIRE(s.wait_for([&] { return s.polls.parked() == 2; }));
    CHECK(poll(s.server.port(), "/topics/t/poll?timeout=60", "X-User: ann\r\n").status == 429);
  }
}

TEST_CASE("a drain answers every parked poll at once", "[longpoll][endpoint]") {
  poll_server s;
  s.publish("t", "x");
  std::vector<std::unique_ptr<raw_client>> clients;
  for (std::size_t i = 1; i <= 3; ++i) clients.push_back(park(s, "/topics/t/poll?timeout=60", i));
  const drain_report report = s.server.stop(30s);
  CHECK(report.cut == 0);
  for (auto& c : clients) {
    const auto r = c->read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(body_json(*r)["messages"].empty());
    CHECK(body_json(*r)["cursor"] == 1);
  }
  CHECK(s.polls.stats().drained == 3);
  CHECK(s.polls.parked() == 0);
}

TEST_CASE("bad endpoint options are refused", "[longpoll][endpoint]") {
  asio::io_context ctx;
  pubsub::broker broker(ctx);
  CHECK_THROWS_AS(longpoll::endpoint(broker, {.max_batch = 0}), std::invalid_argument);
  CHECK_THROWS_AS(longpoll::endpoint(broker, {.jitter = 1.0}), std::invalid_argument);
  http::router routes;
  longpoll::endpoint polls(broker);
  CHECK_THROWS_AS(longpoll::add_route(routes, polls, "/poll"), std::invalid_argument);
}

TEST_CASE("a route can poll one family of topics under its own parameter", "[longpoll][endpoint]") {
  test::test_server server;
  pubsub::broker broker(server.rt().executor(), {.retention = {.max_messages = 10}});
  longpoll::endpoint polls(server.rt(), broker, {.topic_param = "id", .topic_prefix = "jobs."});
  longpoll::add_route(server.routes(), polls, "/jobs/{id}/poll");
  CHECK_THROWS_AS(longpoll::add_route(server.routes(), polls, "/x/{topic}/poll"), std::invalid_argument);
  server.start();
  broker.publish("jobs.7", {.payload = shared_bytes::copy("seven")});
  broker.publish("7", {.payload = shared_bytes::copy("other")});
  const auto body = body_json(poll(server.port(), "/jobs/7/poll?cursor=0"));
  CHECK(body["messages"][0]["data"] == "seven");
  server.stop();
}
