// switchboard/http/url.hpp
//
// Pieces of a request-target (RFC 9112 §3.2, RFC 3986): splitting path and query, percent-decoding, and reading
// query parameters (application/x-www-form-urlencoded, as browsers send them).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace switchboard::http {

/// The path of an origin-form or absolute-form target, without the query (and without scheme and authority).
constexpr std::string_view target_path(std::string_view target) noexcept {
  if (!target.empty() && target.front() != '/' && target != "*") {
    // absolute-form: scheme "://" authority path
    const std::size_t scheme_end = target.find("://");
    if (scheme_end != std::string_view::npos) {
      const std::size_t path_begin = target.find_first_of("/?#", scheme_end + 3);
      target = path_begin == std::string_view::npos ? std::string_view("/") : target.substr(path_begin);
      if (!target.empty() && target.front() != '/') return "/";
    }
  }
  return target.substr(0, target.find_first_of("?#"));
}

/// The query of a target (after '?', before any '#'), or an empty view.
constexpr std::string_view target_query(std::string_view target) noexcept {
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) return {};
  const std::string_view rest = target.substr(q + 1);
  return rest.substr(0, rest.find('#'));
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

}  // namespace switchboard::http
