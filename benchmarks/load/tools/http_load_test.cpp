// Tests of http_load's parts: the response framing (response_parser.hpp), as conformance tables fed whole and
// split at every byte (every split must give the same responses or the same error), the latency histogram
// (latency_histogram.hpp), and the request it sends (http_request.hpp).
#include "http_request.hpp"
#include "latency_histogram.hpp"
#include "response_parser.hpp"

#include "support/catch.hpp"

#include <cstdint>
#include <string>
#include <vector>

using namespace std::string_literals;
using http_load::latency_histogram;
using http_load::parse_error;
using http_load::response_parser;

namespace {

struct response {
  int status = 0;
  bool keep_alive = false;
  std::string body;
  bool operator==(const response&) const = default;
};

struct outcome {
  std::vector<response> responses;
  parse_error error = parse_error::none;
  bool operator==(const outcome&) const = default;
};

// Feeds `wire` in the pieces that `cuts` (increasing offsets) delimit, as http_load does: the unconsumed rest
// is presented again with the next piece after it. With `close`, the server closes after the last byte.
outcome feed(std::string_view wire, const std::vector<std::size_t>& cuts, bool close) {
  response_parser parser;
  outcome out;
  std::string pending, body;
  std::size_t from = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(wire.size());
  for (const std::size_t to : ends) {
    pending.append(wire.substr(from, to - from));
    from = to;
    for (;;) {
      const auto step = parser.parse(pending, &body);
      pending.erase(0, step.consumed);
      if (step.error != parse_error::none) {
        out.error = step.error;
        return out;
      }
      if (!step.complete) break;
      out.responses.push_back({parser.status(), parser.keep_alive(), body});
      body.clear();
    }
  }
  if (close && parser.finish_at_close()) out.responses.push_back({parser.status(), parser.keep_alive(), body});
  return out;
}

// The outcome of `wire` fed whole, after checking that every split in two, and byte by byte, gives the same.
outcome parse(std::string_view wire, bool close = false) {
  const outcome whole = feed(wire, {}, close);
  for (std::size_t cut = 1; cut < wire.size(); ++cut) {
    INFO("split at byte " << cut);
    REQUIRE(feed(wire, {cut}, close) == whole);
  }
  std::vector<std::size_t> every;
  for (std::size_t cut = 1; cut < wire.size(); ++cut) every.push_back(cut);
  INFO("byte by byte");
  REQUIRE(feed(wire, every, close) == whole);
  return whole;
}

outcome ok(std::vector<response> responses) { return {std::move(responses), parse_error::none}; }
outcome failed(parse_error e, std::vector<response> before = {}) { return {std::move(before), e}; }

}  // namespace

