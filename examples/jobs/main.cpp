// jobs: asynchronous request-reply with a CPU-bound job. POST /jobs {"kind": "primes", "limit": N} counts the
// primes below N on a worker pool; see README.md for the curl session (submit, progress by long poll and SSE,
// result, cancel, and the synchronous ?wait form). It also answers GET /plaintext and GET /json like examples/hello,
// for benchmarks/load/jobs.sh, which measures them while the workers are busy.
#include "common/example_options.hpp"
#include "hello/routes.hpp"
#include "jobs/routes.hpp"

#include <switchboard/core/runtime.hpp>
#include <switchboard/http/server.hpp>
#include <switchboard/ws/session_group.hpp>

#include <memory>

int main(int argc, char** argv) {
  constexpr std::string_view extra_help =
      " [--workers N] [--queue N] [--max-jobs-per-client N] [--retention S]\n"
      "  --workers              job worker threads (default: one per hardware thread)\n"
      "  --queue                jobs waiting for a worker at most, past which submissions get 503 (default 64)\n"
      "  --max-jobs-per-client  unfinished jobs one client address may have, past which its submissions get 429\n"
      "                         (default 16)\n"
      "  --retention            seconds a finished job stays readable (default 600; 0: forgotten at the next request)";
  const auto opts =
      examples::parse(argc, argv, 8083, {"--workers", "--queue", "--max-jobs-per-client", "--retention"}, extra_help);
  const long workers = opts.get_number("workers", 0, 1024), queue = opts.get_number("queue", 64),
             per_client = opts.get_number("max-jobs-per-client", 16), retention = opts.get_number("retention", 600);
  if (workers < 0 || queue < 1 || per_client < 1 || retention < 0) examples::usage(argv[0], extra_help, 8083);
  switchboard::runtime rt({.threads = opts.threads});
  switchboard::http::router routes;
  auto echo_sessions = std::make_shared<switchboard::ws::session_group>();
  rt.add(*echo_sessions);  // a drain closes the echo's WebSockets with 1001
  examples::hello::add_routes(routes, echo_sessions);
  examples::jobs::service jobs(rt, routes, {.workers = static_cast<std::size_t>(workers),
                                            .max_queued = static_cast<std::size_t>(queue),
                                            .max_jobs_per_client = static_cast<std::size_t>(per_client),
                                            .retention = std::chrono::seconds(retention)});
  switchboard::http::server server(rt, routes, opts.server());
  try {
    server.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "jobs: cannot listen on %s:%u: %s\n", opts.bind.c_str(), opts.port, e.what());
    return 1;
  }
  examples::announce(server.url());
  const auto report = rt.run();
  examples::report_drain(report.drained, report.cut);
}
