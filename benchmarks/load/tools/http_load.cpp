// http_load: a closed-loop HTTP/1.1 load generator for benchmarks/load/scaling.sh.
//
// wrk is the load tool of http.sh, but scaling.sh must run on a bare machine with nothing installed, so it
// brings its own: this file, linked statically, with nothing beyond the C++ standard library and Linux
// system calls (epoll). It does what the benchmark needs of wrk and no more:
//
//   - T threads, each with its own epoll instance and its share of C keep-alive connections;
//   - closed loop: each connection writes a batch of P copies of one request, built once before the run
//     (http_request.hpp: `GET PATH` by default; --method, --body and --content-type make it, say, a POST
//     with a JSON body for jobs.sh), waits for all P responses, then writes the next batch (P = 1: no
//     pipelining; P > 1: HTTP/1.1 pipelining, RFC 9112 §9.3.2);
//   - every response is framed (response_parser.hpp: Content-Length, chunked or until close) and its status
//     should be 2xx; a response with another status (a 503 from a full queue, say) is counted apart, as
//     non_2xx, and left out of the requests and the latency; it is an error all the same (err_status), as
//     are a connection the server closes or resets and framing that cannot be parsed; a connection that
//     failed is opened again so the load goes on;
//   - an unmeasured warm-up, then a measured window of fixed length: responses that complete inside the
//     window are counted, and the latency of each batch (from its write to its last response; with P = 1,
//     of each request) goes into a histogram (latency_histogram.hpp);
//   - its own CPU time over the window (getrusage), and that of the processes given with --measure-pids
//     (from /proc/PID/stat), read at the window's start and end, so the caller gets the server's CPU per
//     request for exactly the measured requests.
//
// It stops by itself when the window ends, whatever the server does: connecting is bounded by a deadline,
// the event loops by the window's end. It prints a summary and one machine-readable line:
//   SB_LOAD requests=N duration_us=N rps=N p50_us=N p90_us=N p99_us=N max_us=N samples=N errors=N
//           err_connect=N err_io=N err_closed=N err_parse=N err_status=N non_2xx=N cpu_us=N server_cpu_us=N
//           threads=N connections=N pipeline=N
// (one line; requests, rps and the latency count the 2xx responses of the window; non_2xx counts the others
// in the window, err_status those of the whole run, warm-up included; server_cpu_us is -1 without
// --measure-pids, or when a measured process ended meanwhile).
//
// --check instead makes two requests one after the other on one connection and prints the body of the
// second response on stdout: it succeeds when both are 2xx and the server kept the connection open.
//
// Usage: http_load --port PORT [options]; --help lists the options (usage_text below).
// Exit status: 0 when the run completed with at least one response and no error (or the check passed),
// 1 otherwise (the reason on stderr), 2 for a usage error.
#include "command_line.hpp"
#include "response_parser.hpp"
#include "http_request.hpp"
#include "latency_histogram.hpp"
#include "process_cpu.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
using http_load::is_success;
using http_load::latency_histogram;
using http_load::parse_error;
using http_load::request_spec;
using http_load::response_parser;
using load_tools::own_cpu_us;
using load_tools::processes_cpu_us;
using load_tools::raise_file_limit;

struct options {
  std::string host = "127.0.0.1";
  unsigned port = 0;                   ///< 0: not given
  std::string path = "/plaintext";
  std::string method = "GET";
  std::string content_type;            ///< empty: no Content-Type field
  std::string body;
  bool has_body = false;               ///< --body or --body-file was given
  unsigned threads = 1;
  unsigned connections = 64;
  unsigned pipeline = 1;               ///< requests per batch
  unsigned duration_s = 5;             ///< measured window
  unsigned warmup_s = 1;               ///< unmeasured load before the window
  unsigned wait_s = 0;                 ///< how long a refused first connection is retried
  std::vector<int> measure_pids;       ///< processes whose CPU time is read over the window
  bool check = false;
};

