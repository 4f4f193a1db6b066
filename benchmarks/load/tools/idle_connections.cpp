// idle_connections: holds many idle keep-alive HTTP connections open to a server, so that
// benchmarks/load/memory.sh can measure the server's memory per idle connection.
//
// It opens the connections one after the other (so that the server's listen backlog never overflows and
// no SYN is retried), sends one GET on each and reads its whole response, so that the server has allocated
// whatever it keeps per connection after a request (buffers, parser, session object), not just an accepted
// socket. With --websocket PATH it opens a WebSocket on each instead (the opening handshake for PATH, RFC
// 6455 §4.1) and sends one 64-byte text message, which the server must echo (a WebSocket echo endpoint),
// for the same reason: the server then holds what it keeps per open WebSocket after a message. With
// --resp-subscribe PREFIX it speaks RESP instead (a Redis-protocol server: examples/broker, redis-server): each
// connection subscribes to a channel of its own, PREFIX followed by its index, and reads the confirmation. Then it
// prints "ready N" and holds them idle until SIGINT or SIGTERM. On the signal it checks
// every connection without blocking and prints "open N closed M": a connection the server has closed (an
// idle timeout, a limit) would make a memory figure taken while it was held meaningless.
//
// Usage: idle_connections --port PORT [--host ADDRESS] [--connections N] [--path PATH] [--websocket PATH]
//                         [--resp-subscribe PREFIX]
//   --port          server port (required)
//   --host          server address, numeric (default 127.0.0.1)
//   --connections   how many connections to hold (default 10000)
//   --path          the request target of the one request per connection (default /plaintext)
//   --websocket     hold WebSockets opened on this echo endpoint instead (e.g. /echo); --path is then unused
//   --resp-subscribe  hold RESP clients, each subscribed to PREFIX<index>, instead
// Exit status: 0 when every connection was still open at the end, 1 when the server closed any or a
// request failed (the reason goes to stderr), 2 for a usage error.
//
// The soft RLIMIT_NOFILE is raised to what N connections need when the hard limit allows it.
#include "ws_load_handshake.hpp"

#include <asio/buffer.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/write.hpp>

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <array>
#include <cctype>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct options {
  std::string host = "127.0.0.1";  ///< server address
  unsigned short port = 0;          ///< server port; 0 means not given
  std::size_t connections = 10000;  ///< connections to hold
  std::string path = "/plaintext";  ///< target of the one request per connection
  std::string websocket;            ///< when set: open WebSockets on this echo endpoint instead
  std::string resp_prefix;          ///< when set: RESP clients subscribed to this prefix and their index instead
};

/// Largest response head accepted; the benchmark endpoints send a few hundred bytes.
constexpr std::size_t max_head_bytes = 64 * 1024;

[[noreturn]] void usage_error(const std::string& message)
{
  std::cerr << "idle_connections: " << message
            << "\nusage: idle_connections --port PORT [--host ADDRESS] [--connections N] [--path PATH]"
               " [--websocket PATH] [--resp-subscribe PREFIX]\n";
  std::exit(2);
}

unsigned long parse_number(std::string_view text, unsigned long max, std::string_view flag)
{
  unsigned long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value > max) {
    usage_error("invalid value for " + std::string(flag) + ": " + std::string(text));
  }
  return value;
}

options parse_options(int argc, char** argv)
{
  options result;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) {
      usage_error("missing value after " + std::string(flag));
    }
    const std::string_view value = argv[++i];
    if (flag == "--host") {
      result.host = value;
    } else if (flag == "--port") {
      result.port = static_cast<unsigned short>(parse_number(value, 65535, flag));
    } else if (flag == "--connections") {
      result.connections = parse_number(value, 1'000'000, flag);
    } else if (flag == "--path") {
      result.path = value;
    } else if (flag == "--websocket") {
      result.websocket = value;
    } else if (flag == "--resp-subscribe") {
      result.resp_prefix = value;
    } else {
      usage_error("unknown flag " + std::string(flag));
    }
  }
  if (result.port == 0) {
    usage_error("--port is required");
  }
  if (result.connections == 0) {
    usage_error("--connections must be at least 1");
  }
  return result;
}

/// Raises the soft open-file limit to hold `connections` sockets plus stdio and a margin.
void raise_file_limit(std::size_t connections)
{
  const rlim_t needed = static_cast<rlim_t>(connections) + 64;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    throw std::runtime_error("getrlimit(RLIMIT_NOFILE) failed");
  }
  if (limit.rlim_cur >= needed) {
    return;
  }
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < needed) {
    throw std::runtime_error("holding " + std::to_string(connections) + " connections needs " +
                             std::to_string(needed) + " open files but the hard limit is " +
                             std::to_string(limit.rlim_max) + " (raise it, or ask for fewer connections)");
  }
  limit.rlim_cur = needed;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    throw std::runtime_error("setrlimit(RLIMIT_NOFILE) failed");
  }
}

