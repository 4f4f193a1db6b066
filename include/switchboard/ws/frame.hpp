// switchboard/ws/frame.hpp
//
// The vocabulary of WebSocket framing (RFC 6455 §5.2): opcodes, close codes and the frame header, shared by the
// frame parser and the frame writer.
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-------+-+-------------+-------------------------------+
//   |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//   |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//   |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//   | |1|2|3|       |K|             |                               |
//   +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//   |     Extended payload length continued, if payload len == 127  |
//   + - - - - - - - - - - - - - - - +-------------------------------+
//   |                               |Masking-key, if MASK set to 1  |
//   +-------------------------------+-------------------------------+
//   | Masking-key (continued)       |          Payload Data         |
//   +-------------------------------- - - - - - - - - - - - - - - - +
#pragma once

#include <switchboard/ws/mask.hpp>

#include <cstddef>
#include <cstdint>

namespace switchboard::ws {

/// Which end of the connection a codec works for. It decides the masking rule of RFC 6455 §5.1: a client masks
/// every frame it sends and a server never does, so a server rejects unmasked frames and a client masked ones.
enum class role { server, client };

/// Frame opcodes (RFC 6455 §5.2, §11.8). The other values (0x3-0x7, 0xB-0xF) are reserved and rejected.
enum class opcode : std::uint8_t {
  continuation = 0x0,  ///< a later fragment of a fragmented text or binary message (§5.4)
  text = 0x1,          ///< a message of UTF-8 text (§5.6)
  binary = 0x2,        ///< a message of arbitrary bytes (§5.6)
  close = 0x8,         ///< starts or answers the closing handshake (§5.5.1)
  ping = 0x9,          ///< asks the peer for a pong with the same payload (§5.5.2)
  pong = 0xA,          ///< answers a ping, or a unidirectional heartbeat (§5.5.3)
};

/// True for the opcodes RFC 6455 defines; the reserved ones must fail the connection (§5.2).
constexpr bool is_defined_opcode(std::uint8_t value) noexcept {
  return value <= 0x2 || (value >= 0x8 && value <= 0xA);
}

/// True for close, ping and pong (and the reserved 0xB-0xF): opcodes with the high bit set (§5.5).
constexpr bool is_control(opcode op) noexcept { return (static_cast<std::uint8_t>(op) & 0x8) != 0; }

/// The most payload a control frame may carry (§5.5).
inline constexpr std::size_t max_control_payload = 125;

/// The most bytes a close reason may have: a control payload less the 2-byte code (§5.5.1).
inline constexpr std::size_t max_close_reason = max_control_payload - 2;

/// The largest frame header: 2 bytes, a 64-bit extended length and a 4-byte masking key (§5.2).
inline constexpr std::size_t max_header_size = 14;

/// Close status codes (RFC 6455 §7.4.1 and the IANA "WebSocket Close Code Number Registry"). Any value of
/// 3000-4999 is also valid on the wire (§7.4.2: registered libraries and private use), so a `close_code` may hold
/// values not named here.
enum class close_code : std::uint16_t {
  normal = 1000,             ///< the purpose of the connection was fulfilled
  going_away = 1001,         ///< a server going down, or a browser leaving the page
  protocol_error = 1002,     ///< the peer broke the protocol
  unsupported_data = 1003,   ///< a type of data the endpoint cannot accept (text-only endpoint got binary)
  no_status = 1005,          ///< never sent: reported when a close frame carried no code (§7.1.5)
  abnormal = 1006,           ///< never sent: reported when the connection closed without a close frame (§7.1.5)
  invalid_payload = 1007,    ///< data inconsistent with the message type (non-UTF-8 text)
  policy_violation = 1008,   ///< a generic refusal when no other code fits
  message_too_big = 1009,    ///< a message too big to process
  mandatory_extension = 1010,///< (client) the server did not negotiate an extension the client requires
  internal_error = 1011,     ///< (server) an unexpected condition prevented fulfilling the request
  service_restart = 1012,    ///< (IANA) the service is restarting
  try_again_later = 1013,    ///< (IANA) temporary overload: try again later
  bad_gateway = 1014,        ///< (IANA) a gateway got an invalid response upstream
  tls_handshake = 1015,      ///< never sent: reported when the TLS handshake failed
};

/// True when `code` may appear in a close frame on the wire (RFC 6455 §7.4.1, §7.4.2):
///  - 1000-1003 and 1007-1011, defined by RFC 6455;
///  - 1012-1014, registered with IANA after RFC 6455 (Autobahn's current suite accepts them too);
///  - 3000-4999, for libraries, frameworks and applications.
/// Everything else is invalid: 0-999 are unused, 1004 is reserved, 1005, 1006 and 1015 are reserved for local
/// reporting and "MUST NOT be set as a status code in a Close control frame by an endpoint", and 1016-2999 are
/// reserved for future revisions and extensions.
constexpr bool is_valid_close_code(std::uint16_t code) noexcept {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/// The fields of a frame header (§5.2).
struct frame_header {
  bool fin = true;                 ///< last frame of its message (always true for control frames)
  bool rsv1 = false;               ///< reserved bit 1: "compressed" under permessage-deflate (RFC 7692 §6)
  bool rsv2 = false;               ///< reserved bit 2: no extension here defines it
  bool rsv3 = false;               ///< reserved bit 3: no extension here defines it
  opcode op = opcode::text;        ///< the frame's opcode
  bool masked = false;             ///< a masking key follows the length (set by clients only)
  mask_key key{};                  ///< the masking key, when `masked`
  std::uint64_t payload_size = 0;  ///< payload length in bytes (at most 2^63 - 1 on the wire)
};

/// The size of the header that encodes a payload of `payload_size` bytes, masked or not: 2 bytes, plus 2 for a
/// length of 126-65535 or 8 for longer, plus 4 for the masking key (§5.2).
constexpr std::size_t header_size(std::uint64_t payload_size, bool masked) noexcept {
  const std::size_t length_bytes = payload_size < 126 ? 0 : payload_size <= 0xFFFF ? 2 : 8;
  return 2 + length_bytes + (masked ? 4 : 0);
}

}  // namespace switchboard::ws
