// switchboard/resp/detail/inline_args.hpp
//
// Splits an inline command line ("SET key \"two words\"", as typed into telnet) into arguments by the rules of
// Redis's `sdssplitargs` (sds.c), so that a line means here what it means to Redis:
//  - arguments are separated by runs of C-locale white space (space, \t, \n, \v, \f, \r); an unquoted argument
//    ends only at space, \t, \n or \r, so \v and \f inside one are kept;
//  - "double quotes" take the escapes \xHH (two hex digits), \n, \r, \t, \b, \a, and \<c> for any other c;
//  - 'single quotes' take only the escape \';
//  - a quote may start in the middle of an argument (ab"c d" is the one argument `abc d`);
//  - a closing quote must be followed by white space or the end of the line, and an unterminated quote is an
//    error ("unbalanced quotes").
// One difference, on purpose: Redis works on C strings, so a NUL byte ends the line for it; here the line is
// binary-safe and a NUL is an ordinary byte.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::resp::detail {

/// The position and length of one argument inside the storage string that `split_inline_args` fills.
struct arg_span {
  std::size_t offset = 0;
  std::size_t length = 0;
};

/// isspace() in the C locale.
constexpr bool is_c_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Splits `line` (without its line ending), appending each argument's bytes to `storage` and its place there to
/// `args`. Returns false on unbalanced quotes; `storage` and `args` then hold a partial result to be discarded.
inline bool split_inline_args(std::string_view line, std::string& storage, std::vector<arg_span>& args) {
  const std::size_t n = line.size();
  std::size_t i = 0;
  for (;;) {
    while (i < n && is_c_space(line[i])) ++i;
    if (i == n) return true;
    const std::size_t start = storage.size();
    bool in_double = false;
    bool in_single = false;
    for (bool done = false; !done;) {
      if (in_double) {
        if (i == n) return false;  // unterminated "
        const char c = line[i];
        if (c == '\\' && i + 3 < n && line[i + 1] == 'x' && hex_value(line[i + 2]) >= 0 &&
            hex_value(line[i + 3]) >= 0) {
          storage.push_back(static_cast<char>(hex_value(line[i + 2]) * 16 + hex_value(line[i + 3])));
          i += 3;
        } else if (c == '\\' && i + 1 < n) {
          ++i;
          switch (line[i]) {
            case 'n': storage.push_back('\n'); break;
            case 'r': storage.push_back('\r'); break;
            case 't': storage.push_back('\t'); break;
            case 'b': storage.push_back('\b'); break;
            case 'a': storage.push_back('\a'); break;
            default: storage.push_back(line[i]); break;
          }
        } else if (c == '"') {
          if (i + 1 < n && !is_c_space(line[i + 1])) return false;  // "a"b
          done = true;
        } else {
          storage.push_back(c);
        }
      } else if (in_single) {
        if (i == n) return false;  // unterminated '
        const char c = line[i];
        if (c == '\\' && i + 1 < n && line[i + 1] == '\'') {
          ++i;
          storage.push_back('\'');
        } else if (c == '\'') {
          if (i + 1 < n && !is_c_space(line[i + 1])) return false;
          done = true;
        } else {
          storage.push_back(c);
        }
      } else if (i == n) {
        done = true;
      } else {
        switch (line[i]) {
          case ' ':
          case '\n':
          case '\r':
          case '\t': done = true; break;
          case '"': in_double = true; break;
          case '\'': in_single = true; break;
          default: storage.push_back(line[i]); break;
        }
      }
      if (i < n) ++i;
    }
    args.push_back({start, storage.size() - start});
  }
}

}  // namespace switchboard::resp::detail
