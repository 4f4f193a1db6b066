// ws_load: the WebSocket load client of benchmarks/load/ws.sh.
//
// One thread, one Asio io_context, raw TCP sockets driven by switchboard's sans-I/O frame codec
// (ws/frame_writer.hpp masks each client frame with a fresh key, RFC 6455 §5.3; ws/frame_parser.hpp reads the
// server's frames strictly, so a server that sends malformed frames fails the run). It batches both ways so
// that it is not the bottleneck: each read takes whatever the socket holds and parses every frame in it, and
// the frames it answers with are gathered into one write per connection (a write in progress collects the
// next batch behind it). It reports its own CPU time over the measured window next to the server's.
//
// Modes (every message is a text message of --size bytes carrying its sequence number and send time, see
// fanout.hpp):
//   echo       N connections to --path (default /echo); each keeps --in-flight messages outstanding and sends
//              a new one for each echo it gets (a closed loop). Counts round trips inside the window and the
//              latency of each, from its send to its echo.
//   broadcast  N subscriber connections to --subscribe-path (default /subscribe) and one publisher connection
//              to --publish-path (default /publish). The server is expected to send every message the
//              publisher sends to every subscriber. One publish at a time: the next goes out when every
//              subscriber got the current one (or after --publish-timeout, and the missing deliveries count
//              as lost). Counts deliveries inside the window and the latency of each, from the publish's
//              send to its receipt.
//   --check    echo: one message on one connection to --path must come back unchanged; broadcast: one
//              message sent by a publisher must reach a subscriber unchanged. Prints "ok".
//
// Connections are opened one after the other (blocking, bounded by --connect-timeout in all) before the
// load starts, so the listen backlog never overflows; then --warmup seconds unmeasured, then --duration
// seconds measured; then it stops by itself, whatever the server does. Prints a summary and one
// `SB_LOAD key=value ...` line for scripts (fanout.hpp: print_report).
//
// Usage: ws_load --port PORT [options]; --help lists them (usage_text below).
// Exit status: 0 when the run completed with messages and no error (or the check passed), 1 otherwise (the
// reason on stderr), 2 for a usage error.
#include "command_line.hpp"
#include "fanout.hpp"
#include "latency_histogram.hpp"
#include "process_cpu.hpp"
#include "ws_load_handshake.hpp"

#include <switchboard/ws/frame_parser.hpp>
#include <switchboard/ws/frame_writer.hpp>

#include <asio/buffer.hpp>
#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace ws = switchboard::ws;
using asio::ip::tcp;
using load_tools::clock_type;

enum class mode { echo, broadcast };

struct options {
  mode run_mode = mode::echo;
  bool check = false;
  std::string host = "127.0.0.1";
  unsigned port = 0;                        ///< 0: not given
  std::string path = "/echo";
  std::string subscribe_path = "/subscribe";
  std::string publish_path = "/publish";
  unsigned connections = 50;
  unsigned in_flight = 1;
  unsigned size = 64;
  unsigned duration_s = 5;
  unsigned warmup_s = 1;
  unsigned connect_timeout_s = 120;
  unsigned publish_timeout_ms = 5000;
  std::vector<int> measure_pids;
};

constexpr const char* usage_text =
    "usage: ws_load --port PORT [options]\n"
    "  --mode echo|broadcast   what to measure (default echo)\n"
    "  --check                 echo: one message to --path must come back unchanged; broadcast: one message\n"
    "                          from a publisher must reach a subscriber unchanged\n"
    "  --host ADDRESS          server IPv4 address, numeric (default 127.0.0.1)\n"
    "  --port PORT             server port (required)\n"
    "  --path PATH             echo endpoint (default /echo)\n"
    "  --subscribe-path PATH   broadcast: where subscribers connect (default /subscribe)\n"
    "  --publish-path PATH     broadcast: where the publisher connects (default /publish)\n"
    "  --connections N         echo: connections; broadcast: subscribers (default 50, at most 100000)\n"
    "  --in-flight D           echo: messages outstanding per connection (default 1, at most 1024)\n"
    "  --size BYTES            message size (default 64, 34 to 65536)\n"
    "  --duration S            measured seconds (default 5, 1 to 3600)\n"
    "  --warmup S              unmeasured seconds of load first (default 1, 0 to 600)\n"
    "  --connect-timeout S     how long opening all connections may take (default 120)\n"
    "  --publish-timeout MS    broadcast: how long a publish may wait for its deliveries (default 5000)\n"
    "  --measure-pids LIST     comma-separated pids whose CPU time is read over the measured window\n";

const load_tools::command_line cli("ws_load", usage_text);

