// switchboard/ws/handshake.hpp
//
// The WebSocket opening handshake (RFC 6455 §4) on plain values: the HTTP layer extracts the header values and
// builds the 101 response; these functions decide what goes in it.
//
//  - the client's `Sec-WebSocket-Key` must be the base64 encoding of 16 bytes (§4.2.1 item 5);
//  - the server proves it understood by answering `Sec-WebSocket-Accept: base64(SHA-1(key + GUID))`
//    (§4.2.2 item 5.4), which the client checks (§4.1 item 4 of the response checks);
//  - `Sec-WebSocket-Protocol` lists subprotocols; the server picks at most one (§4.2.2 item 5.5 / §1.9);
//  - `Origin` says which web page opened the connection; a browser cannot lie about it, so a server checks it
//    to stop other sites' pages from using a visitor's cookies against it (cross-site WebSocket hijacking,
//    §10.2).
//
// SHA-1, base64 and random bytes come from OpenSSL (DESIGN: never hand-roll cryptography). Header values are
// passed without surrounding whitespace, and a header sent on several lines is joined with ", " first
// (RFC 9110 §5.3).
#pragma once

#include <switchboard/http/detail/chars.hpp>
#include <switchboard/ws/detail/http_grammar.hpp>
#include <switchboard/ws/error.hpp>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace switchboard::ws {

/// The GUID the accept value is derived from (RFC 6455 §1.3, §4.2.2).
inline constexpr std::string_view handshake_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

namespace detail {

constexpr bool is_base64_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

// The value of a base64 digit (precondition: is_base64_char).
constexpr int base64_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  return c == '+' ? 62 : 63;
}

inline std::string base64(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

}  // namespace detail

/// Checks a client's `Sec-WebSocket-Key` (RFC 6455 §4.2.1 item 5, §11.3.1): it must be the base64 encoding of
/// exactly 16 bytes, i.e. 22 base64 digits then "==", in the canonical form (the unused low 4 bits of the last
/// digit are zero, as every encoder writes them). Returns `error::invalid_key` otherwise; a server answers 400.
inline std::error_code check_client_key(std::string_view key) noexcept {
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return error::invalid_key;
  for (std::size_t i = 0; i < 22; ++i) {
    if (!detail::is_base64_char(key[i])) return error::invalid_key;
  }
  if ((detail::base64_value(key[21]) & 0x0F) != 0) return error::invalid_key;
  return {};
}

/// The `Sec-WebSocket-Accept` value for `key`: base64(SHA-1(key + GUID)) (RFC 6455 §4.2.2 item 5.4). For the
/// sample key "dGhlIHNhbXBsZSBub25jZQ==" it is "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" (§1.3). Throws
/// `std::runtime_error` if OpenSSL fails.
inline std::string accept_value(std::string_view key) {
  std::string input;
  input.reserve(key.size() + handshake_guid.size());
  input.append(key).append(handshake_guid);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_size = 0;
  if (EVP_Digest(input.data(), input.size(), digest.data(), &digest_size, EVP_sha1(), nullptr) != 1) {
    throw std::runtime_error("switchboard::ws: SHA-1 failed");
  }
  return detail::base64(digest.data(), digest_size);
}

/// Client side: checks the server's `Sec-WebSocket-Accept` against the key the client sent (exact match, RFC
/// 6455 §4.1: "If the |Sec-WebSocket-Accept| contains a value other than the base64-encoded SHA-1 of ... the
/// client MUST _Fail the WebSocket Connection_"). Returns `error::invalid_accept` on mismatch.
inline std::error_code check_accept(std::string_view key, std::string_view accept) {
  if (accept != accept_value(key)) return error::invalid_accept;
  return {};
}

/// A fresh client `Sec-WebSocket-Key`: 16 bytes from OpenSSL's CSPRNG, base64-encoded (RFC 6455 §4.1: "a
/// nonce ... randomly selected"). Throws `std::runtime_error` if OpenSSL cannot produce random bytes.
inline std::string make_client_key() {
  std::array<unsigned char, 16> nonce{};
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) {
    throw std::runtime_error("switchboard::ws: RAND_bytes failed");
  }
  return detail::base64(nonce.data(), nonce.size());
}

/// Parses a `Sec-WebSocket-Protocol` value (`1#token`, RFC 6455 §4.3) into `out` (cleared first; views into
/// `header`). Returns `error::invalid_header_syntax` if an element is not a token, or there is none.
inline std::error_code parse_subprotocols(std::string_view header, std::vector<std::string_view>& out) {
  out.clear();
  detail::field_cursor in(header);
  while (in.next_list_element()) {
    const std::string_view name = in.token();
    if (name.empty()) return error::invalid_header_syntax;
    out.push_back(name);
    in.skip_ows();
    if (!in.done() && in.peek() != ',') return error::invalid_header_syntax;
  }
  if (out.empty()) return error::invalid_header_syntax;
  return {};
}

/// Server side: the subprotocol to answer with, the first of `supported` (the server's order of preference)
/// that the client `offered`, or nullopt to answer with none (then the response carries no
/// `Sec-WebSocket-Protocol`, §4.2.2 item 5.5). Names compare exactly, as browsers compare the answer.
inline std::optional<std::string_view> select_subprotocol(std::span<const std::string_view> offered,
                                                          std::span<const std::string_view> supported) noexcept {
  for (std::string_view candidate : supported) {
    for (std::string_view o : offered) {
      if (o == candidate) return candidate;
    }
  }
  return std::nullopt;
}

