// peer_beast_http: the Boost.Beast peer of the HTTP load benchmark (benchmarks/load/http.sh).
//
// A single-threaded keep-alive HTTP/1.1 server with the two endpoints every server in the benchmark serves:
//   GET /plaintext -> 200 "Hello, World!"               (text/plain)
//   GET /json      -> 200 {"message":"Hello, World!"}   (application/json)
// anything else is 404 (unknown target) or 405 (method other than GET).
//
// It is written the way Beast's own examples write a server, so that the comparison is with Beast as its
// authors recommend using it, not with a straw man:
// - the session structure of example/http/server/async: one shared_ptr session per connection over a
//   beast::tcp_stream with a 30 s timeout renewed on every read (the examples' choice, and switchboard's
//   servers time out idle connections by default too; --idle-timeout 0 drops it, see below), a
//   flat_buffer kept for the connection's lifetime
//   (so pipelined requests already buffered are parsed without another read), a fresh
//   request<string_body> per request, a response built by a handle_request function, and the loop
//   read -> write -> read while the request asks for keep-alive;
// - from example/http/server/fast: an io_context with concurrency hint 1 (one thread, no locking), and
//   the response kept in the session rather than in the async example's make_shared'd message per
//   request (the fast example also reuses its response storage);
// - TCP_NODELAY on accepted sockets, as nginx sets it by default on keep-alive connections (tcp_nodelay on),
//   so that a pipelined burst of small responses is not held back by Nagle's algorithm.
//
// Usage: peer_beast_http [--bind ADDRESS] [--port PORT] [--idle-timeout SECONDS]
//   --bind           address to listen on (default 127.0.0.1)
//   --port           port to listen on (default 8080; 0 picks a free port)
//   --idle-timeout   seconds a connection may stay silent (default 30). 0: no timeout at all, and a plain
//                    tcp::socket in place of beast::tcp_stream, as example/http/server/fast reads and
//                    writes; this shows what Beast's per-operation timeouts cost (http.sh's
//                    "beast-notimeout" server), and is not how a server exposed to clients should run.
// Prints "listening on http://ADDRESS:PORT" once accepting, and exits with status 0 on SIGINT or SIGTERM.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/version.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr std::string_view plaintext_body = "Hello, World!";
constexpr std::string_view json_body = R"({"message":"Hello, World!"})";

/// The response to one request; like the examples' handle_request, it builds a complete message.
http::response<http::string_body> handle_request(const http::request<http::string_body>& request)
{
  http::response<http::string_body> response{http::status::ok, request.version()};
  response.set(http::field::server, BOOST_BEAST_VERSION_STRING);
  response.keep_alive(request.keep_alive());
  if (request.method() != http::verb::get) {
    response.result(http::status::method_not_allowed);
    response.set(http::field::allow, "GET");
    response.set(http::field::content_type, "text/plain");
    response.body() = "Method Not Allowed";
  } else if (request.target() == "/plaintext") {
    response.set(http::field::content_type, "text/plain");
    response.body() = plaintext_body;
  } else if (request.target() == "/json") {
    response.set(http::field::content_type, "application/json");
    response.body() = json_body;
  } else {
    response.result(http::status::not_found);
    response.set(http::field::content_type, "text/plain");
    response.body() = "Not Found";
  }
  response.prepare_payload();
  return response;
}

/// One connection: read a request, write its response, and repeat while both sides keep the connection.
/// Stream is beast::tcp_stream (reads and writes time out) or tcp::socket (no timeouts).
template <class Stream>
class session : public std::enable_shared_from_this<session<Stream>> {
public:
  session(tcp::socket&& socket, std::chrono::seconds idle_timeout)
      : stream_(std::move(socket)), idle_timeout_(idle_timeout)
  {
  }

