// response_parser: the HTTP/1.1 response framing of http_load (benchmarks/load/tools/http_load.cpp).
//
// A load generator must find where each response ends, or pipelined responses run into each other and the
// counts are wrong. This parser does that much and no more: the status line, the fields that decide the
// framing (Content-Length, Transfer-Encoding, Connection), and the body by length, by chunks or until the
// server closes (RFC 9112 §6.3). It checks what it reads strictly enough that a server sending malformed
// framing makes the run fail instead of quietly counting garbage. It does not validate field values it
// does not use, and it never allocates: the caller keeps the bytes it has not consumed yet (at most a line,
// max_line_bytes) and presents them again with more data appended.
//
// It parses responses to any method but HEAD and CONNECT, whose responses are framed differently (RFC 9112
// §6.3 items 1 and 2); http_load refuses those two methods (http_request.hpp).
//
// It deliberately does not use switchboard's own http::response_parser: the load generator judges the
// server, and a framing bug shared by the server's serializer and the client's parser would go unseen.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace http_load {

/// Why a response could not be parsed; any of them ends the connection.
enum class parse_error {
  none,               ///< no error
  bad_status_line,    ///< not "HTTP/1.x DDD ..." (RFC 9112 §4)
  bad_field,          ///< a field line without a colon, with space before it, or folded (RFC 9112 §5.1, §5.2)
  bad_content_length, ///< Content-Length not all digits, too large, or two different values (RFC 9112 §6.3 item 5)
  bad_chunk,          ///< a chunk-size line that is not hex, too large, or no CRLF after a chunk (RFC 9112 §7.1)
  line_too_long,      ///< a line longer than max_line_bytes
  header_too_large,   ///< the status line and fields (or the trailer section) longer than max_header_bytes
  upgrade,            ///< 101 Switching Protocols: never asked for, so not HTTP any more (RFC 9110 §15.2.2)
};

/// A short name of `e` for messages.
inline std::string_view to_string(parse_error e) {
  switch (e) {
    case parse_error::none: return "none";
    case parse_error::bad_status_line: return "bad status line";
    case parse_error::bad_field: return "bad field line";
    case parse_error::bad_content_length: return "bad Content-Length";
    case parse_error::bad_chunk: return "bad chunk framing";
    case parse_error::line_too_long: return "line too long";
    case parse_error::header_too_large: return "header section too large";
    case parse_error::upgrade: return "unexpected 101 Switching Protocols";
  }
  return "unknown";
}

/// Incremental parser of a sequence of HTTP/1.1 responses on one connection.
class response_parser {
 public:
  /// Longest line accepted (status line, field line, chunk-size line, trailer line), CRLF excluded.
  static constexpr std::size_t max_line_bytes = 8 * 1024;
  /// Longest status line plus field section (and, separately, trailer section) accepted.
  static constexpr std::size_t max_header_bytes = 64 * 1024;

  /// What one call of parse() did.
  struct step {
    std::size_t consumed = 0;           ///< bytes of the input used; the caller drops them
    bool complete = false;              ///< a final response ended at input[consumed - 1]
    parse_error error = parse_error::none;  ///< set: the connection's data cannot be parsed any further
  };

