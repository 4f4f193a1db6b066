// switchboard/core/detail/utf8.hpp
//
// Locating and replacing ill-formed UTF-8, for Server-Sent Events (WHATWG HTML §9.2.5, "event streams are always
// decoded as UTF-8"). Plain validation is `switchboard::is_valid_utf8` in core/utf8.hpp.
//
// Well-formed UTF-8 is the grammar of RFC 3629 §4: no overlong forms, no UTF-16 surrogates, nothing above
// U+10FFFF. The replacing decoder is the one of the WHATWG Encoding Standard (§4.1 "UTF-8 decode", error mode
// "replacement") that browsers apply to an event stream: each maximal ill-formed subsequence becomes one U+FFFD,
// so that our SSE parser delivers exactly the text a browser's EventSource would.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace switchboard::detail {

/// The sequence that starts at `p`: its length in bytes, and whether it is a well-formed code point. When it is
/// not, `length` is the length of the maximal ill-formed subpart (at least 1) that the WHATWG decoder turns into
/// one U+FFFD before it goes on with the next byte.
struct utf8_step {
  std::size_t length;
  bool valid;
};

/// Decodes one sequence of `p[0 .. available)`. Precondition: `available >= 1`.
constexpr utf8_step next_utf8_sequence(const unsigned char* p, std::size_t available) noexcept {
  const unsigned lead = p[0];
  if (lead < 0x80) return {1, true};
  // How many continuation bytes the lead byte announces, and the range allowed for the first one (later ones are
  // always 0x80-0xBF). The narrowed ranges exclude overlong forms (E0, F0), surrogates (ED) and > U+10FFFF (F4).
  std::size_t tails = 0;
  unsigned lo = 0x80;
  unsigned hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    tails = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    tails = 2;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    tails = 3;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return {1, false};  // a continuation byte, an overlong lead (C0, C1) or F5-FF: never starts a sequence
  }
  for (std::size_t i = 1; i <= tails; ++i) {
    if (i >= available || p[i] < lo || p[i] > hi) return {i, false};  // truncated, or a byte that cannot follow
    lo = 0x80;
    hi = 0xBF;
  }
  return {tails + 1, true};
}

/// The offset of the first byte of the first ill-formed sequence in `text`, or `text.size()` when it is all
/// well-formed. ASCII, the common case, is checked eight bytes at a time.
inline std::size_t utf8_valid_prefix(std::string_view text) noexcept {
  const auto* const begin = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  std::size_t i = 0;
  while (i < size) {
    while (size - i >= 8) {
      std::uint64_t word;
      std::memcpy(&word, begin + i, 8);
      if ((word & 0x8080808080808080ull) != 0) break;
      i += 8;
    }
    if (i == size) break;
    if (begin[i] < 0x80) {
      ++i;
      continue;
    }
    const utf8_step step = next_utf8_sequence(begin + i, size - i);
    if (!step.valid) return i;
    i += step.length;
  }
  return size;
}

/// Appends `text` to `out` as the WHATWG UTF-8 decoder would read it: well-formed sequences unchanged, each
/// maximal ill-formed subpart replaced by U+FFFD (EF BF BD).
inline void append_utf8_replacing_invalid(std::string_view text, std::string& out) {
  const auto* const begin = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t good = utf8_valid_prefix(text.substr(i));
    out.append(text.data() + i, good);
    i += good;
    if (i == text.size()) break;
    out.append("\xEF\xBF\xBD");
    i += next_utf8_sequence(begin + i, text.size() - i).length;
  }
}

}  // namespace switchboard::detail
