// switchboard/http/parser.hpp
//
// A sans-I/O, incremental HTTP/1.1 message parser (RFC 9112) for requests and responses.
//
// Usage: keep the bytes read from the peer in a buffer; call `put` with the unconsumed part. `put` returns how
// many bytes it consumed; keep the rest and call again with more data appended. The header section is consumed
// only when complete, in one step, so the field views (`fields()`, `target()`, ...) point into your buffer and stay
// valid as long as you keep those bytes in place (until `reset`). Body bytes come out one piece per `put`
// (`body_piece()`, also a view into your buffer). Any split of the input gives the same result.
//
// Strict by default: every ambiguity a request smuggling attack could exploit is an error (see error.hpp), and
// every size is limited (`parser_limits`). On error the parser is unusable; the server answers `status_for(ec)`
// and closes the connection.
#pragma once

#include <switchboard/http/chunked_decoder.hpp>
#include <switchboard/http/detail/chars.hpp>
#include <switchboard/http/detail/field_parser.hpp>
#include <switchboard/http/error.hpp>
#include <switchboard/http/fields.hpp>
#include <switchboard/http/method.hpp>
#include <switchboard/http/status.hpp>
#include <switchboard/http/url.hpp>

#include <cstdint>
#include <algorithm>
#include <cstring>
#include <optional>
#include <string_view>
#include <system_error>

namespace switchboard::http {

/// Size limits of the parser. Exceeding one is an error with its own status (see `status_for`).
struct parser_limits {
  /// Longest request-target, in bytes: 414 URI Too Long.
  std::size_t max_target = 8 * 1024;
  /// Largest header section (start line, fields and the empty line), in bytes: 431.
  std::size_t max_header_bytes = 16 * 1024;
  /// Most header fields: 431.
  std::size_t max_fields = 100;
  /// Largest body, in bytes (also settable per message with `set_body_limit`, e.g. per route): 413.
  std::uint64_t max_body = 1024 * 1024;
  /// Longest chunk line (size and extensions), in bytes.
  std::size_t max_chunk_line = 4096;
};

/// How the body of the message being parsed is delimited (RFC 9112 §6.3).
enum class body_framing : std::uint8_t {
  none,       ///< No body (no Content-Length nor Transfer-Encoding in a request; 1xx/204/304; HEAD responses).
  length,     ///< Content-Length bytes.
  chunked,    ///< The chunked transfer coding.
  until_eof,  ///< A response without length: the body ends when the server closes the connection.
};

template <bool IsRequest>
class basic_parser {
 public:
  explicit basic_parser(parser_limits limits = {}) noexcept
      : limits_(limits),
        chunked_(chunked_limits{.max_chunk_line = limits.max_chunk_line,
                                .max_trailer_bytes = limits.max_header_bytes,
                                .max_trailer_fields = limits.max_fields,
                                .max_body = limits.max_body}) {}

  /// Parses from `input` (the unconsumed bytes). Returns how many bytes were consumed. After the call:
  ///  - `header_done()` tells whether the header section has been parsed (then the accessors are valid);
  ///  - `body_piece()` holds the body bytes found by this call, if any;
  ///  - `done()` tells whether the message is complete (parse the next one after `reset()`).
  /// It stops right after the header section, after each body piece and at the end of the message, so that the
  /// caller can act on each event (route the request, set a body limit, answer 100-continue, ...).
  std::size_t put(std::string_view input, std::error_code& ec) {
    body_piece_ = {};
    switch (state_) {
      case state::header: return parse_header(input, ec);
      case state::body: return parse_body(input, ec);
      case state::done: return 0;
    }
    return 0;
  }

  /// Tells the parser that the peer closed the stream. Completes an `until_eof` body; anything else in the middle
  /// of a message is `error::partial_message`. Nothing received at all is not an error (the connection just ended).
  void put_eof(std::error_code& ec) noexcept {
    if (state_ == state::body && framing_ == body_framing::until_eof) {
      state_ = state::done;
    } else if (state_ == state::body || (state_ == state::header && scanned_ > 0)) {
      ec = error::partial_message;
    }
  }

