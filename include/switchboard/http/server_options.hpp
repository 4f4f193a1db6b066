// switchboard/http/server_options.hpp: the configuration of `http::server`, every field with a safe default.
#pragma once

#include <switchboard/http/parser.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace asio::ssl {
class context;
}

namespace switchboard::http {

/// Timeouts of a server connection (DESIGN promise 5). Zero disables one.
struct server_timeouts {
  /// From the first byte of a request (or the TLS handshake) to the end of its header section: a client sending
  /// a byte now and then cannot hold a connection longer than this (408, then close).
  std::chrono::milliseconds header{10'000};
  /// The longest wait for more body bytes while a body is being read (408, then close).
  std::chrono::milliseconds body{30'000};
  /// How long a keep-alive connection may wait for its next request.
  std::chrono::milliseconds idle{60'000};
  /// The longest wait for the peer to take more response bytes (then the connection is closed).
  std::chrono::milliseconds write{30'000};
  /// How long a keep-alive connection waits for its next request while holding its per-request state (read
  /// buffer, parser, request) before it gives that back to its thread's pool and waits without it, so that
  /// thousands of idle connections cost little memory. Checked by the server's clock (up to a second later).
  /// Not a timeout: nothing is closed. 0 parks at the first check.
  std::chrono::milliseconds park_idle_after{500};
  /// Once the server has decided to close a connection: how long it keeps reading (and discarding) what a client
  /// still sends after an error response, so that the client reads the response before the connection resets; and
  /// over TLS, how long it waits for the client's closure alert in reply to its own (RFC 9112 §9.8). Zero closes at
  /// once (over TLS without the alert).
  std::chrono::milliseconds close{2'000};
};

struct server_options {
  /// Address to bind: an IPv4 or IPv6 literal.
  std::string bind = "127.0.0.1";
  /// Port to bind; 0 picks a free one (see `server::local_endpoint`).
  std::uint16_t port = 0;
  /// Shard the listener across the runtime's threads with SO_REUSEPORT where available.
  bool reuse_port = true;
  /// Parser limits: request-target 8 KiB, header 16 KiB, 100 fields, body 1 MiB (per route with
  /// `route::body_limit`).
  parser_limits limits;
  server_timeouts timeouts;
  /// Most connections open at once over all threads; past it the server stops accepting until one closes.
  std::size_t max_connections = 10'000;
  /// Most connections open at once from one client address, WebSockets and other protocols upgraded from them
  /// included (`http::upgraded_connection::admission`); past it, a new connection from that address is closed at
  /// once and counted (`server_stats::refused_per_address`). 0, the default: no limit, since behind a reverse
  /// proxy or a NAT many clients share one address. Set it where clients connect directly, so that one client
  /// cannot hold all of `max_connections` (as Drogon's `max_connections_per_ip` or nginx's `limit_conn`).
  std::size_t max_connections_per_address = 0;
  /// Responses to pipelined requests are gathered into one write; past this many bytes they are written before
  /// more requests are read, so a client that pipelines without reading cannot grow the server's memory.
  std::size_t max_pending_output = 256 * 1024;
  /// Value of the `Server` field; empty sends none.
  std::string server_header;
  /// HTTPS when set: every connection starts with a TLS handshake using this context.
  std::shared_ptr<asio::ssl::context> tls;
};

}  // namespace switchboard::http