/// Bytes each connection buffers; a response line must fit (response_parser::max_line_bytes is 8 KiB).
constexpr std::size_t read_buffer_bytes = 16 * 1024;
/// How long connecting all the connections may take, on top of --wait.
constexpr auto connect_deadline = std::chrono::seconds(10);
/// How long one connect() or, in --check, one read or write may block.
constexpr auto io_timeout = std::chrono::seconds(5);
/// The largest request body: each connection's batch holds --pipeline copies of it.
constexpr std::size_t max_body_bytes = 1024 * 1024;

constexpr const char* usage_text =
    "usage: http_load --port PORT [options]\n"
    "  --host ADDRESS        server IPv4 address, numeric (default 127.0.0.1)\n"
    "  --port PORT           server port (required)\n"
    "  --path PATH           request target (default /plaintext)\n"
    "  --method METHOD       request method (default GET; not HEAD or CONNECT)\n"
    "  --body STRING         request content, sent with Content-Length (POST, PUT and PATCH send\n"
    "                        Content-Length: 0 without it)\n"
    "  --body-file FILE      request content read from FILE (at most 1 MiB)\n"
    "  --content-type TYPE   the Content-Type field of the request (default: none)\n"
    "  --threads T           load threads (default 1, at most 256)\n"
    "  --connections C       keep-alive connections over all threads (default 64, at least T, at most 10000)\n"
    "  --pipeline P          requests per batch (default 1: no pipelining; at most 256)\n"
    "  --duration S          measured seconds (default 5, 1 to 3600)\n"
    "  --warmup S            unmeasured seconds of load before them (default 1, 0 to 600)\n"
    "  --measure-pids LIST   comma-separated pids whose CPU time is read over the measured window\n"
    "  --wait S              retry the first connection for up to S seconds while it is refused (default 0)\n"
    "  --check               two requests on one connection; print the second body; fail unless both are 2xx\n"
    "                        and the connection stays open\n"
    "Responses other than 2xx are counted apart (non_2xx) and make the exit status 1.\n";

const load_tools::command_line cli("http_load", usage_text);

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
    if (flag == "--host") {
      o.host = value;
    } else if (flag == "--port") {
      o.port = cli.number(value, 1, 65535, flag);
    } else if (flag == "--path") {
      o.path = value;
    } else if (flag == "--method") {
      o.method = value;
    } else if (flag == "--body") {
      if (o.has_body) cli.usage_error("give one of --body and --body-file, once");
      o.body = value;
      o.has_body = true;
    } else if (flag == "--body-file") {
      if (o.has_body) cli.usage_error("give one of --body and --body-file, once");
      std::ifstream file{std::string(value), std::ios::binary};
      if (!file) cli.usage_error("cannot read --body-file " + std::string(value));
      o.body.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
      o.has_body = true;
    } else if (flag == "--content-type") {
      o.content_type = value;
    } else if (flag == "--threads") {
      o.threads = cli.number(value, 1, 256, flag);
    } else if (flag == "--connections") {
      o.connections = cli.number(value, 1, 10000, flag);
    } else if (flag == "--pipeline") {
      o.pipeline = cli.number(value, 1, 256, flag);
    } else if (flag == "--duration") {
      o.duration_s = cli.number(value, 1, 3600, flag);
    } else if (flag == "--warmup") {
      o.warmup_s = cli.number(value, 0, 600, flag);
    } else if (flag == "--wait") {
      o.wait_s = cli.number(value, 0, 600, flag);
    } else if (flag == "--measure-pids") {
      o.measure_pids = cli.pid_list(value, flag);
    } else {
      cli.usage_error("unknown option " + std::string(flag));
    }
  }
  if (o.port == 0) cli.usage_error("--port is required");
  if (o.connections < o.threads) cli.usage_error("--connections must be at least --threads");
  // The request target must be one token without spaces or line breaks (RFC 9112 §3.2).
  if (o.path.empty() || o.path.front() != '/' || o.path.find_first_of(" \t\r\n") != std::string::npos) {
    cli.usage_error("--path must start with / and hold no whitespace");
  }
  if (const std::string problem = http_load::method_problem(o.method); !problem.empty()) {
    cli.usage_error("--method " + o.method + ": " + problem);
  }
  if (!http_load::is_field_value(o.content_type)) cli.usage_error("--content-type must not hold control characters");
  if (o.body.size() > max_body_bytes) cli.usage_error("the body is larger than 1 MiB");
  return o;
}

