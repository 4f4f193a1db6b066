// The reply parser against tables of valid and invalid RESP2/RESP3 input, each fed whole, split in two at every
// byte and byte by byte (all must agree), then against what a real redis-server sends for every RESP3 type.
#include <switchboard/resp/reply_parser.hpp>

#include "resp/values.hpp"
#include "support/catch.hpp"
#include "support/redis_server.hpp"

#include <cmath>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

using switchboard::resp::error;
using switchboard::resp::reply_parser;
using switchboard::resp::reply_parser_options;
using switchboard::resp::value;
using switchboard::resp::value_kind;
using namespace switchboard::resp::testing;

namespace {

using namespace std::string_literals;

struct outcome {
  std::vector<value> values;
  std::error_code error;
  bool operator==(const outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const outcome& o) {
  os << "{values:";
  for (const value& v : o.values) os << ' ' << v;
  return os << ", error: " << o.error.message() << '}';
}

// Feeds `chunks` as successive reads; the parser consumes what it can and the rest is offered again.
outcome feed(const std::vector<std::string_view>& chunks, const reply_parser_options& options) {
  reply_parser parser(options);
  outcome out;
  for (std::string_view chunk : chunks) {
    while (!chunk.empty()) {
      std::error_code ec;
      const std::size_t used = parser.parse(chunk, ec);
      if (ec) {
        out.error = ec;
        return out;
      }
      chunk.remove_prefix(used);
      if (parser.has_value()) {
        out.values.push_back(parser.take());
      } else {
        REQUIRE(chunk.empty());  // without a complete value, everything given is consumed
      }
    }
  }
  return out;
}

outcome feed_every_way(std::string_view input, const reply_parser_options& options = {}) {
  const outcome whole = feed({input}, options);
  for (std::size_t cut = 1; cut < input.size(); ++cut) {
    INFO("split at byte " << cut);
    REQUIRE(feed({input.substr(0, cut), input.substr(cut)}, options) == whole);
  }
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < input.size(); ++i) bytes.push_back(input.substr(i, 1));
  INFO("byte by byte");
  REQUIRE(feed(bytes, options) == whole);
  return whole;
}

struct valid_case {
  std::string name;
  std::string input;
  std::vector<value> values;
  reply_parser_options options = {};
};

std::vector<valid_case> valid_cases() {
  return {
      {"simple string", "+OK\r\n", {simple("OK")}},
      {"empty simple string", "+\r\n", {simple("")}},
      {"simple error", "-ERR unknown command\r\n", {simple_error("ERR unknown command")}},
      {"integers", ":0\r\n:-42\r\n:+7\r\n", {integer(0), integer(-42), integer(7)}},
      {"integer bounds", ":9223372036854775807\r\n:-9223372036854775808\r\n",
       {integer(INT64_MAX), integer(INT64_MIN)}},
      {"bulk string", "$5\r\nhello\r\n", {bulk("hello")}},
      {"empty bulk string", "$0\r\n\r\n", {bulk("")}},
      {"binary bulk string", "$4\r\n\r\n\0\n\r\n"s, {bulk("\r\n\0\n"s)}},
      {"RESP2 null bulk", "$-1\r\n", {null()}},
      {"RESP2 null array", "*-1\r\n", {null()}},
      {"RESP3 null", "_\r\n", {null()}},
      {"empty array", "*0\r\n", {array({})}},
      {"array", "*3\r\n$3\r\nfoo\r\n:1\r\n$-1\r\n", {array({bulk("foo"), integer(1), null()})}},
      {"nested arrays", "*2\r\n*1\r\n+a\r\n*0\r\n", {array({array({simple("a")}), array({})})}},
      {"map", "%2\r\n+k1\r\n:1\r\n+k2\r\n_\r\n", {map({simple("k1"), integer(1), simple("k2"), null()})}},
      {"empty map", "%0\r\n", {map({})}},
      {"set", "~2\r\n+a\r\n+b\r\n", {set({simple("a"), simple("b")})}},
      {"push", ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
       {push({bulk("message"), bulk("ch"), bulk("hi")})}},
      {"doubles", ",1.5\r\n,-0.25e3\r\n,1E+2\r\n,+3\r\n,10\r\n",
       {number(1.5), number(-250), number(100), number(3), number(10)}},
      {"infinities", ",inf\r\n,-inf\r\n", {number(INFINITY), number(-INFINITY)}},
      {"booleans", "#t\r\n#f\r\n", {boolean(true), boolean(false)}},
      {"big numbers", "(3492890328409238509324850943850943825024385\r\n(-1\r\n",
       {big("3492890328409238509324850943850943825024385"), big("-1")}},
      {"verbatim string", "=15\r\ntxt:Some string\r\n", {verbatim("txt:Some string")}},
      {"blob error", "!21\r\nSYNTAX invalid syntax\r\n", {blob_error("SYNTAX invalid syntax")}},
      {"attribute dropped",
       "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
       {array({integer(2039123), integer(9543892)})}},
      {"attribute inside an aggregate", "*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n", {array({integer(1), integer(2)})}},
      {"pipelined values", "+OK\r\n:1\r\n>1\r\n+x\r\n", {simple("OK"), integer(1), push({simple("x")})}},
      {"incomplete value", "*2\r\n:1\r\n$5\r\nhel", {}},
      {"incomplete line", "+OK\r", {}},
      {"limits are inclusive", "+OK\r\n$3\r\nabc\r\n*2\r\n*1\r\n:1\r\n:2\r\n",
       {simple("OK"), bulk("abc"), array({array({integer(1)}), integer(2)})},
       {.max_depth = 2, .max_aggregate_length = 2, .max_bulk_length = 3, .max_line_length = 3}},
  };
}

struct invalid_case {
  std::string name;
  std::string input;
  error expected;
  std::vector<value> before = {};
  reply_parser_options options = {};
};

std::vector<invalid_case> invalid_cases() {
  const reply_parser_options tiny{.max_depth = 2, .max_aggregate_length = 2, .max_bulk_length = 3,
                                  .max_line_length = 3};
  return {
      {"unknown type", "?x\r\n", error::unexpected_type},
      {"empty line", "\r\n", error::unexpected_type},
      {"not RESP at all", "HTTP/1.1 200 OK\r\n", error::unexpected_type},
      {"streamed chunk marker", ";4\r\nabcd\r\n", error::unexpected_type},
      {"streamed end marker", ".\r\n", error::unexpected_type},
      {"garbage after a value", "+OK\r\nx", error::unexpected_type, {simple("OK")}},
      {"bare LF", "+OK\n", error::invalid_line},
      {"bare CR", "+O\rK\r\n", error::invalid_line},
      {"CR CR LF", "+OK\r\r\n", error::invalid_line},
      {"integer not a number", ":abc\r\n", error::invalid_integer},
      {"integer empty", ":\r\n", error::invalid_integer},
      {"integer with leading zero", ":01\r\n", error::invalid_integer},
      {"integer overflow", ":9223372036854775808\r\n", error::invalid_integer},
      {"integer with two signs", ":+-1\r\n", error::invalid_integer},
      {"integer with a space", ": 1\r\n", error::invalid_integer},
      {"bulk length below -1", "$-2\r\n", error::invalid_length},
      {"bulk length not a number", "$abc\r\n", error::invalid_length},
      {"bulk length with leading zero", "$01\r\na\r\n", error::invalid_length},
      {"bulk longer than announced", "$3\r\nabcd\r\n", error::bulk_not_terminated},
      {"streamed bulk", "$?\r\n;4\r\nabcd\r\n;0\r\n", error::streamed_not_supported},
      {"array length below -1", "*-2\r\n", error::invalid_length},
      {"map cannot be null", "%-1\r\n", error::invalid_length},
      {"blob error cannot be null", "!-1\r\n", error::invalid_length},
      {"streamed array", "*?\r\n:1\r\n.\r\n", error::streamed_not_supported},
      {"double with trailing dot", ",1.\r\n", error::invalid_double},
      {"double with leading dot", ",.5\r\n", error::invalid_double},
      {"double with empty exponent", ",1e\r\n", error::invalid_double},
      {"double infinity spelled out", ",infinity\r\n", error::invalid_double},
      {"double nan payload", ",nan(1)\r\n", error::invalid_double},
      {"double empty", ",\r\n", error::invalid_double},
      {"double out of range", ",1e400\r\n", error::invalid_double},
      {"double hexadecimal", ",0x10\r\n", error::invalid_double},
      {"boolean other letter", "#x\r\n", error::invalid_boolean},
      {"boolean empty", "#\r\n", error::invalid_boolean},
      {"boolean too long", "#tt\r\n", error::invalid_boolean},
      {"null with content", "_x\r\n", error::invalid_null},
      {"verbatim too short", "=3\r\ntxt\r\n", error::invalid_verbatim_string},
      {"verbatim without colon", "=4\r\ntxt;\r\n", error::invalid_verbatim_string},
      {"line over the limit", "+OKAY\r\n", error::line_too_long, {}, tiny},
      {"unterminated line over the limit", "+OKAY", error::line_too_long, {}, tiny},
      // The earliest offending byte decides, however the bytes arrive (found by the fuzzer).
      {"line over the limit before a bare LF", "+OKAY\n", error::line_too_long, {}, tiny},
      {"bare LF where the limit is reached", "+OK\n", error::invalid_line, {}, tiny},
      {"bulk over the limit", "$4\r\n", error::bulk_too_long, {}, tiny},
      {"aggregate over the limit", "*3\r\n", error::too_many_elements, {}, tiny},
      {"map over the limit", "%3\r\n", error::too_many_elements, {}, tiny},
      {"nesting over the limit", "*1\r\n*1\r\n*1\r\n", error::nesting_too_deep, {}, tiny},
  };
}

}  // namespace

