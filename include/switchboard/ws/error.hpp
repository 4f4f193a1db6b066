// switchboard/ws/error.hpp
//
// Errors of the WebSocket codec (RFC 6455, RFC 7692). Every violation a peer can commit maps to the close code
// the endpoint sends before it closes the connection (`close_code_for`), so that a driver never has to decide
// that itself: RFC 6455 §7.1.7 ("_Fail the WebSocket Connection_") with the codes of §7.4.1.
#pragma once

#include <switchboard/ws/frame.hpp>

#include <string>
#include <system_error>

namespace switchboard::ws {

/// Errors reported by the WebSocket frame parser, the permessage-deflate codec and the handshake helpers.
enum class error {
  // -- Framing violations (RFC 6455 §5): close code 1002 (protocol error).

  /// RSV2 or RSV3 set, or RSV1 set although no extension that defines it was negotiated (§5.2).
  reserved_bits_set = 1,
  /// An opcode that RFC 6455 reserves: 0x3-0x7 or 0xB-0xF (§5.2).
  unknown_opcode,
  /// A server received a frame from the client without a mask (§5.1: the client masks every frame).
  unmasked_client_frame,
  /// A client received a masked frame from the server (§5.1: the server never masks).
  masked_server_frame,
  /// The payload length was not encoded in the minimal number of bytes (§5.2).
  non_minimal_length,
  /// A 64-bit payload length with its most significant bit set (§5.2).
  length_high_bit_set,
  /// A control frame (close, ping, pong) with more than 125 bytes of payload (§5.5).
  control_frame_too_big,
  /// A control frame with FIN clear: control frames are never fragmented (§5.5).
  fragmented_control_frame,
  /// A continuation frame arrived while no fragmented message was in progress (§5.4).
  unexpected_continuation,
  /// A new text or binary frame arrived while a fragmented message was still in progress (§5.4).
  expected_continuation,
  /// RSV1 ("compressed") set on a control frame or on a continuation frame (RFC 7692 §6.1).
  misplaced_compressed_bit,
  /// A close frame with a 1-byte payload: it is either empty or starts with a 2-byte code (§5.5.1).
  close_payload_too_short,
  /// A close code that must not appear on the wire (§7.4.1, §7.4.2; see `is_valid_close_code`).
  invalid_close_code,
  /// Bytes arrived after the peer's close frame; nothing may follow it (§5.5.1).
  frame_after_close,

  // -- Invalid payload data: close code 1007.

  /// A text message is not valid UTF-8 (§8.1, RFC 3629). Reported as soon as the first invalid byte arrives.
  invalid_utf8,
  /// The reason text of a close frame is not valid UTF-8 (§5.5.1).
  invalid_close_reason,
  /// A compressed message is not a valid DEFLATE stream, or does not end on a block boundary (RFC 7692 §7.2.2).
  invalid_compressed_data,

  // -- Limits: close code 1009 (message too big).

  /// A frame's payload length exceeds `parser_options::max_frame_size`.
  frame_too_big,
  /// A message exceeds `parser_options::max_message_size` (for a compressed message: its compressed size, or
  /// its size after decompression, checked while inflating).
  message_too_big,

  // -- Local failure: close code 1011 (internal error).

  /// zlib could not allocate or initialise its state.
  compression_failure,

  // -- Opening handshake (RFC 6455 §4): answered with HTTP 400 by a server; a client fails the connection.

  /// `Sec-WebSocket-Key` is not the base64 encoding of 16 bytes (§4.2.1 item 5).
  invalid_key,
  /// `Sec-WebSocket-Accept` does not match the key the client sent (§4.2.2 item 5.4, §4.1 item 4).
  invalid_accept,
  /// A `Sec-WebSocket-Protocol` or `Sec-WebSocket-Extensions` header does not follow its grammar (§4.3, §9.1).
  invalid_header_syntax,
  /// The server selected a subprotocol the client did not offer (§4.1 item 6).
  unexpected_subprotocol,
  /// The server's `Sec-WebSocket-Extensions` response names an extension the client did not offer, or answers
  /// permessage-deflate with parameters the client cannot accept (RFC 6455 §9.1, RFC 7692 §7.1).
  unexpected_extension,
  /// The server answered the opening handshake with a status other than 101, or without `Upgrade: websocket`
  /// and `Connection: upgrade` (§4.1 items 1-3).
  handshake_refused,
};

}  // namespace switchboard::ws

