// switchboard/http/client_key.hpp
//
// What names the client of a request for the endpoints' per-client limits (`longpoll::endpoint_options::
// max_parked_per_client`, `jobs::endpoint_options::max_unfinished_per_client`): by default the peer's IP address;
// behind a trusted reverse proxy, a function that returns the address the proxy forwards (or a user id).
#pragma once

#include <switchboard/http/request.hpp>

#include <functional>
#include <string>

namespace switchboard::http {

/// Names the client of a request, for per-client limits. Requests with the same key count as one client.
using client_key_function = std::function<std::string(const request&)>;

/// The peer's IP address as a key: its bytes, not its text. The key is only compared; formatting it (inet_ntop,
/// through the printf machinery) showed in profiles of 10,000 parked long polls, and an IPv4 key fits in the string
/// without an allocation.
///
/// - IPv4: the address's 4 bytes. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack listener on
///   "::" sees for an IPv4 peer) is the same key as the IPv4 address it maps.
/// - IPv6: the first 8 bytes, the /64 prefix. The other 64 bits are the interface identifier (RFC 4291 §2.5.1),
///   which a host chooses itself and changes at will (temporary addresses, RFC 8981): keying the full address would
///   let one client escape every per-client limit by taking another address in its subnet.
inline std::string peer_address_key(const request& req) {
  asio::ip::address a = req.remote_endpoint().address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  if (a.is_v4()) {
    const auto bytes = a.to_v4().to_bytes();
    return std::string(bytes.begin(), bytes.end());
  }
  constexpr std::size_t prefix_bytes = 64 / 8;
  const auto bytes = a.to_v6().to_bytes();
  return std::string(bytes.begin(), bytes.begin() + prefix_bytes);
}

/// `key(req)` when `key` is set, else `peer_address_key(req)`.
inline std::string client_key(const client_key_function& key, const request& req) {
  return key ? key(req) : peer_address_key(req);
}

}  // namespace switchboard::http
