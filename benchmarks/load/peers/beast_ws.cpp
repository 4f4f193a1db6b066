// peer_beast_ws: the Boost.Beast WebSocket peer of benchmarks/load/ws.sh.
//
// A single-threaded WebSocket server with the three endpoints of the benchmark:
//   GET /echo       sends every message back (text as text, binary as binary)
//   GET /subscribe  receives every published message
//   GET /publish    every message received here is sent to all subscribers
// Any other target, or a request that is not a WebSocket upgrade, gets its connection closed.
//
// It is written the way Beast's own examples write a WebSocket server, so that the comparison is with Beast as
// its authors recommend using it:
// - from example/websocket/server/async: a session per connection over websocket::stream<beast::tcp_stream>
//   with the suggested server timeouts (`stream_base::timeout::suggested(role_type::server)`: 30 s for the
//   handshake, 300 s idle with keep-alive pings), a flat_buffer kept for the connection, and the loop
//   async_read -> async_write (the echo, with the type of the message read) -> async_read;
// - from example/advanced/server: the HTTP request is read first (http::async_read into a request), so
//   that the target decides the endpoint, then handed to async_accept;
// - from example/websocket/server/chat-multi: the broadcast. Subscribers are kept in a set; a published
//   message is made once into a shared_ptr<const std::string> and put on each subscriber's queue, which
//   the subscriber writes one message at a time (Beast allows one async_write in flight per stream). With
//   one thread no strand is needed;
// - an io_context with concurrency hint 1 (one thread, no locking), as example/http/server/fast does, and
//   TCP_NODELAY on accepted sockets.
// permessage-deflate stays off, as it is off by default in Beast, in the `ws` package and in switchboard.
//
// Usage: peer_beast_ws [--bind ADDRESS] [--port PORT]
// Prints "listening on http://ADDRESS:PORT" once accepting, and exits with status 0 on SIGINT or SIGTERM.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <string_view>

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

class ws_session;

/// The subscribers of /subscribe, which /publish sends to.
class subscribers {
public:
  void join(ws_session* s) { sessions_.insert(s); }
  void leave(ws_session* s) { sessions_.erase(s); }
  void send(const std::shared_ptr<const std::string>& message, bool text);

private:
  std::set<ws_session*> sessions_;
};

enum class endpoint { echo, subscribe, publish };

/// One WebSocket connection.
class ws_session : public std::enable_shared_from_this<ws_session> {
public:
  ws_session(tcp::socket&& socket, endpoint kind, subscribers& group)
      : ws_(std::move(socket)), kind_(kind), group_(group)
  {
  }

  ~ws_session()
  {
    if (kind_ == endpoint::subscribe) {
      group_.leave(this);
    }
  }

  /// Accepts the upgrade request already read, then starts the read loop.
  void run(http::request<http::string_body> request)
  {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.async_accept(request, beast::bind_front_handler(&ws_session::on_accept, shared_from_this()));
  }

  /// Queues a published message (subscribers only); written one at a time, in order.
  void send(std::shared_ptr<const std::string> message, bool text)
  {
    queue_.push_back({std::move(message), text});
    if (queue_.size() == 1) {
      write_next();
    }
  }

private:
  void on_accept(beast::error_code ec)
  {
    if (ec) {
      return;
    }
    if (kind_ == endpoint::subscribe) {
      group_.join(this);
    }
    do_read();
  }

  void do_read() { ws_.async_read(buffer_, beast::bind_front_handler(&ws_session::on_read, shared_from_this())); }

  void on_read(beast::error_code ec, std::size_t /*bytes*/)
  {
    if (ec) {
      return;  // closed, reset or timed out: the session ends with its last handler
    }
    switch (kind_) {
    case endpoint::echo:
      ws_.text(ws_.got_text());
      ws_.async_write(buffer_.data(), beast::bind_front_handler(&ws_session::on_echo, shared_from_this()));
      return;
    case endpoint::publish:
      group_.send(std::make_shared<const std::string>(beast::buffers_to_string(buffer_.data())), ws_.got_text());
      break;
    case endpoint::subscribe:
      break;  // subscribers have nothing to say
    }
    buffer_.consume(buffer_.size());
    do_read();
  }

