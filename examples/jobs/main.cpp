// jobs: asynchronous request-reply with a CPU-bound job. POST /jobs {"kind": "primes", "limit": N} counts the
// primes below N on a worker pool; see README.md for the curl session (submit, progress by long poll and SSE,
// result, cancel, and the synchronous ?wait form).
#include "common/example_options.hpp"
#include "jobs/routes.hpp"

#include <switchboard/core/runtime.hpp>
#include <switchboard/http/server.hpp>

int main(int argc, char** argv) {
  const auto opts = examples::parse(argc, argv, 8083, {"--workers"}, " [--workers N]\n  --workers  job worker threads (default: one per hardware thread)");
  switchboard::runtime rt({.threads = opts.threads});
  switchboard::http::router routes;
  examples::jobs::service jobs(rt, routes, static_cast<std::size_t>(opts.get_number("workers", 0)));
  switchboard::http::server server(rt, routes, {.bind = opts.bind, .port = static_cast<std::uint16_t>(opts.port)});
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
