// switchboard/ws/frame_parser.hpp
//
// The incremental WebSocket frame and message parser (RFC 6455 §5, RFC 7692 §6), sans-I/O. Feed it the bytes
// read from the connection in any pieces; it returns one event at a time: a piece of a text or binary message,
// a ping, a pong, a close, or an error that says which close code to send (`close_code_for`). Any split of the
// input gives the same messages, control frames and errors.
//
// Strict by design (DESIGN promise 8): every rule of RFC 6455 §5 that a peer can break fails the connection
// with the code of §7.4.1 as soon as the offending byte arrives: reserved bits and opcodes, the masking rule
// of the role, minimal length encodings, control frame size and fragmentation, the order of fragments, close
// frame codes and reasons, UTF-8 of text messages (checked incrementally, across fragments), and the frame and
// message size limits of `parser_options`. Limits are checked on the frame header, before any payload is read.
//
// Buffers and ownership: `parse` takes a *mutable* span of the caller's read buffer because it unmasks client
// payloads in place (one pass over the bytes, no copy). It only ever modifies the bytes it reports consumed;
// bytes it did not consume are left as they were, so the caller may keep them, move them to the front of its
// buffer and append more before the next call. Payload views handed out in a result point
//  - into the caller's buffer, for uncompressed data and for control frames (ping/pong payloads, close
//    reasons) that arrived whole in one input: valid until the caller reuses those bytes;
//  - into the parser, for control frames split across inputs and for decompressed data: valid until the next
//    call to `parse`.
// Either way a view is valid until the next call to `parse` if the caller keeps its buffer until then.
// Large messages are therefore streamed piece by piece; a caller that wants whole messages appends the pieces
// (the limits bound how much that may take).
//
// Typical driver loop:
//
//     ws::frame_parser parser(ws::role::server, {.max_message_size = 1 <<20});
//     for (;;) {
//       std::span<char> bytes = ...;           // unconsumed bytes in the read buffer
//       auto r = parser.parse(bytes);
//       drop the first r.consumed bytes;
//       switch (r.event) {
//         case ws::parse_event::need_more: read more from the socket; break;
//         case ws::parse_event::data: message += r.payload; if (r.message_end) deliver(message); break;
//         case ws::parse_event::ping: send a pong with r.payload; break;
//         case ws::parse_event::pong: note liveness; break;
//         case ws::parse_event::close: answer the close (echo r.code), then close the socket; break;
//         case ws::parse_event::error: send close with close_code_for(r.error), then close the socket; break;
//       }
//     }
#pragma once

#include <switchboard/ws/deflate.hpp>
#include <switchboard/ws/detail/close_payload.hpp>
#include <switchboard/ws/error.hpp>
#include <switchboard/ws/frame.hpp>
#include <switchboard/ws/mask.hpp>
#include <switchboard/core/utf8.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace switchboard::ws {

/// Limits and negotiated extensions of a frame parser. Usable with designated initializers.
struct parser_options {
  /// Largest message, in bytes: the sum of its frames' payloads and, for a compressed message, also its size
  /// after decompression. Larger fails with `error::message_too_big` (close 1009). Default 16 MiB.
  std::uint64_t max_message_size = 16 * 1024 * 1024;
  /// Largest payload of a single data frame, in bytes. Larger fails with `error::frame_too_big` (close 1009).
  /// Default 16 MiB (so by default only the message limit matters).
  std::uint64_t max_frame_size = 16 * 1024 * 1024;
  /// The permessage-deflate parameters agreed in the handshake, or nullopt (the default) if it was not: RSV1
  /// then fails the connection. When set, messages whose first frame has RSV1 are inflated before they are
  /// handed out (and validated as UTF-8 after inflation).
  std::optional<deflate_params> deflate = std::nullopt;
  /// Size of the parser's buffer for decompressed data, in bytes: the most a `data` event of a compressed
  /// message carries. Allocated with the first compressed message. Must be at least 1. Default 16 KiB.
  std::size_t inflate_buffer_size = 16 * 1024;
};

