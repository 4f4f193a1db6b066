#include <switchboard/push/latest.hpp>

#include "support/catch.hpp"
#include "support/fake_request.hpp"
#include "support/raw_http.hpp"
#include "support/test_server.hpp"

#include <atomic>
#include <string>
#include <thread>

using namespace switchboard;

namespace {

struct latest_server {
  explicit latest_server(std::size_t retain = 10)
      : broker(s.rt().executor(), {.retention = {.max_messages = retain}}),
        latest(broker, {.conditional = {.retry_after = std::chrono::seconds(3)}, .epoch = "e1"}) {
    s.routes().get("/topics/{topic}/latest", [this](http::request& req) {
      http::response r = latest(req, req.param("topic"));
      last_shared_body = r.shared_body().data();
      return r;
    });
    s.start();
  }
  ~latest_server() { s.stop(); }

  test::raw_response get(const std::string& topic, const std::string& extra = {}) {
    test::raw_client c(s.port());
    c.send(test::get_request("/topics/" + topic + "/latest", extra));
    auto r = c.read_response();
    REQUIRE(r);
    return *r;
  }

  test::test_server s;
  pubsub::broker broker;
  push::latest_endpoint latest;
  std::atomic<const char*> last_shared_body{nullptr};  // where the last response's shared body is
};

}  // namespace

