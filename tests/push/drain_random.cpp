// A randomized model of the graceful drain (DESIGN promise 6) across the components of one runtime: an HTTP server
// (idle keep-alive connections, requests in flight in slow coroutine handlers, pipelined requests, a streamed
// response), the push hub (SSE streams, WebSockets), parked long polls, and the broker's RESP front end with
// subscribed clients, all at once. Then `stop(grace)`, from the test's thread or another one; some clients honour the
// drain and some do not (a handler that does not answer, a WebSocket that does not answer the close), and each client
// checks what it saw against the promise. The drain report must count exactly what the clients saw.
//
// What the report counts (core/drain.hpp, docs/runtime.md): the sum of every registered component's report, each
// counting its own things. The HTTP server counts its connections open when it starts draining (an SSE stream and a
// parked long poll are responses of HTTP connections, so counted there; a WebSocket was handed over at its upgrade and
// is not); the hub counts its WebSocket sessions; the long-poll endpoint counts the parked requests its drain
// answered (so a parked poll counts once as a connection and once as a parked request); the RESP front end counts its
// clients.
#include <switchboard/core/runtime.hpp>
#include <switchboard/http/server.hpp>
#include <switchboard/longpoll/endpoint.hpp>
#include <switchboard/pubsub/broker.hpp>
#include <switchboard/pubsub/resp_server.hpp>
#include <switchboard/push/hub.hpp>
#include <switchboard/ws/frame_parser.hpp>

#include "support/catch.hpp"
#include "support/raw_http.hpp"
#include "support/test_support.hpp"

#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard;

namespace {

// Forwards a drain to a component that is not registered with the runtime itself, and keeps its report, so that the
// test can check each component's count and not only the sum.
struct recorded final : drainable {
  explicit recorded(drainable& c) : inner(c) {}
  void async_drain(std::chrono::steady_clock::time_point deadline, std::function<void(drain_report)> done) override {
    inner.async_drain(deadline, [this, done = std::move(done)](drain_report r) {
      {
        std::lock_guard lock(mutex);
        // drainable: "a later call ... has its done called too, with the same report".
        if (calls++ == 0) report = r;
        else if (r.drained != report.drained || r.cut != report.cut) ++differing;
      }
      done(r);
    });
  }
  drain_report get() {
    std::lock_guard lock(mutex);
    return report;
  }
  drainable& inner;
  std::mutex mutex;
  drain_report report;
  int calls = 0;
  int differing = 0;  // later calls whose report was not the first's
};

// Registered last: the runtime calls it after every other component, and each post it makes to a thread runs after
// theirs there (one context per thread, handlers in order). So once `threads_reached` is the runtime's size, every
// listener is closed; and a handler released here answers a connection that is already draining. Counts nothing.
struct drain_marker final : drainable {
  explicit drain_marker(runtime& r) : rt(r) {}
  void async_drain(std::chrono::steady_clock::time_point, std::function<void(drain_report)> done) override {
    if (!started.exchange(true)) {
      std::lock_guard lock(mutex);
      for (auto& t : prompt) asio::post(t->get_executor(), [t] { t->cancel(); });
      for (std::size_t i = 0; i < rt.size(); ++i) asio::post(rt.executor(i), [this] { ++threads_reached; });
    }
    done({});
  }
  // A handler that answers when the drain starts (one that honours it).
  void hold(std::shared_ptr<asio::steady_timer> t) {
    std::lock_guard lock(mutex);
    prompt.push_back(std::move(t));
  }
  runtime& rt;
  std::mutex mutex;
  std::vector<std::shared_ptr<asio::steady_timer>> prompt;
  std::atomic<bool> started{false};
  std::atomic<std::size_t> threads_reached{0};
};

const std::string ws_handshake_fields =
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n";

// Reads server frames until a close frame: its code, or nullopt if the connection ended (or a read timed out) first.
std::optional<ws::close_code> read_ws_close(test::raw_client& c) {
  ws::frame_parser parser(ws::role::client);
  std::string bytes = c.take_buffered();
  std::size_t pos = 0;
  for (;;) {
    const ws::parse_result r = parser.parse(std::span<char>(bytes.data() + pos, bytes.size() - pos));
    pos += r.consumed;
    if (r.event == ws::parse_event::close) return r.code;
    if (r.event == ws::parse_event::error) return std::nullopt;
    if (r.event == ws::parse_event::need_more) {
      std::string more = c.read_bytes(1);
      if (more.empty()) return std::nullopt;
      bytes.erase(0, pos);
      pos = 0;
      bytes += more;
    }
  }
}

// A masked client close frame with code 1001.
std::string ws_close_frame() {
  const unsigned char mask[4] = {0x11, 0x22, 0x33, 0x44};
  const unsigned char payload[2] = {0x03, 0xE9};
  std::string f{char(0x88), char(0x82)};
  for (unsigned char m : mask) f += char(m);
  for (int i = 0; i < 2; ++i) f += char(payload[i] ^ mask[i]);
  return f;
}

enum class kind { idle, prompt, stubborn, pipelined, stream, sse, ws_honour, ws_stubborn, longpoll, resp };

const char* name_of(kind k) {
  switch (k) {
    case kind::idle: return "idle keep-alive";
    case kind::prompt: return "in-flight request (handler answers)";
    case kind::stubborn: return "in-flight request (handler never answers)";
    case kind::pipelined: return "pipelined requests";
    case kind::stream: return "streamed response";
    case kind::sse: return "SSE stream";
    case kind::ws_honour: return "WebSocket (answers the close)";
    case kind::ws_stubborn: return "WebSocket (ignores the close)";
    case kind::longpoll: return "parked long poll";
    case kind::resp: return "RESP subscriber";
  }
  return "?";
}

struct client {
  kind k;
  std::unique_ptr<test::raw_client> c;
  std::size_t fast_before = 0, fast_after = 0;  // pipelined: fast requests before and after the slow one
  std::size_t body = 0;                         // prompt, pipelined: the slow response's body size
};

}  // namespace

