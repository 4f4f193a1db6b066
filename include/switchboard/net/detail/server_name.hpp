// switchboard/net/detail/server_name.hpp
//
// The TLS clients' Server Name Indication (RFC 6066 §3): the host name the client connects to, so that a server
// with several names picks the right certificate; never a literal IPv4 or IPv6 address, which the RFC forbids there.
#pragma once

#include <asio/ip/address.hpp>

#include <openssl/ssl.h>

#include <string>
#include <system_error>

namespace switchboard::net::detail {

/// Sets the server name of `ssl` to `host`, unless `host` is an address literal. False when OpenSSL refused it.
inline bool set_server_name(SSL* ssl, const std::string& host) {
  std::error_code not_an_address;
  asio::ip::make_address(host, not_an_address);
  return !not_an_address || SSL_set_tlsext_host_name(ssl, host.c_str()) == 1;
}

}  // namespace switchboard::net::detail