  /// Prepares for the next message on the same connection. Keeps the capacity of the field containers.
  void reset() noexcept {
    state_ = state::header;
    scanned_ = 0;
    start_line_seen_ = false;
    partial_line_ = partial_line::unchecked;
    fields_.clear();
    chunked_.reset();
    body_piece_ = {};
    // The decoder's limit too: a route's limit for one message (`set_body_limit`) must not carry over to the next
    // chunked body on the connection, while `body_limit()` said the default was back.
    set_body_limit(limits_.max_body);
    body_received_ = 0;
    content_length_ = 0;
    framing_ = body_framing::none;
    keep_alive_ = false;
    upgrade_ = false;
    expect_continue_ = false;
    header_bytes_ = 0;
    head_response_ = false;
    method_ = method::other;
    method_string_ = {};
    target_ = {};
    status_ = 0;
    reason_ = {};
  }

  /// Frees all memory held for fields (a connection going idle gives its memory back). Implies `reset`.
  void release() noexcept {
    reset();
    fields_.release();
  }

  bool header_done() const noexcept { return state_ != state::header; }
  bool done() const noexcept { return state_ == state::done; }
  std::string_view body_piece() const noexcept { return body_piece_; }

  /// The body limit for this message. Set it after the header (for example from the route) and before the body
  /// arrives; the default is `parser_limits::max_body`.
  void set_body_limit(std::uint64_t limit) noexcept {
    body_limit_ = limit;
    chunked_.set_body_limit(limit);
  }
  std::uint64_t body_limit() const noexcept { return body_limit_; }

  /// For a response parser: the request was HEAD, so the response has no body whatever its fields say.
  /// Call before the response's header is parsed.
  void expect_head_response() noexcept { head_response_ = true; }

  // -- The parsed header section (valid once header_done()).
  /// HTTP/1.x minor version: 0 or 1.
  int version_minor() const noexcept { return version_minor_; }
  const field_views& fields() const noexcept { return fields_; }
  body_framing framing() const noexcept { return framing_; }
  /// The Content-Length value when `framing() == body_framing::length`.
  std::uint64_t content_length() const noexcept { return content_length_; }
  /// Body bytes delivered so far (decoded bytes for chunked bodies).
  std::uint64_t body_received() const noexcept { return body_received_; }
  /// True when the connection may carry another message after this one (RFC 9112 §9.3).
  bool keep_alive() const noexcept { return keep_alive_; }
  /// True when the message asks to switch protocols (Connection: upgrade with an Upgrade field).
  bool upgrade() const noexcept { return upgrade_; }
  /// Request only: `Expect: 100-continue` (RFC 9110 §10.1.1) from an HTTP/1.1 client (HTTP/1.0's is ignored).
  bool expect_continue() const noexcept { return expect_continue_; }
  /// Size of the header section in bytes.
  std::size_t header_bytes() const noexcept { return header_bytes_; }
  /// Trailer fields of a chunked body, valid right after the `put` that completed the message.
  const field_views& trailers() const noexcept { return chunked_.trailers(); }

  // Request only.
  http::method method() const noexcept requires IsRequest { return method_; }
  std::string_view method_string() const noexcept requires IsRequest { return method_string_; }
  std::string_view target() const noexcept requires IsRequest { return target_; }

  // Response only.
  unsigned status_code() const noexcept requires(!IsRequest) { return status_; }
  std::string_view reason() const noexcept requires(!IsRequest) { return reason_; }

 private:
  enum class state : std::uint8_t { header, body, done };

