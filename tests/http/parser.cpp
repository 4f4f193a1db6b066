// Conformance tables for the HTTP/1.1 parser (RFC 9112): each input is fed whole, byte by byte, and in a few
// other splits; every split must give the same messages or the same error.
#include <switchboard/http/chunked_decoder.hpp>
#include <switchboard/http/parser.hpp>

#include "support/catch.hpp"

#include <string>
#include <vector>

using namespace std::string_literals;
using switchboard::http::body_framing;
using switchboard::http::chunked_decoder;
using switchboard::http::chunked_limits;
using switchboard::http::error;
using switchboard::http::parser_limits;
using switchboard::http::request_parser;
using switchboard::http::response_parser;
using switchboard::http::status;
using switchboard::http::status_for;

namespace {

// A parsed message, copied out of the parser (whose views die with the buffer).
struct message {
  std::string method, target, reason;
  unsigned status = 0;
  int minor = -1;
  std::vector<std::pair<std::string, std::string>> fields, trailers;
  std::string body;
  bool keep_alive = false, upgrade = false, expect_continue = false;
  bool operator==(const message&) const = default;
};

struct outcome {
  std::error_code ec;
  std::vector<message> messages;
};

template <class Parser>
void capture_header(const Parser& p, message& m) {
  if constexpr (std::is_same_v<Parser, request_parser>) {
    m.method = std::string(p.method_string());
    m.target = std::string(p.target());
  } else {
    m.status = p.status_code();
    m.reason = std::string(p.reason());
  }
  m.minor = p.version_minor();
  for (const auto& f : p.fields()) m.fields.emplace_back(std::string(f.name), std::string(f.value));
  m.keep_alive = p.keep_alive();
  m.upgrade = p.upgrade();
  m.expect_continue = p.expect_continue();
}

// Feeds `input` `step` bytes at a time (0 = whole), the way a connection does: unconsumed bytes are kept and
// presented again with the new ones after them.
template <class Parser = request_parser>
outcome parse(std::string_view input, std::size_t step, parser_limits limits = {}, bool head = false) {
  Parser p(limits);
  if constexpr (!std::is_same_v<Parser, request_parser>) {
    if (head) p.expect_head_response();
  }
  outcome out;
  std::string buffer;
  std::size_t fed = 0;
  message current;
  bool have_header = false;
  for (;;) {
    if (fed < input.size()) {
      const std::size_t n = step == 0 ? input.size() : std::min(step, input.size() - fed);
      buffer.append(input.substr(fed, n));
      fed += n;
    }
    for (;;) {
      const std::size_t consumed = p.put(buffer, out.ec);
      if (out.ec) return out;
      if (p.header_done() && !have_header) {
        capture_header(p, current);
        have_header = true;
      }
      current.body.append(p.body_piece());
      if (p.done()) {
        for (const auto& f : p.trailers()) current.trailers.emplace_back(std::string(f.name), std::string(f.value));
      }
      buffer.erase(0, consumed);
      if (p.done()) {
        out.messages.push_back(std::move(current));
        current = {};
        have_header = false;
        p.reset();
        if constexpr (!std::is_same_v<Parser, request_parser>) {
          if (head) p.expect_head_response();
        }
        continue;
      }
      if (consumed == 0) break;
    }
    if (fed == input.size()) {
      p.put_eof(out.ec);
      if (!out.ec && p.done()) out.messages.push_back(std::move(current));
      return out;
    }
  }
}

// Parses with several splits and checks that they agree; returns the whole-input outcome.
template <class Parser = request_parser>
outcome parse_all_splits(std::string_view input, parser_limits limits = {}, bool head = false) {
  const outcome whole = parse<Parser>(input, 0, limits, head);
  for (std::size_t step : {1, 2, 3, 7, 64}) {
    const outcome split = parse<Parser>(input, step, limits, head);
    INFO("split every " << step << " bytes");
    CHECK(split.ec == whole.ec);
    CHECK(split.messages == whole.messages);
  }
  return whole;
}

}  // namespace

