// switchboard/http/url.hpp
//
// Pieces of a request-target (RFC 9112 §3.2, RFC 3986): splitting path and query, percent-decoding, and reading
// query parameters (application/x-www-form-urlencoded, as browsers send them).
#pragma once

#include <switchboard/http/detail/chars.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace switchboard::http {

/// The path of an origin-form or absolute-form target, without the query (and without scheme and authority).
constexpr std::string_view target_path(std::string_view target) noexcept {
  if (!target.empty() && target.front() != '/' && target != "*") {
    // absolute-form: scheme "://" authority path. The "://" must be the one that ends the scheme (RFC 3986 §3):
    // "a:b?x=http://h/admin" is an absolute-URI whose path is "b", and a path taken from its query would route it to
    // "/admin" past a proxy that saw "b".
    const std::size_t scheme_end = target.find(':');
    if (scheme_end != std::string_view::npos && target.substr(scheme_end).starts_with("://")) {
      const std::size_t path_begin = target.find_first_of("/?#", scheme_end + 3);
      target = path_begin == std::string_view::npos ? std::string_view("/") : target.substr(path_begin);
      if (!target.empty() && target.front() != '/') return "/";
    }
  }
  return target.substr(0, target.find_first_of("?#"));
}

/// The query of a target (after '?', before any '#'), or an empty view.
constexpr std::string_view target_query(std::string_view target) noexcept {
  // The first '#' starts the fragment (RFC 3986 §3.5), a '?' after it included: "/a#f?admin=1" has no query.
  target = target.substr(0, target.find('#'));
  const std::size_t q = target.find('?');
  return q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
}

