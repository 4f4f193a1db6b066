// switchboard/resp/reply_parser.hpp
//
// The client side of RESP: reads what a Redis server sends (replies, and RESP3 push messages) into owned
// `resp::value` trees. Sans-I/O and incremental: bytes can be fed in pieces of any size, and any split of the same
// input gives the same values and the same error.
//
// Grammar: RESP2 and RESP3 as specified in github.com/antirez/RESP3 spec.md. Every line ends with CRLF; a bare CR
// or LF is an error. Lengths and integers follow Redis's own `string2ll` (as hiredis does): no leading zeros, no
// spaces; `:` integers may also carry a '+' sign (the RESP3 spec allows one). `$-1` and `*-1` are the RESP2 nulls.
// A big number that is not one (Redis passes on what a script gives it) becomes the simple error
// "ERR invalid RESP big number: <text as sent>", for that reply only: the stream is still in step.
// Attributes (`|N`) are read and, by default, dropped; with `keep_attributes` they are attached to the value that
// follows them. Streamed strings and aggregates (`$?`, `*?`, ...) are rejected: Redis never sends them.
//
// The parser copies what it needs, so the caller may drop all the bytes `parse` consumed at once.
// Aggregates are built with an explicit stack, never by recursion, so a hostile nesting cannot overflow the
// call stack; `max_depth` bounds it anyway.
#pragma once

#include <switchboard/resp/detail/integer.hpp>
#include <switchboard/resp/error.hpp>
#include <switchboard/resp/value.hpp>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace switchboard::resp {

/// Limits of `reply_parser`. Every limit must be at least 1.
struct reply_parser_options {
  /// Deepest nesting of aggregates (an array in an array is depth 2). Redis's own replies nest a few levels
  /// (CLUSTER SHARDS, XINFO STREAM FULL); 64 leaves room for scripts returning nested tables.
  std::size_t max_depth = 64;
  /// Most elements in one aggregate (pairs for maps and attributes). Each element costs a `value` (112 bytes on
  /// x86-64) even when empty, so this bounds the memory of an aggregate of empty strings (~112 MiB by default;
  /// space is reserved as elements arrive, not from the header). Raise it for very long replies.
  std::size_t max_aggregate_length = 1024 * 1024;
  /// Longest bulk string, blob error or verbatim string, in bytes. Redis strings may reach 512 MiB; 64 MiB matches
  /// `command_parser_options::max_bulk_length`, the largest payload our broker accepts.
  std::size_t max_bulk_length = 64 * 1024 * 1024;
  /// Longest line (simple string, simple error, number, header), in bytes before CRLF, type marker included.
  /// Redis's error replies are short, and 64 KiB is its own limit on request lines (PROTO_INLINE_MAX_SIZE).
  std::size_t max_line_length = 64 * 1024;
  /// Keep RESP3 attributes in `value::attributes` instead of dropping them.
  bool keep_attributes = false;
};

/// Incremental parser of server replies (RESP2 and RESP3). Not thread-safe; one parser per connection.
class reply_parser {
 public:
  /// Throws `std::invalid_argument` if a limit is 0.
  explicit reply_parser(reply_parser_options options = {}) : options_(options) {
    if (options_.max_depth == 0 || options_.max_aggregate_length == 0 || options_.max_bulk_length == 0 ||
        options_.max_line_length == 0) {
      throw std::invalid_argument("switchboard::resp::reply_parser: every limit must be at least 1");
    }
  }

  const reply_parser_options& options() const noexcept { return options_; }

  /// Feeds `data`. Consumes bytes until one top-level value is complete or `data` ends, and returns how many it
  /// consumed; the caller drops them (the parser has copied what it needs). When `has_value()` becomes true, take
  /// the value with `take()` and call again with the bytes not consumed. While a value waits to be taken, `parse`
  /// consumes nothing. On a protocol error `ec` is set (a `resp::error`), 0 is returned, and the parser stays in
  /// the error state until `reset`: the connection is unusable.
  std::size_t parse(std::string_view data, std::error_code& ec) {
    if (error_) {
      ec = error_;
      return 0;
    }
    ec.clear();
    std::size_t pos = 0;
    while (pos < data.size() && !done_ && !error_) {
      switch (state_) {
        case state::line: pos = read_line(data, pos); break;
        case state::bulk: pos = read_bulk(data, pos); break;
        case state::bulk_end: pos = read_bulk_end(data, pos); break;
      }
    }
    if (error_) {
      ec = error_;
      return 0;
    }
    return pos;
  }

