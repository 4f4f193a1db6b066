// switchboard/sse/encoder.hpp
//
// Writes Server-Sent Events in the event stream format (WHATWG HTML §9.2.5):
//
//   event: <type>\n        only when a type is given
//   id: <id>\n             only when an id is given
//   retry: <ms>\n          only when a retry time is given
//   data: <line>\n         one per line of the data, only when data is given
//   \n                     the blank line that makes the client dispatch the event
//
// Every field is written as "name: value": the parser removes exactly one space after the colon (§9.2.6), so a
// value that itself starts with a space survives. Lines end with LF only.
//
// The encoder never writes an event that a conforming client would read differently from what it was given.
// Rather than sanitise (which would deliver a different type or id than the caller asked for, silently), it
// rejects with `sse::error`: a CR or LF in the type or id (it would end the field early and turn the rest into
// another field), a NUL in the id (the client ignores such an id field), a negative retry, a type without data
// (the client drops it), and text that is not well-formed UTF-8 (the client would decode U+FFFD instead). The one
// change the format itself imposes is documented on `event::data`: line breaks in data arrive as LF.
#pragma once

#include <switchboard/core/detail/utf8.hpp>
#include <switchboard/core/utf8.hpp>
#include <switchboard/core/shared_bytes.hpp>
#include <switchboard/sse/detail/line_break.hpp>
#include <switchboard/sse/error.hpp>
#include <switchboard/sse/event.hpp>

#include <algorithm>
#include <charconv>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace switchboard::sse {

namespace detail {

/// True when `s` contains CR or LF, or NUL too if `nul` is set. A plain loop: types and ids are short, and a
/// call to memchr per character class cost more than the scan itself.
constexpr bool has_break(std::string_view s, bool nul) noexcept {
  for (char c : s) {
    if (c == '\n' || c == '\r' || (nul && c == '\0')) return true;
  }
  return false;
}

/// Why `ev` cannot be written, or nothing.
inline std::optional<error> check(const event& ev) noexcept {
  if (!ev.type.empty()) {
    if (has_break(ev.type, false)) return error::invalid_event_type;
    if (!ev.data) return error::type_without_data;
  }
  if (ev.id && has_break(*ev.id, true)) return error::invalid_id;
  if (ev.retry && ev.retry->count() < 0) return error::invalid_retry;
  if (!switchboard::is_valid_utf8(ev.type) || (ev.id && !switchboard::is_valid_utf8(*ev.id)) ||
      (ev.data && !switchboard::is_valid_utf8(*ev.data))) {
    return error::invalid_utf8;
  }
  return std::nullopt;
}

/// Grows `out` geometrically so that `more` bytes can be appended without another allocation. (`reserve` with
/// an exact size on every call would reallocate on every event appended to a long buffer.)
inline void reserve_more(std::string& out, std::size_t more) {
  const std::size_t needed = out.size() + more;
  if (needed > out.capacity()) out.reserve(std::max(needed, 2 * out.capacity()));
}

/// Appends one line per line of `text` (split at CR, LF and CRLF, §9.2.5 end-of-line), each as `prefix` + line
/// + LF. An empty `text` gives one line.
inline void append_lines(std::string_view prefix, std::string_view text, std::string& out) {
  for (;;) {
    const std::size_t end = find_line_break(text);
    out.append(prefix);
    out.append(text.data(), end);
    out.push_back('\n');
    if (end == text.size()) return;
    const std::size_t next = (text[end] == '\r' && end + 1 < text.size() && text[end + 1] == '\n') ? end + 2 : end + 1;
    text.remove_prefix(next);
  }
}

}  // namespace detail

/// Appends the wire form of `ev` to `out`. Returns an `sse::error` (see the file comment) and leaves `out`
/// unchanged when `ev` cannot be written as given; otherwise returns no error.
inline std::error_code encode(const event& ev, std::string& out) {
  if (const std::optional<error> refused = detail::check(ev)) return *refused;
  constexpr std::size_t field_overhead = 8;  // "event: " and "\n", the longest name
  constexpr std::size_t retry_digits = 19;   // the digits of the largest milliseconds count
  detail::reserve_more(out, ev.type.size() + (ev.id ? ev.id->size() : 0) + (ev.data ? ev.data->size() : 0) +
                                4 * field_overhead + retry_digits + 1);
  if (!ev.type.empty()) {
    out.append("event: ");
    out.append(ev.type);
    out.push_back('\n');
  }
  if (ev.id) {
    out.append("id: ");
    out.append(*ev.id);
    out.push_back('\n');
  }
  if (ev.retry) {
    char digits[24];
    const auto result = std::to_chars(digits, digits + sizeof digits, ev.retry->count());
    out.append("retry: ");
    out.append(digits, result.ptr);
    out.push_back('\n');
  }
  if (ev.data) detail::append_lines("data: ", *ev.data, out);
  out.push_back('\n');
  return {};
}

/// Encodes `ev` once into an immutable, reference-counted buffer, so that the same bytes can be queued to many
/// subscribers without copying them per subscriber. Returns empty bytes and sets `ec` when `ev` cannot be
/// written (see `encode`); otherwise clears `ec`.
inline shared_bytes encode_shared(const event& ev, std::error_code& ec) {
  std::string bytes;
  ec = encode(ev, bytes);
  if (ec) return {};
  return shared_bytes(std::move(bytes));
}

/// Appends a comment: `:` + text + LF, one comment line per line of `text` (split at CR, LF and CRLF, so that
/// no text can start a field). A client ignores comments (§9.2.6); servers send them as heartbeats, to keep
/// proxies from closing an idle stream. `encode_comment("", out)` appends the shortest heartbeat, ":\n".
/// Ill-formed UTF-8 in `text` is written as U+FFFD: the stream stays well-formed UTF-8, as §9.2.5 requires (a
/// strict client would reject it otherwise), and a client that ignores the comment sees no difference.
inline void encode_comment(std::string_view text, std::string& out) {
  if (!switchboard::is_valid_utf8(text)) {
    std::string replaced;
    switchboard::detail::append_utf8_replacing_invalid(text, replaced);
    encode_comment(replaced, out);
    return;
  }
  detail::reserve_more(out, text.size() + 2);
  detail::append_lines(":", text, out);
}

}  // namespace switchboard::sse
