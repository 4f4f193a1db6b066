#include <switchboard/sse/parser.hpp>

#include "parse_all.hpp"
#include "support/catch.hpp"

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::string_literals;
using namespace std::chrono_literals;
using sse_test::msg;
using sse_test::outcome;
using sse_test::parse_every_split;
using switchboard::sse::error;
using switchboard::sse::parser;
using switchboard::sse::parser_options;
using switchboard::sse::utf8_policy;

namespace {

struct stream_case {
  const char* name;
  std::string stream;
  outcome expected = {};
  parser_options options = {};
};

// Conformance table: the examples of WHATWG HTML §9.2.6 first, then each rule of the interpretation algorithm.
// Every stream is parsed whole, cut at every offset, and byte by byte (parse_every_split).
const std::vector<stream_case>& stream_cases() {
  static const std::vector<stream_case> cases = {
      // §9.2.6 examples.
      {"spec: three messages, one of two lines",
       "data: This is the first message.\n\n"
       "data: This is the second message, it\ndata: has two lines.\n\n"
       "data: This is the third message.\n\n",
       {{msg("message", "This is the first message."),
         msg("message", "This is the second message, it\nhas two lines."),
         msg("message", "This is the third message.")}}},
      {"spec: event types",
       "event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
       {{msg("add", "73857293"), msg("remove", "2153"), msg("add", "113411")}}},
      {"spec: stock ticker", "data: YHOO\ndata: +2\ndata: 10\n\n", {{msg("message", "YHOO\n+2\n10")}}},
      {"spec: comment, ids, a bare id field resets the id, one space removed",
       ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
       {{msg("message", "first event", "1"), msg("message", "second event", ""), msg("message", " third event", "")}}},
      {"spec: bare data fields; an unterminated block is not dispatched", "data\n\ndata\ndata\n\ndata:",
       {{msg("message", ""), msg("message", "\n")}}},
      {"spec: the space after the colon is optional", "data:test\n\ndata: test\n\n",
       {{msg("message", "test"), msg("message", "test")}}},

      // Line endings (§9.2.5 end-of-line = CRLF / CR / LF).
      {"CRLF, CR and LF line endings", "data: a\r\ndata: b\r\rdata: c\r\n\r\ndata: d\n\r\n",
       {{msg("message", "a\nb"), msg("message", "c"), msg("message", "d")}}},
      {"LF CR is two line endings", "data: a\n\rdata: b\n\n", {{msg("message", "a"), msg("message", "b")}}},
      {"CR CR LF is two line endings", "data: a\r\r\n", {{msg("message", "a")}}},

      // The byte order mark.
      {"a leading BOM is skipped", "\xEF\xBB\xBF" "data: x\n\n", {{msg("message", "x")}}},
      {"only one BOM is skipped", "\xEF\xBB\xBF\xEF\xBB\xBF" "data: x\n\n", {}},
      {"a BOM after the start is part of the line", "\n\xEF\xBB\xBF" "data: x\n\n", {}},
      {"a partial BOM is part of the line", "\xEF\xBB" "data: x\n\n", {}},

      // Fields.
      {"comments are ignored anywhere", ":heartbeat\ndata: x\n:another\n\n:\n", {{msg("message", "x")}}},
      {"unknown fields are ignored; names are case-sensitive", "foo: bar\nData: y\ndata: x\nDATA: z\n\n",
       {{msg("message", "x")}}},
      {"the value is everything after the first colon", "data: a:b: c\n\n", {{msg("message", "a:b: c")}}},
      {"only one leading space is removed", "data:  two\n\n", {{msg("message", " two")}}},
      {"trailing spaces are kept", "data: x  \n\n", {{msg("message", "x  ")}}},
      {"a field name with a trailing space is another field", "data : x\n\n", {}},
      {"NUL passes through data and type", "event: a\0b\ndata: c\0d\n\n"s, {{msg("a\0b"s, "c\0d"s)}}},
      {"an empty line without data dispatches nothing", "\n\n\n", {}},

      // Event type.
      {"the type is reset after each event", "event: a\ndata: 1\n\ndata: 2\n\n",
       {{msg("a", "1"), msg("message", "2")}}},
      {"the last event field wins", "event: a\nevent: b\ndata: 1\n\n", {{msg("b", "1")}}},
      {"an empty type is message", "event:\ndata: 1\n\n", {{msg("message", "1")}}},
      {"a type without data is dropped with its block", "event: a\n\ndata: 2\n\n", {{msg("message", "2")}}},

      // Last event ID.
      {"the id persists across events", "id: 7\ndata: a\n\ndata: b\n\n",
       {{msg("message", "a", "7"), msg("message", "b", "7")}, {}, "7"}},
      {"an id with NUL is ignored", "id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n"s,
       {{msg("message", "a", "1"), msg("message", "b", "1")}, {}, "1"}},
      {"a block with only an id sets the last event id", "id: 9\n\n", {{}, {}, "9"}},
      {"an id not followed by an empty line is not committed", "id: 9\ndata: x\n", {{}, {}, ""}},
      {"an empty id resets the last event id", "id: 1\n\nid\n\n", {{}, {}, ""}},
      {"the id may follow the data in the block", "data: x\nid: 3\n\n", {{msg("message", "x", "3")}, {}, "3"}},

      // Reconnection time.
      {"retry sets the reconnection time without a dispatch", "retry: 3000\n", {{}, {}, "", 3000ms}},
      {"the last valid retry wins", "retry: 10\nretry: 20\nretry: x\n\n", {{}, {}, "", 20ms}},
      {"retry must be all digits", "retry: 1.5\nretry: -1\nretry: 12a\nretry:  100\nretry: +5\n\n", {}},
      {"an empty retry is ignored", "retry\nretry:\n\n", {}},
      {"a retry too large to represent is ignored", "retry: 99999999999999999999\n\n", {}},
      {"leading zeros are digits", "retry: 007\n", {{}, {}, "", 7ms}},

      // UTF-8, replaced as the WHATWG decoder does.
      {"well-formed UTF-8 is kept", "data: \xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\n\n",
       {{msg("message", "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80")}}},
      {"an invalid byte becomes U+FFFD", "data: a\xFF" "b\n\n", {{msg("message", "a\xEF\xBF\xBD" "b")}}},
      {"a truncated sequence becomes one U+FFFD", "data: \xE2\x82\n\n", {{msg("message", "\xEF\xBF\xBD")}}},
      {"a surrogate becomes one U+FFFD per byte", "data: \xED\xA0\x80\n\n",
       {{msg("message", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD")}}},
      {"an overlong form becomes U+FFFD per byte", "data: \xC0\xAF\n\n",
       {{msg("message", "\xEF\xBF\xBD\xEF\xBF\xBD")}}},
      {"invalid UTF-8 in a field name makes an unknown field", "dat\xE1: x\ndata: y\n\n", {{msg("message", "y")}}},
      {"reject policy: invalid UTF-8 is an error after the events before it",
       "data: ok\n\ndata: \xFF\n\ndata: never\n\n",
       {{msg("message", "ok")}, error::invalid_utf8},
       {.utf8 = utf8_policy::reject}},
      {"reject policy: a BOM is not an error", "\xEF\xBB\xBF" "data: x\n\n", {{msg("message", "x")}}, {.utf8 = utf8_policy::reject}},

      // Limits.
      {"a line of exactly max_line_bytes", "data: 12\n\n", {{msg("message", "12")}}, {.max_line_bytes = 8}},
      {"a line over max_line_bytes", "data: 1\n\ndata: 123\n\n", {{msg("message", "1")}, error::line_too_long},
       {.max_line_bytes = 8}},
      {"an unterminated line over max_line_bytes", "data: 123", {{}, error::line_too_long}, {.max_line_bytes = 8}},
      {"comments count against max_line_bytes", ":123456789\n", {{}, error::line_too_long}, {.max_line_bytes = 8}},
      {"event data of exactly max_event_bytes", "data: 12\ndata: 34\n\n", {{msg("message", "12\n34")}},
       {.max_event_bytes = 5}},
      {"event data over max_event_bytes", "data: 12\ndata: 345\n\n", {{}, error::event_too_large},
       {.max_event_bytes = 5}},
      {"the limit is per event", "data: 12345\n\ndata: 12345\n\n", {{msg("message", "12345"), msg("message", "12345")}},
       {.max_event_bytes = 5}},
  };
  return cases;
}

}  // namespace

TEST_CASE("sse parser: conformance table, whole and split at every byte", "[sse][parser]") {
  for (const stream_case& c : stream_cases()) {
    DYNAMIC_SECTION(c.name) {
      CHECK(parse_every_split(c.stream, c.options) == c.expected);
    }
  }
}

TEST_CASE("sse parser: errors stop the parser until restart", "[sse][parser]") {
  parser p(parser_options{.max_line_bytes = 8});
  std::vector<switchboard::sse::message> got;
  auto collect = [&](const switchboard::sse::message& m) { got.push_back(m); };

  CHECK(p.feed("retry:9\nid: 1\n\n", collect) == std::error_code{});
  CHECK(p.feed("data: too long\n\n", collect) == error::line_too_long);
  SECTION("the error is sticky") {
    CHECK(p.feed("\n", collect) == error::line_too_long);
    CHECK(got.empty());
  }
  SECTION("restart clears it and keeps the last event id and retry") {
    CHECK(p.feed("", collect) == error::line_too_long);
    p.restart();
    CHECK(p.last_event_id() == "1");
    CHECK(p.retry() == 9ms);
    CHECK(p.feed("data: x\n\n", collect) == std::error_code{});
    CHECK(got == std::vector{msg("message", "x", "1")});
  }
}

TEST_CASE("sse parser: restart begins a new stream from the same source", "[sse][parser]") {
  parser p;
  std::vector<switchboard::sse::message> got;
  auto collect = [&](const switchboard::sse::message& m) { got.push_back(m); };

  REQUIRE(!p.feed("retry: 500\nid: 4\ndata: a\n\nid: 5\nevent: t\ndata: cut", collect));
  REQUIRE(got == std::vector{msg("message", "a", "4")});
  p.restart();  // the connection dropped in the middle of the second event
  CHECK(p.last_event_id() == "4");  // id 5 was never dispatched, so it is not the stream's last id
  CHECK(p.retry() == 500ms);
  SECTION("the cut event and its id are forgotten") {
    REQUIRE(!p.feed("data: b\n\n", collect));
    CHECK(got.back() == msg("message", "b", "4"));
  }
  SECTION("a BOM is skipped again at the start of the new stream") {
    REQUIRE(!p.feed("\xEF\xBB\xBF" "data: c\n\n", collect));
    CHECK(got.back() == msg("message", "c", "4"));
  }
  SECTION("a CR that ended the old stream does not swallow an LF of the new one") {
    parser q;
    REQUIRE(!q.feed("data: x\r", collect));
    q.restart();
    // The LF is the first (empty) line of the new stream, not the tail of a CRLF: so the BOM after it is not at
    // the start of the stream, and its line is an unknown field.
    REQUIRE(!q.feed("\n\xEF\xBB\xBF" "data: y\n\n", collect));
    CHECK(got.size() == 1);
  }
}

TEST_CASE("sse parser: one message object is reused between events", "[sse][parser]") {
  // The handler sees a const reference valid for the call only; copying it keeps the values.
  parser p;
  std::vector<std::string> data;
  const void* first = nullptr;
  bool same_object = true;
  REQUIRE(!p.feed("data: one\n\ndata: two\n\n", [&](const switchboard::sse::message& m) {
    if (first == nullptr) first = &m;
    same_object = same_object && first == &m;
    data.push_back(m.data);
  }));
  CHECK(same_object);
  CHECK(data == std::vector<std::string>{"one", "two"});
}

TEST_CASE("sse parser: limits are validated", "[sse][parser]") {
  CHECK_THROWS_AS(parser(parser_options{.max_line_bytes = 0}), std::invalid_argument);
  CHECK_THROWS_AS(parser(parser_options{.max_event_bytes = 0}), std::invalid_argument);
  CHECK_NOTHROW(parser(parser_options{.max_line_bytes = 1, .max_event_bytes = 1}));
}
