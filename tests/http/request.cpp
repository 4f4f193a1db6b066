// What a request offers its handler beyond the parsed header: query parameters as numbers and as durations. And
// the pieces around it: the URLs a client requests (url.hpp), the problem responses a handler throws.
#include <switchboard/http/request.hpp>
#include <switchboard/http/response.hpp>
#include <switchboard/http/url.hpp>

#include "support/catch.hpp"
#include "support/fake_request.hpp"

#include <chrono>
#include <cstdint>
#include <string>

using namespace std::chrono_literals;
using namespace switchboard;
using switchboard::test::fake_request;

namespace {
// The 400 detail for query parameter `name`, or "" when it parses.
template <class F>
std::string refusal(F&& parse) {
  try {
    parse();
  } catch (const http::problem_error& e) {
    CHECK(e.get().status == http::status::bad_request);
    return e.get().detail;
  }
  return "";
}
}  // namespace

TEST_CASE("request: query parameters as non-negative numbers", "[http][request]") {
  fake_request f("GET", "/poll?max=10&cursor=18446744073709551615&half=0.5&empty=&neg=-1&hex=0x10&nan=nan&big=1e400&inf=inf"
                 "&infinity=INFINITY");
  const http::request& req = f.req;
  CHECK(req.query_number<std::size_t>("max") == 10u);
  CHECK(req.query_number<std::uint64_t>("cursor") == 18446744073709551615ull);
  CHECK(req.query_number<double>("half") == 0.5);
  CHECK_FALSE(req.query_number<std::uint64_t>("absent"));
  const std::string bad = "' is not a valid non-negative number";
  for (const char* name : {"empty", "neg", "hex", "nan", "big", "inf", "infinity"}) {
    INFO(name);
    CHECK(refusal([&] { (void)req.query_number<double>(name); }) == "query parameter '" + std::string(name) + bad);
  }
  CHECK(refusal([&] { (void)req.query_number<std::uint8_t>("max"); }).empty());
  CHECK(refusal([&] { (void)req.query_number<std::uint8_t>("cursor"); }) == "query parameter 'cursor" + bad);
  CHECK(refusal([&] { (void)req.query_number<std::uint64_t>("half"); }) == "query parameter 'half" + bad);
}

TEST_CASE("request: query parameters as durations in seconds, capped before they are converted", "[http][request]") {
  fake_request f("POST", "/jobs?wait=1.5&long=1e308&inf=inf&zero=0&neg=-0.1");
  const http::request& req = f.req;
  CHECK(req.query_seconds("wait", 30s) == 1500ms);
  CHECK(req.query_seconds("wait", 1s) == 1s);
  // Past the range of the milliseconds' integer: capped, not converted (which would be undefined behaviour).
  CHECK(req.query_seconds("long", 30s) == 30s);
  // Even when the cap is the largest duration there is (a cast of it from double would be out of range).
  CHECK(req.query_seconds("long", std::chrono::milliseconds::max()) == std::chrono::milliseconds::max());
  CHECK(refusal([&] { (void)req.query_seconds("inf", 30s); }) == "query parameter 'inf' is not a valid non-negative number");
  CHECK(req.query_seconds("zero", 30s) == 0ms);
  CHECK_FALSE(req.query_seconds("absent", 30s));
  CHECK(refusal([&] { (void)req.query_seconds("neg", 30s); }) == "query parameter 'neg' is not a valid non-negative number");
}

TEST_CASE("url: a host that is not a URI host is refused", "[http][url]") {
  // The host goes into the Host field as it is: a CR LF in it would inject a field into the request.
  for (const char* text : {"http://a\r\nX-Injected=1/", "http://a\r\nX-Injected=1", "http://a b/", "http://a\tb/",
                           "http://a%2Fb/", "http://a\"b/", "http://host:80:80/", "http://[::1\r\nX=1]/",
                           "http://[::1 ]/", "http://[example.com]/", "http://[]/", "http://:80/"}) {
    INFO(text);
    CHECK_FALSE(http::parse_url(text));
  }
  const auto name = http::parse_url("http://my_host-1.example.com:8080/a?b");
  REQUIRE(name);
  CHECK(name->host == "my_host-1.example.com");
  CHECK(name->port == 8080);
  CHECK(name->host_field() == "my_host-1.example.com:8080");
  const auto v6 = http::parse_url("https://[::ffff:127.0.0.1]:8443");
  REQUIRE(v6);
  CHECK(v6->host == "::ffff:127.0.0.1");
  CHECK(v6->host_field() == "[::ffff:127.0.0.1]:8443");
  CHECK(http::parse_url("http://127.0.0.1/"));
}

// Scheme and host are case-insensitive (RFC 3986 §3.1, §3.2.2, §6.2.2.1): parse_url writes them in lower case, so
// that one origin has one spelling, and one connection pool in the client, however its URL is written.
TEST_CASE("url: scheme and host are lowercased", "[http][url]") {
  const auto name = http::parse_url("HTTP://My_Host-1.Example.COM:8080/Path?Q=A");
  REQUIRE(name);
  CHECK(name->scheme == "http");
  CHECK(name->host == "my_host-1.example.com");
  CHECK(name->target == "/Path?Q=A");  // path and query are case-sensitive: kept as written
  CHECK(name->origin() == "http://my_host-1.example.com:8080");
  CHECK(name->host_field() == "my_host-1.example.com:8080");
  const auto v6 = http::parse_url("HTTPS://[FE80::ABCD:127.0.0.1]/");
  REQUIRE(v6);
  CHECK(v6->scheme == "https");
  CHECK(v6->host == "fe80::abcd:127.0.0.1");
  CHECK(v6->origin() == "https://[fe80::abcd:127.0.0.1]:443");
  CHECK(v6->host_field() == "[fe80::abcd:127.0.0.1]");
}

TEST_CASE("request: a problem whose detail quotes bytes that are not UTF-8 still makes a response", "[http][request]") {
  // A handler's "no user %FF": the server builds this response in its exception handler, where a throw would end
  // the process.
  fake_request f("GET", "/users/%FF");
  std::string name;
  REQUIRE(http::percent_decode(f.req.path().substr(7), name));
  const http::problem_error e(http::status::not_found, "no user " + name);
  http::response r;
  REQUIRE_NOTHROW(r = http::response::problem(e.get()));
  CHECK(r.status() == http::status::not_found);
  CHECK(r.headers().get("content-type") == "application/problem+json");
  const auto body = nlohmann::json::parse(r.body());
  CHECK(body["detail"] == "no user \xEF\xBF\xBD");  // U+FFFD
  CHECK(body["status"] == 404);
}
