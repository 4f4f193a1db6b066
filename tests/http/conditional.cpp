#include <switchboard/http/conditional.hpp>

#include "support/catch.hpp"
#include "support/fake_request.hpp"

#include <chrono>
#include <deque>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard::http;

namespace {

// A request for /state (`test::fake_request`).
struct conditional_request : switchboard::test::fake_request {
  conditional_request(std::string m, std::vector<std::pair<std::string, std::string>> lines)
      : fake_request(std::move(m), "/state", std::move(lines)) {}
};

const entity_tag v7 = version_etag(7, "e1-");
// Sun, 06 Nov 1994 08:49:37 GMT
const std::chrono::sys_seconds modified{784111777s};
const resource_validators state{.etag = &v7, .last_modified = modified};

}  // namespace

TEST_CASE("conditional: entity tags from a version", "[http][conditional]") {
  CHECK(version_etag(0).str() == R"("0")");
  CHECK(version_etag(18446744073709551615ull).str() == R"("18446744073709551615")");
  CHECK(version_etag(7, "e1-").str() == R"("e1-7")");
  CHECK(version_etag(7, "", true).str() == R"(W/"7")");
  CHECK(version_etag(7, "", true).is_weak());
  CHECK_THROWS_AS(version_etag(1, "a b"), std::invalid_argument);
  CHECK_THROWS_AS(version_etag(1, "\""), std::invalid_argument);
}

TEST_CASE("conditional: If-None-Match and If-Modified-Since give 304 with the validators", "[http][conditional]") {
  const conditional_options options{.cache_control = "no-cache", .retry_after = 2s};
  SECTION("no condition: proceed") {
    conditional_request r("GET", {});
    CHECK_FALSE(check_conditions(r.req, state, options));
  }
  SECTION("matching tag: 304 with ETag, Last-Modified, Cache-Control, Retry-After and no body") {
    conditional_request r("GET", {{"If-None-Match", R"("e1-7")"}});
    auto early = check_conditions(r.req, state, options);
    REQUIRE(early);
    CHECK(early->status() == status::not_modified);
    CHECK(early->body().empty());
    CHECK(early->headers().get("etag") == R"("e1-7")");
    CHECK(early->headers().get("last-modified") == "Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK(early->headers().get("cache-control") == "no-cache");
    CHECK(early->headers().get("retry-after") == "2");
  }
  SECTION("weak comparison: W/ tag matches, on a second field line too") {
    conditional_request r("GET", {{"If-None-Match", R"("other")"}, {"if-none-match", R"(W/"e1-7")"}});
    auto early = check_conditions(r.req, state);
    REQUIRE(early);
    CHECK(early->status() == status::not_modified);
  }
  SECTION("older version: proceed") {
    conditional_request r("GET", {{"If-None-Match", R"("e1-6")"}});
    CHECK_FALSE(check_conditions(r.req, state));
  }
  SECTION("a tag of another epoch does not match") {
    conditional_request r("GET", {{"If-None-Match", R"("e0-7")"}});
    CHECK_FALSE(check_conditions(r.req, state));
  }
  SECTION("If-Modified-Since not before the modification: 304; before: proceed") {
    conditional_request same("GET", {{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}});
    auto early = check_conditions(same.req, state);
    REQUIRE(early);
    CHECK(early->status() == status::not_modified);
    conditional_request older("GET", {{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:36 GMT"}});
    CHECK_FALSE(check_conditions(older.req, state));
  }
  SECTION("If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)") {
    conditional_request r("GET", {{"If-None-Match", R"("e1-6")"}, {"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}});
    CHECK_FALSE(check_conditions(r.req, state));
  }
  SECTION("If-None-Match on a POST: 412") {
    conditional_request r("POST", {{"If-None-Match", "*"}});
    auto early = check_conditions(r.req, state);
    REQUIRE(early);
    CHECK(early->status() == status::precondition_failed);
  }
}

TEST_CASE("conditional: If-Match gives 412 with the current ETag", "[http][conditional]") {
  SECTION("current version: proceed") {
    conditional_request r("PUT", {{"If-Match", R"("e1-7")"}});
    CHECK_FALSE(check_conditions(r.req, state));
  }
  SECTION("stale version: 412 problem") {
    conditional_request r("PUT", {{"If-Match", R"("e1-6")"}});
    auto early = check_conditions(r.req, state);
    REQUIRE(early);
    CHECK(early->status() == status::precondition_failed);
    CHECK(early->headers().get("etag") == R"("e1-7")");
    CHECK(early->headers().get("content-type") == "application/problem+json");
  }
  SECTION("a weak tag never matches If-Match") {
    const entity_tag weak = version_etag(7, "e1-", true);
    conditional_request r("PUT", {{"If-Match", R"(W/"e1-7")"}});
    auto early = check_conditions(r.req, {.etag = &weak});
    REQUIRE(early);
    CHECK(early->status() == status::precondition_failed);
  }
}

TEST_CASE("conditional: validators, caching fields and Retry-After on full responses", "[http][conditional]") {
  response r = response::text("state");
  set_validators(r, state, {.cache_control = "max-age=0, must-revalidate"});
  CHECK(r.headers().get("etag") == R"("e1-7")");
  CHECK(r.headers().get("last-modified") == "Sun, 06 Nov 1994 08:49:37 GMT");
  CHECK(r.headers().get("cache-control") == "max-age=0, must-revalidate");
  CHECK_FALSE(r.headers().contains("retry-after"));
  response none = response::text("x");
  set_validators(none, {}, {.cache_control = ""});
  CHECK_FALSE(none.headers().contains("etag"));
  CHECK_FALSE(none.headers().contains("cache-control"));
  response busy(status::service_unavailable);
  set_retry_after(busy, 30s);
  CHECK(busy.headers().get("retry-after") == "30");
  set_retry_after(busy, -5s);
  CHECK(busy.headers().get("retry-after") == "0");
  set_retry_after(busy, modified);
  CHECK(busy.headers().get("retry-after") == "Sun, 06 Nov 1994 08:49:37 GMT");
}
