// A randomized model test of `ws::session` (ws/session.hpp) against a scripted raw TCP peer.
//
// Each seed draws the session's options (send queue limit and overflow policy, keep-alive, close timeout, a group
// or not) and a script: peer messages (text or binary, fragmented at random byte positions, pings and unsolicited
// pongs between the fragments), pings of their own, sends by the application from another thread and from the
// session's thread, bursts of large sends while the peer reads nothing (so that the send queue overflows under
// its policy), and one ending: the peer's close frame (a random valid code and reason, or no body), an invalid
// frame, a half-close of the peer's write side, a reset (SO_LINGER 0), or the application's close (from either
// thread, perhaps twice, with sends after it, the peer answering it or not). The peer's bytes are written in pieces
// of random sizes. The model then checks what RFC 6455 and the session's documentation promise:
//  - every message the peer completed before its ending reached `on_message` once, in order, with its type and
//    bytes (when the application closes first, the test waits for them before it does);
//  - every pong answers a ping, in order, and the last ping before the end is answered (§5.5.2, §5.5.3: a pong
//    not yet written may be replaced by the next);
//  - at most one close frame, and not a byte after it (§5.5.1); its code: the peer's echoed (1000 for a close
//    without a code, as session.hpp documents), the application's, or the error's (§7.4.1: 1002, 1007, 1009);
//  - the server closes the TCP connection in every case (§7.1.1), within a deadline;
//  - `on_close` exactly once, with the code the peer sent (1005 without one, §7.1.5), ours, or 1006 without a
//    closing handshake, and no `on_message` after it; the session has left its group by then;
//  - the application's sends arrive once each and in order per sender; what does not arrive was counted by
//    `dropped()` (overflow under a dropping or `wait` policy, or a send after the close), and a `disconnect`
//    overflow cuts the session without a close frame (1008 to `on_close`).
// No sleeps and no timing assertions: every wait is for an event, bounded by a deadline.
#include <switchboard/ws/accept.hpp>
#include <switchboard/ws/session_group.hpp>

#include "support/catch.hpp"
#include "support/test_server.hpp"
#include "ws_test_support.hpp"

#include <asio/post.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard;

