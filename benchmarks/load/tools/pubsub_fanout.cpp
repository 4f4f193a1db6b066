// pubsub_fanout: the fan-out load of benchmarks/load/pubsub.sh. One publisher and N subscribers on one
// channel of a Redis-protocol server (examples/broker or redis-server); it counts the messages the subscribers
// receive per second.
//
// The subscribers connect and SUBSCRIBE (RESP2) first; once the server counts all of them (PUBSUB NUMSUB), the
// publisher sends PUBLISH commands, pipelined, but never more than `--window` messages ahead of the slowest
// subscriber: so the figure is the rate at which the server delivers to every subscriber, not the rate at which
// it can queue messages for clients that fall behind (which ends in output-buffer-limit disconnects). After
// `--warmup` seconds it measures for `--duration` seconds and prints one line:
//
//   SB_FANOUT subscribers=N published=P deliveries=D seconds=S deliveries_per_s=R messages_per_s=M
//             total_deliveries=T total_seconds=U
//
// (the totals count the whole run from the first PUBLISH, warm-up included: pubsub.sh divides the server's CPU
// time over the whole run by them).
// Every message has the same size (a fixed channel and a `--payload`-byte payload), so a subscriber counts its
// messages by the bytes it receives. The start of every read is checked against the frame where the sequence of
// frames stands (so the first frame is checked whole, and a lost or extra byte shows), and every PUBLISH reply is
// checked to be the number of subscribers. Single-threaded (one io_context), so that it can be pinned to one CPU
// with taskset.
//
// Usage: pubsub_fanout --port PORT [--host ADDRESS] [--subscribers N] [--payload BYTES] [--window MESSAGES]
//                      [--duration SECONDS] [--warmup SECONDS] [--channel NAME]
// Exit status: 0 on success, 1 when the server misbehaved (closed a connection, sent unexpected bytes), 2 for a
// usage error.
#include <asio/buffer.hpp>
#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct options {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  std::size_t subscribers = 10;
  std::size_t payload = 64;
  std::uint64_t window = 1000;
  double duration = 5;
  double warmup = 1;
  std::string channel = "fanout";
};

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "pubsub_fanout: " << message
            << "\nusage: pubsub_fanout --port PORT [--host ADDRESS] [--subscribers N] [--payload BYTES]"
               " [--window MESSAGES] [--duration SECONDS] [--warmup SECONDS] [--channel NAME]\n";
  std::exit(2);
}

[[noreturn]] void fail(const std::string& message) {
  std::cerr << "pubsub_fanout: " << message << "\n";
  std::exit(1);
}

template <class T>
T parse_number(std::string_view name, std::string_view text) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) usage_error(std::string(name) + " needs a number");
  return value;
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc) usage_error("missing value after " + std::string(arg));
    const std::string_view value = argv[++i];
    if (arg == "--host") o.host = value;
    else if (arg == "--port") o.port = parse_number<unsigned short>(arg, value);
    else if (arg == "--subscribers") o.subscribers = parse_number<std::size_t>(arg, value);
    else if (arg == "--payload") o.payload = parse_number<std::size_t>(arg, value);
    else if (arg == "--window") o.window = parse_number<std::uint64_t>(arg, value);
    else if (arg == "--duration") o.duration = parse_number<double>(arg, value);
    else if (arg == "--warmup") o.warmup = parse_number<double>(arg, value);
    else if (arg == "--channel") o.channel = value;
    else usage_error("unknown option " + std::string(arg));
  }
  if (o.port == 0) usage_error("--port is required");
  if (o.subscribers == 0 || o.window == 0 || o.duration <= 0) usage_error("subscribers, window and duration > 0");
  return o;
}

/// A RESP2 command as an array of bulk strings.
std::string command(std::initializer_list<std::string_view> args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (std::string_view a : args) {
    out += "$" + std::to_string(a.size()) + "\r\n";
    out += a;
    out += "\r\n";
  }
  return out;
}