  /// Parses `input`, the bytes received and not yet consumed, from its start. Stops after the first final
  /// response that completes (complete is set; status() and keep_alive() describe it), at an error, or when
  /// `input` ends; in the last case the caller presents the unconsumed rest again with more data appended.
  /// Interim 1xx responses are skipped (RFC 9110 §15.2: a client must accept them before the final one).
  /// When `body` is given, the body of the current response (chunked framing removed) is appended to it.
  step parse(std::string_view input, std::string* body = nullptr) {
    std::size_t pos = 0;
    while (pos < input.size()) {
      if (state_ == state::body || state_ == state::chunk_data) {
        const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, input.size() - pos));
        if (body != nullptr) body->append(input.substr(pos, take));
        pos += take;
        remaining_ -= take;
        if (remaining_ > 0) break;
        if (state_ == state::chunk_data) {
          state_ = state::chunk_end;
          continue;
        }
        end_message();
        return {pos, true, parse_error::none};
      }
      if (state_ == state::until_close) {
        if (body != nullptr) body->append(input.substr(pos));
        return {input.size(), false, parse_error::none};
      }
      // Every other state reads whole lines. RFC 9112 §2.2 lets a recipient accept a bare LF as the end of a
      // line; servers send CRLF, and accepting LF too costs nothing.
      const std::size_t newline = input.find('\n', pos);
      const std::size_t line_end = newline == std::string_view::npos ? input.size() : newline;
      if (line_end - pos > max_line_bytes + 1) return {pos, false, parse_error::line_too_long};
      if (newline == std::string_view::npos) break;
      std::string_view line = input.substr(pos, line_end - pos);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.size() > max_line_bytes) return {pos, false, parse_error::line_too_long};
      pos = newline + 1;
      const parse_error error = on_line(line);
      if (error != parse_error::none) return {pos, false, error};
      if (state_ == state::done) {
        end_message();
        return {pos, true, parse_error::none};
      }
    }
    return {pos, false, parse_error::none};
  }

  /// Tells the parser that the server closed the connection. True when that ends the current response
  /// (a body delimited by the close, RFC 9112 §6.3 item 8): it is then complete, with keep_alive() false.
  /// False when no response was under way or one was cut short.
  bool finish_at_close() {
    if (state_ != state::until_close) return false;
    end_message();
    return true;
  }

  /// True between responses: nothing of a next response has been parsed.
  bool idle() const noexcept { return state_ == state::status_line && header_bytes_ == 0; }

  /// The status code of the last complete response.
  int status() const noexcept { return last_status_; }

  /// Whether the server keeps the connection open after the last complete response (RFC 9112 §9.3).
  bool keep_alive() const noexcept { return last_keep_alive_; }

 private:
  enum class state { status_line, field, body, until_close, chunk_size, chunk_data, chunk_end, trailer, done };

  static bool is_space(char c) { return c == ' ' || c == '\t'; }

  static std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
  }

  static bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      const char x = (a[i] >= 'A' && a[i] <= 'Z') ? static_cast<char>(a[i] + ('a' - 'A')) : a[i];
      if (x != b[i]) return false;  // b is lower case
    }
    return true;
  }

  /// Calls f(element) for each non-empty element of a comma-separated list (RFC 9110 §5.6.1).
  template <typename F>
  static void for_each_element(std::string_view list, F f) {
    while (!list.empty()) {
      const std::size_t comma = list.find(',');
      const std::string_view element = trim(list.substr(0, comma));
      if (!element.empty()) f(element);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }

  parse_error on_line(std::string_view line) {
    switch (state_) {
      case state::status_line: return on_status_line(line);
      case state::field: return line.empty() ? on_header_end() : on_field(line);
      case state::chunk_size: return on_chunk_size(line);
      case state::chunk_end:
        if (!line.empty()) return parse_error::bad_chunk;
        state_ = state::chunk_size;
        return parse_error::none;
      case state::trailer:
        // Trailer fields are read and ignored (RFC 9112 §7.1.2 lets a recipient discard them).
        if (line.empty()) {
          state_ = state::done;
          return parse_error::none;
        }
        return count_header(line);
      case state::body:
      case state::until_close:
      case state::chunk_data:
      case state::done: break;
    }
    return parse_error::none;
  }

  parse_error count_header(std::string_view line) {
    header_bytes_ += line.size() + 2;
    return header_bytes_ > max_header_bytes ? parse_error::header_too_large : parse_error::none;
  }

  // status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4). Some servers leave out
  // the second SP when the reason is empty; that is accepted.
  parse_error on_status_line(std::string_view line) {
    if (const parse_error e = count_header(line); e != parse_error::none) return e;
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[7] < '0' || line[7] > '9' || line[8] != ' ' ||
        (line.size() > 12 && line[12] != ' ')) {
      return parse_error::bad_status_line;
    }
    int code = 0;
    for (std::size_t i = 9; i < 12; ++i) {
      if (line[i] < '0' || line[i] > '9') return parse_error::bad_status_line;
      code = code * 10 + (line[i] - '0');
    }
    if (code < 100) return parse_error::bad_status_line;
    status_ = code;
    http10_ = line[7] == '0';
    content_length_ = -1;
    chunked_ = false;
    other_coding_ = false;
    close_ = false;
    keep_alive_token_ = false;
    state_ = state::field;
    return parse_error::none;
  }

  parse_error on_field(std::string_view line) {
    if (const parse_error e = count_header(line); e != parse_error::none) return e;
    // A line starting with whitespace continues the previous field (obs-fold), which RFC 9112 §5.2 lets a
    // user agent replace by a space; no server of the benchmark folds, so it is treated as an error.
    if (is_space(line.front())) return parse_error::bad_field;
    const std::size_t colon = line.find(':');
    // No whitespace is allowed between the field name and the colon (RFC 9112 §5.1).
    if (colon == 0 || colon == std::string_view::npos || is_space(line[colon - 1])) return parse_error::bad_field;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) return on_content_length(value);
    if (iequals(name, "transfer-encoding")) {
      // Only the last coding decides the framing: chunked last means chunked, anything else means the body
      // runs until the close (RFC 9112 §6.3 item 4, for responses). Several field lines form one list.
      for_each_element(value, [this](std::string_view coding) {
        chunked_ = iequals(coding, "chunked");
        other_coding_ = !chunked_;
      });
    } else if (iequals(name, "connection")) {
      for_each_element(value, [this](std::string_view option) {
        close_ = close_ || iequals(option, "close");
        keep_alive_token_ = keep_alive_token_ || iequals(option, "keep-alive");
      });
    }
    return parse_error::none;
  }

  // Content-Length = 1*DIGIT; a list of identical values is accepted and any difference rejected (RFC 9110
  // §8.6, RFC 9112 §6.3 item 5: differing lengths are unrecoverable).
  parse_error on_content_length(std::string_view value) {
    bool ok = true;
    for_each_element(value, [&](std::string_view element) {
      std::int64_t n = 0;
      for (const char c : element) {
        if (c < '0' || c > '9' || n > (std::int64_t{1} << 50)) {
          ok = false;
          return;
        }
        n = n * 10 + (c - '0');
      }
      if (content_length_ >= 0 && content_length_ != n) ok = false;
      content_length_ = n;
    });
    return ok && content_length_ >= 0 ? parse_error::none : parse_error::bad_content_length;
  }

  // The end of the field section: decide how the body is framed (RFC 9112 §6.3).
  parse_error on_header_end() {
    if (status_ < 200) {
      if (status_ == 101) return parse_error::upgrade;
      state_ = state::status_line;  // an interim response: the final one follows
      header_bytes_ = 0;
      return parse_error::none;
    }
    // HTTP/1.1 stays open unless "close"; HTTP/1.0 closes unless "keep-alive" (RFC 9112 §9.3).
    keep_alive_ = http10_ ? keep_alive_token_ && !close_ : !close_;
    if (status_ == 204 || status_ == 304) {
      state_ = state::done;  // item 2: never a body
    } else if (chunked_ || other_coding_) {
      // item 3: Transfer-Encoding overrides Content-Length.
      state_ = chunked_ ? state::chunk_size : state::until_close;
    } else if (content_length_ >= 0) {
      remaining_ = static_cast<std::uint64_t>(content_length_);
      state_ = remaining_ == 0 ? state::done : state::body;
    } else {
      state_ = state::until_close;  // item 8
    }
    if (state_ == state::until_close) keep_alive_ = false;
    return parse_error::none;
  }

  // chunk-size = 1*HEXDIG, then optional chunk extensions after ';', which are ignored (RFC 9112 §7.1.1).
  parse_error on_chunk_size(std::string_view line) {
    std::int64_t size = 0;
    std::size_t i = 0;
    for (; i < line.size(); ++i) {
      const char c = line[i];
      int digit;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      } else {
        break;
      }
      if (size > (std::int64_t{1} << 50)) return parse_error::bad_chunk;
      size = size * 16 + digit;
    }
    const std::string_view rest = trim(line.substr(i));
    if (i == 0 || (!rest.empty() && rest.front() != ';')) return parse_error::bad_chunk;
    if (size == 0) {
      state_ = state::trailer;  // the last chunk; the trailer section ends with an empty line
      header_bytes_ = 0;
    } else {
      remaining_ = static_cast<std::uint64_t>(size);
      state_ = state::chunk_data;
    }
    return parse_error::none;
  }

  void end_message() {
    last_status_ = status_;
    last_keep_alive_ = state_ == state::until_close ? false : keep_alive_;
    state_ = state::status_line;
    header_bytes_ = 0;
  }

  state state_ = state::status_line;
  std::size_t header_bytes_ = 0;   ///< bytes of the current header or trailer section so far
  std::uint64_t remaining_ = 0;    ///< body or chunk bytes still to come
  std::int64_t content_length_ = -1;  ///< -1: no Content-Length field
  int status_ = 0;
  bool http10_ = false;
  bool chunked_ = false;           ///< the last transfer coding is chunked
  bool other_coding_ = false;      ///< the last transfer coding is something else
  bool close_ = false;             ///< Connection: close
  bool keep_alive_token_ = false;  ///< Connection: keep-alive
  bool keep_alive_ = false;
  int last_status_ = 0;
  bool last_keep_alive_ = false;
};

}  // namespace http_load
