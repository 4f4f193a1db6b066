// libFuzzer target: the incremental UTF-8 validator against a simple byte-at-a-time reference, whole and fed in
// pieces whose sizes come from the first input byte; all must agree.
#include <switchboard/core/utf8.hpp>

#include "../support/utf8_reference.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using switchboard::utf8_validator;
  if (size == 0) return 0;
  const std::size_t piece = std::size_t{data[0]} % 32 + 1;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  const bool expected = switchboard::test::reference_utf8_valid(text);
  if (switchboard::is_valid_utf8(text) != expected) __builtin_trap();

  utf8_validator v;
  bool ok = true;
  for (std::size_t at = 0; at < text.size() && ok; at += piece) ok = v.feed(text.substr(at, piece));
  if ((ok && v.complete()) != expected) __builtin_trap();
  // Once a piece is refused, the text is invalid whatever follows: no valid text has that prefix.
  if (!ok && expected) __builtin_trap();
  return 0;
}
