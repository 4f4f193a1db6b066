// A blocking HTTP test client over a raw socket: the tests control every byte sent, and read responses with the
// library's own response parser. Reads time out (SO_RCVTIMEO) so that a server that never answers fails the test
// instead of hanging it.
#pragma once

#include <switchboard/http/parser.hpp>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::test {

struct raw_response {
  unsigned status = 0;
  std::vector<std::pair<std::string, std::string>> fields;
  std::string body;
  bool keep_alive = false;

  std::string header(std::string_view name) const {
    for (const auto& [n, v] : fields) {
      if (http::detail::iequals(n, name)) return v;
    }
    return {};
  }
  bool has_header(std::string_view name) const {
    for (const auto& [n, v] : fields) {
      if (http::detail::iequals(n, name)) return true;
    }
    return false;
  }
};

/// Reads one response with the library's response parser, from the bytes in `buffer` (received earlier) and then
/// from `receive(data, size, ec)`, which blocks until it has put some bytes in `data` and returns how many, or sets
/// `ec`. Bytes after the response stay in `buffer` for the next one. Shared by the clients over TCP and over TLS.
/// Returns nullopt if the connection ended (or `receive` failed) before the response was whole, or it was malformed.
template <class Receive>
std::optional<raw_response> read_response_from(std::string& buffer, bool head_request, Receive&& receive) {
  http::response_parser parser(http::parser_limits{.max_body = 1ull << 32});
  if (head_request) parser.expect_head_response();
  raw_response r;
  bool have_header = false;
  for (;;) {
    std::error_code ec;
    for (;;) {
      const std::size_t n = parser.put(buffer, ec);
      if (ec) return std::nullopt;
      if (parser.header_done() && !have_header) {
        have_header = true;
        r.status = parser.status_code();
        r.keep_alive = parser.keep_alive();
        for (const auto& f : parser.fields()) r.fields.emplace_back(std::string(f.name), std::string(f.value));
      }
      r.body.append(parser.body_piece());
      buffer.erase(0, n);
      if (parser.done()) return r;
      if (n == 0) break;
    }
    char chunk[65536];
    const std::size_t got = receive(chunk, sizeof chunk, ec);
    if (ec) {
      // A response framed by the connection's end is whole at EOF.
      std::error_code eof_ec;
      parser.put_eof(eof_ec);
      if (!eof_ec && parser.done()) return r;
      return std::nullopt;
    }
    buffer.append(chunk, got);
  }
}

class raw_client {
 public:
  /// Connects to 127.0.0.1:`port`, from the loopback address `from` when one is given (any of 127.0.0.0/8: a
  /// second client address for the tests of per-address limits).
  explicit raw_client(std::uint16_t port, std::chrono::seconds timeout = std::chrono::seconds(10),
                      const char* from = nullptr)
      : socket_(ctx_) {
    if (from != nullptr) {
      socket_.open(asio::ip::tcp::v4());
      socket_.bind({asio::ip::make_address(from), 0});
    }
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
    set_timeout(timeout);
  }

  void set_timeout(std::chrono::milliseconds timeout) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }

  void send(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes.data(), bytes.size())); }

  /// Sends, ignoring a reset by the peer (for tests where the server may already have closed).
  bool try_send(std::string_view bytes) {
    std::error_code ec;
    asio::write(socket_, asio::buffer(bytes.data(), bytes.size()), ec);
    return !ec;
  }

  /// Reads one response (nullopt if the connection closed or the read timed out first).
  std::optional<raw_response> read_response(bool head_request = false) {
    auto receive_some = [this](char* data, std::size_t size, std::error_code& ec) { return receive(data, size, ec); };
    return read_response_from(buffer_, head_request, receive_some);
  }

  /// Reads until the peer closes the connection (or the read times out), returning everything; `ended_by`, when
  /// given, gets what ended it (`eof` for a FIN, `connection_reset` for a reset).
  std::string read_until_close(std::error_code* ended_by = nullptr) {
    std::string all = std::move(buffer_);
    buffer_.clear();
    for (;;) {
      char chunk[65536];
      std::error_code ec;
      const std::size_t got = receive(chunk, sizeof chunk, ec);
      if (ec) {
        if (ended_by != nullptr) *ended_by = ec;
        break;
      }
      all.append(chunk, got);
    }
    return all;
  }

  /// True when the server closed the connection: a read returns EOF (or a reset) within the timeout.
  bool closed_by_peer() {
    char c;
    std::error_code ec;
    receive(&c, 1, ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

  asio::ip::tcp::socket& socket() { return socket_; }

  /// Bytes received after the last response read (e.g. the first bytes of an upgraded protocol).
  std::string take_buffered() { return std::exchange(buffer_, std::string()); }
  /// Reads until at least `size` bytes (counting those already buffered) have arrived, or the read times out.
  std::string read_bytes(std::size_t size) {
    std::string out = take_buffered();
    char chunk[4096];
    while (out.size() < size) {
      std::error_code ec;
      const std::size_t got = receive(chunk, sizeof chunk, ec);
      if (ec) break;
      out.append(chunk, got);
    }
    return out;
  }

 private:
  // Plain recv(2): unlike Asio's synchronous reads (which poll without a timeout), it honours SO_RCVTIMEO.
  std::size_t receive(char* data, std::size_t size, std::error_code& ec) {
    for (;;) {
      const ssize_t n = ::recv(socket_.native_handle(), data, size, 0);
      if (n > 0) return static_cast<std::size_t>(n);
      if (n == 0) {
        ec = asio::error::eof;
        return 0;
      }
      if (errno == EINTR) continue;
      ec = (errno == EAGAIN || errno == EWOULDBLOCK) ? std::error_code(asio::error::timed_out)
                                                     : std::error_code(errno, asio::error::get_system_category());
      return 0;
    }
  }

  asio::io_context ctx_;
  asio::ip::tcp::socket socket_;
  std::string buffer_;
};

/// `body` in the chunked coding (RFC 9112 §7.1), cut into chunks of 1 to 5,000 bytes drawn from `rng`: the size in
/// hex (upper or lower case), `extension` (e.g. ";name=value") after every chunk of even size, and `trailer` (field
/// lines, each ending in CRLF) after the last chunk.
inline std::string chunked_body(std::string_view body, std::mt19937& rng, std::string_view extension,
                                std::string_view trailer = {}, bool upper_hex = false) {
  std::string out;
  for (std::size_t at = 0; at < body.size();) {
    const std::size_t chunk = std::min(body.size() - at, std::uniform_int_distribution<std::size_t>(1, 5000)(rng));
    char hex[20];
    std::snprintf(hex, sizeof hex, upper_hex ? "%zX" : "%zx", chunk);
    out.append(hex).append(chunk % 2 == 0 ? extension : std::string_view()).append("\r\n");
    out.append(body.substr(at, chunk)).append("\r\n");
    at += chunk;
  }
  return out.append("0\r\n").append(trailer).append("\r\n");
}

/// "GET <target> HTTP/1.1" with Host and optional extra fields.
inline std::string get_request(std::string_view target, std::string_view extra = {}) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: localhost\r\n" + std::string(extra) + "\r\n";
}

}  // namespace switchboard::test
