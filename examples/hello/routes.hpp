// The routes of the `hello` example: the TechEmpower-style endpoints every HTTP benchmark runs.
#pragma once

#include <switchboard/http/router.hpp>

namespace examples::hello {

inline void add_routes(switchboard::http::router& routes) {
  using namespace switchboard::http;
  // GET /plaintext: "Hello, World!" as text/plain.
  routes.get("/plaintext", [](request&) {
    response r(status::ok, "Hello, World!", "text/plain");
    return r;
  });
  // GET /json: {"message":"Hello, World!"} as application/json.
  routes.get("/json", [](request&) { return response::json({{"message", "Hello, World!"}}); });
}

}  // namespace examples::hello
