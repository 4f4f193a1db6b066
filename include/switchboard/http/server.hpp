// switchboard/http/server.hpp
//
// `http::server`: an HTTP/1.1 (and HTTPS) server over a router, sharded across a runtime's threads.
//
//   switchboard::runtime rt;
//   switchboard::http::router routes;
//   routes.get("/user/{id:int}", [](http::request& req) {
//     return http::response::json({{"id", req.param_as<int>("id")}});
//   });
//   switchboard::http::server server(rt, routes, {.port = 8080});
//   server.start();
//   rt.run();  // until SIGINT/SIGTERM, then a graceful drain
//
// Keep-alive (RFC 9112 §9.3), pipelining (responses in order, the responses to one read written together),
// `Expect: 100-continue`, HEAD, a cached Date, timeouts, a connection limit, streamed request and response
// bodies, and a graceful drain (`async_drain`, or through the runtime). See docs/request-response.md.
//
// Lifetime: the router must outlive the server; destroy the server after its runtime has stopped (or after a
// drain has completed).
#pragma once

#include <switchboard/core/detail/drain_shards.hpp>
#include <switchboard/core/drain.hpp>
#include <switchboard/core/log.hpp>
#include <switchboard/core/metrics.hpp>
#include <switchboard/core/runtime.hpp>
#include <switchboard/http/detail/server_connection.hpp>
#include <switchboard/http/detail/server_shard.hpp>
#include <switchboard/http/router.hpp>
#include <switchboard/http/server_options.hpp>
#include <switchboard/net/listener.hpp>

#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace switchboard::http {

namespace detail {
inline void log_handler_exception(std::string_view where, std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log(log_level::error, "http", where, " threw: ", std::string_view(ex.what()));
  } catch (...) {
    log(log_level::error, "http", where, " threw a non-standard exception");
  }
}
}  // namespace detail

class server final : public drainable {
 public:
  /// A server on every thread of `rt`, registered with it for draining.
  server(runtime& rt, const router& routes, server_options options = {})
      : server(rt.executors(), routes, std::move(options)) {
    runtime_ = &rt;
    rt.add(*this);
  }

  /// A server on one executor (an application's own io_context). Drain it with `async_drain`.
  server(asio::any_io_executor executor, const router& routes, server_options options = {})
      : server(std::vector<asio::any_io_executor>{std::move(executor)}, routes, std::move(options)) {}

  server(const server&) = delete;
  server& operator=(const server&) = delete;

  ~server() {
    if (runtime_ != nullptr) runtime_->remove(*this);
    listener_->close();
    // Connections still open (no drain happened) are closed on their threads.
    for (auto& shard : shards_) asio::post(shard->executor(), [shard] { shard->close_all(); });
  }

  /// Binds, listens and starts accepting. Throws `std::system_error` if the address cannot be bound.
  void start() {
    listener_->listen();
    for (auto& shard : shards_) asio::post(shard->executor(), [shard] { shard->start(); });
    // Weak references: the shards hold the listener, so the listener's handler must not hold the shards.
    std::vector<std::weak_ptr<detail::server_shard>> weak_shards(shards_.begin(), shards_.end());
    listener_->start([tls = tls_, shards = std::move(weak_shards)](std::size_t index, asio::ip::tcp::socket socket) {
      auto shard = shards[index].lock();
      if (!shard) return;
      std::error_code ec;
      const asio::ip::tcp::endpoint remote = socket.remote_endpoint(ec);  // fails when the client has already gone
      if (ec || shard->draining() || !shard->admit(remote)) {
        socket.close(ec);
        return;
      }
      shard->on_accepted();
      if (tls) {
        auto c = std::make_shared<detail::server_connection<asio::ssl::stream<asio::ip::tcp::socket>>>(
            shard, asio::ssl::stream<asio::ip::tcp::socket>(std::move(socket), *tls), remote);
        c->start();
      } else {
        auto c = std::make_shared<detail::server_connection<asio::ip::tcp::socket>>(shard, std::move(socket), remote);
        c->start();
      }
    });
  }

  /// The bound address (after `start`).
  asio::ip::tcp::endpoint local_endpoint() const { return listener_->local_endpoint(); }
  /// "http://host:port" or "https://host:port" (after `start`).
  std::string url() const {
    const auto e = local_endpoint();
    const std::string host = e.address().is_v6() ? "[" + e.address().to_string() + "]" : e.address().to_string();
    return std::string(tls_ ? "https://" : "http://") + host + ":" + std::to_string(e.port());
  }
  /// True when each thread has its own SO_REUSEPORT listener.
  bool sharded() const noexcept { return listener_->sharded(); }

