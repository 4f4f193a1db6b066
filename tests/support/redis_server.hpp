// A real redis-server for tests that compare our codecs and matchers with Redis itself, and a small RESP client
// to talk to it. The server starts on a free loopback port and is stopped by its pid when the object goes away.
// Readiness is an event, not a guess: redis-server is started with `--supervised systemd`, so it sends "READY=1"
// to the datagram socket named by NOTIFY_SOCKET once it accepts connections, and we wait for that datagram.
// Each server works in a directory of its own (its log, a cluster node's state file), removed with the object.
#pragma once

#include "support/test_support.hpp"

#include <switchboard/resp/encoder.hpp>
#include <switchboard/resp/reply_parser.hpp>

#include <asio/buffer.hpp>
#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/datagram_protocol.hpp>
#include <asio/ssl/context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <signal.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace switchboard::test {

/// A free loopback port: bound to port 0 and let go, for a server to take just after.
inline std::uint16_t free_loopback_port() {
  asio::io_context ctx;
  asio::ip::tcp::acceptor probe(ctx, {asio::ip::address_v4::loopback(), 0});
  return probe.local_endpoint().port();
}

/// A redis-server of this test's own, on 127.0.0.1:port(), without persistence, working in `directory()` (a
/// relative file name in `extra_args`, such as a cluster config file, lands there). Throws std::runtime_error if
/// it does not report ready within `deadline`. Tests check `have_program("redis-server")` first and skip without
/// it.
class redis_server {
 public:
  explicit redis_server(const std::vector<std::string>& extra_args = {},
                        std::chrono::steady_clock::duration deadline = 10s)
      : redis_server(free_loopback_port(), extra_args, deadline) {}

  /// On a given port: to start a server again where an earlier one was (a restart).
  redis_server(std::uint16_t port, const std::vector<std::string>& extra_args,
               std::chrono::steady_clock::duration deadline = 10s)
      : port_(port), directory_("redis-" + std::to_string(::getpid()) + "-" + std::to_string(port) + "-") {
    asio::io_context ctx;
    const std::string notify_path = directory_.path() + "/notify";
    asio::local::datagram_protocol::socket notify(ctx, asio::local::datagram_protocol::endpoint(notify_path));
    std::vector<std::string> argv = {"env", "NOTIFY_SOCKET=" + notify_path, "redis-server",
                                     "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", "no",
                                     "--supervised", "systemd", "--dir", directory_.path()};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    process_ = std::make_unique<background_process>(argv, directory_.path() + "/redis.log");

    bool ready = false;
    std::array<char, 512> datagram{};
    std::function<void()> receive = [&] {
      notify.async_receive(asio::buffer(datagram), [&](std::error_code ec, std::size_t n) {
        if (ec) return;
        if (std::string_view(datagram.data(), n).find("READY=1") != std::string_view::npos) {
          ready = true;
        } else {
          receive();
        }
      });
    };
    receive();
    const bool ok = run_until(ctx, [&] { return ready || !process_->running(); }, deadline);
    std::remove(notify_path.c_str());
    if (!ok || !ready) {
      throw std::runtime_error("redis-server did not become ready on port " + std::to_string(port_) + ":\n" +
                               process_->log());
    }
  }

  std::uint16_t port() const noexcept { return port_; }
  const std::string& directory() const noexcept { return directory_.path(); }

  /// Freezes the server (SIGSTOP): its connections stay open and it answers nothing, as a hung server or a network
  /// that loses every packet would look to a client. `resume` (SIGCONT) lets it go on.
  void pause() {
    ::kill(process_->pid(), SIGSTOP);
    paused_ = true;
  }
  void resume() {
    ::kill(process_->pid(), SIGCONT);
    paused_ = false;
  }

  /// Stops the server now (SIGTERM, then SIGKILL after the grace period).
  void stop() {
    if (process_ && paused_) resume();  // a stopped process would only take the SIGKILL
    process_.reset();
  }
  ~redis_server() { stop(); }
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

 private:
  std::uint16_t port_ = 0;
  scratch_directory directory_;  // declared before the process: removed after it has stopped
  std::unique_ptr<background_process> process_;
  bool paused_ = false;
};

/// A redis-server that also listens with TLS, on `tls_port()` (Debian's redis-server is built with TLS), with the
/// test's self-signed certificate for localhost and 127.0.0.1; clients are not asked for certificates.
class tls_redis_server {
 public:
  tls_redis_server() : tls_port_(free_loopback_port()), server_(arguments(tls_port_)) {}

  /// The plain port.
  std::uint16_t port() const noexcept { return server_.port(); }
  std::uint16_t tls_port() const noexcept { return tls_port_; }

  /// A client context that trusts the server's certificate.
  static std::shared_ptr<asio::ssl::context> trusting_client_tls() {
    auto tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    tls->add_certificate_authority(asio::buffer(localhost_certificate().certificate_pem));
    return tls;
  }

 private:
  static std::vector<std::string> arguments(std::uint16_t tls_port) {
    const test_certificate& cert = localhost_certificate();
    const std::string cert_file = write_temp_file("redis-tls-cert.pem", cert.certificate_pem);
    const std::string key_file = write_temp_file("redis-tls-key.pem", cert.private_key_pem);
    return {"--tls-port", std::to_string(tls_port), "--tls-cert-file", cert_file, "--tls-key-file", key_file,
            "--tls-ca-cert-file", cert_file, "--tls-auth-clients", "no"};
  }

