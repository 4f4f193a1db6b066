// switchboard/http/method.hpp: request methods (RFC 9110 §9).
#pragma once

#include <cstdint>
#include <string_view>

namespace switchboard::http {

/// The standard methods, plus PATCH (RFC 5789). Any other token parses as `method::other` and keeps its text in
/// `request::method_string()`.
enum class method : std::uint8_t { get, head, post, put, delete_, connect, options, trace, patch, other };

inline constexpr std::size_t method_count = 10;

/// The method's token, e.g. "GET"; "" for `other`.
constexpr std::string_view to_string(method m) noexcept {
  switch (m) {
    case method::get: return "GET";
    case method::head: return "HEAD";
    case method::post: return "POST";
    case method::put: return "PUT";
    case method::delete_: return "DELETE";
    case method::connect: return "CONNECT";
    case method::options: return "OPTIONS";
    case method::trace: return "TRACE";
    case method::patch: return "PATCH";
    case method::other: return "";
  }
  return "";
}

/// The method for a token. Methods are case-sensitive (RFC 9110 §9.1): "get" is `other`.
constexpr method to_method(std::string_view token) noexcept {
  switch (token.size()) {
    case 3:
      if (token == "GET") return method::get;
      if (token == "PUT") return method::put;
      break;
    case 4:
      if (token == "HEAD") return method::head;
      if (token == "POST") return method::post;
      break;
    case 5:
      if (token == "PATCH") return method::patch;
      if (token == "TRACE") return method::trace;
      break;
    case 6:
      if (token == "DELETE") return method::delete_;
      break;
    case 7:
      if (token == "OPTIONS") return method::options;
      if (token == "CONNECT") return method::connect;
      break;
  }
  return method::other;
}

/// Safe methods (RFC 9110 §9.2.1) do not change server state.
constexpr bool is_safe(method m) noexcept {
  return m == method::get || m == method::head || m == method::options || m == method::trace;
}

/// Idempotent methods (RFC 9110 §9.2.2) may be retried automatically after a connection failure.
constexpr bool is_idempotent(method m) noexcept {
  return is_safe(m) || m == method::put || m == method::delete_;
}

}  // namespace switchboard::http