  /// True when a complete top-level value waits to be taken.
  bool has_value() const noexcept { return done_; }

  /// Moves out the complete value. Precondition: `has_value()`.
  value take() {
    done_ = false;
    return std::exchange(result_, value{});
  }

  /// Forgets any partial value and any error, keeping the options, so that the parser can read a new stream.
  void reset() noexcept {
    state_ = state::line;
    line_.clear();
    saw_cr_ = false;
    bulk_ = value{};
    bulk_remaining_ = 0;
    crlf_read_ = 0;
    stack_.clear();
    pending_attributes_.clear();
    result_ = value{};
    done_ = false;
    error_ = {};
  }

 private:
  enum class state { line, bulk, bulk_end };

  // An aggregate being filled: `remaining` more values complete it. Attribute maps are aggregates that, once
  // complete, attach to the next value instead of becoming an element.
  struct frame {
    value aggregate;
    std::size_t remaining = 0;
    bool attribute = false;
  };

  static constexpr bool is_type_marker(char c) noexcept {
    return std::string_view("+-:$*_,#(!=%~>|").find(c) != std::string_view::npos;
  }

  // Reads (part of) a CRLF-terminated line starting at data[pos]. Returns the position after what it used.
  std::size_t read_line(std::string_view data, std::size_t pos) {
    if (saw_cr_) {  // the previous piece ended between CR and LF
      if (data[pos] != '\n') return fail(error::invalid_line);
      saw_cr_ = false;
      finish_line(line_);
      line_.clear();
      return pos + 1;
    }
    // Fail on the first byte of a value, so that a peer that does not speak RESP is told at once.
    if (line_.empty() && !is_type_marker(data[pos])) return fail(error::unexpected_type);
    // Look no further than one byte past the room left in the line: the error, if any, is then the one of the
    // earliest offending byte, as it would be if the bytes came one at a time.
    const char* begin = data.data() + pos;
    const std::size_t available = data.size() - pos;
    const std::size_t room = options_.max_line_length - line_.size();
    const std::size_t window = std::min(available, room + 1);
    const auto* cr = static_cast<const char*>(std::memchr(begin, '\r', window));
    const std::size_t length = cr != nullptr ? static_cast<std::size_t>(cr - begin) : window;
    if (std::memchr(begin, '\n', length) != nullptr) return fail(error::invalid_line);
    if (cr == nullptr) {
      if (window > room) return fail(error::line_too_long);
      line_.append(begin, length);
      return data.size();
    }
    if (length + 1 == available) {  // CR is the last byte we have: wait for the LF
      line_.append(begin, length);
      saw_cr_ = true;
      return data.size();
    }
    if (cr[1] != '\n') return fail(error::invalid_line);
    if (line_.empty()) {
      finish_line(std::string_view(begin, length));  // the whole line is in `data`: no copy
    } else {
      line_.append(begin, length);
      finish_line(line_);
      line_.clear();
    }
    return pos + length + 2;
  }

  std::size_t read_bulk(std::string_view data, std::size_t pos) {
    const std::size_t take = std::min(bulk_remaining_, data.size() - pos);
    bulk_.text.append(data.data() + pos, take);
    bulk_remaining_ -= take;
    if (bulk_remaining_ == 0) state_ = state::bulk_end;
    return pos + take;
  }

  std::size_t read_bulk_end(std::string_view data, std::size_t pos) {
    if (data[pos] != (crlf_read_ == 0 ? '\r' : '\n')) return fail(error::bulk_not_terminated);
    if (++crlf_read_ == 2) {
      crlf_read_ = 0;
      state_ = state::line;
      if (bulk_.kind == value_kind::verbatim_string && (bulk_.text.size() < 4 || bulk_.text[3] != ':')) {
        return fail(error::invalid_verbatim_string);
      }
      complete(std::exchange(bulk_, value{}));
    }
    return pos + 1;
  }