/// What `frame_parser::parse` found.
enum class parse_event : std::uint8_t {
  need_more,  ///< All input was consumed and nothing is complete yet: read more and call again.
  data,       ///< A piece of a text or binary message (`payload`, `message_type`, `message_end`).
  ping,       ///< A ping arrived (`payload`): answer with a pong carrying the same payload (RFC 6455 §5.5.2).
  pong,       ///< A pong arrived (`payload`).
  close,      ///< The peer's close frame arrived (`code`, `reason`): echo it and close (§5.5.1). Nothing may follow.
  error,      ///< The peer broke the protocol or a limit (`error`): close with `close_code_for(error)`.
};

/// The outcome of one `frame_parser::parse` call.
struct parse_result {
  /// Bytes of the input used; the caller drops them and passes the rest (plus newly read bytes) next time.
  std::size_t consumed = 0;
  /// What was found.
  parse_event event = parse_event::need_more;
  /// data: the message's type, `opcode::text` or `opcode::binary`.
  opcode message_type = opcode::binary;
  /// data: this piece is the last of its message. A message may end with an empty piece.
  bool message_end = false;
  /// data: the next bytes of the message (unmasked, decompressed); ping, pong: the whole control payload.
  std::string_view payload{};
  /// close: the code the peer sent, or `close_code::no_status` (1005) if its close frame had no payload.
  close_code code = close_code::no_status;
  /// close: the reason text the peer sent (valid UTF-8, at most 123 bytes), possibly empty.
  std::string_view reason{};
  /// error: what went wrong, a `ws::error`.
  std::error_code error{};
};

/// Parses the frames one end of a connection receives. Not thread-safe: one per connection, fed in order.
/// After an `error` event every later call returns the same error; after a `close` event any further byte is
/// `error::frame_after_close`.
class frame_parser {
 public:
  /// A parser for the frames that `r` receives: a server parser expects masked frames (from a client), a
  /// client parser unmasked ones. Throws `std::invalid_argument` if `options.inflate_buffer_size` is 0 or the
  /// deflate window bits are outside 8-15.
  explicit frame_parser(role r, parser_options options = {}) : role_(r), options_(options) {
    if (options_.inflate_buffer_size == 0) {
      throw std::invalid_argument("switchboard::ws::frame_parser: inflate_buffer_size must be at least 1");
    }
    if (options_.deflate) {
      inflater_ = std::make_unique<deflate_decompressor>(role_, *options_.deflate, options_.max_message_size);
    }
  }

  /// Parses from the start of `input` up to the first event, unmasking payload bytes in place. See the file
  /// comment for buffer ownership.
  parse_result parse(std::span<char> input) {
    parse_result r;
    std::size_t pos = 0;
    for (;;) {
      switch (state_) {
        case state::header:
          if (!read_header(input, pos, r)) {
            r.consumed = pos;
            return r;  // need_more or error
          }
          continue;
        case state::control_payload:
          read_control_payload(input, pos, r);
          r.consumed = pos;
          return r;  // need_more, a control event or an error
        case state::payload:
          if (message_compressed_ ? read_compressed(input, pos, r) : read_payload(input, pos, r)) continue;
          r.consumed = pos;
          return r;  // need_more, data or error
        case state::closed:
          if (pos < input.size()) fail(r, error::frame_after_close);
          r.consumed = pos;
          return r;
        case state::failed:
          r.event = parse_event::error;
          r.error = error_;
          r.consumed = pos;
          return r;
      }
    }
  }

  /// True while a data message is in progress: its first frame has arrived and its last piece has not been
  /// handed out yet (control frames may still come in between).
  bool in_message() const noexcept { return in_message_; }

  /// True after the peer's close frame or an error: the parser accepts no more frames.
  bool done() const noexcept { return state_ == state::closed || state_ == state::failed; }

 private:
  enum class state : std::uint8_t { header, control_payload, payload, closed, failed };

  // --- frame header (RFC 6455 §5.2) -------------------------------------------------------------------------

