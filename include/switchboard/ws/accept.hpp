// switchboard/ws/accept.hpp
//
// The server side of the opening handshake (RFC 6455 §4.2) on an HTTP route:
//
//   ws::accept_options ws_options{.subprotocols = {"chat.v1"}};
//   routes.get("/echo", [&](http::request& req) {
//     return ws::accept(req, ws_options, [](std::shared_ptr<ws::session> s) {
//       s->on_message([s](ws::message&& m) { m.is_text() ? s->send_text(m.data) : s->send_binary(m.data); });
//     });
//   });
//
// A handshake that fails gets an HTTP error, not a dropped connection: 426 (not a WebSocket request, or a version
// other than 13, with `Sec-WebSocket-Version: 13`), 400 (bad key or header), 403 (an Origin that is not allowed:
// same-origin by default, so that a page on another site cannot open a socket with the user's cookies).
#pragma once

#include <switchboard/http/request.hpp>
#include <switchboard/http/response.hpp>
#include <switchboard/ws/deflate.hpp>
#include <switchboard/ws/extensions.hpp>
#include <switchboard/ws/handshake.hpp>
#include <switchboard/ws/session.hpp>
#include <switchboard/ws/session_group.hpp>

#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace switchboard::ws {

struct accept_options {
  /// Subprotocols this endpoint speaks, in order of preference; the first one the client offers is chosen. A
  /// client that offers only others gets none (and may close).
  std::vector<std::string> subprotocols;
  /// Which pages may open a socket (the browser's Origin header). Default: same origin only; missing Origin
  /// (non-browser clients) allowed.
  origin_options origin;
  /// permessage-deflate (RFC 7692); off by default.
  deflate_options deflate;
  /// Limits, queue, keep-alive and timeouts of each session.
  session_options session;
  /// Extra fields for the 101 response (e.g. Set-Cookie).
  std::vector<std::pair<std::string, std::string>> extra_headers;
  /// When set, sessions join this group (for broadcasting and for the graceful drain).
  std::shared_ptr<session_group> group;
};

/// Called with each new session, on its executor, before it starts reading: set `on_message`/`on_close` there.
using open_handler = std::function<void(std::shared_ptr<session>)>;

namespace detail {

inline http::response refuse(http::status s, std::string detail) { return http::response::problem(s, std::move(detail)); }

}  // namespace detail

/// Answers a WebSocket opening handshake: a 101 response that starts a session once written, or an HTTP error.
inline http::response accept(http::request& req, const accept_options& options, open_handler on_open) {
  using http::status;
  const auto& h = req.headers();
  if (req.method() != http::method::get || req.version_minor() != 1 || !h.has_token("upgrade", "websocket") ||
      !h.has_token("connection", "upgrade")) {
    http::response r = detail::refuse(status{426}, "This resource speaks WebSocket: send an Upgrade: websocket request.");
    r.set("Upgrade", "websocket");
    r.set("Connection", "Upgrade");
    return r;
  }
  // §4.2.1 item 6: one Sec-WebSocket-Version of value 13. A second field, which a client MUST NOT send (§11.3.5),
  // makes the value "13, 13" (RFC 9110 §5.3): not a version we speak either.
  if (h.count("sec-websocket-version") != 1 || h.get("sec-websocket-version") != "13") {
    http::response r = detail::refuse(status{426}, "Only WebSocket version 13 (RFC 6455) is supported.");
    r.set("Sec-WebSocket-Version", "13");
    r.set("Upgrade", "websocket");  // a 426 must name the protocol to upgrade to (RFC 9110 §15.5.22)
    r.set("Connection", "Upgrade");
    return r;
  }
  if (h.count("sec-websocket-key") != 1) return detail::refuse(status::bad_request, "Missing Sec-WebSocket-Key.");
  const std::string_view key = h.get("sec-websocket-key");
  if (check_client_key(key)) return detail::refuse(status::bad_request, "Invalid Sec-WebSocket-Key.");
  std::optional<std::string_view> origin;
  if (h.contains("origin")) {
    if (h.count("origin") != 1) return detail::refuse(status::forbidden, "Several Origin headers.");
    origin = h.get("origin");
  }
  if (!origin_allowed(origin, h.get("host"), req.is_secure(), options.origin)) {
    return detail::refuse(status::forbidden, "This origin may not open a WebSocket here.");
  }

  // Sec-WebSocket-Protocol and Sec-WebSocket-Extensions may come on several lines, which are then one list: "logically
  // the same as a single ... header field that contains all values" (§11.3.4, §11.3.2). Parse them joined, or the
  // lines before the last would be lost.
  std::string chosen_protocol;
  std::vector<std::string_view> offered;  // views into protocol_list
  const std::string protocol_list = detail::joined_field_values(h, "sec-websocket-protocol");
  if (h.contains("sec-websocket-protocol") && parse_subprotocols(protocol_list, offered)) {
    return detail::refuse(status::bad_request, "Malformed Sec-WebSocket-Protocol.");
  }
  if (!offered.empty() && !options.subprotocols.empty()) {
    std::vector<std::string_view> supported(options.subprotocols.begin(), options.subprotocols.end());
    if (auto pick = select_subprotocol(offered, supported)) chosen_protocol = std::string(*pick);
  }

  std::optional<deflate_params> deflate;
  std::string extensions_answer;
  if (options.deflate.enabled) {
    std::vector<extension> offers;
    if (h.contains("sec-websocket-extensions") &&
        parse_extensions(detail::joined_field_values(h, "sec-websocket-extensions"), offers)) {
      return detail::refuse(status::bad_request, "Malformed Sec-WebSocket-Extensions.");
    }
    if (auto agreed = negotiate_deflate(offers, options.deflate)) {
      deflate = agreed->params;
      extensions_answer = agreed->response;
    }
  }

  http::response r = http::response::upgrade(
      "websocket", [options, deflate, chosen_protocol, on_open = std::move(on_open)](http::upgraded_connection&& c) {
        auto start = [&](auto&& stream) {
          using stream_type = std::decay_t<decltype(stream)>;
          auto s = std::make_shared<detail::session_impl<stream_type>>(std::move(stream), std::move(c.leftover),
                                                                        options.session, chosen_protocol, deflate,
                                                                        role::server, std::move(c.admission));
          if (options.group) {
            // The hook that takes the session out of its group is set before `on_open`, which may end the session
            // at once (a refused client), and before the application hears that it closed.
            options.group->add(s);
            std::weak_ptr<session_group> weak_group = options.group;
            s->before_on_close([weak_group, raw = s.get()](const close_info&) {
              if (auto g = weak_group.lock()) g->remove(raw);
            });
          }
          if (on_open) on_open(s);
          s->start();
        };
        std::visit(start, std::move(c.stream));
      });
  r.set("Sec-WebSocket-Accept", accept_value(key));
  if (!chosen_protocol.empty()) r.set("Sec-WebSocket-Protocol", chosen_protocol);
  if (!extensions_answer.empty()) r.set("Sec-WebSocket-Extensions", extensions_answer);
  for (const auto& [name, value] : options.extra_headers) r.headers().add(name, value);
  return r;
}

}  // namespace switchboard::ws
