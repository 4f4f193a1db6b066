// libFuzzer target: the HTTP response parser (as the client uses it), whole versus byte-by-byte.
#include <switchboard/http/parser.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

std::string parse(std::string_view input, std::size_t step, bool head, std::error_code& ec) {
  switchboard::http::response_parser p(switchboard::http::parser_limits{.max_header_bytes = 2048, .max_fields = 32,
                                                                        .max_body = 4096});
  if (head) p.expect_head_response();
  std::string out, buffer;
  std::size_t fed = 0;
  for (;;) {
    const std::size_t n = step == 0 ? input.size() : std::min(step, input.size() - fed);
    buffer.append(input.substr(fed, n));
    fed += n;
    for (;;) {
      const std::size_t consumed = p.put(buffer, ec);
      if (ec) return out;
      out.append(p.body_piece());
      buffer.erase(0, consumed);
      if (p.done()) {
        out += "|" + std::to_string(p.status_code()) + "|";
        p.reset();
        if (head) p.expect_head_response();
        continue;
      }
      if (consumed == 0) break;
    }
    if (fed == input.size()) {
      p.put_eof(ec);
      if (!ec && p.done()) out += "|eof|";
      return out;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool head = (data[0] & 1) != 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::error_code ec_whole, ec_split;
  const std::string whole = parse(input, 0, head, ec_whole);
  const std::string split = parse(input, 1 + data[0] % 13, head, ec_split);
  if (whole != split || ec_whole != ec_split) std::abort();
  return 0;
}
