// The opening handshake helpers: key validation, the accept value (RFC 6455 §1.3 sample), client keys,
// subprotocol lists and selection, and the Origin check (same-origin and the allow-list).
#include <switchboard/ws/handshake.hpp>

#include "support/catch.hpp"

#include <set>
#include <string>
#include <vector>

using namespace switchboard::ws;

TEST_CASE("handshake: Sec-WebSocket-Key", "[ws][handshake]") {
  SECTION("valid keys: 16 bytes in canonical base64") {
    for (const char* key : {"dGhlIHNhbXBsZSBub25jZQ==", "AAAAAAAAAAAAAAAAAAAAAA==", "/////////////////////w==",
                            "x3JJHMbDL1EzLkh9GBhXDw=="}) {
      INFO(key);
      CHECK_FALSE(check_client_key(key));
    }
  }
  SECTION("invalid keys") {
    for (const char* key : {
             "",                              // empty
             "dGhlIHNhbXBsZSBub25jZQ",        // padding missing
             "dGhlIHNhbXBsZSBub25jZQ=",       // one '=' only
             "dGhlIHNhbXBsZSBub25jZQ===",     // too long
             "dGhlIHNhbXBsZSBub25jZXg=",      // 17 bytes
             "dGhlIHNhbXBsZSBub25j",          // 15 bytes, unpadded
             "dGhlIHNhbXBsZSBub25jZR==",      // non-canonical: low bits of the last digit set
             "dGhlIHNhbXBsZSBub25jZ?==",      // not base64
             "dGhlIHNhbXBsZS Bub25jZQ==",     // space inside
             " dGhlIHNhbXBsZSBub25jZQ==",     // surrounding whitespace belongs to the HTTP layer
             "dGhlIHNhbXBsZSBub25jZQ-_",      // base64url is not base64
         }) {
      INFO(key);
      CHECK(check_client_key(key) == error::invalid_key);
    }
  }
}

