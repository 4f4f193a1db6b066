// http_request: the one request http_load sends over and over (benchmarks/load/tools/http_load.cpp), built once
// before the run so that the load loop only copies bytes.
//
// GET without a body gives exactly `GET TARGET HTTP/1.1`, `Host`, and the empty line, as http_load always sent;
// a method with content (POST /jobs for benchmarks/load/jobs.sh) adds `Content-Type` when given and
// `Content-Length` (RFC 9112 §6.2: the only framing a client needs for a body it knows in advance).
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

namespace http_load {

/// What varies between the requests of different runs.
struct request_spec {
  std::string method = "GET";
  std::string target = "/plaintext";
  std::string host;           ///< the Host field value, "address:port" (RFC 9112 §3.2)
  std::string content_type;   ///< empty: no Content-Type field
  std::string body;           ///< the content
  bool has_body = false;      ///< a body was given, even an empty one: Content-Length is sent
};

/// Whether `c` is a tchar, the characters of a token (RFC 9110 §5.6.2).
inline bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

/// Why `method` cannot be sent by http_load, or empty when it can. A method is a token (RFC 9110 §9.1);
/// HEAD and CONNECT are refused because their responses are framed differently from every other one (RFC 9112
/// §6.3 items 1 and 2), which http_load's response parser does not do.
inline std::string method_problem(std::string_view method) {
  if (method.empty() || !std::all_of(method.begin(), method.end(), is_token_char)) {
    return "the method must be a token (letters, digits, !#$%&'*+-.^_`|~)";
  }
  if (method == "HEAD" || method == "CONNECT") {
    return std::string(method) + " responses are framed differently, which http_load does not handle";
  }
  return {};
}

/// Whether `value` can be a field value as is: no control characters but tab (RFC 9110 §5.5), so no line break
/// that would end the field early.
inline bool is_field_value(std::string_view value) {
  return std::none_of(value.begin(), value.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

/// Methods whose requests carry content by definition (RFC 9110 §9.3.3, §9.3.4, RFC 5789): Content-Length is
/// sent for them even without a body, since a server may refuse such a request without one (411, RFC 9110
/// §15.5.12).
inline bool expects_content(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH";
}

/// The bytes of the request `spec` describes.
inline std::string build_request(const request_spec& spec) {
  std::string request = spec.method + " " + spec.target + " HTTP/1.1\r\nHost: " + spec.host + "\r\n";
  if (!spec.content_type.empty()) request += "Content-Type: " + spec.content_type + "\r\n";
  if (spec.has_body || expects_content(spec.method)) {
    request += "Content-Length: " + std::to_string(spec.body.size()) + "\r\n";
  }
  request += "\r\n";
  request += spec.body;
  return request;
}

/// Whether a response with status `status` counts as a success: any 2xx (RFC 9110 §15.3), such as 200 for GET
/// /plaintext or 202 Accepted for POST /jobs.
inline bool is_success(int status) { return status >= 200 && status <= 299; }

}  // namespace http_load