namespace detail {
constexpr int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace detail

/// Percent-decodes `in` (RFC 3986 §2.1) onto the end of `out`. With `plus_as_space` (query strings in the
/// application/x-www-form-urlencoded format) '+' decodes to a space. Returns false on a malformed escape ('%' not
/// followed by two hex digits), leaving `out` partially appended.
inline bool percent_decode(std::string_view in, std::string& out, bool plus_as_space = false) {
  out.reserve(out.size() + in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = detail::hex_digit(in[i + 1]);
      const int lo = detail::hex_digit(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (plus_as_space && c == '+') {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return true;
}

/// Percent-decodes `in`; nullopt on a malformed escape.
inline std::optional<std::string> percent_decode(std::string_view in, bool plus_as_space = false) {
  std::string out;
  if (!percent_decode(in, out, plus_as_space)) return std::nullopt;
  return out;
}

/// Calls `f(raw_name, raw_value)` for each `name=value` pair of a query string, undecoded (a pair without '='
/// has an empty value). Empty pairs ("a=1&&b=2") are skipped.
template <class F>
constexpr void for_each_query_param(std::string_view query, F&& f) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (!pair.empty()) {
      const std::size_t eq = pair.find('=');
      f(pair.substr(0, eq), eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
}

/// The decoded value of the first query parameter named `name` (compared after decoding), or nullopt if absent
/// or malformed.
inline std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  std::optional<std::string> result;
  bool found = false;
  for_each_query_param(query, [&](std::string_view raw_name, std::string_view raw_value) {
    if (found) return;
    const bool plain = raw_name.find_first_of("%+") == std::string_view::npos;
    if (plain ? raw_name != name : percent_decode(raw_name, true) != std::optional<std::string>(name)) return;
    found = true;
    result = percent_decode(raw_value, true);
  });
  return result;
}

/// The parts of an absolute http or https URL that a client needs.
struct url {
  std::string scheme;   ///< "http" or "https" (lower case)
  std::string host;     ///< host name or IP literal, in lower case, without IPv6 brackets
  std::uint16_t port = 0;
  std::string target;   ///< origin-form: path and query, "/" at least
  /// "scheme://host:port": the key of a connection pool. In lower case as `parse_url` writes scheme and host, so
  /// that one origin has one key however its URL spells it.
  std::string origin() const {
    const bool v6 = host.find(':') != std::string::npos;
    return scheme + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }
  /// The Host field value (RFC 9110 §7.2): the port only when it is not the scheme's default.
  std::string host_field() const {
    const bool v6 = host.find(':') != std::string::npos;
    std::string h = v6 ? "[" + host + "]" : host;
    if (port != (scheme == "https" ? 443 : 80)) h += ":" + std::to_string(port);
    return h;
  }
};

namespace detail {
// A host as RFC 3986 §3.2.2 writes it: inside an IP-literal's brackets an IPv6 address (hex digits, ':' and the '.'
// of an IPv4 tail), else a reg-name (unreserved characters and sub-delims; percent-encoded octets are not accepted,
// since the name would have to be decoded before the lookup). The host goes into the Host field and the lookup as
// it is: a CR LF in it would inject fields into the request (RFC 9112 §11.1), a '/' or a space would name another
// host than the one looked up.
constexpr bool is_url_host(std::string_view host, bool ip_literal) noexcept {
  if (host.empty() || (ip_literal && host.find(':') == std::string_view::npos)) return false;
  for (const char c : host) {
    const bool ok = ip_literal ? hex_digit(c) >= 0 || c == ':' || c == '.' : reg_name_table[static_cast<unsigned char>(c)];
    if (!ok) return false;
  }
  return true;
}

// An authority without userinfo, "host[:port]" (RFC 3986 §3.2), split in two: the host without an IP-literal's
// brackets, and the port's text (empty when there is none).
struct authority_parts {
  std::string_view host;
  bool ip_literal = false;
  std::string_view port;
};

constexpr std::optional<authority_parts> split_authority(std::string_view authority) noexcept {
  authority_parts out;
  std::string_view after_host;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    out.host = authority.substr(1, close - 1);
    out.ip_literal = true;
    after_host = authority.substr(close + 1);
  } else {
    const std::size_t colon = authority.rfind(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string_view::npos) after_host = authority.substr(colon);
  }
  if (!after_host.empty()) {
    if (after_host.front() != ':') return std::nullopt;
    out.port = after_host.substr(1);
  }
  return out;
}

// A Host field value (RFC 9110 §7.2): uri-host [":" port], or empty (a target without an authority). A server
// answers any other with 400 (RFC 9112 §3.2): a proxy or a virtual-host router behind it would read it its own way.
// Stricter than the grammar in one point, as for the clients' URLs: no percent-encoded octets in a name.
// One pass over a name (every request has one: the parser checks it on the way).
constexpr bool is_host_field(std::string_view value) noexcept {
  std::size_t host_end = 0;
  if (!value.empty() && value.front() == '[') {
    const std::optional<authority_parts> parts = split_authority(value);
    if (!parts || !is_url_host(parts->host, true)) return false;
    host_end = value.size() - parts->port.size() - (parts->port.empty() ? 0 : 1);
  } else {
    while (host_end < value.size() && reg_name_table[static_cast<unsigned char>(value[host_end])]) ++host_end;
    if (host_end == 0) return value.empty();
  }
  if (host_end == value.size()) return true;
  if (value[host_end] != ':') return false;
  for (std::size_t i = host_end + 1; i < value.size(); ++i) {
    if (value[i] < '0' || value[i] > '9') return false;  // port = *DIGIT
  }
  return true;
}
}  // namespace detail

/// Parses "http://host[:port][/path][?query]" (and https). Userinfo and fragments are not accepted in a request URL;
/// the fragment is dropped. The host must be an IPv6 literal in brackets or a name of the characters RFC 3986 allows
/// (letters, digits, "-._~!$&'()*+,;="); the target, characters of a URI. Returns nullopt for anything else.
///
/// Scheme and host come out in lower case, the path and query as written: scheme and host are case-insensitive
/// (RFC 3986 §3.1, §3.2.2) and lower case is their normal form (§6.2.2.1; RFC 5952 §4.3 for an IPv6 literal's hex
/// digits), so "http://Example.COM/" and "http://example.com/" are one origin, with one connection pool in the client.
/// An IPv6 literal is not otherwise made canonical ("::1" and "0::1" stay two origins). A host with percent-encoded
/// octets is refused (see above), so there is none to decode before the comparison (§6.2.2.2).
inline std::optional<url> parse_url(std::string_view text) {
  url out;
  const std::size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) return std::nullopt;
  out.scheme = detail::ascii_lowercase(text.substr(0, scheme_end));
  if (out.scheme != "http" && out.scheme != "https") return std::nullopt;
  std::string_view rest = text.substr(scheme_end + 3);
  rest = rest.substr(0, rest.find('#'));
  const std::size_t authority_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view target = authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  const std::optional<detail::authority_parts> parts = detail::split_authority(authority);
  if (!parts || !detail::is_url_host(parts->host, parts->ip_literal)) return std::nullopt;
  out.host = detail::ascii_lowercase(parts->host);
  unsigned port = out.scheme == "https" ? 443 : 80;
  if (!parts->port.empty()) {
    port = 0;
    for (char c : parts->port) {
      if (c < '0' || c > '9' || port > 65535) return std::nullopt;
      port = port * 10 + static_cast<unsigned>(c - '0');
    }
    if (port == 0 || port > 65535) return std::nullopt;
  }
  out.port = static_cast<std::uint16_t>(port);
  out.target = target.empty() ? "/" : (target.front() == '?' ? "/" + std::string(target) : std::string(target));
  for (unsigned char c : out.target) {
    if (!detail::target_table[c]) return std::nullopt;
  }
  return out;
}

}  // namespace switchboard::http
