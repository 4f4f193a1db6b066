// Helpers shared by the HTTP client's tests (client.cpp, client_pool_random.cpp): a completion handler that records
// what a request completed with, and a raw server on the test's io_context whose every answer the test scripts.
#pragma once

#include <switchboard/http/client.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace switchboard::test {

/// What one request completed with.
struct client_result {
  bool done = false;
  int calls = 0;  ///< times the completion handler ran: exactly once for every request
  std::error_code ec;
  http::client_response response;
};

/// A completion handler for http::client that fills `r`, which must outlive the request.
inline auto capture(client_result& r) {
  return [&r](std::error_code ec, http::client_response resp) {
    r.ec = ec;
    r.response = std::move(resp);
    r.done = true;
    ++r.calls;
  };
}

/// A raw server on the test's io_context: for each accepted connection, reads one request header and runs `script`
/// (which may answer, close, or do nothing).
class scripted_server {
 public:
  using script = std::function<void(asio::ip::tcp::socket&, std::size_t connection_index)>;
  scripted_server(asio::io_context& ctx, script s) : acceptor_(ctx, {asio::ip::make_address("127.0.0.1"), 0}), script_(std::move(s)) {
    accept();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::size_t connections() const { return count_; }
  std::string url(std::string_view path = "/") const { return "http://127.0.0.1:" + std::to_string(port()) + std::string(path); }

 private:
  void accept() {
    acceptor_.async_accept([this](std::error_code ec, asio::ip::tcp::socket socket) {
      if (ec) return;
      auto conn = std::make_shared<connection>(std::move(socket));
      const std::size_t index = count_++;
      asio::async_read_until(conn->socket, conn->received, "\r\n\r\n", [this, conn, index](std::error_code read_ec, std::size_t) {
        if (!read_ec) script_(conn->socket, index);
        kept_.push_back(conn);
      });
      accept();
    });
  }
  struct connection {
    explicit connection(asio::ip::tcp::socket s) : socket(std::move(s)) {}
    asio::ip::tcp::socket socket;
    asio::streambuf received;
  };
  asio::ip::tcp::acceptor acceptor_;
  script script_;
  std::size_t count_ = 0;
  std::vector<std::shared_ptr<connection>> kept_;  // keeps silent connections open until the test ends
};

/// Writes `response` whole (blocking: for answers small enough for the socket buffers).
inline void answer(asio::ip::tcp::socket& s, const std::string& response) {
  asio::write(s, asio::buffer(response));
}

/// A scripted server that holds every request unanswered (`held`, oldest first) until `answer_first` answers the
/// oldest with "ok" and closes its connection.
class holding_server {
 public:
  explicit holding_server(asio::io_context& ctx)
      : server_(ctx, [this](asio::ip::tcp::socket& s, std::size_t) { held_.push_back(&s); }) {}
  std::size_t held() const noexcept { return held_.size(); }
  std::string url(std::string_view path = "/") const { return server_.url(path); }
  void answer_first() {
    asio::ip::tcp::socket* s = held_.front();
    held_.erase(held_.begin());
    answer(*s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    s->close();
  }

 private:
  std::vector<asio::ip::tcp::socket*> held_;  // before the server, which refers to it
  scripted_server server_;
};

}  // namespace switchboard::test
