// What a request offers its handler beyond the parsed header: query parameters as numbers and as durations.
#include <switchboard/http/request.hpp>

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
