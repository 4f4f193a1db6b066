// switchboard/ws/utf8.hpp
//
// An incremental UTF-8 validator (RFC 3629 §4). A WebSocket text message must be valid UTF-8 (RFC 6455 §8.1),
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
// Speed: text is mostly ASCII, so while no sequence is open the validator checks 16 bytes per step (two 64-bit
// words tested against 0x80 in every byte); a multi-byte sequence that lies wholly inside the input is checked
// in one go, and only a sequence cut by the end of the input goes through the carried state.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace switchboard::ws {

namespace detail {

/// What a lead byte announces: how many continuation bytes follow, and the range allowed for the first of them
/// (the later ones are always 0x80-0xBF). `tails == invalid_lead` marks bytes that never start a sequence
/// (continuation bytes 0x80-0xBF, the overlong leads 0xC0-0xC1, and 0xF5-0xFF).
struct utf8_lead {
  std::uint8_t tails;
  std::uint8_t lo;
  std::uint8_t hi;
};

inline constexpr std::uint8_t invalid_lead = 0xFF;

constexpr utf8_lead utf8_lead_of(unsigned b) noexcept {
  if (b < 0x80) return {0, 0x80, 0xBF};
  if (b >= 0xC2 && b <= 0xDF) return {1, 0x80, 0xBF};
  if (b == 0xE0) return {2, 0xA0, 0xBF};  // no overlong 3-byte forms (below U+0800)
  if (b == 0xED) return {2, 0x80, 0x9F};  // no surrogates U+D800-U+DFFF
  if (b >= 0xE1 && b <= 0xEF) return {2, 0x80, 0xBF};
  if (b == 0xF0) return {3, 0x90, 0xBF};  // no overlong 4-byte forms (below U+10000)
  if (b >= 0xF1 && b <= 0xF3) return {3, 0x80, 0xBF};
  if (b == 0xF4) return {3, 0x80, 0x8F};  // nothing above U+10FFFF
  return {invalid_lead, 0, 0};
}

constexpr std::array<utf8_lead, 256> make_utf8_leads() noexcept {
  std::array<utf8_lead, 256> table{};
  for (unsigned b = 0; b < 256; ++b) table[b] = utf8_lead_of(b);
  return table;
}

inline constexpr std::array<utf8_lead, 256> utf8_leads = make_utf8_leads();

}  // namespace detail

/// Validates UTF-8 fed in pieces of any size. Not thread-safe; one per text message being received (reset it
/// between messages). Usage:
///
///     utf8_validator v;
///     for (auto piece : pieces) if (!v.feed(piece)) return fail(1007);
///     if (!v.complete()) return fail(1007);  // the text ended inside a code point
class utf8_validator {
 public:
  /// Validates the next bytes of the text. Returns false as soon as a byte cannot continue valid UTF-8; the
  /// validator then stays failed (every later call returns false) until `reset`. An incomplete code point at the
  /// end of `bytes` is not an error: its remaining bytes are expected in the next call.
  bool feed(std::string_view bytes) noexcept {
    if (failed_) return false;
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const auto* const end = p + bytes.size();

    // Finish a sequence left open by the previous call.
    if (!continue_sequence(p, end)) return fail();

    while (p < end) {
      // ASCII fast path: 16 bytes per step while no byte has its high bit set.
      constexpr std::uint64_t high_bits = 0x8080808080808080ull;
      while (end - p >= 16) {
        std::uint64_t a, b;
        std::memcpy(&a, p, 8);
        std::memcpy(&b, p + 8, 8);
        if (((a | b) & high_bits) != 0) break;
        p += 16;
      }
      if (p == end) break;
      if (*p < 0x80) {
        ++p;
        continue;
      }

      const detail::utf8_lead lead = detail::utf8_leads[*p];
      if (lead.tails == detail::invalid_lead) return fail();
      const auto available = static_cast<std::size_t>(end - p - 1);
      if (available >= lead.tails) {
        // The whole sequence is here: check it without touching the carried state.
        if (p[1] < lead.lo || p[1] > lead.hi) return fail();
        for (std::size_t i = 2; i <= lead.tails; ++i) {
          if (p[i] < 0x80 || p[i] > 0xBF) return fail();
        }
        p += 1 + lead.tails;
        continue;
      }
      // The input ends inside this sequence: check what is here and carry the rest.
      tails_ = lead.tails;
      lo_ = lead.lo;
      hi_ = lead.hi;
      ++p;
      if (!continue_sequence(p, end)) return fail();
      break;
    }
    return true;
  }

  /// True when everything fed so far is valid and ends on a code point boundary, i.e. the text may end here.
  bool complete() const noexcept { return !failed_ && tails_ == 0; }

  /// True after `feed` found an invalid byte.
  bool failed() const noexcept { return failed_; }

  /// Forgets everything fed so far, for the next text.
  void reset() noexcept { *this = utf8_validator{}; }

 private:
  // Checks continuation bytes of the open sequence from `p` (advancing it) until the sequence is complete or
  // the input ends; false at a byte outside the allowed range.
  bool continue_sequence(const unsigned char*& p, const unsigned char* end) noexcept {
    for (; tails_ > 0 && p < end; ++p) {
      if (*p < lo_ || *p > hi_) return false;
      --tails_;
      lo_ = 0x80;
      hi_ = 0xBF;
    }
    return true;
  }

  bool fail() noexcept {
    failed_ = true;
    return false;
  }

  std::uint8_t tails_ = 0;  // continuation bytes still expected for the open sequence
  std::uint8_t lo_ = 0x80;  // smallest value allowed for the next continuation byte
  std::uint8_t hi_ = 0xBF;  // largest value allowed for the next continuation byte
  bool failed_ = false;
};

/// True when `text` as a whole is valid UTF-8.
inline bool is_valid_utf8(std::string_view text) noexcept {
  utf8_validator v;
  return v.feed(text) && v.complete();
}

}  // namespace switchboard::ws
