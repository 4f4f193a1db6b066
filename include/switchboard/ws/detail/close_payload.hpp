// switchboard/ws/detail/close_payload.hpp
//
// The rule for a close frame's payload (RFC 6455 §5.5.1): empty, or a 2-byte close code that may appear on the
// wire (§7.4) followed by UTF-8 text. The parser fails the connection on a payload that breaks it; the writer
// refuses to send one, whichever of its functions is asked to.
#pragma once

#include <switchboard/core/utf8.hpp>
#include <switchboard/ws/error.hpp>
#include <switchboard/ws/frame.hpp>

#include <cstdint>
#include <optional>
#include <string_view>

namespace switchboard::ws::detail {

/// The close code in the first two bytes of `payload` (network byte order); `payload` has at least two.
inline std::uint16_t close_code_value(std::string_view payload) noexcept {
  return static_cast<std::uint16_t>((static_cast<std::uint8_t>(payload[0]) << 8) |
                                    static_cast<std::uint8_t>(payload[1]));
}

/// What is wrong with `payload` as a close frame's payload, or nothing when it is valid. The length limit of
/// every control frame (125 bytes) is checked with the frame header, not here.
inline std::optional<error> close_payload_error(std::string_view payload) noexcept {
  if (payload.empty()) return std::nullopt;
  if (payload.size() == 1) return error::close_payload_too_short;
  if (!is_valid_close_code(close_code_value(payload))) return error::invalid_close_code;
  if (!is_valid_utf8(payload.substr(2))) return error::invalid_close_reason;
  return std::nullopt;
}

}  // namespace switchboard::ws::detail
