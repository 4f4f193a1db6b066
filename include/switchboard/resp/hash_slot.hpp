// switchboard/resp/hash_slot.hpp
//
// Redis Cluster key distribution: which of the 16384 hash slots a key (or a sharded pub/sub channel) belongs to.
// Per the Redis Cluster specification ("Keys distribution model" and "Hash tags"): HASH_SLOT = CRC16(key) mod
// 16384, with CRC16 the XMODEM variant (polynomial 0x1021, initial value 0, no reflection, no final XOR; its
// check value for "123456789" is 0x31C3), and when the key holds a non-empty hash tag `{...}` (the first `{`, then
// the first `}` after it, with at least one byte between), only the tag is hashed, so that related keys can be
// kept in one slot.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace switchboard::resp {

/// The number of hash slots of a Redis Cluster.
inline constexpr std::uint16_t cluster_slots = 16384;

namespace detail {

// The CRC16-XMODEM table, one entry per byte value (the specification's reference code uses the same table).
constexpr std::array<std::uint16_t, 256> make_crc16_table() noexcept {
  std::array<std::uint16_t, 256> table{};
  for (std::uint32_t byte = 0; byte < 256; ++byte) {
    std::uint16_t crc = static_cast<std::uint16_t>(byte << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = static_cast<std::uint16_t>((crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    table[byte] = crc;
  }
  return table;
}

inline constexpr std::array<std::uint16_t, 256> crc16_table = make_crc16_table();

}  // namespace detail

/// CRC16-XMODEM of `bytes`.
constexpr std::uint16_t crc16(std::string_view bytes) noexcept {
  std::uint16_t crc = 0;
  for (const char c : bytes) {
    crc = static_cast<std::uint16_t>((crc << 8) ^
                                     detail::crc16_table[((crc >> 8) ^ static_cast<unsigned char>(c)) & 0xff]);
  }
  return crc;
}

/// The part of `key` that is hashed: its hash tag if it has a non-empty one, else the whole key.
constexpr std::string_view hash_tag(std::string_view key) noexcept {
  const std::size_t open = key.find('{');
  if (open == std::string_view::npos) return key;
  const std::size_t close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return key;  // no `}`, or `{}`: the whole key
  return key.substr(open + 1, close - open - 1);
}

/// The hash slot of `key` (0..16383).
constexpr std::uint16_t hash_slot(std::string_view key) noexcept {
  return static_cast<std::uint16_t>(crc16(hash_tag(key)) & (cluster_slots - 1));
}

static_assert(crc16("123456789") == 0x31C3, "CRC16-XMODEM check value");

}  // namespace switchboard::resp
