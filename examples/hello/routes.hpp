// The routes of the `hello` example: the TechEmpower-style endpoints every HTTP benchmark runs, and the
// WebSocket echo the WebSocket benchmarks run.
#pragma once

#include <switchboard/http/router.hpp>
#include <switchboard/ws/accept.hpp>

namespace examples::hello {

inline void add_routes(switchboard::http::router& routes) {
  using namespace switchboard::http;
  // GET /plaintext: "Hello, World!" as text/plain.
  routes.get("/plaintext", [](request&) { return response(status::ok, "Hello, World!", "text/plain"); });
  // GET /json: {"message":"Hello, World!"} as application/json.
  routes.get("/json", [](request&) { return response::json({{"message", "Hello, World!"}}); });
  // GET /echo: a WebSocket that sends every message back, text as text and binary as binary. Any origin may
  // connect (it is a public echo); keep-alive pings are off so that idle benchmark connections stay quiet.
  static const switchboard::ws::accept_options echo_options{
      .origin = {.allowed = {"*"}},
      .session = {.ping_interval = std::chrono::milliseconds(0)},
  };
  // GET /echo-deflate: the same with permessage-deflate (RFC 7692) accepted.
  static const switchboard::ws::accept_options deflate_options{
      .origin = {.allowed = {"*"}},
      .deflate = {.enabled = true},
      .session = {.ping_interval = std::chrono::milliseconds(0)},
  };
  // GET /echo-keepalive: the same with the default session options, keep-alive pings every 30 s (what they cost an
  // idle session is what memory.sh measures here).
  static const switchboard::ws::accept_options keepalive_options{.origin = {.allowed = {"*"}}};
  auto echo = [](const switchboard::ws::accept_options& options) {
    return [&options](request& req) {
      return switchboard::ws::accept(req, options, [](std::shared_ptr<switchboard::ws::session> s) {
        std::weak_ptr<switchboard::ws::session> weak = s;
        s->on_message([weak](switchboard::ws::message&& m) {
          auto self = weak.lock();
          if (!self) return;
          self->send(switchboard::ws::outgoing{switchboard::shared_bytes(std::move(m.data)), m.type});
        });
      });
    };
  };
  routes.get("/echo", echo(echo_options));
  routes.get("/echo-deflate", echo(deflate_options));
  routes.get("/echo-keepalive", echo(keepalive_options));
}

}  // namespace examples::hello