// Declared before anything converts a `ws::error` to `std::error_code`, so that the conversion is known there.
template <>
struct std::is_error_code_enum<switchboard::ws::error> : std::true_type {};

namespace switchboard::ws {

namespace detail {
class ws_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "switchboard.ws"; }
  std::string message(int value) const override {
    switch (static_cast<error>(value)) {
      case error::reserved_bits_set: return "reserved bit set in frame header";
      case error::unknown_opcode: return "unknown opcode";
      case error::unmasked_client_frame: return "client frame not masked";
      case error::masked_server_frame: return "server frame masked";
      case error::non_minimal_length: return "payload length not minimally encoded";
      case error::length_high_bit_set: return "64-bit payload length has its most significant bit set";
      case error::control_frame_too_big: return "control frame payload longer than 125 bytes";
      case error::fragmented_control_frame: return "fragmented control frame";
      case error::unexpected_continuation: return "continuation frame without a message in progress";
      case error::expected_continuation: return "new data frame inside a fragmented message";
      case error::misplaced_compressed_bit: return "compressed bit set on a control or continuation frame";
      case error::close_payload_too_short: return "close frame payload of 1 byte";
      case error::invalid_close_code: return "invalid close code";
      case error::frame_after_close: return "data after close frame";
      case error::invalid_utf8: return "text message is not valid UTF-8";
      case error::invalid_close_reason: return "close reason is not valid UTF-8";
      case error::invalid_compressed_data: return "invalid compressed data";
      case error::frame_too_big: return "frame too big";
      case error::message_too_big: return "message too big";
      case error::compression_failure: return "compression library failure";
      case error::invalid_key: return "invalid Sec-WebSocket-Key";
      case error::invalid_accept: return "Sec-WebSocket-Accept does not match the key";
      case error::invalid_header_syntax: return "malformed WebSocket handshake header";
      case error::unexpected_subprotocol: return "server selected a subprotocol that was not offered";
      case error::unexpected_extension: return "server accepted an extension that was not offered as answered";
      case error::handshake_refused: return "server did not switch to WebSocket";
    }
    return "unknown switchboard.ws error";
  }
};
}  // namespace detail

/// The category of `switchboard::ws::error`.
inline const std::error_category& ws_category() noexcept {
  static const detail::ws_category_impl instance;
  return instance;
}

inline std::error_code make_error_code(error e) noexcept { return {static_cast<int>(e), ws_category()}; }

/// The close code an endpoint sends when it fails the connection because of `e` (RFC 6455 §7.1.7, §7.4.1):
///  - framing violations and handshake errors: 1002 (protocol error). Handshake errors happen before there is a
///    WebSocket connection: a server answers them with HTTP 400 and a client just closes the TCP connection; the
///    code is given so that every value maps to one;
///  - invalid UTF-8 (message or close reason) and undecodable compressed data: 1007 (invalid payload data);
///  - frame and message size limits: 1009 (message too big);
///  - zlib failures on our side: 1011 (internal error).
constexpr close_code close_code_for(error e) noexcept {
  switch (e) {
    case error::invalid_utf8:
    case error::invalid_close_reason:
    case error::invalid_compressed_data: return close_code::invalid_payload;
    case error::frame_too_big:
    case error::message_too_big: return close_code::message_too_big;
    case error::compression_failure: return close_code::internal_error;
    default: return close_code::protocol_error;
  }
}

/// `close_code_for` for an error code of any category: `ws_category` errors map as above; anything else (an I/O
/// error, a timeout) maps to 1011 (internal error), although a driver usually just closes the socket then.
inline close_code close_code_for(const std::error_code& ec) noexcept {
  if (ec.category() == ws_category()) return close_code_for(static_cast<error>(ec.value()));
  return close_code::internal_error;
}

}  // namespace switchboard::ws
