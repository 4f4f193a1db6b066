// switchboard/sse/parser.hpp
//
// The client side of Server-Sent Events: interprets an event stream as a browser's EventSource does (WHATWG HTML
// §9.2.6 "Interpreting an event stream"), fed bytes in pieces of any size, without I/O.
//
// What it implements, in the spec's terms:
//  - the stream is UTF-8; one leading BOM (EF BB BF) is skipped; ill-formed UTF-8 is replaced by U+FFFD as the
//    WHATWG UTF-8 decoder does (or, with `utf8_policy::reject`, is an error);
//  - lines end with CRLF, LF or CR, and a CRLF may be split between two pieces;
//  - an empty line dispatches the event; a line starting with ':' is a comment; otherwise the field name is what
//    precedes the first ':' (the whole line if none) and the value what follows it, less one leading space;
//  - `event` sets the event type buffer; `data` appends the value and an LF to the data buffer; `id` sets the
//    last event ID buffer unless the value contains NUL; `retry` sets the reconnection time when the value is
//    all ASCII digits; other fields are ignored; names are case-sensitive;
//  - on dispatch the stream's last event ID becomes the buffer's (even when nothing is dispatched); a block
//    with an empty data buffer dispatches nothing; otherwise the trailing LF is removed from the data and the
//    type defaults to "message"; the data and type buffers are then cleared, the last event ID buffer is not;
//  - a block not ended by an empty line when the stream ends is never dispatched.
//
// Limits, so that a peer cannot make the client buffer without bound: the length of one line and the size of
// one event's data (`parser_options`). Exceeding one is an error, after which the parser stays failed until
// `restart`.
#pragma once

#include <switchboard/core/detail/utf8.hpp>
#include <switchboard/sse/detail/line_break.hpp>
#include <switchboard/sse/error.hpp>
#include <switchboard/sse/event.hpp>

#include <charconv>
#include <chrono>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace switchboard::sse {

/// What the parser does with bytes that are not well-formed UTF-8.
enum class utf8_policy {
  /// Replace each ill-formed subsequence with U+FFFD, as browsers do (WHATWG Encoding Standard, "UTF-8 decode").
  replace,
  /// Fail with `error::invalid_utf8`, for clients that must notice corrupted streams (tests, load clients).
  reject,
};

/// Limits and behaviour of `sse::parser`. Usable with designated initializers.
struct parser_options {
  /// The longest line accepted, in bytes, without its line ending. Default 256 KiB.
  std::size_t max_line_bytes = 256 * 1024;
  /// The largest data of one event accepted, in bytes (the data lines and the LFs that join them). Default 1 MiB.
  std::size_t max_event_bytes = 1024 * 1024;
  /// What to do with ill-formed UTF-8. Default: replace it, as browsers do.
  utf8_policy utf8 = utf8_policy::replace;
};

/// An incremental event stream parser for one event source. Not thread-safe: one per stream.
///
///     sse::parser p;
///     if (auto ec = p.feed(bytes, [&](const sse::message& m) { handle(m.type, m.data); })) fail(ec);
///     // on reconnection: send p.last_event_id() as Last-Event-ID, wait p.retry(), then p.restart()
///
/// Steady state allocates nothing: the buffers of one event are reused for the next.
class parser {
 public:
  /// Throws `std::invalid_argument` if a limit is 0.
  explicit parser(parser_options options = {}) : options_(options) {
    if (options_.max_line_bytes == 0 || options_.max_event_bytes == 0) {
      throw std::invalid_argument("switchboard::sse::parser: max_line_bytes and max_event_bytes must be at least 1");
    }
  }

  /// The limits and policy given at construction.
  const parser_options& options() const noexcept { return options_; }

  /// Parses the next `bytes` of the stream and calls `on_message(const sse::message&)` for each event they
  /// complete, in order; the message is valid during the call only. A line or event cut by the end of `bytes`
  /// is kept for the next call. Returns the error that stopped parsing, or no error; after an error, every call
  /// returns that error until `restart`. If `on_message` throws, the exception propagates, the rest of `bytes`
  /// is not parsed, and the parser must be restarted before it is fed again.
  template <class OnMessage>
  std::error_code feed(std::string_view bytes, OnMessage&& on_message) {
    if (failed_) return failed_;
    const char* p = bytes.data();
    const char* const end = p + bytes.size();
    // A CR ended the previous piece: an LF that starts this one belongs to the same line ending (CRLF).
    if (after_cr_ && p != end) {
      after_cr_ = false;
      if (*p == '\n') ++p;
    }
    while (p != end) {
      const char* const eol = p + detail::find_line_break(std::string_view(p, static_cast<std::size_t>(end - p)));
      const std::size_t length = static_cast<std::size_t>(eol - p);
      if (partial_.size() + length > options_.max_line_bytes) return fail(error::line_too_long);
      if (eol == end) {
        partial_.append(p, length);  // the line goes on in the next piece
        break;
      }
      // Most lines lie wholly inside one piece: read them in place, copying only a line that began earlier.
      std::string_view line(p, length);
      if (!partial_.empty()) {
        partial_.append(p, length);
        line = partial_;
      }
      p = eol + 1;
      if (*eol == '\r') {
        if (p == end) {
          after_cr_ = true;
        } else if (*p == '\n') {
          ++p;
        }
      }
      const std::error_code ec = process_line(line, on_message);
      partial_.clear();
      if (ec) return fail(ec);
    }
    return {};
  }

