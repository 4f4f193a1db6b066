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
  CHECK(http::peer_address_key(from("::1")) == std::string(15, '\0') + '\x01');
  // The port is not part of it: two connections of one host are one client.
  CHECK(http::peer_address_key(from("127.0.0.1", 40001)) == http::peer_address_key(from("127.0.0.1")));
  CHECK(http::peer_address_key(from("127.0.0.2")) != http::peer_address_key(from("127.0.0.1")));

  CHECK(http::client_key({}, from("10.0.0.7")) == http::peer_address_key(from("10.0.0.7")));
  const http::client_key_function by_header = [](const http::request&) { return std::string("ann"); };
  CHECK(http::client_key(by_header, from("10.0.0.7")) == "ann");
}
