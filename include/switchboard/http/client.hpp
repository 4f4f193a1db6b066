// switchboard/http/client.hpp
//
// `http::client`: an asynchronous HTTP/1.1 and HTTPS client with a bounded keep-alive connection pool per origin,
// connect and total timeouts, retries with backoff for idempotent requests, and streamed response bodies.
//
//   http::client c(ctx.get_executor());
//   auto r = co_await c.async_get("http://127.0.0.1:8080/users/1", asio::use_awaitable);
//   // or with a callback, std::future (asio::use_future), asio::deferred, ...
//   c.async_request("https://example.com/upload", {.method = method::put, .body = data},
//                   [](std::error_code ec, http::client_response r) { ... });
//
// Threading: a client runs on one executor; use it from that executor's thread (or a strand). Initiating functions
// may be called from elsewhere only with an executor that serialises them (a strand).
// Lifetime: operations keep the client's state alive, so the client may be destroyed while they are in flight (on its
// executor's thread, or with its io_context not running): they then complete with `asio::error::operation_aborted`
// once the io_context runs them, or are destroyed with it, and every connection of the client is closed.
#pragma once

#include <switchboard/core/detail/saturating_time.hpp>
#include <switchboard/core/error.hpp>
#include <switchboard/http/error.hpp>
#include <switchboard/http/header_block.hpp>
#include <switchboard/http/method.hpp>
#include <switchboard/http/parser.hpp>
#include <switchboard/http/status.hpp>
#include <switchboard/http/url.hpp>
#include <switchboard/net/detail/server_name.hpp>
#include <switchboard/net/lookup.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/async_result.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/dispatch.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/recycling_allocator.hpp>
#include <asio/redirect_error.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/host_name_verification.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::http {

/// A custom lookup (net/lookup.hpp): `resolve_function` asks, `resolve_handler` takes the answer.
using resolve_handler = net::resolve_handler;
using resolve_function = net::resolve_function;

