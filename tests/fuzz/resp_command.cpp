// Fuzzes the RESP command parser. The first byte picks the limits (Redis's defaults or tiny ones that the fuzzer
// can reach); the rest is the byte stream of one connection, fed three ways: whole, byte by byte, and in pieces
// whose sizes come from the input. All three must give the same commands and the same error. Every multibulk
// command, encoded again, must parse back to itself.
#include <switchboard/resp/command_parser.hpp>
#include <switchboard/resp/encoder.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

using switchboard::resp::command_parser;
using switchboard::resp::command_parser_options;

struct outcome {
  std::vector<std::vector<std::string>> commands;
  std::error_code error;
  std::string reply;
  bool operator==(const outcome&) const = default;
};

void check(bool ok) {
  if (!ok) std::abort();
}

// Feeds `input` in pieces of the sizes `piece(i)` returns (at least 1), as a server driver would.
template <class Piece>
outcome feed(std::string_view input, const command_parser_options& options, Piece piece) {
  command_parser parser(options);
  std::string buffer;
  outcome out;
  for (std::size_t i = 0, at = 0; at < input.size(); ++i) {
    const std::size_t n = std::min(piece(i), input.size() - at);
    buffer.append(input.substr(at, n));
    at += n;
    for (;;) {
      std::error_code ec;
      const std::size_t used = parser.parse(buffer, ec);
      if (ec) {
        check(!parser.error_reply().empty() && used == 0);
        out.error = ec;
        out.reply = std::string(parser.error_reply());
        return out;
      }
      check(used <= buffer.size());
      const bool got = parser.has_command();
      if (got) {
        check(!parser.args().empty());
        out.commands.emplace_back(parser.args().begin(), parser.args().end());
      }
      buffer.erase(0, used);
      if (!got) break;
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const command_parser_options options =
      data[0] & 1 ? command_parser_options{.max_inline_size = 16, .max_multibulk_count = 4, .max_bulk_length = 8}
                  : command_parser_options{};
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  const outcome whole = feed(input, options, [&](std::size_t) { return input.size(); });
  const outcome bytewise = feed(input, options, [](std::size_t) { return std::size_t{1}; });
  const outcome pieces = feed(input, options, [&](std::size_t i) { return std::size_t{1} + data[i % size] % 7; });
  check(whole == bytewise);
  check(whole == pieces);

  for (const auto& args : whole.commands) {
    std::vector<std::string_view> views(args.begin(), args.end());
    std::string encoded;
    switchboard::resp::encoder(encoded).command(views);
    command_parser again;
    std::error_code ec;
    check(again.parse(encoded, ec) == encoded.size() && !ec && again.has_command());
    check(std::vector<std::string>(again.args().begin(), again.args().end()) == args);
  }
  return 0;
}