/// Client side: checks the server's `Sec-WebSocket-Protocol` answer (empty when the header is absent) against
/// what the client `requested`: none, or exactly one of the requested names (RFC 6455 §4.1). Returns
/// `error::unexpected_subprotocol` otherwise.
inline std::error_code check_subprotocol(std::span<const std::string_view> requested, std::string_view answer) {
  if (answer.empty()) return {};
  for (std::string_view r : requested) {
    if (r == answer) return {};
  }
  return error::unexpected_subprotocol;
}

/// Which `Origin` values a server accepts (RFC 6455 §4.2.1 item 8, §10.2; RFC 6454 for origins).
struct origin_options {
  /// Accept the server's own origin: an Origin whose scheme, host and port are those the client used to reach
  /// this server, read from the `Host` header and whether the connection is TLS (see `origin_allowed`).
  bool allow_same_origin = true;
  /// More accepted origins, each written "scheme://host" or "scheme://host:port" (for example
  /// "https://app.example.com"); scheme and host compare case-insensitively and a default port may be left
  /// out (80 for http and ws, 443 for https and wss). The entry "*" accepts every origin. Entries that are not
  /// origins never match.
  std::vector<std::string> allowed{};
  /// Accept requests without an `Origin` header. Browsers always send one, so its absence means a non-browser
  /// client, which could send any Origin it likes anyway: the check protects browser users, not the server.
  bool allow_missing = true;
};

namespace detail {

// An origin (RFC 6454 §6.2: scheme "://" host [ ":" port ]) or a Host header (RFC 9110 §7.2: uri-host
// [ ":" port ]) reduced to what same-origin compares: lower-case scheme and host, and the port with the
// scheme's default filled in.
struct origin_parts {
  std::string scheme;
  std::string host;
  int port = -1;  // -1: no port and no default for the scheme
};

constexpr int default_port(std::string_view scheme) noexcept {
  if (scheme == "http" || scheme == "ws") return 80;
  if (scheme == "https" || scheme == "wss") return 443;
  return -1;
}

// host [ ":" port ], where host is an IP literal in brackets or a reg-name (RFC 3986 §3.2.2).
inline bool parse_host_port(std::string_view s, int default_port_value, origin_parts& out) {
  std::string_view host, port;
  if (!s.empty() && s[0] == '[') {
    const std::size_t close = s.find(']');
    if (close == std::string_view::npos) return false;
    host = s.substr(0, close + 1);
    for (char c : host.substr(1, host.size() - 2)) {
      const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      if (!hex && c != ':' && c != '.') return false;
    }
    s.remove_prefix(close + 1);
    if (!s.empty() && s[0] != ':') return false;
  } else {
    host = s.substr(0, s.find(':'));
    for (char c : host) {
      const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      if (!alnum && std::string_view("-._~%!$&'()*+,;=").find(c) == std::string_view::npos) return false;
    }
    s.remove_prefix(host.size());
  }
  if (host.empty() || host == "[]") return false;
  out.host = http::detail::ascii_lowercase(host);
  out.port = default_port_value;
  if (s.empty()) return true;
  port = s.substr(1);  // after ':'
  if (port.empty() || port.size() > 5) return false;
  int value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  if (value > 65535) return false;
  out.port = value;
  return true;
}

inline std::optional<origin_parts> parse_origin(std::string_view s) {
  const std::size_t sep = s.find("://");
  if (sep == std::string_view::npos || sep == 0) return std::nullopt;
  origin_parts o;
  const std::string_view scheme = s.substr(0, sep);
  // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986 §3.1)
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    const char c = scheme[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alpha && (i == 0 || !((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))) return std::nullopt;
  }
  o.scheme = http::detail::ascii_lowercase(scheme);
  if (!parse_host_port(s.substr(sep + 3), default_port(o.scheme), o)) return std::nullopt;
  return o;
}

inline bool same_origin(const origin_parts& a, const origin_parts& b) noexcept {
  return a.scheme == b.scheme && a.host == b.host && a.port == b.port;
}

}  // namespace detail

/// Server side: whether to accept a handshake whose `Origin` header is `origin` (nullopt when absent).
///
/// Same-origin compares the Origin's scheme, host and port with those the client used to reach us: the scheme
/// is "https" when `secure` (the client connected over TLS, or through a TLS-terminating proxy: pass true
/// then) and "http" otherwise; host and port come from the `Host` header, the port defaulting to 443 or 80 by
/// `secure`. Scheme and host compare case-insensitively; "https://a.example" equals "https://a.example:443".
/// The Origin "null" (sandboxed frames, file: pages), a list of several origins and anything unparsable are
/// refused unless `options.allowed` holds "*". Refuse with HTTP 403.
inline bool origin_allowed(std::optional<std::string_view> origin, std::string_view host, bool secure,
                           const origin_options& options) {
  if (!origin) return options.allow_missing;
  for (const std::string& entry : options.allowed) {
    if (entry == "*") return true;
  }
  const auto parsed = detail::parse_origin(*origin);
  if (!parsed) return false;
  if (options.allow_same_origin) {
    detail::origin_parts self;
    self.scheme = secure ? "https" : "http";
    if (detail::parse_host_port(host, secure ? 443 : 80, self) && detail::same_origin(*parsed, self)) return true;
  }
  for (const std::string& entry : options.allowed) {
    const auto allowed = detail::parse_origin(entry);
    if (allowed && detail::same_origin(*parsed, *allowed)) return true;
  }
  return false;
}

}  // namespace switchboard::ws