TEST_CASE("request parser: valid requests", "[http][parser]") {
  SECTION("a simple GET") {
    auto r = parse_all_splits("GET /users/42?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.messages.size() == 1);
    const auto& m = r.messages[0];
    CHECK(m.method == "GET");
    CHECK(m.target == "/users/42?x=1");
    CHECK(m.minor == 1);
    CHECK(m.keep_alive);
    CHECK(m.fields == std::vector<std::pair<std::string, std::string>>{{"Host", "example.com"}, {"Accept", "*/*"}});
    CHECK(m.body.empty());
  }
  SECTION("field values are trimmed of whitespace, keep inner whitespace, obs-text and are never decoded") {
    auto r = parse_all_splits("GET / HTTP/1.1\r\nHost: h\r\nX-A: \t a  b%20c\t \r\nX-B: caf\xc3\xa9\r\nX-Empty:\r\n\r\n");
    REQUIRE_FALSE(r.ec);
    CHECK(r.messages[0].fields[1].second == "a  b%20c");
    CHECK(r.messages[0].fields[2].second == "caf\xc3\xa9");
    CHECK(r.messages[0].fields[3].second.empty());
  }
  SECTION("a body delimited by Content-Length") {
    auto r = parse_all_splits("POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world");
    REQUIRE_FALSE(r.ec);
    CHECK(r.messages[0].body == "hello world");
  }
  SECTION("identical Content-Length values are one") {
    auto r = parse_all_splits("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc");
    REQUIRE_FALSE(r.ec);
    CHECK(r.messages[0].body == "abc");
  }
  SECTION("a chunked body with extensions and trailers") {
    auto r = parse_all_splits(
        "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5;name=value;quoted=\"a \\\" b\"\r\nhello\r\n"
        "6 ; ext\r\n world\r\n"
        "000\r\nChecksum: abc\r\nX-T:  1 \r\n\r\n");
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.messages.size() == 1);
    CHECK(r.messages[0].body == "hello world");
    CHECK(r.messages[0].trailers == std::vector<std::pair<std::string, std::string>>{{"Checksum", "abc"}, {"X-T", "1"}});
  }
  SECTION("whitespace around the \";\" and \"=\" of chunk extensions (BWS, RFC 9112 §7.1.1)") {
    auto r = parse_all_splits(
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3 ;a = b\t; c =\"q\"\r\nabc\r\n0\t;z\r\n\r\n");
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.messages.size() == 1);
    CHECK(r.messages[0].body == "abc");
  }
  SECTION("pipelined requests come out in order") {
    auto r = parse_all_splits(
        "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
        "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab"
        "POST /3 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nc\r\n0\r\n\r\n"
        "GET /4 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.messages.size() == 4);
    CHECK(r.messages[0].target == "/1");
    CHECK(r.messages[1].body == "ab");
    CHECK(r.messages[2].body == "c");
    CHECK(r.messages[3].target == "/4");
    CHECK_FALSE(r.messages[3].keep_alive);
  }
  SECTION("empty lines before a request line are ignored (RFC 9112 §2.2)") {
    auto r = parse_all_splits("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    REQUIRE_FALSE(r.ec);
    CHECK(r.messages.size() == 1);
  }
  SECTION("HTTP/1.0: no Host needed, keep-alive only when asked") {
    auto r = parse_all_splits("GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.messages.size() == 2);
    CHECK(r.messages[0].minor == 0);
    CHECK_FALSE(r.messages[0].keep_alive);
    CHECK(r.messages[1].keep_alive);
  }
  SECTION("Connection tokens: close, upgrade; Expect: 100-continue") {
    auto r = parse_all_splits(
        "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n"
        "PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx");
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.messages.size() == 2);
    CHECK(r.messages[0].upgrade);
    CHECK(r.messages[1].expect_continue);
    CHECK_FALSE(r.messages[1].keep_alive);
  }
  SECTION("Expect: 100-continue from HTTP/1.0 is ignored (RFC 9110 §10.1.1: no 1xx to an HTTP/1.0 client)") {
    auto r = parse_all_splits("PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx");
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.messages.size() == 1);
    CHECK_FALSE(r.messages[0].expect_continue);
    CHECK(r.messages[0].body == "x");
  }
  SECTION("target forms: absolute, authority, asterisk") {
    auto r = parse_all_splits(
        "GET http://h/p?q HTTP/1.1\r\nHost: h\r\n\r\n"
        "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"
        "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"
        "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n"
        "GET urn:x-a.b+c:d HTTP/1.1\r\nHost: h\r\n\r\n");
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.messages.size() == 5);
    CHECK(r.messages[0].target == "http://h/p?q");
    CHECK(r.messages[1].target == "h:443");
    CHECK(r.messages[2].target == "*");
    CHECK(r.messages[3].target == "[::1]:8443");
    CHECK(r.messages[4].target == "urn:x-a.b+c:d");  // an absolute-URI without "//" (RFC 3986 §3)
  }
  SECTION("Host values: empty, a name with a port, an IPv6 literal, sub-delims, an empty port") {
    auto r = parse_all_splits(
        "GET / HTTP/1.1\r\nHost:\r\n\r\n"
        "GET / HTTP/1.1\r\nHost: a-b.example_c:443\r\n\r\n"
        "GET / HTTP/1.1\r\nHost: [fe80::1:10.0.0.1]\r\n\r\n"
        "GET / HTTP/1.1\r\nHost: a!$&'()*+,;=~\r\n\r\n"
        "GET / HTTP/1.1\r\nHost: h:\r\n\r\n");
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.messages.size() == 5);
    CHECK(r.messages[1].fields[0].second == "a-b.example_c:443");
  }
  SECTION("extension methods are tokens") {
    auto r = parse_all_splits("PROPFIND / HTTP/1.1\r\nHost: h\r\n\r\n");
    REQUIRE_FALSE(r.ec);
    CHECK(r.messages[0].method == "PROPFIND");
  }
  SECTION("limits are inclusive") {
    const std::string target = "/" + std::string(8 * 1024 - 1, 'a');
    auto r = parse_all_splits("GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK_FALSE(r.ec);
    std::string many = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (int i = 1; i < 100; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
    r = parse_all_splits(many + "\r\n");
    CHECK_FALSE(r.ec);
  }
}

TEST_CASE("request parser: the parsed request exposes framing", "[http][parser]") {
  request_parser p;
  std::error_code ec;
  const std::string in = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody";
  const std::size_t n = p.put(in, ec);
  REQUIRE_FALSE(ec);
  CHECK(n == in.size() - 4);
  CHECK(p.header_done());
  CHECK_FALSE(p.done());
  CHECK(p.framing() == body_framing::length);
  CHECK(p.content_length() == 4);
  CHECK(p.method() == switchboard::http::method::post);
  CHECK(p.header_bytes() == n);
  CHECK(p.put(std::string_view(in).substr(n), ec) == 4);
  CHECK(p.body_piece() == "body");
  CHECK(p.done());
}

namespace {
struct invalid_case {
  const char* name;
  std::string input;
  error expected;
};
}  // namespace

TEST_CASE("request parser: invalid requests are rejected with a clear error and status", "[http][parser]") {
  const std::string h = "Host: h\r\n";
  const std::vector<invalid_case> cases = {
      // framing: request smuggling vectors (RFC 9112 §6.3, §11.2)
      {"CL and TE", "POST / HTTP/1.1\r\n" + h + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       error::content_length_and_transfer_encoding},
      {"TE and CL", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
       error::content_length_and_transfer_encoding},
      {"differing CL lines", "POST / HTTP/1.1\r\n" + h + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
       error::conflicting_content_length},
      {"differing CL list", "POST / HTTP/1.1\r\n" + h + "Content-Length: 5, 6\r\n\r\n", error::conflicting_content_length},
      {"negative CL", "POST / HTTP/1.1\r\n" + h + "Content-Length: -1\r\n\r\n", error::bad_content_length},
      {"CL with sign", "POST / HTTP/1.1\r\n" + h + "Content-Length: +1\r\n\r\n", error::bad_content_length},
      {"CL not a number", "POST / HTTP/1.1\r\n" + h + "Content-Length: 1a\r\n\r\n", error::bad_content_length},
      {"empty CL", "POST / HTTP/1.1\r\n" + h + "Content-Length:\r\n\r\n", error::bad_content_length},
      {"CL overflow", "POST / HTTP/1.1\r\n" + h + "Content-Length: 184467440737095516160\r\n\r\n", error::bad_content_length},
      // Not "the same value repeated" (RFC 9110 §8.6), and not a list field: llhttp rejects these too (found by
      // tests/conformance/http_parser_differential.cpp).
      {"CL with a trailing comma", "POST / HTTP/1.1\r\n" + h + "Content-Length: 5,\r\n\r\nabcde", error::bad_content_length},
      {"CL with a leading comma", "POST / HTTP/1.1\r\n" + h + "Content-Length: ,5\r\n\r\nabcde", error::bad_content_length},
      {"CL with an empty element", "POST / HTTP/1.1\r\n" + h + "Content-Length: 5, , 5\r\n\r\nabcde",
       error::bad_content_length},
      {"TE final not chunked", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip\r\n\r\n", error::bad_transfer_encoding},
      {"TE chunked then gzip", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked, gzip\r\n\r\n", error::bad_transfer_encoding},
      {"TE chunked twice", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       error::bad_transfer_encoding},
      {"TE unknown coding", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip, chunked\r\n\r\n", error::unsupported_transfer_encoding},
      {"TE empty", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: ,\r\n\r\n", error::bad_transfer_encoding},
      {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", error::bad_transfer_encoding},
      // chunked coding (RFC 9112 §7.1)
      {"chunk size not hex", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\nzz\r\n", error::bad_chunk},
      {"chunk size with junk", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n1g\r\nx\r\n0\r\n\r\n", error::bad_chunk},
      {"chunk size empty", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n\r\n", error::bad_chunk},
      {"chunk size negative", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n-1\r\n", error::bad_chunk},
      {"chunk size overflow", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n",
       error::chunk_size_overflow},
      {"chunk data longer than its size", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n",
       error::bad_chunk},
      // Whitespace not followed by ";" matches no production of chunk-ext (RFC 9112 §7.1.1); llhttp rejects it too
      // (found by tests/conformance/http_parser_differential.cpp).
      {"chunk size with a trailing space",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n1 \r\nx\r\n0\r\n\r\n", error::bad_chunk},
      {"chunk size with a trailing tab",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n1\t\r\nx\r\n0\r\n\r\n", error::bad_chunk},
      {"chunk extension name with trailing space",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n1;a \r\nx\r\n0\r\n\r\n", error::bad_chunk},
      {"chunk extension value with trailing space",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n1;a=b \r\nx\r\n0\r\n\r\n", error::bad_chunk},
      {"last chunk with a trailing space", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n0 \r\n\r\n",
       error::bad_chunk},
      {"chunk size with bare LF", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n1\nab\r\n0\r\n\r\n", error::bad_chunk},
      {"chunk extension without name", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n1;=x\r\na\r\n0\r\n\r\n",
       error::bad_chunk},
      {"chunk extension unterminated quote with CR",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n1;a=\"x\r\na\r\n0\r\n\r\n", error::bad_chunk},
      {"chunk line too long",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n1;a=" + std::string(5000, 'b') + "\r\n", error::chunk_line_too_long},
      {"trailer with obs-fold", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n0\r\nA: b\r\n c\r\n\r\n",
       error::obsolete_line_folding},
      // fields (RFC 9110 §5, RFC 9112 §5)
      {"obs-fold", "GET / HTTP/1.1\r\n" + h + "X-A: a\r\n b\r\n\r\n", error::obsolete_line_folding},
      {"whitespace before first field", "GET / HTTP/1.1\r\n " + h + "\r\n", error::obsolete_line_folding},
      {"whitespace before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", error::whitespace_before_colon},
      {"tab before colon", "GET / HTTP/1.1\r\n" + h + "X-A\t: b\r\n\r\n", error::whitespace_before_colon},
      {"NUL in value", "GET / HTTP/1.1\r\n" + h + "X-A: a\0b\r\n\r\n"s, error::bad_field_value},
      {"DEL in value", "GET / HTTP/1.1\r\n" + h + "X-A: a\x7f" "b\r\n\r\n", error::bad_field_value},
      {"bare CR in value", "GET / HTTP/1.1\r\n" + h + "X-A: a\rb\r\n\r\n", error::bad_line_ending},
      {"bare LF in value", "GET / HTTP/1.1\r\n" + h + "X-A: a\nb\r\n\r\n", error::bad_line_ending},
      {"bare LF line endings", "GET / HTTP/1.1\nHost: h\n\n", error::bad_line_ending},
      {"bare LF ending a field", "GET / HTTP/1.1\r\nHost: h\n\r\n", error::bad_line_ending},
      {"empty field name", "GET / HTTP/1.1\r\n" + h + ": v\r\n\r\n", error::bad_field_name},
      {"invalid token in name", "GET / HTTP/1.1\r\n" + h + "X(A): v\r\n\r\n", error::bad_field_name},
      {"non-ASCII in name", "GET / HTTP/1.1\r\n" + h + "X\xc3\xa9: v\r\n\r\n", error::bad_field_name},
      {"missing Host in 1.1", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", error::bad_host},
      {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", error::bad_host},
      {"two Hosts in 1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", error::bad_host},
      {"a space in Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", error::bad_host},
      {"a path in Host", "GET / HTTP/1.1\r\nHost: a/admin\r\n\r\n", error::bad_host},
      {"userinfo in Host", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", error::bad_host},
      {"a port that is not digits", "GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n", error::bad_host},
      {"an IP literal without its bracket", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", error::bad_host},
      {"an IP literal that is not IPv6", "GET / HTTP/1.1\r\nHost: [a.b]\r\n\r\n", error::bad_host},
      {"non-ASCII in Host", "GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n", error::bad_host},
      // request line (RFC 9112 §3)
      {"invalid method token", "G(T / HTTP/1.1\r\n" + h + "\r\n", error::bad_method},
      {"TLS hello to a plain port", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", error::bad_method},
      {"lower-case version", "GET / http/1.1\r\n" + h + "\r\n", error::bad_version},
      {"two spaces", "GET  / HTTP/1.1\r\n" + h + "\r\n", error::bad_request_line},
      {"no target", "GET HTTP/1.1\r\n" + h + "\r\n", error::bad_request_line},
      {"control in target", "GET /a\x01 HTTP/1.1\r\n" + h + "\r\n", error::bad_target},
      {"space-separated extra", "GET / HTTP/1.1 x\r\n" + h + "\r\n", error::bad_version},
      {"NUL in target", "GET /\0 HTTP/1.1\r\n"s + h + "\r\n", error::bad_target},
      {"non-ASCII in target", "GET /caf\xc3\xa9 HTTP/1.1\r\n" + h + "\r\n", error::bad_target},
      // request-target forms (RFC 9112 §3.2)
      {"target in no form", "GET a HTTP/1.1\r\n" + h + "\r\n", error::bad_target},
      {"target starting with '?'", "GET ?a HTTP/1.1\r\n" + h + "\r\n", error::bad_target},
      {"scheme starting with a digit", "GET 1http://h/ HTTP/1.1\r\n" + h + "\r\n", error::bad_target},
      {"scheme with '_'", "GET h_t://h/ HTTP/1.1\r\n" + h + "\r\n", error::bad_target},
      {"asterisk-form for GET", "GET * HTTP/1.1\r\n" + h + "\r\n", error::bad_target},
      {"CONNECT without a port", "CONNECT h.example HTTP/1.1\r\n" + h + "\r\n", error::bad_target},
      {"CONNECT with a path", "CONNECT h.example:443/x HTTP/1.1\r\n" + h + "\r\n", error::bad_target},
      {"CONNECT with no host", "CONNECT :443 HTTP/1.1\r\n" + h + "\r\n", error::bad_target},
      {"CONNECT in origin-form", "CONNECT / HTTP/1.1\r\n" + h + "\r\n", error::bad_target},
      {"CONNECT in absolute-form", "CONNECT http://h:443/ HTTP/1.1\r\n" + h + "\r\n", error::bad_target},
      {"bare CR in request line", "GET / HTTP/1.1\rHost: h\r\n\r\n", error::bad_line_ending},
      {"HTTP/2.0", "GET / HTTP/2.0\r\n" + h + "\r\n", error::unsupported_version},
      {"HTTP/1.2", "GET / HTTP/1.2\r\n" + h + "\r\n", error::unsupported_version},
      {"HTTP/0.9", "GET / HTTP/0.9\r\n" + h + "\r\n", error::unsupported_version},
      // limits
      {"target over 8 KiB", "GET /" + std::string(8 * 1024, 'a') + " HTTP/1.1\r\n" + h + "\r\n", error::target_too_long},
      // found before the request line ends (the check of an incomplete line goes on from where the last one stopped)
      {"an invalid method, unfinished", "GET" + std::string(100, 'T') + "(", error::bad_method},
      {"a control in a target, unfinished", "GET /" + std::string(100, 'a') + "\x01", error::bad_target},
      {"a target over 8 KiB, unfinished", "GET /" + std::string(8 * 1024, 'a'), error::target_too_long},
      {"a bad version, unfinished", "GET /" + std::string(100, 'a') + " HTTQ", error::bad_version},
      {"header over 16 KiB", "GET / HTTP/1.1\r\n" + h + "X-A: " + std::string(16 * 1024, 'a') + "\r\n\r\n",
       error::header_too_large},
      {"body over 1 MiB (Content-Length)", "POST / HTTP/1.1\r\n" + h + "Content-Length: 1048577\r\n\r\nx",
       error::body_too_large},
      {"body over 1 MiB (chunked)", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n100001\r\n", error::body_too_large},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    const outcome r = parse_all_splits(c.input);
    CHECK(r.ec == c.expected);
  }

  SECTION("more than 100 fields") {
    std::string many = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (int i = 0; i < 100; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
    CHECK(parse_all_splits(many + "\r\n").ec == error::too_many_fields);
  }
  SECTION("chunked bodies add up against the limit") {
    parser_limits small{.max_body = 10};
    std::string in = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\naaaaaa\r\n6\r\nbbbbbb\r\n0\r\n\r\n";
    CHECK(parse_all_splits(in, small).ec == error::body_too_large);
  }
  SECTION("a connection closed mid-message") {
    CHECK(parse_all_splits("GET / HTTP/1.1\r\nHost:").ec == error::partial_message);
    CHECK(parse_all_splits("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nabc").ec == error::partial_message);
  }
}

TEST_CASE("request parser: errors map to statuses", "[http][parser]") {
  CHECK(status_for(error::content_length_and_transfer_encoding) == status::bad_request);
  CHECK(status_for(error::unsupported_transfer_encoding) == status::not_implemented);
  CHECK(status_for(error::unsupported_version) == status::http_version_not_supported);
  CHECK(status_for(error::target_too_long) == status::uri_too_long);
  CHECK(status_for(error::header_too_large) == status::request_header_fields_too_large);
  CHECK(status_for(error::too_many_fields) == status::request_header_fields_too_large);
  CHECK(status_for(error::body_too_large) == status::payload_too_large);
  CHECK(status_for(error::bad_host) == status::bad_request);
}

TEST_CASE("request parser: per-message body limit", "[http][parser]") {
  request_parser p(parser_limits{.max_body = 4});
  std::error_code ec;
  std::string in = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\n12345678";
  const std::size_t n = p.put(in, ec);
  REQUIRE(p.header_done());
  p.set_body_limit(8);  // as a route with a larger limit would
  p.put(std::string_view(in).substr(n), ec);
  CHECK_FALSE(ec);
  CHECK(p.done());
  p.reset();
  CHECK(p.body_limit() == 4);
}

TEST_CASE("request parser: a per-message body limit ends with its message for chunked bodies too", "[http][parser]") {
  request_parser p;
  std::error_code ec;
  const std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string in = head + "3\r\nabc\r\n0\r\n\r\n";
  std::size_t n = p.put(in, ec);
  REQUIRE(p.header_done());
  p.set_body_limit(4);  // as a route with a small limit would
  in.erase(0, n);
  while (!ec && !p.done() && (n = p.put(in, ec)) > 0) in.erase(0, n);
  REQUIRE_FALSE(ec);
  REQUIRE(p.done());
  p.reset();
  CHECK(p.body_limit() == parser_limits{}.max_body);
  // The next message on the connection, for a route without a limit of its own: 10 bytes are within the default.
  in = head + "a\r\n0123456789\r\n0\r\n\r\n";
  while (!ec && !p.done() && (n = p.put(in, ec)) > 0) in.erase(0, n);
  CHECK_FALSE(ec);
  CHECK(p.done());
  CHECK(p.body_received() == 10);
}

namespace {

// What a chunked decoder made of a body: the bytes it delivered and how it ended.
struct chunked_outcome {
  std::string body;
  std::error_code ec;
  bool done = false;
};

// Feeds `input` to a chunked decoder in pieces ending at `cuts` (ascending) and at the end, the way a connection
// does: unconsumed bytes are kept and presented again with the next piece after them.
chunked_outcome decode_chunked(std::string_view input, const std::vector<std::size_t>& cuts, chunked_limits limits) {
  chunked_decoder d(limits);
  chunked_outcome out;
  std::string buffer;
  std::size_t fed = 0;
  for (std::size_t i = 0; i <= cuts.size() && !out.done; ++i) {
    const std::size_t to = i < cuts.size() ? cuts[i] : input.size();
    buffer.append(input.substr(fed, to - fed));
    fed = to;
    for (;;) {
      std::string_view piece;
      const std::size_t consumed = d.decode(buffer, piece, out.ec);
      if (out.ec) return out;
      out.body.append(piece);
      buffer.erase(0, consumed);
      out.done = d.done();
      if (out.done || consumed == 0) break;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("chunked decoder: chunk lines give the same verdict at every split and byte by byte", "[http][parser]") {
  // A short line limit, so that lines over it, and bad bytes just inside or outside it, are cheap to split.
  const chunked_limits limits{.max_chunk_line = 24, .max_body = 64};
  const std::string name20(20, 'n'), name21(21, 'n');
  struct body_case {
    std::string input;
    std::error_code expected;  // none: the body ends, with `body`
    std::string body;
  };
  const std::vector<body_case> cases = {
      // Accepted chunk lines (RFC 9112 §7.1, §7.1.1).
      {"5\r\nhello\r\n0\r\n\r\n", {}, "hello"},
      {"0003\r\nabc\r\nA\r\n0123456789\r\n000\r\n\r\n", {}, "abc0123456789"},
      {"3;a;b=c;d=\"e\"\r\nabc\r\n0;x\r\n\r\n", {}, "abc"},
      {"3 ; a = b\t;\tc\t=\t\"\"\r\nabc\r\n0\r\n\r\n", {}, "abc"},
      {"3;a=\"q\\\"d\\\\ \\\t;=\xff\"\r\nabc\r\n0\r\n\r\n", {}, "abc"},
      {"1;" + name20 + "\r\nx\r\n0\r\nT: v\r\n\r\n", {}, "x"},  // exactly max_chunk_line
      {"1;a=!#$%&'*+-.^_`|~09\r\nx\r\n0\r\n\r\n", {}, "x"},
      // Malformed sizes.
      {"\r\n", error::bad_chunk, ""},
      {"zz\r\n", error::bad_chunk, ""},
      {"1g\r\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"-1\r\n", error::bad_chunk, ""},
      {"1\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"1\rx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"1ffffffffffffffff\r\n", error::chunk_size_overflow, ""},
      {"10000000000000000;a\r\n", error::chunk_size_overflow, ""},
      {"0000000010000000000000000\r\n", error::chunk_line_too_long, ""},  // the overflow is past the limit
      // BWS where the grammar has none, and malformed extensions.
      {"1 \r\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"1\t\r\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"1;a \r\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"1;a=b \r\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"1;a=\"b\" \r\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"1;a b\r\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"1;\r\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"1;=x\r\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"1;a=\r\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"1;a==b\r\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"1;a=b=c\r\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"1;a=b\"c\"\r\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"1;a=\"b\"c\r\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"1;a=\"x\r\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"1;a=\"\\\x01\"\r\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"1;a=\"\x7f\"\r\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"1;a=\"\\\r\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"1;a\x01\r\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      // A bad line after good chunks.
      {"2;a=\"\\\"\"\r\nxy\r\n1;b=\"\\\x7f\"\r\nz\r\n0\r\n\r\n", error::bad_chunk, "xy"},
      // Over-long lines: the LF just past the limit, a bad byte just past it and just inside it, BWS and then the CR
      // past it, an unterminated quote.
      {"1;" + name21 + "\r\nx\r\n0\r\n\r\n", error::chunk_line_too_long, ""},
      {"1;" + name21 + "n@\r\nx\r\n0\r\n\r\n", error::chunk_line_too_long, ""},
      {"1;" + name21 + "@\r\nx\r\n0\r\n\r\n", error::bad_chunk, ""},
      {"1;" + name21 + " \r\nx\r\n0\r\n\r\n", error::chunk_line_too_long, ""},
      {"1;a=\"" + std::string(40, 'q') + "\"\r\nx\r\n0\r\n\r\n", error::chunk_line_too_long, ""},
      // Sizes over the body limit, alone and added up.
      {"41\r\n", error::body_too_large, ""},
      {"30;a=b\r\n" + std::string(48, 'x') + "\r\n11;c=\"d\"\r\n", error::body_too_large, std::string(48, 'x')},
  };
  for (const auto& c : cases) {
    INFO("input: " << c.input);
    const chunked_outcome whole = decode_chunked(c.input, {}, limits);
    CHECK(whole.ec == c.expected);
    CHECK(whole.done == !c.expected);
    CHECK(whole.body == c.body);
    std::vector<std::size_t> every_byte;
    for (std::size_t cut = 1; cut < c.input.size(); ++cut) {
      INFO("split at " << cut);
      const chunked_outcome split = decode_chunked(c.input, {cut}, limits);
      CHECK(split.ec == whole.ec);
      CHECK(split.done == whole.done);
      CHECK(split.body == whole.body);
      every_byte.push_back(cut);
    }
    const chunked_outcome by_byte = decode_chunked(c.input, every_byte, limits);
    CHECK(by_byte.ec == whole.ec);
    CHECK(by_byte.done == whole.done);
    CHECK(by_byte.body == whole.body);
  }
}

TEST_CASE("parsers: body_received counts the body bytes delivered", "[http][parser]") {
  request_parser p;
  std::error_code ec;
  std::string in = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n0123456789";
  std::size_t n = p.put(in, ec);
  REQUIRE(p.header_done());
  in.erase(0, n);
  std::string body;
  while (!ec && (n = p.put(in, ec)) > 0) {
    body.append(p.body_piece());
    in.erase(0, n);
  }
  REQUIRE_FALSE(ec);
  CHECK(body == "0123456789");
  CHECK(p.body_received() == 10);  // not the 1000 that the chunk's size line announced
}

TEST_CASE("response parser: a body to the end of the connection over the limit", "[http][parser]") {
  // Whatever the split, the body is delivered up to the limit, then the error: the same bytes reach the caller.
  const std::string input = "HTTP/1.0 200 OK\r\n\r\n0123456789";
  for (std::size_t step : {std::size_t{0}, std::size_t{1}, std::size_t{5}}) {
    INFO("fed " << step << " bytes at a time (0: whole)");
    response_parser p(parser_limits{.max_body = 4});
    std::error_code ec;
    std::string buffer, body;
    for (std::size_t fed = 0; fed < input.size() && !ec;) {
      const std::size_t k = step == 0 ? input.size() : std::min(step, input.size() - fed);
      buffer.append(input, fed, k);
      fed += k;
      std::size_t n;
      while (!ec && (n = p.put(buffer, ec)) > 0) {
        body.append(p.body_piece());
        buffer.erase(0, n);
      }
    }
    CHECK(ec == error::body_too_large);
    CHECK(body == "0123");
  }
}

TEST_CASE("response parser", "[http][parser]") {
  SECTION("Content-Length and chunked responses, pipelined") {
    auto r = parse_all_splits<response_parser>(
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
        "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.messages.size() == 2);
    CHECK(r.messages[0].status == 200);
    CHECK(r.messages[0].reason == "OK");
    CHECK(r.messages[0].body == "hello");
    CHECK(r.messages[1].status == 201);
    CHECK(r.messages[1].body == "abc");
  }
  SECTION("no body for 1xx, 204, 304 whatever the fields say") {
    auto r = parse_all_splits<response_parser>(
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n");
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.messages.size() == 3);
    for (const auto& m : r.messages) CHECK(m.body.empty());
  }
  SECTION("no body for a response to HEAD") {
    auto r = parse_all_splits<response_parser>("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", {}, true);
    REQUIRE_FALSE(r.ec);
    CHECK(r.messages.size() == 1);
  }
  SECTION("a body without length ends at EOF and ends the connection") {
    auto r = parse_all_splits<response_parser>("HTTP/1.0 200 OK\r\n\r\nuntil the end");
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.messages.size() == 1);
    CHECK(r.messages[0].body == "until the end");
    CHECK_FALSE(r.messages[0].keep_alive);
  }
  SECTION("an empty reason phrase") {
    auto r = parse_all_splits<response_parser>("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n");
    REQUIRE_FALSE(r.ec);
    CHECK(r.messages[0].status == 404);
    CHECK(r.messages[0].reason.empty());
  }
  SECTION("a long reason phrase, checked in the new bytes only when it arrives in pieces") {
    const std::string reason(3000, 'r');
    auto r = parse_all_splits<response_parser>("HTTP/1.1 200 " + reason + " \tend\r\nContent-Length: 0\r\n\r\n");
    REQUIRE_FALSE(r.ec);
    CHECK(r.messages[0].reason == reason + " \tend");
    CHECK(parse_all_splits<response_parser>("HTTP/1.1 200 " + reason + "\x01\r\n\r\n").ec == error::bad_status_line);
    CHECK(parse_all_splits<response_parser>("HTTP/1.1 200 " + reason + "\rx\r\n\r\n").ec == error::bad_line_ending);
    CHECK(parse_all_splits<response_parser>("HTTP/1.1 200 " + reason + "\nx\r\n\r\n").ec == error::bad_line_ending);
  }
  SECTION("malformed status lines") {
    CHECK(parse_all_splits<response_parser>("HTTP/1.1 20 OK\r\n\r\n").ec == error::bad_status_line);
    CHECK(parse_all_splits<response_parser>("HTTP/1.1 099 X\r\n\r\n").ec == error::bad_status_line);
    CHECK(parse_all_splits<response_parser>("HTTX/1.1 200 OK\r\n\r\n").ec == error::bad_status_line);
    CHECK(parse_all_splits<response_parser>("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").ec ==
          error::conflicting_content_length);
  }
}
