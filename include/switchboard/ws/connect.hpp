// switchboard/ws/connect.hpp
//
// The client side: `ws::async_connect` opens a WebSocket to a `ws://` or `wss://` URL (RFC 6455 §4.1) and gives
// a `session` (the same type a server gets, in the client role: its frames are masked).
//
//   auto s = co_await ws::async_connect(executor, "ws://127.0.0.1:8080/echo", {}, asio::use_awaitable);
//   s->on_message([](ws::message&& m) { ... });
//   s->start();                      // after the handlers are set
//   s->send_text("hello");
#pragma once

#include <switchboard/core/detail/saturating_time.hpp>
#include <switchboard/core/error.hpp>
#include <switchboard/http/header_block.hpp>
#include <switchboard/http/parser.hpp>
#include <switchboard/http/url.hpp>
#include <switchboard/net/detail/server_name.hpp>
#include <switchboard/net/lookup.hpp>
#include <switchboard/ws/deflate.hpp>
#include <switchboard/ws/error.hpp>
#include <switchboard/ws/extensions.hpp>
#include <switchboard/ws/handshake.hpp>
#include <switchboard/ws/session.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/dispatch.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/redirect_error.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/host_name_verification.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::ws {

struct connect_options {
  /// Subprotocols to offer, in order of preference.
  std::vector<std::string> subprotocols;
  /// The Origin header to send; empty sends none (a browser always sends one; other clients need not).
  std::string origin;
  /// permessage-deflate to offer; off by default.
  deflate_options deflate;
  /// The session's limits, queue, keep-alive and timeouts.
  session_options session;
  /// Extra request fields (Authorization, Cookie, ...).
  std::vector<std::pair<std::string, std::string>> headers;
  /// Looking up the host, connecting, TLS and the opening handshake, all together.
  std::chrono::milliseconds connect_timeout{10'000};
  /// How the host name is looked up (net/lookup.hpp): service discovery, pinned addresses. Empty: Asio's resolver.
  net::resolve_function resolve;
  /// For wss:// URLs; default: the system trust store, peer verification and host name checking.
  std::shared_ptr<asio::ssl::context> tls;
};

namespace detail {

// The opening handshake's request (RFC 6455 §4.1) with its key. Throws `std::invalid_argument` when an option
// cannot be sent: a field name or value that is not valid (no header injection through options), a subprotocol
// that is not a token or is offered twice (RFC 6455 §4.1 item 10: "a,b" would be read as two), deflate options out
// of range.
struct client_request {
  std::string key;
  std::string bytes;
};

inline client_request make_client_request(const http::url& u, const connect_options& o) {
  client_request r{make_client_key(), {}};
  r.bytes = "GET " + u.target + " HTTP/1.1\r\nHost: " + u.host_field() +
            "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + r.key +
            "\r\nSec-WebSocket-Version: 13\r\n";
  http::header_block extra;
  if (!o.origin.empty()) extra.set("Origin", o.origin);
  if (!o.subprotocols.empty()) {
    std::string list;
    for (std::size_t i = 0; i < o.subprotocols.size(); ++i) {
      const std::string& p = o.subprotocols[i];
      const auto earlier = o.subprotocols.begin() + static_cast<std::ptrdiff_t>(i);
      if (!is_token(p) || std::find(o.subprotocols.begin(), earlier, p) != earlier) {
        throw std::invalid_argument("switchboard::ws::connect_options: subprotocols must be distinct tokens");
      }
      list += (list.empty() ? "" : ", ") + p;
    }
    extra.set("Sec-WebSocket-Protocol", list);
  }
  if (o.deflate.enabled) extra.set("Sec-WebSocket-Extensions", deflate_offer(o.deflate));
  for (const auto& [name, value] : o.headers) extra.add(name, value);
  r.bytes.append(extra.serialized()).append("\r\n");
  return r;
}

// Runs the opening handshake on a connected stream; returns the session (which then owns the stream) or an error.
// The stream stays the caller's until then, so that its connect timeout can close the socket under any step.
template <class Stream>
asio::awaitable<std::shared_ptr<session>> client_handshake(Stream& stream, const client_request& request,
                                                          const connect_options& o, std::error_code& ec) {
  const std::string& key = request.key;
  co_await asio::async_write(stream, asio::buffer(request.bytes), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return nullptr;

  http::response_parser parser;
  std::string buffer;
  char chunk[4096];
  std::size_t head_size = 0;
  for (;;) {
    head_size = parser.put(buffer, ec);
    if (ec) co_return nullptr;
    if (parser.header_done()) break;
    const std::size_t n = co_await stream.async_read_some(asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return nullptr;
    buffer.append(chunk, n);
  }
  const auto& h = parser.fields();
  // §4.1: the client MUST fail unless the status is 101, Upgrade is a case-insensitive match for "websocket" (the
  // whole value: not a list that holds it, nor two fields, whose values combine into one, RFC 9110 §5.3) and
  // Connection holds the token "Upgrade".
  if (parser.status_code() != 101 || h.count("upgrade") != 1 || !detail::iequals(h.get("upgrade"), "websocket") ||
      !h.has_token("connection", "upgrade")) {
    ec = error::handshake_refused;
    co_return nullptr;
  }
  // Sec-WebSocket-Accept and Sec-WebSocket-Protocol MUST NOT appear more than once in a response (§11.3.3,
  // §11.3.4): two fields combine into a value that is neither the accept value nor a subprotocol we offered.
  if (h.count("sec-websocket-accept") != 1) {
    ec = error::invalid_accept;
    co_return nullptr;
  }
  if ((ec = check_accept(key, h.get("sec-websocket-accept")))) co_return nullptr;
  if (h.count("sec-websocket-protocol") > 1) {
    ec = error::unexpected_subprotocol;
    co_return nullptr;
  }
  std::string subprotocol(h.get("sec-websocket-protocol"));
  if (!subprotocol.empty()) {
    std::vector<std::string_view> offered(o.subprotocols.begin(), o.subprotocols.end());
    if ((ec = check_subprotocol(offered, subprotocol))) co_return nullptr;
  }
  // Several Sec-WebSocket-Extensions lines are one list (§9.1, RFC 9110 §5.3): an extension on an earlier line must
  // be checked too.
  std::vector<extension> extensions;
  if (h.contains("sec-websocket-extensions") &&
      (ec = parse_extensions(detail::joined_field_values(h, "sec-websocket-extensions"), extensions))) {
    co_return nullptr;
  }
  std::optional<deflate_params> deflate;
  if ((ec = accept_deflate_response(extensions, o.deflate, deflate))) co_return nullptr;
  // The parser's fields are views into `buffer`: only now may the head go, leaving the first frames a server may
  // have sent right behind its 101.
  buffer.erase(0, head_size);
  co_return std::make_shared<session_impl<Stream>>(std::move(stream), std::move(buffer), o.session, std::move(subprotocol),
                                                   deflate, role::client);
}

inline asio::awaitable<std::shared_ptr<session>> connect(asio::any_io_executor ex, std::string url_text,
                                                         connect_options o, std::error_code& ec) {
  // The scheme in any case (RFC 3986 §3.1); no fragment (RFC 6455 §3: it MUST NOT be used in these URIs).
  const auto scheme_is = [&](std::string_view scheme) {
    return url_text.size() >= scheme.size() && iequals(std::string_view(url_text).substr(0, scheme.size()), scheme);
  };
  const bool secure = scheme_is("wss://");
  if ((!secure && !scheme_is("ws://")) || url_text.find('#') != std::string::npos) {
    ec = asio::error::invalid_argument;
    co_return nullptr;
  }
  const std::optional<http::url> u = http::parse_url((secure ? "https://" : "http://") + url_text.substr(secure ? 6 : 5));
  if (!u) {
    ec = asio::error::invalid_argument;
    co_return nullptr;
  }
  // Before any I/O: options that cannot be sent are the caller's error, not a connection's.
  client_request request;
  try {
    request = make_client_request(*u, o);
  } catch (const std::invalid_argument&) {
    ec = asio::error::invalid_argument;
    co_return nullptr;
  }
  // The lookup waits until the deadline at most; then the deadline closes the socket, which ends whatever step is
  // waiting: the connect, the TLS handshake or the upgrade (once the TLS stream has taken the socket, the socket to
  // close is the stream's). The timer's handler shares `deadline`, not this frame: its completion may already be
  // queued when the last step completes, and run after this coroutine has returned; it then finds no socket to close.
  const auto connect_deadline =
      switchboard::detail::saturating_add(std::chrono::steady_clock::now(), o.connect_timeout);
  // (Named, not a temporary in the co_await expression: GCC 12 destroys such a temporary twice.)
  const net::resolve_function resolve = o.resolve ? o.resolve : net::system_resolver(ex);
  const auto endpoints = co_await net::look_up(ex, resolve, u->host, u->port, connect_deadline, ec);
  if (ec) co_return nullptr;
  asio::ip::tcp::socket socket(ex);
  struct deadline_state {
    asio::ip::tcp::socket* live = nullptr;
    bool timed_out = false;
  };
  const auto deadline = std::make_shared<deadline_state>(deadline_state{&socket});
  struct forget_socket {  // on every way out, an exception's included: the socket goes with this frame
    deadline_state& state;
    ~forget_socket() { state.live = nullptr; }
  } on_exit{*deadline};
  asio::steady_timer timer(ex, connect_deadline);
  timer.async_wait([deadline](std::error_code wait_ec) {
    if (wait_ec || !deadline->live) return;
    deadline->timed_out = true;
    std::error_code ignored;
    deadline->live->close(ignored);
  });
  co_await asio::async_connect(socket, endpoints, asio::redirect_error(asio::use_awaitable, ec));
  std::shared_ptr<session> s;
  if (!ec) {
    std::error_code ignored;
    socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    if (secure) {
      auto tls = o.tls;
      if (!tls) {
        tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
        tls->set_default_verify_paths();
        tls->set_verify_mode(asio::ssl::verify_peer);
      }
      asio::ssl::stream<asio::ip::tcp::socket> stream(std::move(socket), *tls);
      deadline->live = &stream.next_layer();
      net::detail::set_server_name(stream.native_handle(), u->host);
      stream.set_verify_callback(asio::ssl::host_name_verification(u->host));
      co_await stream.async_handshake(asio::ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
      if (!ec) s = co_await client_handshake(stream, request, o, ec);
      deadline->live = nullptr;  // `stream` goes at the end of this block
    } else {
      s = co_await client_handshake(socket, request, o, ec);
    }
  }
  timer.cancel();
  if (deadline->timed_out) ec = switchboard::error::timeout;
  if (ec) s.reset();
  co_return s;
}

}  // namespace detail

/// Opens a WebSocket session to `url` (`ws://` or `wss://`). Completion signature
/// `void(std::error_code, std::shared_ptr<session>)`; call `start()` on the session once its handlers are set.
/// Errors: `asio::error::invalid_argument` (a URL that is not ws:// or wss:// or has a fragment, a header or Origin
/// that is not a valid field, subprotocols that are not distinct tokens, deflate options out of range: found before
/// any I/O), `switchboard::error::timeout`,
/// `ws::error::handshake_refused` (the server answered another status), `invalid_accept`, `unexpected_subprotocol`,
/// `unexpected_extension`, HTTP parse errors, the lookup's, socket and TLS errors.
/// Cancellation: per-operation cancellation (terminal) aborts the attempt, which completes with
/// `asio::error::operation_aborted`.
template <class Token>
auto async_connect(asio::any_io_executor executor, std::string url, connect_options options, Token&& token) {
  return asio::async_initiate<Token, void(std::error_code, std::shared_ptr<session>)>(
      [](auto handler, asio::any_io_executor ex, std::string url, connect_options options) {
        auto handler_ex = asio::get_associated_executor(handler, ex);
        auto slot = asio::get_associated_cancellation_slot(handler);
        auto op = [](asio::any_io_executor ex, std::string url, connect_options options)
            -> asio::awaitable<std::pair<std::error_code, std::shared_ptr<session>>> {
          std::error_code ec;
          auto s = co_await detail::connect(ex, std::move(url), std::move(options), ec);
          co_return std::make_pair(ec, std::move(s));
        };
        asio::co_spawn(ex, op(ex, std::move(url), std::move(options)),
                       asio::bind_cancellation_slot(slot, [h = std::move(handler), handler_ex](
                                                              std::exception_ptr e,
                                                              std::pair<std::error_code, std::shared_ptr<session>> r) mutable {
                         if (e) r = {switchboard::detail::exception_to_error(e), nullptr};
                         asio::dispatch(handler_ex, [h = std::move(h), r = std::move(r)]() mutable {
                           std::move(h)(r.first, std::move(r.second));
                         });
                       }));
      },
      token, std::move(executor), std::move(url), std::move(options));
}

}  // namespace switchboard::ws
