// switchboard/http/status.hpp: status codes (RFC 9110 §15) and their reason phrases.
#pragma once

#include <string_view>

namespace switchboard::http {

/// A response status code. Any value 100-999 is representable; the named ones are those of RFC 9110 and the few
/// extensions the library itself sends (RFC 6585's 428, 429, 431) or its examples do (RFC 4918's 507).
enum class status : unsigned short {
  continue_ = 100,
  switching_protocols = 101,
  ok = 200,
  created = 201,
  accepted = 202,
  no_content = 204,
  partial_content = 206,
  moved_permanently = 301,
  found = 302,
  see_other = 303,
  not_modified = 304,
  temporary_redirect = 307,
  permanent_redirect = 308,
  bad_request = 400,
  unauthorized = 401,
  forbidden = 403,
  not_found = 404,
  method_not_allowed = 405,
  not_acceptable = 406,
  request_timeout = 408,
  conflict = 409,
  gone = 410,
  length_required = 411,
  precondition_failed = 412,
  payload_too_large = 413,
  uri_too_long = 414,
  unsupported_media_type = 415,
  expectation_failed = 417,
  unprocessable_content = 422,
  precondition_required = 428,
  too_many_requests = 429,
  request_header_fields_too_large = 431,
  internal_server_error = 500,
  not_implemented = 501,
  bad_gateway = 502,
  service_unavailable = 503,
  gateway_timeout = 504,
  http_version_not_supported = 505,
  insufficient_storage = 507,  // RFC 4918 §11.5
};

/// The status code as an integer.
constexpr unsigned to_int(status s) noexcept { return static_cast<unsigned>(s); }

/// The reason phrase for a status (RFC 9110 §15), or "Unknown" for codes without a registered phrase here.
constexpr std::string_view reason_phrase(status s) noexcept {
  switch (s) {
    case status::continue_: return "Continue";
    case status::switching_protocols: return "Switching Protocols";
    case status::ok: return "OK";
    case status::created: return "Created";
    case status::accepted: return "Accepted";
    case status::no_content: return "No Content";
    case status::partial_content: return "Partial Content";
    case status::moved_permanently: return "Moved Permanently";
    case status::found: return "Found";
    case status::see_other: return "See Other";
    case status::not_modified: return "Not Modified";
    case status::temporary_redirect: return "Temporary Redirect";
    case status::permanent_redirect: return "Permanent Redirect";
    case status::bad_request: return "Bad Request";
    case status::unauthorized: return "Unauthorized";
    case status::forbidden: return "Forbidden";
    case status::not_found: return "Not Found";
    case status::method_not_allowed: return "Method Not Allowed";
    case status::not_acceptable: return "Not Acceptable";
    case status::request_timeout: return "Request Timeout";
    case status::conflict: return "Conflict";
    case status::gone: return "Gone";
    case status::length_required: return "Length Required";
    case status::precondition_failed: return "Precondition Failed";
    case status::payload_too_large: return "Content Too Large";
    case status::uri_too_long: return "URI Too Long";
    case status::unsupported_media_type: return "Unsupported Media Type";
    case status::expectation_failed: return "Expectation Failed";
    case status::unprocessable_content: return "Unprocessable Content";
    case status::precondition_required: return "Precondition Required";
    case status::too_many_requests: return "Too Many Requests";
    case status::request_header_fields_too_large: return "Request Header Fields Too Large";
    case status::internal_server_error: return "Internal Server Error";
    case status::not_implemented: return "Not Implemented";
    case status::bad_gateway: return "Bad Gateway";
    case status::service_unavailable: return "Service Unavailable";
    case status::gateway_timeout: return "Gateway Timeout";
    case status::http_version_not_supported: return "HTTP Version Not Supported";
    case status::insufficient_storage: return "Insufficient Storage";
  }
  return "Unknown";
}

/// True for statuses whose responses never carry content (RFC 9110 §6.4.1): 1xx, 204 and 304.
constexpr bool has_no_content(status s) noexcept {
  const unsigned code = to_int(s);
  return code < 200 || code == 204 || code == 304;
}

}  // namespace switchboard::http
