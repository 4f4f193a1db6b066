// fanout_client: the HTTP broadcast clients' common part (tools/sse_load.cpp, tools/longpoll_load.cpp): their
// options, the publisher connection, and the run itself: subscribers opened one after the other, one publish at
// a time (fanout.hpp's bookkeeping), the measured window, --check and --hold. A tool supplies only what differs:
// how a subscriber is opened and how it reads its deliveries (a subscriber_base), and hands each delivered
// message to fanout_client::on_message.
//
// Modes, for every tool built on it:
//   broadcast (default): N subscribers of one topic and one publisher, one publish at a time; deliveries inside
//     the window, publish-to-receive latency, the SB_LOAD report line (fanout.hpp: print_report).
//   --check: one subscriber, one publish; the message must arrive unchanged. Prints "ok".
//   --hold: opens the subscribers, prints "ready N", and holds them until SIGINT or SIGTERM; then prints
//     "open N closed M" (a subscriber whose connection ended or failed is closed): memory.sh's figures.
#pragma once

#include "command_line.hpp"
#include "fanout.hpp"
#include "latency_histogram.hpp"
#include "process_cpu.hpp"
#include "response_parser.hpp"

#include <asio/buffer.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <array>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace load_tools {

using asio::ip::tcp;

/// What a run does (see the top of this file).
enum class fanout_mode { broadcast, check, hold };

/// The options every HTTP broadcast client has.
struct fanout_options {
  fanout_mode run_mode = fanout_mode::broadcast;
  std::string host = "127.0.0.1";
  unsigned port = 0;  ///< 0: not given
  std::string subscribe_path;  ///< the tool's default, given to fanout_cli
  std::string publish_path = "/topics/bench";
  unsigned connections = 100;
  unsigned size = 64;
  unsigned duration_s = 5;
  unsigned warmup_s = 1;
  unsigned connect_timeout_s = 120;
  unsigned publish_timeout_ms = 5000;
  std::vector<int> measure_pids;
};

/// The command line of a tool: the common options, and the tool's own through a callback.
class fanout_cli : public command_line {
 public:
  /// `tool`: the program's name for messages; `usage`: its full usage text; `subscribe_path`: the default of
  /// --subscribe-path.
  fanout_cli(const char* tool, std::string usage, std::string subscribe_path)
      : command_line(tool, std::move(usage)), subscribe_path_(std::move(subscribe_path)) {}

  /// The usage lines of the common options, for a tool's usage text.
  static std::string common_usage(std::string_view subscribe_path, std::string_view subscriber) {
    return "  --check                 one " + std::string(subscriber) +
           " and one publish: the message must arrive unchanged\n"
           "  --hold                  open the " + std::string(subscriber) +
           "s, print \"ready N\", hold them until SIGTERM\n"
           "  --host ADDRESS          server IPv4 address, numeric (default 127.0.0.1)\n"
           "  --port PORT             server port (required)\n"
           "  --subscribe-path PATH   where a " + std::string(subscriber) + " subscribes (default " +
           std::string(subscribe_path) + ")\n"
           "  --publish-path PATH     where messages are POSTed (default /topics/bench)\n"
           "  --connections N         " + std::string(subscriber) + "s (default 100, at most 100000)\n"
           "  --size BYTES            message size (default 64, 34 to 65536)\n"
           "  --duration S            measured seconds (default 5, 1 to 3600)\n"
           "  --warmup S              unmeasured seconds of load first (default 1, 0 to 600)\n"
           "  --connect-timeout S     how long opening all connections may take (default 120)\n"
           "  --publish-timeout MS    how long a publish may wait for its deliveries (default 5000)\n"
           "  --measure-pids LIST     comma-separated pids whose CPU time is read over the measured window\n";
  }

