// Fuzzes glob matching. The first byte says where the rest splits into pattern and subject. Every input is
// matched (any length: the matcher must stay fast and in bounds); short ones are also compared with the
// independent recursive oracle of the unit tests, and a pattern index holding the pattern must find it exactly
// when glob_match says it matches.
#include <switchboard/pubsub/glob.hpp>
#include <switchboard/pubsub/pattern_index.hpp>

#include "../pubsub/glob_reference.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::size_t cut = std::min<std::size_t>(data[0], rest.size());
  const std::string_view pattern = rest.substr(0, cut);
  const std::string_view subject = rest.substr(cut);

  const bool matched = switchboard::pubsub::glob_match(pattern, subject);
  if (matched && !subject.starts_with(switchboard::pubsub::glob_literal_prefix(pattern))) std::abort();
  // The oracle is exponential in the number of stars: keep it to short inputs.
  if (pattern.size() <= 12 && subject.size() <= 12 &&
      matched != switchboard::pubsub::testing::reference_match(pattern, subject)) {
    std::abort();
  }
  switchboard::pubsub::pattern_index<int> index;
  index.try_emplace(pattern, 1);
  index.try_emplace("*", 2);
  std::size_t found = 0;
  index.for_each_match(subject, [&](std::string_view p, int& v) {
    if (p == pattern && v == 1) ++found;
  });
  if (found != (matched ? 1u : 0u)) std::abort();
  return 0;
}
