// hello: the TechEmpower-style endpoints GET /plaintext and GET /json, the server every HTTP benchmark runs.
//
//   build/release/bin/hello --port 8080 --threads 1
//   curl http://127.0.0.1:8080/plaintext
#include "common/example_options.hpp"
#include "hello/routes.hpp"

#include <switchboard/core/runtime.hpp>
#include <switchboard/http/server.hpp>
#include <switchboard/ws/session_group.hpp>

#include <memory>

int main(int argc, char** argv) {
  const auto opts = examples::parse(argc, argv, 8080);
  switchboard::runtime rt({.threads = opts.threads});
  switchboard::http::router routes;
  auto echo_sessions = std::make_shared<switchboard::ws::session_group>();
  rt.add(*echo_sessions);  // a drain closes the echo's WebSockets with 1001
  examples::hello::add_routes(routes, echo_sessions);
  switchboard::http::server server(rt, routes,
                                   opts.server());
  try {
    server.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hello: cannot listen on %s:%u: %s\n", opts.bind.c_str(), opts.port, e.what());
    return 1;
  }
  examples::announce(server.url());
  const auto report = rt.run();
  examples::report_drain(report.drained, report.cut);
}
