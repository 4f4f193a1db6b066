#include <switchboard/sse/encoder.hpp>

#include "parse_all.hpp"
#include "support/catch.hpp"

#include <chrono>
#include <string>
#include <vector>

using namespace std::string_literals;
using namespace std::string_view_literals;
using namespace std::chrono_literals;
using sse_test::msg;
using sse_test::outcome;
using sse_test::parse_every_split;
using switchboard::sse::encode;
using switchboard::sse::encode_comment;
using switchboard::sse::encode_shared;
using switchboard::sse::error;
using switchboard::sse::event;

namespace {

std::string encoded(const event& ev) {
  std::string out;
  const std::error_code ec = encode(ev, out);
  REQUIRE(!ec);
  return out;
}

struct valid_case {
  const char* name;
  event ev = {};
  std::string wire = {};  // what the encoder must write
  outcome expected = {};  // what a client must see when it reads `wire` from the start of a stream
};

const std::vector<valid_case>& valid_cases() {
  static const std::vector<valid_case> cases = {
      {"data only", {.data = "hello"}, "data: hello\n\n", {{msg("message", "hello")}}},
      {"every field", {.data = "x", .type = "update", .id = "42", .retry = 3000ms},
       "event: update\nid: 42\nretry: 3000\ndata: x\n\n", {{msg("update", "x", "42")}, {}, "42", 3000ms}},
      {"LF splits data lines", {.data = "a\nb"}, "data: a\ndata: b\n\n", {{msg("message", "a\nb")}}},
      {"CRLF splits data lines and arrives as LF", {.data = "a\r\nb"}, "data: a\ndata: b\n\n",
       {{msg("message", "a\nb")}}},
      {"CR splits data lines and arrives as LF", {.data = "a\rb"}, "data: a\ndata: b\n\n", {{msg("message", "a\nb")}}},
      {"LF CR is two line breaks", {.data = "a\n\rb"}, "data: a\ndata: \ndata: b\n\n", {{msg("message", "a\n\nb")}}},
      {"a trailing line break is kept", {.data = "a\n"}, "data: a\ndata: \n\n", {{msg("message", "a\n")}}},
      {"only line breaks", {.data = "\n\r\n"}, "data: \ndata: \ndata: \n\n", {{msg("message", "\n\n")}}},
      {"empty data is dispatched", {.data = ""}, "data: \n\n", {{msg("message", "")}}},
      {"leading spaces survive", {.data = " x", .type = " t", .id = " 1"}, "event:  t\nid:  1\ndata:  x\n\n",
       {{msg(" t", " x", " 1")}, {}, " 1"}},
      {"colons in values", {.data = "a: b", .type = "c:d"}, "event: c:d\ndata: a: b\n\n", {{msg("c:d", "a: b")}}},
      {"NUL is allowed in data and type", {.data = "a\0b"sv, .type = "t\0"sv}, "event: t\0\ndata: a\0b\n\n"s,
       {{msg("t\0"s, "a\0b"s)}}},
      {"an id alone sets the last event id without an event", {.id = "7"}, "id: 7\n\n", {{}, {}, "7"}},
      {"an empty id resets the last event id", {.id = ""}, "id: \n\n", {}},
      {"a retry alone", {.retry = 5s}, "retry: 5000\n\n", {{}, {}, "", 5000ms}},
      {"a zero retry", {.retry = 0ms}, "retry: 0\n\n", {{}, {}, "", 0ms}},
      {"nothing at all", {}, "\n", {}},
      {"UTF-8 everywhere", {.data = "\xC3\xA9t\xC3\xA9", .type = "\xE2\x82\xAC", .id = "\xF0\x9F\x98\x80"},
       "event: \xE2\x82\xAC\nid: \xF0\x9F\x98\x80\ndata: \xC3\xA9t\xC3\xA9\n\n",
       {{msg("\xE2\x82\xAC", "\xC3\xA9t\xC3\xA9", "\xF0\x9F\x98\x80")}, {}, "\xF0\x9F\x98\x80"}},
  };
  return cases;
}

}  // namespace

TEST_CASE("sse encoder: conformance table, read back by the parser", "[sse][encoder]") {
  for (const valid_case& c : valid_cases()) {
    DYNAMIC_SECTION(c.name) {
      const std::string wire = encoded(c.ev);
      CHECK(wire == c.wire);
      CHECK(parse_every_split(wire) == c.expected);
    }
  }
}