options parse_options(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--check") {
      o.check = true;
      continue;
    }
    if (flag == "-h" || flag == "--help") cli.help();
    if (i + 1 >= argc) cli.usage_error("missing value after " + std::string(flag));
    const std::string_view value = argv[++i];
    if (flag == "--mode") {
      if (value != "echo" && value != "broadcast") cli.usage_error("--mode is echo or broadcast");
      o.run_mode = value == "echo" ? mode::echo : mode::broadcast;
    } else if (flag == "--host") {
      o.host = value;
    } else if (flag == "--port") {
      o.port = cli.number(value, 1, 65535, flag);
    } else if (flag == "--path") {
      o.path = value;
    } else if (flag == "--subscribe-path") {
      o.subscribe_path = value;
    } else if (flag == "--publish-path") {
      o.publish_path = value;
    } else if (flag == "--connections") {
      o.connections = cli.number(value, 1, 100000, flag);
    } else if (flag == "--in-flight") {
      o.in_flight = cli.number(value, 1, 1024, flag);
    } else if (flag == "--size") {
      o.size = cli.number(value, load_tools::stamp_bytes, 65536, flag);
    } else if (flag == "--duration") {
      o.duration_s = cli.number(value, 1, 3600, flag);
    } else if (flag == "--warmup") {
      o.warmup_s = cli.number(value, 0, 600, flag);
    } else if (flag == "--connect-timeout") {
      o.connect_timeout_s = cli.number(value, 1, 3600, flag);
    } else if (flag == "--publish-timeout") {
      o.publish_timeout_ms = cli.number(value, 1, 600000, flag);
    } else if (flag == "--measure-pids") {
      o.measure_pids = cli.pid_list(value, flag);
    } else {
      cli.usage_error("unknown option " + std::string(flag));
    }
  }
  if (o.port == 0) cli.usage_error("--port is required");
  for (const std::string* p : {&o.path, &o.subscribe_path, &o.publish_path}) {
    if (p->empty() || p->front() != '/' || p->find_first_of(" \t\r\n") != std::string::npos) {
      cli.usage_error("paths must start with / and hold no whitespace");
    }
  }
  return o;
}

class load;

/// One WebSocket connection in the load: reads and parses everything that arrives, hands each whole
/// message to the load, and writes what the load queued, one write at a time with the next batch
/// gathering behind it.
class connection {
 public:
  connection(tcp::socket socket, std::string leftover, load& owner, bool publisher)
      : socket_(std::move(socket)), owner_(owner), publisher_(publisher) {
    in_.resize(std::max<std::size_t>(64 * 1024, leftover.size()));
    std::copy(leftover.begin(), leftover.end(), in_.begin());
    in_size_ = leftover.size();
  }

  /// Queues one text message (a masked frame) for the next write.
  void queue(std::string_view payload) {
    const std::size_t at = pending_.size();
    pending_.resize(at + writer_.frame_size(payload.size()));
    writer_.write_frame(std::span<char>(pending_.data() + at, pending_.size() - at), ws::opcode::text, payload);
  }

  /// Writes what was queued, unless a write is in progress (its completion writes it then).
  void flush();

  /// Starts reading; bytes that came with the handshake are parsed first.
  void start();

  bool failed() const { return failed_; }
  bool publisher() const { return publisher_; }

 private:
  void read();
  void on_bytes();
  void fail(const std::string& why);

  tcp::socket socket_;
  load& owner_;
  bool publisher_;
  ws::frame_parser parser_{ws::role::client};
  ws::frame_writer writer_{ws::role::client};
  std::vector<char> in_;
  std::size_t in_size_ = 0;
  std::string message_;   // a message whose frames came in several reads
  std::string writing_;   // the bytes of the write in progress
  std::string pending_;   // frames queued behind it
  bool write_busy_ = false;
  bool failed_ = false;
};

/// A run: the connections, the schedule, the counts.
class load {
 public:
  explicit load(const options& o) : o_(o), tracker_(o.connections, std::chrono::milliseconds(o.publish_timeout_ms)) {}

