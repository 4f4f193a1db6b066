// peer_ws_broadcast: switchboard's broadcast server of benchmarks/load/ws.sh.
//
//   GET /subscribe  upgrades to a WebSocket that receives every published message
//   GET /publish    upgrades to a WebSocket whose every message is sent to all subscribers
//
// What a user of the library writes for a broadcast: the subscribers join a `ws::session_group`, and each
// published message is encoded once as a server frame (`ws::prepared_frame`) whose bytes are queued to every
// subscriber (`session_group::broadcast`), not copied or re-encoded per subscriber. Both endpoints accept any
// Origin and send no keep-alive pings, like hello's /echo, so that idle benchmark connections stay quiet. The
// group drains with the server on SIGTERM (close 1001).
//
//   build/release/bin/peer_ws_broadcast --port 8080 --threads 1
//
// Prints "listening on URL" like the examples (examples/common/example_options.hpp).
#include "common/example_options.hpp"

#include <switchboard/core/runtime.hpp>
#include <switchboard/core/shared_bytes.hpp>
#include <switchboard/http/router.hpp>
#include <switchboard/http/server.hpp>
#include <switchboard/ws/accept.hpp>
#include <switchboard/ws/frame_writer.hpp>
#include <switchboard/ws/session_group.hpp>

#include <chrono>
#include <cstdio>
#include <memory>

int main(int argc, char** argv) {
  namespace ws = switchboard::ws;
  using switchboard::http::request;
  const auto opts = examples::parse(argc, argv, 8080);
  switchboard::runtime rt({.threads = opts.threads});
  auto subscribers = std::make_shared<ws::session_group>();
  rt.add(*subscribers);

  const ws::accept_options subscribe_options{
      .origin = {.allowed = {"*"}},
      .session = {.ping_interval = std::chrono::milliseconds(0)},
      .group = subscribers,
  };
  const ws::accept_options publish_options{
      .origin = {.allowed = {"*"}},
      .session = {.ping_interval = std::chrono::milliseconds(0)},
  };
  switchboard::http::router routes;
  routes.get("/subscribe", [&](request& req) { return ws::accept(req, subscribe_options, nullptr); });
  routes.get("/publish", [&](request& req) {
    return ws::accept(req, publish_options, [subscribers](std::shared_ptr<ws::session> s) {
      s->on_message([subscribers](ws::message&& m) {
        const ws::prepared_frame frame = ws::prepared_frame::make(m.type, m.data);
        subscribers->broadcast(switchboard::shared_bytes::copy(frame.bytes()));
      });
    });
  });

  switchboard::http::server server(rt, routes, opts.server());
  try {
    server.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "peer_ws_broadcast: cannot listen on %s:%u: %s\n", opts.bind.c_str(), opts.port, e.what());
    return 1;
  }
  examples::announce(server.url());
  const auto report = rt.run();
  rt.remove(*subscribers);
  examples::report_drain(report.drained, report.cut);
}
