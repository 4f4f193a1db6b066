// switchboard/pubsub/glob.hpp
//
// Glob patterns as Redis matches them for PSUBSCRIBE (and KEYS, SCAN MATCH): the same answers, byte for byte, as
// `stringmatchlen` in Redis 7's util.c, without its worst case.
//
// The language, with Redis's corner cases (each one checked against a real redis-server in tests/pubsub/glob.cpp):
//  - `*` matches any run of bytes, the empty run included; consecutive stars act as one;
//  - `?` matches one byte;
//  - `[abc]`, `[a-z]` (a reversed range `[z-a]` is the same range), `[^...]` (negated), `[\]]` (escaped byte);
//    `[]` matches nothing and `[^]` anything; a range of the form `x-y` is read before a closing `]`, so `[a-]`
//    is the range a..`]`; a `[` never closed runs to the end of the pattern as a class (`[^` alone matches any
//    byte, `[` alone nothing). Range ends compare as *signed* chars, as Redis does on x86-64 and the other
//    platforms where char is signed, so `[a-\xff]` is the range -1..97 and does not match `b` or `\x80`;
//  - `\x` matches the byte x; a `\` at the very end matches a `\`;
//  - every other byte matches itself (case-sensitive, binary-safe).
// Two rules come from the shape of Redis's loop rather than from the language:
//  - an empty subject matches only the empty pattern (not even `*`): Redis's loop never starts on an empty
//    string. So PUBLISH "" reaches no PSUBSCRIBE pattern except "";
//  - since the fix for CVE-2024-31228 (unbounded recursion: Redis 6.2.16, 7.2.6, 7.4.1, and distributions'
//    backports such as Debian 12's 7.0.15), Redis stops recursing past 1000 nested stars and answers "no match";
//    a match needs one level per star that is followed by more pattern, so a pattern with more than 1000 such
//    stars matches nothing. We give the same answer, computed directly. (A Redis without that fix recurses on,
//    and would match such a pattern, or overflow its stack on a long enough one.)
//
// Cost. Redis tries each star at each position recursively; CVE-2022-36021 was a pattern that made this take
// exponential time (fixed in 7.0.9 by giving up early). Here each pattern element matches exactly one byte or is a
// star, so it suffices to remember only the latest star and, on a mismatch, let it absorb one more byte (the
// classic wildcard-matching argument: moving an earlier star could only leave the later part of the pattern fewer
// bytes to match). The match therefore takes at most (subject length + 1) x (pattern length + 1) byte steps,
// whatever the input; no recursion, no allocation.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string_view>