TEST_CASE("reply_parser: valid RESP2 and RESP3, fed whole and split at every byte", "[resp][reply_parser]") {
  for (const valid_case& c : valid_cases()) {
    SECTION(c.name) {
      const outcome got = feed_every_way(c.input, c.options);
      CHECK_FALSE(got.error);
      CHECK(got.values == c.values);
    }
  }
}

TEST_CASE("reply_parser: invalid input, fed whole and split at every byte", "[resp][reply_parser]") {
  for (const invalid_case& c : invalid_cases()) {
    SECTION(c.name) {
      const outcome got = feed_every_way(c.input, c.options);
      CHECK(got.error == c.expected);
      CHECK(got.values == c.before);
    }
  }
}

TEST_CASE("reply_parser: nan, fed whole and split at every byte", "[resp][reply_parser]") {
  // NaN never equals itself, so feed_every_way cannot compare the outcomes: check each one instead. Redis 7.0 sends
  // "-nan" for a script's 0/0 (it formats doubles with %.17g).
  const std::string_view input = GENERATE(std::string_view(",nan\r\n"), std::string_view(",-nan\r\n"));
  INFO(input);
  for (std::size_t cut = 0; cut < input.size(); ++cut) {
    INFO("split at byte " << cut);
    const outcome got = feed({input.substr(0, cut), input.substr(cut)}, {});
    REQUIRE(got.values.size() == 1);
    CHECK(got.values[0].kind == value_kind::double_number);
    CHECK(std::isnan(got.values[0].number));
  }
}