timeval to_timeval(clock_type::duration d) {
  const auto us = std::max<std::int64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count(), 1000);
  return timeval{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
}

/// Opens a TCP connection to `address`, blocking for at most `timeout` (SO_SNDTIMEO bounds connect() on
/// Linux), with TCP_NODELAY so that a batch is sent at once. Returns the socket, or -1 with errno set.
int connect_to(const sockaddr_in& address, clock_type::duration timeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const timeval tv = to_timeval(timeout);
  const int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
      ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    const int error = errno;
    ::close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

/// Waits until something accepts connections at `address`, retrying every 20 ms while the connection is
/// refused, for up to `wait`. False (with a message) when it is still refused then, or fails otherwise.
bool wait_for_listener(const sockaddr_in& address, std::chrono::seconds wait) {
  const auto deadline = clock_type::now() + wait;
  for (;;) {
    const int fd = connect_to(address, io_timeout);
    if (fd >= 0) {
      ::close(fd);
      return true;
    }
    const int error = errno;
    if (error != ECONNREFUSED || clock_type::now() >= deadline) {
      std::fprintf(stderr, "http_load: cannot connect: %s\n", std::strerror(error));
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

/// Error counts of a run, by kind.
struct error_counts {
  std::uint64_t connect = 0;  ///< a connection could not be opened again after a failure
  std::uint64_t io = 0;       ///< send() or recv() failed (a reset, for instance)
  std::uint64_t closed = 0;   ///< the server closed a connection (or said it would, Connection: close)
  std::uint64_t parse = 0;    ///< a response could not be framed, or came without a request
  std::uint64_t status = 0;   ///< a response with a status other than 2xx

  std::uint64_t total() const { return connect + io + closed + parse + status; }
  void add(const error_counts& o) {
    connect += o.connect;
    io += o.io;
    closed += o.closed;
    parse += o.parse;
    status += o.status;
  }
};

/// The fixed schedule of a load run, the same for every thread.
struct schedule {
  clock_type::time_point measure_start;  ///< end of the warm-up
  clock_type::time_point measure_end;    ///< end of the run
};

/// One load thread: its connections, its epoll instance and what it counted.
class load_thread {
 public:
  load_thread(const sockaddr_in& address, std::string_view batch, unsigned pipeline, unsigned connections)
      : address_(address), batch_(batch), pipeline_(pipeline), connections_(connections) {}

  load_thread(const load_thread&) = delete;
  load_thread& operator=(const load_thread&) = delete;

  ~load_thread() {
    for (connection& c : connections_) {
      if (c.fd >= 0) ::close(c.fd);
    }
    if (epoll_ >= 0) ::close(epoll_);
  }

  /// Opens every connection, giving up at `deadline`. False, with error() set, when one cannot be opened.
  bool connect_all(clock_type::time_point deadline) {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) return fail("epoll_create1", errno);
    for (connection& c : connections_) {
      const auto left = deadline - clock_type::now();
      if (left <= clock_type::duration::zero()) return fail("connecting took too long", ETIMEDOUT);
      if (!open(c, left)) return fail("connect", errno);
    }
    return true;
  }

  /// Runs the closed loop until the schedule's end.
  void run(const schedule& s) {
    schedule_ = s;
    for (connection& c : connections_) send_batch(c);
    std::vector<epoll_event> events(256);
    for (;;) {
      const auto now = clock_type::now();
      if (now >= schedule_.measure_end) break;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(schedule_.measure_end - now);
      const int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()),
                                 static_cast<int>(std::min<std::int64_t>(left.count() + 1, 100)));
      for (int i = 0; i < n; ++i) {
        connection& c = *static_cast<connection*>(events[static_cast<std::size_t>(i)].data.ptr);
        if (c.fd >= 0 && (events[static_cast<std::size_t>(i)].events & EPOLLOUT) != 0) write_some(c);
        if (c.fd >= 0 && (events[static_cast<std::size_t>(i)].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
          read_some(c);
        }
      }
    }
  }

  std::uint64_t responses() const { return responses_; }
  std::uint64_t non_2xx() const { return non_2xx_; }
  const latency_histogram& latency() const { return latency_; }
  const error_counts& errors() const { return errors_; }
  const std::string& error() const { return error_; }

 private:
  struct connection {
    int fd = -1;
    response_parser parser;
    std::unique_ptr<char[]> buffer = std::make_unique<char[]>(read_buffer_bytes);
    std::size_t buffered = 0;           ///< received bytes not consumed by the parser yet
    std::size_t written = 0;            ///< bytes of the current batch written
    unsigned outstanding = 0;           ///< responses of the current batch still due
    bool writing = false;               ///< EPOLLOUT is armed: the batch did not fit in the socket at once
    clock_type::time_point batch_start; ///< when the current batch's first byte was written
  };

  bool fail(const char* what, int error) {
    error_ = std::string(what) + ": " + std::strerror(error);
    return false;
  }

  bool open(connection& c, clock_type::duration timeout) {
    c.fd = connect_to(address_, timeout);
    if (c.fd < 0) return false;
    c.parser = response_parser{};
    c.buffered = 0;
    c.writing = false;
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.ptr = &c;
    if (::fcntl(c.fd, F_SETFL, O_NONBLOCK) != 0 || ::epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &event) != 0) {
      const int error = errno;
      ::close(c.fd);
      c.fd = -1;
      errno = error;
      return false;
    }
    return true;
  }

  /// After a failure on `c`: opens it again and starts a new batch, or, if that fails too, leaves it closed
  /// for the rest of the run. The requests of the abandoned batch are neither counted nor retried. The new
  /// batch is written when epoll reports the socket writable, not from here: a write that failed again
  /// would otherwise reopen from within reopen, without bound.
  void reopen(connection& c) {
    ::close(c.fd);  // also removes it from the epoll set
    c.fd = -1;
    if (!open(c, io_timeout)) {
      ++errors_.connect;
      return;
    }
    start_batch(c);
    set_writing(c, true);
  }

  void start_batch(connection& c) {
    c.written = 0;
    c.outstanding = pipeline_;
    c.batch_start = clock_type::now();
  }

  void send_batch(connection& c) {
    start_batch(c);
    write_some(c);
  }

  void write_some(connection& c) {
    while (c.written < batch_.size()) {
      const ssize_t n = ::send(c.fd, batch_.data() + c.written, batch_.size() - c.written, MSG_NOSIGNAL);
      if (n > 0) {
        c.written += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!c.writing) set_writing(c, true);
        return;
      } else {
        ++errors_.io;
        reopen(c);
        return;
      }
    }
    if (c.writing) set_writing(c, false);
  }

  void set_writing(connection& c, bool on) {
    epoll_event event{};
    event.events = on ? EPOLLIN | EPOLLOUT : EPOLLIN;
    event.data.ptr = &c;
    ::epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &event);
    c.writing = on;
  }

  void read_some(connection& c) {
    const ssize_t n = ::recv(c.fd, c.buffer.get() + c.buffered, read_buffer_bytes - c.buffered, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    const auto now = clock_type::now();
    if (n < 0) {
      ++errors_.io;
      reopen(c);
      return;
    }
    if (n == 0) {
      // The server closed the connection; that may end a response whose body runs until the close.
      if (c.parser.finish_at_close() && c.outstanding > 0) count_response(c, now);
      ++errors_.closed;
      reopen(c);
      return;
    }
    c.buffered += static_cast<std::size_t>(n);
    std::size_t offset = 0;
    for (;;) {
      const auto step = c.parser.parse(std::string_view(c.buffer.get() + offset, c.buffered - offset));
      offset += step.consumed;
      if (step.error != parse_error::none) {
        note_parse_error(step.error);
        reopen(c);
        return;
      }
      if (!step.complete) break;
      if (c.outstanding == 0) {
        note_parse_error(parse_error::none);  // a response nobody asked for
        reopen(c);
        return;
      }
      count_response(c, now);
      if (!c.parser.keep_alive()) {
        ++errors_.closed;
        reopen(c);
        return;
      }
      if (c.outstanding == 0) send_batch(c);
    }
    // Keep the unparsed rest (at most a partial line) at the start of the buffer.
    c.buffered -= offset;
    if (c.buffered > 0 && offset > 0) std::memmove(c.buffer.get(), c.buffer.get() + offset, c.buffered);
  }

  void count_response(connection& c, clock_type::time_point now) {
    --c.outstanding;
    const bool success = is_success(c.parser.status());
    if (!success) ++errors_.status;
    if (now < schedule_.measure_start || now >= schedule_.measure_end) return;
    if (!success) {
      // A refusal (503 from a full queue, say) is quick to make: counted with the successes it would
      // inflate the throughput and flatter the latency.
      ++non_2xx_;
      return;
    }
    ++responses_;
    if (c.outstanding == 0) {
      latency_.record(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.batch_start).count()));
    }
  }

  void note_parse_error(parse_error e) {
    ++errors_.parse;
    if (first_parse_error_.empty()) {
      first_parse_error_ = e == parse_error::none ? "a response without a request" : to_string(e);
      std::fprintf(stderr, "http_load: cannot parse a response: %s\n", first_parse_error_.c_str());
    }
  }

  sockaddr_in address_;
  std::string_view batch_;
  unsigned pipeline_;
  std::vector<connection> connections_;
  int epoll_ = -1;
  schedule schedule_{};
  std::uint64_t responses_ = 0;
  std::uint64_t non_2xx_ = 0;
  latency_histogram latency_;
  error_counts errors_;
  std::string error_;
  std::string first_parse_error_;
};