  // A whole line, without its CRLF. line[0] is a type marker (checked when it arrived).
  void finish_line(std::string_view line) {
    const char marker = line[0];
    const std::string_view body = line.substr(1);
    switch (marker) {
      case '+': return complete(text_value(value_kind::simple_string, body));
      case '-': return complete(text_value(value_kind::simple_error, body));
      case ':': return read_integer(body);
      case '_':
        if (!body.empty()) return void(fail(error::invalid_null));
        return complete(start_value(value_kind::null));
      case '#':
        if (body != "t" && body != "f") return void(fail(error::invalid_boolean));
        return complete([&] {
          value v = start_value(value_kind::boolean);
          v.boolean = body == "t";
          return v;
        }());
      case ',': return read_double(body);
      case '(':
        if (!is_big_number(body)) return complete(text_value(value_kind::simple_error, invalid_big_number_text(body)));
        return complete(text_value(value_kind::big_number, body));
      case '$': return start_bulk(value_kind::bulk_string, body);
      case '!': return start_bulk(value_kind::blob_error, body);
      case '=': return start_bulk(value_kind::verbatim_string, body);
      case '*': return start_aggregate(value_kind::array, body, 1, false);
      case '~': return start_aggregate(value_kind::set, body, 1, false);
      case '>': return start_aggregate(value_kind::push, body, 1, false);
      case '%': return start_aggregate(value_kind::map, body, 2, false);
      default: return start_aggregate(value_kind::map, body, 2, true);  // '|'
    }
  }

  // A new value of `kind`, carrying the attributes that preceded it (if kept).
  value start_value(value_kind kind) {
    value v;
    v.kind = kind;
    v.attributes = std::exchange(pending_attributes_, {});
    return v;
  }

  value text_value(value_kind kind, std::string_view text) {
    value v = start_value(kind);
    v.text.assign(text);
    return v;
  }

  void read_integer(std::string_view body) {
    // RESP3 allows a '+' sign; string2ll does not, so strip it (but not from "+-1").
    if (body.size() > 1 && body[0] == '+' && body[1] != '-') body.remove_prefix(1);
    const auto parsed = detail::parse_integer(body);
    if (!parsed) return void(fail(error::invalid_integer));
    value v = start_value(value_kind::integer);
    v.integer = *parsed;
    complete(std::move(v));
  }

