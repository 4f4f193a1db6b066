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

/// The peer's IP address as a key: its bytes (4 for IPv4, 16 for IPv6), not its text. The key is only compared,
/// formatting it (inet_ntop, through the printf machinery) showed in profiles of 10,000 parked long polls, and an
/// IPv4 key fits in the string without an allocation.
inline std::string peer_address_key(const request& req) {
  const asio::ip::address a = req.remote_endpoint().address();
  if (a.is_v4()) {
    const auto bytes = a.to_v4().to_bytes();
    return std::string(bytes.begin(), bytes.end());
  }
  const auto bytes = a.to_v6().to_bytes();
  return std::string(bytes.begin(), bytes.end());
}

/// `key(req)` when `key` is set, else `peer_address_key(req)`.
inline std::string client_key(const client_key_function& key, const request& req) {
  return key ? key(req) : peer_address_key(req);
}

}  // namespace switchboard::http
