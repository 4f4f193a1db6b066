// Fuzz target for http::parse_http_date: whatever parses must format back to an IMF-fixdate that parses to the
// same instant, and an input already in IMF-fixdate form must be reproduced byte for byte.
#include <switchboard/http/date.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  namespace http = switchboard::http;
  using namespace std::chrono;
  const std::string_view text(reinterpret_cast<const char*>(bytes), size);
  // A fixed "now" keeps the rfc850 century rule deterministic.
  const sys_seconds now = sys_days{year{2024} / 5 / 1};
  const auto parsed = http::parse_http_date(text, now);
  if (!parsed) return 0;
  http::http_date_buffer buffer;
  const std::string_view formatted = http::format_http_date(*parsed, buffer);
  // 23:59:60 is read as the next midnight, so only a date without a leap second formats back to itself.
  const bool leap_second = text.find("23:59:60") != std::string_view::npos;
  if (text.size() == http::http_date_length && text[3] == ',' && !leap_second && formatted != text) std::abort();
  if (http::parse_http_date(formatted, now) != parsed) std::abort();
  return 0;
}
