// switchboard/http/detail/chars.hpp: character classes of HTTP (RFC 9110 §5.6.2, RFC 3986 §2) as lookup tables.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace switchboard::http::detail {

// A table of the ASCII letters and digits and the characters of `extra`.
constexpr std::array<bool, 256> alphanumeric_and(std::string_view extra) {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : extra) t[static_cast<unsigned char>(c)] = true;
  return t;
}

// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
inline constexpr std::array<bool, 256> token_table = alphanumeric_and("!#$%&'*+-.^_`|~");

constexpr bool is_token_char(unsigned char c) noexcept { return token_table[c]; }

constexpr bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!token_table[c]) return false;
  }
  return true;
}

// Characters allowed in a request-target: the URI characters of RFC 3986 (unreserved, reserved, "%"). Everything
// else (controls, SP, DEL, non-ASCII, and "\"<>\\^`{|}") must be percent-encoded by the client; rejecting them
// keeps the target unambiguous for every component that reads it.
inline constexpr std::array<bool, 256> target_table = alphanumeric_and("-._~:/?#[]@!$&'()*+,;=%");

// A reg-name's characters without its percent-encoded octets (RFC 3986 §3.2.2): unreserved and sub-delims.
inline constexpr std::array<bool, 256> reg_name_table = alphanumeric_and("-._~!$&'()*+,;=");

// field-vchar / SP / HTAB: visible ASCII, obs-text (0x80-0xFF), space and tab. Controls and DEL are not allowed
// (RFC 9110 §5.5); a bare CR or LF inside a value would split the field differently in another parser.
inline constexpr std::array<bool, 256> field_value_table = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x7f; ++c) t[c] = true;
  for (int c = 0x80; c < 0x100; ++c) t[c] = true;
  t['\t'] = true;
  return t;
}();

constexpr char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

/// `s` with its ASCII letters in lower case, other bytes as they are (scheme and host names, RFC 3986 §6.2.2.1).
inline std::string ascii_lowercase(std::string_view s) {
  std::string out(s.size(), '\0');
  for (std::size_t i = 0; i < s.size(); ++i) out[i] = ascii_lower(s[i]);
  return out;
}

/// Case-insensitive ASCII comparison, for field names and tokens (RFC 9110 §5.1).
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

/// `s` without leading and trailing optional whitespace (SP, HTAB).
constexpr std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

/// Calls `f(element)` for each non-empty element of a comma-separated list (RFC 9110 §5.6.1), trimmed of OWS.
/// Stops early and returns false if `f` returns false.
template <class F>
constexpr bool for_each_list_element(std::string_view list, F&& f) {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view element = trim_ows(list.substr(0, comma));
    if (!element.empty() && !f(element)) return false;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return true;
}

}  // namespace switchboard::http::detail
