// switchboard/longpoll/client.hpp
//
// `longpoll::client`: polls one long-poll URL (`GET /topics/{topic}/poll`, see endpoint.hpp) in a loop. It keeps
// the cursor, so that each message is delivered once and in order however often the connection drops: a poll
// whose answer was lost is simply asked again from the same cursor. Lost messages (no longer retained by the
// server) come as an explicit `missed` range, never silently. Errors are retried with exponential backoff and
// jitter; 408, 429 and 5xx answers are retried after their `Retry-After` (or the backoff); an answer that does not
// continue from the cursor sent is a protocol error, retried too, never delivered; answers with nothing new are
// repeated at most once per `min_poll_interval`. `stats()` counts polls, failures and paced polls.
//
//   longpoll::client news(ctx.get_executor(), "http://127.0.0.1:8080/topics/news/poll");
//   for (;;) {
//     longpoll::batch b = co_await news.async_next(asio::use_awaitable);
//     if (b.missed) resync(b.missed->first, b.missed->last);
//     for (auto& m : b.messages) show(m.sequence, m.data);
//   }
//
// Threading: as `http::client`, use it from its executor's thread (or a strand). One `async_next` at a time.
// Lifetime: as `http::client`'s, the poll in flight keeps the client's state alive, so the client may be destroyed
// while one is in flight (on its executor's thread, or with its io_context not running): the poll then completes
// with `asio::error::operation_aborted` once the io_context runs it, or is destroyed with it, and the client's
// connections are closed.
#pragma once

#include <switchboard/http/client.hpp>
#include <switchboard/longpoll/batch.hpp>
#include <switchboard/longpoll/error.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <utility>