  void on_echo(beast::error_code ec, std::size_t /*bytes*/)
  {
    if (ec) {
      return;
    }
    buffer_.consume(buffer_.size());
    do_read();
  }

  void write_next()
  {
    ws_.text(queue_.front().text);
    ws_.async_write(net::buffer(*queue_.front().message),
                    beast::bind_front_handler(&ws_session::on_sent, shared_from_this()));
  }

  void on_sent(beast::error_code ec, std::size_t /*bytes*/)
  {
    if (ec) {
      return;
    }
    queue_.pop_front();
    if (!queue_.empty()) {
      write_next();
    }
  }

  struct queued {
    std::shared_ptr<const std::string> message;
    bool text;
  };

  websocket::stream<beast::tcp_stream> ws_;
  endpoint kind_;
  subscribers& group_;
  beast::flat_buffer buffer_;
  std::deque<queued> queue_;
};

void subscribers::send(const std::shared_ptr<const std::string>& message, bool text)
{
  for (ws_session* s : sessions_) {
    s->send(message, text);
  }
}

/// Reads the HTTP upgrade request, then hands the socket to a WebSocket session for its target.
class http_session : public std::enable_shared_from_this<http_session> {
public:
  http_session(tcp::socket&& socket, subscribers& group) : stream_(std::move(socket)), group_(group) {}

  void run()
  {
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, request_, beast::bind_front_handler(&http_session::on_read, shared_from_this()));
  }

private:
  void on_read(beast::error_code ec, std::size_t /*bytes*/)
  {
    if (ec || !websocket::is_upgrade(request_)) {
      return;  // not a WebSocket request: the connection closes with the session
    }
    const std::string_view target(request_.target().data(), request_.target().size());
    endpoint kind = endpoint::echo;
    if (target == "/subscribe") {
      kind = endpoint::subscribe;
    } else if (target == "/publish") {
      kind = endpoint::publish;
    } else if (target != "/echo") {
      return;
    }
    // The WebSocket stream has its own timeouts: the TCP stream's must not close it.
    stream_.expires_never();
    std::make_shared<ws_session>(stream_.release_socket(), kind, group_)->run(std::move(request_));
  }

  beast::tcp_stream stream_;
  subscribers& group_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
};

/// Accepts connections and starts a session on each, until the io_context stops.
class listener {
public:
  listener(net::io_context& context, const tcp::endpoint& endpoint, subscribers& group)
      : context_(context), acceptor_(context), group_(group)
  {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(net::socket_base::max_listen_connections);
  }

  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

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
        std::make_shared<http_session>(std::move(socket), group_)->run();
      }
      do_accept();  // a failed accept (EMFILE, ECONNABORTED) does not stop the server
    });
  }

  net::io_context& context_;
  tcp::acceptor acceptor_;
  subscribers& group_;
};

[[noreturn]] void usage_error(const std::string& message)
{
  std::cerr << "peer_beast_ws: " << message << "\nusage: peer_beast_ws [--bind ADDRESS] [--port PORT]\n";
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv)
{
  std::string bind = "127.0.0.1";
  unsigned long port = 8080;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) {
      usage_error("missing value after " + std::string(flag));
    }
    const std::string value = argv[++i];
    if (flag == "--bind") {
      bind = value;
    } else if (flag == "--port") {
      char* end = nullptr;
      port = std::strtoul(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || port > 65535) {
        usage_error("invalid port: " + value);
      }
    } else {
      usage_error("unknown flag " + std::string(flag));
    }
  }

  try {
    // Sessions still open at the end are destroyed with the io_context, and leave the group then: it must
    // outlive the io_context.
    subscribers group;
    net::io_context context{1};
    listener server{context, tcp::endpoint{net::ip::make_address(bind), static_cast<unsigned short>(port)}, group};
    server.run();
    net::signal_set signals{context, SIGINT, SIGTERM};
    signals.async_wait([&context](beast::error_code, int) { context.stop(); });
    const tcp::endpoint endpoint = server.local_endpoint();
    std::cout << "listening on http://" << endpoint.address().to_string() << ':' << endpoint.port() << std::endl;
    context.run();
  } catch (const std::exception& e) {
    std::cerr << "peer_beast_ws: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
