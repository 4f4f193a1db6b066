// switchboard/sse/detail/line_break.hpp: finding the end of a line of an event stream, for the encoder and the parser.
#pragma once

#include <cstddef>
#include <cstring>
#include <string_view>

namespace switchboard::sse::detail {

/// The position of the first CR or LF in `s` (the end of a line, WHATWG HTML §9.2.5 end-of-line), or `s.size()`.
/// Two `memchr` calls, since streams are mostly LF-terminated: the first finds the LF, the second looks for a CR
/// only before it.
inline std::size_t find_line_break(std::string_view s) noexcept {
  if (s.empty()) return 0;  // an empty view may have a null data(), which memchr must not get
  const void* lf = std::memchr(s.data(), '\n', s.size());
  const std::size_t before = lf ? static_cast<std::size_t>(static_cast<const char*>(lf) - s.data()) : s.size();
  const void* cr = std::memchr(s.data(), '\r', before);
  return cr ? static_cast<std::size_t>(static_cast<const char*>(cr) - s.data()) : before;
}

}  // namespace switchboard::sse::detail