  std::size_t parse_header(std::string_view input, std::error_code& ec) {
    const char* const begin = input.data();
    const char* const end = begin + input.size();
    const char* p = begin;
    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line received before the request-line. Such lines
    // are consumed at once so that they never accumulate.
    if constexpr (IsRequest) {
      while (end - p >= 2 && p[0] == '\r' && p[1] == '\n') p += 2;
      if (p > begin) {
        const std::size_t skipped = static_cast<std::size_t>(p - begin);
        const std::size_t rest = parse_header(std::string_view(p, static_cast<std::size_t>(end - p)), ec);
        return ec ? 0 : skipped + rest;
      }
    }
    if (p == end || (end - p == 1 && *p == '\r')) return 0;
    // After an incomplete attempt, look for the end of the section in the new bytes only, before parsing again,
    // so that a peer sending one byte at a time costs linear, not quadratic, time. Whatever the split, the error
    // reported is the first one in the input: every early stop below re-parses from the start to find it.
    // A section that has not ended within the limit never will: the input is then decided either way.
    const bool window_full = input.size() >= limits_.max_header_bytes;
    if (scanned_ > 0) {
      std::error_code bare_lf;
      const char* from = begin + scanned_ - (scanned_ >= 3 ? 3 : scanned_);
      const char* section_end = detail::find_section_end(begin, from, end, bare_lf);
      if (section_end == nullptr && !bare_lf && !window_full) return incomplete(input, ec);
    }
    // Parse within the header limit: a section that does not end inside it is too large, unless an error comes
    // first.
    const char* window_end = begin + std::min(input.size(), limits_.max_header_bytes);
    fields_.clear();
    const char* q = IsRequest ? parse_request_line(p, window_end, ec) : parse_status_line(p, window_end, ec);
    if (ec) return 0;
    if (q != nullptr) q = detail::parse_field_lines(q, window_end, fields_, limits_.max_fields, ec);
    if (ec) {
      // A field error counts only once the section has ended (or is broken, or fills the limit): until then a
      // split input would not have reached it, and any split must give the same result.
      std::error_code broken;
      const bool decided = window_full || detail::find_section_end(begin, begin, window_end, broken) != nullptr || broken;
      if (decided) return 0;
      ec.clear();
      return incomplete(input, ec);
    }
    if (q == nullptr) {
      if (window_full) {
        ec = error::header_too_large;
        return 0;
      }
      return incomplete(input, ec);
    }
    header_bytes_ = static_cast<std::size_t>(q - begin);
    if (!interpret_fields(ec)) return 0;
    state_ = framing_ == body_framing::none ? state::done : state::body;
    return header_bytes_;
  }

  // The header section is not complete yet: remember how far we looked, and check the start line so far, so
  // that garbage (a TLS handshake sent to a plain-text port, say) is refused before the header limit.
  std::size_t incomplete(std::string_view input, std::error_code& ec) noexcept {
    const std::size_t checked = scanned_;
    scanned_ = input.size();
    if (!start_line_seen_ && !start_line_goes_on(input, checked)) {
      const char* b = input.data();
      const char* e = b + input.size();
      const char* q = IsRequest ? parse_request_line(b, e, ec) : parse_status_line(b, e, ec);
      start_line_seen_ = q != nullptr;
      if (!ec && !start_line_seen_) note_partial_line(input);
    }
    return 0;
  }

  // Where an incomplete start line stopped: inside a request's method or target, or inside a response's reason
  // phrase, the next check need only look at the new bytes. Checking from the start each time cost quadratic time
  // for a line sent one byte at a time: 10 ms of parsing for an 8 KB target, as much as its 8,000 reads, and 130 ms
  // for a 16 KB reason phrase. The version and CRLF that end a request line are a few bytes.
  enum class partial_line : std::uint8_t { unchecked, method, target, reason, other };

