// switchboard/sse/stream.hpp
//
// Serving a `text/event-stream` response (WHATWG HTML §9.2) on the HTTP server: the response head, the client's
// resume point (`Last-Event-ID`), and `stream_writer`, which writes encoded events to the response's body as the
// peer makes room, sends comment heartbeats while nothing else is sent, and notices when the client has gone.
//
//     routes.get("/clock", [](http::request& req) {
//       return sse::stream_response([](http::body_writer& body) -> asio::awaitable<void> {
//         sse::stream_writer out(body, {.heartbeat = 15s});
//         for (int i = 0;; ++i) {
//           std::string e;
//           sse::encode({.data = "tick", .id = std::to_string(i)}, e);
//           if (!co_await out.write(shared_bytes(std::move(e)))) co_return;    // the client has gone
//           if (!co_await out.idle(1s)) co_return;                              // heartbeats while it waits
//         }
//       });
//     });
//
// Where the events come from is the caller's. `push::hub`, which serves thousands of subscribers, writes its events
// from the server's callbacks instead (http/body_stream.hpp), sharing this file's response head (docs/push.md).
//
// Ending: the producer returns (the response ends with the last chunk; an EventSource then reconnects after its
// retry time), the client goes away (the server cancels the producer: `write` and `idle` return false), or the
// server drains (the same cancellation: the stream ends cleanly, and clients reconnect to another instance).
#pragma once

#include <switchboard/core/detail/saturating_time.hpp>
#include <switchboard/core/shared_bytes.hpp>
#include <switchboard/http/body_writer.hpp>
#include <switchboard/http/request.hpp>
#include <switchboard/http/response.hpp>
#include <switchboard/sse/encoder.hpp>

#include <asio/awaitable.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace switchboard::sse {

/// The behaviour of one event stream response. Usable with designated initializers.
struct stream_options {
  /// A comment line (`:` LF, which clients ignore, §9.2.6) is written after this long without any other write,
  /// so that proxies and load balancers do not close an idle stream, and so that a client that has gone is
  /// noticed by the failed write even where the connection gives no other sign (TLS). Default 15 s; 0 disables.
  std::chrono::milliseconds heartbeat{15'000};
  /// When set, the stream starts with `retry: <ms>`: how long the client waits before reconnecting (§9.2.6).
  /// Unset: the client's default (a few seconds in browsers). Must not be negative: a client ignores a `retry`
  /// field that is not all digits.
  std::optional<std::chrono::milliseconds> retry = std::nullopt;
};

namespace detail {
/// `Cache-Control: no-cache` (an event stream is never stored: RFC 9111 §5.2.2.4) and `X-Accel-Buffering: no`
/// (proxies such as nginx would otherwise buffer events).
inline http::response with_stream_fields(http::response r) {
  r.set("Cache-Control", "no-cache");
  r.set("X-Accel-Buffering", "no");
  return r;
}

/// The block that sets the client's reconnection time to `retry` (`retry: <ms>` and the blank line, which
/// dispatches nothing, §9.2.6), encoded by `sse::encode`; empty when `retry` is unset. Throws
/// `std::invalid_argument` when `retry` is negative, as bad configuration (the encoder refuses it too).
inline shared_bytes retry_block(std::optional<std::chrono::milliseconds> retry) {
  if (!retry) return {};
  std::string block;
  if (const std::error_code ec = encode({.retry = retry}, block)) {
    throw std::invalid_argument("switchboard::sse::stream_options: " + ec.message());
  }
  return shared_bytes(std::move(block));
}

}  // namespace detail

/// A `200 text/event-stream` response whose body `producer` writes (see `http::response::stream`), with the
/// fields of `detail::with_stream_fields`.
inline http::response stream_response(http::body_producer producer) {
  return detail::with_stream_fields(http::response::stream("text/event-stream", std::move(producer)));
}

/// The same response with a body written by `handler` from the server's callbacks (http/body_stream.hpp): what
/// `push::hub` uses, so that an idle subscriber costs little more than its connection.
inline http::response stream_response(std::shared_ptr<http::body_stream_handler> handler) {
  return detail::with_stream_fields(http::response::stream("text/event-stream", std::move(handler)));
}

/// The id the client last saw: the `Last-Event-ID` header that an EventSource sends when it reconnects (§9.2.4),
/// or else the query parameter `query_name`, for a first connection that resumes from a stored id (an
/// EventSource cannot set headers, but its URL can carry one). nullopt when neither is present.
inline std::optional<std::string> last_event_id(const http::request& req, std::string_view query_name = "lastEventId") {
  if (req.headers().contains("last-event-id")) return std::string(req.header("last-event-id"));
  if (query_name.empty()) return std::nullopt;
  return req.query_param(query_name);
}

/// Reads an event id that is a sequence number: decimal digits only, no sign, no leading or trailing space, at
/// most 2^64 - 1. nullopt for anything else (such an id is not one this server issued).
inline std::optional<std::uint64_t> parse_sequence_id(std::string_view id) noexcept {
  std::uint64_t value = 0;
  if (id.empty() || id.front() < '0' || id.front() > '9') return std::nullopt;
  const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), value);
  if (ec != std::errc() || end != id.data() + id.size()) return std::nullopt;
  return value;
}

