// WebSocket sessions on the HTTP server, driven over a raw socket with frames written by the codec.
#include <switchboard/ws/accept.hpp>

#include "support/catch.hpp"
#include "support/raw_http.hpp"
#include "support/test_server.hpp"
#include "support/test_support.hpp"
#include "support/tls_client.hpp"

#include <switchboard/ws/connect.hpp>
#include <switchboard/ws/frame_parser.hpp>
#include <switchboard/ws/frame_writer.hpp>

#include <asio/cancellation_signal.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>

#include <poll.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard;
using switchboard::test::raw_client;
using switchboard::test::test_server;

namespace {

const std::string client_key = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455 §1.3

std::string upgrade_request(std::string_view path, std::string_view extra = {}) {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: " + client_key + "\r\nSec-WebSocket-Version: 13\r\n" + std::string(extra) + "\r\n";
}

// Sends the opening handshake for `path` through `c` (raw_client or tls_client) and requires the 101.
template <class Client>
void open_websocket(Client& c, std::string_view path) {
  c.send(upgrade_request(path));
  REQUIRE(c.read_response()->status == 101);
}

// A WebSocket client over a test client (raw_client, or tls_client for wss), made once the 101 is read: masked frames
// out, parsed frames in (starting with any the server sent together with its 101).
template <class Client>
class ws_peer {
 public:
  explicit ws_peer(Client& c) : c_(c), buffer_(c.take_buffered()) {}
  void send(ws::opcode op, std::string_view payload) { c_.send(encode(op, payload)); }
  // One masked frame (a fragment unless `fin`), to send together with others in one write.
  std::string encode(ws::opcode op, std::string_view payload, bool fin = true) {
    std::string frame(writer_.frame_size(payload.size()), '\0');
    frame.resize(writer_.write_frame(frame, op, payload, fin));
    return frame;
  }
  void send_close(ws::close_code code) {
    std::string frame(8, '\0');
    frame.resize(writer_.write_close(frame, code));
    c_.send(frame);
  }
  // The next event from the server (data messages assembled).
  ws::parse_result next(std::string& data) {
    data.clear();
    for (;;) {
      while (!buffer_.empty()) {
        ws::parse_result r = parser_.parse(std::span<char>(buffer_.data(), buffer_.size()));
        std::string payload(r.payload);
        std::string reason(r.reason);
        buffer_.erase(0, r.consumed);
        if (r.event == ws::parse_event::need_more) break;
        if (r.event == ws::parse_event::data) {
          data += payload;
          if (!r.message_end) continue;
        } else {
          data = payload.empty() ? reason : payload;
        }
        r.payload = {};
        r.reason = {};
        return r;
      }
      const std::string more = c_.read_bytes(1);
      if (more.empty()) {
        ws::parse_result eof;
        eof.event = ws::parse_event::error;
        return eof;
      }
      buffer_ += more;
    }
  }

 private:
  Client& c_;
  ws::frame_writer writer_{ws::role::client};
  ws::frame_parser parser_{ws::role::client};
  std::string buffer_;
};

// GET /echo: a WebSocket that sends every message back.
void add_echo_route(http::router& routes, ws::accept_options options) {
  routes.get("/echo", [options](http::request& req) {
    return ws::accept(req, options, [](std::shared_ptr<ws::session> session) {
      std::weak_ptr<ws::session> weak = session;
      session->on_message([weak](ws::message&& m) {
        if (auto self = weak.lock()) self->send(ws::session::make_outgoing(m.type, std::move(m.data)));
      });
    });
  });
}

// GET `path`: a WebSocket whose end is reported to `closed`; `on_open` (if any) then runs for each new session.
void add_watched_route(http::router& routes, const std::string& path, ws::accept_options options,
                       std::promise<ws::close_info>& closed, std::function<void(ws::session&)> on_open = {}) {
  routes.get(path, [options, &closed, on_open](http::request& req) {
    return ws::accept(req, options, [&closed, on_open](std::shared_ptr<ws::session> session) {
      session->on_close([&closed](const ws::close_info& info) { closed.set_value(info); });
      if (on_open) on_open(*session);
    });
  });
}

// Waits for the end reported to `closed` and checks that the server cut the connection for `reason`.
void check_cut(std::promise<ws::close_info>& closed, std::string_view reason) {
  auto f = closed.get_future();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  const ws::close_info info = f.get();
  CHECK(info.code == ws::close_code::abnormal);
  CHECK(info.reason == reason);
  CHECK_FALSE(info.by_peer);
}

// Closes `client` with 1000 and checks that its on_close (which fills `closed`) heard our own close.
void close_normally(asio::io_context& ctx, ws::session& client, const std::optional<ws::close_info>& closed) {
  client.close(ws::close_code::normal, "bye");
  REQUIRE(test::run_until(ctx, [&] { return closed.has_value(); }));
  CHECK(closed->code == ws::close_code::normal);
  CHECK_FALSE(closed->by_peer);
}

// Waits for the session a route handed to `opened` when it opened.
std::shared_ptr<ws::session> take_session(std::promise<std::shared_ptr<ws::session>>& opened) {
  auto f = opened.get_future();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  return f.get();
}

}  // namespace

TEST_CASE("ws session: echoes keep their order when a pong is written while the first one is being handed over",
          "[ws][session]") {
  // Messages and a ping arriving in one read: the first echo goes to the session's waiting pop (its completion
  // is posted), the next ones into the queue, and the ping makes the session write its pong at once. The queued
  // echoes must not be written ahead of the one being handed over.
  test_server s;
  s.routes().get("/echo", [&](http::request& req) {
    return ws::accept(req, {}, [](std::shared_ptr<ws::session> session) {
      std::weak_ptr<ws::session> weak = session;
      session->on_message([weak](ws::message&& m) {
        if (auto self = weak.lock()) self->send_text(std::move(m.data));
      });
    });
  });
  s.start();
  raw_client c(s.port());
  c.send(upgrade_request("/echo"));
  auto r = c.read_response();
  REQUIRE(r);
  REQUIRE(r->status == 101);
  ws_peer peer(c);
  for (int round = 0; round < 20; ++round) {
    std::string burst;
    for (int i = 0; i < 3; ++i) burst += peer.encode(ws::opcode::text, std::to_string(round) + "." + std::to_string(i));
    burst += peer.encode(ws::opcode::ping, "p");
    c.send(burst);
    std::vector<std::string> echoes;
    std::string data;
    while (echoes.size() < 3) {
      auto e = peer.next(data);
      REQUIRE((e.event == ws::parse_event::data || e.event == ws::parse_event::pong));
      if (e.event == ws::parse_event::data) echoes.push_back(data);
    }
    const std::string p = std::to_string(round) + ".";
    CHECK(echoes == std::vector<std::string>{p + "0", p + "1", p + "2"});
  }
}

// An idle writer takes a message sent on the session's thread without the queue's waiting pop (session_impl::offer):
// answers sent while a read's messages are handled go out together after the read, a send outside a handler is
// written at once. Both keep their order, and the queue counts each as pushed and popped.
TEST_CASE("ws session: sends on the session's thread, in handlers and outside them, keep their order and are counted",
          "[ws][session]") {
  test_server s;
  std::promise<std::shared_ptr<ws::session>> opened;
  s.routes().get("/twice", [&opened](http::request& req) {
    return ws::accept(req, {}, [&opened](std::shared_ptr<ws::session> session) {
      std::weak_ptr<ws::session> weak = session;
      session->on_message([weak](ws::message&& m) {
        if (auto self = weak.lock()) {
          self->send_text("a" + m.data);
          self->send_text("b" + m.data);
        }
      });
      opened.set_value(session);
    });
  });
  s.start();
  raw_client c(s.port());
  open_websocket(c, "/twice");
  ws_peer peer(c);
  const std::shared_ptr<ws::session> session = take_session(opened);
  const auto next_text = [&peer] {
    std::string data;
    const auto e = peer.next(data);
    CHECK(e.event == ws::parse_event::data);
    return data;
  };

  constexpr int messages = 30;  // in one write, so that the server reads several at once
  std::string burst;
  for (int i = 0; i < messages; ++i) burst += peer.encode(ws::opcode::text, std::to_string(i));
  c.send(burst);
  for (int i = 0; i < messages; ++i) {
    CHECK(next_text() == "a" + std::to_string(i));
    CHECK(next_text() == "b" + std::to_string(i));
  }
  constexpr int later = 10;
  asio::post(session->get_executor(), [session] {
    for (int i = 0; i < later; ++i) session->send_text("x" + std::to_string(i));
  });
  for (int i = 0; i < later; ++i) CHECK(next_text() == "x" + std::to_string(i));

  std::promise<queue_stats> counted;
  asio::post(session->get_executor(), [&] { counted.set_value(session->send_stats()); });
  auto counted_future = counted.get_future();
  REQUIRE(counted_future.wait_for(10s) == std::future_status::ready);
  const queue_stats stats = counted_future.get();
  CHECK(stats.pushed == 2 * messages + later);
  CHECK(stats.popped == 2 * messages + later);
  CHECK(stats.depth == 0);
  CHECK(session->dropped() == 0);
}