  /// Parses the command line. A flag with a value that is not a common option goes to `own` (flag, value),
  /// which returns false when it does not know it either.
  fanout_options parse(int argc, char** argv,
                       const std::function<bool(std::string_view, std::string_view)>& own = {}) const {
    fanout_options o;
    o.subscribe_path = subscribe_path_;
    for (int i = 1; i < argc; ++i) {
      const std::string_view flag = argv[i];
      if (flag == "--check" || flag == "--hold") {
        o.run_mode = flag == "--check" ? fanout_mode::check : fanout_mode::hold;
        continue;
      }
      if (flag == "-h" || flag == "--help") help();
      if (i + 1 >= argc) usage_error("missing value after " + std::string(flag));
      const std::string_view value = argv[++i];
      if (flag == "--host") {
        o.host = value;
      } else if (flag == "--port") {
        o.port = number(value, 1, 65535, flag);
      } else if (flag == "--subscribe-path") {
        o.subscribe_path = value;
      } else if (flag == "--publish-path") {
        o.publish_path = value;
      } else if (flag == "--connections") {
        o.connections = number(value, 1, 100000, flag);
      } else if (flag == "--size") {
        o.size = number(value, stamp_bytes, 65536, flag);
      } else if (flag == "--duration") {
        o.duration_s = number(value, 1, 3600, flag);
      } else if (flag == "--warmup") {
        o.warmup_s = number(value, 0, 600, flag);
      } else if (flag == "--connect-timeout") {
        o.connect_timeout_s = number(value, 1, 3600, flag);
      } else if (flag == "--publish-timeout") {
        o.publish_timeout_ms = number(value, 1, 600000, flag);
      } else if (flag == "--measure-pids") {
        o.measure_pids = pid_list(value, flag);
      } else if (!own || !own(flag, value)) {
        usage_error("unknown option " + std::string(flag));
      }
    }
    if (o.port == 0) usage_error("--port is required");
    for (const std::string* p : {&o.subscribe_path, &o.publish_path}) {
      if (p->empty() || p->front() != '/' || p->find_first_of(" \t\r\n") != std::string::npos) {
        usage_error("paths must start with / and hold no whitespace");
      }
    }
    return o;
  }

 private:
  std::string subscribe_path_;
};

/// One subscriber of a tool: opened (connected, subscribed) by the tool's factory, then driven by the run.
class subscriber_base {
 public:
  virtual ~subscriber_base() = default;
  /// Starts reading deliveries (and whatever else the subscriber does on its own); called once, before the
  /// first publish (broadcast, check) or when the holding starts (hold).
  virtual void start() = 0;
  /// True once the subscriber failed (its connection ended, or the server sent something wrong).
  virtual bool failed() const = 0;
  /// True while its connection is open and well-formed; never blocks (for --hold).
  virtual bool still_open() = 0;
};

/// True while the server has neither closed nor reset `socket`; never blocks. Bytes waiting to be read count as
/// open (a delivery the subscriber has not read yet).
inline bool socket_still_open(tcp::socket& socket) {
  std::error_code ec;
  socket.non_blocking(true, ec);
  std::array<char, 1> byte{};
  const std::size_t n = socket.receive(asio::buffer(byte), tcp::socket::message_peek, ec);
  return ec == asio::error::would_block || (!ec && n > 0);
}

/// A subscriber on one TCP connection: reads whatever arrives and hands it to received(); on an error, or when the
/// server closes the connection, it fails (closes the connection and says why on stderr).
class socket_subscriber : public subscriber_base {
 public:
  void start() override { read(); }
  bool failed() const override { return failed_; }
  bool still_open() override { return !failed_ && socket_still_open(socket_); }

 protected:
  /// `socket` is connected; `tool` and `role` ("subscriber", "poller") name it in messages; `buffer_bytes`: the
  /// most one read takes.
  socket_subscriber(tcp::socket socket, const char* tool, const char* role, std::size_t buffer_bytes)
      : socket_(std::move(socket)), tool_(tool), role_(role), in_(buffer_bytes) {}

  /// Bytes arrived. Calls fail() when they are wrong.
  virtual void received(std::string_view bytes) = 0;

  /// Closes the connection and says why; the subscriber has failed.
  void fail(const std::string& why) {
    if (failed_) return;
    failed_ = true;
    std::fprintf(stderr, "%s: a %s failed: %s\n", tool_, role_, why.c_str());
    std::error_code ignored;
    socket_.close(ignored);
  }

  tcp::socket& socket() { return socket_; }

 private:
  void read() {
    socket_.async_read_some(asio::buffer(in_), [this](std::error_code ec, std::size_t n) {
      if (ec) return fail(ec == asio::error::eof ? "the server closed the connection" : ec.message());
      received(std::string_view(in_.data(), n));
      if (!failed_) read();
    });
  }

  tcp::socket socket_;
  const char* tool_;
  const char* role_;
  std::vector<char> in_;
  bool failed_ = false;
};

/// The publisher: one keep-alive connection, one POST at a time.
class publisher {
 public:
  publisher(tcp::socket socket, std::string request_head, const char* tool)
      : socket_(std::move(socket)), head_(std::move(request_head)), tool_(tool) {}

  /// POSTs `body`; the response is read and checked (2xx) in the background. A request queued while the
  /// previous one is still being written goes out after it.
  void post(std::string_view body) {
    pending_.append(head_).append(std::to_string(body.size())).append("\r\n\r\n").append(body);
    ++outstanding_;
    write();
    if (!reading_) read();
  }