  // RESP3: ,[<+|->]<integral>[.<fractional>][<E|e>[sign]<exponent>] or inf, -inf, nan; and -nan, which Redis 7.0
  // sends for a script's 0/0 (it formats doubles with %.17g). from_chars alone would also take "infinity",
  // "nan(123)" and "1.", so the grammar is checked first.
  void read_double(std::string_view body) {
    double number = 0;
    if (body == "inf") {
      number = std::numeric_limits<double>::infinity();
    } else if (body == "-inf") {
      number = -std::numeric_limits<double>::infinity();
    } else if (body == "nan" || body == "-nan") {
      number = std::numeric_limits<double>::quiet_NaN();
    } else {
      if (!is_decimal_double(body)) return void(fail(error::invalid_double));
      if (body[0] == '+') body.remove_prefix(1);
      const auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), number);
      if (ec != std::errc{} || end != body.data() + body.size()) return void(fail(error::invalid_double));
    }
    value v = start_value(value_kind::double_number);
    v.number = number;
    complete(std::move(v));
  }

  static constexpr std::size_t skip_digits(std::string_view s, std::size_t i) noexcept {
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i;
  }

  static constexpr bool is_decimal_double(std::string_view s) noexcept {
    std::size_t i = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    std::size_t j = skip_digits(s, i);
    if (j == i) return false;
    if (j < s.size() && s[j] == '.') {
      i = j + 1;
      j = skip_digits(s, i);
      if (j == i) return false;
    }
    if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
      i = j + 1;
      if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
      j = skip_digits(s, i);
      if (j == i) return false;
    }
    return j == s.size();
  }

  static constexpr bool is_big_number(std::string_view s) noexcept {
    const std::size_t i = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    return i < s.size() && skip_digits(s, i) == s.size();
  }

  // RESP3 (spec.md, "Big number"): `(` then an optionally signed integer. Redis 7 does not check what a script
  // (`redis.setresp(3); return {big_number='abc'}`) or a module (RedisModule_ReplyWithBigNumber) gives it; for a
  // script it only turns CR and LF into spaces. Such a line is framed like any other (a bare CR or LF in it still
  // ends the connection, as in any line), so the stream is still in step: rather than end the connection, and every
  // command on it, the value becomes an error reply for its own command. Not a big number with that text, so that
  // a caller may rely on a big number being digits (to convert it, or to copy it into JSON); not a string, so that
  // it is not taken for a good reply. What was sent is kept, after the message.
  static std::string invalid_big_number_text(std::string_view body) {
    return "ERR invalid RESP big number: " + std::string(body);
  }

  // Parses the length of a bulk or aggregate header; `-1` is accepted only where RESP2 means null by it.
  std::optional<std::int64_t> read_length(std::string_view body, bool null_allowed) {
    if (body == "?") return fail_length(error::streamed_not_supported);
    const auto length = detail::parse_integer(body);
    if (!length || *length < -1 || (*length == -1 && !null_allowed)) return fail_length(error::invalid_length);
    return length;
  }

  std::optional<std::int64_t> fail_length(error e) {
    fail(e);
    return std::nullopt;
  }

  void start_bulk(value_kind kind, std::string_view body) {
    const auto length = read_length(body, kind == value_kind::bulk_string);
    if (!length) return;
    if (*length == -1) return complete(start_value(value_kind::null));
    if (static_cast<std::uint64_t>(*length) > options_.max_bulk_length) return void(fail(error::bulk_too_long));
    bulk_ = start_value(kind);
    bulk_remaining_ = static_cast<std::size_t>(*length);
    // Grow with the bytes that arrive rather than trusting the announced length.
    bulk_.text.reserve(std::min<std::size_t>(bulk_remaining_, 64 * 1024));
    state_ = bulk_remaining_ == 0 ? state::bulk_end : state::bulk;
  }

  void start_aggregate(value_kind kind, std::string_view body, std::size_t values_per_entry, bool attribute) {
    const auto length = read_length(body, kind == value_kind::array && !attribute);
    if (!length) return;
    if (*length == -1) return complete(start_value(value_kind::null));
    if (static_cast<std::uint64_t>(*length) > options_.max_aggregate_length) {
      return void(fail(error::too_many_elements));
    }
    if (stack_.size() >= options_.max_depth) return void(fail(error::nesting_too_deep));
    const std::size_t count = static_cast<std::size_t>(*length) * values_per_entry;
    frame f;
    f.remaining = count;
    f.attribute = attribute;
    if (attribute) {
      // Attributes are not values: they attach to the next value. Consecutive attribute maps merge, so the ones
      // already pending go first and do not attach to this map's keys.
      f.aggregate.kind = value_kind::map;
      f.aggregate.elements = std::exchange(pending_attributes_, {});
    } else {
      f.aggregate = start_value(kind);
    }
    if (count == 0) return finish(std::move(f));
    f.aggregate.elements.reserve(f.aggregate.elements.size() + std::min<std::size_t>(count, 1024));
    stack_.push_back(std::move(f));
  }

  // A value is complete: it becomes the result, or the next element of the innermost aggregate, which may
  // complete in turn (a loop, not recursion: closing 64 levels at once costs no stack).
  void complete(value v) {
    for (;;) {
      if (stack_.empty()) {
        result_ = std::move(v);
        done_ = true;
        return;
      }
      frame& top = stack_.back();
      top.aggregate.elements.push_back(std::move(v));
      if (--top.remaining != 0) return;
      frame finished = std::move(top);
      stack_.pop_back();
      if (finished.attribute) return finish(std::move(finished));
      v = std::move(finished.aggregate);
    }
  }

  // An aggregate with all its elements: an attribute map becomes pending, anything else completes.
  void finish(frame f) {
    if (!f.attribute) return complete(std::move(f.aggregate));
    if (options_.keep_attributes) pending_attributes_ = std::move(f.aggregate.elements);
  }

  std::size_t fail(error e) {
    error_ = e;
    return 0;
  }

  reply_parser_options options_;
  state state_ = state::line;
  std::string line_;  // a line split across `parse` calls
  bool saw_cr_ = false;
  value bulk_;  // the bulk string, blob error or verbatim string being read
  std::size_t bulk_remaining_ = 0;
  int crlf_read_ = 0;  // bytes of the CRLF after a bulk payload read so far
  std::vector<frame> stack_;
  std::vector<value> pending_attributes_;
  value result_;
  bool done_ = false;
  std::error_code error_;
};

}  // namespace switchboard::resp
