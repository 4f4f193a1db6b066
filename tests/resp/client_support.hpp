// Helpers for the resp::client tests: connect and run commands against a server, each wait bounded by a deadline.
#pragma once

#include <switchboard/resp/client.hpp>

#include "support/catch.hpp"
#include "support/test_support.hpp"

#include <asio/io_context.hpp>

#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace switchboard::test {

/// The outcome of one `async_exec`.
struct exec_result {
  bool done = false;
  std::error_code ec;
  resp::value v;
};

/// A completion handler that records into `r`.
inline auto capture(exec_result& r) {
  return [&r](std::error_code ec, resp::value v) {
    r.ec = ec;
    r.v = std::move(v);
    r.done = true;
  };
}

/// Connects `c`, running `ctx` until it completes.
inline std::error_code connect(asio::io_context& ctx, resp::client& c) {
  std::optional<std::error_code> result;
  c.async_connect([&](std::error_code ec) { result = ec; });
  REQUIRE(test::run_until(ctx, [&] { return result.has_value(); }));
  return *result;
}

/// Runs one command and returns its reply (which may be an error reply).
inline resp::value exec(asio::io_context& ctx, resp::client& c, std::vector<std::string> args) {
  exec_result r;
  c.async_exec(std::move(args), capture(r));
  REQUIRE(test::run_until(ctx, [&] { return r.done; }));
  REQUIRE_FALSE(r.ec);
  return r.v;
}

}  // namespace switchboard::test