TEST_CASE("sse encoder: events a client would read differently are refused", "[sse][encoder]") {
  struct invalid_case {
    const char* name;
    event ev = {};
    error expected = {};
  };
  const std::vector<invalid_case> cases = {
      {"LF in the type", {.data = "x", .type = "a\nb"}, error::invalid_event_type},
      {"CR in the type", {.data = "x", .type = "a\r"}, error::invalid_event_type},
      {"LF in the id", {.data = "x", .id = "1\n2"}, error::invalid_id},
      {"CR in the id", {.id = "\r"}, error::invalid_id},
      {"NUL in the id", {.id = "1\0"sv}, error::invalid_id},
      {"a negative retry", {.retry = -1ms}, error::invalid_retry},
      {"a type without data", {.type = "t", .id = "1"}, error::type_without_data},
      {"invalid UTF-8 in the data", {.data = "\xFF"}, error::invalid_utf8},
      {"truncated UTF-8 at the end of the data", {.data = "ok\xE2\x82"}, error::invalid_utf8},
      {"a surrogate in the type", {.data = "x", .type = "\xED\xA0\x80"}, error::invalid_utf8},
      {"an overlong form in the id", {.id = "\xC0\xAF"}, error::invalid_utf8},
  };
  for (const invalid_case& c : cases) {
    DYNAMIC_SECTION(c.name) {
      std::string out = "before";
      CHECK(encode(c.ev, out) == c.expected);
      CHECK(out == "before");  // nothing written
      std::error_code ec;
      CHECK(encode_shared(c.ev, ec).empty());
      CHECK(ec == c.expected);
    }
  }
}

TEST_CASE("sse encoder: appends to what is already there", "[sse][encoder]") {
  std::string out;
  for (int i = 0; i < 100; ++i) {
    const std::string id = std::to_string(i);
    REQUIRE(!encode(event{.data = "payload", .id = id}, out));
  }
  std::vector<switchboard::sse::message> expected;
  for (int i = 0; i < 100; ++i) expected.push_back(msg("message", "payload", std::to_string(i)));
  switchboard::sse::parser p;
  std::vector<switchboard::sse::message> got;
  REQUIRE(!p.feed(out, [&](const switchboard::sse::message& m) { got.push_back(m); }));
  CHECK(got == expected);
}

TEST_CASE("sse encoder: encode_shared gives the same bytes once", "[sse][encoder]") {
  const event ev{.data = "a\nb", .type = "t", .id = "9"};
  std::error_code ec = error::invalid_id;  // cleared on success
  const switchboard::shared_bytes shared = encode_shared(ev, ec);
  REQUIRE_FALSE(shared.empty());
  CHECK(!ec);
  CHECK(shared.view() == encoded(ev));
  const switchboard::shared_bytes copy = shared;  // queued to a second subscriber: no new bytes
  CHECK(copy.data() == shared.data());
  CHECK(shared.use_count() == 2);
}

TEST_CASE("sse encoder: comments", "[sse][encoder]") {
  SECTION("the shortest heartbeat") {
    std::string out;
    encode_comment("", out);
    CHECK(out == ":\n");
    // An empty view with no storage at all: nothing may be read through its null data() (UBSan: memchr).
    out.clear();
    encode_comment(std::string_view{}, out);
    REQUIRE(!encode(event{.data = std::string_view{}}, out));
    CHECK(out == ":\ndata: \n\n");
  }
  SECTION("text is written after the colon as given") {
    std::string out;
    encode_comment(" keep-alive", out);
    CHECK(out == ": keep-alive\n");
  }
  SECTION("every line of the text is its own comment line") {
    std::string out;
    encode_comment("a\nb\r\nc\rdata: injected", out);
    CHECK(out == ":a\n:b\n:c\n:data: injected\n");
  }
  SECTION("comments between events change nothing a client sees") {
    std::string out;
    encode_comment("hello\ndata: not an event\n", out);
    REQUIRE(!encode(event{.data = "x", .id = "1"}, out));
    encode_comment("", out);
    REQUIRE(!encode(event{.data = "y"}, out));
    encode_comment("\r\n\r\n", out);
    CHECK(parse_every_split(out) == outcome{{msg("message", "x", "1"), msg("message", "y", "1")}, {}, "1"});
  }
}

TEST_CASE("sse encoder: a comment keeps the stream well-formed UTF-8", "[sse][encoder]") {
  std::string out;
  encode_comment("a\xFF" "b\xE2\x82", out);
  CHECK(out == ":a\xEF\xBF\xBD" "b\xEF\xBF\xBD\n");
  CHECK(parse_every_split(out, {.utf8 = switchboard::sse::utf8_policy::reject}) == outcome{});
}
