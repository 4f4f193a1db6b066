#include <switchboard/http/preconditions.hpp>

#include "support/catch.hpp"

#include <chrono>
#include <string>

using namespace std::chrono_literals;
using switchboard::http::conditional_headers;
using switchboard::http::entity_tag;
using switchboard::http::evaluate_if_match;
using switchboard::http::evaluate_if_modified_since;
using switchboard::http::evaluate_if_none_match;
using switchboard::http::evaluate_if_unmodified_since;
using switchboard::http::evaluate_preconditions;
using switchboard::http::precondition_result;
using switchboard::http::resource_validators;

namespace {

const entity_tag strong_tag = entity_tag::strong("xyzzy");
const entity_tag weak_tag = entity_tag::weak("xyzzy");
// Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT
const std::chrono::sys_seconds modified{784111777s};
constexpr const char* before = "Sun, 06 Nov 1994 08:49:36 GMT";
constexpr const char* same = "Sun, 06 Nov 1994 08:49:37 GMT";
constexpr const char* after = "Sun, 06 Nov 1994 08:49:38 GMT";

const resource_validators strong_resource{.etag = &strong_tag, .last_modified = modified};
const resource_validators weak_resource{.etag = &weak_tag, .last_modified = modified};
const resource_validators untagged_resource{.last_modified = modified};
const resource_validators missing_resource{.exists = false};

}  // namespace

TEST_CASE("preconditions: If-Match uses the strong comparison (RFC 9110 13.1.1)", "[http][preconditions]") {
  CHECK(evaluate_if_match(R"("xyzzy")", strong_resource));
  CHECK(evaluate_if_match(R"("r2d2xxxx", "xyzzy", "c3piozzzz")", strong_resource));
  CHECK(!evaluate_if_match(R"("r2d2xxxx", "c3piozzzz")", strong_resource));
  CHECK(!evaluate_if_match(R"(W/"xyzzy")", strong_resource));  // a weak tag never matches strongly
  CHECK(!evaluate_if_match(R"("xyzzy")", weak_resource));
  CHECK(!evaluate_if_match(R"("xyzzy")", untagged_resource));
  SECTION("* tests that a current representation exists") {
    CHECK(evaluate_if_match("*", strong_resource));
    CHECK(evaluate_if_match("*", untagged_resource));
    CHECK(evaluate_if_match(" * ", weak_resource));
    CHECK(!evaluate_if_match("*", missing_resource));
  }
  SECTION("a value that is not a list of entity tags matches nothing") {
    CHECK(!evaluate_if_match("xyzzy", strong_resource));
    CHECK(!evaluate_if_match(R"(*, "xyzzy")", strong_resource));
    CHECK(!evaluate_if_match(R"("xyzzy" garbage)", strong_resource));
    CHECK(!evaluate_if_match("", strong_resource));
  }
}

TEST_CASE("preconditions: If-None-Match uses the weak comparison (RFC 9110 13.1.2)", "[http][preconditions]") {
  CHECK(!evaluate_if_none_match(R"("xyzzy")", strong_resource));
  CHECK(!evaluate_if_none_match(R"(W/"xyzzy")", strong_resource));
  CHECK(!evaluate_if_none_match(R"("xyzzy")", weak_resource));
  CHECK(!evaluate_if_none_match(R"(W/"xyzzy", W/"r2d2xxxx", W/"c3piozzzz")", weak_resource));
  CHECK(evaluate_if_none_match(R"("r2d2xxxx", "c3piozzzz")", strong_resource));
  CHECK(evaluate_if_none_match(R"("xyzzy")", untagged_resource));
  SECTION("* tests that no current representation exists") {
    CHECK(!evaluate_if_none_match("*", strong_resource));
    CHECK(evaluate_if_none_match("*", missing_resource));
  }
  SECTION("a value that is not a list of entity tags matches nothing, so the condition holds") {
    CHECK(evaluate_if_none_match("xyzzy", strong_resource));
    CHECK(evaluate_if_none_match(R"("xyzzy", bad)", strong_resource));
  }
}

TEST_CASE("preconditions: dates (RFC 9110 13.1.3, 13.1.4)", "[http][preconditions]") {
  CHECK(evaluate_if_modified_since(before, strong_resource) == true);
  CHECK(evaluate_if_modified_since(same, strong_resource) == false);
  CHECK(evaluate_if_modified_since(after, strong_resource) == false);
  CHECK(evaluate_if_unmodified_since(before, strong_resource) == false);
  CHECK(evaluate_if_unmodified_since(same, strong_resource) == true);
  CHECK(evaluate_if_unmodified_since(after, strong_resource) == true);
  SECTION("the obsolete formats are dates too") {
    CHECK(evaluate_if_modified_since("Sun Nov  6 08:49:37 1994", strong_resource) == false);
    CHECK(evaluate_if_modified_since("Sunday, 06-Nov-94 08:49:36 GMT", strong_resource) == true);
  }
  SECTION("ignored: not one valid date, or no modification date") {
    CHECK(evaluate_if_modified_since("yesterday", strong_resource) == std::nullopt);
    CHECK(evaluate_if_modified_since(std::string(same) + ", " + same, strong_resource) == std::nullopt);
    CHECK(evaluate_if_unmodified_since("Sun, 06 Nov 1994", strong_resource) == std::nullopt);
    CHECK(evaluate_if_modified_since(same, resource_validators{.etag = &strong_tag}) == std::nullopt);
    CHECK(evaluate_if_unmodified_since(same, resource_validators{}) == std::nullopt);
  }
}

