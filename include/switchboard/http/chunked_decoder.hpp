// switchboard/http/chunked_decoder.hpp
//
// A sans-I/O decoder for the chunked transfer coding (RFC 9112 §7.1):
//
//   chunked-body   = *chunk last-chunk trailer-section CRLF
//   chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//   chunk-size     = 1*HEXDIG
//   last-chunk     = 1*("0") [ chunk-ext ] CRLF
//   chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//
// Chunk data is handed out as views into the input (no copy). Chunk lines and the trailer section are consumed
// only when complete, so the caller keeps unconsumed bytes and presents them again with more data after them;
// any split of the input gives the same result. Malformed sizes and extensions are errors, never guesses:
// lenient chunk parsing is a known request smuggling vector.
#pragma once

#include <switchboard/http/detail/chars.hpp>
#include <switchboard/http/detail/field_parser.hpp>
#include <switchboard/http/error.hpp>
#include <switchboard/http/fields.hpp>

#include <cstdint>
#include <cstring>
#include <string_view>
#include <system_error>

namespace switchboard::http {

/// Limits of the chunked decoder.
struct chunked_limits {
  /// Longest chunk line (size, extensions and CRLF), in bytes. Extensions are skipped, so they need little room.
  std::size_t max_chunk_line = 4096;
  /// Largest trailer section, in bytes.
  std::size_t max_trailer_bytes = 16 * 1024;
  /// Most trailer fields.
  std::size_t max_trailer_fields = 100;
  /// Most decoded body bytes (the body limit); exceeding it is `error::body_too_large`.
  std::uint64_t max_body = 1024 * 1024;
};

class chunked_decoder {
 public:
  explicit chunked_decoder(chunked_limits limits = {}) noexcept : limits_(limits) {}

  /// Decodes from `input`. Returns how many bytes were consumed; `piece` receives the chunk data found (a view into
  /// `input`, possibly empty). Stops after one piece of data, at the end of the body (`done()`), when it needs
  /// more input, or on error (`ec` set; the decoder is then unusable).
  std::size_t decode(std::string_view input, std::string_view& piece, std::error_code& ec) noexcept {
    piece = {};
    const char* const begin = input.data();
    const char* p = begin;
    const char* const end = begin + input.size();
    while (p < end || state_ == state::done) {
      switch (state_) {
        case state::size_line: {
          const char* line_end = parse_size_line(p, end, ec);
          if (line_end == nullptr) return static_cast<std::size_t>(p - begin);
          p = line_end;
          state_ = remaining_ == 0 ? state::trailer : state::data;
          break;
        }
        case state::data: {
          const std::size_t available = static_cast<std::size_t>(end - p);
          const std::size_t n = remaining_ < available ? static_cast<std::size_t>(remaining_) : available;
          piece = std::string_view(p, n);
          remaining_ -= n;
          p += n;
          if (remaining_ == 0) state_ = state::data_crlf;
          return static_cast<std::size_t>(p - begin);
        }
        case state::data_crlf:
          if (end - p < 2) {
            if (*p != '\r') {
              ec = error::bad_chunk;
              return 0;
            }
            return static_cast<std::size_t>(p - begin);
          }
          if (p[0] != '\r' || p[1] != '\n') {
            ec = error::bad_chunk;
            return 0;
          }
          p += 2;
          state_ = state::size_line;
          break;
        case state::trailer: {
          const char* section_end = parse_trailer(p, end, ec);
          if (section_end == nullptr) return static_cast<std::size_t>(p - begin);
          p = section_end;
          state_ = state::done;
          return static_cast<std::size_t>(p - begin);
        }
        case state::done:
          return static_cast<std::size_t>(p - begin);
      }
    }
    return static_cast<std::size_t>(p - begin);
  }

  /// True once the last chunk and the trailer section have been consumed.
  bool done() const noexcept { return state_ == state::done; }
  /// The trailer fields, valid (as views into the last input) right after `decode` finished the body.
  const field_views& trailers() const noexcept { return trailers_; }
  /// Decoded body bytes so far.
  std::uint64_t body_bytes() const noexcept { return total_; }
  /// Changes the body limit (before or during decoding).
  void set_body_limit(std::uint64_t limit) noexcept { limits_.max_body = limit; }

  /// Starts a new body, keeping the trailer container's capacity.
  void reset() noexcept {
    state_ = state::size_line;
    remaining_ = 0;
    total_ = 0;
    trailer_scanned_ = 0;
    trailers_.clear();
  }

 private:
  enum class state : std::uint8_t { size_line, data, data_crlf, trailer, done };