struct client_options {
  /// Most connections open at once to one origin (scheme, host, port); further requests wait in line for one, first
  /// come, first served, each until its own deadline.
  std::size_t max_connections_per_origin = 8;
  /// Most idle keep-alive connections kept per origin.
  std::size_t max_idle_per_origin = 8;
  /// An idle connection idle this long is closed rather than reused (servers close idle ones too): by the next request
  /// to any origin, which also forgets the pools left empty. No timer waits for it, so that a client between requests
  /// leaves its executor without work (an `io_context::run()` returns once the requests are done); the idle
  /// connections of a client that makes no more requests stay open until it is destroyed, or until
  /// `close_idle_connections()`.
  std::chrono::milliseconds idle_timeout{30'000};
  /// Looking up the host's addresses and connecting (and the TLS handshake).
  std::chrono::milliseconds connect_timeout{10'000};
  /// The whole request: from the first attempt to the end of the response, retries included. 0: none.
  std::chrono::milliseconds total_timeout{30'000};
  /// Extra attempts after a connection failure, for idempotent methods only (RFC 9110 §9.2.2).
  unsigned max_retries = 2;
  /// The first retry waits this long (with up to 50% random jitter); each further retry waits twice as long.
  std::chrono::milliseconds retry_backoff{50};
  /// Response limits (headers as in the server; the body limit is larger by default).
  parser_limits limits{.max_body = 64 * 1024 * 1024};
  /// TLS context for https URLs. Default: system trust store, peer verification and host name checking on.
  std::shared_ptr<asio::ssl::context> tls;
  /// Value of the User-Agent field; empty sends none.
  std::string user_agent = "switchboard";
  /// A request with a body of at least this many bytes asks first (`Expect: 100-continue`, RFC 9110 §10.1.1): its
  /// body is sent after the server's 100 (Continue), or after `expect_continue_timeout` without an answer (servers
  /// that ignore the expectation), and not at all when a final answer (401, 413...) comes first. So a refused
  /// upload costs its header, not its body. 0: never; a request whose own headers hold the expectation waits too.
  std::size_t expect_continue_from = 1024 * 1024;
  std::chrono::milliseconds expect_continue_timeout{1000};
  /// How host names are looked up: custom service discovery, pinned addresses (as curl's `--resolve`). Empty: Asio's
  /// resolver (getaddrinfo). The lookup is part of the connect phase, bounded by `connect_timeout`.
  resolve_function resolve;
};

/// A request to send. `target` comes from the URL; `Host`, `Content-Length` and `Connection` are set by the client.
struct client_request {
  http::method method = http::method::get;
  header_block headers;
  std::string body;
};

struct client_response {
  http::status status = http::status::ok;
  std::string reason;
  header_block headers;  ///< the response's fields, in order
  std::string body;      ///< empty when the body was streamed to a sink
};

/// Receives the pieces of a streamed response body, in order. Called on the client's executor.
using body_sink = std::function<void(std::string_view piece)>;

namespace detail {

/// What an operation of a client completes with: `handler(ec, value)`.
template <class T>
struct outcome {
  std::error_code ec;
  T value;
};

/// The operations a client has in flight, so that destroying the client can end them all (`cancel_all`). Each is a
/// coroutine started with `co_spawn`, and a cancellation signal is the only way into one from outside: each gets a
/// signal of its own, to which the caller's cancellation slot, if it has one, is forwarded. The signals are nodes
/// of a list, kept stable while the operations run, whose nodes Asio's recycling allocator takes from a per-thread
/// cache (no allocation per operation on an io_context's thread).
class operations {
 public:
  /// Runs `op` on `executor`; its outcome goes to `handler` on the handler's associated executor, its exception as
  /// an error code. `owner`, the client's state that holds this set and that the coroutine refers to, lives until
  /// the operation ends: until its handler is called, or destroyed with the io_context.
  template <class T, class Handler>
  void start(std::shared_ptr<void> owner, const asio::any_io_executor& executor, asio::awaitable<outcome<T>> op,
             Handler handler) {
    const auto it = signals_.emplace(signals_.end());
    auto caller = asio::get_associated_cancellation_slot(handler);
    if (caller.is_connected()) caller.assign([&signal = *it](asio::cancellation_type type) { signal.emit(type); });
    auto handler_ex = asio::get_associated_executor(handler, executor);
    asio::co_spawn(executor, std::move(op),
                   asio::bind_cancellation_slot(it->slot(), completion<T, Handler, decltype(handler_ex)>(
                                                                std::move(owner), *this, it, std::move(handler),
                                                                std::move(handler_ex))));
  }

  /// Cancels every operation in flight (terminal cancellation). Their handlers do not run here: each operation
  /// completes when its executor runs it next.
  void cancel_all() {
    for (auto& signal : signals_) signal.emit(asio::cancellation_type::terminal);
  }

 private:
  using signal_list = std::list<asio::cancellation_signal, asio::recycling_allocator<asio::cancellation_signal>>;

  // The completion handler of an operation's coroutine. It takes the operation's signal out of the set when it runs,
  // and also when it is destroyed without running (with the io_context, the coroutine's frames with it): a signal
  // left in the set would lead `cancel_all` into the cancellation handlers of operations destroyed.
  template <class T, class Handler, class HandlerExecutor>
  class completion {
   public:
    completion(std::shared_ptr<void> owner, operations& set, signal_list::iterator it, Handler handler,
               HandlerExecutor handler_ex)
        : owner_(std::move(owner)),
          set_(&set),
          it_(it),
          handler_(std::move(handler)),
          handler_ex_(std::move(handler_ex)) {}
    completion(completion&& other) noexcept
        : owner_(std::move(other.owner_)),
          set_(std::exchange(other.set_, nullptr)),
          it_(other.it_),
          handler_(std::move(other.handler_)),
          handler_ex_(std::move(other.handler_ex_)) {}
    completion& operator=(completion&&) = delete;
    ~completion() { leave(); }

    void operator()(std::exception_ptr e, outcome<T> o) {
      if (e) o.ec = switchboard::detail::exception_to_error(e);
      leave();
      asio::dispatch(handler_ex_, [h = std::move(handler_), o = std::move(o)]() mutable {
        std::move(h)(o.ec, std::move(o.value));
      });
    }

   private:
    void leave() {
      if (!set_) return;
      // The caller's slot forwards to the signal, which goes now (cleared while the handler, whose slot it is, lives).
      if (auto caller = asio::get_associated_cancellation_slot(handler_); caller.is_connected()) caller.clear();
      set_->signals_.erase(it_);
      set_ = nullptr;
    }

    std::shared_ptr<void> owner_;  // first: it goes last, after the handler
    operations* set_;              // null once the signal has left it (or in a moved-from handler)
    signal_list::iterator it_;
    Handler handler_;
    HandlerExecutor handler_ex_;
  };

  signal_list signals_;
};

}  // namespace detail

class client {
 public:
  explicit client(asio::any_io_executor executor, client_options options = {})
      : state_(std::make_shared<state>(std::move(executor), std::move(options))) {}
  /// Ends the requests in flight (they complete with `asio::error::operation_aborted`, never inside the destructor)
  /// and closes every connection. Call it on the client's executor, or with its io_context not running.
  ~client() { state_->close(); }

  client(const client&) = delete;
  client& operator=(const client&) = delete;

  asio::any_io_executor get_executor() const { return state_->executor_; }

  /// Sends `req` to `url`. Completion signature: `void(std::error_code, client_response)`.
  /// Errors: `switchboard::error::timeout` (connect or total timeout), `asio::error::invalid_argument` (a URL that is not
  /// http/https), parse errors of the response (`http::error`), errors of the lookup (`client_options::resolve`) and the socket.
  /// Cancellation: per-operation cancellation (terminal) aborts the request and closes its connection.
  template <class Token>
  auto async_request(std::string_view url, client_request req, Token&& token) {
    return async_request(url, std::move(req), body_sink{}, std::forward<Token>(token));
  }

  /// As above, streaming the response body to `sink` piece by piece instead of collecting it.
  template <class Token>
  auto async_request(std::string_view url, client_request req, body_sink sink, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, client_response)>(
        [s = state_](auto handler, std::string url, client_request req, body_sink sink) mutable {
          state& st = *s;
          st.ops_.start(std::move(s), st.executor_, st.run(std::move(url), std::move(req), std::move(sink)),
                        std::move(handler));
        },
        token, std::string(url), std::move(req), std::move(sink));
  }

  /// GET `url`.
  template <class Token>
  auto async_get(std::string_view url, Token&& token) {
    return async_request(url, client_request{}, std::forward<Token>(token));
  }

  /// POST `body` with `content_type` to `url`.
  template <class Token>
  auto async_post(std::string_view url, std::string body, std::string_view content_type, Token&& token) {
    client_request req{.method = method::post, .body = std::move(body)};
    req.headers.set("Content-Type", content_type);
    return async_request(url, std::move(req), std::forward<Token>(token));
  }

  /// Closes every idle keep-alive connection now, however fresh, and forgets the pools left empty: for a client that
  /// will make no requests for a while, since idle connections are otherwise closed only by a later request (see
  /// `client_options::idle_timeout`). Requests in flight and the connections they use are not touched. Call it on
  /// the client's executor, like a request.
  void close_idle_connections() { state_->close_idle_connections(); }

  /// Open connections per origin, "scheme://host:port" (as `url::origin` writes it), for tests and monitoring (idle
  /// ones included). Compared without regard to case, as the pools are keyed (see `parse_url`).
  std::size_t open_connections(std::string_view origin) const {
    auto it = state_->pools_.find(detail::ascii_lowercase(origin));
    return it == state_->pools_.end() ? 0 : it->second->open;
  }
  /// Origins the client keeps a pool for: those with connections open or requests waiting for one.
  std::size_t pooled_origins() const noexcept { return state_->pools_.size(); }
  /// Connections opened since the client was made.
  std::uint64_t connections_opened() const noexcept { return state_->opened_; }

 private:
  using outcome = detail::outcome<client_response>;

  // What an attempt writes: the request's bytes, where its body starts in them, and whether the body waits for the
  // server's 100 (Continue).
  struct sending {
    const std::string& bytes;
    std::size_t body_at;
    bool expects_continue;
  };

  // Where the body of a request that expects 100 (Continue) waits: the response's reader opens it on the 100, or
  // when the response is over (then the body is not sent); the timer, after `expect_continue_timeout`.
  struct continue_gate {
    explicit continue_gate(asio::any_io_executor ex) : timer(std::move(ex)) {}
    void open() {
      opened = true;
      timer.cancel();
    }
    asio::steady_timer timer;
    bool opened = false;
  };

  // One connection: a TCP socket, or a TLS stream over one.
  struct connection {
    explicit connection(asio::any_io_executor ex) : socket(ex) {}
    asio::ip::tcp::socket socket;
    std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls;
    std::string buffer;  // bytes received and not yet parsed (the start of a next response)
    std::chrono::steady_clock::time_point idle_since;
    bool reused = false;

    asio::ip::tcp::socket& lowest() noexcept { return socket; }
    void close() {
      std::error_code ignored;
      socket.close(ignored);
    }
  };

  // A request waiting for room in a full pool. The release that makes room takes it out of the line and cancels its
  // timer; the timer expiring is the request's deadline.
  struct waiter {
    waiter(asio::any_io_executor ex, std::chrono::steady_clock::time_point deadline) : timer(ex, deadline) {}
    asio::steady_timer timer;
    bool woken = false;
  };

  struct origin_pool {
    std::string origin;                            // its key in pools_
    std::deque<std::unique_ptr<connection>> idle;  // oldest first
    std::size_t open = 0;
    std::list<waiter*> waiting;  // the line of requests waiting for room, first come, first served
    std::size_t woken = 0;       // requests a release took out of the line that have not run yet: the room is theirs
  };

  // Closes the connection when the deadline passes; the operations on it then fail, and fired() tells why.
  // A deadline that passes as the response completes (both ready in one turn of the event loop, as when its thread
  // was busy) has its handler queued already, which cancel() cannot take back, and which runs after the attempt, and
  // the watchdog in its frame, have ended. So the handler shares the state instead of pointing at the watchdog, and
  // does nothing unless its arming is still the current one. (It used to write into the freed frame, often by then
  // a new attempt's, whose connection it closed and which then failed at once with a timeout.)
  struct watchdog {
    struct state {
      connection* target = nullptr;
      bool fired = false;
      unsigned arming = 0;  // bumped by each arm() and disarm(): a handler of an older arming is stale
    };
    watchdog(asio::any_io_executor ex) : timer(ex) {}
    ~watchdog() { disarm(); }  // a handler already queued must not close a connection released since
    void arm(std::chrono::steady_clock::time_point deadline, connection* c) {
      timer.expires_at(deadline);
      s->target = c;
      timer.async_wait([s = s, arming = ++s->arming](std::error_code ec) {
        if (ec || arming != s->arming) return;
        s->fired = true;
        if (s->target) s->target->close();
      });
    }
    void disarm() {
      ++s->arming;
      s->target = nullptr;
      timer.cancel();
    }
    bool fired() const noexcept { return s->fired; }
    asio::steady_timer timer;
    std::shared_ptr<state> s = std::make_shared<state>();
  };

  // Everything the client keeps, shared with its operations in flight: their coroutines refer to it, and may outlive
  // the client (see the Lifetime note at the top).
  struct state {
    state(asio::any_io_executor executor, client_options options)
        : executor_(std::move(executor)), options_(std::move(options)), rng_(std::random_device{}()) {
      if (options_.max_connections_per_origin == 0) {
        throw std::invalid_argument("switchboard::http::client: no connections allowed");
      }
      if (!options_.tls) {
        options_.tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
        options_.tls->set_default_verify_paths();
        options_.tls->set_verify_mode(asio::ssl::verify_peer);
      }
      if (!options_.resolve) options_.resolve = net::system_resolver(executor_);
    }

    // The client goes: its operations in flight end as a terminal cancellation ends one (each completes with
    // `operation_aborted` when its executor runs it again, giving back and closing its connection), and the idle
    // connections close now.
    void close() {
      ops_.cancel_all();
      close_idle_connections();
    }

    void close_idle_connections() { close_expired(std::chrono::steady_clock::time_point::max()); }

    asio::awaitable<outcome> run(std::string url_text, client_request req, body_sink sink) {
      outcome out;
      const std::optional<url> u = parse_url(url_text);
      if (!u) {
        out.ec = asio::error::invalid_argument;
        co_return out;
      }
      const auto start = std::chrono::steady_clock::now();
      const auto deadline = options_.total_timeout.count() > 0 ? start + options_.total_timeout
                                                                : std::chrono::steady_clock::time_point::max();
      bool add_expectation = options_.expect_continue_from > 0 && req.body.size() >= options_.expect_continue_from &&
                             !req.headers.contains("expect");
      std::string request_bytes = serialize(*u, req, add_expectation);
      const bool may_retry = is_idempotent(req.method);
      auto backoff = options_.retry_backoff;
      for (unsigned attempt = 0;; ++attempt) {
        bool sent = false;
        const sending how{.bytes = request_bytes,
                          .body_at = request_bytes.size() - req.body.size(),
                          .expects_continue = add_expectation || expects_continue(req.headers)};
        out = co_await attempt_once(*u, req.method, how, sink, deadline, sent);
        if (!out.ec && out.value.status == status::expectation_failed && add_expectation) {
          // A server (or an intermediary) that does not take expectations: the same request without one, at once
          // (RFC 9110 §10.1.1). An expectation the caller wrote is the caller's to drop.
          add_expectation = false;
          request_bytes = serialize(*u, req, false);
          --attempt;  // not a retry: the request was refused unread
          continue;
        }
        const bool connection_failure = out.ec && out.ec.category() != http_category() &&
                                        out.ec != switchboard::error::timeout &&
                                        out.ec != asio::error::operation_aborted;
        // Retry only what cannot have taken effect twice: idempotent methods, or a request never sent.
        if (!connection_failure || attempt >= options_.max_retries || (!may_retry && sent)) co_return out;
        // A retry that could only start after the deadline is not made: the request fails at once with the error
        // it has, rather than after the wait with a timeout.
        const auto jitter = std::uniform_int_distribution<long>(0, backoff.count() / 2)(rng_);
        const auto retry_at = std::chrono::steady_clock::now() + backoff + std::chrono::milliseconds(jitter);
        if (retry_at >= deadline) co_return out;
        asio::steady_timer wait(executor_, retry_at);
        std::error_code wait_ec;
        co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, wait_ec));
        if (wait_ec) {  // cancelled during the wait: aborted, as at any other point
          out.ec = asio::error::operation_aborted;
          co_return out;
        }
        backoff *= 2;
      }
    }

    static bool expects_continue(const header_block& headers) {
      return detail::iequals(headers.get("expect"), "100-continue");
    }

    std::string serialize(const url& u, const client_request& req, bool add_expectation) const {
      std::string s;
      s.reserve(128 + req.headers.serialized().size() + req.body.size());
      s.append(to_string(req.method)).append(" ").append(u.target).append(" HTTP/1.1\r\nHost: ").append(u.host_field());
      s.append("\r\n");
      if (!options_.user_agent.empty() && !req.headers.contains("user-agent")) {
        s.append("User-Agent: ").append(options_.user_agent).append("\r\n");
      }
      req.headers.for_each([&](std::string_view name, std::string_view value) {
        if (detail::iequals(name, "host") || detail::iequals(name, "content-length") ||
            detail::iequals(name, "transfer-encoding") || detail::iequals(name, "connection")) {
          return;  // the client frames the message itself
        }
        s.append(name).append(": ").append(value).append("\r\n");
      });
      if (!req.body.empty() || req.method == method::post || req.method == method::put || req.method == method::patch) {
        s.append("Content-Length: ").append(std::to_string(req.body.size())).append("\r\n");
      }
      if (add_expectation) s.append("Expect: 100-continue\r\n");
      s.append("\r\n").append(req.body);
      return s;
    }

    asio::awaitable<outcome> attempt_once(const url& u, method m, const sending& how, body_sink& sink,
                                          std::chrono::steady_clock::time_point deadline, bool& sent) {
      outcome out;
      close_expired();  // before pool_for: it may forget pools
      origin_pool& pool = pool_for(u.origin());
      std::unique_ptr<connection> c = co_await checkout(pool, deadline, out.ec);
      if (out.ec) co_return out;
      // A cancelled coroutine throws at its next co_await (asio::this_coro::throw_if_cancelled), skipping the
      // release calls below: give the connection back to the pool then too, or the origin's count leaks until no
      // request can get a connection.
      struct give_back {
        state& self;
        origin_pool& pool;
        std::unique_ptr<connection>& c;
        ~give_back() {
          if (c) self.release(pool, std::move(c), false);
        }
      } on_exit{*this, pool, c};
      watchdog guard(executor_);
      if (!c) {
        // Look up the host and connect within the connect timeout (and the total deadline). The watchdog, which closes
        // the socket, is armed after the lookup: until the connect opens the socket, there is nothing for it to close.
        c = std::make_unique<connection>(executor_);
        ++pool.open;
        ++opened_;
        const auto connect_deadline = std::min(
            deadline, switchboard::detail::saturating_add(std::chrono::steady_clock::now(), options_.connect_timeout));
        const std::vector<asio::ip::tcp::endpoint> endpoints =
            co_await net::look_up(executor_, options_.resolve, u.host, u.port, connect_deadline, out.ec);
        if (!out.ec) {
          guard.arm(connect_deadline, c.get());
          out.ec = co_await connect(*c, u, endpoints);
          if (guard.fired()) out.ec = switchboard::error::timeout;
        }
        if (out.ec) {
          release(pool, std::move(c), false);
          co_return out;
        }
      }
      guard.arm(deadline, c.get());
      bool keep_alive = false;
      std::error_code ec = co_await exchange(*c, m, how, sink, out.value, keep_alive, sent);
      guard.disarm();
      if (guard.fired()) ec = switchboard::error::timeout;
      out.ec = ec;
      release(pool, std::move(c), !ec && keep_alive);
      co_return out;
    }

    origin_pool& pool_for(const std::string& origin) {
      auto& p = pools_[origin];
      if (!p) {
        p = std::make_unique<origin_pool>();
        p->origin = origin;
      }
      return *p;
    }

    // Forgets a pool that nothing uses any more (no connection, no request in line or woken for room), so that a client
    // that talks to many origins keeps state only for those it is talking to. Whoever calls it lets go of `pool`.
    void forget_if_unused(origin_pool& pool) {
      if (pool.open == 0 && pool.waiting.empty() && pool.woken == 0) pools_.erase(pools_.find(pool.origin));
    }

    bool still_fresh(const connection& c, std::chrono::steady_clock::time_point now) const {
      return now - c.idle_since < options_.idle_timeout;
    }

    // Closes a connection that leaves the pool for good.
    static void discard(origin_pool& pool, connection& c) {
      c.close();
      --pool.open;
    }

    // An idle connection, or permission to open one (nullptr), waiting while the origin is at its limit.
    asio::awaitable<std::unique_ptr<connection>> checkout(origin_pool& pool,
                                                          std::chrono::steady_clock::time_point deadline,
                                                          std::error_code& ec) {
      for (bool woken_before = false;; woken_before = true) {
        // First come, first served: a request that has not waited takes an idle connection, or room for a new one,
        // only if nobody is in line and more is free than the requests already woken (which run later) will take. A
        // release only queues the wake-up of the first in line; a request made before that runs (by a completion
        // handler, which runs at once: the released request's own, among others) used to take the room, and a client
        // that sends its next request from each completion kept the line waiting until its deadline.
        const std::size_t available = pool.idle.size() + (options_.max_connections_per_origin - pool.open);
        const bool may_take = woken_before || (pool.waiting.empty() && available > pool.woken);
        while (may_take && !pool.idle.empty()) {
          auto c = std::move(pool.idle.front());
          pool.idle.pop_front();
          if (still_fresh(*c, std::chrono::steady_clock::now()) && c->socket.is_open() && !closed_while_idle(*c)) {
            c->reused = true;
            co_return c;
          }
          discard(pool, *c);
        }
        if (may_take && pool.open < options_.max_connections_per_origin) co_return nullptr;
        // Wait in line for a release, or the deadline. One release makes room for one request, so it wakes only the
        // first in line: the others sleep on. A request woken for room that it does not find (which the rule above
        // should make impossible) waits again at the head of the line.
        waiter w(executor_, deadline);
        const auto place = pool.waiting.insert(woken_before ? pool.waiting.begin() : pool.waiting.end(), &w);
        struct leave_line {  // a timeout, or a cancellation (which may also come as an exception)
          origin_pool& pool;
          waiter& w;
          std::list<waiter*>::iterator place;
          ~leave_line() {
            if (!w.woken) pool.waiting.erase(place);
          }
        } on_exit{pool, w, place};
        std::error_code wait_ec;
        co_await w.timer.async_wait(asio::redirect_error(asio::use_awaitable, wait_ec));
        if (!w.woken) {
          ec = wait_ec ? std::error_code(asio::error::operation_aborted) : std::error_code(switchboard::error::timeout);
          co_return nullptr;
        }
        --pool.woken;
      }
    }

    // A server may close a keep-alive connection while it waits in the pool (its idle timeout, a restart): the
    // connection is then readable, with EOF, or over TLS the server's closure alert, or a 408 some servers send first.
    // A request sent on it would fail only after it was written, and one that is not idempotent could not be retried
    // (RFC 9112 §9.3.1): so look before reuse, with a peek that does not wait. Nothing else may arrive on an idle
    // HTTP/1.1 connection.
    static bool closed_while_idle(connection& c) {
      char probe;
      const ssize_t n = ::recv(c.socket.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
      return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }

    // Gives a connection back to its pool (the caller lets go of `pool`, which may be forgotten).
    void release(origin_pool& pool, std::unique_ptr<connection> c, bool reusable) {
      if (reusable && pool.idle.size() < options_.max_idle_per_origin) {
        c->idle_since = std::chrono::steady_clock::now();
        next_expiry_ = std::min(next_expiry_, c->idle_since + options_.idle_timeout);
        pool.idle.push_back(std::move(c));
      } else {
        discard(pool, *c);
      }
      if (!pool.waiting.empty()) {  // the room this makes goes to the first request in line
        waiter* first = pool.waiting.front();
        pool.waiting.pop_front();
        first->woken = true;
        ++pool.woken;
        first->timer.cancel();
      }
      forget_if_unused(pool);
    }

    // Idle connections are closed once their idle_timeout has passed, by the next request to any origin, not only by
    // one to the same origin (which had been the only one to look): a client that went on talking to other origins
    // kept them open, and the pools of origins it no longer talked to, for ever. It looks only when the earliest
    // expiry has come, so a request pays for the walk over the pools at most once per expiry. `now` is later for
    // `close_idle_connections`, at which every idle connection has expired.
    void close_expired(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) {
      if (now < next_expiry_) return;
      next_expiry_ = std::chrono::steady_clock::time_point::max();
      for (auto it = pools_.begin(); it != pools_.end();) {
        origin_pool& pool = *(it++)->second;  // the pool may be forgotten
        // Oldest first: the connections still fresh are the later ones.
        while (!pool.idle.empty() && !still_fresh(*pool.idle.front(), now)) {
          discard(pool, *pool.idle.front());
          pool.idle.pop_front();
        }
        if (!pool.idle.empty()) {
          next_expiry_ = std::min(next_expiry_, pool.idle.front()->idle_since + options_.idle_timeout);
        }
        forget_if_unused(pool);
      }
    }

    asio::awaitable<std::error_code> connect(connection& c, const url& u,
                                             const std::vector<asio::ip::tcp::endpoint>& endpoints) {
      std::error_code ec;
      co_await asio::async_connect(c.socket, endpoints, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return ec;
      c.socket.set_option(asio::ip::tcp::no_delay(true), ec);
      if (u.scheme == "https") {
        c.tls = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(c.socket, *options_.tls);
        // SNI and certificate host name verification (RFC 6125).
        if (!net::detail::set_server_name(c.tls->native_handle(), u.host)) {
          co_return std::error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
        }
        c.tls->set_verify_callback(asio::ssl::host_name_verification(u.host));
        co_await c.tls->async_handshake(asio::ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
      }
      co_return ec;
    }

    asio::awaitable<void> write_all(connection& c, std::string_view bytes, std::error_code& ec) {
      if (c.tls) {
        co_await asio::async_write(*c.tls, asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec));
      } else {
        co_await asio::async_write(c.socket, asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec));
      }
    }

    // Sends the request and reads its response; `sent` says whether the whole request was written. A request with a
    // body is written while the response is read (RFC 9112 §9.5): a server may answer before the body has all
    // arrived (an early 413, a 401) and then stop reading, or close, and a client that only wrote would wait until its
    // deadline, or fail with the answer unread.
    asio::awaitable<std::error_code> exchange(connection& c, method m, const sending& how, body_sink& sink,
                                              client_response& r, bool& keep_alive, bool& sent) {
      std::error_code write_ec;
      if (how.body_at == how.bytes.size()) {
        co_await write_all(c, how.bytes, write_ec);
        sent = !write_ec;
        if (write_ec) co_return write_ec;
        co_return co_await read_response(c, m, sink, r, keep_alive, nullptr);
      }
      using namespace asio::experimental::awaitable_operators;
      bool write_ended = false;
      continue_gate gate(executor_);
      if (!how.expects_continue) gate.opened = true;
      const std::error_code read_ec = co_await (write_request(c, how, gate, write_ec, write_ended) &&
                                                read_while_writing(c, m, sink, r, keep_alive, gate, write_ended));
      sent = write_ended && !write_ec;
      // A write that failed or was cut short leaves a response that arrived whole standing (the server has answered),
      // but not the connection.
      if (!sent) keep_alive = false;
      co_return read_ec;
    }

    // Writes the request; a body that waits for 100 (Continue) after the header, until the gate opens (RFC 9110
    // §10.1.1: a client need not wait for the 100 without end, since not every server sends one).
    asio::awaitable<void> write_request(connection& c, const sending& how, continue_gate& gate, std::error_code& ec,
                                        bool& ended) {
      if (!gate.opened) {
        co_await write_all(c, std::string_view(how.bytes).substr(0, how.body_at), ec);
        if (ec) co_return;
        if (!gate.opened) {
          gate.timer.expires_after(options_.expect_continue_timeout);
          std::error_code wait_ec;
          co_await gate.timer.async_wait(asio::redirect_error(asio::use_awaitable, wait_ec));
          gate.opened = true;
        }
        if (!c.socket.is_open()) co_return;  // answered (and closed) before the body was needed
        co_await write_all(c, std::string_view(how.bytes).substr(how.body_at), ec);
      } else {
        co_await write_all(c, how.bytes, ec);
      }
      ended = true;
    }

    // Reads the response to a request that may still be being written. Once the response is over (or has failed),
    // the rest of the body is not sent: the write is cancelled by closing the connection, which, its request cut
    // short, could not be used again.
    asio::awaitable<std::error_code> read_while_writing(connection& c, method m, body_sink& sink, client_response& r,
                                                        bool& keep_alive, continue_gate& gate,
                                                        const bool& write_ended) {
      const std::error_code ec = co_await read_response(c, m, sink, r, keep_alive, &gate);
      if (!write_ended) {
        keep_alive = false;
        c.close();
        gate.open();  // a body still waiting for its 100 is not sent
      }
      co_return ec;
    }

    asio::awaitable<std::size_t> read_some(connection& c, char* data, std::size_t size, std::error_code& ec) {
      if (c.tls) {
        co_return co_await c.tls->async_read_some(asio::buffer(data, size),
                                                  asio::redirect_error(asio::use_awaitable, ec));
      }
      co_return co_await c.socket.async_read_some(asio::buffer(data, size),
                                                  asio::redirect_error(asio::use_awaitable, ec));
    }

    // Reads one final response (skipping 1xx interim responses, RFC 9110 §15.2). A 100 (Continue) opens `gate`, where
    // a request body may wait for it.
    asio::awaitable<std::error_code> read_response(connection& c, method m, body_sink& sink, client_response& r,
                                                   bool& keep_alive, continue_gate* gate) {
      response_parser parser(options_.limits);
      char chunk[16 * 1024];
      for (;;) {
        if (m == method::head) parser.expect_head_response();
        bool have_header = false;
        for (;;) {
          std::error_code ec;
          std::size_t n = parser.put(c.buffer, ec);
          if (ec) co_return ec;
          if (parser.header_done() && !have_header) {
            have_header = true;
            r.status = static_cast<status>(parser.status_code());
            r.reason = std::string(parser.reason());
            r.headers.clear();
            for (const auto& f : parser.fields()) r.headers.add(f.name, f.value);
          }
          const std::string_view piece = parser.body_piece();
          if (!piece.empty()) {
            if (sink) sink(piece);
            else r.body.append(piece);
          }
          c.buffer.erase(0, n);
          if (parser.done()) break;
          if (n > 0) continue;
          const std::size_t got = co_await read_some(c, chunk, sizeof chunk, ec);
          if (ec) {
            // The end of the connection ends a body framed by it (RFC 9112 §6.3). Over TLS only with the server's
            // closure alert (which the stream reports as eof): a connection that just ends (stream_truncated) may
            // have been cut by an attacker, and such a response is incomplete (RFC 9112 §9.8).
            std::error_code eof_ec;
            if (ec == asio::error::eof) parser.put_eof(eof_ec);
            if (ec == asio::error::eof && !eof_ec && parser.done()) break;
            // A response cut after its header is not a connection failure to retry: the server answered, and part
            // of the body may have gone to the sink already, which a retry would give it again from the start.
            if (parser.header_done() && ec != asio::error::operation_aborted) co_return error::partial_message;
            co_return ec == asio::error::eof ? std::error_code(asio::error::connection_reset) : ec;
          }
          c.buffer.append(chunk, got);
        }
        if (parser.status_code() >= 200 || parser.status_code() == 101) break;
        if (parser.status_code() == 100 && gate) gate->open();
        parser.reset();  // an interim response: the final one follows
        r.body.clear();
      }
      // Bytes after the final response answer nothing (the client sends one request at a time): the server is out of
      // step with the connection, so it is not used again rather than have them read as the next response.
      keep_alive = parser.keep_alive() && parser.framing() != body_framing::until_eof && c.buffer.empty();
      co_return std::error_code{};
    }

    asio::any_io_executor executor_;
    client_options options_;
    // Keyed by `url::origin()`, in lower case, so that URLs that differ only in the case of scheme or host (RFC 3986
    // §6.2.2.1) share one pool.
    std::map<std::string, std::unique_ptr<origin_pool>> pools_;
    std::mt19937 rng_;
    std::uint64_t opened_ = 0;
    // When the earliest idle connection expires.
    std::chrono::steady_clock::time_point next_expiry_ = std::chrono::steady_clock::time_point::max();

    detail::operations ops_;  // the operations in flight
  };

  std::shared_ptr<state> state_;
};

}  // namespace switchboard::http
