// The encoder: exact bytes for each frame in RESP2 and RESP3, what the reply parser reads back from them, and the
// bytes a real redis-server sends for the same values (pub/sub messages included).
#include <switchboard/resp/encoder.hpp>
#include <switchboard/resp/reply_parser.hpp>

#include "resp/values.hpp"
#include "support/catch.hpp"
#include "support/redis_server.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using switchboard::resp::encoder;
using switchboard::resp::protocol;
using switchboard::resp::reply_parser;
using switchboard::resp::value;
using namespace switchboard::resp::testing;

namespace {

using namespace std::string_literals;

// Parses a buffer that holds whole values only.
std::vector<value> parse_all(std::string_view bytes) {
  reply_parser parser;
  std::vector<value> out;
  while (!bytes.empty()) {
    std::error_code ec;
    const std::size_t used = parser.parse(bytes, ec);
    REQUIRE_FALSE(ec);
    bytes.remove_prefix(used);
    REQUIRE(parser.has_value());
    out.push_back(parser.take());
  }
  return out;
}

}  // namespace

TEST_CASE("encoder: frames common to RESP2 and RESP3", "[resp][encoder]") {
  for (const protocol version : {protocol::resp2, protocol::resp3}) {
    SECTION(version == protocol::resp2 ? "RESP2" : "RESP3") {
      std::string out;
      encoder enc(out, version);
      CHECK(enc.version() == version);
      enc.simple_string("OK").error("ERR no such key").integer(0).integer(-42);
      enc.integer(std::numeric_limits<std::int64_t>::min()).integer(std::numeric_limits<std::int64_t>::max());
      enc.bulk("hello").bulk("").bulk("\r\n\0"s).array_header(2).bulk("a").integer(1).array_header(0);
      CHECK(out ==
            "+OK\r\n-ERR no such key\r\n:0\r\n:-42\r\n:-9223372036854775808\r\n:9223372036854775807\r\n"
            "$5\r\nhello\r\n$0\r\n\r\n$3\r\n\r\n\0\r\n*2\r\n$1\r\na\r\n:1\r\n*0\r\n"s);
      CHECK(parse_all(out) == std::vector<value>{simple("OK"), simple_error("ERR no such key"), integer(0),
                                                 integer(-42), integer(INT64_MIN), integer(INT64_MAX),
                                                 bulk("hello"), bulk(""), bulk("\r\n\0"s),
                                                 array({bulk("a"), integer(1)}), array({})});
    }
  }
}

TEST_CASE("encoder: CR and LF cannot forge frames in simple strings and errors", "[resp][encoder]") {
  std::string out;
  encoder(out).simple_string("a\r\n+b").error("ERR x\r\n:1");
  CHECK(out == "+a  +b\r\n-ERR x  :1\r\n");
  CHECK(parse_all(out) == std::vector<value>{simple("a  +b"), simple_error("ERR x  :1")});
}

TEST_CASE("encoder: types that differ between RESP2 and RESP3", "[resp][encoder]") {
  std::string two;
  std::string three;
  for (auto [out, version] : {std::pair{&two, protocol::resp2}, std::pair{&three, protocol::resp3}}) {
    encoder(*out, version)
        .null()
        .null_array()
        .map_header(1)
        .bulk("k")
        .boolean(true)
        .set_header(1)
        .boolean(false)
        .push_header(1)
        .double_value(3.141)
        .double_value(-0.1)
        .double_value(1e300)
        .double_value(std::numeric_limits<double>::infinity())
        .double_value(-std::numeric_limits<double>::infinity())
        .double_value(std::nan(""));
  }
  CHECK(two ==
        "$-1\r\n*-1\r\n*2\r\n$1\r\nk\r\n:1\r\n*1\r\n:0\r\n*1\r\n$5\r\n3.141\r\n$4\r\n-0.1\r\n$6\r\n1e+300\r\n"
        "$3\r\ninf\r\n$4\r\n-inf\r\n$3\r\nnan\r\n");
  CHECK(three ==
        "_\r\n_\r\n%1\r\n$1\r\nk\r\n#t\r\n~1\r\n#f\r\n>1\r\n,3.141\r\n,-0.1\r\n,1e+300\r\n,inf\r\n,-inf\r\n,nan\r\n");
  const std::vector<value> parsed = parse_all(three);
  REQUIRE(parsed.size() == 10);
  CHECK(parsed[2] == map({bulk("k"), boolean(true)}));
  CHECK(parsed[3] == set({boolean(false)}));
  CHECK(parsed[4] == push({number(3.141)}));
  CHECK(parsed[5] == number(-0.1));
  CHECK(parsed[6] == number(1e300));
  CHECK(std::isnan(parsed[9].number));
}

