// notifications: broker topics delivered by push (WebSocket, rooms, Server-Sent Events) and by polling (ETag/304),
// all numbered by the topic's sequence numbers so that a client can resume on any of them (docs/push.md).
//
//   build/release/bin/notifications --port 8080 [--retain 1000] [--stream-max-age 0]
//   curl -d 'hello' http://127.0.0.1:8080/topics/news            -> {"seq":1,"topic":"news"}
//   curl -N http://127.0.0.1:8080/topics/news/events?lastEventId=0
//   open http://127.0.0.1:8080/ in a browser
#include "common/example_options.hpp"
#include "notifications/routes.hpp"

#include <switchboard/core/runtime.hpp>
#include <switchboard/http/server.hpp>

int main(int argc, char** argv) {
  constexpr unsigned default_port = 8080;
  constexpr std::string_view help =
      " [--retain N] [--stream-max-age SECONDS]\n"
      "  --retain          messages kept per topic for resuming and polling (default 1000)\n"
      "  --stream-max-age  end SSE streams after this many seconds; clients resume (default 0: never)";
  const auto opts = examples::parse(argc, argv, default_port, {"--retain", "--stream-max-age"}, help);
  const long retain = opts.get_number("retain", 1000);
  const long max_age = opts.get_number("stream-max-age", 0);
  if (retain < 0 || max_age < 0) examples::usage(argv[0], help, default_port);
  switchboard::runtime rt({.threads = opts.threads});
  examples::notifications::service service(
      rt.executor(0), static_cast<std::size_t>(retain),
      {.sse = {.retry = std::chrono::milliseconds(1000)},
       .max_stream_age = std::chrono::seconds(max_age),
       .websocket = {.deflate = {.enabled = true}}});
  rt.add(service.hub);
  rt.add(service.polls);
  switchboard::http::router routes;
  examples::notifications::add_routes(routes, service);
  switchboard::http::server server(rt, routes, opts.server());
  try {
    server.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "notifications: cannot listen on %s:%u: %s\n", opts.bind.c_str(), opts.port, e.what());
    return 1;
  }
  examples::announce(server.url());
  const auto report = rt.run();
  examples::report_drain(report.drained, report.cut);
}
