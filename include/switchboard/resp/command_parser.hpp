// switchboard/resp/command_parser.hpp
//
// The server side of RESP: reads the commands a Redis client sends (redis-cli, redis-benchmark, ioredis, telnet)
// and yields each one as a list of argument views. Sans-I/O: the caller owns the bytes and the socket.
//
// Two request forms, as in Redis's networking.c (processInputBuffer):
//  - multibulk, when the first byte is '*': `*<count>\r\n` then `count` times `$<length>\r\n<bytes>\r\n`;
//  - inline otherwise: one line ended by "\n" (an "\r" before it is dropped), split into arguments by the rules
//    of `sdssplitargs` (see detail/inline_args.hpp).
// A command with no arguments (an empty line, `*0`, `*-1`) is skipped, as Redis skips it.
//
// Buffer contract. The caller keeps one contiguous buffer of received bytes and calls `parse` with the bytes it
// has not yet dropped. `parse` returns how many bytes at the front are finished with; the caller drops them (after
// it has used the command, whose arguments may point into them) and passes the rest, with newly read bytes
// appended, to the next call. Bytes not dropped must be passed again, unchanged, at the front: the parser remembers
// how far it has looked into them, so a large command arriving in many reads is scanned once, not once per read.
// The caller may move its buffer between calls (the parser keeps offsets, not pointers).
//
// Zero copy. The arguments of a multibulk command are views into the `data` passed to the `parse` call that
// completed it: no argument byte is copied. They stay valid until the next call to `parse` or `reset`, and only
// while the caller keeps those bytes in place and unchanged (so drop the consumed bytes after using the command,
// not before). Inline commands need unescaping, so their arguments are copied into the parser (they are typed by
// people and short); the same lifetime applies.
//
// Errors. On a protocol error `parse` sets `ec` (a `resp::error`) and `error_reply()` holds the exact reply Redis 7
// sends in that case ("-ERR Protocol error: ...\r\n"); Redis then closes the connection, and so should the caller.
// The parser stays in the error state until `reset`. Where Redis is lax, this parser is stricter and says so in
// `resp::error` (CRLF after a count, a length or a bulk payload is checked; Redis skips those bytes unread).
//
// Limits (`command_parser_options`) are applied to the bytes themselves, not to how they were split into reads,
// so any split of the same input gives the same commands and the same error. Redis applies its 64 KiB line limit
// only to the bytes it has buffered without a line end, so for a line over the limit that arrives in one read Redis
// may answer "invalid ... length" where we answer "too big ... string"; both close the connection.
#pragma once

#include <switchboard/resp/detail/inline_args.hpp>
#include <switchboard/resp/detail/integer.hpp>
#include <switchboard/resp/error.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace switchboard::resp {

/// Limits of `command_parser`. Every field must be at least 1.
struct command_parser_options {
  /// Longest inline command line, and longest `*<count>` or `$<length>` line, in bytes before the line end.
  /// Redis: PROTO_INLINE_MAX_SIZE, 64 KiB.
  std::size_t max_inline_size = 64 * 1024;
  /// Most arguments in one multibulk command. 1024*1024 was Redis's limit up to 6.x (Redis 7 allows INT_MAX);
  /// a broker's commands have a handful, and each argument costs a view even when empty.
  std::size_t max_multibulk_count = 1024 * 1024;
  /// Longest argument, in bytes. Redis's proto-max-bulk-len is 512 MiB; we default to 64 MiB because a broker
  /// copies each published payload into every subscriber's queue, so one connection announcing 512 MiB could make
  /// us hold several GiB, while pub/sub payloads are far below 64 MiB in practice. Raise it for large values.
  std::size_t max_bulk_length = 64 * 1024 * 1024;
};

/// Incremental parser of client commands (RESP multibulk and inline). See the top of this header for the buffer
/// contract and the lifetime of the argument views. Not thread-safe; one parser per connection.
class command_parser {
 public:
  /// Throws `std::invalid_argument` if a limit is 0.
  explicit command_parser(command_parser_options options = {}) : options_(options) {
    if (options_.max_inline_size == 0 || options_.max_multibulk_count == 0 || options_.max_bulk_length == 0) {
      throw std::invalid_argument("switchboard::resp::command_parser: every limit must be at least 1");
    }
  }

  const command_parser_options& options() const noexcept { return options_; }

  /// Parses at most one command from the front of `data` (the bytes not yet dropped, see the buffer contract).
  /// Returns the number of bytes at the front of `data` that the caller drops once it has used the command.
  ///  - `has_command()` true: `args()` holds the command; call again with the remaining bytes for the next one.
  ///  - `has_command()` false, `ec` clear: `data` holds no complete command yet; drop the returned count (bytes of
  ///    skipped empty commands, often 0), read more, append, call again.
  ///  - `ec` set: a protocol error; send `error_reply()` and close. Returns 0.
  std::size_t parse(std::string_view data, std::error_code& ec) {
    has_command_ = false;
    args_.clear();
    if (phase_ == phase::start) release_large_scratch();
    if (error_) {
      ec = error_;
      return 0;
    }
    ec.clear();
    std::size_t base = 0;  // where the pending command starts in `data`; everything before it is finished with
    for (;;) {
      const std::string_view rest = data.substr(base);
      const step s = resume(rest);
      switch (s.outcome) {
        case step_outcome::need_more: return base;
        case step_outcome::failed: ec = error_; return 0;
        case step_outcome::empty: base += s.length; break;
        case step_outcome::command:
          make_args(rest);
          has_command_ = true;
          start_next_command();
          return base + s.length;
      }
      start_next_command();
    }
  }