/// Writes an event stream to a response body: encoded events, heartbeats while idle, and the end of the stream.
/// Lives in the body producer's coroutine, on the connection's executor; `wake` is the one member that other code
/// on that executor calls, to end an `idle` wait early because there is something to write.
class stream_writer {
 public:
  /// Writes to `body` under `options`. Nothing is written until the first `write` or `idle` (which first writes
  /// the `retry` field, if set). Throws `std::invalid_argument` when `options.retry` is negative.
  stream_writer(http::body_writer& body, stream_options options)
      : body_(body),
        options_(std::move(options)),
        retry_block_(detail::retry_block(options_.retry)),
        wake_(body.get_executor()) {}

  stream_writer(const stream_writer&) = delete;
  stream_writer& operator=(const stream_writer&) = delete;

  /// Writes `bytes` (whole encoded events or comments), shared with other streams rather than copied. Returns
  /// false when the stream must end: the client has gone, the write failed, or the server cancelled the producer
  /// (client gone, drain), even while these bytes were being written. Completes when the bytes have been handed to
  /// the socket, so a producer that awaits each write is never more than one write ahead of a slow client
  /// (backpressure).
  asio::awaitable<bool> write(shared_bytes bytes) {
    // (Each co_await stands alone in its statement: g++ 12 miscompiles some inside conditions.)
    const bool started = co_await start();
    if (!started) co_return false;
    const bool sent = co_await send(std::move(bytes));
    co_return sent;
  }

  /// Waits until `wake` is called, `limit` passes (when not zero; a negative one has passed already), or the stream
  /// must end, writing a heartbeat comment each time `stream_options::heartbeat` passes meanwhile. Returns false
  /// when the stream must end (as `write`), true otherwise. A `limit` or heartbeat too long to reach
  /// (`duration::max()`) is never reached.
  asio::awaitable<bool> idle(std::chrono::steady_clock::duration limit = {}) {
    const bool started = co_await start();
    if (!started) co_return false;
    const auto now = std::chrono::steady_clock::now();
    // A negative limit is a deadline already gone (a producer's `deadline - now`), not "no limit".
    const auto until = limit.count() == 0 ? std::chrono::steady_clock::time_point::max()
                       : limit.count() < 0 ? now
                                           : switchboard::detail::saturating_add(now, limit);
    while (!woken_) {
      const auto next_beat = options_.heartbeat.count() > 0
                                 ? switchboard::detail::saturating_add(last_write_, options_.heartbeat)
                                 : std::chrono::steady_clock::time_point::max();
      const bool beat = next_beat < until;
      wake_.expires_at(beat ? next_beat : until);
      waiting_ = true;
      std::error_code ec;
      co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      waiting_ = false;
      const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
      if (must_end(state)) co_return false;
      if (woken_) break;
      if (ec) continue;  // a cancelled wait whose wake was already consumed
      if (!beat) break;  // `limit` passed
      const bool sent = co_await send(shared_bytes(std::string(":\n")), &heartbeats_);
      if (!sent) co_return false;
    }
    woken_ = false;
    co_return true;
  }

  /// Ends a pending `idle` early, or the next one at once if none is pending: there is something to write. On
  /// the connection's executor.
  void wake() {
    woken_ = true;
    if (waiting_) wake_.cancel();
  }

  /// Heartbeat comments written so far (a heartbeat whose write failed is not counted).
  std::uint64_t heartbeats() const noexcept { return heartbeats_; }

 private:
  // Writes the `retry` field once, before anything else.
  asio::awaitable<bool> start() {
    if (started_) co_return true;
    started_ = true;
    last_write_ = std::chrono::steady_clock::now();
    if (retry_block_.empty()) co_return true;
    const bool sent = co_await send(std::move(retry_block_));
    co_return sent;
  }

  // Writes `bytes`; false when the stream must end. A write cannot be cancelled, so the server's cancellation
  // (drain, client gone) may come while one is in flight: it is reported here as false, since asio would throw
  // it from the coroutine's next co_await, and the server cuts the connection of a producer that throws instead
  // of ending its body with the last chunk. `*written`, when given, counts the bytes as written once the write has
  // succeeded, whether or not the stream must end.
  asio::awaitable<bool> send(shared_bytes bytes, std::uint64_t* written = nullptr) {
    if (body_.closed()) co_return false;
    std::error_code ec;
    co_await body_.async_write(std::move(bytes), asio::redirect_error(asio::use_awaitable, ec));
    if (!ec && written) ++*written;
    last_write_ = std::chrono::steady_clock::now();
    const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
    co_return !ec && !must_end(state);
  }

  // Whether the server cancelled the producer or the client has gone. (Read through `this_coro::cancellation_state`,
  // the one co_await that does not throw once the coroutine is cancelled.)
  bool must_end(const asio::cancellation_state& state) const noexcept {
    return state.cancelled() != asio::cancellation_type::none || body_.closed();
  }

  http::body_writer& body_;
  stream_options options_;
  shared_bytes retry_block_;  // `detail::retry_block(options_.retry)`, sent by `start`
  asio::steady_timer wake_;  // the idle wait: expires at the next heartbeat, cancelled by `wake`
  std::chrono::steady_clock::time_point last_write_{};
  std::uint64_t heartbeats_ = 0;
  bool started_ = false;
  bool waiting_ = false;
  bool woken_ = false;
};

}  // namespace switchboard::sse