  /// Opens every connection (blocking, one after the other). False, with the reason on stderr, on failure.
  bool connect_all() {
    const auto deadline = clock_type::now() + std::chrono::seconds(o_.connect_timeout_s);
    const tcp::endpoint server{asio::ip::make_address(o_.host), static_cast<unsigned short>(o_.port)};
    const std::string host_field = o_.host + ":" + std::to_string(o_.port);
    const bool broadcast = o_.run_mode == mode::broadcast;
    const std::size_t total = o_.connections + (broadcast ? 1 : 0);
    connections_.reserve(total);
    for (std::size_t i = 0; i < total; ++i) {
      if (clock_type::now() > deadline) {
        std::fprintf(stderr, "ws_load: opening %zu connections took over %u s\n", total, o_.connect_timeout_s);
        return false;
      }
      // In a broadcast run the publisher connects last, so that every subscriber is there before it.
      const bool publisher = broadcast && i == o_.connections;
      const std::string& path = broadcast ? (publisher ? o_.publish_path : o_.subscribe_path) : o_.path;
      try {
        tcp::socket socket(context_);
        socket.connect(server);
        socket.set_option(tcp::no_delay(true));
        std::string leftover = ws_load::open_websocket(socket, host_field, path);
        connections_.push_back(std::make_unique<connection>(std::move(socket), std::move(leftover), *this, publisher));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "ws_load: connection %zu of %zu (%s): %s\n", i + 1, total, path.c_str(), e.what());
        return false;
      }
    }
    return true;
  }

  /// Runs the warm-up and the measured window; returns the exit status after printing the report.
  int run() {
    const auto now = clock_type::now();
    window_ = {now + std::chrono::seconds(o_.warmup_s), now + std::chrono::seconds(o_.warmup_s + o_.duration_s)};
    for (auto& c : connections_) c->start();
    if (o_.run_mode == mode::echo) {
      for (auto& c : connections_) {
        for (unsigned k = 0; k < o_.in_flight; ++k) send_stamped(*c, 0);
        c->flush();
      }
    } else {
      publish();
      arm_publish_watch();
    }
    asio::steady_timer start_timer(context_, window_.start), end_timer(context_, window_.end);
    start_timer.async_wait([this](std::error_code) {
      cpu_before_ = load_tools::own_cpu_us();
      if (!o_.measure_pids.empty()) server_before_ = load_tools::processes_cpu_us(o_.measure_pids);
    });
    end_timer.async_wait([this](std::error_code) {
      cpu_after_ = load_tools::own_cpu_us();
      if (!o_.measure_pids.empty()) server_after_ = load_tools::processes_cpu_us(o_.measure_pids);
      context_.stop();
    });
    context_.run();

    std::uint64_t errors = 0;
    for (auto& c : connections_) errors += c->failed() ? 1 : 0;
    const bool echo = o_.run_mode == mode::echo;
    const std::int64_t server_cpu = server_before_ >= 0 && server_after_ >= 0 ? server_after_ - server_before_ : -1;
    load_tools::print_report({"ws_load", echo ? "echo" : "broadcast", o_.connections, echo ? o_.in_flight : 1,
                              echo ? round_trips_ : tracker_.deliveries(), echo ? 0 : tracker_.completed(),
                              tracker_.lost(), errors, window_.duration_us(), cpu_after_ - cpu_before_, server_cpu,
                              echo ? &latency_ : &tracker_.latency()});
    if (!o_.measure_pids.empty() && server_cpu < 0) {
      std::fprintf(stderr, "ws_load: a measured process could not be read (did it exit?)\n");
      return 1;
    }
    const std::uint64_t counted = echo ? round_trips_ : tracker_.deliveries();
    return counted > 0 && errors == 0 && tracker_.lost() == 0 ? 0 : 1;
  }

  asio::io_context& context() { return context_; }

  /// A whole message arrived on `c` at `now`. False when it is not one this client sent.
  bool on_message(connection& c, std::string_view payload, clock_type::time_point now) {
    std::uint64_t seq = 0, sent_ns = 0;
    if (!load_tools::read_payload(payload, seq, sent_ns) || payload.size() != o_.size) return false;
    if (o_.run_mode == mode::echo) {
      if (window_.contains(now)) {
        ++round_trips_;
        latency_.record(load_tools::to_ns(now) - sent_ns);
      }
      send_stamped(c, seq + 1);  // flushed by the connection once the whole read is handled
      return true;
    }
    if (!c.publisher() && tracker_.deliver(seq, sent_ns, now, window_)) publish();
    return true;
  }

 private:
  void send_stamped(connection& c, std::uint64_t seq) {
    load_tools::make_payload(payload_, o_.size, seq, load_tools::to_ns(clock_type::now()));
    c.queue(payload_);
  }

  void publish() {
    connection& publisher = *connections_.back();
    const auto now = clock_type::now();
    load_tools::make_payload(payload_, o_.size, tracker_.begin_publish(now), load_tools::to_ns(now));
    publisher.queue(payload_);
    publisher.flush();
  }

  // Every 50 ms: a publish that waited past its timeout is given up and the next goes out.
  void arm_publish_watch() {
    publish_watch_.expires_after(std::chrono::milliseconds(50));
    publish_watch_.async_wait([this](std::error_code ec) {
      if (ec) return;
      if (tracker_.expired(clock_type::now())) {
        tracker_.give_up(window_);
        publish();
      }
      arm_publish_watch();
    });
  }

  const options& o_;
  asio::io_context context_{1};
  std::vector<std::unique_ptr<connection>> connections_;
  load_tools::window window_{};
  load_tools::fanout_tracker tracker_;
  asio::steady_timer publish_watch_{context_};
  http_load::latency_histogram latency_;
  std::uint64_t round_trips_ = 0;
  std::string payload_;
  std::int64_t cpu_before_ = 0, cpu_after_ = 0, server_before_ = -1, server_after_ = -1;
};