  server_stats stats() const noexcept { return shared_->snapshot(); }

  /// Exports `stats()` to `registry` as Prometheus series labelled `server="<name>"`: counters
  /// `switchboard_http_connections_accepted_total`, `..._requests_total`, `..._responses_total{class=...}`,
  /// `..._bad_requests_total`, `..._timeouts_total`, `..._handler_errors_total`,
  /// `switchboard_http_connections_refused_per_address_total`, and the gauge
  /// `switchboard_http_connections_active`. The series stay while the server lives; `registry` must outlive it.
  void export_metrics(metrics_registry& registry, std::string_view name = "http") {
    auto shared = shared_;
    auto count = [&](std::string_view metric, std::string_view help, std::atomic<std::uint64_t> detail::server_shared::*field,
                     std::string_view response_class = {}) {
      std::vector<metric_label> labels{{"server", name}};
      if (!response_class.empty()) labels.push_back({"class", response_class});
      metrics_.push_back(registry.counter_field(metric, help, labels, shared, field));
    };
    count("switchboard_http_connections_accepted_total", "Connections accepted.", &detail::server_shared::accepted);
    count("switchboard_http_requests_total", "Requests whose header was parsed.", &detail::server_shared::requests);
    count("switchboard_http_responses_total", "Responses sent, by status class.", &detail::server_shared::responses_2xx, "2xx");
    count("switchboard_http_responses_total", "Responses sent, by status class.", &detail::server_shared::responses_4xx, "4xx");
    count("switchboard_http_responses_total", "Responses sent, by status class.", &detail::server_shared::responses_5xx, "5xx");
    count("switchboard_http_bad_requests_total", "Connections closed for a malformed request.", &detail::server_shared::bad_requests);
    count("switchboard_http_timeouts_total", "Connections closed by a timeout.", &detail::server_shared::timeouts);
    count("switchboard_http_handler_errors_total", "Handlers that failed with an unexpected exception.",
          &detail::server_shared::handler_errors);
    count("switchboard_http_connections_refused_per_address_total",
          "Connections closed at once at max_connections_per_address.", &detail::server_shared::refused_per_address);
    metrics_.push_back(registry.gauge_callback("switchboard_http_connections_active", "Connections open now.",
                                               {{"server", name}}, [shared] { return double(shared->active.load()); }));
  }

  /// Graceful drain (DESIGN promise 6): stops accepting; idle connections close now; a request in progress gets
  /// its response with `Connection: close`; streamed responses are stopped; at `deadline` the rest is cut.
  /// `done` gets the counts (from any thread) once nothing is open. Safe from any thread.
  void async_drain(std::chrono::steady_clock::time_point deadline, std::function<void(drain_report)> done) override {
    listener_->close();
    switchboard::detail::drain_shards(shards_, deadline, std::move(done));
  }

 private:
  server(std::vector<asio::any_io_executor> executors, const router& routes, server_options options)
      : options_(std::move(options)),
        shared_(std::make_shared<detail::server_shared>()),
        listener_(std::make_shared<net::listener>(
            executors, net::listen_options{.address = options_.bind, .port = options_.port,
                                           .reuse_port = options_.reuse_port})),
        tls_(options_.tls) {
    if (options_.max_connections == 0) throw std::invalid_argument("switchboard::http::server: max_connections is 0");
    if (!header_block::valid_value(options_.server_header)) {  // written into every response head
      throw std::invalid_argument("switchboard::http::server: server_header is not a valid field value");
    }
    for (std::size_t i = 0; i < executors.size(); ++i) {
      shards_.push_back(std::make_shared<detail::server_shard>(i, executors[i], options_, routes, shared_, listener_));
    }
  }

  server_options options_;
  std::shared_ptr<detail::server_shared> shared_;
  std::shared_ptr<net::listener> listener_;
  std::shared_ptr<asio::ssl::context> tls_;
  std::vector<std::shared_ptr<detail::server_shard>> shards_;
  runtime* runtime_ = nullptr;
  std::vector<metric_callback> metrics_;
};

/// A handler for `GET /metrics` that answers with `registry` in the Prometheus text format 0.0.4.
inline auto metrics_handler(const metrics_registry& registry) {
  return [&registry](request&) {
    std::string body;
    registry.expose(body);
    return response(status::ok, std::move(body), prometheus_content_type);
  };
}

}  // namespace switchboard::http