  bool failed() const { return failed_; }

 private:
  void write() {
    if (writing_ || pending_.empty() || failed_) return;
    request_.swap(pending_);
    pending_.clear();
    writing_ = true;
    asio::async_write(socket_, asio::buffer(request_), [this](std::error_code ec, std::size_t) {
      writing_ = false;
      if (ec) return fail(ec.message());
      write();
    });
  }

  void read() {
    reading_ = true;
    socket_.async_read_some(asio::buffer(in_.data() + buffered_, in_.size() - buffered_),
                            [this](std::error_code ec, std::size_t n) {
                              reading_ = false;
                              if (ec) return fail(ec == asio::error::eof ? "the server closed it" : ec.message());
                              buffered_ += n;
                              std::size_t offset = 0;
                              for (;;) {
                                const auto step = parser_.parse(std::string_view(in_.data() + offset, buffered_ - offset));
                                offset += step.consumed;
                                if (step.error != http_load::parse_error::none) {
                                  return fail(std::string("bad response: ") + std::string(to_string(step.error)));
                                }
                                if (!step.complete) break;
                                if (parser_.status() < 200 || parser_.status() > 299 || !parser_.keep_alive()) {
                                  return fail("a POST answered " + std::to_string(parser_.status()) +
                                              (parser_.keep_alive() ? "" : " and closed the connection"));
                                }
                                --outstanding_;
                              }
                              buffered_ -= offset;
                              std::memmove(in_.data(), in_.data() + offset, buffered_);
                              if (outstanding_ > 0 && buffered_ < in_.size()) read();
                            });
  }

  void fail(const std::string& why) {
    if (failed_) return;
    failed_ = true;
    std::fprintf(stderr, "%s: the publisher failed: %s\n", tool_, why.c_str());
    std::error_code ignored;
    socket_.close(ignored);
  }

  tcp::socket socket_;
  std::string head_;
  const char* tool_;
  std::string request_;  // the bytes of the write in progress
  std::string pending_;  // requests queued behind it
  std::array<char, 16 * 1024> in_{};
  std::size_t buffered_ = 0;
  http_load::response_parser parser_;
  unsigned outstanding_ = 0;
  bool reading_ = false;
  bool writing_ = false;
  bool failed_ = false;
};

/// A run: the subscribers, the publisher, the schedule, the counts.
class fanout_client {
 public:
  /// Opens subscriber number `index` (0-based) to `server` on `context`, blocking; throws std::exception with
  /// the reason when it cannot.
  using subscriber_factory = std::function<std::unique_ptr<subscriber_base>(asio::io_context& context,
                                                                            const tcp::endpoint& server,
                                                                            std::size_t index)>;

  fanout_client(const fanout_options& o, const char* tool)
      : o_(o), tool_(tool), tracker_(o.connections, std::chrono::milliseconds(o.publish_timeout_ms)) {}

  /// "host:port", for the Host field.
  std::string host_field() const { return o_.host + ":" + std::to_string(o_.port); }

