// switchboard/pubsub/resp_server.hpp
//
// `pubsub::resp_server`: the broker's Redis-protocol front end. Any Redis client, in any language, publishes and
// subscribes through it (RESP2, and RESP3 after HELLO 3), and in-process code shares the same topics through the
// broker it fronts.
//
//   switchboard::runtime rt;
//   switchboard::pubsub::broker broker(rt.executor());
//   switchboard::pubsub::resp_server server(rt, broker, {.port = 6380});
//   server.start();
//   rt.run();  // until SIGINT/SIGTERM, then a graceful drain
//
//   $ redis-cli -p 6380 subscribe news        $ redis-cli -p 6380 publish news hello
//
// Commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, SSUBSCRIBE, SUNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB
// CHANNELS / NUMSUB / NUMPAT / SHARDCHANNELS / SHARDNUMSUB, PING, ECHO, HELLO, AUTH, CLIENT ID / GETNAME / SETNAME,
// COMMAND (COUNT, INFO, LIST, DOCS), QUIT, RESET, with Redis 7's replies and error texts; anything else gets
// Redis's "unknown command" error. docs/pubsub.md has the compatibility table, command by command.
//
// Channels are the broker's topics: PUBLISH publishes to the broker (so in-process subscribers receive it too, and
// the reply counts them), SUBSCRIBE subscribes to it. Shard channels (SSUBSCRIBE, SPUBLISH) are a namespace of their
// own, as in Redis: a second broker that the server owns (`shard_channels()`).
//
// Each client has output limits (Redis's client-output-buffer-limit pubsub); one that does not read is
// disconnected and counted, the others are unaffected. A message is encoded once per thread and protocol and its
// bytes shared by the clients (see detail/resp_frames.hpp).
//
// Lifetime: the broker must outlive the server; destroy the server after its runtime has stopped (or after a
// drain has completed).
#pragma once

#include <switchboard/core/detail/drain_shards.hpp>
#include <switchboard/core/drain.hpp>
#include <switchboard/core/metrics.hpp>
#include <switchboard/core/runtime.hpp>
#include <switchboard/net/listener.hpp>
#include <switchboard/pubsub/broker.hpp>
#include <switchboard/pubsub/detail/resp_connection.hpp>
#include <switchboard/pubsub/detail/resp_shard.hpp>
#include <switchboard/pubsub/resp_server_options.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/buffer.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::pubsub {

class resp_server final : public drainable {
 public:
  /// A server on every thread of `rt` in front of `channels`, registered with the runtime for draining. Throws
  /// `std::invalid_argument` when `max_clients`, `max_subscriptions_per_client`, `max_query_buffer` or an output
  /// limit is 0.
  resp_server(runtime& rt, broker& channels, resp_server_options options = {})
      : resp_server(rt.executors(), channels, std::move(options)) {
    runtime_ = &rt;
    rt.add(*this);
  }

  /// A server on one executor (an application's own io_context). Drain it with `async_drain`.
  resp_server(asio::any_io_executor executor, broker& channels, resp_server_options options = {})
      : resp_server(std::vector<asio::any_io_executor>{std::move(executor)}, channels, std::move(options)) {}

  resp_server(const resp_server&) = delete;
  resp_server& operator=(const resp_server&) = delete;

  ~resp_server() {
    if (runtime_ != nullptr) runtime_->remove(*this);
    listener_->close();
    for (auto& shard : shards_) asio::post(shard->executor(), [shard] { shard->close_all(); });
  }

  /// Binds, listens and starts accepting. Throws `std::system_error` if the address cannot be bound.
  void start() {
    listener_->listen();
    for (auto& shard : shards_) asio::post(shard->executor(), [shard] { shard->start(); });
    std::vector<std::weak_ptr<detail::resp_shard>> weak(shards_.begin(), shards_.end());
    listener_->start([shards = std::move(weak)](std::size_t index, asio::ip::tcp::socket socket) {
      auto shard = shards[index].lock();
      if (!shard) return;
      auto& shared = shard->shared();
      shared.accepted.fetch_add(1, std::memory_order_relaxed);
      std::error_code ignored;
      if (shard->draining()) {
        socket.close(ignored);  // not `return socket.close(...)`: it returns an error_code without ASIO_NO_DEPRECATED
        return;
      }
      // Redis answers a refused client before closing (networking.c, acceptCommonHandler); the socket is new, so
      // the error fits in its send buffer.
      const auto refuse = [&](std::string_view error, std::atomic<std::uint64_t>& counter) {
        counter.fetch_add(1, std::memory_order_relaxed);
        socket.write_some(asio::buffer(error.data(), error.size()), ignored);
        socket.close(ignored);
      };
      if (shared.clients.load(std::memory_order_relaxed) >= shared.options.max_clients) {
        return refuse("-ERR max number of clients reached\r\n", shared.rejected);
      }
      std::optional<asio::ip::address> counted_address;
      if (shared.options.max_clients_per_address != 0) {
        std::error_code ec;
        const asio::ip::tcp::endpoint remote = socket.remote_endpoint(ec);
        if (ec) {  // the client has gone already
          socket.close(ignored);
          return;
        }
        if (!shared.clients_per_address.try_add(remote.address(), shared.options.max_clients_per_address)) {
          return refuse("-ERR max number of clients per address reached\r\n", shared.rejected_per_address);
        }
        counted_address = remote.address();
      }
      std::make_shared<detail::resp_connection>(std::move(shard), std::move(socket), std::move(counted_address))
          ->start();
    });
  }