// Redis 7 sends what a script gives it as a big number unchecked (`redis.setresp(3); return {big_number='abc'}`
// arrives as "(abc"): the line is framed like any other, so the value becomes an error reply and the stream goes on.
TEST_CASE("reply_parser: a big number that is not one becomes an error reply and the stream goes on",
          "[resp][reply_parser]") {
  const auto refused = [](std::string sent) { return simple_error("ERR invalid RESP big number: " + sent); };
  SECTION("at the top level") {
    // Redis turns CR and LF in a script's big number into spaces: "a\r\nb" arrives as "a  b".
    const outcome got = feed_every_way("(abc\r\n(\r\n(1.5\r\n(-\r\n(a  b\r\n+OK\r\n");
    CHECK_FALSE(got.error);
    CHECK(got.values ==
          std::vector<value>{refused("abc"), refused(""), refused("1.5"), refused("-"), refused("a  b"), simple("OK")});
  }
  SECTION("inside an aggregate") {
    const outcome got = feed_every_way("*3\r\n:1\r\n(x\r\n(12\r\n:2\r\n");
    CHECK_FALSE(got.error);
    CHECK(got.values == std::vector<value>{array({integer(1), refused("x"), big("12")}), integer(2)});
  }
  SECTION("a bare CR or LF and the line limit still end the stream") {
    CHECK(feed_every_way("(a\rb\r\n").error == error::invalid_line);
    CHECK(feed_every_way("(a\nb\r\n").error == error::invalid_line);
    CHECK(feed_every_way("(abcd\r\n", {.max_line_length = 4}).error == error::line_too_long);
  }
}

TEST_CASE("reply_parser: attributes kept when asked", "[resp][reply_parser]") {
  const reply_parser_options keep{.keep_attributes = true};
  SECTION("before a top-level value") {
    const outcome got = feed_every_way("|1\r\n+ttl\r\n:3600\r\n$3\r\nval\r\n", keep);
    CHECK(got.values == std::vector<value>{with_attributes(bulk("val"), {simple("ttl"), integer(3600)})});
  }
  SECTION("before an element, not counted as one") {
    const outcome got = feed_every_way("*2\r\n:1\r\n|1\r\n+a\r\n+b\r\n:2\r\n", keep);
    CHECK(got.values ==
          std::vector<value>{array({integer(1), with_attributes(integer(2), {simple("a"), simple("b")})})});
  }
  SECTION("before an aggregate") {
    const outcome got = feed_every_way("|1\r\n+a\r\n+b\r\n*1\r\n:1\r\n", keep);
    CHECK(got.values == std::vector<value>{with_attributes(array({integer(1)}), {simple("a"), simple("b")})});
  }
  SECTION("consecutive attribute maps merge") {
    const outcome got = feed_every_way("|1\r\n+a\r\n+b\r\n|1\r\n+c\r\n+d\r\n+OK\r\n", keep);
    CHECK(got.values ==
          std::vector<value>{with_attributes(simple("OK"), {simple("a"), simple("b"), simple("c"), simple("d")})});
  }
}