  /// True when the last `parse` call completed a command.
  bool has_command() const noexcept { return has_command_; }

  /// The arguments of the command the last `parse` call completed (empty otherwise); `args()[0]` is the command
  /// name. Valid until the next `parse` or `reset` and while the caller keeps the parsed bytes in place.
  std::span<const std::string_view> args() const noexcept { return args_; }

  /// After a protocol error: the exact reply Redis sends, e.g. "-ERR Protocol error: invalid bulk length\r\n".
  /// Empty when there was no error.
  std::string_view error_reply() const noexcept { return error_reply_; }

  /// Bytes of scratch space the parser holds between commands (argument lists, an inline line's copy), for
  /// monitoring. A command with many arguments grows it; the next `parse` after that command gives back whatever
  /// is over `kept_scratch_arguments` arguments and `kept_inline_bytes`, so that one huge command does not cost its
  /// connection that memory for the rest of its life.
  std::size_t scratch_bytes() const noexcept {
    return spans_.capacity() * sizeof(detail::arg_span) + args_.capacity() * sizeof(std::string_view) +
           inline_storage_.capacity();
  }

  /// Argument lists up to this many entries are kept for the next command (the usual command reuses them).
  static constexpr std::size_t kept_scratch_arguments = 1024;
  /// An inline line's copy up to this many bytes is kept.
  static constexpr std::size_t kept_inline_bytes = 4096;

  /// Forgets any partial command and any error, keeping the options, so that the parser can serve a new stream.
  void reset() noexcept {
    start_next_command();
    has_command_ = false;
    args_.clear();
    error_ = {};
    error_reply_.clear();
  }

 private:
  enum class phase { start, inline_line, multibulk_count, bulk_header, bulk_payload };
  enum class step_outcome { need_more, empty, command, failed };
  struct step {
    step_outcome outcome;
    std::size_t length = 0;  // bytes of the finished (empty or complete) command
  };
  // Where a header or inline line ends: `end` is the index of its terminator in `rest`, or npos if not there yet.
  struct line_end {
    std::size_t end = std::string_view::npos;
    bool too_long = false;
  };

  static constexpr std::size_t npos = std::string_view::npos;

  // Continues the pending command, which starts at rest[0]. All offsets kept between calls are relative to it.
  step resume(std::string_view rest) {
    if (phase_ == phase::start) {
      if (rest.empty()) return {step_outcome::need_more};
      phase_ = rest[0] == '*' ? phase::multibulk_count : phase::inline_line;
    }
    switch (phase_) {
      case phase::inline_line: return resume_inline(rest);
      case phase::multibulk_count: return resume_count(rest);
      default: return resume_bulks(rest);
    }
  }

  // Finds `terminator` in the line that starts at `line_start`, resuming the search where the last call stopped.
  // A line with more than max_inline_size bytes before its terminator is too long, found or not (see the top).
  line_end find_line_end(std::string_view rest, std::size_t line_start, char terminator) {
    const std::size_t limit = line_start + options_.max_inline_size;  // last index the terminator may have
    const std::size_t from = std::max(scan_, line_start);
    const std::size_t to = std::min(rest.size(), limit + 1);
    if (from < to) {
      if (const void* hit = std::memchr(rest.data() + from, terminator, to - from)) {
        return {static_cast<std::size_t>(static_cast<const char*>(hit) - rest.data()), false};
      }
    }
    scan_ = std::max(from, to);
    return {npos, rest.size() > limit};
  }