namespace {

// Bound on every wait of the test: far above what any scenario takes, so that only a hang reaches it.
constexpr auto deadline_after = 10s;

using rng_t = std::mt19937;

std::size_t pick(rng_t& rng, std::size_t lo, std::size_t hi) {
  return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
}

// A payload of `size` bytes: valid UTF-8 (with 2-, 3- and 4-byte characters) for text, any bytes for binary.
std::string random_payload(rng_t& rng, ws::opcode type, std::size_t size) {
  std::string out;
  if (type == ws::opcode::binary) {
    while (out.size() < size) out.push_back(static_cast<char>(pick(rng, 0, 255)));
    return out;
  }
  static const char* const characters[] = {"a", "z", " ", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
  while (out.size() < size) out += characters[pick(rng, 0, std::size(characters) - 1)];
  return out;
}

// One masked client frame with a random key (RFC 6455 §5.3).
std::string frame(rng_t& rng, std::uint8_t opcode, std::string_view payload, bool fin = true) {
  ws::test::frame_spec spec{.fin = fin, .opcode = opcode};
  for (auto& b : spec.key) b = static_cast<std::uint8_t>(pick(rng, 0, 255));
  return ws::test::raw_frame(spec, payload);
}

// ------------------------------------------------------------------ what both ends saw

// A frame the peer received from the server (data messages assembled).
struct wire_event {
  ws::parse_event kind;
  ws::opcode type = ws::opcode::binary;
  std::string data;  // message bytes, ping/pong payload, or close reason
  ws::close_code code = ws::close_code::no_status;
};

enum class wire_end { open, eof, reset, stopped, stalled, bad_frame };

const char* to_string(wire_end e) {
  switch (e) {
    case wire_end::open: return "open";
    case wire_end::eof: return "eof";
    case wire_end::reset: return "reset";
    case wire_end::stopped: return "stopped";
    case wire_end::stalled: return "stalled";
    case wire_end::bad_frame: return "bad frame";
  }
  return "?";
}

// Everything the threads of a scenario record, under one mutex, with one condition variable for every wait.
struct observed {
  std::mutex m;
  std::condition_variable changed;
  // Server side: what the application heard.
  std::shared_ptr<ws::session> session;  // kept by the application (or not, see `keep_handle`)
  std::weak_ptr<ws::session> weak;
  std::vector<ws::message> messages;
  int closes = 0;
  ws::close_info info;
  bool message_after_close = false;
  std::size_t group_size_at_close = 0;
  std::size_t echoes_sent = 0;  // by the message handler, when the scenario echoes
  int drains_done = 0;
  drain_report drain;
  // Peer side: what arrived on the wire.
  std::vector<wire_event> wire;
  std::size_t app_messages_in = 0;    // data messages received (all are the application's sends)
  std::size_t bytes_after_close = 0;  // any byte after the server's close frame
  bool close_frame_in = false;
  wire_end end = wire_end::open;
  std::string bad_frame;

  // Waits for `done` (under the lock); false at the deadline.
  template <class Pred>
  bool wait(Pred done) {
    std::unique_lock lock(m);
    return changed.wait_for(lock, deadline_after, done);
  }
};

// ------------------------------------------------------------------ the peer: a raw socket and a reader thread

class raw_peer {
 public:
  // Connects with a small receive buffer (a small TCP window), so that a peer that stops reading backs up the
  // server's writes soon, and opens the WebSocket.
  raw_peer(std::uint16_t port, observed& seen) : seen_(seen) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    const int rcvbuf = 16 * 1024;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // A send that the server never takes fails instead of hanging the test.
    timeval tv{.tv_sec = 10, .tv_usec = 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    REQUIRE(::pipe(stop_pipe_) == 0);

    REQUIRE(send_all(
        "GET /r HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"));
    std::string head;
    std::size_t end = std::string::npos;
    while (end == std::string::npos) {
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      REQUIRE(n > 0);
      head.append(chunk, static_cast<std::size_t>(n));
      end = head.find("\r\n\r\n");
    }
    REQUIRE(head.starts_with("HTTP/1.1 101"));
    buffer_ = head.substr(end + 4);  // frames the server sent with its 101
    reader_ = std::thread([this] { read_loop(); });
  }

  ~raw_peer() {
    stop_reader();
    if (fd_ >= 0) ::close(fd_);
    ::close(stop_pipe_[0]);
    ::close(stop_pipe_[1]);
  }

  raw_peer(const raw_peer&) = delete;
  raw_peer& operator=(const raw_peer&) = delete;

  // Writes `bytes` whole; false once the server has gone (a reset, a broken pipe).
  bool send_all(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Writes `bytes` in pieces of random sizes (each its own segment: TCP_NODELAY), so that the server's reads end
  // anywhere in a frame.
  bool send_pieces(std::string_view bytes, rng_t& rng) {
    while (!bytes.empty()) {
      const std::size_t most = pick(rng, 0, 2) == 0 ? 16 : 8192;
      const std::size_t n = std::min(bytes.size(), pick(rng, 1, most));
      if (!send_all(bytes.substr(0, n))) return false;
      bytes.remove_prefix(n);
    }
    return true;
  }

  // Stops reading (the server's writes back up into the kernel's buffers, then its queue), or reads again.
  void gate(bool closed) {
    {
      const std::lock_guard lock(gate_m_);
      gated_ = closed;
    }
    gate_cv_.notify_all();
  }

  // Shrinks the send buffer of the server's end of this connection (found among the process's descriptors by its
  // two ports), so that a burst of sends fills it and then the session's queue with a few hundred KiB, not the
  // megabytes of an autotuned loopback buffer.
  void shrink_server_send_buffer(std::uint16_t server_port) {
    sockaddr_in ours{};
    socklen_t length = sizeof ours;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&ours), &length) == 0);
    for (int fd = 0; fd < 65536; ++fd) {
      sockaddr_in local{}, remote{};
      socklen_t local_length = sizeof local, remote_length = sizeof remote;
      if (fd == fd_ || ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_length) != 0) continue;
      if (local.sin_family != AF_INET || ntohs(local.sin_port) != server_port) continue;
      if (::getpeername(fd, reinterpret_cast<sockaddr*>(&remote), &remote_length) != 0) continue;
      if (remote.sin_port != ours.sin_port) continue;
      const int sndbuf = 16 * 1024;
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
      return;
    }
    FAIL("the server's end of the connection was not found");
  }

  // Half-closes: a FIN, no close frame.
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

  // Resets the connection: SO_LINGER with a zero timeout makes close() send RST (the reader is stopped first).
  void reset() {
    stop_reader();
    const linger abortive{.l_onoff = 1, .l_linger = 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive);
    ::close(fd_);
    fd_ = -1;
  }

  void stop_reader() {
    if (!reader_.joinable()) return;
    const char b = 's';
    [[maybe_unused]] const ssize_t n = ::write(stop_pipe_[1], &b, 1);
    gate(false);
    reader_.join();
  }

 private:
  void finish(wire_end how) {
    const std::lock_guard lock(seen_.m);
    seen_.end = how;
    seen_.changed.notify_all();
  }

  void read_loop() {
    ws::frame_parser parser(ws::role::client);
    std::string message;
    bool close_seen = false;
    for (;;) {
      if (!buffer_.empty() && !parse(parser, message, close_seen)) return;
      {
        std::unique_lock lock(gate_m_);
        gate_cv_.wait(lock, [this] { return !gated_; });
      }
      pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
      const int ready = ::poll(fds, 2, static_cast<int>(std::chrono::milliseconds(deadline_after).count()));
      if (ready == 0) return finish(wire_end::stalled);
      if ((fds[1].revents & POLLIN) != 0) return finish(wire_end::stopped);
      char chunk[65536];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n == 0) return finish(wire_end::eof);
      if (n < 0) return finish(errno == ECONNRESET ? wire_end::reset : wire_end::stalled);
      if (close_seen) {
        const std::lock_guard lock(seen_.m);
        seen_.bytes_after_close += static_cast<std::size_t>(n);
        continue;
      }
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  // Parses what `buffer_` holds into events; false when the server sent a frame a client must refuse.
  bool parse(ws::frame_parser& parser, std::string& message, bool& close_seen) {
    while (!buffer_.empty() && !close_seen) {
      const ws::parse_result r = parser.parse(std::span<char>(buffer_.data(), buffer_.size()));
      wire_event e{r.event, r.message_type, std::string(r.event == ws::parse_event::close ? r.reason : r.payload),
                   r.code};
      const std::string error = r.event == ws::parse_event::error ? r.error.message() : std::string();
      buffer_.erase(0, r.consumed);
      if (r.event == ws::parse_event::need_more) break;
      if (r.event == ws::parse_event::error) {
        {
          const std::lock_guard lock(seen_.m);
          seen_.bad_frame = error;
        }
        finish(wire_end::bad_frame);
        return false;
      }
      if (r.event == ws::parse_event::data) {
        message += e.data;
        if (!r.message_end) continue;
        e.data = std::exchange(message, std::string());
      }
      const std::lock_guard lock(seen_.m);
      if (e.kind == ws::parse_event::data) ++seen_.app_messages_in;
      if (e.kind == ws::parse_event::close) {
        close_seen = true;
        seen_.close_frame_in = true;
        seen_.bytes_after_close += buffer_.size();
        buffer_.clear();
      }
      seen_.wire.push_back(std::move(e));
      seen_.changed.notify_all();
    }
    return true;
  }

  observed& seen_;
  int fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  std::string buffer_;
  std::mutex gate_m_;
  std::condition_variable gate_cv_;
  bool gated_ = false;
  std::thread reader_;
};