  /// The stream's last event ID: what a reconnecting client sends as `Last-Event-ID` (§9.2.4).
  const std::string& last_event_id() const noexcept { return message_.last_event_id; }

  /// The reconnection time set by the last valid `retry` field, if any.
  std::optional<std::chrono::milliseconds> retry() const noexcept { return retry_; }

  /// Starts a new stream from the same event source, after a reconnection: forgets a partial line, an event not
  /// yet dispatched and a previous error, and looks for a BOM again; keeps `last_event_id()` and `retry()`.
  void restart() noexcept {
    partial_.clear();
    after_cr_ = false;
    at_stream_start_ = true;
    message_.type.clear();
    message_.data.clear();
    id_buffer_ = message_.last_event_id;
    failed_ = {};
  }

 private:
  std::error_code fail(std::error_code ec) noexcept {
    failed_ = ec;
    return failed_;
  }

  template <class OnMessage>
  std::error_code process_line(std::string_view line, OnMessage& on_message) {
    if (at_stream_start_) {
      at_stream_start_ = false;
      if (line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
    }
    const std::size_t valid = switchboard::detail::utf8_valid_prefix(line);
    if (valid != line.size()) {
      if (options_.utf8 == utf8_policy::reject) return error::invalid_utf8;
      decoded_.clear();
      switchboard::detail::append_utf8_replacing_invalid(line, decoded_);
      line = decoded_;
    }

    if (line.empty()) return dispatch(on_message);
    if (line.front() == ':') return {};  // a comment
    const std::size_t colon = line.find(':');
    const std::string_view name = line.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
      value = line.substr(colon + 1);
      if (value.starts_with(' ')) value.remove_prefix(1);
    }

    if (name == "data") {
      // The buffer holds the data so far plus one LF, which joins it to this line (or is removed on dispatch).
      if (message_.data.size() + value.size() > options_.max_event_bytes) return error::event_too_large;
      message_.data.append(value);
      message_.data.push_back('\n');
    } else if (name == "event") {
      message_.type.assign(value);
    } else if (name == "id") {
      if (value.find('\0') == std::string_view::npos) id_buffer_.assign(value);
    } else if (name == "retry") {
      set_retry(value);
    }
    return {};
  }

  void set_retry(std::string_view value) noexcept {
    if (value.empty()) return;
    for (char c : value) {
      if (c < '0' || c > '9') return;
    }
    std::chrono::milliseconds::rep count = 0;
    const auto result = std::from_chars(value.data(), value.data() + value.size(), count);
    if (result.ec == std::errc{}) retry_ = std::chrono::milliseconds(count);  // too large a number is ignored
  }

  template <class OnMessage>
  std::error_code dispatch(OnMessage& on_message) {
    message_.last_event_id = id_buffer_;
    if (message_.data.empty()) {
      message_.type.clear();
      return {};
    }
    message_.data.pop_back();  // the LF appended after the last data line
    if (message_.type.empty()) message_.type = "message";
    on_message(static_cast<const message&>(message_));
    message_.data.clear();
    message_.type.clear();
    return {};
  }

  parser_options options_;
  message message_;             // the event type and data buffers, and the stream's last event ID
  std::string id_buffer_;       // the last event ID buffer: becomes the stream's last event ID on dispatch
  std::string partial_;         // a line cut by the end of the previous piece
  std::string decoded_;         // a line with its ill-formed UTF-8 replaced
  std::optional<std::chrono::milliseconds> retry_;
  std::error_code failed_;      // the error that stopped parsing, if any
  bool after_cr_ = false;       // the previous piece ended with CR
  bool at_stream_start_ = true; // no line read yet: the first one may start with a BOM
};

}  // namespace switchboard::sse
