// switchboard/net/lookup.hpp
//
// Looking up a host's addresses within a deadline, for the clients (`http::client`, `ws::async_connect`). A DNS
// server that does not answer must not hold a connect for ever: the lookup's time counts against the connect
// timeout, and whatever the lookup answers after the deadline is dropped.
//
// The lookup itself is a `resolve_function`, so that an application can bring its own (service discovery, pinned
// addresses as with curl's `--resolve`); `system_resolver` is Asio's resolver (getaddrinfo).
#pragma once

#include <switchboard/core/error.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/dispatch.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace switchboard::net {

/// Where a lookup sends its answer, once: an error, or the addresses to try, in order. May be called from any thread
/// (the waiting client takes the answer on its executor).
using resolve_handler = std::function<void(std::error_code, std::vector<asio::ip::tcp::endpoint>)>;
/// Looks up the addresses of `host` (a name, or an IP literal without brackets) for `port`, asynchronously, and
/// passes them to `answer`. Called on the client's executor. It cannot be cancelled: a client that stops waiting
/// (its connect timeout, a cancellation) drops the answer when it comes.
using resolve_function = std::function<void(const std::string& host, std::uint16_t port, resolve_handler answer)>;

/// Asio's resolver, which runs getaddrinfo on a thread of its own. The resolver lives as long as its operation
/// (destroyed, it would cancel it), since getaddrinfo cannot be interrupted anyway: a client that stops waiting
/// leaves the answer to come when it comes, and be dropped. While getaddrinfo runs, its executor has work.
inline resolve_function system_resolver(asio::any_io_executor executor) {
  return [executor](const std::string& host, std::uint16_t port, resolve_handler answer) {
    auto resolver = std::make_shared<asio::ip::tcp::resolver>(executor);
    resolver->async_resolve(host, std::to_string(port),
                            [resolver, answer = std::move(answer)](std::error_code ec,
                                                                   asio::ip::tcp::resolver::results_type results) {
                              std::vector<asio::ip::tcp::endpoint> endpoints;
                              for (const auto& entry : results) endpoints.push_back(entry.endpoint());
                              answer(ec, std::move(endpoints));
                            });
  };
}

/// Asks `resolve` for the addresses of `host`:`port` and waits for the answer on `executor` until `deadline`. On
/// time: the addresses, with `ec` set to the lookup's error if it failed. Past the deadline: `ec` =
/// `switchboard::error::timeout`; cancelled (per-operation cancellation of the calling coroutine):
/// `asio::error::operation_aborted`. An answer may come after the caller has stopped waiting, or never; so it goes to
/// a box the caller shares, never into its frame, and wakes the caller only while it waits.
inline asio::awaitable<std::vector<asio::ip::tcp::endpoint>> look_up(asio::any_io_executor executor,
                                                                     const resolve_function& resolve,
                                                                     const std::string& host, std::uint16_t port,
                                                                     std::chrono::steady_clock::time_point deadline,
                                                                     std::error_code& ec) {
  struct answer_box {
    asio::steady_timer* waiting = nullptr;  // the caller's deadline timer, while it waits
    bool answered = false;
    std::error_code ec;
    std::vector<asio::ip::tcp::endpoint> endpoints;
  };
  asio::steady_timer timer(executor, deadline);
  const auto box = std::make_shared<answer_box>();
  box->waiting = &timer;
  struct stop_waiting {  // on every way out, a cancellation's exception included
    answer_box& box;
    ~stop_waiting() { box.waiting = nullptr; }
  } on_exit{*box};
  resolve(host, port, [box, executor](std::error_code answer_ec, std::vector<asio::ip::tcp::endpoint> endpoints) {
    asio::dispatch(executor, [box, answer_ec, endpoints = std::move(endpoints)]() mutable {
      if (box->answered) return;
      box->answered = true;
      box->ec = answer_ec;
      box->endpoints = std::move(endpoints);
      if (box->waiting) box->waiting->cancel();
    });
  });
  if (!box->answered) {  // (a lookup may answer at once)
    std::error_code wait_ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, wait_ec));
    // An answer that came as the deadline passed, both in one turn of the event loop, is still taken.
    if (!box->answered) {
      ec = wait_ec ? std::error_code(asio::error::operation_aborted) : std::error_code(switchboard::error::timeout);
      co_return std::vector<asio::ip::tcp::endpoint>{};
    }
  }
  ec = box->ec;
  co_return std::move(box->endpoints);
}

}  // namespace switchboard::net