std::string bulk(std::string_view s) { return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n"; }

class fanout {
 public:
  explicit fanout(const options& o)
      : o_(o),
        payload_(o.payload, 'x'),
        frame_("*3\r\n" + bulk("message") + bulk(o.channel) + bulk(payload_)),
        publish_(command({"PUBLISH", o.channel, payload_})),
        publisher_(ctx_),
        timer_(ctx_) {}

  void run() {
    const asio::ip::tcp::endpoint server(asio::ip::make_address(o_.host), o_.port);
    // Subscribe, one connection after the other, each confirmed before the next.
    const std::string subscribe = command({"SUBSCRIBE", o_.channel});
    const std::string confirmation = "*3\r\n" + bulk("subscribe") + bulk(o_.channel) + ":1\r\n";
    for (std::size_t i = 0; i < o_.subscribers; ++i) {
      auto s = std::make_unique<subscriber>(ctx_);
      s->socket.connect(server);
      s->socket.set_option(asio::ip::tcp::no_delay(true));
      asio::write(s->socket, asio::buffer(subscribe));
      std::string got(confirmation.size(), '\0');
      asio::read(s->socket, asio::buffer(got));
      if (got != confirmation) fail("unexpected SUBSCRIBE reply: " + got);
      subscribers_.push_back(std::move(s));
    }
    publisher_.connect(server);
    publisher_.set_option(asio::ip::tcp::no_delay(true));
    // Wait until the server counts every subscriber (a multi-threaded server registers them asynchronously).
    const std::string numsub = command({"PUBSUB", "NUMSUB", o_.channel});
    const std::string expected = "*2\r\n" + bulk(o_.channel) + ":" + std::to_string(o_.subscribers) + "\r\n";
    for (int attempt = 0;; ++attempt) {
      asio::write(publisher_, asio::buffer(numsub));
      std::string got(expected.size(), '\0');
      asio::read(publisher_, asio::buffer(got));
      if (got == expected) break;
      if (attempt == 10000) fail("the server never counted the subscribers: " + got);
    }
    reply_ = ":" + std::to_string(o_.subscribers) + "\r\n";

    for (auto& s : subscribers_) read(*s);
    read_replies();
    start_ = clock_type::now();
    measure_from_ = start_ + to_duration(o_.warmup);
    end_ = measure_from_ + to_duration(o_.duration);
    publish();
    timer_.expires_at(measure_from_);
    timer_.async_wait([this](std::error_code) {
      start_count_ = delivered();
      start_published_ = published_;
      timer_.expires_at(end_);
      timer_.async_wait([this](std::error_code) { finish(); });
    });
    ctx_.run();
  }

 private:
  struct subscriber {
    explicit subscriber(asio::io_context& ctx) : socket(ctx) {}
    asio::ip::tcp::socket socket;
    std::array<char, 64 * 1024> buffer{};
    std::uint64_t bytes = 0;
  };

  static clock_type::duration to_duration(double seconds) {
    return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
  }

  std::uint64_t received(const subscriber& s) const { return s.bytes / frame_.size(); }

  std::uint64_t slowest() const {
    std::uint64_t low = std::numeric_limits<std::uint64_t>::max();
    for (const auto& s : subscribers_) low = std::min(low, received(*s));
    return low;
  }

  std::uint64_t delivered() const {
    std::uint64_t total = 0;
    for (const auto& s : subscribers_) total += received(*s);
    return total;
  }

  void read(subscriber& s) {
    s.socket.async_read_some(asio::buffer(s.buffer), [this, &s](std::error_code ec, std::size_t n) {
      if (done_) return;
      if (ec) fail("a subscriber's connection failed: " + ec.message());
      const std::string_view chunk(s.buffer.data(), n);
      const std::size_t offset = s.bytes % frame_.size();
      const std::size_t compare = std::min(chunk.size(), frame_.size() - offset);
      if (chunk.substr(0, compare) != std::string_view(frame_).substr(offset, compare)) {
        fail("unexpected bytes from the server: " + std::string(chunk.substr(0, 80)));
      }
      s.bytes += n;
      if (!publishing_) publish();
      read(s);
    });
  }

  void read_replies() {
    publisher_.async_read_some(asio::buffer(replies_), [this](std::error_code ec, std::size_t n) {
      if (done_) return;
      if (ec) fail("the publisher's connection failed: " + ec.message());
      // Every reply is the same integer, the number of receivers.
      for (std::size_t i = 0; i < n; ++i) {
        if (replies_[i] != reply_[(reply_bytes_ + i) % reply_.size()]) {
          fail("unexpected PUBLISH reply (each should be " + reply_.substr(0, reply_.size() - 2) + ")");
        }
      }
      reply_bytes_ += n;
      read_replies();
    });
  }

  // Writes PUBLISH commands while the slowest subscriber is less than a window behind.
  void publish() {
    if (done_ || publishing_) return;
    const std::uint64_t limit = slowest() + o_.window;
    if (published_ >= limit) return;  // a subscriber's read calls publish() again
    const std::uint64_t batch = std::min<std::uint64_t>(limit - published_, 64);
    out_.clear();
    for (std::uint64_t i = 0; i < batch; ++i) out_ += publish_;
    published_ += batch;
    publishing_ = true;
    asio::async_write(publisher_, asio::buffer(out_), [this](std::error_code ec, std::size_t) {
      publishing_ = false;
      if (ec) fail("publishing failed: " + ec.message());
      publish();
    });
  }

  void finish() {
    const std::uint64_t deliveries = delivered() - start_count_;
    const std::uint64_t published = published_ - start_published_;
    done_ = true;
    const double total_seconds = std::chrono::duration<double>(clock_type::now() - start_).count();
    std::printf("SB_FANOUT subscribers=%zu published=%llu deliveries=%llu seconds=%.3f deliveries_per_s=%.1f "
                "messages_per_s=%.1f total_deliveries=%llu total_seconds=%.3f\n",
                o_.subscribers, static_cast<unsigned long long>(published),
                static_cast<unsigned long long>(deliveries), o_.duration, double(deliveries) / o_.duration,
                double(deliveries) / o_.duration / double(o_.subscribers),
                static_cast<unsigned long long>(delivered()), total_seconds);
    std::fflush(stdout);
    ctx_.stop();
  }

  options o_;
  asio::io_context ctx_{1};
  std::string payload_;
  std::string frame_;    // what each subscriber receives per message
  std::string publish_;  // one PUBLISH command
  std::string reply_;    // PUBLISH's reply: the number of subscribers
  std::vector<std::unique_ptr<subscriber>> subscribers_;
  asio::ip::tcp::socket publisher_;
  asio::steady_timer timer_;
  std::array<char, 64 * 1024> replies_{};
  std::string out_;
  std::uint64_t published_ = 0;
  std::uint64_t reply_bytes_ = 0;
  std::uint64_t start_count_ = 0;
  std::uint64_t start_published_ = 0;
  clock_type::time_point start_;
  clock_type::time_point measure_from_;
  clock_type::time_point end_;
  bool publishing_ = false;
  bool done_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  try {
    fanout(o).run();
  } catch (const std::exception& e) {
    fail(e.what());
  }
  return 0;
}
