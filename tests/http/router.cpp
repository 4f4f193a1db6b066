#include <switchboard/http/router.hpp>

#include "support/catch.hpp"
#include "support/fake_request.hpp"

#include <string>

using namespace switchboard::http;
using switchboard::test::fake_request;

namespace {

response named(std::string name) { return response::text(std::move(name)); }

// The name of the handler that the router picks (each test handler answers with its name).
std::string pick(const router& r, method m, const std::string& target, route_match::kind* kind = nullptr,
                 std::string* allow = nullptr, fake_request* keep = nullptr) {
  fake_request local(std::string(to_string(m)), target);
  fake_request& f = keep != nullptr ? *keep : local;
  const route_match match = r.match(f.req);
  if (kind != nullptr) *kind = match.result;
  if (allow != nullptr) *allow = match.allow;
  if (match.result != route_match::kind::found) return "";
  std::string name;
  struct sink final : detail::response_sink {
    std::string* out;
    void deliver(std::uint64_t, response resp) override { *out = resp.body(); }
    void deliver_exception(std::uint64_t, std::exception_ptr) override { *out = "exception"; }
    void release_request(std::uint64_t) override {}
    asio::any_io_executor sink_executor() const override { return {}; }
  };
  auto s = std::make_shared<sink>();
  s->out = &name;
  match.matched->handler()(f.req, responder(s, 1));
  return name;
}

}  // namespace

TEST_CASE("router: literals, parameters, catch-all and precedence", "[http][router]") {
  router r;
  r.get("/", [](request&) { return named("root"); });
  r.get("/users", [](request&) { return named("users"); });
  r.get("/users/me", [](request&) { return named("me"); });
  r.get("/users/{id:int}", [](request&) { return named("user-int"); });
  r.get("/users/{name}", [](request&) { return named("user-name"); });
  r.get("/users/{id:int}/posts/{post:uint}", [](request&) { return named("post"); });
  r.get("/files/{path...}", [](request&) { return named("file"); });
  r.get("/files/readme", [](request&) { return named("readme"); });

  CHECK(pick(r, method::get, "/") == "root");
  CHECK(pick(r, method::get, "/users") == "users");
  CHECK(pick(r, method::get, "/users/me") == "me");
  CHECK(pick(r, method::get, "/users/42") == "user-int");
  CHECK(pick(r, method::get, "/users/-7") == "user-int");
  CHECK(pick(r, method::get, "/users/bob") == "user-name");
  CHECK(pick(r, method::get, "/users/99999999999999999999") == "user-name");  // does not fit in 64 bits
  CHECK(pick(r, method::get, "/users/42/posts/7") == "post");
  CHECK(pick(r, method::get, "/users/42/posts/-7").empty());
  CHECK(pick(r, method::get, "/files/readme") == "readme");
  CHECK(pick(r, method::get, "/files/a/b/c.txt") == "file");
  CHECK(pick(r, method::get, "/files").empty());
  CHECK(pick(r, method::get, "/users/").empty());  // an empty segment matches no parameter
  CHECK(pick(r, method::get, "/nope").empty());
  CHECK(pick(r, method::get, "/users?x=1") == "users");

  SECTION("parameters are percent-decoded, per segment") {
    fake_request f("GET", "/users/a%2Fb%20c");
    CHECK(pick(r, method::get, f.raw_target, nullptr, nullptr, &f) == "user-name");
    CHECK(f.req.param("name") == "a/b c");
    fake_request g("GET", "/users/42/posts/7");
    pick(r, method::get, g.raw_target, nullptr, nullptr, &g);
    CHECK(g.req.param_as<int>("id") == 42);
    CHECK(g.req.param_as<unsigned>("post") == 7u);
    CHECK(g.req.param("missing").empty());
    CHECK_THROWS_AS(g.req.param_as<int>("missing"), problem_error);
    fake_request h("GET", "/files/docs/a%20b.txt");
    pick(r, method::get, h.raw_target, nullptr, nullptr, &h);
    CHECK(h.req.param("path") == "docs/a b.txt");
  }
  SECTION("literal segments match decoded paths") {
    CHECK(pick(r, method::get, "/us%65rs/me") == "me");
  }
  SECTION("malformed escapes, encoded NUL and dot segments are 400") {
    route_match::kind kind;
    pick(r, method::get, "/users/%zz", &kind);
    CHECK(kind == route_match::kind::bad_path);
    pick(r, method::get, "/users/a%00b", &kind);
    CHECK(kind == route_match::kind::bad_path);
    pick(r, method::get, "/files/../etc/passwd", &kind);
    CHECK(kind == route_match::kind::bad_path);
    pick(r, method::get, "/files/%2e%2e/etc/passwd", &kind);
    CHECK(kind == route_match::kind::bad_path);
  }
}

