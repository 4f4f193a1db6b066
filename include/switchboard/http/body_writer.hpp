// switchboard/http/body_writer.hpp
//
// `body_writer`: what a streamed response body writes to. The server hands one to the response's body producer
// (see `response::stream`) once the response head has been sent; each write is sent as one chunk (RFC 9112 §7.1)
// to HTTP/1.1 clients, or raw to HTTP/1.0 clients, whose connection then ends with the body.
//
// Backpressure: a write completes only when its bytes have been handed to the socket, so a producer that awaits
// each write never gets more than one write ahead of a slow peer.
#pragma once

#include <switchboard/core/detail/pending_handler.hpp>
#include <switchboard/core/shared_bytes.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>

#include <string_view>
#include <system_error>

namespace switchboard::http {

class body_writer {
 public:
  virtual ~body_writer() = default;

  /// Writes `data` (copied into the connection's write buffer). Completion signature: `void(std::error_code)`;
  /// fails when the peer has gone or the write deadline passed. Must be called on the connection's executor
  /// (where the producer runs), one write at a time. Cancellation: not supported; the connection's write timeout
  /// bounds the wait.
  template <class Token>
  auto async_write(std::string_view data, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler, std::string_view d) { start_write(d, {}, completion(std::move(handler), get_executor())); },
        token, data);
  }

  /// Writes shared bytes without copying them (an event encoded once for many clients).
  template <class Token>
  auto async_write(shared_bytes data, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler, shared_bytes d) {
          const std::string_view v = d.view();
          start_write(v, std::move(d), completion(std::move(handler), get_executor()));
        },
        token, std::move(data));
  }

  /// True once the peer has gone (a write would fail); lets a producer stop waiting for data early.
  virtual bool closed() const noexcept = 0;

  /// The connection's executor.
  virtual asio::any_io_executor get_executor() const = 0;

 protected:
  using completion = switchboard::detail::pending_handler<void(std::error_code)>;
  // Sends `data` (kept alive by `owner` when it is shared, else copied before returning) and completes `done`.
  virtual void start_write(std::string_view data, shared_bytes owner, completion done) = 0;
};

}  // namespace switchboard::http
