// An independent oracle for glob matching, shared by tests/pubsub/glob.cpp and the glob fuzz target.
#pragma once

#include <cstddef>
#include <string_view>
#include <utility>

namespace switchboard::pubsub::testing {

// An independent oracle for short inputs: Redis's recursive algorithm re-derived from its description (util.c),
// reading the byte past the end of the pattern as the NUL that ends Redis's strings, and without the early exit or
// the nesting limit (so it is exponential, and only used on short inputs).
inline bool reference_match(std::string_view pat, std::string_view str) {
  const auto at = [&](std::size_t i) { return i < pat.size() ? pat[i] : '\0'; };
  std::size_t pi = 0;
  std::size_t si = 0;
  while (pi < pat.size() && si < str.size()) {
    switch (pat[pi]) {
      case '*':
        while (at(pi + 1) == '*') ++pi;
        if (pi + 1 == pat.size()) return true;
        for (std::size_t k = si; k < str.size(); ++k) {
          if (reference_match(pat.substr(pi + 1), str.substr(k))) return true;
        }
        return false;
      case '?': ++si; break;
      case '[': {
        ++pi;
        const bool negated = at(pi) == '^';
        if (negated) ++pi;
        bool match = false;
        for (;;) {
          if (at(pi) == '\\' && pat.size() - pi >= 2) {
            ++pi;
            match = match || pat[pi] == str[si];
          } else if (at(pi) == ']') {
            break;
          } else if (pi == pat.size()) {
            --pi;
            break;
          } else if (pat.size() - pi >= 3 && pat[pi + 1] == '-') {
            int low = static_cast<signed char>(pat[pi]);
            int high = static_cast<signed char>(pat[pi + 2]);
            if (low > high) std::swap(low, high);
            const int c = static_cast<signed char>(str[si]);
            match = match || (c >= low && c <= high);
            pi += 2;
          } else {
            match = match || pat[pi] == str[si];
          }
          ++pi;
        }
        if (match == negated) return false;
        ++si;
        break;
      }
      case '\\':
        if (pat.size() - pi >= 2) ++pi;
        [[fallthrough]];
      default:
        if (pat[pi] != str[si]) return false;
        ++si;
        break;
    }
    ++pi;
    if (si == str.size()) {
      while (at(pi) == '*') ++pi;
      break;
    }
  }
  return pi == pat.size() && si == str.size();
}

}  // namespace switchboard::pubsub::testing
