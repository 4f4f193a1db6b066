// demo: the flagship example that `make demo` starts. It wires the patterns together on one server:
// the hello endpoints (/plaintext, /json, /echo), the users resource of rest_crud (/users), and the topics of
// notifications (push and polling, /topics/..., its page at /notifications, long polling at /topics/{topic}/poll),
// and the jobs of examples/jobs (POST /jobs: asynchronous request-reply).
#include "common/example_options.hpp"
#include "hello/routes.hpp"
#include "jobs/routes.hpp"
#include "notifications/routes.hpp"
#include "rest_crud/routes.hpp"

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
  examples::rest_crud::user_store users;
  examples::rest_crud::add_routes(routes, users);
  examples::notifications::service notifications(rt.executor(0), 1000, {.sse = {.retry = std::chrono::milliseconds(1000)}, .websocket = {.deflate = {.enabled = true}}});
  rt.add(notifications.hub);
  rt.add(notifications.polls);
  examples::notifications::add_routes(routes, notifications, "/notifications");
  examples::jobs::service jobs(rt, routes);  // asynchronous request-reply: counting primes
  routes.get("/", [](switchboard::http::request&) {
    return switchboard::http::response::text(
        "switchboard demo\n"
        "  GET  /plaintext           Hello, World!\n"
        "  GET  /json                {\"message\":\"Hello, World!\"}\n"
        "  GET  /users               the users resource (POST, GET/PUT/PATCH/DELETE /users/{id})\n"
        "  POST /topics/{topic}      publish; GET .../ws, .../events (SSE), .../latest (ETag/304), .../poll; /ws rooms\n"
        "  GET  /notifications       a page showing each transport receiving the same events\n"
        "  POST /jobs                a job ({\"kind\":\"primes\",\"limit\":N}): 202 + Location; GET/DELETE /jobs/{id}\n"
        "  GET  /metrics             Prometheus metrics of the server, the topics' broker, the push hub and the jobs\n");
  });
  switchboard::metrics_registry metrics;
  routes.get("/metrics", switchboard::http::metrics_handler(metrics));
  switchboard::http::server server(rt, routes, opts.server());
  server.export_metrics(metrics, "demo");
  const auto broker_metrics = notifications.broker.export_metrics(metrics);  // the topics' broker
  const auto push_metrics = notifications.hub.export_metrics(metrics);
  const auto jobs_metrics = jobs.export_metrics(metrics);
  try {
    server.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "demo: cannot listen on %s:%u: %s\n", opts.bind.c_str(), opts.port, e.what());
    return 1;
  }
  examples::announce(server.url());
  const auto report = rt.run();
  examples::report_drain(report.drained, report.cut);
}