TEST_CASE("preconditions: precedence (RFC 9110 13.2.2)", "[http][preconditions]") {
  using r = precondition_result;
  auto eval = [](std::string_view method, const resource_validators& v, const conditional_headers& h) {
    return evaluate_preconditions(method, v, h);
  };

  SECTION("no conditions") { CHECK(eval("GET", strong_resource, {}) == r::proceed); }

  SECTION("step 1: If-Match") {
    CHECK(eval("PUT", strong_resource, {.if_match = R"("xyzzy")"}) == r::proceed);
    CHECK(eval("PUT", strong_resource, {.if_match = R"("other")"}) == r::precondition_failed);
    CHECK(eval("GET", strong_resource, {.if_match = R"("other")"}) == r::precondition_failed);
    CHECK(eval("PUT", missing_resource, {.if_match = "*"}) == r::precondition_failed);
  }
  SECTION("step 2: If-Unmodified-Since only without If-Match") {
    CHECK(eval("DELETE", strong_resource, {.if_unmodified_since = before}) == r::precondition_failed);
    CHECK(eval("DELETE", strong_resource, {.if_unmodified_since = same}) == r::proceed);
    // If-Match passes, so the failing If-Unmodified-Since is never looked at.
    CHECK(eval("DELETE", strong_resource, {.if_match = R"("xyzzy")", .if_unmodified_since = before}) == r::proceed);
    // An invalid date is ignored.
    CHECK(eval("DELETE", strong_resource, {.if_unmodified_since = "soon"}) == r::proceed);
  }
  SECTION("step 3: If-None-Match gives 304 for GET and HEAD, 412 otherwise") {
    CHECK(eval("GET", strong_resource, {.if_none_match = R"(W/"xyzzy")"}) == r::not_modified);
    CHECK(eval("HEAD", weak_resource, {.if_none_match = R"("xyzzy")"}) == r::not_modified);
    CHECK(eval("POST", strong_resource, {.if_none_match = R"("xyzzy")"}) == r::precondition_failed);
    CHECK(eval("GET", strong_resource, {.if_none_match = R"("other")"}) == r::proceed);
    SECTION("If-None-Match: * on PUT creates only what does not exist yet") {
      CHECK(eval("PUT", missing_resource, {.if_none_match = "*"}) == r::proceed);
      CHECK(eval("PUT", strong_resource, {.if_none_match = "*"}) == r::precondition_failed);
    }
    SECTION("If-Match is evaluated first") {
      CHECK(eval("GET", strong_resource, {.if_match = R"("other")", .if_none_match = R"("xyzzy")"}) ==
            r::precondition_failed);
      CHECK(eval("GET", strong_resource, {.if_match = R"("xyzzy")", .if_none_match = R"("xyzzy")"}) ==
            r::not_modified);
    }
  }
  SECTION("step 4: If-Modified-Since for GET and HEAD, and only without If-None-Match") {
    CHECK(eval("GET", strong_resource, {.if_modified_since = same}) == r::not_modified);
    CHECK(eval("HEAD", strong_resource, {.if_modified_since = after}) == r::not_modified);
    CHECK(eval("GET", strong_resource, {.if_modified_since = before}) == r::proceed);
    CHECK(eval("POST", strong_resource, {.if_modified_since = same}) == r::proceed);
    CHECK(eval("get", strong_resource, {.if_modified_since = same}) == r::proceed);  // methods are case-sensitive
    CHECK(eval("GET", strong_resource, {.if_modified_since = "garbage"}) == r::proceed);
    CHECK(eval("GET", untagged_resource, {.if_modified_since = same}) == r::not_modified);
    // If-None-Match that does not match wins over an If-Modified-Since that would give 304.
    CHECK(eval("GET", strong_resource, {.if_none_match = R"("other")", .if_modified_since = same}) == r::proceed);
    // If-None-Match that matches gives 304 even with an If-Modified-Since that would not.
    CHECK(eval("GET", strong_resource, {.if_none_match = R"("xyzzy")", .if_modified_since = before}) ==
          r::not_modified);
  }
  SECTION("methods that select no representation ignore preconditions (RFC 9110 13.2.1)") {
    for (const char* method : {"CONNECT", "OPTIONS", "TRACE"}) {
      CHECK(eval(method, strong_resource, {.if_match = R"("other")"}) == r::proceed);
      CHECK(eval(method, strong_resource, {.if_none_match = "*"}) == r::proceed);
    }
  }
}
