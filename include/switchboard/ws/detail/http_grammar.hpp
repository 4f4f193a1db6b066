// switchboard/ws/detail/http_grammar.hpp
//
// The few pieces of HTTP field grammar (RFC 9110 §5.6) that the WebSocket handshake headers are built from:
// tokens, optional whitespace, quoted strings and comma-separated lists. Not API.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace switchboard::ws::detail {

/// tchar (RFC 9110 §5.6.2): the characters a token is made of.
constexpr bool is_tchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-': case '.':
    case '^': case '_': case '`': case '|': case '~': return true;
    default: return false;
  }
}

/// token = 1*tchar
constexpr bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

/// ASCII case-insensitive equality (header names, tokens and hosts compare this way).
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

/// The values of every field named `name` in `fields` (a sequence of `.name`/`.value` pairs, e.g. http::field_views),
/// joined with ", ": a list header sent on several lines is one list, in the order of the lines (RFC 9110 §5.3).
/// Empty when there is no such field.
template <class Fields>
std::string joined_field_values(const Fields& fields, std::string_view name) {
  std::string out;
  bool first = true;
  for (const auto& f : fields) {
    if (!iequals(f.name, name)) continue;
    if (!first) out += ", ";
    out.append(f.value);
    first = false;
  }
  return out;
}

/// A cursor over a field value, with the grammar steps the handshake headers need.
class field_cursor {
 public:
  explicit constexpr field_cursor(std::string_view s) noexcept : s_(s) {}

  constexpr bool done() const noexcept { return pos_ == s_.size(); }
  constexpr char peek() const noexcept { return done() ? '\0' : s_[pos_]; }

  /// OWS = *( SP / HTAB )
  constexpr void skip_ows() noexcept {
    while (!done() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }

  /// Consumes `c` if it is next.
  constexpr bool take(char c) noexcept {
    if (done() || s_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  /// Consumes a token; empty if none is next.
  constexpr std::string_view token() noexcept {
    const std::size_t start = pos_;
    while (!done() && is_tchar(s_[pos_])) ++pos_;
    return s_.substr(start, pos_ - start);
  }

  /// quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE (RFC 9110 §5.6.4), unescaped into `out`.
  /// Returns false if no well-formed quoted string is next.
  bool quoted_string(std::string& out) {
    if (!take('"')) return false;
    out.clear();
    while (!done()) {
      const char c = s_[pos_++];
      if (c == '"') return true;
      if (c == '\\') {
        if (done() || !is_quoted_pair_char(s_[pos_])) return false;
        out.push_back(s_[pos_++]);
      } else if (is_qdtext(c)) {
        out.push_back(c);
      } else {
        return false;
      }
    }
    return false;  // no closing quote
  }

  /// Skips the empty elements and the separator before the next element of a #list (RFC 9110 §5.6.1: "a
  /// recipient MUST parse and ignore a reasonable number of empty list elements"). Returns false at the end.
  constexpr bool next_list_element() noexcept {
    for (;;) {
      skip_ows();
      if (!take(',')) return !done();
    }
  }

 private:
  // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
  static constexpr bool is_qdtext(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return c == '\t' || c == ' ' || u == 0x21 || (u >= 0x23 && u <= 0x5B) || (u >= 0x5D && u <= 0x7E) || u >= 0x80;
  }
  // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
  static constexpr bool is_quoted_pair_char(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return c == '\t' || c == ' ' || (u >= 0x21 && u <= 0x7E) || u >= 0x80;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

}  // namespace switchboard::ws::detail