namespace switchboard::pubsub {

namespace detail {

/// One element of a glob pattern: `*` (a run of stars), `?`, a `[...]` class, or one literal (possibly escaped)
/// byte. `end` is the index just past it in the pattern.
struct glob_token {
  enum kind_t { star, any, byte_class, literal } kind;
  std::size_t end;
};

/// Reads the class that starts at pattern[begin] == '[' the way Redis does, returning where it ends and whether
/// `c` belongs to it. Redis reads the class afresh for each byte it tests, and so do we: it keeps matching free
/// of allocation, and a class costs its length, which the bound above already counts.
struct class_scan {
  std::size_t end;
  bool matches;
};

constexpr class_scan scan_class(std::string_view pattern, std::size_t begin, char c) noexcept {
  const std::size_t n = pattern.size();
  std::size_t i = begin + 1;
  const bool negated = i < n && pattern[i] == '^';
  if (negated) ++i;
  bool found = false;
  for (;;) {
    if (i + 1 < n && pattern[i] == '\\') {  // an escaped byte
      found = found || pattern[i + 1] == c;
      i += 2;
    } else if (i < n && pattern[i] == ']') {
      ++i;
      break;
    } else if (i == n) {  // never closed: the class runs to the end of the pattern
      break;
    } else if (i + 2 < n && pattern[i + 1] == '-') {
      // Redis compares plain chars, which are signed on x86-64: [a-\xff] is -1..97.
      signed char low = static_cast<signed char>(pattern[i]);
      signed char high = static_cast<signed char>(pattern[i + 2]);
      if (low > high) {
        const signed char t = low;
        low = high;
        high = t;
      }
      const auto x = static_cast<signed char>(c);
      found = found || (x >= low && x <= high);
      i += 3;
    } else {
      found = found || pattern[i] == c;
      ++i;
    }
  }
  return {i, found != negated};
}

/// The element that starts at pattern[i] (i < pattern.size()).
constexpr glob_token next_token(std::string_view pattern, std::size_t i) noexcept {
  switch (pattern[i]) {
    case '*':
      while (i < pattern.size() && pattern[i] == '*') ++i;
      return {glob_token::star, i};
    case '?': return {glob_token::any, i + 1};
    case '[': return {glob_token::byte_class, scan_class(pattern, i, '\0').end};
    case '\\': return {glob_token::literal, i + 1 < pattern.size() ? i + 2 : i + 1};
    default: return {glob_token::literal, i + 1};
  }
}

/// Whether the non-star element at pattern[i], of kind `t`, matches the byte `c`.
constexpr bool token_matches(std::string_view pattern, std::size_t i, glob_token t, char c) noexcept {
  switch (t.kind) {
    case glob_token::any: return true;
    case glob_token::byte_class: return scan_class(pattern, i, c).matches;
    default: return pattern[t.end - 1] == c;  // the literal is the last byte of its element (after any '\')
  }
}

/// Redis's recursion limit (util.c, `nesting > 1000`, added by the fix for CVE-2024-31228).
inline constexpr std::size_t max_nested_stars = 1000;

/// True when `pattern` has more than `max_nested_stars` stars followed by more pattern: Redis cannot match it.
constexpr bool exceeds_star_nesting(std::string_view pattern) noexcept {
  // Each such star needs two bytes (itself and what follows), so short patterns need no count.
  if (pattern.size() <= 2 * max_nested_stars) return false;
  std::size_t nested = 0;
  for (std::size_t i = 0; i < pattern.size();) {
    const glob_token t = next_token(pattern, i);
    if (t.kind == glob_token::star && t.end < pattern.size()) ++nested;
    i = t.end;
  }
  return nested > max_nested_stars;
}

}  // namespace detail

/// True when `subject` matches the Redis glob `pattern` (see the top of this header for the language and the
/// corner cases). Never allocates; at most (|subject| + 1) x (|pattern| + 1) steps.
constexpr bool glob_match(std::string_view pattern, std::string_view subject) noexcept {
  using detail::glob_token;
  if (subject.empty()) return pattern.empty();
  if (detail::exceeds_star_nesting(pattern)) return false;
  constexpr std::size_t none = std::string_view::npos;
  std::size_t p = 0;               // next pattern element
  std::size_t s = 0;               // next subject byte
  std::size_t star_resume = none;  // pattern index just after the latest star
  std::size_t star_subject = 0;    // subject index where the bytes absorbed by that star end
  while (s < subject.size()) {
    if (p < pattern.size()) {
      const glob_token t = detail::next_token(pattern, p);
      if (t.kind == glob_token::star) {
        star_resume = p = t.end;
        star_subject = s;
        continue;
      }
      if (p == star_resume && t.kind == glob_token::literal) {
        // Right after the star, a literal byte can only match where the subject has it: jump there (memchr)
        // instead of letting the star absorb the bytes in between one mismatch at a time.
        star_subject = s = subject.find(pattern[t.end - 1], s);
        if (s == none) return false;
      }
      if (detail::token_matches(pattern, p, t, subject[s])) {
        p = t.end;
        ++s;
        continue;
      }
    }
    if (star_resume == none) return false;
    // Mismatch (or pattern exhausted): the latest star absorbs one more byte and the rest starts over after it.
    p = star_resume;
    s = ++star_subject;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;  // trailing stars match the empty rest
  return p == pattern.size();
}

/// The bytes of `pattern` before its first `*`, `?`, `[` or `\`. Every subject the pattern matches starts with
/// them, which lets an index skip the pattern for subjects that do not (see pattern_index.hpp).
constexpr std::string_view glob_literal_prefix(std::string_view pattern) noexcept {
  return pattern.substr(0, std::min(pattern.find_first_of("*?[\\"), pattern.size()));
}

}  // namespace switchboard::pubsub
