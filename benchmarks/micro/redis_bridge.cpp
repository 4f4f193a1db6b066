// The Redis bridge's cost per message that comes from Redis, against a redis-server this program starts (loopback,
// a free port, no persistence) and stops by its pid at the end.
//
// A publisher connection (a thread of its own) PUBLISHes 64-byte messages to one channel, `batch` of them pipelined
// in one write per iteration, and the iteration ends when the receiver has them all:
//  - bm_bridge_receive: a `redis_bridge` subscribed in Redis for one local subscriber (a callback) republishes each
//    message into its broker; counted when the subscriber has it.
//  - bm_client_receive: the peer, a plain `resp::client` subscribed in Redis to the same channel; counted when its
//    push handler has the message. What receiving costs without the bridge: the ratio of the two is the bridge's
//    own cost (envelope decoding, the incoming bookkeeping, the broker's publish and delivery).
// The receiver runs on the benchmark's thread, so `cpu_ns_per_message` (that thread's CPU time) leaves out Redis and
// the publisher; `messages_per_second` is wall-clock; `allocations_per_message` counts that thread's operator new.
// Each wait is bounded by a deadline; without redis-server the benchmarks are skipped.
#include <switchboard/pubsub/broker.hpp>
#include <switchboard/pubsub/redis_bridge.hpp>
#include <switchboard/resp/client.hpp>
#include <switchboard/resp/encoder.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

// Allocations made by the benchmark's thread (the receiver): the publisher's thread is not counted.
namespace {
thread_local std::int64_t thread_allocations = 0;
}  // namespace