TEST_CASE("response parser: valid responses", "[load][response_parser]") {
  struct row {
    const char* name;
    std::string wire;
    bool close;
    outcome expected;
  };
  const std::vector<row> table = {
      {"Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello", false,
       ok({{200, true, "hello"}})},
      {"pipelined responses", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabHTTP/1.1 404 Not Found\r\n"
       "Content-Length: 3\r\n\r\ncdeHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false,
       ok({{200, true, "ab"}, {404, true, "cde"}, {200, true, ""}})},
      {"field names in any case, OWS around values", "HTTP/1.1 200 OK\r\ncontent-LENGTH:\t 3 \r\n\r\nabc", false,
       ok({{200, true, "abc"}})},
      {"a list of identical Content-Length values", "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc", false,
       ok({{200, true, "abc"}})},
      {"chunked, with an extension and a trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5;name=value\r\nhello\r\n6 ; x\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Checksum: 1\r\n\r\n", false,
       ok({{200, true, "hello world0123456789"}})},
      {"chunked last among codings, over Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n"
       "Transfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false,
       ok({{200, true, "abc"}})},
      {"Connection: close", "HTTP/1.1 200 OK\r\nConnection: foo, close\r\nContent-Length: 1\r\n\r\nx", false,
       ok({{200, false, "x"}})},
      {"HTTP/1.0 closes by default", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", false,
       ok({{200, false, "x"}})},
      {"HTTP/1.0 with keep-alive", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx",
       false, ok({{200, true, "x"}})},
      {"204 and 304 have no body", "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\n"
       "Content-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz", false,
       ok({{204, true, ""}, {304, true, ""}, {200, true, "z"}})},
      {"interim responses are skipped", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
       "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false, ok({{200, true, "ok"}})},
      {"a body delimited by the close", "HTTP/1.1 200 OK\r\nServer: x\r\n\r\nuntil the end", true,
       ok({{200, false, "until the end"}})},
      {"a transfer coding other than chunked last: until the close", "HTTP/1.1 200 OK\r\n"
       "Transfer-Encoding: chunked, gzip\r\n\r\nraw", true, ok({{200, false, "raw"}})},
      {"a close-delimited body is not complete before the close", "HTTP/1.1 200 OK\r\n\r\nabc", false, ok({})},
      {"bare LF line ends", "HTTP/1.1 200 OK\nContent-Length: 2\n\nhi", false, ok({{200, true, "hi"}})},
      {"no reason phrase", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\nHTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n",
       false, ok({{200, true, ""}, {500, true, ""}})},
      {"a close between responses ends nothing", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", true,
       ok({{200, true, "x"}})},
      {"a close in the middle of a body ends nothing", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", true,
       ok({})},
      {"a line of the longest length", "HTTP/1.1 200 OK\r\nX: " + std::string(response_parser::max_line_bytes - 3, 'a') +
       "\r\nContent-Length: 0\r\n\r\n", false, ok({{200, true, ""}})},
  };
  for (const row& r : table) {
    SECTION(r.name) { CHECK(parse(r.wire, r.close) == r.expected); }
  }
}

TEST_CASE("response parser: invalid responses", "[load][response_parser]") {
  struct row {
    const char* name;
    std::string wire;
    outcome expected;
  };
  const std::string ok_response = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
  const std::vector<row> table = {
      {"not HTTP/1.x", "HTTP/2 200 OK\r\n\r\n", failed(parse_error::bad_status_line)},
      {"four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", failed(parse_error::bad_status_line)},
      {"letters in the status", "HTTP/1.1 2x0 OK\r\n\r\n", failed(parse_error::bad_status_line)},
      {"status below 100", "HTTP/1.1 099 Low\r\n\r\n", failed(parse_error::bad_status_line)},
      {"garbage after a response", ok_response + "hello\r\n", failed(parse_error::bad_status_line, {{200, true, "x"}})},
      {"a field without a colon", "HTTP/1.1 200 OK\r\nContent-Length 1\r\n\r\nx", failed(parse_error::bad_field)},
      {"space before the colon", "HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\nx", failed(parse_error::bad_field)},
      {"an empty field name", "HTTP/1.1 200 OK\r\n: 1\r\n\r\nx", failed(parse_error::bad_field)},
      {"a folded field", "HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\n\r\n", failed(parse_error::bad_field)},
      {"Content-Length not a number", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nx",
       failed(parse_error::bad_content_length)},
      {"negative Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
       failed(parse_error::bad_content_length)},
      {"empty Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", failed(parse_error::bad_content_length)},
      {"huge Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
       failed(parse_error::bad_content_length)},
      {"two different Content-Length fields", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
       failed(parse_error::bad_content_length)},
      {"a list of different Content-Length values", "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nx",
       failed(parse_error::bad_content_length)},
      {"chunk size not hex", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
       failed(parse_error::bad_chunk)},
      {"empty chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", failed(parse_error::bad_chunk)},
      {"junk after the chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n",
       failed(parse_error::bad_chunk)},
      {"huge chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
       failed(parse_error::bad_chunk)},
      {"no CRLF after chunk data", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n",
       failed(parse_error::bad_chunk)},
      {"a status line too long", "HTTP/1.1 200 " + std::string(response_parser::max_line_bytes, 'r') + "\r\n\r\n",
       failed(parse_error::line_too_long)},
      {"a field line one byte too long", "HTTP/1.1 200 OK\r\nX: " +
       std::string(response_parser::max_line_bytes - 2, 'a') + "\r\n\r\n", failed(parse_error::line_too_long)},
      {"a field line too long, with a bare LF", "HTTP/1.1 200 OK\r\nX: " +
       std::string(response_parser::max_line_bytes - 2, 'a') + "\n\n", failed(parse_error::line_too_long)},
      {"a header section too large", "HTTP/1.1 200 OK\r\n" + [] {
         std::string fields;
         for (int i = 0; i < 9; ++i) fields += "X-" + std::to_string(i) + ": " + std::string(8000, 'v') + "\r\n";
         return fields;
       }() + "\r\n", failed(parse_error::header_too_large)},
      {"101 Switching Protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
       failed(parse_error::upgrade)},
  };
  for (const row& r : table) {
    SECTION(r.name) { CHECK(parse(r.wire) == r.expected); }
  }
}

TEST_CASE("response parser: without a body sink", "[load][response_parser]") {
  response_parser parser;
  const std::string wire = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\n";
  const auto first = parser.parse(wire);
  CHECK(first.complete);
  CHECK(first.consumed == wire.find("abc") + 3);
  CHECK(parser.status() == 200);
  const auto second = parser.parse(std::string_view(wire).substr(first.consumed));
  CHECK_FALSE(second.complete);
  CHECK(second.error == parse_error::none);
  CHECK(second.consumed == wire.size() - first.consumed);
}

TEST_CASE("latency histogram", "[load][latency_histogram]") {
  latency_histogram h;
  SECTION("empty") {
    CHECK(h.count() == 0);
    CHECK(h.max() == 0);
    CHECK(h.percentile(0.5) == 0);
  }
  SECTION("values below 256 are exact") {
    for (std::uint64_t v = 1; v <= 200; ++v) h.record(v);
    CHECK(h.count() == 200);
    CHECK(h.percentile(0.5) == 100);
    CHECK(h.percentile(0.99) == 198);
    CHECK(h.percentile(1.0) == 200);
    CHECK(h.percentile(0.0) == 1);
    CHECK(h.max() == 200);
  }
  SECTION("large values within 0.4%, never above the maximum") {
    const std::vector<std::uint64_t> values = {257, 1000, 123457, 999'999'999, 1ull << 40, (1ull << 62) + 12345};
    for (const std::uint64_t v : values) {
      latency_histogram one;
      one.record(v);
      one.record(v / 2 + 1);
      const auto p = static_cast<double>(one.percentile(1.0));
      INFO("value " << v);
      CHECK(p <= static_cast<double>(v));
      CHECK(p >= static_cast<double>(v) * (1 - 1.0 / 128));
      const auto half = static_cast<double>(one.percentile(0.5));
      CHECK(half >= static_cast<double>(v / 2 + 1) * (1 - 1.0 / 256));
      CHECK(half <= static_cast<double>(v / 2 + 1) * (1 + 1.0 / 256));
    }
  }
  SECTION("the largest value has a bucket") {
    h.record(~std::uint64_t{0});
    CHECK(h.max() == ~std::uint64_t{0});
    CHECK(h.percentile(0.5) >= ~std::uint64_t{0} - (~std::uint64_t{0} >> 7));
  }
  SECTION("percentiles split the samples at the right rank") {
    for (int i = 0; i < 90; ++i) h.record(100'000);
    for (int i = 0; i < 10; ++i) h.record(5'000'000);
    CHECK(h.percentile(0.90) < 101'000);
    CHECK(h.percentile(0.91) > 4'900'000);
  }
  SECTION("merge adds counts and keeps the larger maximum") {
    latency_histogram other;
    for (int i = 0; i < 3; ++i) h.record(10);
    other.record(20);
    other.record(1'000'000);
    h.merge(other);
    CHECK(h.count() == 5);
    CHECK(h.max() == 1'000'000);
    CHECK(h.percentile(0.6) == 10);
    CHECK(h.percentile(0.8) == 20);
  }
}

TEST_CASE("request: the bytes sent", "[load][http_request]") {
  using http_load::build_request;
  using http_load::request_spec;
  SECTION("GET without a body: the request line, Host and nothing else, as before --method existed") {
    CHECK(build_request({.method = "GET", .target = "/plaintext", .host = "127.0.0.1:8080"}) ==
          "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
  }
  SECTION("POST with a JSON body: Content-Type and Content-Length, then the body") {
    const std::string body = R"({"kind":"primes","limit":1000})";
    CHECK(build_request({.method = "POST", .target = "/jobs?wait=5", .host = "h:1", .content_type = "application/json",
                         .body = body, .has_body = true}) ==
          "POST /jobs?wait=5 HTTP/1.1\r\nHost: h:1\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n" +
              body);
  }
  SECTION("POST, PUT and PATCH without a body say Content-Length: 0; other methods say nothing") {
    for (const char* method : {"POST", "PUT", "PATCH"}) {
      INFO(method);
      CHECK(build_request({.method = method, .target = "/x", .host = "h:1"}) ==
            std::string(method) + " /x HTTP/1.1\r\nHost: h:1\r\nContent-Length: 0\r\n\r\n");
    }
    CHECK(build_request({.method = "DELETE", .target = "/x", .host = "h:1"}) == "DELETE /x HTTP/1.1\r\nHost: h:1\r\n\r\n");
  }
  SECTION("an empty body given explicitly is announced") {
    CHECK(build_request({.method = "GET", .target = "/x", .host = "h:1", .has_body = true}) ==
          "GET /x HTTP/1.1\r\nHost: h:1\r\nContent-Length: 0\r\n\r\n");
  }
  SECTION("a body with line breaks and NUL bytes goes out as is, counted in bytes") {
    const std::string body = "a\r\n\0b"s;
    const std::string request = build_request({.method = "PUT", .target = "/x", .host = "h:1", .body = body, .has_body = true});
    CHECK(request.ends_with("Content-Length: 5\r\n\r\n" + body));
  }
}

TEST_CASE("request: methods and field values http_load refuses", "[load][http_request]") {
  using http_load::method_problem;
  for (const char* method : {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "X-CUSTOM!"}) {
    INFO(method);
    CHECK(method_problem(method).empty());
  }
  for (const char* method : {"", "G ET", "GET\r\n", "P(OST)", "HEAD", "CONNECT"}) {
    INFO(method);
    CHECK_FALSE(method_problem(method).empty());
  }
  CHECK(http_load::is_field_value("application/json; charset=utf-8\tx"));
  CHECK_FALSE(http_load::is_field_value("text/plain\r\nX-Injected: 1"));
  CHECK_FALSE(http_load::is_field_value("a\x7f"));
}

TEST_CASE("request: which statuses count as successes", "[load][http_request]") {
  for (const int status : {200, 201, 202, 204, 299}) {
    INFO(status);
    CHECK(http_load::is_success(status));
  }
  for (const int status : {100, 199, 300, 303, 404, 429, 503}) {
    INFO(status);
    CHECK_FALSE(http_load::is_success(status));
  }
}