TEST_CASE("handshake: Sec-WebSocket-Accept", "[ws][handshake]") {
  CHECK(accept_value("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  CHECK_FALSE(check_accept("dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
  CHECK(check_accept("dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOp=") == error::invalid_accept);
  CHECK(check_accept("dGhlIHNhbXBsZSBub25jZQ==", "") == error::invalid_accept);
  CHECK(check_accept("AAAAAAAAAAAAAAAAAAAAAA==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == error::invalid_accept);
}

TEST_CASE("handshake: client keys are valid and fresh", "[ws][handshake]") {
  std::set<std::string> keys;
  for (int i = 0; i < 100; ++i) {
    const std::string key = make_client_key();
    CHECK_FALSE(check_client_key(key));
    keys.insert(key);
  }
  CHECK(keys.size() == 100);  // 128-bit random nonces do not repeat
}

TEST_CASE("handshake: subprotocols", "[ws][handshake]") {
  std::vector<std::string_view> list;
  SECTION("lists parse with optional whitespace and empty elements") {
    CHECK_FALSE(parse_subprotocols("chat", list));
    CHECK(list == std::vector<std::string_view>{"chat"});
    CHECK_FALSE(parse_subprotocols("chat, superchat ,v2.json", list));
    CHECK(list == std::vector<std::string_view>{"chat", "superchat", "v2.json"});
    CHECK_FALSE(parse_subprotocols(" , chat,,\tmqtt ,", list));
    CHECK(list == std::vector<std::string_view>{"chat", "mqtt"});
  }
  SECTION("malformed lists") {
    for (const char* header : {"", " ", ",", "chat superchat", "chat;v=1", "\"chat\"", "chat/1", "chät"}) {
      INFO(header);
      CHECK(parse_subprotocols(header, list) == error::invalid_header_syntax);
    }
  }
  SECTION("the server picks by its own preference; names compare exactly") {
    const std::vector<std::string_view> offered = {"chat", "mqtt", "wamp"};
    const std::vector<std::string_view> supported = {"wamp", "mqtt"};
    CHECK(select_subprotocol(offered, supported) == "wamp");
    const std::vector<std::string_view> none = {"graphql-ws"};
    CHECK_FALSE(select_subprotocol(offered, none));
    const std::vector<std::string_view> other_case = {"CHAT"};
    CHECK_FALSE(select_subprotocol(offered, other_case));
  }
  SECTION("the client checks the answer") {
    const std::vector<std::string_view> requested = {"chat", "mqtt"};
    CHECK_FALSE(check_subprotocol(requested, ""));
    CHECK_FALSE(check_subprotocol(requested, "mqtt"));
    CHECK(check_subprotocol(requested, "wamp") == error::unexpected_subprotocol);
    CHECK(check_subprotocol(requested, "chat, mqtt") == error::unexpected_subprotocol);
  }
}

TEST_CASE("handshake: Origin", "[ws][handshake]") {
  const origin_options defaults{};
  SECTION("same origin by default") {
    CHECK(origin_allowed("http://example.com", "example.com", false, defaults));
    CHECK(origin_allowed("https://example.com", "example.com", true, defaults));
    CHECK(origin_allowed("https://Example.COM:443", "example.com", true, defaults));
    CHECK(origin_allowed("http://example.com:8080", "EXAMPLE.com:8080", false, defaults));
    CHECK(origin_allowed("http://[::1]:8080", "[::1]:8080", false, defaults));
    CHECK(origin_allowed("http://127.0.0.1", "127.0.0.1:80", false, defaults));
  }
  SECTION("cross-origin and malformed origins are refused") {
    CHECK_FALSE(origin_allowed("https://evil.example", "example.com", true, defaults));
    CHECK_FALSE(origin_allowed("http://example.com", "example.com", true, defaults));      // scheme differs
    CHECK_FALSE(origin_allowed("https://example.com:8443", "example.com", true, defaults)); // port differs
    CHECK_FALSE(origin_allowed("http://example.com:8080", "example.com", false, defaults));
    CHECK_FALSE(origin_allowed("http://example.com.evil.example", "example.com", false, defaults));
    CHECK_FALSE(origin_allowed("null", "example.com", false, defaults));
    CHECK_FALSE(origin_allowed("http://example.com/", "example.com", false, defaults));   // a path is not an origin
    CHECK_FALSE(origin_allowed("http://example.com http://a.example", "example.com", false, defaults));
    CHECK_FALSE(origin_allowed("http://example.com:99999", "example.com", false, defaults));
    CHECK_FALSE(origin_allowed("example.com", "example.com", false, defaults));
    CHECK_FALSE(origin_allowed("http://example.com", "example.com:", false, defaults));     // malformed Host
  }
  SECTION("a missing Origin is a non-browser client: allowed unless configured otherwise") {
    CHECK(origin_allowed(std::nullopt, "example.com", false, defaults));
    CHECK_FALSE(origin_allowed(std::nullopt, "example.com", false, {.allow_missing = false}));
  }
  SECTION("the allow-list") {
    const origin_options o{.allow_same_origin = false,
                           .allowed = {"https://app.example.com", "http://localhost:3000", "not an origin"}};
    CHECK(origin_allowed("https://app.example.com", "api.example.com", true, o));
    CHECK(origin_allowed("https://APP.example.com:443", "api.example.com", true, o));
    CHECK(origin_allowed("http://localhost:3000", "api.example.com", true, o));
    CHECK_FALSE(origin_allowed("http://localhost:3001", "api.example.com", true, o));
    CHECK_FALSE(origin_allowed("http://app.example.com", "api.example.com", true, o));
    CHECK_FALSE(origin_allowed("https://api.example.com", "api.example.com", true, o));  // same origin turned off
    CHECK_FALSE(origin_allowed("not an origin", "api.example.com", true, o));
  }
  SECTION("\"*\" allows every origin") {
    const origin_options any{.allowed = {"*"}};
    CHECK(origin_allowed("https://anything.example", "example.com", false, any));
    CHECK(origin_allowed("null", "example.com", false, any));
  }
}