// ------------------------------------------------------------------ the script

enum class ending { peer_close, invalid, half_close, reset, app_close, app_abort, drain };

const char* to_string(ending e) {
  switch (e) {
    case ending::peer_close: return "peer close";
    case ending::invalid: return "invalid frame";
    case ending::half_close: return "half-close";
    case ending::reset: return "reset";
    case ending::app_close: return "application close";
    case ending::app_abort: return "application abort";
    case ending::drain: return "group drain";
  }
  return "?";
}

// An invalid frame (or sequence) and the close code it must get (RFC 6455 §7.4.1, ws/error.hpp).
struct invalid_input {
  std::string bytes;
  ws::close_code code;
  std::string what;
};

invalid_input make_invalid(rng_t& rng, const ws::parser_options& limits) {
  const auto protocol = ws::close_code::protocol_error;
  switch (pick(rng, 0, 11)) {
    case 0: return {ws::test::raw_frame({.opcode = 0x1, .masked = false}, "unmasked"), protocol, "unmasked frame"};
    case 1: return {frame(rng, static_cast<std::uint8_t>(pick(rng, 3, 7)), "x"), protocol, "reserved opcode"};
    case 2: return {ws::test::raw_frame({.rsv2 = true, .opcode = 0x2}, "x"), protocol, "RSV2 set"};
    case 3: return {frame(rng, 0x9, std::string(126, 'p')), protocol, "ping of 126 bytes"};
    case 4: return {frame(rng, 0x9, "p", false), protocol, "fragmented ping"};
    case 5: return {frame(rng, 0x0, "c"), protocol, "continuation without a message"};
    case 6: return {frame(rng, 0x1, "a", false) + frame(rng, 0x2, "b"), protocol, "new message inside a fragmented one"};
    case 7: return {frame(rng, 0x8, "\x03"), protocol, "close with a 1-byte payload"};
    case 8: {
      static const std::uint16_t bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535};
      const std::uint16_t code = bad[pick(rng, 0, std::size(bad) - 1)];
      return {frame(rng, 0x8, ws::test::close_payload(code)), protocol, "close code " + std::to_string(code)};
    }
    case 9:
      return {frame(rng, 0x8, ws::test::close_payload(1000, "bad \xff")), ws::close_code::invalid_payload,
              "close reason not UTF-8"};
    case 10: {
      // Invalid UTF-8 in a text message, perhaps in its second fragment.
      const std::string bad = "ok \xc3\x28 no";
      if (pick(rng, 0, 1) == 0) return {frame(rng, 0x1, bad), ws::close_code::invalid_payload, "text not UTF-8"};
      return {frame(rng, 0x1, "fine", false) + frame(rng, 0x0, bad), ws::close_code::invalid_payload,
              "second fragment not UTF-8"};
    }
    default: {
      // Over the limits: a frame whose header announces more than the frame limit, or a message whose fragments
      // add up to more than the message limit.
      if (pick(rng, 0, 1) == 0) {
        std::string header = frame(rng, 0x2, std::string(static_cast<std::size_t>(limits.max_frame_size) + 1, 'o'));
        return {header.substr(0, 14 + 100), ws::close_code::message_too_big, "frame over the limit"};
      }
      const std::string half(static_cast<std::size_t>(limits.max_message_size / 2) + 1, 'h');
      return {frame(rng, 0x2, half, false) + frame(rng, 0x0, half), ws::close_code::message_too_big,
              "message over the limit"};
    }
  }
}

// A close code valid on the wire (§7.4.1, §7.4.2), for the peer's or the application's close.
std::uint16_t random_close_code(rng_t& rng) {
  static const std::uint16_t codes[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014};
  if (pick(rng, 0, 3) == 0) return static_cast<std::uint16_t>(pick(rng, 3000, 4999));
  return codes[pick(rng, 0, std::size(codes) - 1)];
}

// A code that may not go in a close frame (§7.4.1: 1005, 1006 and 1015 are for reporting; the rest unassigned).
std::uint16_t invalid_close_code(rng_t& rng) {
  static const std::uint16_t codes[] = {1005, 1006, 1015, 0, 999, 1004, 1016, 2000, 2999, 5000};
  return codes[pick(rng, 0, std::size(codes) - 1)];
}

// A close reason: valid UTF-8 of up to 123 bytes (§5.5.1), or empty.
std::string random_reason(rng_t& rng) {
  if (pick(rng, 0, 2) == 0) return {};
  std::string r = random_payload(rng, ws::opcode::text, pick(rng, 1, 119));
  return r;
}

// ------------------------------------------------------------------ one scenario

