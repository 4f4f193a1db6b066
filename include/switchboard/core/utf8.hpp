// switchboard/core/utf8.hpp
//
// An incremental UTF-8 validator (RFC 3629 §4), shared by every text format that must be UTF-8 (WebSocket text
// messages, Server-Sent Events, Prometheus label values). A WebSocket text message must be valid UTF-8 (RFC 6455 §8.1),
// but it arrives in frames and reads of any size, so a code point may be split across calls: the validator keeps
// what it still expects between calls, and rejects a message at the first byte that cannot be part of valid
// UTF-8 (Autobahn's "fail fast" cases 6.4.x), not only at its end.
//
// The grammar (RFC 3629 §4), which excludes overlong forms, the UTF-16 surrogates U+D800-U+DFFF and everything
// above U+10FFFF by restricting the byte after the lead byte:
//
//   UTF8-1 = %x00-7F
//   UTF8-2 = %xC2-DF UTF8-tail
//   UTF8-3 = %xE0 %xA0-BF UTF8-tail / %xE1-EC 2( UTF8-tail ) / %xED %x80-9F UTF8-tail / %xEE-EF 2( UTF8-tail )
//   UTF8-4 = %xF0 %x90-BF 2( UTF8-tail ) / %xF1-F3 3( UTF8-tail ) / %xF4 %x80-8F 2( UTF8-tail )
//   UTF8-tail = %x80-BF
//
// How: a deterministic automaton over those rules, with nine states (between code points, 1/2/3 continuation
// bytes to go, the four restricted second bytes after E0, ED, F0 and F4, and "invalid", which absorbs). The state
// is all that is carried between calls, so a code point may be split anywhere.
//
// Speed: the automaton is "shift-based": each state is a bit offset, and one 64-bit table word per byte value
// holds, at each state's offset, the 6-bit offset of the next state; a step is a load, a shift and a mask, with
// no branch. Text is mostly ASCII, so between code points the validator first tests 16 bytes at a time (two
// 64-bit words against 0x80 in every byte) and skips blocks of pure ASCII.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace switchboard {

namespace detail {

// The automaton's states, as bit offsets into a transition word (multiples of 6, below 64).
inline constexpr std::uint8_t utf8_accept = 0;   // between code points
inline constexpr std::uint8_t utf8_tail1 = 6;    // one continuation byte (80-BF) to go
inline constexpr std::uint8_t utf8_tail2 = 12;   // two to go
inline constexpr std::uint8_t utf8_tail3 = 18;   // three to go
inline constexpr std::uint8_t utf8_e0 = 24;      // after E0: A0-BF (no overlong 3-byte form), then one more
inline constexpr std::uint8_t utf8_ed = 30;      // after ED: 80-9F (no surrogates), then one more
inline constexpr std::uint8_t utf8_f0 = 36;      // after F0: 90-BF (no overlong 4-byte form), then two more
inline constexpr std::uint8_t utf8_f4 = 42;      // after F4: 80-8F (nothing above U+10FFFF), then two more
inline constexpr std::uint8_t utf8_reject = 48;  // invalid; stays invalid
inline constexpr std::uint8_t utf8_states[] = {utf8_accept, utf8_tail1, utf8_tail2, utf8_tail3, utf8_e0,
                                               utf8_ed,     utf8_f0,    utf8_f4,    utf8_reject};

// The state after byte `b` in state `state`: the grammar in the file comment, one case per state.
constexpr std::uint8_t utf8_next(std::uint8_t state, unsigned b) noexcept {
  const auto within = [b](unsigned lo, unsigned hi) { return b >= lo && b <= hi; };
  switch (state) {
    case utf8_accept:
      if (b < 0x80) return utf8_accept;
      if (within(0xC2, 0xDF)) return utf8_tail1;
      if (b == 0xE0) return utf8_e0;
      if (b == 0xED) return utf8_ed;
      if (within(0xE1, 0xEF)) return utf8_tail2;
      if (b == 0xF0) return utf8_f0;
      if (within(0xF1, 0xF3)) return utf8_tail3;
      if (b == 0xF4) return utf8_f4;
      return utf8_reject;  // 80-BF (no lead), C0-C1 (overlong), F5-FF (beyond U+10FFFF)
    case utf8_tail1: return within(0x80, 0xBF) ? utf8_accept : utf8_reject;
    case utf8_tail2: return within(0x80, 0xBF) ? utf8_tail1 : utf8_reject;
    case utf8_tail3: return within(0x80, 0xBF) ? utf8_tail2 : utf8_reject;
    case utf8_e0: return within(0xA0, 0xBF) ? utf8_tail1 : utf8_reject;
    case utf8_ed: return within(0x80, 0x9F) ? utf8_tail1 : utf8_reject;
    case utf8_f0: return within(0x90, 0xBF) ? utf8_tail2 : utf8_reject;
    case utf8_f4: return within(0x80, 0x8F) ? utf8_tail2 : utf8_reject;
    default: return utf8_reject;
  }
}

// table[b] holds utf8_next(s, b) in the 6 bits at offset s, for every state s.
constexpr std::array<std::uint64_t, 256> make_utf8_table() noexcept {
  std::array<std::uint64_t, 256> table{};
  for (unsigned b = 0; b < 256; ++b) {
    for (std::uint8_t s : utf8_states) table[b] |= std::uint64_t{utf8_next(s, b)} << s;
  }
  return table;
}

inline constexpr std::array<std::uint64_t, 256> utf8_table = make_utf8_table();

}  // namespace detail

