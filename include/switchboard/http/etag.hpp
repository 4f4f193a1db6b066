// switchboard/http/etag.hpp
//
// Entity tags (RFC 9110 §8.8.3): the opaque validators of the `ETag` response field, strong or weak, and the two
// ways of comparing them (§8.8.3.2):
//
//   entity-tag = [ weak ] opaque-tag
//   weak       = %s"W/"
//   opaque-tag = DQUOTE *etagc DQUOTE
//   etagc      = %x21 / %x23-7E / obs-text        ; any visible character but DQUOTE, and 0x80-0xFF
//
// The lists of entity tags in `If-Match` and `If-None-Match` are read by `for_each_entity_tag`; the evaluation of
// those fields is in `preconditions.hpp`.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace switchboard::http {

namespace detail {

constexpr bool is_etagc(unsigned char c) noexcept { return c == 0x21 || (c >= 0x23 && c != 0x7F); }

constexpr bool is_opaque(std::string_view opaque) noexcept {
  for (unsigned char c : opaque) {
    if (!is_etagc(c)) return false;
  }
  return true;
}

/// The length of the entity-tag at the start of `s`, or 0 if `s` does not start with one.
constexpr std::size_t entity_tag_length(std::string_view s) noexcept {
  const std::size_t start = s.starts_with("W/") ? 2 : 0;
  if (s.size() <= start || s[start] != '"') return 0;
  for (std::size_t i = start + 1; i < s.size(); ++i) {
    if (s[i] == '"') return i + 1;
    if (!is_etagc(static_cast<unsigned char>(s[i]))) return 0;
  }
  return 0;  // no closing quote
}

}  // namespace detail

/// An entity tag: an opaque string, strong or weak. A strong tag changes whenever the representation's content
/// changes; a weak one only when its meaning does (§8.8.1). Holds its field form, e.g. `W/"xyzzy"`.
class entity_tag {
 public:
  /// A strong tag with the given opaque string (without quotes). Throws `std::invalid_argument` if the string
  /// has a character that an entity tag cannot hold (DQUOTE, controls, SP, DEL): tags are made by the server, so
  /// that is a programming error.
  static entity_tag strong(std::string_view opaque) { return make(opaque, false); }

  /// A weak tag with the given opaque string; throws as `strong` does.
  static entity_tag weak(std::string_view opaque) { return make(opaque, true); }

  /// Reads a field value that is exactly one entity-tag (`"xyzzy"`, `W/"xyzzy"`, `""`), as an `ETag` field
  /// holds; nullopt if it is anything else (no surrounding whitespace, `W/` in upper case only).
  static std::optional<entity_tag> parse(std::string_view text) {
    if (text.empty() || detail::entity_tag_length(text) != text.size()) return std::nullopt;
    return entity_tag(std::string(text));
  }

  /// True for a weak tag (`W/` prefix).
  bool is_weak() const noexcept { return text_.starts_with("W/"); }

  /// The opaque string, without quotes or weakness indicator.
  std::string_view opaque() const noexcept {
    const std::string_view quoted = std::string_view(text_).substr(is_weak() ? 2 : 0);
    return quoted.substr(1, quoted.size() - 2);
  }

  /// The field form, e.g. `W/"xyzzy"`, ready for an `ETag` header.
  std::string_view str() const noexcept { return text_; }

 private:
  explicit entity_tag(std::string text) : text_(std::move(text)) {}

  static entity_tag make(std::string_view opaque, bool weak) {
    if (!detail::is_opaque(opaque)) {
      throw std::invalid_argument("switchboard::http::entity_tag: opaque string has a character outside etagc");
    }
    std::string text;
    text.reserve(opaque.size() + 4);
    if (weak) text += "W/";
    text += '"';
    text += opaque;
    text += '"';
    return entity_tag(std::move(text));
  }

  std::string text_;  // the field form: [W/]"opaque"
};

/// Strong comparison (§8.8.3.2): both tags are strong and their opaque strings are identical. `If-Match` uses it.
inline bool strong_match(const entity_tag& a, const entity_tag& b) noexcept {
  return !a.is_weak() && !b.is_weak() && a.opaque() == b.opaque();
}

/// Weak comparison (§8.8.3.2): the opaque strings are identical, whatever their weakness. `If-None-Match` uses it.
inline bool weak_match(const entity_tag& a, const entity_tag& b) noexcept { return a.opaque() == b.opaque(); }

/// Reads a list of entity tags (`#entity-tag`, §5.6.1: elements separated by commas with optional whitespace,
/// empty elements allowed) and calls `f(std::string_view field_form)` for each tag, in order. Returns false, after
/// calling `f` for the tags before it, at the first thing that is not part of such a list (including `*`). A
/// comma can be part of an opaque string, so the list is read tag by tag, never split at commas.
template <class F>
bool for_each_entity_tag(std::string_view list, F&& f) {
  auto skip_ows = [&] {
    while (!list.empty() && (list.front() == ' ' || list.front() == '\t')) list.remove_prefix(1);
  };
  skip_ows();
  while (!list.empty()) {
    if (list.front() != ',') {
      const std::size_t length = detail::entity_tag_length(list);
      if (length == 0) return false;
      f(list.substr(0, length));
      list.remove_prefix(length);
      skip_ows();
      if (list.empty()) break;
      if (list.front() != ',') return false;
    }
    list.remove_prefix(1);  // the comma
    skip_ows();
  }
  return true;
}

}  // namespace switchboard::http
