// switchboard/resp/encoder.hpp
//
// Writes RESP frames by appending them to a caller's `std::string`: replies of a server speaking RESP2 or RESP3
// (the version a client chose with HELLO), and commands of a client. Each call appends one frame or one aggregate
// header; an aggregate's elements are the frames appended after its header. Nothing is allocated besides the
// growth of the output string, so a connection that reuses its output buffer encodes without allocating.
//
// Where RESP2 has no such type, the encoder writes what Redis writes for a RESP2 client (networking.c):
// null -> `$-1` (null bulk), map of N pairs -> `*2N` flat array, set and push -> `*N` array, double -> bulk
// string, boolean -> integer 1 or 0. So a pub/sub message is `>3` in RESP3 and `*3` in RESP2, as clients expect.
#pragma once

#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace switchboard::resp {

/// The RESP version a connection speaks: RESP2 by default, RESP3 after `HELLO 3`.
enum class protocol : std::uint8_t { resp2 = 2, resp3 = 3 };

/// Appends RESP frames to a string. Holds a reference: the string must outlive the encoder. Cheap to make.
class encoder {
 public:
  explicit encoder(std::string& out, protocol version = protocol::resp2) noexcept : out_(&out), version_(version) {}

  protocol version() const noexcept { return version_; }

  /// `+text\r\n`. A CR or LF in `text` is written as a space: a simple string cannot hold them, and letting them
  /// through would let data forge extra frames (Redis sanitises its error strings the same way).
  encoder& simple_string(std::string_view text) { return line('+', text); }

  /// `-message\r\n`; by convention the message starts with an error code, e.g. "ERR unknown command".
  /// CR and LF are written as spaces, as for `simple_string`.
  encoder& error(std::string_view message) { return line('-', message); }

  /// `:n\r\n`.
  encoder& integer(std::int64_t n) { return header(':', n); }

  /// `$len\r\nbytes\r\n`: binary-safe.
  encoder& bulk(std::string_view bytes) {
    header('$', static_cast<std::int64_t>(bytes.size()));
    out_->append(bytes);
    out_->append("\r\n", 2);
    return *this;
  }

  /// A null: `_\r\n` in RESP3, the null bulk string `$-1\r\n` in RESP2 (what Redis answers GET with for a missing
  /// key).
  encoder& null() {
    out_->append(version_ == protocol::resp3 ? std::string_view("_\r\n") : std::string_view("$-1\r\n"));
    return *this;
  }

  /// A null where an array was expected: `_\r\n` in RESP3, the null array `*-1\r\n` in RESP2 (Redis uses it for
  /// a timed-out BLPOP or an aborted EXEC).
  encoder& null_array() {
    out_->append(version_ == protocol::resp3 ? std::string_view("_\r\n") : std::string_view("*-1\r\n"));
    return *this;
  }

  /// `*n\r\n`, followed by the n elements.
  encoder& array_header(std::size_t n) { return header('*', static_cast<std::int64_t>(n)); }

  /// `%pairs\r\n` in RESP3, `*2pairs\r\n` in RESP2, followed by key, value, key, value...
  encoder& map_header(std::size_t pairs) {
    return version_ == protocol::resp3 ? header('%', static_cast<std::int64_t>(pairs))
                                       : header('*', static_cast<std::int64_t>(2 * pairs));
  }

  /// `~n\r\n` in RESP3, `*n\r\n` in RESP2, followed by the n elements.
  encoder& set_header(std::size_t n) {
    return header(version_ == protocol::resp3 ? '~' : '*', static_cast<std::int64_t>(n));
  }

  /// `>n\r\n` in RESP3, `*n\r\n` in RESP2, followed by the n elements. Pub/sub messages ("message", "pmessage",
  /// "subscribe" confirmations) are pushes: a RESP3 client tells them from replies by this marker.
  encoder& push_header(std::size_t n) {
    return header(version_ == protocol::resp3 ? '>' : '*', static_cast<std::int64_t>(n));
  }

  /// `,x\r\n` in RESP3 (`inf`, `-inf`, `nan` for the special values), a bulk string of the same text in RESP2.
  /// Finite values are written in the shortest form that reads back to the same double.
  encoder& double_value(double x) {
    std::array<char, 32> buf{};
    std::string_view text;
    if (std::isnan(x)) {
      text = "nan";
    } else if (std::isinf(x)) {
      text = x > 0 ? "inf" : "-inf";
    } else {
      const auto result = std::to_chars(buf.data(), buf.data() + buf.size(), x);
      text = std::string_view(buf.data(), static_cast<std::size_t>(result.ptr - buf.data()));
    }
    if (version_ == protocol::resp2) return bulk(text);
    out_->push_back(',');
    out_->append(text);
    out_->append("\r\n", 2);
    return *this;
  }

  /// A verbatim string, `=len\r\nfmt:text\r\n` in RESP3 (`format` is three bytes: "txt" or "mkd"), the bulk string
  /// `text` in RESP2 (what Redis sends for INFO and CLIENT LIST).
  encoder& verbatim(std::string_view format, std::string_view text) {
    if (version_ == protocol::resp2) return bulk(text);
    header('=', static_cast<std::int64_t>(format.size() + 1 + text.size()));
    out_->append(format);
    out_->push_back(':');
    out_->append(text);
    out_->append("\r\n", 2);
    return *this;
  }

  /// `#t\r\n` / `#f\r\n` in RESP3, `:1\r\n` / `:0\r\n` in RESP2.
  encoder& boolean(bool b) {
    if (version_ == protocol::resp2) return integer(b ? 1 : 0);
    out_->append(b ? std::string_view("#t\r\n") : std::string_view("#f\r\n"));
    return *this;
  }

  /// A command as clients send it (and as Redis expects it, in any protocol version): an array of bulk strings.
  encoder& command(std::span<const std::string_view> args) {
    array_header(args.size());
    for (std::string_view a : args) bulk(a);
    return *this;
  }

  /// `command({"PUBLISH", channel, payload})`.
  encoder& command(std::initializer_list<std::string_view> args) {
    return command(std::span<const std::string_view>(args.begin(), args.size()));
  }

 private:
  // marker, decimal n, CRLF: formatted on the stack and appended at once.
  encoder& header(char marker, std::int64_t n) {
    std::array<char, 24> buf;  // marker + 20 characters of INT64_MIN + CRLF
    buf[0] = marker;
    char* end = std::to_chars(buf.data() + 1, buf.data() + buf.size() - 2, n).ptr;
    *end++ = '\r';
    *end++ = '\n';
    out_->append(buf.data(), static_cast<std::size_t>(end - buf.data()));
    return *this;
  }

  encoder& line(char marker, std::string_view text) {
    out_->push_back(marker);
    const std::size_t start = out_->size();
    out_->append(text);
    for (std::size_t i = start; i < out_->size(); ++i) {
      char& c = (*out_)[i];
      if (c == '\r' || c == '\n') c = ' ';
    }
    out_->append("\r\n", 2);
    return *this;
  }

  std::string* out_;
  protocol version_;
};

}  // namespace switchboard::resp