TEST_CASE("push latest: polling costs a 304 until something is published", "[push][latest]") {
  latest_server h;
  auto empty = h.get("news");
  CHECK(empty.status == 204);
  CHECK(empty.header("etag") == R"("e1-0")");
  CHECK(h.get("news", "If-None-Match: \"e1-0\"\r\n").status == 304);

  REQUIRE(h.broker.publish("news", {.payload = shared_bytes::copy(R"({"v":1})"),
                                    .headers = {{"content-type", "application/json"},
                                                {"last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"}}}));
  auto full = h.get("news", "If-None-Match: \"e1-0\"\r\n");
  CHECK(full.status == 200);
  CHECK(full.body == R"({"v":1})");
  CHECK(full.header("content-type") == "application/json");
  CHECK(full.header("etag") == R"("e1-1-1")");
  CHECK(full.header("x-sequence") == "1");
  CHECK(full.header("cache-control") == "no-cache");
  CHECK(full.header("retry-after") == "3");
  CHECK(full.header("last-modified") == "Sun, 06 Nov 1994 08:49:37 GMT");
  CHECK(h.last_shared_body == h.broker.latest("news")->data().data());  // the message's bytes, not a copy

  auto same = h.get("news", "If-None-Match: \"e1-1-1\"\r\n");
  CHECK(same.status == 304);
  CHECK(same.body.empty());
  CHECK(same.header("etag") == R"("e1-1-1")");
  CHECK(h.get("news", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n").status == 304);
  CHECK(h.get("news", "If-Modified-Since: Sun, 06 Nov 1994 08:49:36 GMT\r\n").status == 200);
  // A tag from another process (epoch) or an older version: the full response.
  CHECK(h.get("news", "If-None-Match: \"e0-1-1\"\r\n").status == 200);

  REQUIRE(h.broker.publish("news", {.payload = shared_bytes::copy("plain")}));
  auto next = h.get("news", "If-None-Match: \"e1-1-1\"\r\n");
  CHECK(next.status == 200);
  CHECK(next.body == "plain");
  CHECK(next.header("content-type") == "application/octet-stream");
  CHECK_FALSE(next.has_header("last-modified"));
}

TEST_CASE("push latest: If-Match, nothing retained, random epochs", "[push][latest]") {
  latest_server h;
  REQUIRE(h.broker.publish("news", {.payload = shared_bytes::copy("a")}));
  CHECK(h.get("news", "If-Match: \"e1-1-1\"\r\n").status == 200);
  auto stale = h.get("news", "If-Match: \"e1-0\"\r\n");
  CHECK(stale.status == 412);
  CHECK(stale.header("etag") == R"("e1-1-1")");

  latest_server off(0);
  REQUIRE(off.broker.publish("news", {.payload = shared_bytes::copy("a")}));
  CHECK(off.get("news").status == 404);

  const push::latest_endpoint a(h.broker), b(h.broker);
  CHECK(a.epoch().size() == 16);
  CHECK(a.epoch() != b.epoch());
  CHECK_THROWS_AS(push::latest_endpoint(h.broker, {.epoch = "bad epoch"}), std::invalid_argument);
}

// A poll that comes as a topic's first message is published must see the topic empty (204) or the message (200),
// never a topic that "retains no message" (404): the endpoint read the latest message, then the last sequence
// number, so a message published in between counted without being there. Each topic gives the race one chance:
// its publisher waits until the poller is polling it.
TEST_CASE("push latest: a poll racing the first publish never answers 404", "[push][latest]") {
  asio::io_context ctx;
  pubsub::broker broker(ctx.get_executor(), {.retention = {.max_messages = 1}});
  const push::latest_endpoint latest(broker, {.epoch = "e1"});
  const test::fake_request poll("GET", "/latest");
  constexpr int topics = 300;
  std::atomic<int> polling{-1};
  std::thread publisher([&] {
    for (int i = 0; i < topics; ++i) {
      for (int now = polling.load(); now < i; now = polling.load()) polling.wait(now);
      broker.publish("t" + std::to_string(i), {.payload = shared_bytes::copy("x")});
    }
  });
  int not_found = 0;
  for (int i = 0; i < topics; ++i) {
    const std::string topic = "t" + std::to_string(i);
    polling = i;
    polling.notify_one();
    for (;;) {
      const http::status status = latest(poll.req, topic).status();
      if (status == http::status::not_found) ++not_found;
      if (status != http::status::no_content) break;
    }
  }
  publisher.join();
  CHECK(not_found == 0);
}

// Erased and made again, a topic numbers from 1 again under the same epoch: a client's tag of the old topic's message
// 1 must not answer 304 for the new topic's message 1 (it did, the tag being the sequence number alone).
TEST_CASE("push latest: a tag of an erased topic does not match the topic made again", "[push][latest]") {
  asio::io_context ctx;
  pubsub::broker broker(ctx.get_executor(), {.retention = {.max_messages = 10}});
  const push::latest_endpoint latest(broker, {.epoch = "e1"});
  const auto poll = [&](const std::string& if_none_match) {
    const test::fake_request req("GET", "/latest", {{"If-None-Match", if_none_match}});
    return latest(req.req, "t");
  };
  REQUIRE(broker.publish("t", {.payload = shared_bytes::copy("old")}));
  const std::string old_tag(poll(R"("none")").headers().get("etag"));
  CHECK(poll(old_tag).status() == http::status::not_modified);

  REQUIRE(broker.erase_topic("t"));
  REQUIRE(broker.publish("t", {.payload = shared_bytes::copy("new")}));
  REQUIRE(broker.last_sequence("t") == 1);
  const http::response fresh = poll(old_tag);
  CHECK(fresh.status() == http::status::ok);
  const std::string new_tag(fresh.headers().get("etag"));
  CHECK(new_tag != old_tag);
  CHECK(fresh.headers().get("x-sequence") == "1");
  CHECK(poll(new_tag).status() == http::status::not_modified);
  CHECK(broker.stats("t")->incarnation > 1);
}

// A gap (an upstream connection lost) may hide messages published meanwhile: the message before it is not served as
// the latest state (the broker no longer retains it), until the next message.
TEST_CASE("push latest: after a gap the topic answers 404 until its next message", "[push][latest]") {
  asio::io_context ctx;
  pubsub::broker broker(ctx.get_executor(), {.retention = {.max_messages = 10}});
  const push::latest_endpoint latest(broker, {.epoch = "e1"});
  const test::fake_request poll("GET", "/latest");
  REQUIRE(broker.publish("t", {.payload = shared_bytes::copy("a")}));
  CHECK(latest(poll.req, "t").status() == http::status::ok);
  broker.report_gap("t", pubsub::gap_reason::upstream);
  CHECK(latest(poll.req, "t").status() == http::status::not_found);
  REQUIRE(broker.publish("t", {.payload = shared_bytes::copy("b")}));
  const http::response r = latest(poll.req, "t");
  CHECK(r.status() == http::status::ok);
  CHECK(r.headers().get("x-sequence") == "3");
}
