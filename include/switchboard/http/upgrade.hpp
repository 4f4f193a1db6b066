// switchboard/http/upgrade.hpp
//
// Protocol upgrade (RFC 9110 §7.8): a handler answers 101 Switching Protocols with `response::upgrade(...)`, and
// once that response has been written the server hands the connection over, with any bytes the client already
// sent after its request. The WebSocket server is built on this; so can be any other protocol on the same port.
#pragma once

#include <asio/ip/tcp.hpp>
#include <asio/ssl/stream.hpp>

#include <functional>
#include <memory>
#include <string>
#include <variant>

namespace switchboard::http {

/// A connection taken over from the HTTP server after a 101 response.
struct upgraded_connection {
  /// The transport: plain TCP, or TLS (already handshaken).
  std::variant<asio::ip::tcp::socket, asio::ssl::stream<asio::ip::tcp::socket>> stream;
  /// Bytes received after the upgrade request (the start of the new protocol's data), to process first.
  std::string leftover;
  /// Keeps the connection counted in the server's `max_connections_per_address` while held (null when that limit
  /// is off): the new protocol keeps it until the connection closes.
  std::shared_ptr<void> admission;
};

/// Receives the connection, on the executor it lives on. It owns it from then on: the HTTP server no longer
/// counts, times out or drains it.
using upgrade_handler = std::function<void(upgraded_connection&&)>;

}  // namespace switchboard::http