  void note_partial_line(std::string_view input) noexcept {
    partial_line_ = partial_line::other;
    if constexpr (IsRequest) {
      // Checked and not refused: a method of token characters, and then maybe a SP and target characters.
      const std::size_t sp = input.find(' ');
      if (sp == std::string_view::npos) {
        partial_line_ = partial_line::method;
      } else if (input.find(' ', sp + 1) == std::string_view::npos) {
        partial_line_ = partial_line::target;
        target_begin_ = sp + 1;
      }
    } else {
      // Checked and not refused: "HTTP/x.y NNN " and reason characters, unless the last byte is the CR of the end.
      if (input.size() > status_line_prefix && input[status_line_prefix] == ' ' && input.back() != '\r') {
        partial_line_ = partial_line::reason;
      }
    }
  }

  // "HTTP/x.y NNN": the part of a status line before the SP that starts its reason phrase (RFC 9112 §4).
  static constexpr std::size_t status_line_prefix = 12;

  // Whether the bytes after `checked` leave an incomplete start line as the last check found it: more of its
  // method, of its target within the limit, or of its reason phrase. Then a check from the start would find it
  // incomplete again.
  bool start_line_goes_on(std::string_view input, std::size_t checked) const noexcept {
    const std::array<bool, 256>* allowed = nullptr;
    switch (partial_line_) {
      case partial_line::method: allowed = &detail::token_table; break;
      case partial_line::target: allowed = &detail::target_table; break;
      case partial_line::reason: allowed = &detail::field_value_table; break;
      default: return false;
    }
    for (std::size_t i = checked; i < input.size(); ++i) {
      if (!(*allowed)[static_cast<unsigned char>(input[i])]) return false;
    }
    return partial_line_ != partial_line::target || input.size() - target_begin_ <= limits_.max_target;
  }

  // request-line = method SP request-target SP HTTP-version CRLF (RFC 9112 §3)
  const char* parse_request_line(const char* p, const char* end, std::error_code& ec) noexcept {
    const char* m = p;
    while (p < end && detail::is_token_char(static_cast<unsigned char>(*p))) ++p;
    if (p >= end) return nullptr;
    if (*p != ' ' || p == m) {
      ec = (p == m && *p == ' ') ? error::bad_request_line : error::bad_method;
      return nullptr;
    }
    method_string_ = std::string_view(m, static_cast<std::size_t>(p - m));
    method_ = to_method(method_string_);
    ++p;
    const char* t = p;
    while (p < end && detail::target_table[static_cast<unsigned char>(*p)]) ++p;
    if (static_cast<std::size_t>(p - t) > limits_.max_target) {
      ec = error::target_too_long;
      return nullptr;
    }
    if (p >= end) return nullptr;
    if (*p != ' ' || p == t) {
      ec = (p == t || *p == '\r' || *p == '\n') ? error::bad_request_line : error::bad_target;
      return nullptr;
    }
    target_ = std::string_view(t, static_cast<std::size_t>(p - t));
    if (!is_request_target_form(method_, target_)) {
      ec = error::bad_target;
      return nullptr;
    }
    ++p;
    p = parse_version(p, end, ec);
    if (p == nullptr) return nullptr;
    return expect_crlf(p, end, error::bad_version, ec);
  }

