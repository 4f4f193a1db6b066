// rest_crud: users as a JSON resource in memory, with validation errors as problem details (RFC 9457).
//
//   build/release/bin/rest_crud --port 8081 [--max-users N]
//   curl -i -X POST -d '{"name":"Ada","email":"ada@example.com"}' http://127.0.0.1:8081/users
//   curl -i http://127.0.0.1:8081/users/1
#include "common/example_options.hpp"
#include "rest_crud/routes.hpp"

#include <switchboard/core/runtime.hpp>
#include <switchboard/http/server.hpp>

int main(int argc, char** argv) {
  constexpr std::string_view extra_help =
      " [--max-users N]\n  --max-users  users the store holds at most (default 10000; then 507)";
  const auto opts = examples::parse(argc, argv, 8081, {"--max-users"}, extra_help);
  const long max_users = opts.get_number("max-users", 10'000);
  if (max_users < 1) examples::usage(argv[0], extra_help, 8081);
  switchboard::runtime rt({.threads = opts.threads});
  switchboard::http::router routes;
  examples::rest_crud::user_store store(static_cast<std::size_t>(max_users));
  examples::rest_crud::add_routes(routes, store);
  switchboard::http::server server(rt, routes, opts.server());
  try {
    server.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rest_crud: cannot listen on %s:%u: %s\n", opts.bind.c_str(), opts.port, e.what());
    return 1;
  }
  examples::announce(server.url());
  const auto report = rt.run();
  examples::report_drain(report.drained, report.cut);
}
