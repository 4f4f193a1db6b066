// The routes of the `hello` example: the TechEmpower-style endpoints every HTTP benchmark runs, and the
// WebSocket echo the WebSocket benchmarks run.
#pragma once

#include <switchboard/http/router.hpp>
#include <switchboard/ws/accept.hpp>
#include <switchboard/ws/session_group.hpp>

#include <chrono>
#include <memory>

namespace examples::hello {

// `echo_sessions`, when given, is the group the echo's sessions join: register it with the runtime
// (`rt.add(*echo_sessions)`) so that a drain closes them with 1001 (going away) and counts them.
inline void add_routes(switchboard::http::router& routes,
                       std::shared_ptr<switchboard::ws::session_group> echo_sessions = nullptr) {
  using namespace switchboard::http;
  // GET /plaintext: "Hello, World!" as text/plain.
  routes.get("/plaintext", [](request&) { return response(status::ok, "Hello, World!", "text/plain"); });
  // GET /json: {"message":"Hello, World!"} as application/json.
  routes.get("/json", [](request&) { return response::json({{"message", "Hello, World!"}}); });
  // GET /echo: a WebSocket that sends every message back, text as text and binary as binary. Any origin may
  // connect (it is a public echo); keep-alive pings are off so that idle benchmark connections stay quiet.
  const switchboard::ws::accept_options echo_options{
      .origin = {.allowed = {"*"}},
      .session = {.ping_interval = std::chrono::milliseconds(0)},
      .group = echo_sessions,
  };
  // GET /echo-deflate: the same with permessage-deflate (RFC 7692) accepted.
  switchboard::ws::accept_options deflate_options = echo_options;
  deflate_options.deflate.enabled = true;
  // GET /echo-keepalive: the same with the default session options, keep-alive pings every 30 s (what they cost an
  // idle session is what memory.sh measures here).
  switchboard::ws::accept_options keepalive_options = echo_options;
  keepalive_options.session = {};
  auto echo = [](switchboard::ws::accept_options options) {
    return [options = std::move(options)](request& req) {
      return switchboard::ws::accept(req, options, [](std::shared_ptr<switchboard::ws::session> s) {
        std::weak_ptr<switchboard::ws::session> weak = s;
        s->on_message([weak](switchboard::ws::message&& m) {
          auto self = weak.lock();
          if (!self) return;
          self->send(switchboard::ws::outgoing{.bytes = switchboard::shared_bytes(std::move(m.data)), .type = m.type});
        });
      });
    };
  };
  routes.get("/echo", echo(echo_options));
  routes.get("/echo-deflate", echo(deflate_options));
  routes.get("/echo-keepalive", echo(keepalive_options));
}

}  // namespace examples::hello