  // status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF (RFC 9112 §4)
  const char* parse_status_line(const char* p, const char* end, std::error_code& ec) noexcept {
    p = parse_version(p, end, ec);
    if (p == nullptr) {
      if (ec == error::bad_version) ec = error::bad_status_line;
      return nullptr;
    }
    if (end - p < 4) return nullptr;
    if (p[0] != ' ' || !is_digit(p[1]) || !is_digit(p[2]) || !is_digit(p[3])) {
      ec = error::bad_status_line;
      return nullptr;
    }
    status_ = static_cast<unsigned>((p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0'));
    if (status_ < 100) {
      ec = error::bad_status_line;
      return nullptr;
    }
    p += 4;
    if (p >= end) return nullptr;
    if (*p == ' ') {
      ++p;
      const char* r = p;
      while (p < end && (detail::field_value_table[static_cast<unsigned char>(*p)])) ++p;
      reason_ = std::string_view(r, static_cast<std::size_t>(p - r));
    }
    return expect_crlf(p, end, error::bad_status_line, ec);
  }

  // HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3). Only 1.0 and 1.1 are supported.
  const char* parse_version(const char* p, const char* end, std::error_code& ec) noexcept {
    if (end - p < 8) {
      if (std::memcmp(p, "HTTP/", static_cast<std::size_t>(std::min<std::ptrdiff_t>(end - p, 5))) != 0) {
        ec = error::bad_version;
      }
      return nullptr;
    }
    if (std::memcmp(p, "HTTP/", 5) != 0 || !is_digit(p[5]) || p[6] != '.' || !is_digit(p[7])) {
      ec = error::bad_version;
      return nullptr;
    }
    if (p[5] != '1' || (p[7] != '0' && p[7] != '1')) {
      ec = error::unsupported_version;
      return nullptr;
    }
    version_minor_ = p[7] - '0';
    return p + 8;
  }

  static const char* expect_crlf(const char* p, const char* end, error on_error, std::error_code& ec) noexcept {
    if (p >= end) return nullptr;
    if (*p != '\r') {
      ec = *p == '\n' ? error::bad_line_ending : on_error;
      return nullptr;
    }
    if (p + 1 >= end) return nullptr;
    if (p[1] != '\n') {
      ec = error::bad_line_ending;
      return nullptr;
    }
    return p + 2;
  }

  static constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
  static constexpr bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

  // The four forms of request-target (RFC 9112 §3.2), checked in outline (the characters were checked already):
  // origin-form "/..."; absolute-form, an absolute-URI, which starts with a scheme and ':' (RFC 3986 §3.1);
  // authority-form "host:port", the only form of CONNECT (§3.2.3, RFC 9110 §9.3.6); asterisk-form "*", for OPTIONS
  // only (§3.2.4). Anything else ("a", "*" for GET) is an invalid request-line, which §3.2 says to answer with 400.
  static constexpr bool is_request_target_form(http::method m, std::string_view target) noexcept {
    if (m == http::method::connect) {
      const std::size_t colon = target.rfind(':');
      return colon != 0 && colon != std::string_view::npos &&
             target.substr(0, colon).find_first_of("/?#@") == std::string_view::npos &&
             std::all_of(target.begin() + static_cast<std::ptrdiff_t>(colon) + 1, target.end(), is_digit);
    }
    if (target.front() == '/') return true;
    if (target == "*") return m == http::method::options;
    // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
    if (!is_alpha(target.front())) return false;
    const std::size_t colon = target.find(':');
    return colon != std::string_view::npos &&
           std::all_of(target.begin(), target.begin() + static_cast<std::ptrdiff_t>(colon), [](char c) {
             return is_alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.';
           });
  }

  // Reads the fields that decide framing and connection handling (RFC 9112 §6.3, §9.3).
  bool interpret_fields(std::error_code& ec) {
    std::size_t hosts = 0;
    bool has_length = false, has_transfer_encoding = false, close = false, keep_alive_token = false,
         upgrade_token = false, has_upgrade_field = false;
    std::uint64_t length = 0;
    for (const field_view& f : fields_) {
      switch (f.name.size()) {
        case 4:
          if (detail::iequals(f.name, "host")) {
            ++hosts;
            if (IsRequest && !detail::is_host_field(f.value)) {
              ec = error::bad_host;  // RFC 9112 §3.2: 400 for a Host field with an invalid value
              return false;
            }
          }
          break;
        case 6:
          // RFC 9110 §10.1.1: an HTTP/1.0 client's expectation is ignored (it may not read a 1xx response).
          if (IsRequest && version_minor_ == 1 && detail::iequals(f.name, "expect")) {
            expect_continue_ = expect_continue_ || detail::iequals(f.value, "100-continue");
          }
          break;
        case 7:
          if (detail::iequals(f.name, "upgrade")) has_upgrade_field = true;
          break;
        case 10:
          if (detail::iequals(f.name, "connection")) {
            detail::for_each_list_element(f.value, [&](std::string_view t) {
              if (detail::iequals(t, "close")) close = true;
              else if (detail::iequals(t, "keep-alive")) keep_alive_token = true;
              else if (detail::iequals(t, "upgrade")) upgrade_token = true;
              return true;
            });
          }
          break;
        case 14:
          if (detail::iequals(f.name, "content-length") && !read_content_length(f.value, has_length, length, ec)) {
            return false;
          }
          break;
        case 17:
          if (detail::iequals(f.name, "transfer-encoding")) has_transfer_encoding = true;
          break;
        default:
          break;
      }
    }
    if (IsRequest && version_minor_ == 1 && hosts != 1) {
      ec = error::bad_host;  // RFC 9112 §3.2: 400 for a missing Host, or more than one
      return false;
    }
    if (IsRequest && hosts > 1) {
      ec = error::bad_host;
      return false;
    }
    keep_alive_ = version_minor_ == 1 ? !close : (keep_alive_token && !close);
    upgrade_ = upgrade_token && has_upgrade_field;

    bool no_body = false;
    if constexpr (!IsRequest) {
      no_body = head_response_ || status_ < 200 || status_ == 204 || status_ == 304;
    }
    if (no_body) {
      framing_ = body_framing::none;
      return true;
    }
    if (has_transfer_encoding) {
      // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
      if (version_minor_ == 0) {
        ec = error::bad_transfer_encoding;
        return false;
      }
      // RFC 9112 §6.3 item 3: both is a smuggling vector; we reject rather than let TE win.
      if (has_length) {
        ec = error::content_length_and_transfer_encoding;
        return false;
      }
      return read_transfer_encoding(ec);
    }
    if (has_length) {
      content_length_ = length;
      framing_ = length == 0 ? body_framing::none : body_framing::length;
      return true;
    }
    framing_ = IsRequest ? body_framing::none : body_framing::until_eof;
    if (!IsRequest) keep_alive_ = false;  // the body ends with the connection
    return true;
  }

  // Content-Length = 1*DIGIT; a list of identical values is accepted as one (RFC 9110 §8.6), different ones are not.
  // Content-Length is not a list field: the list exception is for "the same decimal value repeated", which an empty
  // element ("5,", ",5", "5, ,") is not, so the rule of list fields that ignores empty elements (§5.6.1) does not
  // apply. Accepting "5," as 5 where another parser rejects it, or reads it otherwise, frames the body differently.
  static bool read_content_length(std::string_view value, bool& has_length, std::uint64_t& length,
                                  std::error_code& ec) noexcept {
    for (;;) {
      const std::size_t comma = value.find(',');
      const std::string_view element = detail::trim_ows(value.substr(0, comma));
      if (element.empty()) {
        ec = error::bad_content_length;  // an empty value, or an empty list element
        return false;
      }
      std::uint64_t v = 0;
      for (char c : element) {
        if (!is_digit(c) || v > (UINT64_MAX - 9) / 10) {
          ec = error::bad_content_length;
          return false;
        }
        v = v * 10 + static_cast<unsigned>(c - '0');
      }
      if (has_length && v != length) {
        ec = error::conflicting_content_length;
        return false;
      }
      has_length = true;
      length = v;
      if (comma == std::string_view::npos) return true;
      value.remove_prefix(comma + 1);
    }
  }

  // Transfer-Encoding is a list over all its field lines; the final coding must be chunked (RFC 9112 §6.3 item 4);
  // chunked may not be applied twice (§7); codings other than chunked are not implemented (501, §6.1).
  bool read_transfer_encoding(std::error_code& ec) {
    std::size_t codings = 0;
    std::size_t chunked_at = 0;  // 1-based position of "chunked", 0 if absent
    bool chunked_twice = false;
    for (const field_view& f : fields_) {
      if (f.name.size() != 17 || !detail::iequals(f.name, "transfer-encoding")) continue;
      detail::for_each_list_element(f.value, [&](std::string_view coding) {
        ++codings;
        if (detail::iequals(coding, "chunked")) {
          if (chunked_at != 0) chunked_twice = true;
          chunked_at = codings;
        }
        return true;
      });
    }
    if (codings == 0) {
      ec = error::bad_transfer_encoding;
      return false;
    }
    const bool final_is_chunked = chunked_at == codings && !chunked_twice;
    if (!final_is_chunked) {
      if constexpr (IsRequest) {
        ec = error::bad_transfer_encoding;
        return false;
      } else {
        if (chunked_twice) {
          ec = error::bad_transfer_encoding;
          return false;
        }
        // A response whose final coding is not chunked is delimited by the connection closing (§6.3 item 4);
        // we cannot decode the other codings, so the body is unusable.
        ec = error::unsupported_transfer_encoding;
        return false;
      }
    }
    if (codings > 1) {
      ec = error::unsupported_transfer_encoding;  // e.g. "gzip, chunked": gzip is not implemented
      return false;
    }
    framing_ = body_framing::chunked;
    return true;
  }

  std::size_t parse_body(std::string_view input, std::error_code& ec) {
    switch (framing_) {
      case body_framing::length: {
        if (content_length_ > body_limit_) {
          ec = error::body_too_large;
          return 0;
        }
        const std::uint64_t remaining = content_length_ - body_received_;
        const std::size_t n = remaining < input.size() ? static_cast<std::size_t>(remaining) : input.size();
        body_piece_ = input.substr(0, n);
        body_received_ += n;
        if (body_received_ == content_length_) state_ = state::done;
        return n;
      }
      case body_framing::chunked: {
        const std::size_t n = chunked_.decode(input, body_piece_, ec);
        if (ec) return 0;
        body_received_ += body_piece_.size();  // what was delivered (the decoder counts a chunk from its size line)
        if (chunked_.done()) state_ = state::done;
        return n;
      }
      case body_framing::until_eof: {
        // Up to the limit, then the error: the same bytes delivered before it, however the input is split.
        if (body_received_ == body_limit_ && !input.empty()) {
          ec = error::body_too_large;
          return 0;
        }
        const std::uint64_t room = body_limit_ - body_received_;
        const std::size_t n = room < input.size() ? static_cast<std::size_t>(room) : input.size();
        body_piece_ = input.substr(0, n);
        body_received_ += n;
        return n;
      }
      case body_framing::none:
        state_ = state::done;
        return 0;
    }
    return 0;
  }

  parser_limits limits_;
  state state_ = state::header;
  body_framing framing_ = body_framing::none;
  bool keep_alive_ = false;
  bool upgrade_ = false;
  bool expect_continue_ = false;
  bool head_response_ = false;
  http::method method_ = method::other;
  int version_minor_ = 1;
  unsigned status_ = 0;
  std::size_t scanned_ = 0;  // bytes already searched for the end of an incomplete header section
  bool start_line_seen_ = false;  // an incomplete header already held the whole start line
  partial_line partial_line_ = partial_line::unchecked;  // where the last check of the start line stopped
  std::size_t target_begin_ = 0;                          // with partial_line::target
  std::size_t header_bytes_ = 0;
  std::uint64_t content_length_ = 0;
  std::uint64_t body_received_ = 0;
  std::uint64_t body_limit_ = limits_.max_body;
  std::string_view method_string_;
  std::string_view target_;
  std::string_view reason_;
  std::string_view body_piece_;
  field_views fields_;
  chunked_decoder chunked_;
};

/// Parses requests (server side).
using request_parser = basic_parser<true>;
/// Parses responses (client side).
using response_parser = basic_parser<false>;

}  // namespace switchboard::http