/// --check: two requests one after the other on one connection; prints the second response's body.
int run_check(const sockaddr_in& address, const std::string& request) {
  const int fd = connect_to(address, io_timeout);
  if (fd < 0) {
    std::fprintf(stderr, "http_load: --check: cannot connect: %s\n", std::strerror(errno));
    return 1;
  }
  const timeval tv = to_timeval(io_timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  response_parser parser;
  std::string body;
  std::vector<char> buffer(read_buffer_bytes);
  std::size_t buffered = 0;
  const char* problem = nullptr;
  for (int exchange = 1; exchange <= 2 && problem == nullptr; ++exchange) {
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
      problem = "cannot send the request";
      break;
    }
    body.clear();
    bool complete = false;
    while (!complete && problem == nullptr) {
      const ssize_t n = ::recv(fd, buffer.data() + buffered, buffer.size() - buffered, 0);
      if (n <= 0) {
        problem = n < 0 ? "no response (timeout or error)" : "the server closed the connection";
        break;
      }
      buffered += static_cast<std::size_t>(n);
      const auto step = parser.parse(std::string_view(buffer.data(), buffered), &body);
      if (step.error != parse_error::none) {
        std::fprintf(stderr, "http_load: --check: %s\n", std::string(to_string(step.error)).c_str());
        problem = "cannot parse the response";
      } else if (step.complete && step.consumed != buffered) {
        problem = "more data than one response";
      } else if (body.size() > 1024 * 1024) {
        problem = "a body of more than 1 MiB";
      }
      complete = step.complete;
      buffered -= step.consumed;
      std::memmove(buffer.data(), buffer.data() + step.consumed, buffered);
    }
    if (complete && !is_success(parser.status())) {
      std::fprintf(stderr, "http_load: --check: status %d\n", parser.status());
      problem = "the status is not 2xx";
    } else if (problem == nullptr && !parser.keep_alive()) {
      problem = "the server does not keep the connection open";
    }
  }
  ::close(fd);
  if (problem != nullptr) {
    std::fprintf(stderr, "http_load: --check: %s\n", problem);
    return 1;
  }
  std::fwrite(body.data(), 1, body.size(), stdout);
  return 0;
}