bool iequals(std::string_view a, std::string_view b)
{
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

/// The Content-Length of a response head (status line and fields, up to the empty line). Only what the
/// benchmark endpoints send is supported: a 200 with a Content-Length (RFC 9112 §6.3), no chunked body.
std::size_t content_length_of(std::string_view head)
{
  if (head.size() < 12 || head.substr(0, 5) != "HTTP/" || head.substr(8, 4) != " 200") {
    throw std::runtime_error("expected a 200 response, got: " + std::string(head.substr(0, head.find('\r'))));
  }
  std::size_t line_start = head.find("\r\n") + 2;
  while (line_start < head.size()) {
    const std::size_t line_end = head.find("\r\n", line_start);
    const std::string_view line = head.substr(line_start, line_end - line_start);
    const std::size_t colon = line.find(':');
    if (colon != std::string_view::npos && iequals(line.substr(0, colon), "content-length")) {
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.remove_prefix(1);
      }
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
        value.remove_suffix(1);
      }
      std::size_t length = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
      if (ec != std::errc{} || end != value.data() + value.size()) {
        throw std::runtime_error("invalid Content-Length: " + std::string(value));
      }
      return length;
    }
    line_start = line_end + 2;
  }
  throw std::runtime_error("response without Content-Length (chunked or close-delimited bodies are not supported)");
}

/// Sends `request` on `socket` and reads one whole response into `scratch` (cleared first).
void exchange(asio::ip::tcp::socket& socket, std::string_view request, std::string& scratch)
{
  scratch.clear();
  asio::write(socket, asio::buffer(request));
  const std::size_t head_size = asio::read_until(socket, asio::dynamic_buffer(scratch, max_head_bytes), "\r\n\r\n");
  const std::size_t body_size = content_length_of(std::string_view(scratch).substr(0, head_size - 2));
  const std::size_t buffered = scratch.size() - head_size;
  if (buffered < body_size) {
    asio::read(socket, asio::dynamic_buffer(scratch), asio::transfer_exactly(body_size - buffered));
  }
}

/// Opens a WebSocket on `socket` at `path` and sends one 64-byte text message, which must come back.
void open_and_echo(asio::ip::tcp::socket& socket, const std::string& host_field, const std::string& path)
{
  std::string buffer = ws_load::open_websocket(socket, host_field, path);
  const std::string message(64, 'x');
  ws_load::send_message(socket, message);
  if (ws_load::read_message(socket, buffer) != message) {
    throw std::runtime_error("the echo differs from the message sent");
  }
  if (!buffer.empty()) {
    throw std::runtime_error("the server sent more than the echo");
  }
}

/// Subscribes `socket` to `channel` in RESP and reads the confirmation a Redis server sends.
void subscribe(asio::ip::tcp::socket& socket, const std::string& channel, std::string& scratch)
{
  const std::string length = std::to_string(channel.size());
  const std::string command = "*2\r\n$9\r\nSUBSCRIBE\r\n$" + length + "\r\n" + channel + "\r\n";
  const std::string expected = "*3\r\n$9\r\nsubscribe\r\n$" + length + "\r\n" + channel + "\r\n:1\r\n";
  asio::write(socket, asio::buffer(command));
  scratch.resize(expected.size());
  asio::read(socket, asio::buffer(scratch));
  if (scratch != expected) {
    throw std::runtime_error("unexpected answer to SUBSCRIBE: " + scratch);
  }
}

/// True while the server has neither closed nor reset `socket`; never blocks.
bool still_open(asio::ip::tcp::socket& socket)
{
  asio::error_code ec;
  socket.non_blocking(true, ec);
  std::array<char, 1> byte{};
  socket.read_some(asio::buffer(byte), ec);
  return ec == asio::error::would_block;
}

}  // namespace

int main(int argc, char** argv)
{
  const options config = parse_options(argc, argv);

  // Block the signals before anything else so that sigwait() receives them, whenever they arrive.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  asio::io_context context;
  std::vector<asio::ip::tcp::socket> sockets;
  std::size_t index = 0;
  try {
    raise_file_limit(config.connections);
    const asio::ip::tcp::endpoint server{asio::ip::make_address(config.host), config.port};
    const std::string request = "GET " + config.path + " HTTP/1.1\r\nHost: " + config.host + ":" +
                                std::to_string(config.port) + "\r\n\r\n";
    std::string scratch;
    sockets.reserve(config.connections);
    for (; index < config.connections; ++index) {
      asio::ip::tcp::socket& socket = sockets.emplace_back(context);
      socket.connect(server);
      if (!config.resp_prefix.empty()) {
        subscribe(socket, config.resp_prefix + std::to_string(index), scratch);
      } else if (!config.websocket.empty()) {
        open_and_echo(socket, config.host + ":" + std::to_string(config.port), config.websocket);
      } else {
        exchange(socket, request, scratch);
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "idle_connections: connection " << index << " of " << config.connections << ": " << e.what()
              << '\n';
    return 1;
  }
  std::cout << "ready " << sockets.size() << std::endl;

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);

  std::size_t open = 0;
  for (asio::ip::tcp::socket& socket : sockets) {
    open += still_open(socket) ? 1 : 0;
  }
  const std::size_t closed = sockets.size() - open;
  std::cout << "open " << open << " closed " << closed << std::endl;
  if (closed != 0) {
    std::cerr << "idle_connections: the server closed " << closed << " of " << sockets.size()
              << " connections while they were held\n";
    return 1;
  }
  return 0;
}