  // Collects header bytes into header_bytes_ until the whole header is there, validating as soon as each part
  // is complete. Returns true when a header was accepted (the state moved on); false for need_more or error.
  bool read_header(std::span<char> input, std::size_t& pos, parse_result& r) {
    if (!collect(input, pos, 2)) return false;
    if (header_size_ == 0) {
      if (auto e = check_first_two_bytes()) return fail(r, *e);
    }
    if (!collect(input, pos, header_size_)) return false;
    if (auto e = finish_header()) return fail(r, *e);
    header_have_ = 0;
    header_size_ = 0;
    start_frame();
    return true;
  }

  // Copies header bytes from the input until `want` are collected; false if the input ran out first.
  bool collect(std::span<char> input, std::size_t& pos, std::size_t want) noexcept {
    if (header_have_ < want) {
      const std::size_t n = std::min(want - header_have_, input.size() - pos);
      std::copy_n(input.data() + pos, n, header_bytes_.data() + header_have_);
      header_have_ += n;
      pos += n;
    }
    return header_have_ >= want;
  }

  // Byte 0 (FIN, RSV1-3, opcode) and byte 1 (MASK, 7-bit length), in that order, so that a frame with several
  // faults reports the same one however the input is split. Sets header_size_ to the full header length.
  std::optional<error> check_first_two_bytes() noexcept {
    const auto b0 = static_cast<std::uint8_t>(header_bytes_[0]);
    const auto b1 = static_cast<std::uint8_t>(header_bytes_[1]);
    header_ = frame_header{};
    header_.fin = (b0 & 0x80) != 0;
    header_.rsv1 = (b0 & 0x40) != 0;
    header_.rsv2 = (b0 & 0x20) != 0;
    header_.rsv3 = (b0 & 0x10) != 0;
    const std::uint8_t op = b0 & 0x0F;
    header_.masked = (b1 & 0x80) != 0;
    header_.payload_size = b1 & 0x7F;

    // §5.2: RSV bits must be 0 unless an extension defines them; permessage-deflate defines RSV1 (RFC 7692 §6).
    if (header_.rsv2 || header_.rsv3 || (header_.rsv1 && !options_.deflate)) return error::reserved_bits_set;
    if (!is_defined_opcode(op)) return error::unknown_opcode;
    header_.op = static_cast<opcode>(op);
    if (is_control(header_.op)) {
      if (!header_.fin) return error::fragmented_control_frame;                // §5.5
      if (header_.rsv1) return error::misplaced_compressed_bit;                // RFC 7692 §6.1
    } else if (header_.op == opcode::continuation) {
      if (!in_message_) return error::unexpected_continuation;                 // §5.4
      if (header_.rsv1) return error::misplaced_compressed_bit;                // RFC 7692 §6.1
    } else if (in_message_) {
      return error::expected_continuation;                                     // §5.4
    }
    // §5.1: "a client MUST mask all frames that it sends to the server"; "a server MUST NOT mask any frames".
    if (role_ == role::server && !header_.masked) return error::unmasked_client_frame;
    if (role_ == role::client && header_.masked) return error::masked_server_frame;
    if (is_control(header_.op) && header_.payload_size > max_control_payload) return error::control_frame_too_big;

    const std::size_t length_bytes = header_.payload_size == 126 ? 2 : header_.payload_size == 127 ? 8 : 0;
    header_size_ = 2 + length_bytes + (header_.masked ? 4 : 0);
    return std::nullopt;
  }

  // The extended length (§5.2: "the minimal number of bytes MUST be used", "the most significant bit MUST be
  // 0"), the size limits, and the masking key.
  std::optional<error> finish_header() noexcept {
    std::size_t at = 2;
    if (header_.payload_size == 126) {
      header_.payload_size = read_big_endian(2);
      at += 2;
      if (header_.payload_size < 126) return error::non_minimal_length;
    } else if (header_.payload_size == 127) {
      header_.payload_size = read_big_endian(8);
      at += 8;
      if (header_.payload_size >> 63) return error::length_high_bit_set;
      if (header_.payload_size <= 0xFFFF) return error::non_minimal_length;
    }
    if (!is_control(header_.op)) {
      // The message limit first: with the default limits (equal) it is the one that explains the failure.
      const std::uint64_t so_far = header_.op == opcode::continuation ? message_wire_size_ : 0;
      if (header_.payload_size > options_.max_message_size - std::min(so_far, options_.max_message_size)) {
        return error::message_too_big;
      }
      if (header_.payload_size > options_.max_frame_size) return error::frame_too_big;
    }
    if (header_.masked) std::memcpy(header_.key.data(), header_bytes_.data() + at, 4);
    return std::nullopt;
  }

