// An HTTP server on a one-thread runtime in the background, for tests that talk to it over loopback.
#pragma once

#include <switchboard/core/runtime.hpp>
#include <switchboard/http/server.hpp>

#include <memory>

namespace switchboard::test {

class test_server {
 public:
  explicit test_server(std::size_t threads = 1) : rt_({.threads = threads, .handle_signals = false}) {}
  ~test_server() { stop(); }

  http::router& routes() { return routes_; }

  void start(http::server_options options = {}) {
    server_ = std::make_unique<http::server>(rt_, routes_, std::move(options));
    server_->start();
    rt_.start();
  }

  /// Drains with `grace` and waits for the runtime's threads; returns the drain report.
  drain_report stop(std::chrono::milliseconds grace = std::chrono::milliseconds(0)) {
    if (stopped_) return report_;
    stopped_ = true;
    rt_.stop(grace);
    report_ = rt_.wait();
    return report_;
  }

  std::uint16_t port() const { return server_->local_endpoint().port(); }
  http::server& server() { return *server_; }
  runtime& rt() { return rt_; }

 private:
  runtime rt_;
  http::router routes_;
  std::unique_ptr<http::server> server_;
  bool stopped_ = false;
  drain_report report_;
};

}  // namespace switchboard::test