TEST_CASE("encoder: verbatim strings", "[resp][encoder]") {
  std::string two;
  std::string three;
  encoder(two, protocol::resp2).verbatim("txt", "a\r\nb");
  encoder(three, protocol::resp3).verbatim("txt", "a\r\nb");
  CHECK(two == "$4\r\na\r\nb\r\n");
  CHECK(three == "=8\r\ntxt:a\r\nb\r\n");
  CHECK(parse_all(three) == std::vector<value>{verbatim("txt:a\r\nb")});
}

TEST_CASE("encoder: doubles read back exactly", "[resp][encoder]") {
  // The shortest round-trip form must parse back to the very same double, in both versions.
  const double samples[] = {0.0, -0.0, 1.0 / 3, 2.5e-308, 4.9e-324, 1.7976931348623157e308, 123456789.125, -7e-7};
  for (const double x : samples) {
    std::string out;
    encoder(out, protocol::resp3).double_value(x);
    const std::vector<value> parsed = parse_all(out);
    REQUIRE(parsed.size() == 1);
    CHECK(parsed[0].number == x);
    CHECK(std::signbit(parsed[0].number) == std::signbit(x));
  }
}

TEST_CASE("encoder: commands are arrays of bulk strings", "[resp][encoder]") {
  std::string out;
  encoder enc(out, protocol::resp3);  // commands do not depend on the version
  enc.command({"PUBLISH", "news", "hi"});
  const std::vector<std::string_view> args = {"SUBSCRIBE", "a", "b"};
  enc.command(args);
  CHECK(out == "*3\r\n$7\r\nPUBLISH\r\n$4\r\nnews\r\n$2\r\nhi\r\n*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n");
}

TEST_CASE("encoder: the same bytes as redis-server", "[resp][encoder][redis]") {
  REQUIRE(switchboard::test::have_program("redis-server"));  // scripts/install-deps.sh installs it
  switchboard::test::redis_server server({"--enable-debug-command", "yes"});
  asio::io_context ctx;

  for (const protocol version : {protocol::resp2, protocol::resp3}) {
    INFO((version == protocol::resp2 ? "RESP2" : "RESP3"));
    const std::string hello = version == protocol::resp2 ? "2" : "3";
    switchboard::test::redis_client subscriber(ctx, server.port());
    switchboard::test::redis_client publisher(ctx, server.port());
    subscriber.call({"HELLO", hello});

    // What a subscriber receives: a push in RESP3, an array in RESP2.
    subscriber.call({"SUBSCRIBE", "news"});
    std::string expected;
    encoder(expected, version).push_header(3).bulk("subscribe").bulk("news").integer(1);
    CHECK(subscriber.last_frame() == expected);
    subscriber.call({"PSUBSCRIBE", "n*"});
    CHECK(publisher.call({"PUBLISH", "news", "payload\r\n"}).integer == 2);
    subscriber.read();
    expected.clear();
    encoder(expected, version).push_header(3).bulk("message").bulk("news").bulk("payload\r\n");
    CHECK(subscriber.last_frame() == expected);
    subscriber.read();
    expected.clear();
    encoder(expected, version).push_header(4).bulk("pmessage").bulk("n*").bulk("news").bulk("payload\r\n");
    CHECK(subscriber.last_frame() == expected);

    // Values whose encoding differs between the versions (Redis's DEBUG PROTOCOL, debug.c).
    switchboard::test::redis_client client(ctx, server.port());
    client.call({"HELLO", hello});
    const auto same = [&](std::string_view type, const std::string& ours) {
      INFO(type);
      client.call({"DEBUG", "PROTOCOL", type});
      CHECK(client.last_frame() == ours);
    };
    std::string out;
    encoder enc(out, version);
    enc.null();
    same("null", std::exchange(out, {}));
    enc.double_value(3.141);
    same("double", std::exchange(out, {}));
    enc.boolean(true);
    same("true", std::exchange(out, {}));
    enc.boolean(false);
    same("false", std::exchange(out, {}));
    enc.set_header(3).integer(0).integer(1).integer(2);
    same("set", std::exchange(out, {}));
    enc.map_header(3).integer(0).boolean(false).integer(1).boolean(true).integer(2).boolean(false);
    same("map", std::exchange(out, {}));
  }
}