TEST_CASE("router: 404, 405 with Allow, HEAD from GET, OPTIONS", "[http][router]") {
  router r;
  r.get("/items", [](request&) { return named("list"); });
  r.post("/items", [](request&) { return named("create"); });
  r.del("/items/{id}", [](request&) { return named("delete"); });
  r.options("/custom", [](request&) { return named("custom-options"); });
  r.routes().add("PROPFIND", "/dav", make_handler([](request&) { return named("propfind"); }));

  route_match::kind kind;
  std::string allow;
  CHECK(pick(r, method::head, "/items") == "list");
  pick(r, method::put, "/items", &kind, &allow);
  CHECK(kind == route_match::kind::method_not_allowed);
  CHECK(allow == "GET, HEAD, POST, OPTIONS");
  pick(r, method::options, "/items", &kind, &allow);
  CHECK(kind == route_match::kind::options);
  CHECK(allow == "GET, HEAD, POST, OPTIONS");
  pick(r, method::get, "/items/3", &kind, &allow);
  CHECK(kind == route_match::kind::method_not_allowed);
  CHECK(allow == "DELETE, OPTIONS");
  CHECK(pick(r, method::options, "/custom") == "custom-options");
  pick(r, method::get, "/missing", &kind);
  CHECK(kind == route_match::kind::not_found);
  fake_request dav("PROPFIND", "/dav");
  CHECK(pick(r, method::other, "/dav", nullptr, nullptr, &dav) == "propfind");
  // OPTIONS * asks about the server (RFC 9110 §9.3.7): the methods that some route has, not a fixed list.
  pick(r, method::options, "*", &kind, &allow);
  CHECK(kind == route_match::kind::options);
  CHECK(allow == "GET, HEAD, POST, DELETE, OPTIONS, PROPFIND");
  router empty;
  pick(empty, method::options, "*", &kind, &allow);
  CHECK(kind == route_match::kind::options);
  CHECK(allow == "OPTIONS");
}

TEST_CASE("router: an absolute-form target is routed by the path after its scheme and authority", "[http][router]") {
  router r;
  r.get("/admin", [](request&) { return named("admin"); });
  CHECK(pick(r, method::get, "http://example.com/admin?x=1") == "admin");
  CHECK(pick(r, method::get, "HTTPS://example.com:8443/admin") == "admin");
  // RFC 3986 §3: the path of "a:b?x=http://h/admin" is "b"; a "://" in its query starts no authority.
  route_match::kind kind;
  for (const char* target : {"a:b?x=http://h/admin", "a:b/http://h/admin", "urn:x#http://h/admin"}) {
    INFO(target);
    CHECK(pick(r, method::get, target, &kind).empty());
    CHECK(kind == route_match::kind::not_found);
  }
}

