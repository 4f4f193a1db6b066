// switchboard/pubsub/resp_server_options.hpp
//
// The configuration of `pubsub::resp_server` (the Redis-protocol front end of the broker) and the counters it
// keeps. Defaults follow Redis 7's (redis.conf): `maxclients 10000`, `client-output-buffer-limit pubsub 32mb 8mb
// 60`, no `requirepass`, no idle `timeout`.
#pragma once

#include <switchboard/resp/command_parser.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace switchboard::pubsub {

/// The output limits of one client, as Redis's `client-output-buffer-limit pubsub <hard> <soft> <seconds>`: bytes
/// queued for a client that it has not read yet (replies and messages). Past `hard`, or above `soft` for longer
/// than `soft_seconds`, the client is disconnected (and counted in `resp_server_stats::output_limit_disconnects`);
/// the other clients are not affected. Redis applies these to subscribed clients only; we apply them to every
/// client, since only messages can pile up (a client's commands are not read while its replies wait to be sent).
struct resp_output_limits {
  /// Disconnect at once past this many bytes. Redis: 32 MiB.
  std::size_t hard = 32 * 1024 * 1024;
  /// Disconnect when above this many bytes for longer than `soft_seconds`. Redis: 8 MiB.
  std::size_t soft = 8 * 1024 * 1024;
  /// How long a client may stay above `soft`. Redis: 60 s.
  std::chrono::seconds soft_seconds{60};
};

/// How a `resp_server` listens and what it allows.
struct resp_server_options {
  /// Address to bind (an IPv4 or IPv6 literal). Redis binds to loopback by default too.
  std::string bind = "127.0.0.1";
  /// Port; 0 picks a free one (see `resp_server::local_endpoint`). The example broker uses 6380.
  std::uint16_t port = 6379;
  /// Give each thread its own SO_REUSEPORT listener where the OS has it (see net/listener.hpp).
  bool reuse_port = true;
  /// The password of the default user (Redis's `requirepass`). Empty: no password, every client is authenticated
  /// (and `AUTH <password>` is answered with Redis's "called without any password configured" error).
  std::string requirepass{};
  /// Most clients at once (Redis's `maxclients`). One more is told "-ERR max number of clients reached" and closed.
  std::size_t max_clients = 10'000;
  /// Most clients at once from one IP address; 0 (the default): no limit, as in Redis. One more is told "-ERR max
  /// number of clients per address reached", closed and counted in `resp_server_stats::rejected_per_address`. It
  /// keeps one host from taking every one of `max_clients`; leave room for the connection pools of the services
  /// that share a host, or a NAT.
  std::size_t max_clients_per_address = 0;
  /// Most channels, patterns and shard channels one client subscribes to, together. A subscription past it is
  /// refused with "-ERR max number of subscriptions per client reached" (the client's other subscriptions stay) and
  /// counted in `resp_server_stats::subscriptions_refused`. Redis has no such limit; here it keeps one client from
  /// using up the broker's `max_subscriptions` (100,000 by default), which the in-process subscribers, SSE and
  /// WebSocket clients share, and bounds what one connection's names can cost in memory.
  std::size_t max_subscriptions_per_client = 10'000;
  /// Per-client output limits (see `resp_output_limits`).
  resp_output_limits output_limits{};
  /// Close a client idle for this long (Redis's `timeout`); zero never does. Subscribed clients are never idle
  /// in this sense, as in Redis.
  std::chrono::seconds idle_timeout{0};
  /// Limits of the command parser (inline line, multibulk count, bulk length); see resp/command_parser.hpp.
  resp::command_parser_options parser{};
  /// The most bytes of one unfinished command held for a client (Redis's `client-query-buffer-limit`, 1 GiB there).
  /// A client whose command grows past it is closed without a reply, as Redis does, and counted in
  /// `resp_server_stats::query_buffer_disconnects`. The parser's limits bound each argument, not their sum: without
  /// this, one command of a million 64 MiB arguments could take all memory. Keep it above `parser.max_bulk_length`,
  /// or the largest payload cannot be published.
  std::size_t max_query_buffer = 128 * 1024 * 1024;
  /// What HELLO reports as `server` and `version`. Clients enable features by the version (sharded pub/sub needs
  /// 7), so the default names the Redis release whose pub/sub commands this server implements.
  std::string hello_server = "redis";
  std::string hello_version = "7.0.0";
};

/// What a `resp_server` counts since it started, over every thread.
struct resp_server_stats {
  std::uint64_t accepted = 0;                  ///< Connections accepted.
  std::uint64_t clients = 0;                   ///< Clients connected now.
  std::uint64_t rejected = 0;                  ///< Connections refused at `max_clients`.
  std::uint64_t rejected_per_address = 0;      ///< Connections refused at `max_clients_per_address`.
  std::uint64_t commands = 0;                  ///< Commands processed (errors included).
  std::uint64_t protocol_errors = 0;           ///< Connections closed for a protocol error.
  std::uint64_t output_limit_disconnects = 0;  ///< Clients disconnected by their output limits.
  std::uint64_t query_buffer_disconnects = 0;  ///< Clients closed at `max_query_buffer`.
  std::uint64_t messages_sent = 0;             ///< Messages (message, pmessage, smessage) queued to clients.
  std::uint64_t subscriptions_refused = 0;     ///< Subscriptions refused at `max_subscriptions_per_client`.
  /// Runs of each thread's once-a-second check of the clients' soft output limit and idle timeout, over every
  /// thread. A client above `soft` that is sent nothing more is judged at these checks only: a test that needs one
  /// to have run after something happened waits for this count to grow.
  std::uint64_t output_limit_checks = 0;
};

}  // namespace switchboard::pubsub