TEST_CASE("ws session: handshake, echo, ping, close", "[ws][session]") {
  test_server s;
  auto group = std::make_shared<ws::session_group>();
  ws::accept_options options{.subprotocols = {"chat.v2", "chat.v1"}, .group = group};
  std::promise<ws::close_info> closed;
  s.routes().get("/echo", [&](http::request& req) {
    return ws::accept(req, options, [&](std::shared_ptr<ws::session> session) {
      std::weak_ptr<ws::session> weak = session;
      session->on_message([weak](ws::message&& m) {
        if (auto self = weak.lock()) {
          if (m.is_text()) self->send_text(std::move(m.data));
          else self->send_binary(std::move(m.data));
        }
      });
      session->on_close([&](const ws::close_info& info) { closed.set_value(info); });
    });
  });
  s.start();
  raw_client c(s.port());
  c.send(upgrade_request("/echo", "Sec-WebSocket-Protocol: chat.v1, chat.v2\r\n"));
  auto r = c.read_response();
  REQUIRE(r);
  REQUIRE(r->status == 101);
  CHECK(r->header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");  // RFC 6455 §1.3
  CHECK(r->header("sec-websocket-protocol") == "chat.v2");                    // the server's preference
  ws_peer peer(c);
  std::string data;

  peer.send(ws::opcode::text, "hello");
  auto e = peer.next(data);
  CHECK(e.event == ws::parse_event::data);
  CHECK(e.message_type == ws::opcode::text);
  CHECK(data == "hello");

  const std::string big(200'000, 'b');
  peer.send(ws::opcode::binary, big);
  e = peer.next(data);
  CHECK(e.message_type == ws::opcode::binary);
  CHECK(data == big);

  peer.send(ws::opcode::ping, "are you there");
  e = peer.next(data);
  CHECK(e.event == ws::parse_event::pong);
  CHECK(data == "are you there");
  CHECK(group->size() == 1);

  peer.send_close(ws::close_code::normal);
  e = peer.next(data);
  CHECK(e.event == ws::parse_event::close);
  CHECK(e.code == ws::close_code::normal);
  auto f = closed.get_future();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  const ws::close_info info = f.get();
  CHECK(info.by_peer);
  CHECK(info.code == ws::close_code::normal);
  CHECK(c.closed_by_peer());
  CHECK(group->size() == 0);
}

// Failing the connection (RFC 6455 §7.1.7): a close frame with the code, then the socket closed at once, not after
// the close timeout (a minute here, longer than the client waits): the peer's close would never be read.
TEST_CASE("ws session: protocol errors close with the right code", "[ws][session]") {
  test_server s;
  s.routes().get("/ws", [](http::request& req) {
    return ws::accept(req, {.session = {.close_timeout = 60'000ms}}, [](std::shared_ptr<ws::session>) {});
  });
  s.start();
  raw_client c(s.port());
  open_websocket(c, "/ws");
  ws_peer peer(c);
  std::string data;
  SECTION("an unmasked client frame: 1002") {
    c.send(std::string("\x81\x02hi", 4));
    auto e = peer.next(data);
    CHECK(e.event == ws::parse_event::close);
    CHECK(e.code == ws::close_code::protocol_error);
    CHECK(c.closed_by_peer());
  }
  SECTION("invalid UTF-8 in a text message: 1007") {
    peer.send(ws::opcode::text, "\xff\xfe");
    auto e = peer.next(data);
    CHECK(e.event == ws::parse_event::close);
    CHECK(e.code == ws::close_code::invalid_payload);
    CHECK(c.closed_by_peer());
  }
}

TEST_CASE("ws accept: failed handshakes get an HTTP error", "[ws][session]") {
  test_server s;
  s.routes().get("/ws", [](http::request& req) { return ws::accept(req, {}, [](std::shared_ptr<ws::session>) {}); });
  s.start();
  auto status_of = [&](const std::string& request) {
    raw_client c(s.port());
    c.send(request);
    auto r = c.read_response();
    REQUIRE(r);
    return r->status;
  };
  CHECK(status_of("GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n") == 426);
  CHECK(status_of(upgrade_request("/ws").replace(upgrade_request("/ws").find("Version: 13"), 11, "Version: 8")) == 426);
  {  // a 426 names the protocol to upgrade to (RFC 9110 §15.5.22), and the version (RFC 6455 §4.2.2)
    raw_client c(s.port());
    c.send(upgrade_request("/ws").replace(upgrade_request("/ws").find("Version: 13"), 11, "Version: 8"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->header("Upgrade") == "websocket");
    CHECK(r->header("Sec-WebSocket-Version") == "13");
  }
  std::string bad_key = upgrade_request("/ws");
  bad_key.replace(bad_key.find(client_key), client_key.size(), "not-a-key");
  CHECK(status_of(bad_key) == 400);
  CHECK(status_of(upgrade_request("/ws", "Origin: https://evil.example\r\n")) == 403);
  CHECK(status_of(upgrade_request("/ws", "Origin: http://localhost\r\n")) == 101);
}

namespace {

// A server whose /ws sessions join a group that drains with the runtime, and one session open and in the group,
// seen from the client side through a raw peer.
struct grouped_session {
  grouped_session() {
    s.routes().get("/ws", [this](http::request& req) {
      return ws::accept(req, options, [this](std::shared_ptr<ws::session>) { opened.set_value(); });
    });
    s.rt().add(*group);
    s.start();
    c = std::make_unique<raw_client>(s.port());
    open_websocket(*c, "/ws");
    peer = std::make_unique<ws_peer<raw_client>>(*c);
    REQUIRE(opened.get_future().wait_for(10s) == std::future_status::ready);  // the session is in the group
  }

  test_server s;
  std::shared_ptr<ws::session_group> group = std::make_shared<ws::session_group>();
  ws::accept_options options{.group = group};
  std::promise<void> opened;
  std::unique_ptr<raw_client> c;
  std::unique_ptr<ws_peer<raw_client>> peer;
};

}  // namespace

// The group's bookkeeping runs before the application's on_close, even when the application sets (or replaces)
// on_close after on_open returned: the session must leave its group, or the group keeps it for ever.
TEST_CASE("ws session group: a session leaves its group when it closes, whenever on_close was set", "[ws][session]") {
  test_server s;
  auto group = std::make_shared<ws::session_group>();
  std::promise<std::size_t> group_size_at_close;
  std::promise<void> opened;
  s.routes().get("/ws", [&](http::request& req) {
    return ws::accept(req, {.group = group}, [&](std::shared_ptr<ws::session> session) {
      asio::post(session->get_executor(), [&, session] {  // after on_open
        session->on_close([&](const ws::close_info&) { group_size_at_close.set_value(group->size()); });
        opened.set_value();
      });
    });
  });
  s.start();
  raw_client c(s.port());
  open_websocket(c, "/ws");
  ws_peer peer(c);
  REQUIRE(opened.get_future().wait_for(10s) == std::future_status::ready);
  CHECK(group->size() == 1);
  peer.send_close(ws::close_code::normal);
  auto size = group_size_at_close.get_future();
  REQUIRE(size.wait_for(10s) == std::future_status::ready);
  CHECK(size.get() == 0);
  CHECK(group->size() == 0);
}

TEST_CASE("ws accept: a WebSocket keeps its address counted in max_connections_per_address until it closes",
          "[ws][session]") {
  test_server s;
  std::promise<ws::close_info> closed;
  add_watched_route(s.routes(), "/ws", {}, closed);
  s.routes().get("/plaintext", [](http::request&) { return http::response::text("ok"); });
  s.start({.max_connections_per_address = 1});
  raw_client c(s.port());
  open_websocket(c, "/ws");
  // The HTTP server no longer counts the upgraded connection as one of its own, but its address still holds the
  // one place allowed.
  raw_client refused(s.port());
  CHECK(refused.closed_by_peer());
  CHECK(s.server().stats().refused_per_address == 1);

  ws_peer peer(c);
  peer.send_close(ws::close_code::normal);
  REQUIRE(closed.get_future().wait_for(10s) == std::future_status::ready);
  raw_client after(s.port());
  after.send("GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto r = after.read_response();
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("ws session group: drain closes sessions with 1001", "[ws][session]") {
  grouped_session g;
  test_server& s = g.s;
  auto& peer = *g.peer;
  std::string data;
  std::thread stopper([&] { s.stop(5s); });
  auto e = peer.next(data);
  CHECK(e.event == ws::parse_event::close);
  CHECK(e.code == ws::close_code::going_away);
  peer.send_close(ws::close_code::going_away);
  stopper.join();
  const drain_report report = s.stop();
  CHECK(report.drained == 1);
  CHECK(report.cut == 0);
}

TEST_CASE("ws session group: a session ended in on_open leaves its group", "[ws][session]") {
  test_server s;
  auto group = std::make_shared<ws::session_group>();
  std::promise<void> closed;
  s.routes().get("/ws", [&](http::request& req) {
    return ws::accept(req, {.group = group}, [&](std::shared_ptr<ws::session> session) {
      session->on_close([&](const ws::close_info&) { closed.set_value(); });  // after the group's own hook
      session->abort();  // a client the application refuses
    });
  });
  s.start();
  raw_client c(s.port());
  open_websocket(c, "/ws");
  REQUIRE(closed.get_future().wait_for(10s) == std::future_status::ready);
  CHECK(group->size() == 0);
  CHECK(c.closed_by_peer());
}

namespace {

// A server session over a connected pair of loopback sockets on `ctx`, with no keep-alive or message timeout, and
// the client's end of the connection. A `send_buffer` other than 0 sets the server socket's SO_SNDBUF: a fixed size,
// which the kernel then no longer grows, so that a peer that does not read leaves (nearly) all the rest queued.
struct session_on_socket_pair {
  explicit session_on_socket_pair(asio::io_context& ctx, ws::session_options options = {}, int send_buffer = 0)
      : client(ctx) {
    asio::ip::tcp::acceptor acceptor(ctx, {asio::ip::address_v4::loopback(), 0});
    client.connect(acceptor.local_endpoint());
    options.ping_interval = 0ms;
    options.message_timeout = 0ms;
    asio::ip::tcp::socket server = acceptor.accept();
    if (send_buffer != 0) server.set_option(asio::socket_base::send_buffer_size(send_buffer));
    session = std::make_shared<ws::detail::session_impl<asio::ip::tcp::socket>>(std::move(server), std::string(),
                                                                                  options, std::string(), std::nullopt);
  }
  // Sends one masked text message from the client's end.
  void send_text(std::string_view payload) {
    ws::frame_writer writer(ws::role::client);
    std::string frame(writer.frame_size(payload.size()), '\0');
    frame.resize(writer.write_frame(frame, ws::opcode::text, payload));
    asio::write(client, asio::buffer(frame));
  }

  asio::ip::tcp::socket client;
  std::shared_ptr<ws::session> session;
};

}  // namespace

TEST_CASE("ws session: a message handler that sends and then aborts lives until it returns; the session ends",
          "[ws][session]") {
  asio::io_context ctx;
  session_on_socket_pair pair(ctx);
  std::weak_ptr<ws::session> weak = pair.session;
  // Something the handler holds, which reports when it goes: it must not go while the handler runs.
  bool capture_gone = false;
  bool gone_while_handling = true;
  std::shared_ptr<int> capture(new int(0), [&capture_gone](int* p) {
    capture_gone = true;
    delete p;
  });
  pair.session->on_message([weak, capture, &capture_gone, &gone_while_handling](ws::message&&) {
    auto self = weak.lock();
    // The first answer is handed to the idle writer, the second queued without waking it: the abort must still
    // let the writer's waiting pop go (it holds the session).
    self->send_text("a");
    self->send_text("b");
    self->abort();
    gone_while_handling = capture_gone;
  });
  capture.reset();
  asio::post(ctx, [session = pair.session] { session->start(); });
  pair.session.reset();
  pair.send_text("hello");
  ctx.run_for(10s);  // returns before that once nothing is left to do
  CHECK_FALSE(gone_while_handling);
  CHECK(capture_gone);  // let go once the session ended
  CHECK(weak.expired());
  CHECK(ctx.stopped());
}

TEST_CASE("ws session: async_send to a full queue under the disconnect policy ends the session", "[ws][session]") {
  asio::io_context ctx;
  session_on_socket_pair pair(ctx, {.send_queue = {.max_messages = 2, .max_bytes = 64 << 20,
                                                   .policy = overflow_policy::disconnect}});
  std::optional<ws::close_info> closed;
  pair.session->on_close([&](const ws::close_info& info) { closed = info; });
  std::vector<std::error_code> results;
  asio::post(ctx, [&, session = pair.session] {
    session->start();
    session->send_binary(std::string(16 << 20, 'x'));  // more than the socket takes: the writer waits
    for (int i = 0; i < 4; ++i) {
      session->async_send(ws::session::make_outgoing(ws::opcode::binary, "m"),
                          [&](std::error_code ec, push_outcome) { results.push_back(ec); });
    }
  });
  REQUIRE(test::run_until(ctx, [&] { return closed.has_value() && results.size() == 4; }));
  CHECK(closed->code == ws::close_code::policy_violation);
  CHECK(closed->reason == "send queue overflow");
  CHECK_FALSE(pair.session->is_open());
  CHECK(std::count(results.begin(), results.end(), switchboard::error::overflow_disconnect) == 1);
}

// The peer's close is answered "as soon as practical" (RFC 6455 §5.5.1): a peer that gives up while much is queued
// for it gets our close frame after what the writer had taken (the write under way), not after the whole queue;
// what was still queued is dropped and counted, and a send waiting for room completes with `error::closed`. The
// peer's message just before its close, read with it, tells what the writer had taken then.
TEST_CASE("ws session: a peer's close is answered without writing what is still queued", "[ws][session]") {
  asio::io_context ctx;
  // 128 messages of 64 KiB, 8 MiB: far more than the socket buffers take while the peer does not read (the server's
  // is set to 64 KiB; checked below: at least half of it is still queued when the close arrives). The byte limit
  // keeps the queue under half full (the session goes on reading the peer: send_queue_full), and leaves no room for
  // one more message of 14 MiB while 4 MiB or more are queued: its `async_send` waits.
  constexpr int messages = 128;
  const std::string payload(64 * 1024, 'q');
  session_on_socket_pair pair(ctx, {.send_queue = {.max_messages = 4096, .max_bytes = 17 << 20,
                                                   .policy = overflow_policy::wait}},
                              64 * 1024);
  std::optional<queue_stats> at_close;  // the send queue when the peer's message before its close arrived
  std::optional<ws::close_info> closed;
  std::optional<std::error_code> waiting_send;
  bool queued = false;
  pair.session->on_message([&at_close, session = pair.session.get()](ws::message&&) {
    at_close = session->send_stats();
  });
  pair.session->on_close([&](const ws::close_info& info) { closed = info; });
  asio::post(ctx, [&, session = pair.session] {
    session->start();
    for (int i = 0; i < messages; ++i) session->send_binary(payload);
    session->async_send(ws::session::make_outgoing(ws::opcode::binary, std::string(14 << 20, 'w')),
                        [&](std::error_code ec, push_outcome) { waiting_send = ec; });
    queued = true;
  });
  REQUIRE(test::run_until(ctx, [&] { return queued; }));
  CHECK_FALSE(waiting_send.has_value());  // no room: it waits

  // A message, then the close, in one write (one read at the server, with no write completing in between).
  ws::frame_writer writer(ws::role::client);
  std::string frames(64, '\0');
  const std::size_t message_size = writer.write_frame(frames, ws::opcode::text, "bye");
  const std::size_t close_size =
      writer.write_close(std::span<char>(frames).subspan(message_size), ws::close_code::normal);
  frames.resize(message_size + close_size);
  asio::write(pair.client, asio::buffer(frames));

  // Read (without blocking, between the session's handlers) up to our close frame, counting the messages before it.
  pair.client.non_blocking(true);
  ws::frame_parser parser(ws::role::client);
  std::string in;
  int received = 0;
  bool close_frame = false;
  ws::close_code close_code = ws::close_code::no_status;
  const auto read_available = [&] {
    char chunk[64 * 1024];
    std::error_code ec;
    const std::size_t n = pair.client.read_some(asio::buffer(chunk), ec);
    if (ec) return;
    in.append(chunk, n);
    std::size_t pos = 0;
    for (;;) {
      const ws::parse_result r = parser.parse(std::span<char>(in).subspan(pos));
      pos += r.consumed;
      if (r.event == ws::parse_event::need_more) break;
      if (r.event == ws::parse_event::data && r.message_end) ++received;
      if (r.event == ws::parse_event::close) {
        close_frame = true;
        close_code = r.code;
        break;
      }
      if (r.event == ws::parse_event::error) FAIL("bad frame from the server: " << r.error.message());
    }
    in.erase(0, pos);
  };
  REQUIRE(test::run_until(ctx, [&] {
    if (!close_frame) read_available();
    return close_frame && closed.has_value();
  }));

  REQUIRE(at_close.has_value());
  INFO(at_close->popped << " messages taken by the writer and " << at_close->depth << " queued when the close came");
  REQUIRE(at_close->depth >= messages / 2);  // most were still queued: the kernel took less than half
  CHECK(received == static_cast<int>(at_close->popped));  // what the writer had taken, nothing queued after it
  CHECK(pair.session->dropped() == at_close->depth);
  CHECK(close_code == ws::close_code::normal);
  CHECK(closed->code == ws::close_code::normal);
  CHECK(closed->by_peer);
  CHECK(waiting_send == std::optional<std::error_code>(switchboard::error::closed));
}

// A session that ends with messages still queued (here `abort`, as on a lost connection or a cut) discards them
// unsent: `dropped()` counts them, so that what was sent is accounted for (sent, dropped) whichever way it ends.
TEST_CASE("ws session: messages still queued when the session ends are counted in dropped()", "[ws][session]") {
  asio::io_context ctx;
  // 64 messages of 64 KiB while the peer reads nothing, and a 64 KiB socket buffer: most stay queued.
  constexpr int messages = 64;
  const std::string payload(64 * 1024, 'q');
  session_on_socket_pair pair(ctx, {}, 64 * 1024);
  std::optional<queue_stats> before_abort;
  std::optional<ws::close_info> closed;
  pair.session->on_close([&](const ws::close_info& info) { closed = info; });
  asio::post(ctx, [&, session = pair.session] {
    session->start();
    for (int i = 0; i < messages; ++i) session->send_binary(payload);
  });
  // Once the writer waits for the socket (the peer reads nothing), abort with the rest still queued.
  REQUIRE(test::run_until(ctx, [&] {
    const queue_stats queued = pair.session->send_stats();
    return queued.pushed == messages && queued.popped > 0;
  }));
  asio::post(ctx, [&, session = pair.session] {
    before_abort = session->send_stats();
    session->abort();
  });
  REQUIRE(test::run_until(ctx, [&] { return closed.has_value(); }));

  REQUIRE(before_abort.has_value());
  INFO(before_abort->popped << " messages taken by the writer and " << before_abort->depth << " queued at the abort");
  REQUIRE(before_abort->depth > 0);
  CHECK(before_abort->dropped == 0);
  CHECK(pair.session->dropped() == before_abort->depth);
  CHECK(closed->code == ws::close_code::abnormal);
}

TEST_CASE("ws session: a protocol error after our close frame ends the connection at once", "[ws][session]") {
  test_server s;
  std::promise<ws::close_info> closed;
  // The close timeout is far away: only the protocol error can end the session before the test's deadline.
  add_watched_route(s.routes(), "/ws", {.session = {.close_timeout = 60'000ms}}, closed,
                    [](ws::session& session) { session.close(ws::close_code::normal, "bye"); });
  s.start();
  raw_client c(s.port());
  open_websocket(c, "/ws");
  ws_peer peer(c);
  std::string data;
  REQUIRE(peer.next(data).event == ws::parse_event::close);
  c.send(std::string("\x81\x02hi", 4));  // unmasked: a client's frames must be masked (RFC 6455 §5.1)
  auto f = closed.get_future();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  CHECK(f.get().code == ws::close_code::protocol_error);
  CHECK(c.closed_by_peer());
}

// A peer that stops reading: once the socket's buffers are full, a write waits, and the write timeout cuts the
// session. The timer is armed once and re-armed for the write under way, not around every write.
TEST_CASE("ws session: a peer that does not read is cut at the write timeout", "[ws][session]") {
  test_server s;
  std::promise<ws::close_info> closed;
  add_watched_route(s.routes(), "/flood", {.session = {.ping_interval = 0ms, .write_timeout = 300ms}}, closed,
                    [](ws::session& session) {
                      // 64 MiB in all: far more than loopback buffers hold, and within the send queue's limits (wait
                      // policy).
                      for (int i = 0; i < 64; ++i) session.send_binary(std::string(1 << 20, 'f'));
                    });
  s.start();
  raw_client c(s.port());
  open_websocket(c, "/flood");
  // Never read again.
  check_cut(closed, "write timeout");
}

// Backpressure (DESIGN promise 2): a peer that sends requests and does not read the answers. Under the `wait` policy
// the session stops reading once its send queue is half full, so that the peer's sends stall in TCP's buffers, not
// in the server's memory; when the peer reads again, every answer arrives, none dropped.
TEST_CASE("ws session: a peer that does not read its echoes stops being read, and loses none", "[ws][session]") {
  test_server s;
  std::promise<std::shared_ptr<ws::session>> opened;
  s.routes().get("/echo", [&opened](http::request& req) {
    const ws::accept_options options{
        .session = {.send_queue = {.max_messages = 64, .max_bytes = 1 << 20, .policy = overflow_policy::wait},
                    .ping_interval = 0ms}};
    return ws::accept(req, options, [&opened](std::shared_ptr<ws::session> session) {
      std::weak_ptr<ws::session> weak = session;
      session->on_message([weak](ws::message&& m) {
        if (auto self = weak.lock()) self->send(ws::session::make_outgoing(m.type, std::move(m.data)));
      });
      opened.set_value(session);
    });
  });
  s.start();
  raw_client c(s.port());
  open_websocket(c, "/echo");
  ws_peer peer(c);
  const std::shared_ptr<ws::session> session = take_session(opened);

  // Send 16 KiB messages without reading, until the socket stays full for a second (at most 64 MiB; the kernel's
  // buffers on both sides hold a few MiB).
  const std::string frame = peer.encode(ws::opcode::binary, std::string(16 * 1024, 'e'));
  constexpr int most = 4096;
  c.socket().non_blocking(true);
  int whole = 0;             // messages sent whole
  std::size_t in_frame = 0;  // bytes of the next one sent already
  while (whole < most) {
    std::error_code ec;
    const std::size_t n = c.socket().write_some(asio::buffer(frame.data() + in_frame, frame.size() - in_frame), ec);
    if (ec == asio::error::would_block) {
      pollfd writable{c.socket().native_handle(), POLLOUT, 0};
      if (::poll(&writable, 1, 1000) == 0) break;  // the server stopped reading
      continue;
    }
    REQUIRE_FALSE(ec);
    in_frame += n;
    if (in_frame == frame.size()) {
      ++whole;
      in_frame = 0;
    }
  }
  INFO(whole << " messages sent before the socket stayed full");
  CHECK(whole < most);

  // Read the echoes; finish the message sent in part as the server reads again.
  c.socket().non_blocking(false);
  std::thread rest([&] {
    if (in_frame > 0) asio::write(c.socket(), asio::buffer(frame.data() + in_frame, frame.size() - in_frame));
  });
  const int expected = whole + (in_frame > 0 ? 1 : 0);
  int echoed = 0;
  std::string data;
  while (echoed < expected) {
    const ws::parse_result e = peer.next(data);
    REQUIRE(e.event == ws::parse_event::data);
    REQUIRE(data.size() == 16 * 1024);
    ++echoed;
  }
  rest.join();
  CHECK(echoed == expected);
  CHECK(session->dropped() == 0);
}

// Under the `wait` policy a fire-and-forget send has nobody to wait for room: a full queue drops it and counts it,
// so that a peer that reads nothing costs at most the queue's limits.
TEST_CASE("ws session: fire-and-forget sends to a full queue are dropped and counted under the wait policy",
          "[ws][session]") {
  test_server s;
  std::promise<std::shared_ptr<ws::session>> opened;
  s.routes().get("/quiet", [&opened](http::request& req) {
    const ws::accept_options options{
        .session = {.send_queue = {.max_messages = 4, .max_bytes = 1 << 20, .policy = overflow_policy::wait},
                    .ping_interval = 0ms,
                    .write_timeout = 60'000ms}};
    return ws::accept(req, options, [&opened](std::shared_ptr<ws::session> session) { opened.set_value(session); });
  });
  s.start();
  raw_client c(s.port());
  open_websocket(c, "/quiet");  // and never read again
  const std::shared_ptr<ws::session> session = take_session(opened);

  // 64 MiB, from this thread: far more than the queue and the kernel's buffers hold.
  constexpr int messages = 1000;
  const std::string payload(64 * 1024, 'q');
  for (int i = 0; i < messages; ++i) session->send_binary(payload);
  // Once the session's thread has taken them all (posts from one thread run in order):
  std::promise<queue_stats> taken;
  asio::post(session->get_executor(), [&] { taken.set_value(session->send_stats()); });
  auto taken_future = taken.get_future();
  REQUIRE(taken_future.wait_for(10s) == std::future_status::ready);
  const queue_stats queued = taken_future.get();
  CHECK(queued.depth <= 4);
  CHECK(session->dropped() > 0);
  CHECK(session->dropped() + queued.pushed == messages);
  CHECK(session->is_open());
}

// Under drop_oldest with a byte limit one large message can push several small ones out, and sends that wait for
// their completion (`async_send`) lose messages to the policy as fire-and-forget ones do: `dropped()` counts every
// message lost, as the queue's own counter does.
TEST_CASE("ws session: dropped() counts every message the overflow policy discards", "[ws][session]") {
  test_server s;
  std::promise<std::shared_ptr<ws::session>> opened;
  s.routes().get("/quiet", [&opened](http::request& req) {
    const ws::accept_options options{
        .session = {.send_queue = {.max_messages = 1000, .max_bytes = 256 * 1024, .policy = overflow_policy::drop_oldest},
                    .ping_interval = 0ms,
                    .write_timeout = 60'000ms}};
    return ws::accept(req, options, [&opened](std::shared_ptr<ws::session> session) { opened.set_value(session); });
  });
  s.start();
  raw_client c(s.port());
  open_websocket(c, "/quiet");  // and never read again
  const std::shared_ptr<ws::session> session = take_session(opened);

  // Far more than the queue and the kernel's buffers hold: rounds of 64 small messages, then one of 128 KiB that
  // makes room for itself by discarding many of them; every other message through async_send.
  constexpr int rounds = 200;
  const std::string small(1024, 's'), large(128 * 1024, 'l');
  int messages = 0;
  for (int r = 0; r < rounds; ++r) {
    for (int i = 0; i <= 64; ++i) {
      const std::string& payload = i < 64 ? small : large;
      if (++messages % 2 == 0) {
        session->send_binary(payload);
      } else {
        session->async_send(ws::session::make_outgoing(ws::opcode::binary, payload),
                            [](std::error_code, push_outcome) {});
      }
    }
  }
  std::promise<queue_stats> taken;
  asio::post(session->get_executor(), [&] { taken.set_value(session->send_stats()); });
  auto taken_future = taken.get_future();
  REQUIRE(taken_future.wait_for(10s) == std::future_status::ready);
  const queue_stats queued = taken_future.get();
  CHECK(queued.pushed == static_cast<std::uint64_t>(messages));  // drop_oldest takes every message
  CHECK(queued.dropped > static_cast<std::uint64_t>(rounds));     // more than one per large message
  CHECK(session->dropped() == queued.dropped);
  CHECK(session->is_open());
}

// A peer that sends pings and reads nothing: while the writes wait, each pong replaces the one not yet written (RFC
// 6455 §5.5.3), so that the pongs cannot pile up; the peer still gets the answer to its last ping.
TEST_CASE("ws session: a pong waiting for a blocked write is replaced by the next", "[ws][session]") {
  test_server s;
  std::promise<void> done;  // the server has parsed everything the peer sent
  s.routes().get("/flood", [&done](http::request& req) {
    return ws::accept(req, {.session = {.ping_interval = 0ms}}, [&done](std::shared_ptr<ws::session> session) {
      // 16 MiB: more than the loopback buffers of both ends hold, so the writes wait while the peer does not read.
      for (int i = 0; i < 16; ++i) session->send_binary(std::string(1 << 20, 'f'));
      session->on_message([&done](ws::message&&) { done.set_value(); });
    });
  });
  s.start();
  raw_client c(s.port());
  open_websocket(c, "/flood");
  ws_peer peer(c);
  constexpr int pings = 10'000;
  std::string burst;
  for (int i = 1; i <= pings; ++i) burst += peer.encode(ws::opcode::ping, "p" + std::to_string(i));
  burst += peer.encode(ws::opcode::text, "done");
  c.send(burst);
  REQUIRE(done.get_future().wait_for(10s) == std::future_status::ready);

  // Now read it all: the 16 MiB, with the pongs written between its batches.
  std::size_t received = 0;
  int pongs = 0;
  std::string last_pong, data;
  while (received < std::size_t{16} << 20) {
    const ws::parse_result e = peer.next(data);
    REQUIRE((e.event == ws::parse_event::data || e.event == ws::parse_event::pong));
    if (e.event == ws::parse_event::data) {
      received += data.size();
    } else {
      ++pongs;
      last_pong = data;
    }
  }
  INFO(pongs << " pongs");
  CHECK(pongs >= 1);
  CHECK(pongs < 100);  // one per batch written while pings arrived, not one per ping
  CHECK(last_pong == "p" + std::to_string(pings));
}

// A message must arrive whole within `message_timeout` of its first byte: a peer that sends part of one and
// trickles the rest is cut, trickling or not, with pings on or off. Messages that arrive in parts in time are taken,
// also back to back for longer than the timeout with every write ending inside one (each is timed on its own).
TEST_CASE("ws session: a message that arrives too slowly is cut at the message timeout", "[ws][session]") {
  for (const auto ping_interval : {0ms, 10'000ms}) {
    INFO("ping_interval " << ping_interval.count() << " ms");
    test_server s;
    std::promise<ws::close_info> closed;
    std::mutex received_mutex;
    std::condition_variable received_changed;
    std::vector<std::size_t> received;  // sizes of the messages taken
    add_watched_route(s.routes(), "/slow", {.session = {.ping_interval = ping_interval, .message_timeout = 1000ms}},
                      closed, [&](ws::session& session) {
                        session.on_message([&](ws::message&& m) {
                          {
                            const std::lock_guard lock(received_mutex);
                            received.push_back(m.data.size());
                          }
                          received_changed.notify_all();
                        });
                      });
    s.start();
    raw_client c(s.port());
    open_websocket(c, "/slow");
    ws_peer peer(c);
    const auto wait_received = [&](std::size_t count) {
      std::unique_lock lock(received_mutex);
      return received_changed.wait_for(lock, 10s, [&] { return received.size() >= count; });
    };

    // 30 messages of 1,000 bytes in writes of 700 bytes, one every 50 ms: about 2 s, twice the timeout.
    std::string stream;
    for (int i = 0; i < 30; ++i) stream += peer.encode(ws::opcode::binary, std::string(1000, 'b'));
    auto end = closed.get_future();
    for (std::size_t at = 0; at < stream.size(); at += 700) {
      c.send(stream.substr(at, 700));
      REQUIRE(end.wait_for(50ms) == std::future_status::timeout);  // (paces the writes) not cut
    }
    REQUIRE(wait_received(30));
    CHECK(received == std::vector<std::size_t>(30, 1000));

    // Most of a message, then a byte now and then (more often than any timeout): cut.
    const std::string slow = peer.encode(ws::opcode::binary, std::string(100'000, 's'));
    c.send(slow.substr(0, 90'000));
    std::size_t sent = 90'000;
    while (end.wait_for(100ms) != std::future_status::ready && sent < slow.size()) {
      if (!c.try_send(slow.substr(sent++, 1))) break;
    }
    REQUIRE(end.wait_for(10s) == std::future_status::ready);
    const ws::close_info info = end.get();
    CHECK(info.code == ws::close_code::abnormal);
    CHECK(info.reason == "message timeout");
    CHECK(sent < slow.size());  // cut before the message was whole
  }
}

// Keep-alive: after `ping_interval` of silence the server pings; a pong keeps the connection (the next thing the
// peer sees is the next ping, not the end of the stream); a ping left unanswered for `pong_timeout` ends it.
TEST_CASE("ws session: keep-alive pings after silence, and a peer that does not answer is cut", "[ws][session]") {
  test_server s;
  std::promise<ws::close_info> closed;
  add_watched_route(s.routes(), "/quiet", {.session = {.ping_interval = 100ms, .pong_timeout = 200ms}}, closed);
  s.start();
  raw_client c(s.port());
  open_websocket(c, "/quiet");
  ws_peer peer(c);
  std::string data;
  for (int answered = 0; answered < 3; ++answered) {
    REQUIRE(peer.next(data).event == ws::parse_event::ping);
    peer.send(ws::opcode::pong, data);
  }
  REQUIRE(peer.next(data).event == ws::parse_event::ping);  // left unanswered
  CHECK(peer.next(data).event == ws::parse_event::error);   // no more frames:
  CHECK(c.closed_by_peer());                                // the server closed the connection
  check_cut(closed, "no pong");
}

// A second stop while a session is still closing (the runtime's "stop now" after "stop within a minute") must move
// the deadline and finish the drain, not replace the first caller's completion (which left the runtime's threads
// waiting for ever).
TEST_CASE("ws session group: a second earlier drain cuts what is left and finishes", "[ws][session]") {
  grouped_session g;
  test_server& s = g.s;
  auto& peer = *g.peer;
  s.rt().stop(60s);
  std::string data;
  auto e = peer.next(data);  // the 1001 close, which this peer leaves unanswered
  CHECK(e.event == ws::parse_event::close);
  const drain_report report = s.stop();  // grace 0: cut now, and wait for the runtime's threads
  CHECK(report.drained == 0);
  CHECK(report.cut == 1);
  CHECK(g.group->size() == 0);
}

TEST_CASE("ws client: our client against our server", "[ws][client]") {
  test_server s;
  add_echo_route(s.routes(), {.subprotocols = {"chat.v1"}, .deflate = {.enabled = true}});
  s.start();
  asio::io_context ctx;
  for (bool deflate : {false, true}) {
    INFO("deflate " << deflate);
    std::error_code ec;
    std::shared_ptr<ws::session> client;
    bool connected = false;
    ws::async_connect(ctx.get_executor(), "ws://127.0.0.1:" + std::to_string(s.port()) + "/echo",
                      {.subprotocols = {"chat.v1"}, .deflate = {.enabled = deflate}},
                      [&](std::error_code e, std::shared_ptr<ws::session> c) {
                        ec = e;
                        client = std::move(c);
                        connected = true;
                      });
    REQUIRE(test::run_until(ctx, [&] { return connected; }));
    REQUIRE_FALSE(ec);
    CHECK(client->subprotocol() == "chat.v1");
    std::vector<std::string> got;
    std::optional<ws::close_info> closed;
    client->on_message([&](ws::message&& m) { got.push_back(std::move(m.data)); });
    client->on_close([&](const ws::close_info& info) { closed = info; });
    client->start();
    const std::string big(100'000, 'q');
    client->send_text("one");
    client->send_binary(big);
    client->send_text("three");
    REQUIRE(test::run_until(ctx, [&] { return got.size() == 3; }));
    CHECK(got == std::vector<std::string>{"one", big, "three"});
    close_normally(ctx, *client, closed);
  }
}

TEST_CASE("ws client: our client against our server over TLS (wss://)", "[ws][client][tls]") {
  test_server s;
  add_echo_route(s.routes(), {});
  http::server_options server_options;
  server_options.tls = test::localhost_server_tls();
  s.start(server_options);
  asio::io_context ctx;
  std::shared_ptr<ws::session> client;
  std::optional<std::error_code> connected;
  ws::async_connect(ctx.get_executor(), "wss://localhost:" + std::to_string(s.port()) + "/echo",
                    {.tls = test::localhost_client_tls()}, [&](std::error_code ec, std::shared_ptr<ws::session> c) {
                      connected = ec;
                      client = std::move(c);
                    });
  REQUIRE(test::run_until(ctx, [&] { return connected.has_value(); }));
  REQUIRE_FALSE(*connected);
  std::vector<std::string> got;
  std::optional<ws::close_info> closed;
  client->on_message([&](ws::message&& m) { got.push_back(std::move(m.data)); });
  client->on_close([&](const ws::close_info& info) { closed = info; });
  client->start();
  // Small and large messages queued at once: over TLS both sides' writes wait for the socket, in order.
  std::vector<std::string> sent;
  for (int i = 0; i < 20; ++i) {
    sent.push_back(i % 5 == 0 ? std::string(1'000'000, static_cast<char>('a' + i)) : "message " + std::to_string(i));
    client->send_binary(sent.back());
  }
  REQUIRE(test::run_until(ctx, [&] { return got.size() == sent.size(); }));
  CHECK(got == sent);
  close_normally(ctx, *client, closed);
}

namespace {
// What the server last saw in the TLS ServerName extension (RFC 6066 §3), "<none>" when the client sent none.
std::string server_name_seen;
int record_server_name(SSL* ssl, int*, void*) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  server_name_seen = name != nullptr ? name : "<none>";
  return SSL_TLSEXT_ERR_OK;
}
}  // namespace

TEST_CASE("ws client: no server name is sent for an address literal", "[ws][client][tls]") {
  test_server s;
  add_echo_route(s.routes(), {});
  http::server_options server_options;
  server_options.tls = test::localhost_server_tls();
  SSL_CTX_set_tlsext_servername_callback(server_options.tls->native_handle(), record_server_name);
  s.start(server_options);
  asio::io_context ctx;
  for (const std::string host : {"localhost", "127.0.0.1"}) {
    INFO(host);
    server_name_seen.clear();
    std::optional<std::error_code> connected;
    std::shared_ptr<ws::session> client;
    ws::async_connect(ctx.get_executor(), "wss://" + host + ":" + std::to_string(s.port()) + "/echo",
                      {.tls = test::localhost_client_tls()}, [&](std::error_code ec, std::shared_ptr<ws::session> c) {
                        connected = ec;
                        client = std::move(c);
                      });
    REQUIRE(test::run_until(ctx, [&] { return connected.has_value(); }));
    CHECK_FALSE(*connected);
    CHECK(server_name_seen == (host == "localhost" ? "localhost" : "<none>"));
  }
}

// Settings that mean "not used" or "never", and a scheme in capitals (RFC 3986 §3.1), connect as any other.
TEST_CASE("ws client: off, never and capitals are no errors", "[ws][client]") {
  test_server s;
  add_echo_route(s.routes(), {});
  s.start();
  asio::io_context ctx;
  std::vector<ws::connect_options> options(2);
  options[0].deflate = {.enabled = false, .compression_level = 10};  // not offered, so not checked
  options[1].connect_timeout = std::chrono::milliseconds::max();     // no deadline (it overflowed into the past)
  for (std::size_t i = 0; i < options.size(); ++i) {
    INFO("options " << i);
    std::optional<std::error_code> connected;
    std::shared_ptr<ws::session> client;
    ws::async_connect(ctx.get_executor(), "WS://127.0.0.1:" + std::to_string(s.port()) + "/echo", options[i],
                      [&](std::error_code ec, std::shared_ptr<ws::session> c) {
                        connected = ec;
                        client = std::move(c);
                      });
    REQUIRE(test::run_until(ctx, [&] { return connected.has_value(); }));
    CHECK_FALSE(*connected);
  }
}

TEST_CASE("ws client: control frames with the largest payloads go out whole", "[ws][client]") {
  // A client's control frame carries a 4-byte mask key: a 125-byte pong or a close with a 123-byte reason is 131
  // bytes on the wire (RFC 6455 §5.2, §5.5).
  test_server s;
  std::promise<ws::close_info> server_closed;
  add_watched_route(s.routes(), "/ctl", {}, server_closed, [](ws::session& session) {
    ws::frame_writer writer(ws::role::server);
    std::string ping(writer.frame_size(125), '\0');
    ping.resize(writer.write_frame(ping, ws::opcode::ping, std::string(125, 'p')));
    session.send_frame(shared_bytes(std::move(ping)));
    session.send_text("after the ping");
  });
  s.start();
  asio::io_context ctx;
  std::shared_ptr<ws::session> client;
  ws::async_connect(ctx.get_executor(), "ws://127.0.0.1:" + std::to_string(s.port()) + "/ctl", {},
                    [&](std::error_code ec, std::shared_ptr<ws::session> c) {
                      REQUIRE_FALSE(ec);
                      client = std::move(c);
                    });
  REQUIRE(test::run_until(ctx, [&] { return client != nullptr; }));
  std::vector<std::string> got;
  std::optional<ws::close_info> closed;
  client->on_message([&](ws::message&& m) { got.push_back(std::move(m.data)); });
  client->on_close([&](const ws::close_info& info) { closed = info; });
  client->start();
  REQUIRE(test::run_until(ctx, [&] { return !got.empty(); }));  // the pong went out; the session lives on
  CHECK(got.front() == "after the ping");
  const std::string reason(123, 'r');
  client->close(ws::close_code::going_away, reason);
  REQUIRE(test::run_until(ctx, [&] { return closed.has_value(); }));
  CHECK(closed->code == ws::close_code::going_away);
  auto f = server_closed.get_future();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  const ws::close_info at_server = f.get();
  CHECK(at_server.by_peer);
  CHECK(at_server.code == ws::close_code::going_away);
  CHECK(at_server.reason == reason);
}

TEST_CASE("ws client: handshake failures", "[ws][client]") {
  test_server s;
  s.routes().get("/plain", [](http::request&) { return http::response::text("not a websocket"); });
  s.start();
  asio::io_context ctx;
  auto attempt = [&](const std::string& url) {
    std::optional<std::error_code> result;
    ws::async_connect(ctx.get_executor(), url, {.connect_timeout = 2s},
                      [&](std::error_code e, std::shared_ptr<ws::session>) { result = e; });
    REQUIRE(test::run_until(ctx, [&] { return result.has_value(); }));
    return *result;
  };
  const std::string base = "ws://127.0.0.1:" + std::to_string(s.port());
  CHECK(attempt(base + "/plain") == ws::error::handshake_refused);
  CHECK(attempt(base + "/missing") == ws::error::handshake_refused);
  CHECK(attempt("http://127.0.0.1/") == asio::error::invalid_argument);
}

// Options that cannot be sent are the caller's error, found before the lookup. Before, they threw inside the attempt,
// after the connect, and it completed with io_error like a connection that failed.
TEST_CASE("ws client: options that cannot be sent complete with invalid_argument before any lookup", "[ws][client]") {
  asio::io_context ctx;
  int lookups = 0;
  const auto counted = [&](const std::string&, std::uint16_t, net::resolve_handler answer) {
    ++lookups;
    answer(asio::error::host_not_found, {});
  };
  std::vector<ws::connect_options> bad(6);
  bad[0].headers = {{"X-A", "a\r\nX-Injected: 1"}};
  bad[1].headers = {{"X A", "a"}};
  bad[2].origin = "http://a\r\n";
  bad[3].deflate = {.enabled = true, .compression_level = 10};
  bad[4].subprotocols = {"chat, admin"};  // a server would read two offers
  bad[5].subprotocols = {"chat", "chat"};
  std::vector<std::string> urls(bad.size(), "ws://service.test/");
  for (const char* url : {"http://service.test/", "ws://service.test/#fragment"}) {  // RFC 6455 §3: no fragment
    bad.emplace_back();
    urls.emplace_back(url);
  }
  for (std::size_t i = 0; i < bad.size(); ++i) {
    INFO("options " << i << " url " << urls[i]);
    bad[i].resolve = counted;
    std::optional<std::error_code> result;
    ws::async_connect(ctx.get_executor(), urls[i], bad[i],
                      [&](std::error_code e, std::shared_ptr<ws::session>) { result = e; });
    REQUIRE(test::run_until(ctx, [&] { return result.has_value(); }));
    CHECK(*result == asio::error::invalid_argument);
  }
  CHECK(lookups == 0);
}

TEST_CASE("ws client: the connect timeout covers a server that never answers the upgrade", "[ws][client]") {
  asio::io_context ctx;
  // The kernel completes the TCP handshake into the backlog; nothing accepts, so nothing answers.
  asio::ip::tcp::acceptor silent(ctx, {asio::ip::address_v4::loopback(), 0});
  std::optional<std::error_code> result;
  ws::async_connect(ctx.get_executor(), "ws://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/",
                    {.connect_timeout = 200ms}, [&](std::error_code e, std::shared_ptr<ws::session>) { result = e; });
  REQUIRE(test::run_until(ctx, [&] { return result.has_value(); }));
  CHECK(*result == switchboard::error::timeout);
}

// The connect timeout bounds the lookup too. Before, a lookup that did not answer held the attempt for as long as it
// took, and the timer, finding no socket open to close, left the connect and the upgrade after it without a deadline.
TEST_CASE("ws client: the connect timeout covers a lookup that does not answer", "[ws][client]") {
  asio::io_context ctx;
  std::vector<net::resolve_handler> asked;  // never answered until the attempt has given up
  std::optional<std::error_code> result;
  ws::async_connect(ctx.get_executor(), "ws://name.invalid/",
                    {.connect_timeout = 100ms,
                     .resolve = [&](const std::string& host, std::uint16_t port, net::resolve_handler answer) {
                       CHECK(host == "name.invalid");
                       CHECK(port == 80);
                       asked.push_back(std::move(answer));
                     }},
                    [&](std::error_code e, std::shared_ptr<ws::session>) { result = e; });
  REQUIRE(test::run_until(ctx, [&] { return result.has_value(); }));
  CHECK(*result == switchboard::error::timeout);
  REQUIRE(asked.size() == 1);
  // The answer that comes late is dropped: nothing is left waiting for it.
  asked.front()(std::error_code(), {asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 1)});
  ctx.restart();
  ctx.run();
}

TEST_CASE("ws client: a custom lookup's addresses are used", "[ws][client]") {
  test_server s;
  add_echo_route(s.routes(), {});
  s.start();
  asio::io_context ctx;
  std::optional<std::error_code> result;
  std::shared_ptr<ws::session> session;
  const auto pinned = [&](const std::string&, std::uint16_t, net::resolve_handler answer) {
    answer({}, {asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), s.port())});
  };
  ws::async_connect(ctx.get_executor(), "ws://echo.service.test/echo", {.resolve = pinned},
                    [&](std::error_code e, std::shared_ptr<ws::session> opened) {
                      result = e;
                      session = std::move(opened);
                    });
  REQUIRE(test::run_until(ctx, [&] { return result.has_value(); }));
  REQUIRE_FALSE(*result);
  REQUIRE(session);
  session->abort();
  ctx.restart();
  ctx.poll();
}

namespace {

// What a peer of the random mix below receives: data messages (echoes, extra answers and messages sent from
// elsewhere), pongs, and the close frame that ends the list.
struct received_event {
  ws::parse_event event;
  ws::opcode type;
  std::string data;
  ws::close_code code;
};

// A payload of `size` bytes: for text, valid UTF-8 mixing 1- to 4-byte characters (so that fragments split
// characters); for binary, any bytes.
std::string random_payload(std::mt19937& rng, ws::opcode type, std::size_t size) {
  static constexpr std::string_view characters[] = {"a", "Z", " ", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
  std::string out;
  if (type == ws::opcode::binary) {
    std::uniform_int_distribution<int> byte(0, 255);
    for (std::size_t i = 0; i < size; ++i) out += static_cast<char>(byte(rng));
    return out;
  }
  std::uniform_int_distribution<std::size_t> pick(0, std::size(characters) - 1);
  while (out.size() < size) out += characters[pick(rng)];
  return out;
}

// The session's reading and writing under a random mix: messages of every length encoding, fragmented at random
// (splitting UTF-8 characters), pings between fragments, the bytes written in pieces of random sizes, and now and
// then a pause in which the peer waits for every answer so far; the handler answers some messages twice; meanwhile
// `extras` messages are sent from another thread (through the post) and as many on the session's thread outside any
// handler (written at once when the writer is idle). Each stream must arrive whole and in its order, the last ping
// must be answered, and the close handshake must end it all. Through a `Client` (raw_client, or tls_client for a
// server started with `server_options`' TLS context).
template <class Client>
void check_random_mix(unsigned seed, const ws::session_options& options, int extras,
                      http::server_options server_options = {}) {
  INFO("seed " << seed);
  constexpr int messages = 150;
  test_server s;
  std::promise<std::shared_ptr<ws::session>> opened;
  std::promise<ws::close_info> closed;
  // Echoes every message; a message "e<i>:..." with i a multiple of 3 is also answered with "d<i>".
  add_watched_route(s.routes(), "/mix", {.session = options}, closed, [&opened](ws::session& session) {
    std::weak_ptr<ws::session> weak = session.shared_from_this();
    session.on_message([weak](ws::message&& m) {
      auto self = weak.lock();
      if (!self) return;
      const int i = std::stoi(m.data.substr(1, m.data.find(':') - 1));
      self->send(ws::session::make_outgoing(m.type, std::move(m.data)));
      if (i % 3 == 0) self->send_text("d" + std::to_string(i));
    });
    opened.set_value(session.shared_from_this());
  });
  s.start(std::move(server_options));

  Client c(s.port());
  if constexpr (std::is_same_v<Client, raw_client>) c.socket().set_option(asio::ip::tcp::no_delay(true));
  open_websocket(c, "/mix");
  ws_peer peer(c);
  const std::shared_ptr<ws::session> session = take_session(opened);

  // The script: messages "e<i>:<payload>", each in 1 to 4 fragments cut anywhere, pings among them. `batches` holds
  // the number of answers expected at each point where the peer waits for them.
  std::mt19937 rng(seed);
  auto pick = [&rng](std::size_t lo, std::size_t hi) { return std::uniform_int_distribution<std::size_t>(lo, hi)(rng); };
  std::vector<std::pair<ws::opcode, std::string>> answers;  // what the handler sends back, in order
  std::vector<std::string> pings;
  std::vector<std::pair<std::string, std::size_t>> batches;  // bytes to send, then answers to wait for
  std::string batch;
  for (int i = 0; i < messages; ++i) {
    const ws::opcode type = pick(0, 1) == 0 ? ws::opcode::text : ws::opcode::binary;
    const std::size_t roll = pick(0, 9);
    const std::size_t size = roll == 0 ? pick(65'536, 100'000) : roll == 1 ? pick(126, 65'535) : pick(0, 200);
    const std::string message = "e" + std::to_string(i) + ":" + random_payload(rng, type, size);
    std::vector<std::size_t> cuts{0, message.size()};
    for (std::size_t k = pick(0, 3); k > 0; --k) cuts.push_back(pick(0, message.size()));
    std::sort(cuts.begin(), cuts.end());
    for (std::size_t f = 0; f + 1 < cuts.size(); ++f) {
      const bool last = f + 2 == cuts.size();
      batch += peer.encode(f == 0 ? type : ws::opcode::continuation,
                           std::string_view(message).substr(cuts[f], cuts[f + 1] - cuts[f]), last);
      if (pick(0, 3) == 0) {
        pings.push_back("p" + std::to_string(pings.size()));
        batch += peer.encode(ws::opcode::ping, pings.back());
      }
    }
    answers.emplace_back(type, message);
    if (i % 3 == 0) answers.emplace_back(ws::opcode::text, "d" + std::to_string(i));
    if (i + 1 == messages || pick(0, 7) == 0) batches.emplace_back(std::exchange(batch, std::string()), answers.size());
  }

  // The peer's reader: everything up to the close frame (or an error or the socket's timeout), checked below on this
  // thread. It counts the handler's answers for the pauses, and tells when every expected message has arrived.
  std::vector<received_event> events;
  std::mutex m;
  std::condition_variable arrived;
  std::size_t answers_in = 0, data_in = 0;
  bool reader_done = false;
  const std::size_t expected = answers.size() + 2 * static_cast<std::size_t>(extras);
  std::thread reader([&] {
    std::string data;
    for (;;) {
      const ws::parse_result r = peer.next(data);
      const std::lock_guard lock(m);
      events.push_back({r.event, r.message_type, data, r.code});
      if (r.event == ws::parse_event::data) {
        ++data_in;
        if (!data.starts_with('x') && !data.starts_with('y')) ++answers_in;
      }
      arrived.notify_all();
      if (r.event != ws::parse_event::data && r.event != ws::parse_event::ping && r.event != ws::parse_event::pong) {
        reader_done = true;
        return;
      }
    }
  });
  // Sends from outside: from another thread (through the post), and on the session's own thread.
  std::thread from_outside([&] {
    for (int k = 0; k < extras; ++k) session->send_text("x" + std::to_string(k));
  });
  std::thread on_its_thread([&] {
    for (int k = 0; k < extras; ++k) {
      asio::post(session->get_executor(), [session, k] { session->send_text("y" + std::to_string(k)); });
    }
  });
  bool answered = true;
  for (const auto& [bytes, answers_then] : batches) {
    for (std::size_t at = 0; at < bytes.size();) {
      const std::size_t piece = std::min(bytes.size() - at, pick(1, 8192));
      if (!c.try_send(std::string_view(bytes).substr(at, piece))) break;
      at += piece;
    }
    std::unique_lock lock(m);
    answered = arrived.wait_for(lock, 10s, [&, n = answers_then] { return answers_in >= n || reader_done; }) &&
               answers_in >= answers_then;
    if (!answered) break;
  }
  from_outside.join();
  on_its_thread.join();
  bool complete = false;
  {
    std::unique_lock lock(m);
    complete = arrived.wait_for(lock, 10s, [&] { return data_in >= expected || reader_done; }) && data_in >= expected;
  }
  peer.send_close(ws::close_code::normal);
  reader.join();
  CHECK(answered);
  REQUIRE(complete);

  std::size_t next_answer = 0, next_ping = 0;
  int next_x = 0, next_y = 0;
  for (const received_event& e : events) {
    if (e.event == ws::parse_event::pong) {
      // A pong answers one of the pings not answered yet (a later one may stand for several, RFC 6455 §5.5.3).
      const auto it = std::find(pings.begin() + static_cast<std::ptrdiff_t>(next_ping), pings.end(), e.data);
      REQUIRE(it != pings.end());
      next_ping = static_cast<std::size_t>(it - pings.begin()) + 1;
    } else if (e.event == ws::parse_event::data && e.data.starts_with('x')) {
      CHECK(e.data == "x" + std::to_string(next_x++));
    } else if (e.event == ws::parse_event::data && e.data.starts_with('y')) {
      CHECK(e.data == "y" + std::to_string(next_y++));
    } else if (e.event == ws::parse_event::data) {
      REQUIRE(next_answer < answers.size());
      CHECK(e.type == answers[next_answer].first);
      CHECK(e.data == answers[next_answer].second);
      ++next_answer;
    }
  }
  CHECK(next_answer == answers.size());
  CHECK(next_x == extras);
  CHECK(next_y == extras);
  CHECK(next_ping == pings.size());  // the last ping was answered
  REQUIRE_FALSE(events.empty());
  CHECK(events.back().event == ws::parse_event::close);
  CHECK(events.back().code == ws::close_code::normal);
  // Over TLS the session then ends with its closure alert (RFC 6455 §7.1.1), not a truncated stream.
  if constexpr (!std::is_same_v<Client, raw_client>) CHECK(c.read_end() == asio::error::eof);
  auto end = closed.get_future();
  REQUIRE(end.wait_for(10s) == std::future_status::ready);
  const ws::close_info info = end.get();
  CHECK(info.by_peer);
  CHECK(info.code == ws::close_code::normal);
  CHECK(session->dropped() == 0);
}

}  // namespace

TEST_CASE("ws session: a random mix of fragments, pings and sends from everywhere keeps every stream in order",
          "[ws][session]") {
  for (unsigned seed = 1; seed <= 6; ++seed) check_random_mix<raw_client>(seed, {}, 150);
}

// With a send queue of 8 messages the session stops handling the peer's messages at 4 queued answers, many times
// per read, and must go on once the writer has made room, even when the peer sends nothing more until it has its
// answers (fire-and-forget sends from outside could find the queue full and be dropped: none here).
TEST_CASE("ws session: a random mix through a small send queue pauses and resumes handling without a stall",
          "[ws][session]") {
  ws::session_options options;
  options.send_queue = {.max_messages = 8, .max_bytes = 4 * 1024 * 1024, .policy = overflow_policy::wait};
  for (unsigned seed = 7; seed <= 12; ++seed) check_random_mix<raw_client>(seed, options, 0);
}

// Over TLS every write of the session is asynchronous (over TCP it tries one at once first) and reads come through
// the TLS stream: the same mix through those paths, with the small send queue too.
TEST_CASE("ws session: the random mix over TLS (wss) keeps every stream in order", "[ws][session][tls]") {
  http::server_options tls;
  tls.tls = test::localhost_server_tls();
  for (unsigned seed = 13; seed <= 16; ++seed) check_random_mix<test::tls_client>(seed, {}, 150, tls);
  ws::session_options small_queue;
  small_queue.send_queue = {.max_messages = 8, .max_bytes = 4 * 1024 * 1024, .policy = overflow_policy::wait};
  for (unsigned seed = 17; seed <= 20; ++seed) check_random_mix<test::tls_client>(seed, small_queue, 0, tls);
}

// permessage-deflate both ways under a random mix: our client sends messages of random sizes and kinds (text that
// compresses well, binary noise that does not, empty ones), the server echoes them, and both ends carry their
// compression context from message to message unless a parameter set forbids it, with window sizes below the
// default. Every echo must come back whole and in order.
TEST_CASE("ws client and server: random messages through permessage-deflate come back whole, in order",
          "[ws][client]") {
  const std::vector<ws::deflate_options> server_sides{
      {.enabled = true},
      {.enabled = true, .server_no_context_takeover = true, .client_no_context_takeover = true},
      {.enabled = true, .server_max_window_bits = 9, .client_max_window_bits = 10, .compression_level = 1}};
  for (std::size_t variant = 0; variant < server_sides.size(); ++variant) {
    INFO("parameters " << variant);
    test_server s;
    add_echo_route(s.routes(), {.deflate = server_sides[variant]});
    s.start();
    asio::io_context ctx;
    std::error_code ec;
    std::shared_ptr<ws::session> client;
    bool connected = false;
    ws::async_connect(ctx.get_executor(), "ws://127.0.0.1:" + std::to_string(s.port()) + "/echo",
                      {.deflate = {.enabled = true}}, [&](std::error_code e, std::shared_ptr<ws::session> c) {
                        ec = e;
                        client = std::move(c);
                        connected = true;
                      });
    REQUIRE(test::run_until(ctx, [&] { return connected; }));
    REQUIRE_FALSE(ec);
    REQUIRE(client->deflate());
    std::vector<ws::message> got;
    std::optional<ws::close_info> closed;
    client->on_message([&](ws::message&& m) { got.push_back(std::move(m)); });
    client->on_close([&](const ws::close_info& info) { closed = info; });
    client->start();

    std::mt19937 rng(static_cast<unsigned>(variant) + 1);
    auto pick = [&rng](std::size_t lo, std::size_t hi) { return std::uniform_int_distribution<std::size_t>(lo, hi)(rng); };
    std::vector<std::pair<ws::opcode, std::string>> sent;
    for (int i = 0; i < 200; ++i) {
      const std::size_t size = pick(0, 9) == 0 ? pick(20'000, 200'000) : pick(0, 2000);
      if (pick(0, 1) == 0) {
        // Text that repeats (it compresses), some of it UTF-8 of several bytes.
        std::string text;
        while (text.size() < size) text += pick(0, 3) == 0 ? "caf\xc3\xa9 " : "message " + std::to_string(i) + " ";
        sent.emplace_back(ws::opcode::text, std::move(text));
      } else {
        sent.emplace_back(ws::opcode::binary, random_payload(rng, ws::opcode::binary, size));
      }
      client->send(ws::session::make_outgoing(sent.back().first, sent.back().second));
    }
    REQUIRE(test::run_until(ctx, [&] { return got.size() >= sent.size() || closed.has_value(); }));
    REQUIRE(got.size() == sent.size());
    for (std::size_t i = 0; i < sent.size(); ++i) {
      INFO("message " << i);
      CHECK(got[i].type == sent[i].first);
      CHECK(got[i].data == sent[i].second);
    }
    CHECK(client->dropped() == 0);
    close_normally(ctx, *client, closed);
  }
}

// A cancellation that arrives while no step of the attempt is in flight (here: from the lookup, which then answers) is
// thrown by the attempt's next co_await. Before, that exception completed the connect with std::errc::io_error, so that
// a caller could not tell its own cancellation from a failure.
TEST_CASE("ws client: a cancellation between two steps completes with operation_aborted", "[ws][client]") {
  asio::io_context ctx;
  asio::ip::tcp::acceptor silent(ctx, {asio::ip::address_v4::loopback(), 0});
  const asio::ip::tcp::endpoint address = silent.local_endpoint();
  asio::cancellation_signal cancel;
  std::optional<std::error_code> result;
  std::shared_ptr<ws::session> session;
  const auto cancel_then_answer = [&](const std::string&, std::uint16_t, net::resolve_handler answer) {
    cancel.emit(asio::cancellation_type::terminal);
    answer({}, {address});
  };
  ws::async_connect(ctx.get_executor(), "ws://silent.test/", {.resolve = cancel_then_answer},
                    asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code e, std::shared_ptr<ws::session> s) {
                      result = e;
                      session = std::move(s);
                    }));
  REQUIRE(test::run_until(ctx, [&] { return result.has_value(); }));
  CHECK(*result == asio::error::operation_aborted);
  CHECK_FALSE(session);
}
