// libFuzzer target: the permessage-deflate decompressor under a size limit, and compressor round trips.
// Byte 0 picks the mode and sizes: bit 0 selects a round trip (compress the rest, then inflate it back) instead
// of inflating the rest as received compressed data; bits 1-3 pick the output buffer size (and, for received data,
// the window the peer agreed to); bits 4-7 the limit. Received data is inflated twice, into that buffer and into a
// large one: the verdict and the output must not depend on how the work was split (RFC 7692 §7.2.2).
#include <switchboard/ws/deflate.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace {

using namespace switchboard::ws;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// Inflates one message, returning the output, or nullopt on error; never more than limit + 1 bytes.
std::optional<std::string> inflate_all(deflate_decompressor& d, std::string_view compressed, std::size_t out_size,
                                       std::uint64_t limit) {
  std::vector<char> out(out_size);
  std::string result;
  std::size_t offset = 0;
  for (int rounds = 0;; ++rounds) {
    const auto r = d.inflate(std::span<const char>(compressed).subspan(offset), true, out);
    check(r.consumed <= compressed.size() - offset && r.produced <= out.size());
    offset += r.consumed;
    result.append(out.data(), r.produced);
    check(result.size() <= limit + 1);
    if (r.error) return std::nullopt;
    if (r.message_done) return result;
    // Each call makes progress until the message is done or fails.
    check(r.consumed > 0 || r.produced > 0);
    check(rounds < 10'000'000);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t config = data[0];
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::size_t out_size = std::size_t{1} << ((config >> 1) & 7) << 3;  // 8 B .. 1 KiB
  const std::uint64_t limit = std::uint64_t{1} << (4 + (config >> 4));       // 16 B .. 512 KiB

  if (config & 1) {
    deflate_params params{.client_no_context_takeover = (config & 2) != 0};
    deflate_compressor c(role::client, params);
    deflate_decompressor d(role::server, params, limit);
    // Two messages, so that the second one uses the first one's window when context takeover is on.
    for (int i = 0; i < 2; ++i) {
      std::string compressed;
      c.compress(rest, true, compressed);
      const auto back = inflate_all(d, compressed, out_size, limit);
      if (rest.size() <= limit) {
        check(back && *back == rest);
      } else {
        check(!back);
        return 0;
      }
    }
  } else {
    const deflate_params agreed{.server_max_window_bits = 9 + ((config >> 1) & 7) % 7};  // 9-15 bits
    deflate_decompressor piecewise(role::client, agreed, limit), at_once(role::client, agreed, limit);
    check(inflate_all(piecewise, rest, out_size, limit) == inflate_all(at_once, rest, 64 * 1024, limit));
  }
  return 0;
}
