// The client key of per-client limits: the peer address's bytes by default, a function when one is given.
#include <switchboard/http/client_key.hpp>

#include "support/catch.hpp"

using namespace switchboard;

namespace {
http::request from(const char* address, std::uint16_t port = 40000) {
  http::request req;
  req.set_remote_endpoint({asio::ip::make_address(address), port}, false);
  return req;
}
}  // namespace

TEST_CASE("the peer's address is the default client key, as its bytes", "[http][client_key]") {
  CHECK(http::peer_address_key(from("127.0.0.1")) == std::string("\x7f\x00\x00\x01", 4));
  CHECK(http::peer_address_key(from("2001:db8::1")) == std::string("\x20\x01\x0d\xb8\0\0\0\0", 8));
  // The port is not part of it: two connections of one host are one client.
  CHECK(http::peer_address_key(from("127.0.0.1", 40001)) == http::peer_address_key(from("127.0.0.1")));
  CHECK(http::peer_address_key(from("127.0.0.2")) != http::peer_address_key(from("127.0.0.1")));

  CHECK(http::client_key({}, from("10.0.0.7")) == http::peer_address_key(from("10.0.0.7")));
  const http::client_key_function by_header = [](const http::request&) { return std::string("ann"); };
  CHECK(http::client_key(by_header, from("10.0.0.7")) == "ann");
}

TEST_CASE("an IPv6 client is keyed by its /64 so that changing addresses within it does not make a new client",
          "[http][client_key]") {
  CHECK(http::peer_address_key(from("2001:db8:1:2::1")) == http::peer_address_key(from("2001:db8:1:2:ffff:1:2:3")));
  CHECK(http::peer_address_key(from("2001:db8:1:2::1")) != http::peer_address_key(from("2001:db8:1:3::1")));
  CHECK(http::peer_address_key(from("::1")) == std::string(8, '\0'));
}

TEST_CASE("an IPv4-mapped IPv6 peer has the key of its IPv4 address", "[http][client_key]") {
  // A dual-stack listener on "::" sees IPv4 peers this way; keyed by /64 they would all be one client.
  CHECK(http::peer_address_key(from("::ffff:10.0.0.7")) == http::peer_address_key(from("10.0.0.7")));
  CHECK(http::peer_address_key(from("::ffff:10.0.0.7")) != http::peer_address_key(from("::ffff:10.0.0.8")));
}