TEST_CASE("reply_parser: take, errors and reset", "[resp][reply_parser]") {
  reply_parser parser;
  std::error_code ec;
  const std::string_view two = "+a\r\n+b\r\n";
  REQUIRE(parser.parse(two, ec) == 4);
  REQUIRE(parser.has_value());
  CHECK(parser.parse(two.substr(4), ec) == 0);  // nothing is consumed while a value waits
  CHECK(parser.take() == simple("a"));
  CHECK_FALSE(parser.has_value());
  CHECK(parser.parse(two.substr(4), ec) == 4);
  CHECK(parser.take() == simple("b"));

  CHECK(parser.parse("!", ec) == 1);
  CHECK(parser.parse("x\r\n", ec) == 0);
  CHECK(ec == error::invalid_length);
  std::error_code again;
  CHECK(parser.parse("+OK\r\n", again) == 0);
  CHECK(again == error::invalid_length);
  parser.reset();
  CHECK(parser.parse("+OK\r\n", again) == 5);
  CHECK_FALSE(again);
  CHECK(parser.take() == simple("OK"));
}

TEST_CASE("reply_parser: deep nesting is refused without recursion", "[resp][reply_parser]") {
  std::string deep;
  for (int i = 0; i < 5000; ++i) deep += "*1\r\n";
  const outcome got = feed({deep}, {});
  CHECK(got.error == error::nesting_too_deep);
  // Under a large limit the value completes, closing 5000 levels in one go.
  deep += ":1\r\n";
  const outcome closed = feed({deep}, {.max_depth = 5000});
  REQUIRE(closed.values.size() == 1);
  CHECK(closed.values[0].kind == value_kind::array);
}

TEST_CASE("reply_parser: limits of 0 are refused", "[resp][reply_parser]") {
  CHECK_THROWS_AS(reply_parser(reply_parser_options{.max_depth = 0}), std::invalid_argument);
  CHECK_THROWS_AS(reply_parser(reply_parser_options{.max_aggregate_length = 0}), std::invalid_argument);
  CHECK_THROWS_AS(reply_parser(reply_parser_options{.max_bulk_length = 0}), std::invalid_argument);
  CHECK_THROWS_AS(reply_parser(reply_parser_options{.max_line_length = 0}), std::invalid_argument);
}

TEST_CASE("reply_parser: every type a real redis-server sends", "[resp][reply_parser][redis]") {
  REQUIRE(switchboard::test::have_program("redis-server"));  // scripts/install-deps.sh installs it
  // DEBUG PROTOCOL <type> answers with a fixed value of each RESP3 type (Redis's debug.c).
  switchboard::test::redis_server server({"--enable-debug-command", "yes"});
  asio::io_context ctx;
  switchboard::test::redis_client client(ctx, server.port());
  const value hello = client.call({"HELLO", "3"});
  REQUIRE(hello.kind == value_kind::map);
  REQUIRE(hello.elements.size() >= 4);
  CHECK(hello.elements[0] == bulk("server"));
  CHECK(hello.elements[1] == bulk("redis"));

  CHECK(client.call({"DEBUG", "PROTOCOL", "string"}) == bulk("Hello World"));
  CHECK(client.call({"DEBUG", "PROTOCOL", "integer"}) == integer(12345));
  CHECK(client.call({"DEBUG", "PROTOCOL", "double"}) == number(3.141));
  CHECK(client.call({"DEBUG", "PROTOCOL", "bignum"}) == big("1234567999999999999999999999999999999"));
  CHECK(client.call({"DEBUG", "PROTOCOL", "null"}) == null());
  CHECK(client.call({"DEBUG", "PROTOCOL", "array"}) == array({integer(0), integer(1), integer(2)}));
  CHECK(client.call({"DEBUG", "PROTOCOL", "set"}) == set({integer(0), integer(1), integer(2)}));
  CHECK(client.call({"DEBUG", "PROTOCOL", "map"}) ==
        map({integer(0), boolean(false), integer(1), boolean(true), integer(2), boolean(false)}));
  CHECK(client.call({"DEBUG", "PROTOCOL", "attrib"}) == bulk("Some real reply following the attribute"));
  CHECK(client.call({"DEBUG", "PROTOCOL", "push"}) == push({bulk("server-cpu-usage"), integer(42)}));
  CHECK(client.read() == bulk("Some real reply following the push reply"));
  CHECK(client.call({"DEBUG", "PROTOCOL", "verbatim"}) == verbatim("txt:This is a verbatim\nstring"));
  CHECK(client.call({"DEBUG", "PROTOCOL", "true"}) == boolean(true));
  CHECK(client.call({"DEBUG", "PROTOCOL", "false"}) == boolean(false));
  CHECK(client.call({"NOSUCHCOMMAND"}).is_error());
}