/// A load run as the options say; prints the report and returns the exit status.
int run_load(const options& o, const sockaddr_in& address, const std::string& request) {
  if (!raise_file_limit(o.connections)) {
    std::fprintf(stderr, "http_load: %u connections need more open files than the hard limit allows\n",
                 o.connections);
    return 1;
  }
  std::string batch;
  for (unsigned i = 0; i < o.pipeline; ++i) batch += request;

  std::vector<std::unique_ptr<load_thread>> loads;
  for (unsigned t = 0; t < o.threads; ++t) {
    // Connections are spread evenly; the first C mod T threads take one more.
    const unsigned share = o.connections / o.threads + (t < o.connections % o.threads ? 1 : 0);
    loads.push_back(std::make_unique<load_thread>(address, batch, o.pipeline, share));
  }

  // Every thread connects, then waits for the common start, so that the warm-up and the window begin when
  // all connections are open. `go` is 1 to start and 2 to give up.
  std::atomic<unsigned> connected{0};
  std::atomic<bool> connect_failed{false};
  std::atomic<int> go{0};
  schedule s{};
  const auto deadline = clock_type::now() + connect_deadline;
  std::vector<std::thread> threads;
  for (auto& load : loads) {
    threads.emplace_back([&, l = load.get()] {
      if (!l->connect_all(deadline)) connect_failed = true;
      connected.fetch_add(1);
      connected.notify_all();
      go.wait(0);
      if (go.load() == 1) l->run(s);
    });
  }
  for (unsigned n = connected.load(); n < o.threads; n = connected.load()) connected.wait(n);
  const auto start = clock_type::now();
  s.measure_start = start + std::chrono::seconds(o.warmup_s);
  s.measure_end = s.measure_start + std::chrono::seconds(o.duration_s);
  go = connect_failed ? 2 : 1;
  go.notify_all();

  std::int64_t cpu_before = 0, cpu_after = 0, server_before = -1, server_after = -1;
  if (!connect_failed) {
    std::this_thread::sleep_until(s.measure_start);
    cpu_before = own_cpu_us();
    if (!o.measure_pids.empty()) server_before = processes_cpu_us(o.measure_pids);
    std::this_thread::sleep_until(s.measure_end);
    cpu_after = own_cpu_us();
    if (!o.measure_pids.empty()) server_after = processes_cpu_us(o.measure_pids);
  }
  for (std::thread& t : threads) t.join();
  if (connect_failed) {
    for (auto& load : loads) {
      if (!load->error().empty()) {
        std::fprintf(stderr, "http_load: cannot open %u connections: %s\n", o.connections, load->error().c_str());
        break;
      }
    }
    return 1;
  }

  std::uint64_t responses = 0, non_2xx = 0;
  latency_histogram latency;
  error_counts errors;
  for (auto& load : loads) {
    responses += load->responses();
    non_2xx += load->non_2xx();
    latency.merge(load->latency());
    errors.add(load->errors());
  }
  const std::int64_t window_us = std::int64_t{o.duration_s} * 1000000;
  const std::int64_t cpu_us = cpu_after - cpu_before;
  const std::int64_t server_cpu_us = server_before >= 0 && server_after >= 0 ? server_after - server_before : -1;
  const auto rps = static_cast<std::uint64_t>(static_cast<double>(responses) * 1e6 / static_cast<double>(window_us));
  const auto us = [](std::uint64_t ns) { return static_cast<unsigned long long>((ns + 500) / 1000); };

  std::printf("http_load: %s:%u %s %s, %u threads, %u connections, %u per batch, %u s warm-up + %u s\n",
              o.host.c_str(), o.port, o.method.c_str(), o.path.c_str(), o.threads, o.connections, o.pipeline,
              o.warmup_s, o.duration_s);
  std::printf("  %llu 2xx responses in %u s: %llu requests/s; %llu other responses\n",
              static_cast<unsigned long long>(responses), o.duration_s, static_cast<unsigned long long>(rps),
              static_cast<unsigned long long>(non_2xx));
  std::printf("  latency %s: p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms (%llu samples)\n",
              o.pipeline > 1 ? "per batch" : "per request", static_cast<double>(latency.percentile(0.50)) / 1e6,
              static_cast<double>(latency.percentile(0.90)) / 1e6, static_cast<double>(latency.percentile(0.99)) / 1e6,
              static_cast<double>(latency.max()) / 1e6, static_cast<unsigned long long>(latency.count()));
  std::printf("  errors: connect %llu, io %llu, closed %llu, parse %llu, status other than 2xx %llu\n",
              static_cast<unsigned long long>(errors.connect), static_cast<unsigned long long>(errors.io),
              static_cast<unsigned long long>(errors.closed), static_cast<unsigned long long>(errors.parse),
              static_cast<unsigned long long>(errors.status));
  std::printf("  CPU over the window: http_load %.2f s", static_cast<double>(cpu_us) / 1e6);
  if (server_cpu_us >= 0) {
    std::printf(", measured processes %.2f s (%.2f us per response)", static_cast<double>(server_cpu_us) / 1e6,
                responses > 0 ? static_cast<double>(server_cpu_us) / static_cast<double>(responses) : 0.0);
  }
  std::printf("\nSB_LOAD requests=%llu duration_us=%lld rps=%llu p50_us=%llu p90_us=%llu p99_us=%llu max_us=%llu "
              "samples=%llu errors=%llu err_connect=%llu err_io=%llu err_closed=%llu err_parse=%llu "
              "err_status=%llu non_2xx=%llu cpu_us=%lld server_cpu_us=%lld threads=%u connections=%u pipeline=%u\n",
              static_cast<unsigned long long>(responses), static_cast<long long>(window_us),
              static_cast<unsigned long long>(rps), us(latency.percentile(0.50)), us(latency.percentile(0.90)),
              us(latency.percentile(0.99)), us(latency.max()), static_cast<unsigned long long>(latency.count()),
              static_cast<unsigned long long>(errors.total()), static_cast<unsigned long long>(errors.connect),
              static_cast<unsigned long long>(errors.io), static_cast<unsigned long long>(errors.closed),
              static_cast<unsigned long long>(errors.parse), static_cast<unsigned long long>(errors.status),
              static_cast<unsigned long long>(non_2xx), static_cast<long long>(cpu_us), static_cast<long long>(server_cpu_us), o.threads, o.connections,
              o.pipeline);
  std::fflush(stdout);
  if (!o.measure_pids.empty() && server_cpu_us < 0) {
    std::fprintf(stderr, "http_load: a measured process could not be read (did it exit?)\n");
    return 1;
  }
  return responses > 0 && errors.total() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_options(argc, argv);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(o.port));
  if (::inet_pton(AF_INET, o.host.c_str(), &address.sin_addr) != 1) cli.usage_error("--host must be a numeric IPv4 address");
  const std::string request = http_load::build_request(request_spec{.method = o.method,
                                                                      .target = o.path,
                                                                      .host = o.host + ":" + std::to_string(o.port),
                                                                      .content_type = o.content_type,
                                                                      .body = o.body,
                                                                      .has_body = o.has_body});

  if (!wait_for_listener(address, std::chrono::seconds(o.wait_s))) return 1;
  return o.check ? run_check(address, request) : run_load(o, address, request);
}