  std::uint16_t tls_port_;
  redis_server server_;
};

/// A plain RESP client connection to a local Redis, for tests. Every wait is bounded by `deadline`; a wait that
/// runs out throws std::runtime_error, so that a disagreement with Redis fails the test instead of hanging it.
class redis_client {
 public:
  /// Connects to 127.0.0.1:`port`, from the loopback address `from` when one is given (any of 127.0.0.0/8: a
  /// second client address for the tests of per-address limits).
  redis_client(asio::io_context& ctx, std::uint16_t port, std::chrono::steady_clock::duration deadline = 10s,
               const char* from = nullptr)
      : ctx_(ctx), socket_(ctx), deadline_(deadline) {
    if (from != nullptr) {
      socket_.open(asio::ip::tcp::v4());
      socket_.bind({asio::ip::make_address(from), 0});
    }
    socket_.connect({asio::ip::address_v4::loopback(), port});
    socket_.set_option(asio::ip::tcp::no_delay(true));
  }

  /// Writes raw bytes.
  void write(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes.data(), bytes.size())); }

  /// Sends a command (an array of bulk strings).
  void send(std::initializer_list<std::string_view> args) {
    std::string out;
    resp::encoder(out).command(args);
    write(out);
  }

  /// Reads the next value (reply or push).
  resp::value read() {
    frame_.clear();
    for (;;) {
      std::error_code ec;
      const std::size_t used = parser_.parse(pending_, ec);
      if (ec) throw std::runtime_error("bad RESP from redis-server: " + ec.message());
      frame_.append(pending_, 0, used);
      pending_.erase(0, used);
      if (parser_.has_value()) return parser_.take();
      if (!read_some()) throw std::runtime_error("redis-server closed the connection");
    }
  }

  /// The bytes of the value the last `read` returned, exactly as Redis sent them.
  const std::string& last_frame() const noexcept { return frame_; }

  /// Sends a command and reads one value.
  resp::value call(std::initializer_list<std::string_view> args) {
    send(args);
    return read();
  }

  /// Reads raw bytes until the server closes the connection (what it sends after a protocol error).
  std::string read_until_closed() {
    while (read_some()) {
    }
    return std::exchange(pending_, {});
  }

 private:
  // Appends what arrives to pending_; false at end of stream.
  bool read_some() {
    std::array<char, 16384> buf;
    bool done = false;
    std::error_code result;
    std::size_t got = 0;
    socket_.async_read_some(asio::buffer(buf), [&](std::error_code ec, std::size_t n) {
      result = ec;
      got = n;
      done = true;
    });
    if (!run_until(ctx_, [&] { return done; }, deadline_)) {
      socket_.cancel();
      run_until(ctx_, [&] { return done; }, deadline_);
      throw std::runtime_error("timed out waiting for redis-server");
    }
    pending_.append(buf.data(), got);
    if (result == asio::error::eof || result == asio::error::connection_reset) return false;
    if (result) throw std::system_error(result);
    return true;
  }

  asio::io_context& ctx_;
  asio::ip::tcp::socket socket_;
  std::chrono::steady_clock::duration deadline_;
  resp::reply_parser parser_;
  std::string pending_;  // received, not yet parsed
  std::string frame_;    // the bytes of the value being read
};

/// A Redis Cluster of `masters` redis-servers (no replicas) on free loopback ports, slots spread evenly by
/// `redis-cli --cluster create`. Ready (every node says cluster_state:ok) when the constructor returns; throws
/// std::runtime_error past `deadline`. Stopped by pid with the object.
class redis_cluster {
 public:
  explicit redis_cluster(std::size_t masters = 3, std::chrono::steady_clock::duration deadline = 60s) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    std::vector<std::string> create = {"redis-cli", "--cluster", "create"};
    for (std::size_t i = 0; i < masters; ++i) {
      const std::uint16_t port = free_loopback_port();
      // The cluster bus port is named too: the default (port + 10000) may be taken, or past 65535. The node's
      // state file goes to its own directory.
      nodes_.push_back(std::make_unique<redis_server>(
          port, std::vector<std::string>{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                         "--cluster-port", std::to_string(free_loopback_port()),
                                         "--cluster-node-timeout", "5000"}));
      create.push_back("127.0.0.1:" + std::to_string(port));
    }
    create.insert(create.end(), {"--cluster-replicas", "0", "--cluster-yes"});
    const process_result r = run_process(create, deadline);
    if (r.exit_code != 0) throw std::runtime_error("redis-cli --cluster create failed:\n" + r.out + r.err);
    // Every node must agree that the cluster is up: poll CLUSTER INFO (a state, not an event) until the deadline.
    asio::io_context ctx;
    for (const auto& n : nodes_) {
      redis_client c(ctx, n->port());
      while (c.call({"CLUSTER", "INFO"}).text.find("cluster_state:ok") == std::string::npos) {
        if (std::chrono::steady_clock::now() >= until) throw std::runtime_error("the Redis Cluster did not come up");
        asio::steady_timer pause(ctx, 20ms);
        pause.wait();
      }
    }
  }

  std::size_t size() const noexcept { return nodes_.size(); }
  std::uint16_t port(std::size_t i) const { return nodes_.at(i)->port(); }

 private:
  std::vector<std::unique_ptr<redis_server>> nodes_;
};

}  // namespace switchboard::test