  std::uint64_t read_big_endian(std::size_t n) const noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<std::uint8_t>(header_bytes_[2 + i]);
    return v;
  }

  // Sets up the payload state of the frame whose header was just accepted.
  void start_frame() noexcept {
    remaining_ = header_.payload_size;
    payload_offset_ = 0;
    if (is_control(header_.op)) {
      state_ = state::control_payload;
      return;
    }
    if (header_.op != opcode::continuation) {
      in_message_ = true;
      message_type_ = header_.op;
      message_compressed_ = header_.rsv1;
      message_wire_size_ = 0;
      utf8_.reset();
    }
    message_wire_size_ += header_.payload_size;
    state_ = state::payload;
  }

  // --- control frames (RFC 6455 §5.5) -----------------------------------------------------------------------

  // A control frame that arrived whole is unmasked where it lies in the input. One split across inputs is
  // collected into a buffer of the parser's, allocated the first time that happens (few connections ever see a
  // split ping, and an idle connection should not carry 125 bytes for it), so that the event carries the payload
  // whole however the input was split.
  void read_control_payload(std::span<char> input, std::size_t& pos, parse_result& r) {
    const auto size = static_cast<std::size_t>(header_.payload_size);
    const std::size_t have = size - static_cast<std::size_t>(remaining_);
    std::span<char> payload;
    if (have == 0 && input.size() - pos >= size) {
      payload = input.subspan(pos, size);
      pos += size;
      remaining_ = 0;
    } else {
      if (!control_) control_ = std::make_unique_for_overwrite<char[]>(max_control_payload);
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, input.size() - pos));
      std::copy_n(input.data() + pos, n, control_.get() + have);
      pos += n;
      remaining_ -= n;
      if (remaining_ > 0) return;  // need_more
      payload = std::span<char>(control_.get(), size);
    }

    if (header_.masked) apply_mask(payload, header_.key);
    const std::string_view view(payload.data(), payload.size());
    state_ = state::header;
    switch (header_.op) {
      case opcode::ping:
        r.event = parse_event::ping;
        r.payload = view;
        return;
      case opcode::pong:
        r.event = parse_event::pong;
        r.payload = view;
        return;
      default:
        read_close(view, r);
        return;
    }
  }

  // §5.5.1: a close payload is empty, or a 2-byte code (valid on the wire, §7.4) followed by UTF-8 text.
  void read_close(std::string_view payload, parse_result& r) {
    if (auto e = detail::close_payload_error(payload)) {
      fail(r, *e);
      return;
    }
    if (!payload.empty()) {
      r.code = static_cast<close_code>(detail::close_code_value(payload));
      r.reason = payload.substr(2);
    }
    r.event = parse_event::close;
    state_ = state::closed;
  }

  // --- data frames ------------------------------------------------------------------------------------------

  // An uncompressed payload: unmask what is here in place and hand it out. Returns true to go on parsing (an
  // empty frame that does not end its message produces no event).
  bool read_payload(std::span<char> input, std::size_t& pos, parse_result& r) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, input.size() - pos));
    if (n == 0 && remaining_ > 0) return false;  // need_more
    std::span<char> piece = input.subspan(pos, n);
    if (header_.masked) apply_mask(piece, header_.key, payload_offset_);
    pos += n;
    payload_offset_ += n;
    remaining_ -= n;
    const std::string_view view(piece.data(), piece.size());
    const bool frame_end = remaining_ == 0;
    const bool message_end = frame_end && header_.fin;
    if (frame_end) state_ = state::header;
    if (n == 0 && !message_end) return true;
    return deliver(view, message_end, r);
  }

  // A compressed message's payload: unmask what is here, inflate as much as the output buffer takes, and put
  // back the mask on bytes zlib did not take (they stay the caller's, unconsumed). Returns true to go on.
  bool read_compressed(std::span<char> input, std::size_t& pos, parse_result& r) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, input.size() - pos));
    const bool ends_message = header_.fin && n == remaining_;
    if (n == 0 && !ends_message && !inflate_pending_) {
      if (remaining_ > 0) return false;  // need_more
      state_ = state::header;             // a non-final frame fully inflated: on to the next frame
      return true;
    }
    if (!inflate_buffer_) inflate_buffer_ = std::make_unique<char[]>(options_.inflate_buffer_size);
    std::span<char> piece = input.subspan(pos, n);
    if (header_.masked) apply_mask(piece, header_.key, payload_offset_);
    const inflate_result ir =
        inflater_->inflate(piece, ends_message, std::span<char>(inflate_buffer_.get(), options_.inflate_buffer_size));
    if (ir.error) {
      // What was decoded before the fault is checked first, so that the error reported does not depend on how
      // the input was split (a split can hand out that text, and fail on it, before the fault is reached).
      const std::string_view decoded(inflate_buffer_.get(), ir.produced);
      if (message_type_ == opcode::text && !utf8_.feed(decoded)) return fail(r, error::invalid_utf8);
      return fail(r, static_cast<error>(ir.error.value()));
    }
    if (header_.masked) apply_mask(piece.subspan(ir.consumed), header_.key, payload_offset_ + ir.consumed);
    pos += ir.consumed;
    payload_offset_ += ir.consumed;
    remaining_ -= ir.consumed;
    // A full output buffer means zlib may hold more output even without more input.
    inflate_pending_ = !ir.message_done && ir.produced == options_.inflate_buffer_size;
    if (ir.message_done) state_ = state::header;
    if (ir.produced == 0 && !ir.message_done) return true;
    return deliver(std::string_view(inflate_buffer_.get(), ir.produced), ir.message_done, r);
  }

  // Hands out a piece of the current message after checking text for UTF-8 (RFC 6455 §8.1: fail as soon as
  // the bytes cannot be valid; at the end, the text must not stop inside a code point).
  bool deliver(std::string_view piece, bool message_end, parse_result& r) {
    if (message_type_ == opcode::text && (!utf8_.feed(piece) || (message_end && !utf8_.complete()))) {
      return fail(r, error::invalid_utf8);
    }
    if (message_end) in_message_ = false;
    r.event = parse_event::data;
    r.message_type = message_type_;
    r.message_end = message_end;
    r.payload = piece;
    return false;
  }

  bool fail(parse_result& r, error e) noexcept {
    state_ = state::failed;
    error_ = e;
    r.event = parse_event::error;
    r.error = e;
    return false;
  }

  role role_;
  parser_options options_;
  state state_ = state::header;
  std::error_code error_;  // the error that failed the parser

  // The frame being parsed.
  std::array<char, max_header_size> header_bytes_{};
  std::size_t header_have_ = 0;   // header bytes collected
  std::size_t header_size_ = 0;   // full header length, known once the first two bytes are checked (0 before)
  frame_header header_;
  std::uint64_t remaining_ = 0;       // payload bytes of this frame not yet consumed
  std::uint64_t payload_offset_ = 0;  // payload bytes of this frame consumed so far (the mask's phase)
  std::unique_ptr<char[]> control_;  // a split control frame's payload (max_control_payload bytes), made on demand

  // The data message in progress.
  bool in_message_ = false;
  opcode message_type_ = opcode::binary;
  bool message_compressed_ = false;
  std::uint64_t message_wire_size_ = 0;  // payload bytes of its frames so far, as received
  utf8_validator utf8_;

  // permessage-deflate, when agreed.
  std::unique_ptr<deflate_decompressor> inflater_;
  std::unique_ptr<char[]> inflate_buffer_;
  bool inflate_pending_ = false;  // the last inflate filled the buffer: drain before moving on
};

}  // namespace switchboard::ws
