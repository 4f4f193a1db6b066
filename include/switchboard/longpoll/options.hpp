// switchboard/longpoll/options.hpp
//
// `endpoint_options`: the limits and defaults of the long-poll endpoint, a plain struct of documented defaults
// (designated initializers: `{.max_parked = 20'000, .default_timeout = 10s}`).
#pragma once

#include <switchboard/http/client_key.hpp>
#include <switchboard/http/request.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace switchboard::longpoll {

struct endpoint_options {
  /// How long a request waits when it names no `timeout`. 25 s stays under the 30 s idle timeouts common in
  /// proxies and load balancers, which would otherwise cut a parked request and make the client see an error.
  std::chrono::milliseconds default_timeout{25'000};
  /// The longest wait a client may ask for (`timeout` is capped to it).
  std::chrono::milliseconds max_timeout{60'000};
  /// Each wait is shortened by a random part of it, up to this fraction, so that clients that parked together
  /// (after a publish, or a restart) do not all come back in the same instant. 0 turns it off.
  double jitter = 0.1;
  /// The most messages one answer carries; a client may ask for fewer with `max`.
  std::size_t max_batch = 100;
  /// The most requests parked at once over the whole endpoint; past it new ones get 503 with `Retry-After`.
  std::size_t max_parked = 50'000;
  /// The most requests parked at once per client (per `client_key`); past it new ones get 429 with
  /// `Retry-After`. Several browser tabs of one user, or users behind one NAT, share an address: keep it roomy.
  std::size_t max_parked_per_client = 64;
  /// The `Retry-After` of 429 and 503 answers.
  std::chrono::seconds retry_after{2};
  /// The route parameter that names the topic (`{topic}` in `/topics/{topic}/poll`).
  std::string topic_param = "topic";
  /// Prepended to the parameter to make the broker topic: with "jobs." and the route `/jobs/{id}/poll`,
  /// `/jobs/42/poll` polls topic `jobs.42`, and no other topic can be reached through the route.
  std::string topic_prefix{};
  /// Which topics may be polled; empty: any. A refused topic gets 404. (Polling a name nobody publishes to makes
  /// the topic in the broker only while the poll waits: see `pubsub::broker_options::max_topics`.)
  std::function<bool(std::string_view topic)> allow_topic{};
  /// What identifies a client for `max_parked_per_client`; empty: the peer's IP address. Behind a trusted reverse
  /// proxy, return the address it forwards instead.
  http::client_key_function client_key{};
  /// Called after the endpoint's counters (`endpoint::stats()`) change: a request parked, was released or was
  /// refused. It runs on the thread that changed them (a connection's), outside the endpoint's lock, so it may
  /// read `stats()`; keep it short, it delays that connection. For monitors and for tests that wait for a request
  /// to park.
  std::function<void()> on_change{};
};

}  // namespace switchboard::longpoll
