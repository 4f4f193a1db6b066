// switchboard/net/listener.hpp
//
// `listener`: accepts TCP connections for a server sharded over several event-loop threads.
//
// Where the OS has SO_REUSEPORT (Linux, the BSDs), each shard gets its own acceptor bound to the same address, and
// the kernel spreads incoming connections across them: no lock, no cross-thread hand-off. Elsewhere (or with
// `reuse_port = false`) one acceptor on the first shard hands accepted sockets to the shards round-robin.
#pragma once

#include <switchboard/core/error.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/dispatch.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace switchboard::net {

struct listen_options {
  /// Address to bind: an IPv4 or IPv6 literal ("127.0.0.1", "::1", "0.0.0.0", "::").
  std::string address = "127.0.0.1";
  /// Port to bind; 0 picks a free one (read it back with `local_endpoint()`).
  std::uint16_t port = 0;
  /// Length of the kernel's queue of connections not yet accepted.
  int backlog = asio::socket_base::max_listen_connections;
  /// Give each shard its own acceptor with SO_REUSEPORT where the OS has it.
  bool reuse_port = true;
};

class listener {
 public:
  /// Called on the shard's executor with each accepted socket (already non-blocking, TCP_NODELAY set).
  using accept_handler = std::function<void(std::size_t shard, asio::ip::tcp::socket)>;

  listener(std::vector<asio::any_io_executor> shards, listen_options options)
      : shared_(std::make_shared<accept_state>()), options_(std::move(options)) {
    if (shards.empty()) throw std::invalid_argument("switchboard::net::listener: no executors");
    shared_->shards = std::move(shards);
  }

  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;
  /// Closes the acceptors (as `close`), so that the port is released once their executors have run the close.
  /// Destroy the listener before the event loops it was given.
  ~listener() { close(); }