  /// The bound address (after `start`).
  asio::ip::tcp::endpoint local_endpoint() const { return listener_->local_endpoint(); }

  /// "redis://host:port" (after `start`).
  std::string url() const {
    const auto e = local_endpoint();
    const std::string host = e.address().is_v6() ? "[" + e.address().to_string() + "]" : e.address().to_string();
    return "redis://" + host + ":" + std::to_string(e.port());
  }

  /// The broker of the shard channels (SSUBSCRIBE / SPUBLISH), for in-process publishers and subscribers.
  broker& shard_channels() noexcept { return *shard_broker_; }

  resp_server_stats stats() const noexcept { return shared_->snapshot(); }
  const resp_server_options& options() const noexcept { return shared_->options; }

  /// Exports `stats()` to `registry`, labelled `server="<name>"`: the gauge `switchboard_resp_clients` and the
  /// counters `switchboard_resp_connections_accepted_total`, `..._rejected_total`,
  /// `..._rejected_per_address_total`, `..._commands_total`, `..._protocol_errors_total`,
  /// `..._output_limit_disconnects_total`, `..._query_buffer_disconnects_total`, `..._messages_sent_total` and
  /// `..._subscriptions_refused_total`. The series stay while the server lives; `registry` must outlive it.
  void export_metrics(metrics_registry& registry, std::string_view name = "resp") {
    const std::vector<metric_label> labels{{"server", name}};
    auto shared = shared_;
    metrics_.push_back(registry.gauge_callback("switchboard_resp_clients", "Redis-protocol clients connected.",
                                               labels, [shared] { return double(shared->clients.load()); }));
    const auto count = [&](std::string_view metric, std::string_view help,
                           std::atomic<std::uint64_t> detail::resp_server_shared::*field) {
      metrics_.push_back(registry.counter_field(metric, help, labels, shared, field));
    };
    count("switchboard_resp_connections_accepted_total", "Connections accepted.",
          &detail::resp_server_shared::accepted);
    count("switchboard_resp_connections_rejected_total", "Connections refused at max_clients.",
          &detail::resp_server_shared::rejected);
    count("switchboard_resp_connections_rejected_per_address_total", "Connections refused at max_clients_per_address.",
          &detail::resp_server_shared::rejected_per_address);
    count("switchboard_resp_commands_total", "Commands processed.", &detail::resp_server_shared::commands);
    count("switchboard_resp_protocol_errors_total", "Connections closed for a protocol error.",
          &detail::resp_server_shared::protocol_errors);
    count("switchboard_resp_output_limit_disconnects_total", "Clients disconnected by their output buffer limits.",
          &detail::resp_server_shared::output_limit_disconnects);
    count("switchboard_resp_query_buffer_disconnects_total", "Clients closed for a command past max_query_buffer.",
          &detail::resp_server_shared::query_buffer_disconnects);
    count("switchboard_resp_messages_sent_total", "Messages queued to clients.",
          &detail::resp_server_shared::messages_sent);
    count("switchboard_resp_subscriptions_refused_total", "Subscriptions refused at max_subscriptions_per_client.",
          &detail::resp_server_shared::subscriptions_refused);
  }

  /// Graceful drain (DESIGN promise 6): stops accepting; each client stops being read and subscribed, gets what
  /// was already queued for it, and is closed; at `deadline` the rest is cut. `done` gets the counts (from any
  /// thread) once no client is left. Safe from any thread.
  void async_drain(std::chrono::steady_clock::time_point deadline, std::function<void(drain_report)> done) override {
    listener_->close();
    switchboard::detail::drain_shards(shards_, deadline, std::move(done));
  }

 private:
  resp_server(std::vector<asio::any_io_executor> executors, broker& channels, resp_server_options options)
      : shard_broker_(std::make_unique<broker>(executors.at(0))),
        shared_(std::make_shared<detail::resp_server_shared>(std::move(options), channels, *shard_broker_)),
        listener_(std::make_shared<net::listener>(
            executors, net::listen_options{.address = shared_->options.bind, .port = shared_->options.port,
                                           .reuse_port = shared_->options.reuse_port})) {
    const auto& o = shared_->options;
    if (o.max_clients == 0 || o.max_subscriptions_per_client == 0 || o.output_limits.hard == 0 ||
        o.output_limits.soft == 0 || o.max_query_buffer == 0) {
      throw std::invalid_argument("switchboard::pubsub::resp_server: max_clients, max_subscriptions_per_client, "
                                  "max_query_buffer and output limits must be > 0");
    }
    for (auto& executor : executors) shards_.push_back(std::make_shared<detail::resp_shard>(executor, shared_));
  }

  std::unique_ptr<broker> shard_broker_;
  std::shared_ptr<detail::resp_server_shared> shared_;
  std::shared_ptr<net::listener> listener_;
  std::vector<std::shared_ptr<detail::resp_shard>> shards_;
  runtime* runtime_ = nullptr;
  std::vector<metric_callback> metrics_;
};

}  // namespace switchboard::pubsub
