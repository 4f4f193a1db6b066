// libFuzzer target: the HTTP request parser. Parses the input whole and split at a position taken from the input,
// and requires both to agree (messages and error), since any split must give the same result.
#include <switchboard/http/parser.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct digest {
  std::error_code ec;
  std::vector<std::string> parts;  // method, target, fields, body pieces concatenated per message
  bool operator==(const digest&) const = default;
};

digest parse(std::string_view input, std::size_t step) {
  switchboard::http::request_parser p(switchboard::http::parser_limits{.max_target = 512, .max_header_bytes = 2048,
                                                                       .max_fields = 32, .max_body = 4096});
  digest d;
  std::string buffer, current;
  std::size_t fed = 0;
  bool have_header = false;
  for (;;) {
    const std::size_t n = step == 0 ? input.size() : std::min(step, input.size() - fed);
    buffer.append(input.substr(fed, n));
    fed += n;
    for (;;) {
      const std::size_t consumed = p.put(buffer, d.ec);
      if (d.ec) return d;
      if (p.header_done() && !have_header) {
        have_header = true;
        current = std::string(p.method_string()) + " " + std::string(p.target());
        for (const auto& f : p.fields()) current.append("|").append(f.name).append(":").append(f.value);
        current += p.keep_alive() ? "|ka" : "|close";
      }
      current.append(p.body_piece());
      buffer.erase(0, consumed);
      if (p.done()) {
        d.parts.push_back(std::move(current));
        current.clear();
        have_header = false;
        p.reset();
        continue;
      }
      if (consumed == 0) break;
    }
    if (fed == input.size()) {
      p.put_eof(d.ec);
      return d;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const digest whole = parse(input, 0);
  const std::size_t step = size == 0 ? 1 : 1 + data[0] % 17;
  if (!(parse(input, step) == whole)) std::abort();
  if (size < 4096 && !(parse(input, 1) == whole)) std::abort();
  return 0;
}
