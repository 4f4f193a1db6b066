// Fuzzes the RESP reply parser. The first byte picks the options (defaults, or tiny limits with attributes kept);
// the rest is the byte stream from one server, fed three ways: whole, byte by byte, and in pieces whose sizes come
// from the input. All three must give the same values and the same error.
#include <switchboard/resp/reply_parser.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace {

using switchboard::resp::reply_parser;
using switchboard::resp::reply_parser_options;
using switchboard::resp::value;

void check(bool ok) {
  if (!ok) std::abort();
}

// value::operator== with NaN equal to NaN (the same bytes give the same NaN).
bool same(const value& a, const value& b);
bool same(const std::vector<value>& a, const std::vector<value>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const value& x, const value& y) { return same(x, y); });
}
bool same(const value& a, const value& b) {
  const bool numbers_equal = a.number == b.number || (std::isnan(a.number) && std::isnan(b.number));
  return a.kind == b.kind && a.text == b.text && a.integer == b.integer && numbers_equal && a.boolean == b.boolean &&
         same(a.elements, b.elements) && same(a.attributes, b.attributes);
}

struct outcome {
  std::vector<value> values;
  std::error_code error;
};

template <class Piece>
outcome feed(std::string_view input, const reply_parser_options& options, Piece piece) {
  reply_parser parser(options);
  outcome out;
  for (std::size_t i = 0, at = 0; at < input.size(); ++i) {
    std::string_view chunk = input.substr(at, std::min(piece(i), input.size() - at));
    at += chunk.size();
    while (!chunk.empty()) {
      std::error_code ec;
      const std::size_t used = parser.parse(chunk, ec);
      if (ec) {
        out.error = ec;
        return out;
      }
      check(used <= chunk.size());
      chunk.remove_prefix(used);
      if (parser.has_value()) {
        out.values.push_back(parser.take());
      } else {
        check(chunk.empty());
      }
    }
  }
  return out;
}

bool same(const outcome& a, const outcome& b) { return a.error == b.error && same(a.values, b.values); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const reply_parser_options options =
      data[0] & 1 ? reply_parser_options{.max_depth = 3, .max_aggregate_length = 4, .max_bulk_length = 8,
                                         .max_line_length = 16, .keep_attributes = true}
                  : reply_parser_options{};
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const outcome whole = feed(input, options, [&](std::size_t) { return input.size(); });
  const outcome bytewise = feed(input, options, [](std::size_t) { return std::size_t{1}; });
  const outcome pieces = feed(input, options, [&](std::size_t i) { return std::size_t{1} + data[i % size] % 7; });
  check(same(whole, bytewise));
  check(same(whole, pieces));
  return 0;
}