void* operator new(std::size_t size) {
  ++thread_allocations;
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
// Not inlined: GCC would take the free() of a pointer from operator new, inlined, for a mismatch.
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using namespace std::chrono_literals;
using namespace switchboard;

const std::string channel = "sensors.kitchen.temperature";  // longer than a short-string buffer, as topics often are
const std::string payload(64, 'x');
constexpr std::int64_t batch = 256;       // messages pipelined per iteration
constexpr auto deadline = 10s;            // for any one wait: setting up, one batch, stopping the server

// --- redis-server, started and stopped by pid ---

// Readiness is an event: with `--supervised systemd`, redis-server sends "READY=1" to the datagram socket named by
// NOTIFY_SOCKET once it accepts connections.
struct redis_process {
  pid_t pid = -1;
  std::uint16_t port = 0;
  std::string error;  // why it is not running
};

std::uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

void set_timeouts(int fd) {
  timeval tv{.tv_sec = std::chrono::seconds(deadline).count(), .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// SIGTERM, then SIGKILL if it has not exited within `deadline`.
void stop_redis(redis_process& r) {
  if (r.pid <= 0) return;
  ::kill(r.pid, SIGTERM);
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (::waitpid(r.pid, nullptr, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= until) {
      ::kill(r.pid, SIGKILL);
      ::waitpid(r.pid, nullptr, 0);
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  r.pid = -1;
}

redis_process start_redis() {
  redis_process r;
  r.port = free_loopback_port();
  const std::string notify_path = "/tmp/bench-redis-" + std::to_string(::getpid()) + ".notify";
  const int notify = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, notify_path.c_str(), sizeof addr.sun_path - 1);
  ::unlink(notify_path.c_str());
  ::bind(notify, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  set_timeouts(notify);

  std::vector<std::string> args = {"redis-server", "--port", std::to_string(r.port), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no", "--supervised", "systemd",
                                   "--dir", "/tmp", "--logfile", ""};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string notify_env = "NOTIFY_SOCKET=" + notify_path;
  std::vector<char*> envp = {notify_env.data()};
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  envp.push_back(nullptr);
  posix_spawn_file_actions_t quiet;  // its log to /dev/null, not into the benchmark's output
  posix_spawn_file_actions_init(&quiet);
  posix_spawn_file_actions_addopen(&quiet, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  const int spawned = ::posix_spawnp(&r.pid, "redis-server", &quiet, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&quiet);
  if (spawned != 0) {
    r.pid = -1;
    r.error = "redis-server is not installed (" + std::string(std::strerror(spawned)) + ")";
  } else {
    char datagram[512];
    for (;;) {  // bounded: each receive times out after `deadline`
      const ssize_t n = ::recv(notify, datagram, sizeof datagram, 0);
      if (n < 0) {
        r.error = "redis-server did not report ready";
        break;
      }
      if (std::string_view(datagram, static_cast<std::size_t>(n)).find("READY=1") != std::string_view::npos) break;
    }
  }
  ::close(notify);
  ::unlink(notify_path.c_str());
  if (!r.error.empty()) stop_redis(r);
  return r;
}

redis_process redis;  // started and stopped by main

// --- The publisher: a blocking socket on a thread of its own ---

class publisher {
 public:
  explicit publisher(std::uint16_t port) : work_(asio::make_work_guard(ctx_)) {
    resp::encoder enc(batch_);
    for (std::int64_t i = 0; i < batch; ++i) enc.command({"PUBLISH", channel, payload});
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    set_timeouts(fd_);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) failed = true;
    thread_ = std::thread([this] { ctx_.run(); });
  }
  ~publisher() {
    work_.reset();
    thread_.join();
    ::close(fd_);
  }

  /// Publishes one batch (pipelined: one write) and reads its replies, on the publisher's thread.
  void send_batch() {
    asio::post(ctx_, [this] {
      if (failed) return;
      std::size_t written = 0;
      while (written < batch_.size()) {
        const ssize_t n = ::send(fd_, batch_.data() + written, batch_.size() - written, MSG_NOSIGNAL);
        if (n <= 0) return fail();
        written += static_cast<std::size_t>(n);
      }
      std::int64_t replies = 0;  // each reply is an integer, ":<receivers>\r\n"
      while (replies < batch) {
        char buf[4096];
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) return fail();
        for (ssize_t i = 0; i < n; ++i) replies += buf[i] == '\n';
      }
    });
  }

  std::atomic<bool> failed{false};

 private:
  void fail() { failed = true; }

  asio::io_context ctx_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::string batch_;
  int fd_ = -1;
  std::thread thread_;
};

// --- The measurement, shared by both receivers ---

// Runs `ctx` until `done()` or `deadline`; for setting up, outside the timed loop.
bool run_until(asio::io_context& ctx, const std::function<bool()>& done) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    if (ctx.stopped()) ctx.restart();
    ctx.run_one_for(10ms);
  }
  return true;
}

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// What a receiver counts: its messages, and the io_context it stops once it has `target` of them.
struct receiver {
  asio::io_context& ctx;
  std::int64_t received = 0;
  std::int64_t target = 0;
  void on_message() {
    if (++received == target) ctx.stop();
  }
};

// The timed loop: each iteration publishes a batch and runs `ctx` until the receiver has it (or `deadline`).
void measure(benchmark::State& state, asio::io_context& ctx, receiver& r) {
  publisher pub(redis.port);
  asio::steady_timer timeout(ctx);
  bool timed_out = false;
  const std::int64_t allocations_before = thread_allocations;
  const double cpu_before = thread_cpu_seconds();
  const auto wall_before = std::chrono::steady_clock::now();
  for (auto _ : state) {
    r.target = r.received + batch;
    pub.send_batch();
    timeout.expires_after(deadline);
    timeout.async_wait([&](std::error_code ec) {
      if (ec) return;
      timed_out = true;
      ctx.stop();
    });
    ctx.restart();
    ctx.run();  // until the receiver stops it, or the deadline does
    timeout.cancel();
    if (timed_out || r.received < r.target) {
      state.SkipWithError(pub.failed ? "the publisher lost its connection" : "a batch did not arrive in time");
      break;
    }
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_before).count();
  const double cpu = thread_cpu_seconds() - cpu_before;
  const auto messages = static_cast<double>(state.iterations() * batch);
  const auto allocations = static_cast<double>(thread_allocations - allocations_before);
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetBytesProcessed(state.iterations() * batch * static_cast<std::int64_t>(payload.size()));
  state.counters["messages_per_second"] = messages / wall;
  state.counters["cpu_ns_per_message"] = cpu * 1e9 / messages;
  state.counters["allocations_per_message"] = allocations / messages;
  ctx.restart();
  ctx.poll();  // the cancelled timeout's handler
}

// (a) Through the bridge to one local subscriber.
void bm_bridge_receive(benchmark::State& state) {
  if (redis.pid <= 0) return state.SkipWithError(redis.error.c_str());
  asio::io_context ctx;
  pubsub::broker b(ctx);
  receiver r{ctx};
  std::optional<pubsub::redis_bridge> bridge;
  bridge.emplace(b, ctx.get_executor(), pubsub::redis_bridge_options{.redis = {.port = redis.port}});
  bridge->start();
  auto sub = b.subscribe(channel, {.on_event = [&](std::error_code, const pubsub::event& e) {
                                     if (e.is_message()) r.on_message();
                                   }});
  if (!run_until(ctx, [&] { return bridge->stats().channels == 1; })) {
    return state.SkipWithError("the bridge did not subscribe in Redis");
  }
  measure(state, ctx, r);
  if (bridge->stats().dropped_incoming != 0) state.SkipWithError("the bridge dropped messages");
  bridge.reset();
  ctx.restart();
  ctx.poll();
}
BENCHMARK(bm_bridge_receive)->UseRealTime();

// (b) The peer: a plain client subscribed in Redis.
void bm_client_receive(benchmark::State& state) {
  if (redis.pid <= 0) return state.SkipWithError(redis.error.c_str());
  asio::io_context ctx;
  receiver r{ctx};
  bool subscribed = false;
  resp::client client(ctx.get_executor(), {.port = redis.port});
  client.set_push_handler([&](resp::value v) {
    if (v.elements.size() != 3) return;
    if (v.elements[0].text == "message") r.on_message();
    else if (v.elements[0].text == "subscribe") subscribed = true;
  });
  client.async_connect([&](std::error_code ec) {
    if (!ec) client.async_exec(resp::command("SUBSCRIBE", channel), [](std::error_code, resp::value) {});
  });
  if (!run_until(ctx, [&] { return subscribed; })) return state.SkipWithError("the client did not subscribe");
  measure(state, ctx, r);
  client.close();
  ctx.restart();
  ctx.poll();
}
BENCHMARK(bm_client_receive)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  redis = start_redis();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  stop_redis(redis);
  return 0;
}
