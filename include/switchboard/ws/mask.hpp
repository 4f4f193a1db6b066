// switchboard/ws/mask.hpp
//
// Payload masking (RFC 6455 §5.3): byte i of the payload is XORed with byte (i mod 4) of the frame's masking key.
// Masking and unmasking are the same operation. Clients mask every frame so that a hostile page cannot make a
// browser emit bytes that a transparent proxy would misread as HTTP (cache poisoning, §10.3).
//
// Every connection's every client frame goes through here, so it works a word at a time: the 4-byte key repeated
// to 8 bytes is XORed into two 64-bit words per step (16 bytes), loaded and stored with memcpy, which compilers
// turn into unaligned loads (and usually SIMD); one more word and a byte loop finish the tail. It is correct for any alignment
// and length, and for a payload masked in several pieces, because the key is rotated to the piece's offset.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace switchboard::ws {

/// A masking key as its 4 bytes appear on the wire (§5.3).
using mask_key = std::array<std::uint8_t, 4>;

/// XORs `data` with `key` in place. `offset` is the position of `data[0]` within the frame's payload, so that a
/// payload processed in pieces (as it arrives) gives the same bytes as a payload processed whole: call it with
/// offset 0 for the first piece, then with the number of payload bytes already processed.
inline void apply_mask(std::span<char> data, mask_key key, std::uint64_t offset = 0) noexcept {
  // The key as it lines up with data[0], repeated to 8 bytes; 8 is a multiple of 4, so one pattern serves
  // every 8-byte step.
  std::array<unsigned char, 8> pattern;
  for (std::size_t i = 0; i < pattern.size(); ++i) pattern[i] = key[(offset + i) & 3];
  std::uint64_t word;
  std::memcpy(&word, pattern.data(), sizeof word);

  char* p = data.data();
  std::size_t n = data.size();
  for (; n >= 16; p += 16, n -= 16) {
    std::uint64_t a, b;
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + 8, 8);
    a ^= word;
    b ^= word;
    std::memcpy(p, &a, 8);
    std::memcpy(p + 8, &b, 8);
  }
  if (n >= 8) {
    std::uint64_t a;
    std::memcpy(&a, p, 8);
    a ^= word;
    std::memcpy(p, &a, 8);
    p += 8;
    n -= 8;
  }
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<char>(p[i] ^ static_cast<char>(pattern[i]));
}

}  // namespace switchboard::ws