  /// Binds and listens. Throws `std::system_error` (address in use, permission denied, bad address).
  void listen() {
    const asio::ip::tcp::endpoint endpoint(asio::ip::make_address(options_.address), options_.port);
#ifdef SO_REUSEPORT
    const bool reuse_port = options_.reuse_port && shared_->shards.size() > 1;
#else
    const bool reuse_port = false;
#endif
    const std::size_t count = reuse_port ? shared_->shards.size() : 1;
    // SO_REUSEPORT lets the acceptors share the port, and would as well let them join another socket of this user
    // that listens there with it (another server in this process, another process), the kernel then splitting the
    // connections between both. So first claim the endpoint alone: that fails when anything holds it.
    asio::ip::tcp::endpoint bound = reuse_port ? claim_alone(endpoint) : endpoint;
    for (std::size_t i = 0; i < count; ++i) {
      auto a = std::make_shared<acceptor_state>(shared_->shards[i], i);
      a->acceptor.open(endpoint.protocol());
      a->acceptor.set_option(asio::socket_base::reuse_address(true));
#ifdef SO_REUSEPORT
      if (reuse_port) {
        const int one = 1;
        if (::setsockopt(a->acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
          throw std::system_error(errno, std::generic_category(), "setsockopt(SO_REUSEPORT)");
        }
      }
#endif
      // The first acceptor may have been given an ephemeral port (without SO_REUSEPORT); the others share it.
      a->acceptor.bind(bound);
      if (i == 0) bound = a->acceptor.local_endpoint();
      a->acceptor.listen(options_.backlog);
      acceptors_.push_back(std::move(a));
    }
    local_ = bound;
    shared_->sharded = reuse_port;
  }

  /// Starts accepting; `handler` is called for every connection. Call after `listen()`.
  void start(accept_handler handler) {
    shared_->handler = std::move(handler);
    for (auto& a : acceptors_) {
      asio::post(a->executor, [s = shared_, a] { accept(s, a); });
    }
  }

  asio::ip::tcp::endpoint local_endpoint() const noexcept { return local_; }
  /// True when each shard has its own SO_REUSEPORT acceptor.
  bool sharded() const noexcept { return shared_->sharded; }

  /// Stops accepting on `shard` until `resume` (used for the connection limit); an accept already waiting is
  /// cancelled, so that no connection is taken after the call. Safe from any thread: the acceptor's state is only
  /// touched on its own executor, and on that executor the call takes effect at once. Without SO_REUSEPORT every
  /// shard shares one acceptor on the first shard's executor, so pausing any shard pauses it, from the other
  /// shards' threads too (which is why this is dispatched).
  void pause(std::size_t shard) {
    auto a = acceptor_ptr(shard);
    asio::dispatch(a->executor, [a] {
      a->paused = true;
      std::error_code ignored;
      if (a->accepting) a->acceptor.cancel(ignored);  // the handler sees operation_aborted and does not re-arm
    });
  }
  /// Accepts on `shard` again after `pause`. Safe from any thread, like `pause`.
  void resume(std::size_t shard) {
    auto a = acceptor_ptr(shard);
    asio::dispatch(a->executor, [s = shared_, a] {
      if (!a->paused) return;
      a->paused = false;
      accept(s, a);
    });
  }

  /// Closes every acceptor (new connections are refused by the kernel). Safe from any thread.
  void close() {
    for (auto& a : acceptors_) {
      asio::post(a->executor, [a] {
        std::error_code ignored;
        a->acceptor.close(ignored);
        a->backoff.cancel();
      });
    }
  }

 private:
  // What the accept handlers use besides their acceptor. They hold it, not the listener: an accept may complete
  // after the listener is gone (its close is posted), and must then find this still there.
  struct accept_state {
    std::vector<asio::any_io_executor> shards;
    accept_handler handler;  // set by `start`, before any accept is armed
    std::atomic<std::size_t> round_robin{0};
    bool sharded = false;  // set by `listen`

    std::size_t next_shard() noexcept { return round_robin.fetch_add(1, std::memory_order_relaxed) % shards.size(); }
  };

  struct acceptor_state {
    acceptor_state(asio::any_io_executor ex, std::size_t index)
        : executor(ex), acceptor(ex), backoff(ex), shard(index) {}
    asio::any_io_executor executor;
    asio::ip::tcp::acceptor acceptor;
    asio::steady_timer backoff;  // waits after EMFILE and the like, instead of spinning
    std::size_t shard;
    bool paused = false;
    bool accepting = false;
  };

  // Binds a socket without SO_REUSEPORT to `endpoint` and closes it: throws when the address is in use, even by
  // sockets that share it with SO_REUSEPORT, and gives the port picked for port 0. Between this close and the
  // acceptors' bind another socket could still take the port; this catches a port already in use.
  asio::ip::tcp::endpoint claim_alone(const asio::ip::tcp::endpoint& endpoint) const {
    asio::ip::tcp::acceptor probe(shared_->shards[0], endpoint.protocol());
    probe.set_option(asio::socket_base::reuse_address(true));
    probe.bind(endpoint);
    return probe.local_endpoint();
  }

  std::shared_ptr<acceptor_state> acceptor_ptr(std::size_t shard) {
    return shared_->sharded ? acceptors_.at(shard) : acceptors_.at(0);
  }

  static void accept(const std::shared_ptr<accept_state>& s, std::shared_ptr<acceptor_state> a) {
    // Not started yet (a `resume` before `start`): `start` arms the accept.
    if (!s->handler || a->paused || a->accepting || !a->acceptor.is_open()) return;
    a->accepting = true;
    const std::size_t target = s->sharded ? a->shard : s->next_shard();
    a->acceptor.async_accept(s->shards[target], [s, a, target](std::error_code ec, asio::ip::tcp::socket socket) {
      a->accepting = false;
      if (!a->acceptor.is_open()) return;
      if (ec == asio::error::operation_aborted) {
        accept(s, a);  // cancelled by `pause`: a `resume` may have come since (it found this accept still waiting)
        return;
      }
      if (ec) {
        on_accept_error(s, a, ec);
        return;
      }
      std::error_code ignored;
      socket.set_option(asio::ip::tcp::no_delay(true), ignored);
      socket.non_blocking(true, ignored);
      if (target == a->shard) {
        s->handler(target, std::move(socket));
      } else {
        asio::post(s->shards[target], [s, target, socket = std::move(socket)]() mutable {
          s->handler(target, std::move(socket));
        });
      }
      accept(s, a);
    });
  }

  static void on_accept_error(const std::shared_ptr<accept_state>& s, const std::shared_ptr<acceptor_state>& a,
                              std::error_code ec) {
    // Out of descriptors or memory: accepting again at once would fail again at once. Wait a little.
    const bool resource = ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
                          ec == asio::error::no_memory || ec == std::errc::too_many_files_open_in_system;
    if (!resource) {
      accept(s, a);  // ECONNABORTED and the like concern one connection only
      return;
    }
    a->backoff.expires_after(std::chrono::milliseconds(50));
    a->backoff.async_wait([s, a](std::error_code wait_ec) {
      if (!wait_ec) accept(s, a);
    });
  }

  std::shared_ptr<accept_state> shared_;
  listen_options options_;
  std::vector<std::shared_ptr<acceptor_state>> acceptors_;
  asio::ip::tcp::endpoint local_;
};

}  // namespace switchboard::net