void connection::start() {
  if (in_size_ > 0) {
    on_bytes();
  } else {
    read();
  }
}

void connection::read() {
  if (in_.size() - in_size_ < 16 * 1024) in_.resize(in_.size() * 2);
  socket_.async_read_some(asio::buffer(in_.data() + in_size_, in_.size() - in_size_),
                          [this](std::error_code ec, std::size_t n) {
                            if (ec) return fail(ec == asio::error::eof ? "the server closed the connection" : ec.message());
                            in_size_ += n;
                            on_bytes();
                          });
}

void connection::on_bytes() {
  const auto now = clock_type::now();
  std::size_t pos = 0;
  for (;;) {
    const ws::parse_result r = parser_.parse(std::span<char>(in_.data() + pos, in_size_ - pos));
    pos += r.consumed;
    switch (r.event) {
      case ws::parse_event::need_more:
        std::memmove(in_.data(), in_.data() + pos, in_size_ - pos);
        in_size_ -= pos;
        flush();
        return read();
      case ws::parse_event::data:
        if (!r.message_end) {
          message_.append(r.payload);
          break;
        }
        if (!message_.empty()) message_.append(r.payload);
        if (!owner_.on_message(*this, message_.empty() ? r.payload : std::string_view(message_), now)) {
          return fail("a message this client did not send (" + std::to_string(r.payload.size()) + " bytes)");
        }
        message_.clear();
        break;
      case ws::parse_event::ping: {
        // Answer at once, as RFC 6455 §5.5.2 asks; the pong joins the next write.
        const std::size_t at = pending_.size();
        pending_.resize(at + writer_.frame_size(r.payload.size()));
        writer_.write_pong(std::span<char>(pending_.data() + at, pending_.size() - at), r.payload);
        break;
      }
      case ws::parse_event::pong:
        break;
      case ws::parse_event::close:
        return fail("the server sent a close frame (code " + std::to_string(static_cast<int>(r.code)) + ")");
      case ws::parse_event::error:
        return fail("bad frame from the server: " + r.error.message());
    }
  }
}

void connection::flush() {
  if (write_busy_ || pending_.empty() || failed_) return;
  writing_.swap(pending_);
  pending_.clear();
  write_busy_ = true;
  asio::async_write(socket_, asio::buffer(writing_), [this](std::error_code ec, std::size_t) {
    write_busy_ = false;
    if (ec) return fail(ec.message());
    flush();
  });
}

void connection::fail(const std::string& why) {
  if (failed_) return;
  failed_ = true;
  std::fprintf(stderr, "ws_load: a %s connection failed: %s\n", publisher_ ? "publisher" : "client", why.c_str());
  std::error_code ignored;
  socket_.close(ignored);
}

/// --check: in echo mode, one message on one connection to --path must come back unchanged; in broadcast
/// mode, a message sent by a publisher must reach a subscriber unchanged.
int run_check(const options& o, bool broadcast) {
  try {
    asio::io_context context;
    const tcp::endpoint server{asio::ip::make_address(o.host), static_cast<unsigned short>(o.port)};
    const std::string host_field = o.host + ":" + std::to_string(o.port);
    tcp::socket receiver(context), sender(context);
    receiver.connect(server);
    std::string buffer = ws_load::open_websocket(receiver, host_field, broadcast ? o.subscribe_path : o.path);
    tcp::socket& from = broadcast ? sender : receiver;
    if (broadcast) {
      sender.connect(server);
      ws_load::open_websocket(sender, host_field, o.publish_path);
    }
    std::string payload;
    load_tools::make_payload(payload, o.size, 1, load_tools::to_ns(clock_type::now()));
    ws_load::send_message(from, payload);
    if (ws_load::read_message(receiver, buffer) != payload) {
      std::fprintf(stderr, "ws_load: --check: the message received differs from the message sent\n");
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ws_load: --check: %s\n", e.what());
    return 1;
  }
  std::puts("ok");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_options(argc, argv);
  if (o.check) return run_check(o, o.run_mode == mode::broadcast);
  if (!load_tools::raise_file_limit(o.connections + 1)) {
    std::fprintf(stderr, "ws_load: %u connections need more open files than the hard limit allows\n", o.connections);
    return 1;
  }
  load run(o);
  if (!run.connect_all()) return 1;
  return run.run();
}