  /// Opens `subscribers` subscribers with `make`, then (except in hold mode) the publisher, one after the other;
  /// then, except in hold mode, calls `ready` (when given), which blocks until the server has every subscriber
  /// in place or throws. False, with the reason on stderr, on failure.
  bool connect_all(std::size_t subscribers, const subscriber_factory& make, const std::function<void()>& ready = {}) {
    const auto deadline = clock_type::now() + std::chrono::seconds(o_.connect_timeout_s);
    const tcp::endpoint server{asio::ip::make_address(o_.host), static_cast<unsigned short>(o_.port)};
    subscribers_.reserve(subscribers);
    try {
      for (std::size_t i = 0; i < subscribers; ++i) {
        if (clock_type::now() > deadline) throw std::runtime_error("opening them took too long");
        subscribers_.push_back(make(context_, server, i));
      }
      if (o_.run_mode == fanout_mode::hold) return true;
      tcp::socket socket(context_);
      socket.connect(server);
      socket.set_option(tcp::no_delay(true));
      publisher_ = std::make_unique<publisher>(
          std::move(socket),
          "POST " + o_.publish_path + " HTTP/1.1\r\nHost: " + host_field() +
              "\r\nContent-Type: text/plain\r\nContent-Length: ",
          tool_);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: subscriber %zu of %zu (%s): %s\n", tool_, subscribers_.size() + 1, subscribers,
                   o_.subscribe_path.c_str(), e.what());
      return false;
    }
    try {
      if (ready) ready();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: the subscribers are not in place: %s\n", tool_, e.what());
      return false;
    }
    return true;
  }

  /// Runs the mode of the options; returns the exit status.
  int run() {
    switch (o_.run_mode) {
      case fanout_mode::check: return check();
      case fanout_mode::hold: return hold();
      case fanout_mode::broadcast: break;
    }
    return broadcast();
  }

  /// A message arrived on a subscriber at `now`. False when it is not a message this client sent (the
  /// subscriber then fails).
  bool on_message(std::string_view data, clock_type::time_point now) {
    std::uint64_t seq = 0, sent_ns = 0;
    if (!read_payload(data, seq, sent_ns) || data.size() != o_.size) return false;
    if (checking_) {
      check_passed_ = data == payload_;
      context_.stop();
      return true;
    }
    if (tracker_.deliver(seq, sent_ns, now, window_)) publish();
    return true;
  }

 private:
  // The warm-up and the measured window; prints the report.
  int broadcast() {
    const auto now = clock_type::now();
    window_ = {now + std::chrono::seconds(o_.warmup_s), now + std::chrono::seconds(o_.warmup_s + o_.duration_s)};
    for (auto& s : subscribers_) s->start();
    publish();
    arm_publish_watch();
    asio::steady_timer start_timer(context_, window_.start), end_timer(context_, window_.end);
    start_timer.async_wait([this](std::error_code) {
      cpu_before_ = own_cpu_us();
      if (!o_.measure_pids.empty()) server_before_ = processes_cpu_us(o_.measure_pids);
    });
    end_timer.async_wait([this](std::error_code) {
      cpu_after_ = own_cpu_us();
      if (!o_.measure_pids.empty()) server_after_ = processes_cpu_us(o_.measure_pids);
      context_.stop();
    });
    context_.run();

    std::uint64_t errors = publisher_->failed() ? 1 : 0;
    for (auto& s : subscribers_) errors += s->failed() ? 1 : 0;
    const std::int64_t server_cpu = server_before_ >= 0 && server_after_ >= 0 ? server_after_ - server_before_ : -1;
    print_report({tool_, "broadcast", o_.connections, 1, tracker_.deliveries(), tracker_.completed(), tracker_.lost(),
                  errors, window_.duration_us(), cpu_after_ - cpu_before_, server_cpu, &tracker_.latency()});
    if (!o_.measure_pids.empty() && server_cpu < 0) {
      std::fprintf(stderr, "%s: a measured process could not be read (did it exit?)\n", tool_);
      return 1;
    }
    return tracker_.deliveries() > 0 && errors == 0 && tracker_.lost() == 0 ? 0 : 1;
  }

  // One publish must reach the one subscriber unchanged within the publish timeout.
  int check() {
    subscribers_.front()->start();
    publish();
    asio::steady_timer timeout(context_, std::chrono::milliseconds(o_.publish_timeout_ms));
    timeout.async_wait([this](std::error_code) { context_.stop(); });
    checking_ = true;
    context_.run();
    if (!check_passed_) {
      std::fprintf(stderr, "%s: --check: the message did not arrive within %u ms\n", tool_, o_.publish_timeout_ms);
      return 1;
    }
    std::puts("ok");
    return 0;
  }

  // Holds the subscribers until SIGINT or SIGTERM; then reports how many are still open.
  int hold() {
    // The signals are caught before "ready" says that the holder may be stopped.
    asio::signal_set signals(context_, SIGINT, SIGTERM);
    signals.async_wait([this](std::error_code, int) { context_.stop(); });
    for (auto& s : subscribers_) s->start();
    std::printf("ready %zu\n", subscribers_.size());
    std::fflush(stdout);
    context_.run();
    std::size_t open = 0;
    for (auto& s : subscribers_) open += s->still_open() ? 1 : 0;
    std::printf("open %zu closed %zu\n", open, subscribers_.size() - open);
    return open == subscribers_.size() ? 0 : 1;
  }

  void publish() {
    const auto now = clock_type::now();
    make_payload(payload_, o_.size, tracker_.begin_publish(now), to_ns(now));
    publisher_->post(payload_);
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

  const fanout_options& o_;
  const char* tool_;
  asio::io_context context_{1};
  std::vector<std::unique_ptr<subscriber_base>> subscribers_;
  std::unique_ptr<publisher> publisher_;
  window window_{};
  fanout_tracker tracker_;
  asio::steady_timer publish_watch_{context_};
  std::string payload_;
  bool checking_ = false;
  bool check_passed_ = false;
  std::int64_t cpu_before_ = 0, cpu_after_ = 0, server_before_ = -1, server_after_ = -1;
};

}  // namespace load_tools