  static int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // Parses "chunk-size [chunk-ext] CRLF" at p. Returns a pointer past the CRLF, or nullptr (need more / error).
  // Only the first `max_chunk_line` bytes are looked at, so that the error reported is the first one in the input
  // however it was split: a malformed line is malformed before it is too long.
  const char* parse_size_line(const char* p, const char* end, std::error_code& ec) noexcept {
    const char* line = p;
    const bool window_full = static_cast<std::size_t>(end - line) >= limits_.max_chunk_line;
    const char* window = window_full ? line + limits_.max_chunk_line : end;
    const char* lf = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(window - p)));
    const char* limit = lf != nullptr ? lf + 1 : window;
    auto out_of_input = [&]() -> const char* {
      if (window_full && lf == nullptr) ec = error::chunk_line_too_long;
      return nullptr;
    };
    std::uint64_t size = 0;
    int digits = 0;
    for (; p < limit; ++p) {
      const int v = hex_value(*p);
      if (v < 0) break;
      if ((size >> 60) != 0) {  // another digit would overflow 64 bits
        ec = error::chunk_size_overflow;
        return nullptr;
      }
      size = (size << 4) | static_cast<unsigned>(v);
      ++digits;
    }
    if (p == limit) return out_of_input();
    if (digits == 0) {
      ec = error::bad_chunk;
      return nullptr;
    }
    if (!skip_extensions(p, limit, ec)) return ec ? nullptr : out_of_input();  // p now at CR
    if (p + 1 >= limit) return out_of_input();
    if (p[1] != '\n') {
      ec = error::bad_chunk;
      return nullptr;
    }
    if (size > limits_.max_body || total_ + size > limits_.max_body) {
      ec = error::body_too_large;
      return nullptr;
    }
    remaining_ = size;
    total_ += size;
    return p + 2;
  }

  // chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ), chunk-ext-val = token /
  // quoted-string. Advances p to the CR ending the line. Returns false on error, or when the line is incomplete
  // (ec clear; p may then be anywhere).
  // BWS is allowed only where the grammar puts it: before a ";" or around "=". Whitespace after the size or an
  // extension that the CRLF follows ("5 \r\n") matches no production and is an error: a parser that reads "5 " as
  // 5 and one that rejects it, or stops at the space, frame the body differently (RFC 9112 §7.1, §11.2).
  static bool skip_extensions(const char*& p, const char* limit, std::error_code& ec) noexcept {
    auto skip_bws = [&] {
      while (p < limit && detail::is_ows(*p)) ++p;
    };
    auto need = [&] { return p < limit; };
    for (;;) {
      const char* bws = p;
      skip_bws();
      if (!need()) return false;
      if (*p == '\r') {
        if (p != bws) {
          ec = error::bad_chunk;
          return false;
        }
        return true;
      }
      if (*p != ';') {
        ec = error::bad_chunk;
        return false;
      }
      ++p;
      skip_bws();
      const char* name = p;
      while (p < limit && detail::is_token_char(static_cast<unsigned char>(*p))) ++p;
      if (!need()) return false;
      if (p == name) {
        ec = error::bad_chunk;
        return false;
      }
      const char* after_name = p;
      skip_bws();
      if (!need()) return false;
      if (*p != '=') {
        p = after_name;  // this BWS must precede a ";": the loop checks it
        continue;
      }
      ++p;
      skip_bws();
      if (!need()) return false;
      if (*p == '"') {
        ++p;
        for (;;) {
          if (!need()) return false;
          const unsigned char c = static_cast<unsigned char>(*p);
          if (c == '"') {
            ++p;
            break;
          }
          if (c == '\\') {
            ++p;
            if (!need()) return false;
            const unsigned char q = static_cast<unsigned char>(*p);
            if (!(q == '\t' || (q >= 0x20 && q != 0x7f))) {
              ec = error::bad_chunk;
              return false;
            }
            ++p;
            continue;
          }
          // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
          if (!(c == '\t' || (c >= 0x20 && c != 0x7f))) {
            ec = error::bad_chunk;
            return false;
          }
          ++p;
        }
      } else {
        const char* value = p;
        while (p < limit && detail::is_token_char(static_cast<unsigned char>(*p))) ++p;
        if (!need()) return false;
        if (p == value) {
          ec = error::bad_chunk;
          return false;
        }
      }
    }
  }

  // The trailer section, within `max_trailer_bytes` (as the header section: the first error wins over the size).
  const char* parse_trailer(const char* p, const char* end, std::error_code& ec) noexcept {
    const bool window_full = static_cast<std::size_t>(end - p) >= limits_.max_trailer_bytes;
    const char* window = window_full ? p + limits_.max_trailer_bytes : end;
    std::error_code bare_lf;
    const char* from = p + (trailer_scanned_ >= 3 ? trailer_scanned_ - 3 : 0);
    if (detail::find_section_end(p, from, window, bare_lf) == nullptr && !bare_lf && !window_full) {
      trailer_scanned_ = static_cast<std::size_t>(window - p);
      return nullptr;  // need more; parse only once the section (or an error) is there
    }
    trailers_.clear();
    const char* q = detail::parse_field_lines(p, window, trailers_, limits_.max_trailer_fields, ec);
    if (q == nullptr && !ec && window_full) ec = error::header_too_large;
    return q;
  }

  chunked_limits limits_;
  state state_ = state::size_line;
  std::uint64_t remaining_ = 0;
  std::uint64_t total_ = 0;
  std::size_t trailer_scanned_ = 0;  // bytes of an incomplete trailer section already searched
  field_views trailers_;
};

}  // namespace switchboard::http
