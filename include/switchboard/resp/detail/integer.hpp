// switchboard/resp/detail/integer.hpp
//
// The one integer grammar of the RESP codecs: Redis's `string2ll` (util.c), which both the server (for `*<count>`
// and `$<length>`) and hiredis (for replies) use. It is stricter than `std::from_chars`: no '+' sign, no leading
// zeros ("007", "-0"), no spaces, and the value must fit in a signed 64-bit integer.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

namespace switchboard::resp::detail {

/// Parses `text` as Redis's `string2ll` does; nullopt when it is not exactly such an integer.
constexpr std::optional<std::int64_t> parse_integer(std::string_view text) noexcept {
  if (text == "0") return 0;
  std::size_t i = 0;
  const bool negative = !text.empty() && text[0] == '-';
  if (negative) ++i;
  // The first digit is 1-9: "0" alone was handled above, so a leading zero is never part of a valid integer.
  if (i == text.size() || text[i] < '1' || text[i] > '9') return std::nullopt;
  // Accumulate the magnitude unsigned, so that INT64_MIN (whose magnitude is INT64_MAX + 1) is representable.
  constexpr std::uint64_t max_magnitude = std::uint64_t{std::numeric_limits<std::int64_t>::max()} + 1;
  std::uint64_t magnitude = 0;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (magnitude > (max_magnitude - digit) / 10) return std::nullopt;
    magnitude = magnitude * 10 + digit;
  }
  if (negative) return magnitude == max_magnitude ? std::numeric_limits<std::int64_t>::min()
                                                  : -static_cast<std::int64_t>(magnitude);
  if (magnitude == max_magnitude) return std::nullopt;
  return static_cast<std::int64_t>(magnitude);
}

}  // namespace switchboard::resp::detail
