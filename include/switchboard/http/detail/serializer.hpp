// switchboard/http/detail/serializer.hpp
//
// Writes response heads (RFC 9112 §4, §6). The server owns framing: it writes Content-Length or
// Transfer-Encoding and Connection itself, and drops any the handler set, so that a handler can never produce a
// message whose framing disagrees with its body.
#pragma once

#include <switchboard/http/detail/chars.hpp>
#include <switchboard/http/response.hpp>
#include <switchboard/http/status.hpp>

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

// Appends below use std::string_view literals: appending a `const char*` would call strlen every time.

namespace switchboard::http::detail {

using namespace std::string_view_literals;

/// How the server frames a response.
struct head_info {
  int version_minor = 1;        ///< of the request: an HTTP/1.0 client gets an HTTP/1.1 response it understands
  bool keep_alive = true;       ///< false: "Connection: close"
  bool upgrade = false;         ///< 101 Switching Protocols: "Connection: upgrade" (RFC 9110 §7.8)
  bool chunked = false;         ///< streamed body: "Transfer-Encoding: chunked" (HTTP/1.1 clients only)
  bool send_length = true;      ///< write Content-Length (false for 1xx, 204, and streamed bodies)
  std::uint64_t content_length = 0;
  std::string_view date;        ///< the cached IMF-fixdate
  std::string_view server;      ///< "Server" field value, or empty for none
};

template <class String>
void append_decimal(String& out, std::uint64_t v) {
  char digits[20];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
  (void)ec;
  out.append(digits, static_cast<std::size_t>(end - digits));
}

template <class String>
void append_status_line(String& out, status s) {
  const unsigned code = to_int(s);
  const std::string_view reason = reason_phrase(s);
  out.append("HTTP/1.1 "sv);
  const char digits[3] = {static_cast<char>('0' + code / 100), static_cast<char>('0' + code / 10 % 10),
                          static_cast<char>('0' + code % 10)};
  out.append(digits, 3);
  out.push_back(' ');
  out.append(reason == "Unknown" ? std::string_view() : reason);
  out.append("\r\n"sv);
}

/// True for the fields the server writes itself (framing and connection management).
inline bool is_framing_field(std::string_view name) noexcept {
  switch (name.size()) {
    case 4: return iequals(name, "date");
    case 10: return iequals(name, "connection") || iequals(name, "keep-alive");
    case 14: return iequals(name, "content-length");
    case 17: return iequals(name, "transfer-encoding");
    default: return false;
  }
}

/// Appends the status line and header section of `r` to `out` (a std::basic_string of char).
template <class String>
void append_response_head(String& out, const response& r, const head_info& info) {
  append_status_line(out, r.status());
  if (!info.date.empty()) out.append("Date: "sv).append(info.date).append("\r\n"sv);
  // One Server field (RFC 9110 §10.2.4): a handler's own wins over the server's.
  if (!info.server.empty() && !r.headers().contains("server")) {
    out.append("Server: "sv).append(info.server).append("\r\n"sv);
  }
  const std::string_view fields = r.headers().serialized();
  // Fast path: copy the handler's fields in one go unless one of them is a framing field.
  bool has_framing = false;
  r.headers().for_each([&](std::string_view name, std::string_view) { has_framing = has_framing || is_framing_field(name); });
  if (!has_framing) {
    out.append(fields);
  } else {
    r.headers().for_each([&](std::string_view name, std::string_view value) {
      if (!is_framing_field(name)) out.append(name).append(": "sv).append(value).append("\r\n"sv);
    });
  }
  if (info.chunked) {
    out.append("Transfer-Encoding: chunked\r\n"sv);
  } else if (info.send_length) {
    out.append("Content-Length: "sv);
    append_decimal(out, info.content_length);
    out.append("\r\n"sv);
  }
  if (info.upgrade) {
    out.append("Connection: upgrade\r\n"sv);
  } else if (!info.keep_alive) {
    out.append("Connection: close\r\n"sv);
  } else if (info.version_minor == 0) {
    out.append("Connection: keep-alive\r\n"sv);
  }
  out.append("\r\n"sv);
}

/// A chunk header for `size` bytes of data: hex size and CRLF (RFC 9112 §7.1).
inline std::size_t format_chunk_header(char (&buffer)[20], std::size_t size) {
  const auto [end, ec] = std::to_chars(buffer, buffer + 16, size, 16);
  (void)ec;
  end[0] = '\r';
  end[1] = '\n';
  return static_cast<std::size_t>(end - buffer) + 2;
}

}  // namespace switchboard::http::detail
