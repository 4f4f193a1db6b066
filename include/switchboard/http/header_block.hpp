// switchboard/http/header_block.hpp
//
// `header_block`: an owned, ordered list of header fields for messages we build (responses on the server,
// requests on the client). Fields are stored already serialised ("Name: value\r\n"), so writing a message is one
// copy. Setters validate: a name must be a token and a value may not hold CR, LF, NUL or other controls, so that
// data from a request can never inject a header or split a response (RFC 9110 §5.5, RFC 9112 §11.1).
#pragma once

#include <switchboard/http/detail/chars.hpp>
#include <switchboard/http/detail/small_buffer.hpp>

#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace switchboard::http {

class header_block {
 public:
  /// Appends a field, keeping any others of the same name. Throws `std::invalid_argument` on an invalid name or
  /// value (a programmer error: validate user input before putting it in a header). `name` and `value` may be
  /// views into this block (`add("X-Copy", block.get("x-orig"))`).
  header_block& add(std::string_view name, std::string_view value) {
    validate(name, value);
    // A view into this block would dangle when appending reallocates it: copy it first.
    if (points_into(name) || points_into(value)) return add(std::string(name), std::string(value));
    append_line(name, value);
    return *this;
  }

  /// Replaces every field named `name` (case-insensitively) with one field. Same validation as `add`; `name` and
  /// `value` may be views into this block (`set("Vary", block.get("vary"))`).
  header_block& set(std::string_view name, std::string_view value) {
    validate(name, value);
    // A view into this block would show other bytes once `erase` has moved the fields after the erased ones
    // under it: a CR LF from the next line, say, in a value validated before the move (RFC 9112 §11.1).
    if (points_into(name) || points_into(value)) return set(std::string(name), std::string(value));
    erase(name);
    append_line(name, value);
    return *this;
  }

  /// Removes every field named `name`. Returns how many were removed. `name` may be a view into this block.
  std::size_t erase(std::string_view name) {
    // Erasing moves the fields under a view into this block, which would then name another field.
    if (points_into(name)) return erase(std::string(name));
    std::size_t removed = 0;
    std::size_t pos = 0;
    while (pos < data_.size()) {
      const std::size_t line_end = text().find("\r\n", pos) + 2;
      if (detail::iequals(line_name(pos), name)) {
        data_.erase(pos, line_end - pos);
        ++removed;
      } else {
        pos = line_end;
      }
    }
    return removed;
  }

  /// The value of the first field named `name`, or an empty view.
  std::string_view get(std::string_view name) const noexcept {
    std::size_t pos = 0;
    while (pos < data_.size()) {
      const std::size_t line_end = text().find("\r\n", pos);
      const std::string_view n = line_name(pos);
      if (detail::iequals(n, name)) {
        const std::size_t value_begin = pos + n.size() + 2;
        return text().substr(value_begin, line_end - value_begin);
      }
      pos = line_end + 2;
    }
    return {};
  }

  bool contains(std::string_view name) const noexcept {
    std::size_t pos = 0;
    while (pos < data_.size()) {
      if (detail::iequals(line_name(pos), name)) return true;
      pos = text().find("\r\n", pos) + 2;
    }
    return false;
  }

  /// Calls `f(name, value)` for each field in order.
  template <class F>
  void for_each(F&& f) const {
    std::size_t pos = 0;
    while (pos < data_.size()) {
      const std::size_t line_end = text().find("\r\n", pos);
      const std::string_view n = line_name(pos);
      const std::size_t value_begin = pos + n.size() + 2;
      f(n, text().substr(value_begin, line_end - value_begin));
      pos = line_end + 2;
    }
  }

  bool empty() const noexcept { return data_.empty(); }
  void clear() noexcept { data_.clear(); }

  /// The fields serialised as "Name: value\r\n" lines.
  std::string_view serialized() const noexcept { return text(); }

  /// True when `name` may be used as a field name.
  static bool valid_name(std::string_view name) noexcept { return detail::is_token(name); }

  /// True when `value` may be used as a field value: no CR, LF, NUL or other control but HTAB, and no leading or
  /// trailing whitespace (which a parser would strip, changing the value).
  static bool valid_value(std::string_view value) noexcept {
    for (unsigned char c : value) {
      if (!detail::field_value_table[c]) return false;
    }
    return value.empty() || (!detail::is_ows(value.front()) && !detail::is_ows(value.back()));
  }

 private:
  static void validate(std::string_view name, std::string_view value) {
    if (!valid_name(name)) throw std::invalid_argument("switchboard::http: invalid header name");
    if (!valid_value(value)) {
      throw std::invalid_argument("switchboard::http: invalid header value (CR, LF, control or edge whitespace)");
    }
  }

  std::string_view text() const noexcept { return data_.view(); }

  // True when `s` is a view into this block's storage (std::less: a total order, for pointers into other objects).
  bool points_into(std::string_view s) const noexcept {
    const std::less<const char*> before;
    return !s.empty() && !before(s.data(), data_.data()) && before(s.data(), data_.data() + data_.size());
  }

  std::string_view line_name(std::size_t pos) const noexcept {
    const std::size_t colon = text().find(':', pos);
    return text().substr(pos, colon - pos);
  }

  void append_line(std::string_view name, std::string_view value) {
    data_.reserve(data_.size() + name.size() + value.size() + 4);
    data_.append(name).append(": ").append(value).append("\r\n");
  }

  // Typical responses carry one or two fields (a content type, a location): they fit inline.
  detail::small_buffer<96> data_;
};

}  // namespace switchboard::http