namespace switchboard::longpoll {

namespace detail {

/// The wait before attempt number `failures + 1` without jitter: `initial` doubled after each failure past the
/// first, up to `max` (never past it, whatever `max` is: "no cap" may be `milliseconds::max()`).
inline std::chrono::milliseconds exponential_backoff(unsigned failures, std::chrono::milliseconds initial,
                                                     std::chrono::milliseconds max) noexcept {
  auto wait = std::min(initial, max);
  for (unsigned i = 1; i < failures && wait < max; ++i) wait = wait > max / 2 ? max : wait * 2;
  return wait;
}

/// The wait a `Retry-After` in delay-seconds form asks for (RFC 9110 §10.2.3), at most `max` (a number of
/// seconds too large for any clock is `max` too); nullopt when the field is absent or not a number.
inline std::optional<std::chrono::milliseconds> retry_after_wait(std::string_view retry_after,
                                                                 std::chrono::milliseconds max) noexcept {
  std::uint64_t seconds = 0;
  const auto [ptr, ec] = std::from_chars(retry_after.data(), retry_after.data() + retry_after.size(), seconds);
  if (retry_after.empty() || ptr != retry_after.data() + retry_after.size()) return std::nullopt;
  if (ec == std::errc::result_out_of_range) return max;
  if (ec != std::errc()) return std::nullopt;
  if (seconds > static_cast<std::uint64_t>(max.count() / 1000)) return max;  // before it could overflow
  return std::min<std::chrono::milliseconds>(std::chrono::seconds(seconds), max);
}

/// Whether `b`, the answer to a poll from cursor `sent` (nullopt: from the newest), continues from it as the
/// protocol says (batch.hpp): its first number (the gap's first, else the first message's) is `sent + 1` and its
/// cursor is its last number, or `sent` when it has none; a reset's cursor is below `sent`. The endpoint answers no
/// other way. An answer that breaks this (a cursor going back, messages at or below `sent`, numbers skipped without
/// a gap) comes from a server that numbers the topic differently: another instance behind a load balancer that
/// does not share the broker, a replica that lags. Its numbers are not the client's, so its messages are not
/// duplicates to drop either: taking any of it could deliver a message twice, or lose some without a gap (DESIGN
/// promise 3).
inline bool continues(const batch& b, std::optional<std::uint64_t> sent) noexcept {
  if (!sent) return true;  // nothing to continue from: the server picks the newest
  if (b.reset) return b.cursor < *sent;
  if (!b.missed && b.messages.empty()) return b.cursor == *sent;
  const std::uint64_t first = b.missed ? b.missed->first : b.messages.front().sequence;
  const std::uint64_t last = b.messages.empty() ? b.missed->last : b.messages.back().sequence;
  return first != 0 && first - 1 == *sent && b.cursor == last;  // `first - 1`: `sent + 1` would wrap at the top
}

}  // namespace detail

struct client_options {
  /// The wait asked of the server per poll (`timeout=`). The HTTP client's total timeout is raised to this plus
  /// 10 s if it is shorter, so that a parked poll is not cut by the client itself.
  std::chrono::milliseconds poll_timeout{25'000};
  /// The most messages per answer asked of the server (`max=`); 0: the server's default.
  std::size_t max_batch = 0;
  /// The wait after the first failure (an error, a 5xx without Retry-After); doubled after each further one,
  /// with up to 50% random jitter, up to `max_backoff`.
  std::chrono::milliseconds initial_backoff{200};
  /// The longest wait between attempts (a server's `Retry-After` is capped to it too).
  std::chrono::milliseconds max_backoff{30'000};
  /// Failed attempts in a row before `async_next` gives up with `error::too_many_failures`; 0: never gives up.
  unsigned max_attempts = 0;
  /// A poll answered with nothing new sooner than this (a proxy that cuts held requests short, a server that does
  /// not hold them or holds them less long) is asked again only once this long has passed since it was sent, so
  /// that such a server is not polled in a tight loop. 0: at once.
  std::chrono::milliseconds min_poll_interval{1000};
  /// Options of the underlying HTTP client (connection pool, connect timeout, TLS).
  http::client_options http{};
};

/// What a `client` has done since it was made: for monitoring, and for tests that wait for a retry or a paced poll.
struct client_stats {
  /// Polls sent, retries included.
  std::uint64_t polls = 0;
  /// Polls that failed: connection errors, 408, 429 and 5xx answers, answers that are not the long-poll shape or do
  /// not continue from the cursor sent. Each is retried after a backoff, unless it was the `max_attempts`-th in a row.
  std::uint64_t failures = 0;
  /// The error of the last failed poll (empty before the first): with `max_attempts` 0 (the default) failures are
  /// retried for ever, and this says why a client that delivers nothing is stuck (`error::bad_response`,
  /// `error::unexpected_status`, a connection error).
  std::error_code last_error;
  /// Polls delayed to keep to `min_poll_interval` (after an answer with nothing new that came sooner than that).
  std::uint64_t paced = 0;
  /// The last delay the client scheduled before a poll, a backoff or a pacing delay (rounded up to milliseconds).
  std::chrono::milliseconds last_delay{0};
};

class client {
 public:
  /// A client of `url`, e.g. "http://127.0.0.1:8080/topics/news/poll" (no query). Starts at the newest message
  /// unless `cursor` is given (the cursor of the last message seen, 0 for the beginning of the topic).
  client(asio::any_io_executor executor, std::string url, client_options options = {},
         std::optional<std::uint64_t> cursor = std::nullopt)
      : state_(std::make_shared<state>(std::move(executor), std::move(url), with_room(std::move(options)), cursor)) {}
  /// Ends the poll in flight (it completes with `asio::error::operation_aborted`, never inside the destructor) and
  /// closes every connection. Call it on the client's executor, or with its io_context not running.
  ~client() { state_->close(); }

  client(const client&) = delete;
  client& operator=(const client&) = delete;

  asio::any_io_executor get_executor() const { return state_->http_.get_executor(); }

  /// The cursor: the sequence number of the last message (or missed one) delivered; nullopt before the first
  /// answer when the client started at the newest.
  std::optional<std::uint64_t> cursor() const noexcept { return state_->cursor_; }

  /// The counters, read on the client's executor (as every member is used).
  const client_stats& stats() const noexcept { return state_->stats_; }

  /// Waits for the next batch: messages, a `missed` range, or a `reset` (the server's topic is younger than the
  /// cursor). Polls that time out with nothing new are repeated inside, so the batch is never empty. Completion
  /// signature: `void(std::error_code, batch)`. Errors: `error::unexpected_status` (400, 404, ...: not worth
  /// retrying), `error::too_many_failures` (`max_attempts`), `asio::error::operation_aborted`. The cursor moves
  /// forward only when a batch is delivered; a client started without one takes the topic's newest from its first
  /// answer. An answer that does not continue from the cursor sent (`detail::continues`: a cursor going back,
  /// messages at or below the cursor, numbers skipped without a gap) fails as `error::bad_response` and is retried
  /// from the same cursor like any failure: none of it is delivered.
  /// Cancellation: per-operation cancellation (terminal) aborts the poll in flight and closes its connection.
  template <class Token>
  auto async_next(Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, batch)>(
        [s = state_](auto handler) mutable {
          state& st = *s;
          st.ops_.start(std::move(s), st.http_.get_executor(), st.next(), std::move(handler));
        },
        token);
  }

 private:
  using outcome = http::detail::outcome<batch>;

  static client_options with_room(client_options o) {
    const auto needed = o.poll_timeout + std::chrono::milliseconds(10'000);
    if (o.http.total_timeout.count() != 0 && o.http.total_timeout < needed) o.http.total_timeout = needed;
    return o;
  }

  // Everything the client keeps, shared with its operation in flight, whose coroutine refers to it and may outlive
  // the client (see the Lifetime note at the top).
  struct state {
    state(asio::any_io_executor executor, std::string url, client_options options,
          std::optional<std::uint64_t> cursor)
        : options_(std::move(options)),
          http_(std::move(executor), options_.http),
          url_(std::move(url)),
          cursor_(cursor),
          rng_(std::random_device{}()) {}

    // The client goes: the poll in flight ends as a terminal cancellation ends it, and the idle connections close.
    void close() {
      ops_.cancel_all();
      http_.close_idle_connections();
    }

    std::string poll_url() const {
      std::string u = url_ + "?timeout=" + std::to_string(options_.poll_timeout.count() / 1000) + "." +
                      std::to_string(options_.poll_timeout.count() % 1000 / 100);
      if (cursor_) u += "&cursor=" + std::to_string(*cursor_);
      if (options_.max_batch != 0) u += "&max=" + std::to_string(options_.max_batch);
      return u;
    }

    // The wait before attempt number `failures + 1`: exponential, with up to 50% jitter, or the server's
    // Retry-After (delay-seconds form, RFC 9110 §10.2.3) when it gave one.
    std::chrono::milliseconds backoff(unsigned failures, std::string_view retry_after) {
      if (auto asked = detail::retry_after_wait(retry_after, options_.max_backoff)) return *asked;
      const auto wait = detail::exponential_backoff(failures, options_.initial_backoff, options_.max_backoff);
      std::uniform_int_distribution<std::int64_t> jitter(0, wait.count() / 2);
      return wait - std::chrono::milliseconds(jitter(rng_));
    }

    // Waits `duration` before the next poll (cancellation cuts it short with an error), noted in `stats_`.
    asio::awaitable<std::error_code> wait(std::chrono::steady_clock::duration duration) {
      stats_.last_delay = std::chrono::ceil<std::chrono::milliseconds>(duration);
      asio::steady_timer timer(http_.get_executor(), duration);
      auto [ec] = co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
      co_return ec;
    }

    asio::awaitable<outcome> next() {
      using asio::experimental::as_tuple;
      unsigned failures = 0;
      for (;;) {
        // Named locals, not temporaries, inside the co_await: g++ 12 destroys some temporaries of a co_await
        // expression twice.
        const std::string target = poll_url();
        const std::optional<std::uint64_t> sent = cursor_;
        http::client_request req;
        const auto sent_at = std::chrono::steady_clock::now();
        ++stats_.polls;
        auto [ec, r] = co_await http_.async_request(target, std::move(req), as_tuple(asio::use_awaitable));
        if (ec == asio::error::operation_aborted) co_return outcome{ec, {}};
        std::string_view retry_after;
        bool nothing_new = false;  // the wait ran out (or the ETag still holds): poll again
        if (!ec) {
          if (r.status == http::status::ok) {
            std::optional<batch> b = decode_batch(r.body);
            if (b && detail::continues(*b, sent)) {
              failures = 0;
              cursor_ = b->cursor;
              if (!b->messages.empty() || b->missed || b->reset) co_return outcome{{}, std::move(*b)};
              nothing_new = true;
            } else {
              ec = error::bad_response;  // a proxy's error page, or another server's numbering: retried
            }
          } else if (r.status == http::status::not_modified) {
            nothing_new = true;
          } else if (r.status == http::status::request_timeout || r.status == http::status::too_many_requests ||
                     http::to_int(r.status) >= 500) {
            // 408: the server, or a proxy in front of it, would not hold the request any longer; the client may
            // repeat it (RFC 9110 §15.5.9).
            retry_after = r.headers.get("Retry-After");
            ec = error::unexpected_status;
          } else {
            co_return outcome{error::unexpected_status, {}};
          }
        }
        if (nothing_new) {  // paced: at most one poll per min_poll_interval while nothing comes
          const auto left = sent_at + options_.min_poll_interval - std::chrono::steady_clock::now();
          if (left.count() > 0) {
            ++stats_.paced;
            if (const std::error_code wait_ec = co_await wait(left)) co_return outcome{wait_ec, {}};
          }
          continue;
        }
        ++stats_.failures;
        stats_.last_error = ec;
        if (++failures == options_.max_attempts) co_return outcome{error::too_many_failures, {}};
        if (const std::error_code wait_ec = co_await wait(backoff(failures, retry_after))) {
          co_return outcome{wait_ec, {}};
        }
      }
    }

    client_options options_;
    http::client http_;
    std::string url_;
    std::optional<std::uint64_t> cursor_;
    std::minstd_rand rng_;
    client_stats stats_;
    http::detail::operations ops_;  // the poll in flight
  };

  std::shared_ptr<state> state_;
};

}  // namespace switchboard::longpoll
