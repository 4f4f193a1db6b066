// switchboard/resp/error.hpp
//
// Errors of the RESP codecs (the Redis serialization protocol, RESP2 and RESP3). The first group comes from the
// server-side command parser: each value has an exact Redis 7 reply text (`command_parser::error_reply()`), which
// a server sends before it closes the connection, as Redis does. The second group comes from the client-side reply
// parser. Every value of these two groups means the stream is unusable: the connection must be closed. The third
// group is the outcome of `resp::client` operations.
#pragma once

#include <string>
#include <system_error>

namespace switchboard::resp {

/// Errors reported by `command_parser` and `reply_parser`.
enum class error {
  // --- command parser (what a client sent to us) ---
  /// An inline command line is longer than `command_parser_options::max_inline_size`
  /// (Redis: "Protocol error: too big inline request").
  inline_request_too_big = 1,
  /// The `*<count>` line of a multibulk command is longer than `max_inline_size`
  /// (Redis: "Protocol error: too big mbulk count string").
  multibulk_count_too_big,
  /// A `$<length>` line is longer than `max_inline_size` (Redis: "Protocol error: too big bulk count string").
  bulk_count_too_big,
  /// The `*<count>` of a command is not a decimal integer, or exceeds `max_multibulk_count`, or its line does not
  /// end with CRLF (Redis: "Protocol error: invalid multibulk length").
  invalid_multibulk_length,
  /// A `$<length>` is not a non-negative decimal integer, or exceeds `max_bulk_length`, or its line does not end
  /// with CRLF (Redis: "Protocol error: invalid bulk length").
  invalid_bulk_length,
  /// An argument of a multibulk command does not start with `$` (Redis: "Protocol error: expected '$', got '%c'").
  expected_bulk_string,
  /// An inline command has an unterminated quote, or a closing quote followed by something other than a space
  /// (Redis: "Protocol error: unbalanced quotes in request").
  unbalanced_quotes,
  /// The bytes after a bulk payload are not CRLF. Redis skips those two bytes unchecked; we reject them, so that
  /// a wrong length cannot shift the stream into a different command (the reply text is "invalid bulk length").
  bulk_not_terminated,

  // --- reply parser (what a server sent to us) ---
  /// A value starts with a byte that is not a RESP2/RESP3 type marker.
  unexpected_type,
  /// A line contains a CR not followed by LF, or an LF not preceded by CR (RESP lines end with CRLF).
  invalid_line,
  /// A line (simple string, error, number) is longer than `reply_parser_options::max_line_length`.
  line_too_long,
  /// The length of a bulk string or aggregate is not a decimal integer (or `-1` where RESP2 allows a null).
  invalid_length,
  /// A bulk string, blob error or verbatim string is longer than `reply_parser_options::max_bulk_length`.
  bulk_too_long,
  /// An aggregate announces more elements than `reply_parser_options::max_aggregate_length`.
  too_many_elements,
  /// Aggregates are nested deeper than `reply_parser_options::max_depth`.
  nesting_too_deep,
  /// An integer (`:`) is not a decimal 64-bit signed integer.
  invalid_integer,
  /// A double (`,`) does not follow the RESP3 grammar or is out of range.
  invalid_double,
  /// A boolean (`#`) is not `t` or `f`.
  invalid_boolean,
  /// A null (`_`) has bytes between the marker and CRLF.
  invalid_null,
  /// A verbatim string (`=`) does not start with a three-byte format and a colon (`txt:`).
  invalid_verbatim_string,
  /// A streamed string or aggregate (`$?`, `*?`, ...): RESP3 allows them, Redis never sends them, we do not read them.
  streamed_not_supported,

  // -- client (resp/client.hpp)
  /// A command was issued on a client that is not connected (never connected, or closed).
  not_connected,
  /// The connection was lost (or closed) before the reply arrived.
  connection_lost,
  /// The server refused the connection set-up: HELLO, AUTH or CLIENT SETNAME answered an error.
  handshake_failed,
  /// More commands are waiting for replies than `client_options::max_pending` allows.
  too_many_pending,
  /// `client::async_exec` does not send this command, because it would put the client out of step with the
  /// connection: HELLO, RESET, MONITOR, CLIENT REPLY, SYNC, PSYNC, REPLCONF. Nothing was sent; the connection goes on.
  command_refused,
};

namespace detail {
class resp_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "switchboard.resp"; }
  std::string message(int value) const override {
    switch (static_cast<error>(value)) {
      case error::inline_request_too_big: return "too big inline request";
      case error::multibulk_count_too_big: return "too big mbulk count string";
      case error::bulk_count_too_big: return "too big bulk count string";
      case error::invalid_multibulk_length: return "invalid multibulk length";
      case error::invalid_bulk_length: return "invalid bulk length";
      case error::expected_bulk_string: return "expected '$' before a command argument";
      case error::unbalanced_quotes: return "unbalanced quotes in request";
      case error::bulk_not_terminated: return "bulk string not followed by CRLF";
      case error::unexpected_type: return "unexpected RESP type byte";
      case error::invalid_line: return "bare CR or LF in a RESP line";
      case error::line_too_long: return "RESP line too long";
      case error::invalid_length: return "invalid RESP length";
      case error::bulk_too_long: return "RESP bulk string too long";
      case error::too_many_elements: return "RESP aggregate has too many elements";
      case error::nesting_too_deep: return "RESP aggregates nested too deep";
      case error::invalid_integer: return "invalid RESP integer";
      case error::invalid_double: return "invalid RESP double";
      case error::invalid_boolean: return "invalid RESP boolean";
      case error::invalid_null: return "invalid RESP null";
      case error::invalid_verbatim_string: return "invalid RESP verbatim string";
      case error::streamed_not_supported: return "RESP streamed strings and aggregates are not supported";
      case error::not_connected: return "not connected";
      case error::connection_lost: return "connection lost before the reply";
      case error::handshake_failed: return "the server refused the connection set-up (HELLO, AUTH or SETNAME)";
      case error::too_many_pending: return "too many commands waiting for replies";
      case error::command_refused:
        return "command refused by the client: it would put the connection out of step (HELLO, RESET, MONITOR, "
               "CLIENT REPLY, SYNC, PSYNC, REPLCONF)";
    }
    return "unknown switchboard.resp error";
  }
};
}  // namespace detail

/// The category of `switchboard::resp::error`.
inline const std::error_category& resp_category() noexcept {
  static const detail::resp_category_impl instance;
  return instance;
}

inline std::error_code make_error_code(error e) noexcept { return {static_cast<int>(e), resp_category()}; }

}  // namespace switchboard::resp

template <>
struct std::is_error_code_enum<switchboard::resp::error> : std::true_type {};