// GET /r: a WebSocket whose handlers record into `seen`; with `echo`, each message is answered on the session's
// thread, as "e<index>:<its bytes>".
void add_route(test::test_server& server, observed& seen, const ws::session_options& options,
               const std::shared_ptr<ws::session_group>& group, bool echo) {
  server.routes().get("/r", [&seen, options, group, echo](http::request& req) {
    return ws::accept(req, {.session = options, .group = group}, [&seen, group, echo](std::shared_ptr<ws::session> s) {
      s->on_message([&seen, echo, weak = std::weak_ptr<ws::session>(s)](ws::message&& m) {
        std::unique_lock lock(seen.m);
        if (seen.closes > 0) seen.message_after_close = true;
        const std::size_t index = seen.messages.size();
        seen.messages.push_back(m);
        seen.changed.notify_all();
        if (!echo) return;
        ++seen.echoes_sent;
        lock.unlock();
        // Answers sent while a read's messages are handled take the session's fast path (session_impl::offer).
        if (auto self = weak.lock()) {
          self->send(ws::session::make_outgoing(m.type, "e" + std::to_string(index) + ":" + m.data));
        }
      });
      s->on_close([&seen, group](const ws::close_info& info) {
        const std::lock_guard lock(seen.m);
        ++seen.closes;
        seen.info = info;
        if (group) seen.group_size_at_close = group->size();
        seen.changed.notify_all();
      });
      const std::lock_guard lock(seen.m);
      seen.session = s;
      seen.weak = s;
      seen.changed.notify_all();
    });
  });
}