  /// Starts the read loop; the session keeps itself alive through the handlers it has in flight.
  void run() { do_read(); }

private:
  void do_read()
  {
    request_ = {};
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      stream_.expires_after(idle_timeout_);
    }
    http::async_read(stream_, buffer_, request_,
                     beast::bind_front_handler(&session::on_read, this->shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t /*bytes*/)
  {
    if (ec == http::error::end_of_stream) {
      return do_close();
    }
    if (ec) {
      return;  // reset, timeout or malformed request: the connection is dropped with the session
    }
    response_ = handle_request(request_);
    http::async_write(stream_, response_, beast::bind_front_handler(&session::on_write, this->shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t /*bytes*/)
  {
    if (ec) {
      return;
    }
    if (response_.need_eof()) {
      return do_close();
    }
    response_ = {};  // an idle connection holds no response, as the async example drops its message here
    do_read();
  }

  void do_close()
  {
    // Half-close so that the client reads the whole response before it sees the end of the stream.
    beast::error_code ec;
    socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  tcp::socket& socket()
  {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      return stream_.socket();
    } else {
      return stream_;
    }
  }

  Stream stream_;
  std::chrono::seconds idle_timeout_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

/// Accepts connections and starts a session on each, until the io_context stops.
class listener {
public:
  listener(net::io_context& context, const tcp::endpoint& endpoint, std::chrono::seconds idle_timeout)
      : context_(context), acceptor_(context), idle_timeout_(idle_timeout)
  {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(net::socket_base::max_listen_connections);
  }

  /// The bound endpoint (with the actual port when 0 was asked for).
  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

  /// Starts accepting.
  void run() { do_accept(); }

private:
  void do_accept()
  {
    acceptor_.async_accept(context_, [this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted) {
        return;
      }
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        if (idle_timeout_.count() > 0) {
          std::make_shared<session<beast::tcp_stream>>(std::move(socket), idle_timeout_)->run();
        } else {
          std::make_shared<session<tcp::socket>>(std::move(socket), idle_timeout_)->run();
        }
      }
      do_accept();  // a failed accept (EMFILE, ECONNABORTED) does not stop the server
    });
  }

  net::io_context& context_;
  tcp::acceptor acceptor_;
  std::chrono::seconds idle_timeout_;
};

[[noreturn]] void usage_error(const std::string& message)
{
  std::cerr << "peer_beast_http: " << message
            << "\nusage: peer_beast_http [--bind ADDRESS] [--port PORT] [--idle-timeout SECONDS]\n";
  std::exit(2);
}

unsigned long parse_number(const std::string& text, unsigned long max, std::string_view flag)
{
  char* end = nullptr;
  const unsigned long value = std::strtoul(text.c_str(), &end, 10);
  if (text.empty() || text.front() == '-' || *end != '\0' || value > max) {
    usage_error("invalid value for " + std::string(flag) + ": " + text);
  }
  return value;
}

}  // namespace

int main(int argc, char** argv)
{
  std::string bind = "127.0.0.1";
  unsigned long port = 8080;
  unsigned long idle_timeout = 30;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) {
      usage_error("missing value after " + std::string(flag));
    }
    const std::string value = argv[++i];
    if (flag == "--bind") {
      bind = value;
    } else if (flag == "--port") {
      port = parse_number(value, 65535, flag);
    } else if (flag == "--idle-timeout") {
      idle_timeout = parse_number(value, 86400, flag);
    } else {
      usage_error("unknown flag " + std::string(flag));
    }
  }

  try {
    net::io_context context{1};
    listener server{context, tcp::endpoint{net::ip::make_address(bind), static_cast<unsigned short>(port)},
                    std::chrono::seconds{idle_timeout}};
    server.run();

    net::signal_set signals{context, SIGINT, SIGTERM};
    signals.async_wait([&context](beast::error_code, int) { context.stop(); });

    const tcp::endpoint endpoint = server.local_endpoint();
    std::cout << "listening on http://" << endpoint.address().to_string() << ':' << endpoint.port() << std::endl;
    context.run();
  } catch (const std::exception& e) {
    std::cerr << "peer_beast_http: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