  step resume_inline(std::string_view rest) {
    const line_end found = find_line_end(rest, 0, '\n');
    if (found.too_long) return fail(error::inline_request_too_big);
    if (found.end == npos) return {step_outcome::need_more};
    std::string_view line = rest.substr(0, found.end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    inline_storage_.clear();
    spans_.clear();
    if (!detail::split_inline_args(line, inline_storage_, spans_)) return fail(error::unbalanced_quotes);
    from_inline_ = true;
    return {spans_.empty() ? step_outcome::empty : step_outcome::command, found.end + 1};
  }

  step resume_count(std::string_view rest) {
    const line_end found = find_line_end(rest, 0, '\r');
    if (found.too_long) return fail(error::multibulk_count_too_big);
    if (found.end == npos || found.end + 1 >= rest.size()) return {step_outcome::need_more};
    const auto count = detail::parse_integer(rest.substr(1, found.end - 1));
    if (!count || *count > static_cast<std::int64_t>(std::min<std::size_t>(options_.max_multibulk_count, INT64_MAX)) ||
        rest[found.end + 1] != '\n') {
      return fail(error::invalid_multibulk_length);
    }
    pos_ = found.end + 2;
    if (*count <= 0) return {step_outcome::empty, pos_};  // *0 and *-N: Redis ignores them
    remaining_ = static_cast<std::size_t>(*count);
    spans_.clear();
    // Reserve for what is likely, not for what is announced: `*1048576` alone must not allocate 16 MiB.
    spans_.reserve(std::min<std::size_t>(remaining_, 16));
    from_inline_ = false;
    phase_ = phase::bulk_header;
    return resume_bulks(rest);
  }

  step resume_bulks(std::string_view rest) {
    for (;;) {
      if (phase_ == phase::bulk_header) {
        const line_end found = find_line_end(rest, pos_, '\r');
        if (found.too_long) return fail(error::bulk_count_too_big);
        if (found.end == npos || found.end + 1 >= rest.size()) return {step_outcome::need_more};
        if (rest[pos_] != '$') {
          got_ = rest[pos_];
          return fail(error::expected_bulk_string);
        }
        const auto length = detail::parse_integer(rest.substr(pos_ + 1, found.end - pos_ - 1));
        if (!length || *length < 0 ||
            static_cast<std::uint64_t>(*length) > options_.max_bulk_length || rest[found.end + 1] != '\n') {
          return fail(error::invalid_bulk_length);
        }
        bulk_length_ = static_cast<std::size_t>(*length);
        pos_ = found.end + 2;
        phase_ = phase::bulk_payload;
      }
      // The payload and its CRLF must all be here; checking the size alone keeps a large payload O(1) per call.
      if (rest.size() - pos_ < bulk_length_ + 2) return {step_outcome::need_more};
      if (rest[pos_ + bulk_length_] != '\r' || rest[pos_ + bulk_length_ + 1] != '\n') {
        return fail(error::bulk_not_terminated);
      }
      spans_.push_back({pos_, bulk_length_});
      pos_ += bulk_length_ + 2;
      phase_ = phase::bulk_header;
      if (--remaining_ == 0) return {step_outcome::command, pos_};
    }
  }

  void make_args(std::string_view rest) {
    const char* base = from_inline_ ? inline_storage_.data() : rest.data();
    args_.reserve(spans_.size());
    for (const detail::arg_span& s : spans_) args_.emplace_back(base + s.offset, s.length);
  }

  // Between commands only: the previous command's arguments are gone (`args()` is valid until this call), and no
  // span of a pending command is in use.
  void release_large_scratch() {
    if (spans_.capacity() > kept_scratch_arguments) std::vector<detail::arg_span>().swap(spans_);
    if (args_.capacity() > kept_scratch_arguments) std::vector<std::string_view>().swap(args_);
    if (inline_storage_.capacity() > kept_inline_bytes) std::string().swap(inline_storage_);
  }

  void start_next_command() noexcept {
    phase_ = phase::start;
    pos_ = 0;
    scan_ = 0;
    remaining_ = 0;
    bulk_length_ = 0;
  }

  step fail(error e) {
    error_ = e;
    error_reply_ = "-ERR Protocol error: ";
    switch (e) {
      case error::inline_request_too_big: error_reply_ += "too big inline request"; break;
      case error::multibulk_count_too_big: error_reply_ += "too big mbulk count string"; break;
      case error::bulk_count_too_big: error_reply_ += "too big bulk count string"; break;
      case error::invalid_multibulk_length: error_reply_ += "invalid multibulk length"; break;
      case error::expected_bulk_string:
        // Redis formats the byte with %c and then turns CR and LF into spaces so that the reply stays one line.
        error_reply_ += "expected '$', got '";
        error_reply_ += (got_ == '\r' || got_ == '\n') ? ' ' : got_;
        error_reply_ += "'";
        break;
      case error::unbalanced_quotes: error_reply_ += "unbalanced quotes in request"; break;
      default: error_reply_ += "invalid bulk length"; break;  // invalid_bulk_length, bulk_not_terminated
    }
    error_reply_ += "\r\n";
    return {step_outcome::failed};
  }

  command_parser_options options_;
  phase phase_ = phase::start;
  std::size_t pos_ = 0;          // next unread byte of the pending multibulk command
  std::size_t scan_ = 0;         // where the search for the current line's terminator resumes
  std::size_t remaining_ = 0;    // arguments of the pending multibulk command still to read
  std::size_t bulk_length_ = 0;  // length of the argument whose payload is awaited
  bool from_inline_ = false;     // whether spans_ point into inline_storage_ (else into the caller's bytes)
  std::vector<detail::arg_span> spans_;
  std::string inline_storage_;
  std::vector<std::string_view> args_;
  bool has_command_ = false;
  char got_ = 0;  // the byte found where '$' was expected
  std::error_code error_;
  std::string error_reply_;
};

}  // namespace switchboard::resp
