// ws_load_handshake: the blocking client steps of the WebSocket load tools (tools/ws_load.cpp and
// tools/idle_connections.cpp --websocket): the opening handshake on a connected socket (RFC 6455 §4.1),
// sending one message and reading one (for checks, and for the one exchange that makes a server allocate
// what it keeps per connection).
//
// Both throw std::runtime_error with the reason (or asio's std::system_error) on any failure; they are used
// while connections are set up, before any load runs, where a blocking call is simplest.
#pragma once

#include <switchboard/http/parser.hpp>
#include <switchboard/ws/frame_parser.hpp>
#include <switchboard/ws/frame_writer.hpp>
#include <switchboard/ws/handshake.hpp>

#include <asio/buffer.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>

#include <array>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace ws_load {

/// Sends the opening handshake for `path` on the connected `socket` (Host: `host_field`), reads the answer,
/// and checks it is a 101 with the right Sec-WebSocket-Accept (RFC 6455 §4.1, §4.2.2). Returns the bytes
/// that arrived after the 101's head (frames the server sent at once), which belong to the WebSocket.
inline std::string open_websocket(asio::ip::tcp::socket& socket, std::string_view host_field, std::string_view path) {
  const std::string key = switchboard::ws::make_client_key();
  std::string request;
  request.append("GET ").append(path).append(" HTTP/1.1\r\nHost: ").append(host_field);
  request.append("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ");
  request.append(key).append("\r\n\r\n");
  asio::write(socket, asio::buffer(request));

  switchboard::http::response_parser parser;
  std::string buffer;
  std::array<char, 4096> chunk{};
  for (;;) {
    std::error_code ec;
    const std::size_t used = parser.put(buffer, ec);
    if (ec) throw std::runtime_error("cannot parse the handshake response: " + ec.message());
    if (parser.header_done()) {
      buffer.erase(0, used);
      break;
    }
    if (buffer.size() > 64 * 1024) throw std::runtime_error("handshake response head over 64 KiB");
    buffer.append(chunk.data(), socket.read_some(asio::buffer(chunk)));
  }
  if (parser.status_code() != 101) {
    throw std::runtime_error("the handshake got status " + std::to_string(parser.status_code()) + ", not 101");
  }
  if (switchboard::ws::check_accept(key, parser.fields().get("sec-websocket-accept"))) {
    throw std::runtime_error("the handshake response has a wrong Sec-WebSocket-Accept");
  }
  return buffer;
}

/// Sends `payload` as one masked text frame.
inline void send_message(asio::ip::tcp::socket& socket, std::string_view payload) {
  switchboard::ws::frame_writer writer(switchboard::ws::role::client);
  std::string frame(writer.frame_size(payload.size()), '\0');
  frame.resize(writer.write_frame(frame, switchboard::ws::opcode::text, payload));
  asio::write(socket, asio::buffer(frame));
}

/// Reads until one whole message has come and returns it. `buffer` holds bytes already received on the
/// connection (from open_websocket) and keeps what follows the message. Pings are not answered: the servers
/// of the benchmarks send none during a check.
inline std::string read_message(asio::ip::tcp::socket& socket, std::string& buffer) {
  switchboard::ws::frame_parser parser(switchboard::ws::role::client);
  std::string message;
  std::array<char, 4096> chunk{};
  for (;;) {
    const auto r = parser.parse(std::span<char>(buffer.data(), buffer.size()));
    switch (r.event) {
      case switchboard::ws::parse_event::data:
        message.append(r.payload);
        buffer.erase(0, r.consumed);
        if (r.message_end) return message;
        continue;
      case switchboard::ws::parse_event::need_more:
        buffer.erase(0, r.consumed);
        buffer.append(chunk.data(), socket.read_some(asio::buffer(chunk)));
        continue;
      case switchboard::ws::parse_event::ping:
      case switchboard::ws::parse_event::pong:
        buffer.erase(0, r.consumed);
        continue;
      case switchboard::ws::parse_event::close:
        throw std::runtime_error("the server closed the WebSocket (code " +
                                 std::to_string(static_cast<int>(r.code)) + ")");
      case switchboard::ws::parse_event::error:
        throw std::runtime_error("bad frame from the server: " + r.error.message());
    }
  }
}

}  // namespace ws_load
