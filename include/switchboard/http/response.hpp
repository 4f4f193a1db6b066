// switchboard/http/response.hpp
//
// `response`: what a handler returns. A status, header fields (validated, see header_block.hpp) and a body: in
// memory, or streamed: by a producer coroutine that writes to a `body_writer` as the peer makes room, or by a
// `body_stream_handler` that the server calls back (body_stream.hpp).
// The server adds Date, Content-Length (or Transfer-Encoding: chunked for streamed bodies) and Connection.
#pragma once

#include <switchboard/core/shared_bytes.hpp>
#include <switchboard/http/body_stream.hpp>
#include <switchboard/http/body_writer.hpp>
#include <switchboard/http/header_block.hpp>
#include <switchboard/http/problem.hpp>
#include <switchboard/http/status.hpp>
#include <switchboard/http/upgrade.hpp>

#include <asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace switchboard::http {

/// Produces a streamed body by writing to the writer; runs on the connection's executor. Returning ends the body.
/// An exception ends the connection (the head has already been sent) and is logged.
using body_producer = std::function<asio::awaitable<void>(body_writer&)>;

class response {
 public:
  /// 200 OK with no body.
  response() = default;
  explicit response(http::status s) : status_(s) {}
  response(http::status s, std::string body, std::string_view content_type) : status_(s), body_(std::move(body)) {
    headers_.set("Content-Type", content_type);
  }

  /// `text/plain; charset=utf-8`.
  static response text(std::string body, http::status s = http::status::ok) {
    return response(s, std::move(body), "text/plain; charset=utf-8");
  }
  /// `text/html; charset=utf-8`.
  static response html(std::string body, http::status s = http::status::ok) {
    return response(s, std::move(body), "text/html; charset=utf-8");
  }
  /// `application/json`, serialised compactly.
  static response json(const nlohmann::json& value, http::status s = http::status::ok) {
    return response(s, value.dump(), "application/json");
  }
  /// `application/problem+json` (RFC 9457) with the problem's status. Bytes of the texts that are not UTF-8 are
  /// sent as U+FFFD.
  static response problem(const http::problem& p) {
    // Not the strict dump, which throws on invalid UTF-8: a detail often quotes the request ("no user %FF"), and the
    // server builds this response from a thrown `problem_error` in its own exception handler, where a second
    // exception would escape the event loop and end the process.
    return response(p.status, p.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                    "application/problem+json");
  }
  /// A problem with just a status and a detail message.
  static response problem(http::status s, std::string detail) {
    return problem(http::problem{.status = s, .detail = std::move(detail)});
  }
  /// A redirect (301, 302, 303, 307, 308) to `location`.
  static response redirect(std::string_view location, http::status s = http::status::found) {
    response r(s);
    r.headers_.set("Location", location);
    return r;
  }
  /// A streamed body: the server sends the head with `Transfer-Encoding: chunked` and runs `producer`.
  static response stream(std::string_view content_type, body_producer producer, http::status s = http::status::ok) {
    response r(s);
    r.headers_.set("Content-Type", content_type);
    r.producer_ = std::move(producer);
    return r;
  }
  /// A streamed body written by `handler` from the server's callbacks (body_stream.hpp), with no coroutine.
  static response stream(std::string_view content_type, std::shared_ptr<body_stream_handler> handler,
                         http::status s = http::status::ok) {
    response r(s);
    r.headers_.set("Content-Type", content_type);
    r.stream_handler_ = std::move(handler);
    return r;
  }

  /// 101 Switching Protocols to `protocol` (the `Upgrade` field): after writing it the server hands the
  /// connection to `handler`. Add the protocol's own fields (Sec-WebSocket-Accept, ...) with `set`.
  static response upgrade(std::string_view protocol, upgrade_handler handler) {
    response r(http::status::switching_protocols);
    r.headers_.set("Upgrade", protocol);
    r.upgrade_ = std::move(handler);
    return r;
  }

  http::status status() const noexcept { return status_; }
  response& set_status(http::status s) noexcept {
    status_ = s;
    return *this;
  }

  header_block& headers() noexcept { return headers_; }
  const header_block& headers() const noexcept { return headers_; }
  /// Sets a header field (replacing others of that name). Throws `std::invalid_argument` for CR/LF and the like.
  response& set(std::string_view name, std::string_view value) {
    headers_.set(name, value);
    return *this;
  }

  /// The body set as a string (empty when the body is shared, see below).
  std::string& body() noexcept { return body_; }
  const std::string& body() const noexcept { return body_; }
  response& set_body(std::string body, std::string_view content_type) {
    body_ = std::move(body);
    shared_body_ = shared_bytes();
    headers_.set("Content-Type", content_type);
    return *this;
  }
  /// A body shared with other responses: one answer encoded once for many clients (the long-poll endpoint's
  /// answers to a publish). The server writes it from `bytes`, without a copy from 512 bytes on. Replaces the body
  /// set as a string.
  response& set_body(shared_bytes bytes, std::string_view content_type) {
    body_.clear();
    shared_body_ = std::move(bytes);
    headers_.set("Content-Type", content_type);
    return *this;
  }
  const shared_bytes& shared_body() const noexcept { return shared_body_; }
  /// The body's length: `body()` and then `shared_body()`, which is what the server sends.
  std::size_t body_size() const noexcept { return body_.size() + shared_body_.size(); }

  /// Asks the server to close the connection after this response.
  response& close_connection(bool close = true) noexcept {
    close_ = close;
    return *this;
  }
  bool closes_connection() const noexcept { return close_; }

  bool is_streamed() const noexcept { return producer_ || stream_handler_; }
  bool is_upgrade() const noexcept { return static_cast<bool>(upgrade_); }
  upgrade_handler& upgrade_target() noexcept { return upgrade_; }
  body_producer& producer() noexcept { return producer_; }
  std::shared_ptr<body_stream_handler>& stream_handler() noexcept { return stream_handler_; }

 private:
  http::status status_ = http::status::ok;
  bool close_ = false;
  header_block headers_;
  std::string body_;
  shared_bytes shared_body_;
  body_producer producer_;
  std::shared_ptr<body_stream_handler> stream_handler_;
  upgrade_handler upgrade_;
};

}  // namespace switchboard::http