void run_scenario(unsigned seed) {
  rng_t rng(seed);
  std::ostringstream script;  // the script as it ran, for the failure message
  script << "seed " << seed << ":";

  // The session's options, drawn.
  ws::session_options options;
  options.limits.max_message_size = 64 * 1024;
  options.limits.max_frame_size = 64 * 1024;
  static const overflow_policy policies[] = {overflow_policy::wait, overflow_policy::drop_oldest,
                                             overflow_policy::drop_newest, overflow_policy::disconnect};
  const overflow_policy policy = policies[pick(rng, 0, std::size(policies) - 1)];
  // Only a count limit: a push then drops at most one message, and `dropped()` counts exactly what is lost.
  options.send_queue = {.max_messages = pick(rng, 2, 16), .max_bytes = 256 * 1024 * 1024, .policy = policy};
  options.ping_interval = pick(rng, 0, 1) == 0 ? 0ms : std::chrono::milliseconds(pick(rng, 5, 50));
  options.pong_timeout = 10'000ms;   // the peer never answers pings; any byte it sends counts, but it may pause
  options.write_timeout = 10'000ms;  // the peer pauses its reading only briefly
  options.close_timeout = std::chrono::milliseconds(pick(rng, 30, 120));
  options.message_timeout = pick(rng, 0, 1) == 0 ? 0ms : 10'000ms;
  const bool grouped = pick(rng, 0, 1) == 0;
  const bool keep_handle = pick(rng, 0, 3) != 0;
  const bool echo = pick(rng, 0, 1) == 0;  // the handler answers each message, on the session's thread
  script << " policy=" << to_string(policy) << " queue=" << options.send_queue.max_messages
      << " ping=" << options.ping_interval.count() << "ms close_timeout=" << options.close_timeout.count() << "ms"
      << (grouped ? " grouped" : "") << (keep_handle ? "" : " handle-dropped") << (echo ? " echo" : "");

  observed seen;  // outlives the server, whose threads may still run the session's handlers until it stops
  test::test_server server;
  auto group = grouped ? std::make_shared<ws::session_group>() : nullptr;
  add_route(server, seen, options, group, echo);
  server.start();

  std::optional<raw_peer> peer_storage;
  peer_storage.emplace(server.port(), seen);
  raw_peer& peer = *peer_storage;
  REQUIRE(seen.wait([&] { return seen.session != nullptr; }));
  const std::shared_ptr<ws::session> handle = keep_handle ? seen.session : nullptr;
  const bool small_buffers = pick(rng, 0, 3) != 0;
  if (small_buffers) peer.shrink_server_send_buffer(server.port());
  script << (small_buffers ? " small-buffers" : "");
  {
    const std::lock_guard lock(seen.m);
    seen.session.reset();  // the application holds `handle` (or nothing: the session lives on while connected)
  }

  // The model's expectations, built as the script runs.
  std::vector<ws::message> expected_messages;   // what on_message must hear, in order
  std::vector<std::string> pings;               // payloads of the peer's pings, in order
  std::size_t app_sent = 0;                     // messages the application sent (all must arrive or be dropped)
  std::size_t app_sent_after_close = 0;         // of those, sent after its close(): never on the wire
  std::vector<std::string> after_close_tags;
  std::string pending;                          // peer bytes not written yet

  // The application's sends: "<sender><seq>:<padding>", a sequence per sender.
  std::size_t seq_other = 0, seq_own = 0, seq_burst = 0;
  const auto app_send_other = [&](std::size_t size) {
    auto s = seen.weak.lock();
    if (!s) return;
    s->send_text("o" + std::to_string(seq_other++) + ":" + std::string(size, 'o'));
    ++app_sent;
  };
  const auto app_send_own = [&](std::size_t size) {
    auto s = seen.weak.lock();
    if (!s) return;
    std::string text = "w" + std::to_string(seq_own++) + ":" + std::string(size, 'w');
    asio::post(s->get_executor(), [weak = seen.weak, text = std::move(text)]() mutable {
      if (auto self = weak.lock()) self->send_text(std::move(text));
    });
    ++app_sent;
  };
  // Waits until the session's thread has run everything posted to it so far, and what that posted in turn (the
  // completion of a push to a closed queue), so that `dropped()` counts every send made before.
  const auto settle_posts = [&]() -> bool {
    auto s = seen.weak.lock();
    if (!s) return true;
    auto done = std::make_shared<std::promise<void>>();
    auto future = done->get_future();
    const asio::any_io_executor ex = s->get_executor();
    asio::post(ex, [ex, done] {
      asio::post(ex, [ex, done] { asio::post(ex, [done] { done->set_value(); }); });
    });
    return future.wait_for(deadline_after) == std::future_status::ready;
  };
  const auto dropped = [&]() -> std::optional<std::uint64_t> {
    if (handle) return handle->dropped();
    if (auto s = seen.weak.lock()) return s->dropped();
    return std::nullopt;
  };
  const auto flush = [&]() {
    peer.send_pieces(pending, rng);
    pending.clear();
  };
  const auto cut = [&] {
    const std::lock_guard lock(seen.m);
    return seen.closes > 0;
  };

  // ---- the body
  const std::size_t steps = pick(rng, 0, 14);
  for (std::size_t step = 0; step < steps && !cut(); ++step) {
    switch (pick(rng, 0, 9)) {
      case 0: case 1: case 2: case 3: {  // a message, in fragments, with control frames between them
        const ws::opcode type = pick(rng, 0, 1) == 0 ? ws::opcode::text : ws::opcode::binary;
        const std::size_t size = pick(rng, 0, 9) == 0 ? pick(rng, 126, 40'000) : pick(rng, 0, 125);
        const std::string data = random_payload(rng, type, size);
        std::vector<std::size_t> cuts{0, data.size()};
        for (std::size_t k = pick(rng, 0, 3); k > 0; --k) cuts.push_back(pick(rng, 0, data.size()));
        std::sort(cuts.begin(), cuts.end());
        for (std::size_t f = 0; f + 1 < cuts.size(); ++f) {
          const bool last = f + 2 == cuts.size();
          pending += frame(rng, f == 0 ? static_cast<std::uint8_t>(type) : 0x0,
                           std::string_view(data).substr(cuts[f], cuts[f + 1] - cuts[f]), last);
          if (!last && pick(rng, 0, 2) == 0) {
            pings.push_back("p" + std::to_string(pings.size()) + ":" + random_payload(rng, ws::opcode::binary, pick(rng, 0, 100)));
            pending += frame(rng, 0x9, pings.back());
          } else if (!last && pick(rng, 0, 3) == 0) {
            pending += frame(rng, 0xA, "unsolicited");
          }
        }
        expected_messages.push_back({type, data});
        script << " msg(" << (type == ws::opcode::text ? "text," : "binary,") << size << "b," << cuts.size() - 1 << "f)";
        break;
      }
      case 4:
        pings.push_back("p" + std::to_string(pings.size()) + ":" + random_payload(rng, ws::opcode::binary, pick(rng, 0, 120)));
        pending += frame(rng, 0x9, pings.back());
        script << " ping";
        break;
      case 5:
        pending += frame(rng, 0xA, random_payload(rng, ws::opcode::binary, pick(rng, 0, 125)));
        script << " pong";
        break;
      case 6:
        flush();
        script << " flush";
        break;
      case 7: {
        const std::size_t n = pick(rng, 1, 5);
        for (std::size_t k = 0; k < n; ++k) {
          if (pick(rng, 0, 1) == 0) app_send_other(pick(rng, 0, 3000));
          else app_send_own(pick(rng, 0, 3000));
        }
        script << " app-send(" << n << ")";
        break;
      }
      default: {
        // A burst of large sends while the peer reads nothing: the kernel's buffers fill, then the send queue,
        // which overflows under its policy. Then the peer reads again, and everything sent either arrives or was
        // counted as dropped (or, under `disconnect`, the session was cut).
        flush();
        peer.gate(true);
        const std::size_t n = pick(rng, 8, 48);
        const std::size_t size = pick(rng, 8, 48) * 1024;
        for (std::size_t k = 0; k < n; ++k) {
          auto s = seen.weak.lock();
          if (!s) break;
          s->send_binary("b" + std::to_string(seq_burst++) + ":" + std::string(size, 'b'));
          ++app_sent;
        }
        const bool posted = settle_posts();
        peer.gate(false);
        script << " burst(" << n << "x" << size / 1024 << "KiB)";
        CHECK(posted);
        const bool settled = seen.wait([&] {
          if (seen.closes > 0 || seen.end != wire_end::open) return true;
          const auto d = seen.weak.lock() ? seen.weak.lock()->dropped() : 0;
          return seen.app_messages_in + d >= app_sent + seen.echoes_sent;
        });
        INFO(script.str());
        CHECK(settled);
        break;
      }
    }
  }

  // ---- the ending
  static const ending endings[] = {ending::peer_close, ending::peer_close, ending::invalid, ending::half_close,
                                   ending::reset,      ending::app_close,  ending::app_close, ending::app_abort,
                                   ending::drain};
  ending how = endings[pick(rng, 0, std::size(endings) - 1)];
  if (how == ending::drain && !group) how = ending::app_close;
  script << " | " << to_string(how);
  // Every message has reached the application and the last ping has its pong (a later pong may stand for several,
  // §5.5.3): before an ending the server starts, the pings after the last message may still be unread, and a session
  // that has sent its close frame answers none (the check below that every ping was answered then failed, seed 92
  // under load).
  const auto last_ping_answered = [&] {  // with seen.m held
    return pings.empty() || std::any_of(seen.wire.begin(), seen.wire.end(), [&](const auto& e) {
             return e.kind == ws::parse_event::pong && e.data == pings.back();
           });
  };
  const auto wait_delivered = [&] {
    flush();
    return seen.wait([&] {
      return (seen.messages.size() >= expected_messages.size() && last_ping_answered()) || seen.closes > 0;
    });
  };
  // The peer answers the server's close frame with its own, echoing the code (§5.5.1; no body for none).
  const auto answer_close = [&] {
    if (!seen.wait([&] { return seen.close_frame_in || seen.end != wire_end::open; })) return;
    bool answer = false;
    ws::close_code code{};
    {
      const std::lock_guard lock(seen.m);
      answer = seen.close_frame_in;
      if (answer) code = seen.wire.back().code;
    }
    if (!answer) return;
    peer.send_all(frame(rng, 0x8, code == ws::close_code::no_status
                                      ? std::string()
                                      : ws::test::close_payload(static_cast<std::uint16_t>(code))));
  };
  std::optional<std::uint16_t> peer_code;  // the peer's close: its code (nullopt: no body)
  std::string peer_reason;
  invalid_input invalid;
  std::uint16_t app_code = 0;
  std::string app_reason;
  bool peer_answers = false;
  switch (how) {
    case ending::peer_close: {
      if (pick(rng, 0, 3) != 0) {
        peer_code = random_close_code(rng);
        peer_reason = random_reason(rng);
        pending += frame(rng, 0x8, ws::test::close_payload(*peer_code, peer_reason));
        script << "(" << *peer_code << ", " << peer_reason.size() << "b)";
      } else {
        pending += frame(rng, 0x8, "");
        script << "(no body)";
      }
      if (pick(rng, 0, 1) == 0) wait_delivered();
      flush();
      if (pick(rng, 0, 2) == 0) {
        peer.shutdown_write();
        script << " then FIN";
      }
      break;
    }
    case ending::invalid:
      invalid = make_invalid(rng, options.limits);
      script << "(" << invalid.what << ")";
      if (pick(rng, 0, 1) == 0) wait_delivered();
      pending += invalid.bytes;
      flush();
      break;
    case ending::half_close:
      flush();
      peer.shutdown_write();
      break;
    case ending::reset:
      // Bytes still unread by the server may be discarded with the reset: wait for them first.
      CHECK(wait_delivered());
      peer.reset();
      break;
    case ending::app_close: {
      // Messages that arrive after the application's close() are not handed to it: wait for them first.
      CHECK(wait_delivered());
      app_code = pick(rng, 0, 5) == 0 ? invalid_close_code(rng) : random_close_code(rng);
      app_reason = pick(rng, 0, 5) == 0 ? std::string(124 + pick(rng, 0, 10), 'r') : random_reason(rng);
      const bool own_thread = pick(rng, 0, 1) == 0;
      const bool twice = pick(rng, 0, 2) == 0;
      const std::size_t sends_after = pick(rng, 0, 3);
      peer_answers = pick(rng, 0, 2) != 0;
      script << "(" << app_code << ", " << app_reason.size() << "b" << (own_thread ? ", own thread" : "")
          << (twice ? ", twice" : "") << ", " << sends_after << " sends after" << (peer_answers ? ", answered" : "")
          << ")";
      if (auto s = seen.weak.lock()) {
        const auto close = [s, own_thread](ws::close_code code, std::string reason) {
          if (own_thread) {
            asio::post(s->get_executor(), [s, code, reason = std::move(reason)]() mutable { s->close(code, std::move(reason)); });
          } else {
            s->close(code, std::move(reason));
          }
        };
        close(static_cast<ws::close_code>(app_code), app_reason);
        if (twice) close(ws::close_code::going_away, "again");
        for (std::size_t k = 0; k < sends_after; ++k) {
          const std::string tag = "z" + std::to_string(k);
          after_close_tags.push_back(tag);
          if (own_thread) {
            asio::post(s->get_executor(), [s, tag] { s->send_text(tag); });
          } else {
            s->send_text(tag);
          }
          ++app_sent;
          ++app_sent_after_close;
        }
      }
      if (peer_answers) answer_close();
      break;
    }
    case ending::app_abort: {
      CHECK(wait_delivered());
      const bool own_thread = pick(rng, 0, 1) == 0;
      script << (own_thread ? "(own thread)" : "");
      if (auto s = seen.weak.lock()) {
        if (own_thread) asio::post(s->get_executor(), [s] { s->abort(); });
        else s->abort();
      }
      break;
    }
    case ending::drain: {
      // The group's drain (what the runtime's stop does for a registered group): close 1001 to each session.
      CHECK(wait_delivered());
      app_code = 1001;
      app_reason = "server shutting down";
      peer_answers = pick(rng, 0, 2) != 0;
      script << (peer_answers ? "(answered)" : "");
      group->async_drain(std::chrono::steady_clock::now() + deadline_after, [&seen](drain_report r) {
        const std::lock_guard lock(seen.m);
        ++seen.drains_done;
        seen.drain = r;
        seen.changed.notify_all();
      });
      if (peer_answers) answer_close();
      break;
    }
  }

  // ---- the end: the session closes, and the server closes the connection.
  const bool ended = seen.wait([&] {
    return seen.closes > 0 && (how == ending::reset || seen.end != wire_end::open) &&
           (how != ending::drain || seen.drains_done > 0);
  });
  // A handle kept after the peer has gone stays safe: sends are refused (counted), close and abort do nothing.
  if (handle && ended) {
    handle->send_text("late");
    ++app_sent;
    ++app_sent_after_close;
    after_close_tags.push_back("late");
    handle->close(ws::close_code::normal);
    handle->abort();
  }
  const bool posts_done = settle_posts();
  const std::optional<std::uint64_t> drops = dropped();
  peer_storage.reset();  // stops the reader, closes the socket

  INFO(script.str());
  REQUIRE(ended);
  CHECK(posts_done);
  const std::lock_guard lock(seen.m);
  INFO("on_close: " << static_cast<int>(seen.info.code) << " \"" << seen.info.reason << "\" by_peer=" << seen.info.by_peer
                    << "; wire end: " << to_string(seen.end) << (seen.bad_frame.empty() ? "" : " " + seen.bad_frame)
                    << "; " << seen.wire.size() << " frames, close frame " << (seen.close_frame_in ? "in" : "not in"));

  // on_close exactly once, nothing heard after it, and the session has left its group.
  CHECK(seen.closes == 1);
  CHECK_FALSE(seen.message_after_close);
  CHECK(seen.group_size_at_close == 0);
  if (how != ending::reset) {
    CHECK((seen.end == wire_end::eof || seen.end == wire_end::reset));  // the server closed the connection
  }

  // Was the session cut by a `disconnect` overflow (a burst, timed by the kernel's buffers)?
  const bool overflow_cut = policy == overflow_policy::disconnect &&
                            seen.info.code == ws::close_code::policy_violation && seen.info.reason == "send queue overflow";
  if (overflow_cut) {
    CHECK_FALSE(seen.close_frame_in);  // cut: a close frame could not get past the full queue
    CHECK_FALSE(seen.info.by_peer);
  }

  // The peer's messages: all of them (a prefix, when cut by the overflow), once each, in order.
  if (overflow_cut) {
    CHECK(seen.messages.size() <= expected_messages.size());
  } else {
    CHECK(seen.messages.size() == expected_messages.size());
  }
  for (std::size_t i = 0; i < std::min(seen.messages.size(), expected_messages.size()); ++i) {
    INFO("message " << i);
    CHECK(seen.messages[i].type == expected_messages[i].type);
    CHECK(seen.messages[i].data == expected_messages[i].data);
  }

  // The wire: data, pings and pongs, then at most one close frame (the reader counts any byte after it).
  CHECK(seen.bytes_after_close == 0);
  std::size_t next_ping = 0;
  std::size_t next_other = 0, next_own = 0, next_burst = 0, next_echo = 0;
  std::size_t app_in = 0;
  bool close_seen = false;
  bool order_ok = true, pong_ok = true, no_late = true, echo_ok = true;
  for (const wire_event& e : seen.wire) {
    if (close_seen) order_ok = false;
    if (e.kind == ws::parse_event::close) {
      close_seen = true;
    } else if (e.kind == ws::parse_event::pong) {
      // A pong answers one of the pings not answered yet (a later one may stand for several, §5.5.3).
      const auto it = std::find(pings.begin() + static_cast<std::ptrdiff_t>(next_ping), pings.end(), e.data);
      if (it == pings.end()) pong_ok = false;
      else next_ping = static_cast<std::size_t>(it - pings.begin()) + 1;
    } else if (e.kind == ws::parse_event::data) {
      ++app_in;
      const std::size_t colon = e.data.find(':');
      if (colon == std::string::npos) {
        // "z<k>" or "late": sent after the close, must never be written.
        no_late = false;
        continue;
      }
      const std::size_t n = std::stoul(e.data.substr(1, colon - 1));
      if (e.data[0] == 'e') {
        // An echo: of the message it names, with its type and bytes.
        const bool matches = n < expected_messages.size() && e.type == expected_messages[n].type &&
                             std::string_view(e.data).substr(colon + 1) == expected_messages[n].data;
        if (!matches) echo_ok = false;
      }
      std::size_t& next = e.data[0] == 'o'   ? next_other
                          : e.data[0] == 'w' ? next_own
                          : e.data[0] == 'e' ? next_echo
                                             : next_burst;
      if (n < next) order_ok = false;  // once each, in order per sender (gaps: dropped)
      next = n + 1;
    }
  }
  CHECK(order_ok);
  CHECK(pong_ok);
  CHECK(no_late);
  CHECK(echo_ok);
  // The last ping the server handled while open was answered before its close frame, unless the connection just
  // dropped (a write in flight dies with it).
  const bool handshake_done = seen.close_frame_in;
  if (handshake_done && !pings.empty() && how != ending::app_close) CHECK(next_ping == pings.size());

  // What the application sent arrived or was counted as dropped, when everything queued could go out: the close
  // frame came after it (§5.5.1: the close frame is the last frame).
  if (handshake_done && drops) {
    INFO("sent " << app_sent << " (" << app_sent_after_close << " after the close), arrived " << app_in
                 << ", dropped " << *drops);
    CHECK(app_in + *drops == app_sent + seen.echoes_sent);
  }

  // The close frame and on_close, per ending.
  const auto wire_close = [&]() -> const wire_event* {
    return seen.wire.empty() || seen.wire.back().kind != ws::parse_event::close ? nullptr : &seen.wire.back();
  };
  if (overflow_cut) return;
  switch (how) {
    case ending::peer_close: {
      // Echoed (§5.5.1), with 1000 for a close without a code (session.hpp); on_close hears the peer's (1005 for
      // none, §7.1.5).
      const wire_event* c = wire_close();
      REQUIRE(c != nullptr);
      CHECK(static_cast<int>(c->code) == (peer_code ? *peer_code : 1000));
      CHECK(static_cast<int>(seen.info.code) == (peer_code ? *peer_code : 1005));
      CHECK(seen.info.reason == peer_reason);
      CHECK(seen.info.by_peer);
      break;
    }
    case ending::invalid: {
      // _Fail the WebSocket Connection_ (§7.1.7) with the code of §7.4.1.
      const wire_event* c = wire_close();
      REQUIRE(c != nullptr);
      CHECK(c->code == invalid.code);
      CHECK(seen.info.code == invalid.code);
      CHECK_FALSE(seen.info.by_peer);
      break;
    }
    case ending::app_abort:
      CHECK(seen.info.code == ws::close_code::abnormal);
      CHECK(seen.info.reason == "aborted");
      CHECK_FALSE(seen.info.by_peer);
      CHECK(wire_close() == nullptr);
      break;
    case ending::half_close:
    case ending::reset:
      // No closing handshake: 1006 (§7.1.5), and no close frame.
      CHECK(seen.info.code == ws::close_code::abnormal);
      CHECK_FALSE(seen.info.by_peer);
      CHECK(wire_close() == nullptr);
      break;
    case ending::drain:
      CHECK(seen.drains_done == 1);
      CHECK(seen.drain.drained == 1);
      CHECK(seen.drain.cut == 0);
      [[fallthrough]];
    case ending::app_close: {
      // Our close frame, with our code and reason (a reason over 123 bytes is left out, §5.5.1), the first of two;
      // a code that may not go on the wire (§7.4.1) makes a close frame without a body: 1005 at both ends (§7.1.5).
      const bool on_wire = ws::is_valid_close_code(app_code);
      const wire_event* c = wire_close();
      REQUIRE(c != nullptr);
      CHECK(static_cast<int>(c->code) == (on_wire ? app_code : 1005));
      CHECK(c->data == (on_wire && app_reason.size() <= 123 ? app_reason : std::string()));
      CHECK(static_cast<int>(seen.info.code) == (on_wire ? app_code : 1005));
      CHECK_FALSE(seen.info.by_peer);
      if (drops) CHECK(*drops >= app_sent_after_close);
      break;
    }
  }
}

}  // namespace