TEST_CASE("router: configuration errors throw", "[http][router]") {
  router r;
  r.get("/a/{id}", [](request&) { return named("a"); });
  CHECK_THROWS_AS(r.get("/a/{id}", [](request&) { return named("again"); }), std::invalid_argument);
  CHECK_THROWS_AS(r.get("/a/{other}/x", [](request&) { return named("x"); }), std::invalid_argument);
  CHECK_THROWS_AS(r.get("no-slash", [](request&) { return named("x"); }), std::invalid_argument);
  CHECK_THROWS_AS(r.get("/b/{rest...}/more", [](request&) { return named("x"); }), std::invalid_argument);
  CHECK_THROWS_AS(r.get("/c/{id:float}", [](request&) { return named("x"); }), std::invalid_argument);
  CHECK_THROWS_AS(r.get("/c/{rest:int...}", [](request&) { return named("x"); }), std::invalid_argument);
  CHECK_THROWS_AS(r.get("/d/x{id}", [](request&) { return named("x"); }), std::invalid_argument);
  CHECK_THROWS_AS(r.routes().add("BAD METHOD", "/e", make_handler([](request&) { return named("x"); })),
                  std::invalid_argument);
  // In a group too, a pattern or prefix without its '/' would be glued to the prefix ("/apiusers", "/apiv1").
  auto api = r.group("/api");
  CHECK_THROWS_AS(api.get("users", [](request&) { return named("x"); }), std::invalid_argument);
  CHECK_THROWS_AS(api.group("v1"), std::invalid_argument);
  api.get("", [](request&) { return named("api"); });  // the group's own path
  CHECK(pick(r, method::get, "/api") == "api");
  CHECK(pick(r, method::get, "/apiusers").empty());
}

TEST_CASE("router: groups and middleware run in order", "[http][router]") {
  router r;
  std::vector<std::string> trace;
  r.before([&](request&) -> std::optional<response> {
    trace.push_back("router-before");
    return std::nullopt;
  });
  r.after([&](request&, response& res) {
    trace.push_back("router-after");
    res.set("X-Router", "1");
  });
  auto api = r.group("/api");
  api.before([&](request& req) -> std::optional<response> {
    trace.push_back("api-before");
    if (req.header("authorization").empty() && req.path() == "/api/secret") {
      return response::problem(status::unauthorized, "no token");
    }
    return std::nullopt;
  });
  auto v1 = api.group("/v1");
  v1.after([&](request&, response&) { trace.push_back("v1-after"); });
  v1.get("/ping", [&](request&) {
      trace.push_back("handler");
      return named("pong");
    })
      .before([&](request&) -> std::optional<response> {
        trace.push_back("route-before");
        return std::nullopt;
      })
      .after([&](request&, response&) { trace.push_back("route-after"); });
  api.get("/secret", [&](request&) { return named("secret"); });

  fake_request f("GET", "/api/v1/ping");
  const route_match m = r.match(f.req);
  REQUIRE(m.result == route_match::kind::found);
  REQUIRE_FALSE(m.matched->run_before(f.req));
  response res = named("pong");
  trace.push_back("handler");
  m.matched->run_after(f.req, res);
  CHECK(trace == std::vector<std::string>{"router-before", "api-before", "route-before", "handler", "route-after",
                                          "v1-after", "router-after"});
  CHECK(res.headers().get("X-Router") == "1");

  fake_request s("GET", "/api/secret");
  const route_match sm = r.match(s.req);
  REQUIRE(sm.result == route_match::kind::found);
  auto early = sm.matched->run_before(s.req);
  REQUIRE(early);
  CHECK(early->status() == status::unauthorized);
}

TEST_CASE("router: has_after sees the route's own, its groups' and the router's after-middleware", "[http][router]") {
  router r;
  route& plain = r.get("/plain", [](request&) { return named("plain"); });
  auto api = r.group("/api");
  route& in_group = api.get("/x", [](request&) { return named("x"); });
  route& own = r.get("/own", [](request&) { return named("own"); }).after([](request&, response&) {});
  CHECK_FALSE(plain.has_after());
  CHECK_FALSE(in_group.has_after());
  CHECK(own.has_after());
  api.after([](request&, response&) {});
  CHECK(in_group.has_after());
  CHECK_FALSE(plain.has_after());
  r.after([](request&, response&) {});
  CHECK(plain.has_after());
}

TEST_CASE("router: ten thousand routes", "[http][router]") {
  // Not a timing test: with 10,000 routes the match still visits one node per path segment, which we check by
  // matching every route and a miss; the benchmark measures the time.
  router r;
  for (int i = 0; i < 10000; ++i) {
    r.get("/r" + std::to_string(i) + "/{id:int}", [](request&) { return named("x"); });
  }
  CHECK(pick(r, method::get, "/r9999/5") == "x");
  CHECK(pick(r, method::get, "/r10000/5").empty());
}
