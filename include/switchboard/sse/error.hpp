// switchboard/sse/error.hpp
//
// Errors of the Server-Sent Events codec: events the encoder refuses to write because a client would read them
// differently from what was given, and streams the parser refuses to read.
#pragma once

#include <string>
#include <system_error>

namespace switchboard::sse {

/// Errors reported by `sse::encode` and `sse::parser`.
enum class error {
  /// Encoder: the event type contains CR or LF, which would end the `event` field early and turn the rest into
  /// another field (WHATWG HTML §9.2.5 "event stream format": a field value is any-char, which excludes CR, LF).
  invalid_event_type = 1,
  /// Encoder: the id contains CR or LF (which would split the field) or NUL (a client ignores an `id` field that
  /// contains U+0000, §9.2.6, so the id would silently not be set).
  invalid_id,
  /// Encoder: the retry time is negative.
  invalid_retry,
  /// Encoder: a field is not well-formed UTF-8; a client decodes the stream as UTF-8 and would see U+FFFD
  /// instead (§9.2.5). Parser, with `invalid_utf8::reject`: the stream is not well-formed UTF-8.
  invalid_utf8,
  /// Encoder: an event type was given without data; a client only dispatches events that have data, and
  /// forgets the type of one that has none (§9.2.6 "dispatch the event", step 2).
  type_without_data,
  /// Parser: a line is longer than `parser_options::max_line_bytes`.
  line_too_long,
  /// Parser: the data of one event is larger than `parser_options::max_event_bytes`.
  event_too_large,
};

namespace detail {
class sse_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "switchboard.sse"; }
  std::string message(int value) const override {
    switch (static_cast<error>(value)) {
      case error::invalid_event_type: return "SSE event type contains CR or LF";
      case error::invalid_id: return "SSE id contains CR, LF or NUL";
      case error::invalid_retry: return "SSE retry time is negative";
      case error::invalid_utf8: return "SSE text is not valid UTF-8";
      case error::type_without_data: return "SSE event type given without data";
      case error::line_too_long: return "SSE line too long";
      case error::event_too_large: return "SSE event data too large";
    }
    return "unknown switchboard.sse error";
  }
};
}  // namespace detail

/// The category of `switchboard::sse::error`.
inline const std::error_category& sse_category() noexcept {
  static const detail::sse_category_impl instance;
  return instance;
}

inline std::error_code make_error_code(error e) noexcept { return {static_cast<int>(e), sse_category()}; }

}  // namespace switchboard::sse

template <>
struct std::is_error_code_enum<switchboard::sse::error> : std::true_type {};