TEST_CASE("ws session: random scripts of a raw peer and the application keep RFC 6455 and the session's contract",
          "[ws][session][session_random]") {
  for (unsigned seed = 1; seed <= 150; ++seed) run_scenario(seed);
}

// Found by the model (seed 71): answers sent by the handlers of one read are queued without waking the writer's
// waiting pop (session_impl::offer). When the same read ends with the peer's close frame, the queue is closed while
// it still holds them; the writer takes them itself, and the pop, which `close` had left waiting for them, waited
// for ever: the close frame, which goes after the pop's end, was never sent (§5.5.1: the peer's close MUST be
// answered), the connection was cut at `close_timeout`, and the pop's handler kept the session and its event loop's
// work (the runtime's stop then hung). The close frame goes after the first answer, which the writer took before the
// close arrived; the two still queued are discarded and counted (the peer processes nothing after its close, and our
// answer to it is due as soon as practical: §5.5.1).
TEST_CASE("ws session: a peer's close that arrives with messages whose answers are still queued is answered",
          "[ws][session][session_random]") {
  observed seen;
  test::test_server server;
  ws::session_options options;
  options.ping_interval = 0ms;
  options.close_timeout = 5'000ms;  // below the test's deadline: a close frame that never comes ends in an EOF
  add_route(server, seen, options, nullptr, /*echo=*/true);
  server.start();
  std::optional<raw_peer> peer;
  peer.emplace(server.port(), seen);
  REQUIRE(seen.wait([&] { return seen.session != nullptr; }));
  rng_t rng(1);
  // One write, so that the server reads the messages and the close together.
  REQUIRE(peer->send_all(frame(rng, 0x1, "m0") + frame(rng, 0x2, "m1") + frame(rng, 0x1, "m2") +
                         frame(rng, 0x8, ws::test::close_payload(3001, "bye"))));
  REQUIRE(seen.wait([&] { return seen.closes > 0 && seen.end != wire_end::open; }));
  peer.reset();
  const std::lock_guard lock(seen.m);
  CHECK(seen.session->dropped() == 2);
  seen.session.reset();
  REQUIRE(seen.wire.size() == 2);
  CHECK(seen.wire[0].data == "e0:m0");
  CHECK(seen.wire[1].kind == ws::parse_event::close);
  CHECK(static_cast<int>(seen.wire[1].code) == 3001);
  CHECK(seen.end == wire_end::eof);
  CHECK(static_cast<int>(seen.info.code) == 3001);
  CHECK(seen.info.reason == "bye");
  CHECK(seen.info.by_peer);
}

