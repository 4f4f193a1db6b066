// libFuzzer target: the chunked transfer-coding decoder alone. Checks that any split gives the same decoded bytes
// and error, and that the decoded size never exceeds the body limit.
#include <switchboard/http/chunked_decoder.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

std::string decode(std::string_view input, std::size_t step, std::error_code& ec, bool& done) {
  switchboard::http::chunked_decoder d(switchboard::http::chunked_limits{.max_chunk_line = 256,
                                                                          .max_trailer_bytes = 1024,
                                                                          .max_trailer_fields = 16,
                                                                          .max_body = 8192});
  std::string out, buffer;
  std::size_t fed = 0;
  for (;;) {
    const std::size_t n = step == 0 ? input.size() : std::min(step, input.size() - fed);
    buffer.append(input.substr(fed, n));
    fed += n;
    for (;;) {
      std::string_view piece;
      const std::size_t consumed = d.decode(buffer, piece, ec);
      if (ec) return out;
      out.append(piece);
      buffer.erase(0, consumed);
      if (d.done() || consumed == 0) break;
    }
    done = d.done();
    if (done || fed == input.size()) return out;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::error_code ec_whole, ec_split;
  bool done_whole = false, done_split = false;
  const std::string whole = decode(input, 0, ec_whole, done_whole);
  const std::string split = decode(input, 1 + (size > 0 ? data[size - 1] % 7 : 0), ec_split, done_split);
  if (whole != split || ec_whole != ec_split || done_whole != done_split) std::abort();
  if (whole.size() > 8192) std::abort();
  return 0;
}
