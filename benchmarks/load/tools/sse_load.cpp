// sse_load: the Server-Sent Events load client of benchmarks/load/sse.sh.
//
// N subscribers hold `GET --subscribe-path` event streams (text/event-stream, WHATWG HTML §9.2) and one
// publisher connection sends `POST --publish-path` requests whose body is the message; the server is
// expected to deliver each published body to every subscriber as the data of one event. One publish at a
// time, as ws_load's broadcast: the next POST goes out when every subscriber got the current message (or
// after --publish-timeout, and the missing deliveries count as lost). It counts deliveries inside the
// measured window and the latency of each, from the POST's send to the event's receipt.
//
// One thread, one Asio io_context. Each subscriber reads whatever its socket holds, removes the HTTP framing
// (chunked or until close, RFC 9112 §6.3, with http_load's own response parser, tools/response_parser.hpp)
// and feeds the body to switchboard's SSE parser (sse/parser.hpp, strict UTF-8), so a server that frames or
// encodes events wrongly fails the run. Comments (heartbeats) and events with another payload are ignored.
//
// --check: one subscriber, one publish; the message must arrive unchanged. Prints "ok".
// --hold: opens the subscribers, prints "ready N", and holds them idle until SIGINT or SIGTERM; then prints
// "open N closed M" (a subscriber whose stream ended or failed is closed) — the memory figures of sse.sh.
//
// Usage: sse_load --port PORT [options]; --help lists them (usage_text below).
// Exit status: 0 when the run completed with deliveries and no error (or the check passed, or every held
// stream stayed open), 1 otherwise (the reason on stderr), 2 for a usage error.
#include "fanout.hpp"
#include "latency_histogram.hpp"
#include "process_cpu.hpp"
#include "response_parser.hpp"

#include <switchboard/http/parser.hpp>
#include <switchboard/sse/parser.hpp>

#include <asio/buffer.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <array>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using asio::ip::tcp;
using load_tools::clock_type;

enum class mode { broadcast, check, hold };

struct options {
  mode run_mode = mode::broadcast;
  std::string host = "127.0.0.1";
  unsigned port = 0;  ///< 0: not given
  std::string subscribe_path = "/topics/bench/events";
  std::string publish_path = "/topics/bench";
  unsigned connections = 100;
  unsigned size = 64;
  unsigned duration_s = 5;
  unsigned warmup_s = 1;
  unsigned connect_timeout_s = 120;
  unsigned publish_timeout_ms = 5000;
  std::vector<int> measure_pids;
};

constexpr const char* usage_text =
    "usage: sse_load --port PORT [options]\n"
    "  --check                 one subscriber and one publish: the message must arrive unchanged\n"
    "  --hold                  open the subscribers, print \"ready N\", hold them until SIGTERM\n"
    "  --host ADDRESS          server IPv4 address, numeric (default 127.0.0.1)\n"
    "  --port PORT             server port (required)\n"
    "  --subscribe-path PATH   the event stream (default /topics/bench/events)\n"
    "  --publish-path PATH     where messages are POSTed (default /topics/bench)\n"
    "  --connections N         subscribers (default 100, at most 100000)\n"
    "  --size BYTES            message size (default 64, 34 to 65536)\n"
    "  --duration S            measured seconds (default 5, 1 to 3600)\n"
    "  --warmup S              unmeasured seconds of load first (default 1, 0 to 600)\n"
    "  --connect-timeout S     how long opening all connections may take (default 120)\n"
    "  --publish-timeout MS    how long a publish may wait for its deliveries (default 5000)\n"
    "  --measure-pids LIST     comma-separated pids whose CPU time is read over the measured window\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "sse_load: %s\n%s", message.c_str(), usage_text);
  std::exit(2);
}

unsigned parse_number(std::string_view text, unsigned low, unsigned high, std::string_view flag) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < low || value > high) {
    usage_error(std::string(flag) + " needs a whole number from " + std::to_string(low) + " to " +
                std::to_string(high) + ", got '" + std::string(text) + "'");
  }
  return value;
}