/// Validates UTF-8 fed in pieces of any size. Not thread-safe; one per text message being received (reset it
/// between messages). Usage:
///
///     utf8_validator v;
///     for (auto piece : pieces) if (!v.feed(piece)) return fail(1007);
///     if (!v.complete()) return fail(1007);  // the text ended inside a code point
class utf8_validator {
 public:
  /// Validates the next bytes of the text. Returns false if they contain a byte that cannot continue valid
  /// UTF-8; the validator then stays failed (every later call returns false) until `reset`. An incomplete code
  /// point at the end of `bytes` is not an error: its remaining bytes are expected in the next call.
  bool feed(std::string_view bytes) noexcept {
    if (failed()) return false;
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const auto* const end = p + bytes.size();
    std::uint64_t state = state_;
    constexpr std::uint64_t high_bits = 0x8080808080808080ull;
    while (end - p >= 16 && state != detail::utf8_reject) {
      if (state == detail::utf8_accept) {
        std::uint64_t a, b;
        std::memcpy(&a, p, 8);
        std::memcpy(&b, p + 8, 8);
        if (((a | b) & high_bits) == 0) {
          p += 16;
          continue;
        }
      }
      for (int i = 0; i < 16; ++i) state = step(state, p[i]);
      p += 16;
    }
    for (; p < end; ++p) state = step(state, *p);
    state_ = static_cast<std::uint8_t>(state);
    return state != detail::utf8_reject;
  }

  /// True when everything fed so far is valid and ends on a code point boundary, i.e. the text may end here.
  bool complete() const noexcept { return state_ == detail::utf8_accept; }

  /// True after `feed` found an invalid byte.
  bool failed() const noexcept { return state_ == detail::utf8_reject; }

  /// Forgets everything fed so far, for the next text.
  void reset() noexcept { state_ = detail::utf8_accept; }

 private:
  static std::uint64_t step(std::uint64_t state, unsigned char byte) noexcept {
    return (detail::utf8_table[byte] >> state) & 63;
  }

  std::uint8_t state_ = detail::utf8_accept;
};

/// True when `text` as a whole is valid UTF-8.
inline bool is_valid_utf8(std::string_view text) noexcept {
  utf8_validator v;
  return v.feed(text) && v.complete();
}

}  // namespace switchboard
