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
      : shards_(std::move(shards)), options_(std::move(options)) {
    if (shards_.empty()) throw std::invalid_argument("switchboard::net::listener: no executors");
  }

  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;

  /// Binds and listens. Throws `std::system_error` (address in use, permission denied, bad address).
  void listen() {
    const asio::ip::tcp::endpoint endpoint(asio::ip::make_address(options_.address), options_.port);
#ifdef SO_REUSEPORT
    const bool reuse_port = options_.reuse_port && shards_.size() > 1;
#else
    const bool reuse_port = false;
#endif
    const std::size_t count = reuse_port ? shards_.size() : 1;
    asio::ip::tcp::endpoint bound = endpoint;
    for (std::size_t i = 0; i < count; ++i) {
      auto a = std::make_shared<acceptor_state>(shards_[i], i);
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
      // The first acceptor may have been given an ephemeral port; the others share it.
      a->acceptor.bind(bound);
      if (i == 0) bound = a->acceptor.local_endpoint();
      a->acceptor.listen(options_.backlog);
      acceptors_.push_back(std::move(a));
    }
    local_ = bound;
    sharded_ = reuse_port;
  }

  /// Starts accepting; `handler` is called for every connection. Call after `listen()`.
  void start(accept_handler handler) {
    handler_ = std::make_shared<accept_handler>(std::move(handler));
    for (auto& a : acceptors_) {
      asio::post(a->executor, [this, a] { accept(a); });
    }
  }

  asio::ip::tcp::endpoint local_endpoint() const noexcept { return local_; }
  /// True when each shard has its own SO_REUSEPORT acceptor.
  bool sharded() const noexcept { return sharded_; }

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
    asio::dispatch(a->executor, [this, a] {
      if (!a->paused) return;
      a->paused = false;
      accept(a);
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

  std::shared_ptr<acceptor_state> acceptor_ptr(std::size_t shard) {
    return sharded_ ? acceptors_.at(shard) : acceptors_.at(0);
  }

  void accept(std::shared_ptr<acceptor_state> a) {
    if (a->paused || a->accepting || !a->acceptor.is_open()) return;
    a->accepting = true;
    const std::size_t target = sharded_ ? a->shard : next_shard();
    a->acceptor.async_accept(shards_[target], [this, a, target, h = handler_](std::error_code ec,
                                                                              asio::ip::tcp::socket socket) {
      a->accepting = false;
      if (!a->acceptor.is_open()) return;
      if (ec == asio::error::operation_aborted) {
        accept(a);  // cancelled by `pause`: a `resume` may have come since (it found this accept still waiting)
        return;
      }
      if (ec) {
        on_accept_error(a, ec);
        return;
      }
      std::error_code ignored;
      socket.set_option(asio::ip::tcp::no_delay(true), ignored);
      socket.non_blocking(true, ignored);
      if (target == a->shard) {
        (*h)(target, std::move(socket));
      } else {
        asio::post(shards_[target], [h, target, s = std::move(socket)]() mutable { (*h)(target, std::move(s)); });
      }
      accept(a);
    });
  }

  void on_accept_error(const std::shared_ptr<acceptor_state>& a, std::error_code ec) {
    // Out of descriptors or memory: accepting again at once would fail again at once. Wait a little.
    const bool resource = ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
                          ec == asio::error::no_memory || ec == std::errc::too_many_files_open_in_system;
    if (!resource) {
      accept(a);  // ECONNABORTED and the like concern one connection only
      return;
    }
    a->backoff.expires_after(std::chrono::milliseconds(50));
    a->backoff.async_wait([this, a](std::error_code wait_ec) {
      if (!wait_ec) accept(a);
    });
  }

  std::size_t next_shard() noexcept { return round_robin_.fetch_add(1, std::memory_order_relaxed) % shards_.size(); }

  std::vector<asio::any_io_executor> shards_;
  listen_options options_;
  std::vector<std::shared_ptr<acceptor_state>> acceptors_;
  std::shared_ptr<accept_handler> handler_;
  asio::ip::tcp::endpoint local_;
  std::atomic<std::size_t> round_robin_{0};
  bool sharded_ = false;
};

}  // namespace switchboard::net