options parse_options(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--check" || flag == "--hold") {
      o.run_mode = flag == "--check" ? mode::check : mode::hold;
      continue;
    }
    if (flag == "-h" || flag == "--help") {
      std::fputs(usage_text, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) usage_error("missing value after " + std::string(flag));
    const std::string_view value = argv[++i];
    if (flag == "--host") {
      o.host = value;
    } else if (flag == "--port") {
      o.port = parse_number(value, 1, 65535, flag);
    } else if (flag == "--subscribe-path") {
      o.subscribe_path = value;
    } else if (flag == "--publish-path") {
      o.publish_path = value;
    } else if (flag == "--connections") {
      o.connections = parse_number(value, 1, 100000, flag);
    } else if (flag == "--size") {
      o.size = parse_number(value, load_tools::stamp_bytes, 65536, flag);
    } else if (flag == "--duration") {
      o.duration_s = parse_number(value, 1, 3600, flag);
    } else if (flag == "--warmup") {
      o.warmup_s = parse_number(value, 0, 600, flag);
    } else if (flag == "--connect-timeout") {
      o.connect_timeout_s = parse_number(value, 1, 3600, flag);
    } else if (flag == "--publish-timeout") {
      o.publish_timeout_ms = parse_number(value, 1, 600000, flag);
    } else if (flag == "--measure-pids") {
      std::string_view list = value;
      while (!list.empty()) {
        const std::size_t comma = list.find(',');
        o.measure_pids.push_back(static_cast<int>(parse_number(list.substr(0, comma), 1, 1u << 30, flag)));
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
      }
    } else {
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

/// Sends the GET of an event stream on the connected `socket` and reads the response head; checks it is a 200
/// with Content-Type text/event-stream. Returns every byte read, the head included (the caller's framing
/// parser starts from the status line). Throws std::runtime_error otherwise.
std::string open_stream(tcp::socket& socket, const std::string& host_field, const std::string& path) {
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host_field +
                              "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";
  asio::write(socket, asio::buffer(request));
  switchboard::http::response_parser head;
  std::string buffer;
  std::array<char, 4096> chunk{};
  for (;;) {
    std::error_code ec;
    head.put(buffer, ec);
    if (ec) throw std::runtime_error("cannot parse the response head: " + ec.message());
    if (head.header_done()) break;
    if (buffer.size() > 64 * 1024) throw std::runtime_error("response head over 64 KiB");
    buffer.append(chunk.data(), socket.read_some(asio::buffer(chunk)));
  }
  if (head.status_code() != 200) {
    throw std::runtime_error("GET " + path + " answered " + std::to_string(head.status_code()) + ", not 200");
  }
  const std::string_view type = head.fields().get("content-type");
  if (type.substr(0, 17) != "text/event-stream") {
    throw std::runtime_error("GET " + path + " answered Content-Type '" + std::string(type) +
                             "', not text/event-stream");
  }
  return buffer;
}

class load;

/// One subscriber: reads its event stream and hands each event's data to the load.
class subscriber {
 public:
  subscriber(tcp::socket socket, std::string received, load& owner) : socket_(std::move(socket)), owner_(owner) {
    body_bytes(received);
  }

  void start() { read(); }
  bool failed() const { return failed_; }
  /// True while the stream is open and well-formed; never blocks (for --hold).
  bool still_open() {
    if (failed_) return false;
    std::error_code ec;
    socket_.non_blocking(true, ec);
    std::array<char, 1> byte{};
    socket_.receive(asio::buffer(byte), tcp::socket::message_peek, ec);
    return ec == asio::error::would_block || (!ec);
  }

 private:
  void read() {
    socket_.async_read_some(asio::buffer(in_), [this](std::error_code ec, std::size_t n) {
      if (ec) return fail(ec == asio::error::eof ? "the server ended the stream" : ec.message());
      body_bytes(std::string_view(in_.data(), n));
      if (!failed_) read();
    });
  }

  // Removes the HTTP framing from newly received bytes and parses the events in them.
  void body_bytes(std::string_view bytes);

  void fail(const std::string& why);

  tcp::socket socket_;
  load& owner_;
  std::array<char, 64 * 1024> in_{};
  std::string unframed_;  // received bytes the framing parser has not consumed yet (at most a line)
  std::string body_;      // event-stream bytes not fed to the SSE parser yet
  http_load::response_parser framing_;
  switchboard::sse::parser events_{{.utf8 = switchboard::sse::utf8_policy::reject}};
  bool failed_ = false;
};

/// The publisher: one keep-alive connection, one POST at a time.
class publisher {
 public:
  publisher(tcp::socket socket, std::string request_head) : socket_(std::move(socket)), head_(std::move(request_head)) {}

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
    std::fprintf(stderr, "sse_load: the publisher failed: %s\n", why.c_str());
    std::error_code ignored;
    socket_.close(ignored);
  }

  tcp::socket socket_;
  std::string head_;
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
class load {
 public:
  explicit load(const options& o) : o_(o), tracker_(o.connections, std::chrono::milliseconds(o.publish_timeout_ms)) {}

  /// Opens every subscriber, then the publisher (blocking, one after the other). False, with the reason on
  /// stderr, on failure.
  bool connect_all(std::size_t subscribers) {
    const auto deadline = clock_type::now() + std::chrono::seconds(o_.connect_timeout_s);
    const tcp::endpoint server{asio::ip::make_address(o_.host), static_cast<unsigned short>(o_.port)};
    const std::string host_field = o_.host + ":" + std::to_string(o_.port);
    subscribers_.reserve(subscribers);
    try {
      for (std::size_t i = 0; i < subscribers; ++i) {
        if (clock_type::now() > deadline) throw std::runtime_error("opening them took too long");
        tcp::socket socket(context_);
        socket.connect(server);
        socket.set_option(tcp::no_delay(true));
        std::string received = open_stream(socket, host_field, o_.subscribe_path);
        subscribers_.push_back(std::make_unique<subscriber>(std::move(socket), std::move(received), *this));
      }
      if (o_.run_mode == mode::hold) return true;
      tcp::socket socket(context_);
      socket.connect(server);
      socket.set_option(tcp::no_delay(true));
      publisher_ = std::make_unique<publisher>(
          std::move(socket), "POST " + o_.publish_path + " HTTP/1.1\r\nHost: " + host_field +
                                 "\r\nContent-Type: text/plain\r\nContent-Length: ");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "sse_load: subscriber %zu of %zu (%s): %s\n", subscribers_.size() + 1, subscribers,
                   o_.subscribe_path.c_str(), e.what());
      return false;
    }
    return true;
  }

  /// Runs the warm-up and the measured window; returns the exit status after printing the report.
  int run() {
    const auto now = clock_type::now();
    window_ = {now + std::chrono::seconds(o_.warmup_s), now + std::chrono::seconds(o_.warmup_s + o_.duration_s)};
    for (auto& s : subscribers_) s->start();
    publish();
    arm_publish_watch();
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

    std::uint64_t errors = publisher_->failed() ? 1 : 0;
    for (auto& s : subscribers_) errors += s->failed() ? 1 : 0;
    const std::int64_t server_cpu = server_before_ >= 0 && server_after_ >= 0 ? server_after_ - server_before_ : -1;
    load_tools::print_report({"sse_load", "broadcast", o_.connections, 1, tracker_.deliveries(), tracker_.completed(),
                              tracker_.lost(), errors, window_.duration_us(), cpu_after_ - cpu_before_, server_cpu,
                              &tracker_.latency()});
    if (!o_.measure_pids.empty() && server_cpu < 0) {
      std::fprintf(stderr, "sse_load: a measured process could not be read (did it exit?)\n");
      return 1;
    }
    return tracker_.deliveries() > 0 && errors == 0 && tracker_.lost() == 0 ? 0 : 1;
  }

  /// --check: one publish must reach the one subscriber unchanged within the publish timeout.
  int check() {
    subscribers_.front()->start();
    publish();
    asio::steady_timer timeout(context_, std::chrono::milliseconds(o_.publish_timeout_ms));
    timeout.async_wait([this](std::error_code) { context_.stop(); });
    checking_ = true;
    context_.run();
    if (!check_passed_) {
      std::fprintf(stderr, "sse_load: --check: the message did not arrive within %u ms\n", o_.publish_timeout_ms);
      return 1;
    }
    std::puts("ok");
    return 0;
  }

  /// --hold: holds the subscribers idle until SIGINT or SIGTERM; then reports how many are still open.
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

  /// An event arrived on a subscriber at `now`. False when its data is not a message this client sent.
  bool on_event(std::string_view data, clock_type::time_point now) {
    std::uint64_t seq = 0, sent_ns = 0;
    if (!load_tools::read_payload(data, seq, sent_ns) || data.size() != o_.size) return false;
    if (checking_) {
      check_passed_ = data == payload_;
      context_.stop();
      return true;
    }
    if (tracker_.deliver(seq, sent_ns, now, window_)) publish();
    return true;
  }

 private:
  void publish() {
    const auto now = clock_type::now();
    load_tools::make_payload(payload_, o_.size, tracker_.begin_publish(now), load_tools::to_ns(now));
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

  const options& o_;
  asio::io_context context_{1};
  std::vector<std::unique_ptr<subscriber>> subscribers_;
  std::unique_ptr<publisher> publisher_;
  load_tools::window window_{};
  load_tools::fanout_tracker tracker_;
  asio::steady_timer publish_watch_{context_};
  std::string payload_;
  bool checking_ = false;
  bool check_passed_ = false;
  std::int64_t cpu_before_ = 0, cpu_after_ = 0, server_before_ = -1, server_after_ = -1;
};

void subscriber::body_bytes(std::string_view bytes) {
  unframed_.append(bytes);
  const auto step = framing_.parse(unframed_, &body_);
  unframed_.erase(0, step.consumed);
  if (step.error != http_load::parse_error::none) return fail(std::string("bad framing: ") + std::string(to_string(step.error)));
  if (step.complete) return fail("the server ended the stream");
  const auto now = clock_type::now();
  bool foreign = false;
  const std::error_code ec = events_.feed(body_, [&](const switchboard::sse::message& m) {
    if (!owner_.on_event(m.data, now)) foreign = true;
  });
  body_.clear();
  if (ec) return fail("bad event stream: " + ec.message());
  if (foreign) return fail("an event this client did not publish");
}

void subscriber::fail(const std::string& why) {
  if (failed_) return;
  failed_ = true;
  std::fprintf(stderr, "sse_load: a subscriber failed: %s\n", why.c_str());
  std::error_code ignored;
  socket_.close(ignored);
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_options(argc, argv);
  const std::size_t subscribers = o.run_mode == mode::check ? 1 : o.connections;
  if (!load_tools::raise_file_limit(subscribers + 1)) {
    std::fprintf(stderr, "sse_load: %zu connections need more open files than the hard limit allows\n", subscribers);
    return 1;
  }
  load run(o);
  if (!run.connect_all(subscribers)) return 1;
  switch (o.run_mode) {
    case mode::check: return run.check();
    case mode::hold: return run.hold();
    case mode::broadcast: break;
  }
  return run.run();
}
