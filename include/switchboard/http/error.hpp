// switchboard/http/error.hpp
//
// Errors of the HTTP/1.1 codec and the server and client built on it. Every parse error maps to the status the
// server answers with (`status_for`) before it closes the connection: a message that cannot be framed
// unambiguously is never processed further (RFC 9112 §6.3, §11.2 on request smuggling).
#pragma once

#include <switchboard/http/status.hpp>

#include <string>
#include <system_error>

namespace switchboard::http {

enum class error {
  // -- request line / status line
  /// The request line is not `method SP request-target SP HTTP-version CRLF` (RFC 9112 §3).
  bad_request_line = 1,
  /// The method is not a token (RFC 9110 §9.1).
  bad_method,
  /// The request-target holds a character no URI allows, or is empty (RFC 9112 §3.2).
  bad_target,
  /// The HTTP-version is malformed (RFC 9112 §2.3).
  bad_version,
  /// The HTTP-version is well-formed but not 1.0 or 1.1: answered 505 (RFC 9110 §15.6.6).
  unsupported_version,
  /// The status line of a response is malformed (RFC 9112 §4).
  bad_status_line,
  /// The request-target is longer than `parser_limits::max_target`: answered 414 (RFC 9110 §15.5.15).
  target_too_long,

  // -- header section
  /// A field name is empty or holds a character that is not a token character (RFC 9110 §5.1).
  bad_field_name,
  /// Whitespace between a field name and the colon: must be rejected (RFC 9112 §5.1).
  whitespace_before_colon,
  /// A line starting with whitespace continues the previous field (obs-fold): rejected (RFC 9112 §5.2).
  obsolete_line_folding,
  /// A field value holds a control character (NUL, bare CR, ...) (RFC 9110 §5.5).
  bad_field_value,
  /// A line ends with a bare LF, or a CR is not followed by LF (RFC 9112 §2.2): rejected, since peers that treat
  /// them differently disagree on where fields end.
  bad_line_ending,
  /// The header section is larger than `parser_limits::max_header_bytes`: answered 431 (RFC 6585 §5).
  header_too_large,
  /// More fields than `parser_limits::max_fields`: answered 431.
  too_many_fields,
  /// An HTTP/1.1 request without a Host field, a request with more than one, or one whose value is not
  /// uri-host [":" port] (RFC 9112 §3.2).
  bad_host,

  // -- framing (RFC 9112 §6)
  /// Both Content-Length and Transfer-Encoding: a request smuggling vector, rejected (RFC 9112 §6.1, §6.3).
  content_length_and_transfer_encoding,
  /// Content-Length is not a non-negative decimal integer, or overflows (RFC 9110 §8.6).
  bad_content_length,
  /// Several Content-Length values that differ (RFC 9110 §8.6, RFC 9112 §6.3 item 5).
  conflicting_content_length,
  /// Transfer-Encoding whose final coding is not chunked, or chunked applied twice (RFC 9112 §6.1, §6.3).
  bad_transfer_encoding,
  /// A transfer coding other than chunked: answered 501 (RFC 9112 §6.1).
  unsupported_transfer_encoding,
  /// A chunk-size that is not hexadecimal or a malformed chunk line (RFC 9112 §7.1).
  bad_chunk,
  /// A chunk-size too large to represent (more than 16 hex digits' worth).
  chunk_size_overflow,
  /// A chunk line (size plus extensions) longer than `parser_limits::max_chunk_line`.
  chunk_line_too_long,
  /// The body is larger than the body limit: answered 413 (RFC 9110 §15.5.14).
  body_too_large,

  // -- connection level
  /// The peer closed the connection in the middle of a message.
  partial_message,
  /// A read of the header section took longer than its deadline.
  header_timeout,
  /// A read of the body took longer than its deadline.
  body_timeout,
  /// Writing a response (or request) took longer than its deadline.
  write_timeout,
  /// The peer sent a request body where the handler's route expected none, or similar misuse of the API.
  bad_request,
};

/// The status a server answers with when parsing fails with `e` (400 unless a more precise one exists).
constexpr status status_for(error e) noexcept {
  switch (e) {
    case error::unsupported_version: return status::http_version_not_supported;
    case error::target_too_long: return status::uri_too_long;
    case error::header_too_large:
    case error::too_many_fields: return status::request_header_fields_too_large;
    case error::unsupported_transfer_encoding: return status::not_implemented;
    case error::body_too_large: return status::payload_too_large;
    case error::header_timeout:
    case error::body_timeout: return status::request_timeout;
    default: return status::bad_request;
  }
}

namespace detail {
class http_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "switchboard.http"; }
  std::string message(int value) const override {
    switch (static_cast<error>(value)) {
      case error::bad_request_line: return "malformed request line";
      case error::bad_method: return "method is not a token";
      case error::bad_target: return "invalid request-target";
      case error::bad_version: return "malformed HTTP version";
      case error::unsupported_version: return "HTTP version not supported";
      case error::bad_status_line: return "malformed status line";
      case error::target_too_long: return "request-target too long";
      case error::bad_field_name: return "invalid field name";
      case error::whitespace_before_colon: return "whitespace between field name and colon";
      case error::obsolete_line_folding: return "obsolete line folding";
      case error::bad_field_value: return "invalid character in field value";
      case error::bad_line_ending: return "bare CR or LF";
      case error::header_too_large: return "header section too large";
      case error::too_many_fields: return "too many header fields";
      case error::bad_host: return "missing, repeated or invalid Host";
      case error::content_length_and_transfer_encoding: return "both Content-Length and Transfer-Encoding";
      case error::bad_content_length: return "invalid Content-Length";
      case error::conflicting_content_length: return "conflicting Content-Length values";
      case error::bad_transfer_encoding: return "final transfer coding is not chunked";
      case error::unsupported_transfer_encoding: return "transfer coding not implemented";
      case error::bad_chunk: return "malformed chunk";
      case error::chunk_size_overflow: return "chunk size overflow";
      case error::chunk_line_too_long: return "chunk line too long";
      case error::body_too_large: return "body too large";
      case error::partial_message: return "connection closed in the middle of a message";
      case error::header_timeout: return "timed out reading the header section";
      case error::body_timeout: return "timed out reading the body";
      case error::write_timeout: return "timed out writing";
      case error::bad_request: return "bad request";
    }
    return "unknown switchboard.http error";
  }
};
}  // namespace detail

/// The category of `switchboard::http::error`.
inline const std::error_category& http_category() noexcept {
  static const detail::http_category_impl instance;
  return instance;
}

inline std::error_code make_error_code(error e) noexcept { return {static_cast<int>(e), http_category()}; }

}  // namespace switchboard::http

template <>
struct std::is_error_code_enum<switchboard::http::error> : std::true_type {};