// `close()` takes any `close_code`, among them those reserved for reporting (1005, 1006, 1015: an application may
// relay another connection's `close_info`) and unassigned ones. They "MUST NOT be set as a status code in a Close
// control frame" (§7.4.1): the session sends a close frame without a code, reported as 1005 at both ends (§7.1.5).
// Before, writing the frame threw `std::invalid_argument` on the session's thread, out of its event loop.
TEST_CASE("ws session: close() with a code that may not be sent sends a close frame without a code",
          "[ws][session][session_random]") {
  for (const std::uint16_t code : {1005, 1006, 1015, 1004, 2000, 5000}) {
    INFO("close(" << code << ")");
    observed seen;
    test::test_server server;
    ws::session_options options;
    options.ping_interval = 0ms;
    add_route(server, seen, options, nullptr, /*echo=*/false);
    server.start();
    std::optional<raw_peer> peer;
    peer.emplace(server.port(), seen);
    REQUIRE(seen.wait([&] { return seen.session != nullptr; }));
    seen.session->close(static_cast<ws::close_code>(code), "relayed");
    REQUIRE(seen.wait([&] { return seen.close_frame_in || seen.end != wire_end::open; }));
    rng_t rng(code);
    peer->send_all(frame(rng, 0x8, ""));  // the peer's answer, without a code either
    REQUIRE(seen.wait([&] { return seen.closes > 0 && seen.end != wire_end::open; }));
    peer.reset();
    const std::lock_guard lock(seen.m);
    seen.session.reset();
    REQUIRE(seen.wire.size() == 1);
    CHECK(seen.wire[0].kind == ws::parse_event::close);
    CHECK(seen.wire[0].code == ws::close_code::no_status);
    CHECK(seen.wire[0].data.empty());
    CHECK(seen.info.code == ws::close_code::no_status);
    CHECK_FALSE(seen.info.by_peer);
  }
}