TEST_CASE("drain: random mixes of HTTP, SSE, WebSocket, long-poll and RESP clients drain as promised",
          "[push][drain]") {
  for (unsigned seed = 1; seed <= 8; ++seed) {
    INFO("seed " << seed);
    std::mt19937 rng(seed);
    auto pick = [&rng](std::size_t lo, std::size_t hi) { return std::uniform_int_distribution<std::size_t>(lo, hi)(rng); };

    runtime rt({.threads = 2, .handle_signals = false});
    http::router routes;
    pubsub::broker broker(rt.executor(0), {.retention = {.max_messages = 100}});
    push::hub_options hub_options;
    // A WebSocket that does not answer the close must be cut at the drain deadline, not by the session's own close
    // timeout (5 s by default, longer than any grace here).
    hub_options.websocket.session.close_timeout = 60s;
    push::hub hub(broker, hub_options);
    longpoll::endpoint polls(broker);
    drain_marker marker(rt);
    std::atomic<std::size_t> handlers_started{0}, streams_started{0};

    routes.get("/fast", [](http::request&) { return http::response::text("ok"); });
    routes.get("/slow", [&](http::request& req) -> asio::awaitable<http::response> {
      const bool stubborn = req.query_param("mode") == "stubborn";
      const std::size_t size = std::stoul(req.query_param("size").value_or("1"));
      auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor, 60s);
      if (!stubborn) marker.hold(timer);  // else the connection's cut cancels the wait
      ++handlers_started;
      std::error_code ec;
      co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      co_return http::response::text(std::string(size, 's'));
    });
    routes.get("/stream", [&](http::request&) {
      return http::response::stream("text/plain", [&](http::body_writer& w) -> asio::awaitable<void> {
        ++streams_started;
        asio::steady_timer t(w.get_executor());
        try {
          for (;;) {
            std::error_code ec;
            co_await w.async_write(std::string_view("tick\n"), asio::redirect_error(asio::use_awaitable, ec));
            if (ec) co_return;
            t.expires_after(10ms);
            co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            if (ec) co_return;  // the drain stops the stream: end the body
          }
        } catch (const std::system_error&) {
          // Awaiting after the cancellation throws: the body ends all the same.
        }
      });
    });
    routes.get("/topics/{topic}/events", [&](http::request& req) { return hub.sse(req, req.param("topic")); });
    routes.get("/topics/{topic}/ws", [&](http::request& req) { return hub.websocket(req, req.param("topic")); });
    longpoll::add_route(routes, polls);

    http::server server(rt, routes, {});  // registers itself first
    pubsub::resp_server resp(rt.executor(1), broker, {.port = 0});
    recorded hub_drain(hub), poll_drain(polls), resp_drain(resp);
    rt.add(hub_drain);
    rt.add(poll_drain);
    rt.add(resp_drain);
    rt.add(marker);
    server.start();
    resp.start();
    rt.start();
    const std::uint16_t port = server.local_endpoint().port();
    const std::uint16_t resp_port = resp.local_endpoint().port();

    // The mix: 0 to 3 clients of each kind, in a random order.
    std::vector<kind> kinds;
    for (kind k : {kind::idle, kind::prompt, kind::stubborn, kind::pipelined, kind::stream, kind::sse, kind::ws_honour,
                   kind::ws_stubborn, kind::longpoll, kind::resp}) {
      // Half the seeds have no client that refuses to leave: the drain then ends without waiting for its deadline.
      const bool refuses = k == kind::stubborn || k == kind::ws_stubborn;
      const std::size_t n = refuses && seed % 2 == 0 ? 0 : pick(0, 3);
      kinds.insert(kinds.end(), n, k);
    }
    if (kinds.empty()) kinds.push_back(kind::idle);
    std::shuffle(kinds.begin(), kinds.end(), rng);
    auto count = [&kinds](kind k) { return static_cast<std::size_t>(std::count(kinds.begin(), kinds.end(), k)); };

    // Set each up, and wait until the server holds it where the test wants it.
    asio::io_context idle;  // for run_until, polling counters that the server's threads update
    std::vector<client> clients;
    std::size_t slow_expected = 0, streams_expected = 0, hub_clients_expected = 0, parked_expected = 0;
    for (kind k : kinds) {
      client cl{k, std::make_unique<test::raw_client>(k == kind::resp ? resp_port : port, 10s)};
      test::raw_client& c = *cl.c;
      switch (k) {
        case kind::idle: {
          c.send(test::get_request("/fast"));
          auto r = c.read_response();
          REQUIRE(r);
          REQUIRE(r->keep_alive);
          break;
        }
        case kind::prompt:
        case kind::stubborn:
          cl.body = pick(1, 200'000);
          c.send(test::get_request("/slow?mode=" + std::string(k == kind::prompt ? "prompt" : "stubborn") +
                                   "&size=" + std::to_string(cl.body)));
          ++slow_expected;
          break;
        case kind::pipelined: {
          cl.fast_before = pick(0, 3);
          cl.fast_after = pick(0, 3);
          cl.body = pick(1, 5000);
          std::string all;
          for (std::size_t i = 0; i < cl.fast_before; ++i) all += test::get_request("/fast");
          all += test::get_request("/slow?mode=prompt&size=" + std::to_string(cl.body));
          for (std::size_t i = 0; i < cl.fast_after; ++i) all += test::get_request("/fast");
          c.send(all);  // one write: the server reads them together
          ++slow_expected;
          break;
        }
        case kind::stream:
          c.send(test::get_request("/stream"));
          ++streams_expected;
          break;
        case kind::sse:
          c.send(test::get_request("/topics/news/events"));
          ++hub_clients_expected;
          break;
        case kind::ws_honour:
        case kind::ws_stubborn: {
          c.send(test::get_request("/topics/news/ws", ws_handshake_fields));
          auto r = c.read_response();
          REQUIRE(r);
          REQUIRE(r->status == 101);
          ++hub_clients_expected;
          break;
        }
        case kind::longpoll:
          c.send(test::get_request("/topics/quiet/poll?timeout=50"));
          ++parked_expected;
          break;
        case kind::resp: {
          c.send("*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n");
          const std::string confirmation = "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n";
          REQUIRE(c.read_bytes(confirmation.size()) == confirmation);
          break;
        }
      }
      REQUIRE(test::run_until(idle, [&] {
        return handlers_started == slow_expected && streams_started == streams_expected &&
               hub.stats().clients == hub_clients_expected && polls.parked() == parked_expected;
      }));
      clients.push_back(std::move(cl));
    }
    const std::uint64_t accepted_before = server.stats().accepted;

    // A moment chosen at random: after some traffic that the drain must not confuse with the clients' (publishes to
    // the topics the SSE and WebSocket clients follow).
    const std::size_t published = pick(0, 5);
    for (std::size_t i = 0; i < published; ++i) broker.publish("news", {.payload = shared_bytes(std::string("m"))});
    const bool refusers = count(kind::stubborn) + count(kind::ws_stubborn) > 0;
    const auto grace = std::chrono::milliseconds(refusers ? 800 + 100 * pick(0, 5) : 5000);
    // Sometimes a second stop (as a second signal would) moves the deadline earlier: from another thread while the
    // first drain starts, or once the clients have seen the drain (when most components have finished theirs).
    const std::size_t second_when = pick(0, 2);  // 0: none, 1: at once, 2: late
    const auto second_grace = second_when != 0 ? std::optional(std::chrono::milliseconds(500 + 100 * pick(0, 3)))
                                                : std::nullopt;
    INFO("grace " << grace.count() << " ms, second stop " << (second_grace ? second_grace->count() : -1) << " ms ("
                  << (second_when == 2 ? "late" : "at once") << "), " << kinds.size() << " clients");
    std::jthread second;
    if (pick(0, 1) == 0) {
      rt.stop(grace);
      if (second_when == 1) second = std::jthread([&rt, g = *second_grace] { rt.stop(g); });
    } else {
      std::thread([&rt, grace] { rt.stop(grace); }).join();
      if (second_when == 1) rt.stop(*second_grace);
    }

    // What the clients saw: each adds to the drained or the cut count it expects the report to show.
    drain_report seen;
    std::size_t seen_parked_answered = 0, seen_ws_drained = 0, seen_ws_cut = 0, seen_resp = 0;
    // Clients that must act (a WebSocket answering the close) first, before the deadline; those that must be cut last.
    std::stable_sort(clients.begin(), clients.end(), [](const client& a, const client& b) {
      auto rank = [](kind k) { return k == kind::ws_honour ? 0 : (k == kind::stubborn || k == kind::ws_stubborn) ? 2 : 1; };
      return rank(a.k) < rank(b.k);
    });
    for (client& cl : clients) {
      INFO(name_of(cl.k));
      test::raw_client& c = *cl.c;
      switch (cl.k) {
        case kind::idle:
          CHECK(c.closed_by_peer());
          ++seen.drained;
          break;
        case kind::prompt: {
          auto r = c.read_response();
          REQUIRE(r);
          CHECK(r->status == 200);
          CHECK(r->body == std::string(cl.body, 's'));
          CHECK(r->header("connection") == "close");
          CHECK_FALSE(r->keep_alive);
          CHECK(c.closed_by_peer());
          ++seen.drained;
          break;
        }
        case kind::stubborn:
          CHECK_FALSE(c.read_response());  // cut at the deadline, unanswered
          ++seen.cut;
          break;
        case kind::pipelined: {
          for (std::size_t i = 0; i < cl.fast_before; ++i) {
            auto r = c.read_response();
            REQUIRE(r);
            CHECK(r->body == "ok");
            CHECK(r->keep_alive);  // answered before the drain
          }
          auto r = c.read_response();
          REQUIRE(r);
          CHECK(r->body == std::string(cl.body, 's'));
          CHECK(r->header("connection") == "close");
          // The requests behind it are not answered: the client sends them again elsewhere.
          CHECK(c.closed_by_peer());
          ++seen.drained;
          break;
        }
        case kind::stream:
        case kind::sse: {
          auto r = c.read_response();  // whole only with the chunked body's terminator
          REQUIRE(r);
          CHECK(r->status == 200);
          CHECK(r->header("transfer-encoding") == "chunked");
          if (cl.k == kind::stream) {
            CHECK(!r->body.empty());
            CHECK(r->body.size() % 5 == 0);
          } else {
            CHECK(r->header("content-type").starts_with("text/event-stream"));
          }
          CHECK(c.closed_by_peer());
          ++seen.drained;
          break;
        }
        case kind::ws_honour: {
          auto code = read_ws_close(c);
          REQUIRE(code);
          CHECK(*code == ws::close_code::going_away);
          c.send(ws_close_frame());
          CHECK(c.closed_by_peer());
          ++seen_ws_drained;
          break;
        }
        case kind::ws_stubborn: {
          auto code = read_ws_close(c);
          REQUIRE(code);
          CHECK(*code == ws::close_code::going_away);
          CHECK(c.closed_by_peer());  // never answered: cut at the deadline
          ++seen_ws_cut;
          break;
        }
        case kind::longpoll: {
          auto r = c.read_response();
          REQUIRE(r);
          CHECK(r->status == 200);  // answered, not cut: nothing new, the same cursor
          CHECK(r->header("connection") == "close");
          CHECK(c.closed_by_peer());
          ++seen.drained;
          ++seen_parked_answered;
          break;
        }
        case kind::resp: {
          // What was published before the drain (queued for it before the drain reached its thread), then the end:
          // unsubscribed without confirmations, and closed.
          std::string expected;
          for (std::size_t i = 0; i < published; ++i) expected += "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$1\r\nm\r\n";
          CHECK(c.read_until_close() == expected);
          CHECK(c.closed_by_peer());
          ++seen_resp;
          break;
        }
      }
    }

    if (second_when == 2) second = std::jthread([&rt, g = *second_grace] { rt.stop(g); });

    // No new connection once the drain has reached every thread (its listeners closed before).
    REQUIRE(test::run_until(idle, [&] { return marker.threads_reached == rt.size(); }));
    for (std::uint16_t p : {port, resp_port}) {
      asio::io_context ctx;
      asio::ip::tcp::socket s(ctx);
      std::error_code ec;
      s.connect({asio::ip::make_address("127.0.0.1"), p}, ec);
      CHECK(ec == asio::error::connection_refused);
    }

    // The threads return (with a deadline: stopped by force, and the test fails, if they do not).
    auto waited = std::async(std::launch::async, [&rt] { return rt.wait(); });
    const bool returned = waited.wait_for(20s) == std::future_status::ready;
    if (!returned) {
      for (std::size_t i = 0; i < rt.size(); ++i) rt.context(i).stop();
    }
    const drain_report total = waited.get();
    REQUIRE(returned);
    if (second.joinable()) second.join();
    CHECK(server.stats().accepted == accepted_before);

    // The counts, component by component, as the clients saw them.
    const drain_report hub_report = hub_drain.get(), poll_report = poll_drain.get(), resp_report = resp_drain.get();
    CHECK(hub_drain.differing == 0);
    CHECK(poll_drain.differing == 0);
    CHECK(resp_drain.differing == 0);
    CHECK(hub_report.drained == seen_ws_drained);
    CHECK(hub_report.cut == seen_ws_cut);
    CHECK(poll_report.drained == seen_parked_answered);
    CHECK(poll_report.cut == 0);
    CHECK(resp_report.drained == seen_resp);
    CHECK(resp_report.cut == 0);
    CHECK(total.drained - hub_report.drained - poll_report.drained - resp_report.drained == seen.drained);
    CHECK(total.cut - hub_report.cut - poll_report.cut - resp_report.cut == seen.cut);
    CHECK(total.drained == seen.drained + seen_parked_answered + seen_ws_drained + seen_resp);
    CHECK(total.cut == seen.cut + seen_ws_cut);
  }
}
