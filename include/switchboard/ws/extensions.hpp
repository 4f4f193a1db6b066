// switchboard/ws/extensions.hpp
//
// The `Sec-WebSocket-Extensions` header (RFC 6455 §9.1): a client lists the extensions it offers, in order of
// preference, each with parameters; the server answers with those it accepts. This header parses the grammar
// only; what the parameters mean belongs to each extension (permessage-deflate: deflate.hpp).
//
//   Sec-WebSocket-Extensions = extension-list
//   extension-list = 1#extension
//   extension = extension-token *( ";" extension-param )
//   extension-token = registered-token
//   registered-token = token
//   extension-param = token [ "=" (token | quoted-string) ]
//       ; When using the quoted-string syntax variant, the value after quoted-string unescaping MUST conform
//       ; to the 'token' ABNF.
//
// Whitespace (OWS) is allowed around ',' ';' and '=' (RFC 9110 §5.6.1, §5.6.6); empty list elements are
// skipped. A header that appears on several lines is one list: join the lines with ", " before parsing
// (RFC 9110 §5.3).
#pragma once

#include <switchboard/ws/detail/http_grammar.hpp>
#include <switchboard/ws/error.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace switchboard::ws {

/// One parameter of an extension: a name and an optional value (quoted values are stored unescaped).
struct extension_param {
  std::string name{};                  ///< parameter name, as written
  std::optional<std::string> value{};  ///< its value, or nullopt for a bare name
};

/// One element of the extension list: an extension name and its parameters in order.
struct extension {
  std::string name{};                     ///< extension token, as written (compare case-insensitively)
  std::vector<extension_param> params{};  ///< parameters in the order written (duplicates are kept)
};

/// Parses a `Sec-WebSocket-Extensions` value into `out` (cleared first). Returns `error::invalid_header_syntax`
/// if the value does not follow the grammar above, or lists no extension at all; `out` is then unspecified.
/// A server that gets this error should answer 400 (RFC 6455 §4.2.1 leaves it open, but a header we cannot read
/// is not one we should guess at); a client that gets it from a server fails the connection.
inline std::error_code parse_extensions(std::string_view header, std::vector<extension>& out) {
  out.clear();
  detail::field_cursor in(header);
  std::string quoted;
  while (in.next_list_element()) {
    extension ext;
    ext.name = std::string(in.token());
    if (ext.name.empty()) return error::invalid_header_syntax;
    for (;;) {
      in.skip_ows();
      if (!in.take(';')) break;
      in.skip_ows();
      extension_param param;
      param.name = std::string(in.token());
      if (param.name.empty()) return error::invalid_header_syntax;
      in.skip_ows();
      if (in.take('=')) {
        in.skip_ows();
        if (in.peek() == '"') {
          if (!in.quoted_string(quoted) || !detail::is_token(quoted)) return error::invalid_header_syntax;
          param.value = quoted;
        } else {
          const std::string_view value = in.token();
          if (value.empty()) return error::invalid_header_syntax;
          param.value = std::string(value);
        }
      }
      ext.params.push_back(std::move(param));
    }
    out.push_back(std::move(ext));
    // After an element only a separator (or the end) may follow.
    in.skip_ows();
    if (!in.done() && in.peek() != ',') return error::invalid_header_syntax;
  }
  if (out.empty()) return error::invalid_header_syntax;
  return {};
}

}  // namespace switchboard::ws
