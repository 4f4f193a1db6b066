// A blocking HTTPS test client with raw_client's interface (send, read_response, read_bytes...), usable from two
// threads at once (one writing, one reading), and the steps of a TLS closure to check how a server ends a
// connection.
//
// Asio's blocking calls on one ssl::stream from two threads are not safe: a read and a write share the SSL object.
// Nor can one thread alternate blocking writes with reads: a server reads no more requests while its responses
// wait for the client to take them, so a write into full socket buffers would wait for good. So each operation runs
// as an asynchronous one on an I/O thread of the client's own, which alone touches the stream (ssl::stream allows
// one read and one write in flight together, and coordinates them on that thread); the calling thread waits for it,
// at most `timeout`, after which the socket's operations are cancelled and the caller sees an error (as raw_client's
// reads time out).
#pragma once

#include "support/raw_http.hpp"
#include "support/test_support.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/ssl/error.hpp>
#include <asio/ssl/host_name_verification.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <cstddef>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

namespace switchboard::test {

class tls_client {
 public:
  /// Connects to 127.0.0.1:`port` and completes the TLS handshake (throws std::system_error if it fails).
  explicit tls_client(std::uint16_t port, std::chrono::seconds timeout = std::chrono::seconds(10))
      : tls_(localhost_client_tls()), stream_(ctx_, *tls_), timeout_(timeout) {
    stream_.next_layer().connect({asio::ip::make_address("127.0.0.1"), port});
    // As the library's clients do: the name sent (SNI), and checked against the certificate.
    SSL_set_tlsext_host_name(stream_.native_handle(), "localhost");
    stream_.set_verify_callback(asio::ssl::host_name_verification("localhost"));
    io_thread_ = std::thread([this] { ctx_.run(); });
    const std::error_code ec = run_io([this](auto done) {
      stream_.async_handshake(asio::ssl::stream_base::client, [done](std::error_code e) { done(e, 0); });
    }).first;
    if (ec) {
      stop();
      throw std::system_error(ec, "TLS handshake");
    }
  }
  ~tls_client() { stop(); }
  tls_client(const tls_client&) = delete;
  tls_client& operator=(const tls_client&) = delete;

  /// Sends all of `bytes`; false if the connection failed first (or the write timed out).
  bool try_send(std::string_view bytes) {
    const auto write = [&](auto done) { asio::async_write(stream_, asio::buffer(bytes.data(), bytes.size()), done); };
    return !run_io(write).first;
  }

  /// Sends all of `bytes`; throws std::system_error if the connection failed first (or the write timed out).
  void send(std::string_view bytes) {
    if (!try_send(bytes)) throw std::system_error(asio::error::broken_pipe, "tls_client::send");
  }

  /// Reads one response (nullopt if the connection closed or a read timed out first).
  std::optional<raw_response> read_response(bool head_request = false) {
    auto receive_some = [this](char* data, std::size_t size, std::error_code& ec) { return receive(data, size, ec); };
    return read_response_from(buffer_, head_request, receive_some);
  }

  /// Bytes received after the last response read (e.g. the first bytes of an upgraded protocol).
  std::string take_buffered() { return std::exchange(buffer_, std::string()); }

  /// Reads until at least `size` bytes (counting those already buffered) have arrived, or the stream ends or a read
  /// times out.
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

  /// Reads on and says how the TLS stream ended: asio::error::eof when the server sent its closure alert
  /// (close_notify), asio::ssl::error::stream_truncated when it closed the connection without one; no error when
  /// more bytes came.
  std::error_code read_end() {
    char c;
    std::error_code ec;
    receive(&c, 1, ec);
    return ec;
  }

  /// True when the server ended the TLS stream with its closure alert within the timeout.
  bool closed_by_peer() { return read_end() == asio::error::eof; }

  /// Answers the server's closure alert with the client's own (after read_end gave eof); its error, if any.
  std::error_code send_closure_alert() {
    return run_io([this](auto done) { stream_.async_shutdown([done](std::error_code e) { done(e, 0); }); }).first;
  }

  /// After the closure: reads the TCP connection under the TLS stream until the server closes it (eof) or the read
  /// times out (operation_aborted).
  std::error_code read_transport_end() {
    for (;;) {
      char c[256];
      const auto [ec, n] = run_io([&](auto done) { stream_.next_layer().async_read_some(asio::buffer(c), done); });
      if (ec) return ec;
    }
  }

 private:
  // Starts an operation on the I/O thread with `start(done)`, where `done(ec, bytes)` is its completion handler, and
  // waits for it to complete; after `timeout_`, cancels it (and any other operation on the socket).
  template <class Start>
  std::pair<std::error_code, std::size_t> run_io(Start start) {
    std::promise<std::pair<std::error_code, std::size_t>> completed;
    auto result = completed.get_future();
    asio::post(ctx_, [&] { start([&completed](std::error_code ec, std::size_t n) { completed.set_value({ec, n}); }); });
    if (result.wait_for(timeout_) == std::future_status::timeout) {
      asio::post(ctx_, [this] {
        std::error_code ignored;
        stream_.next_layer().cancel(ignored);
      });
    }
    return result.get();
  }

  std::size_t receive(char* data, std::size_t size, std::error_code& ec) {
    const auto [error, n] = run_io([&](auto done) { stream_.async_read_some(asio::buffer(data, size), done); });
    ec = error;
    return n;
  }

  // Closes the socket on the I/O thread (no operation is in flight: each one is waited for), then ends that thread.
  void stop() {
    asio::post(ctx_, [this] {
      std::error_code ignored;
      stream_.next_layer().close(ignored);
    });
    work_.reset();
    io_thread_.join();
  }

  asio::io_context ctx_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(ctx_);
  std::shared_ptr<asio::ssl::context> tls_;
  asio::ssl::stream<asio::ip::tcp::socket> stream_;
  std::chrono::seconds timeout_;
  std::string buffer_;  // bytes received after the last response read
  std::thread io_thread_;
};

}  // namespace switchboard::test
