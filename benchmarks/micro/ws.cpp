// WebSocket codec micro benchmarks: frame decode and encode (64-byte and 16 KiB messages), unmasking, UTF-8
// validation (ASCII and mixed text) and a permessage-deflate round trip of a 1 KiB JSON message.
// Bytes/s count payload bytes; items/s count frames (or messages).
#include <switchboard/ws/deflate.hpp>
#include <switchboard/ws/frame_parser.hpp>
#include <switchboard/ws/frame_writer.hpp>
#include <switchboard/ws/mask.hpp>
#include <switchboard/core/utf8.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace ws = switchboard::ws;

namespace {

std::string ascii_text(std::size_t n) {
  std::string s;
  while (s.size() < n) s += "The quick brown fox jumps over the lazy dog; {\"id\":12345,\"ok\":true}. ";
  s.resize(n);
  return s;
}

// Text with Latin-1, Cyrillic, CJK and emoji mixed into ASCII (about 60% of the bytes are non-ASCII), cut
// at a code point boundary and padded with ASCII to `n` bytes.
std::string mixed_text(std::size_t n) {
  const std::string piece = "Grüße, naïve café; Привет, мир! 你好，世界。 😀🚀 plain words ";
  std::string s;
  while (s.size() < n) s += piece;
  s.resize(n);
  while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80) s.pop_back();  // a tail byte
  if (!s.empty() && static_cast<unsigned char>(s.back()) >= 0xC0) s.pop_back();              // a lead byte
  s.resize(n, ' ');
  return s;
}

// `count` frames of a `size`-byte message, masked by a client or unmasked from a server.
std::string frames(ws::role sender, ws::opcode op, const std::string& payload, std::size_t count) {
  ws::frame_writer writer(sender);
  std::string wire;
  std::string frame(writer.frame_size(payload.size()), '\0');
  for (std::size_t i = 0; i < count; ++i) {
    frame.resize(writer.frame_size(payload.size()));
    frame.resize(writer.write_frame(std::span<char>(frame.data(), frame.size()), op, payload));
    wire += frame;
  }
  return wire;
}

// Parses every frame of `wire` (in place), counting messages; aborts the benchmark on an unexpected event.
std::size_t parse_all(ws::frame_parser& parser, std::string& wire, benchmark::State& state) {
  std::size_t messages = 0;
  std::span<char> rest(wire.data(), wire.size());
  while (!rest.empty()) {
    const auto r = parser.parse(rest);
    rest = rest.subspan(r.consumed);
    if (r.event == ws::parse_event::data) {
      messages += r.message_end ? 1 : 0;
    } else {
      state.SkipWithError("unexpected parse event");
      break;
    }
  }
  return messages;
}

// A server decoding masked binary frames from a client: header parsing and unmasking in place. Unmasking the
// same buffer again re-masks it, and binary payloads are not checked, so each pass parses valid frames.
void BM_decode_masked_binary(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const std::size_t count = std::max<std::size_t>(1, (1 << 20) / size);
  std::string wire = frames(ws::role::client, ws::opcode::binary, std::string(size, 'x'), count);
  ws::frame_parser parser(ws::role::server);
  for (auto _ : state) benchmark::DoNotOptimize(parse_all(parser, wire, state));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * count));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * count * size));
}
BENCHMARK(BM_decode_masked_binary)->Arg(64)->Arg(16 * 1024);

// A client decoding unmasked text frames from a server: header parsing and UTF-8 validation (the buffer is not
// modified, so every pass sees the same text).
void BM_decode_text(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const std::size_t count = std::max<std::size_t>(1, (1 << 20) / size);
  std::string wire = frames(ws::role::server, ws::opcode::text, mixed_text(size), count);
  ws::frame_parser parser(ws::role::client);
  for (auto _ : state) benchmark::DoNotOptimize(parse_all(parser, wire, state));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * count));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * count * size));
}
BENCHMARK(BM_decode_text)->Arg(64)->Arg(16 * 1024);

// Encoding a whole frame (header + payload copy) into a buffer; the client also draws a key and masks.
void BM_encode(benchmark::State& state, ws::role sender) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const std::string payload(size, 'x');
  ws::frame_writer writer(sender);
  std::string out(writer.frame_size(size), '\0');
  for (auto _ : state) {
    benchmark::DoNotOptimize(writer.write_frame(std::span<char>(out.data(), out.size()), ws::opcode::binary, payload));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}
BENCHMARK_CAPTURE(BM_encode, server, ws::role::server)->Arg(64)->Arg(16 * 1024);
BENCHMARK_CAPTURE(BM_encode, client_masked, ws::role::client)->Arg(64)->Arg(16 * 1024);

// Unmasking in place; the second argument shifts the data off 8-byte alignment.
void BM_unmask(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const auto misalign = static_cast<std::size_t>(state.range(1));
  std::vector<char> data(size + misalign, 'x');
  std::span<char> view(data.data() + misalign, size);
  for (auto _ : state) {
    ws::apply_mask(view, {0x37, 0xfa, 0x21, 0x3d}, 1);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}
BENCHMARK(BM_unmask)->Args({64, 0})->Args({16 * 1024, 0})->Args({16 * 1024, 3})->Args({1 << 20, 0});

void BM_utf8(benchmark::State& state, bool mixed) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const std::string text = mixed ? mixed_text(size) : ascii_text(size);
  if (!switchboard::is_valid_utf8(text)) state.SkipWithError("benchmark text is not UTF-8");
  for (auto _ : state) benchmark::DoNotOptimize(switchboard::is_valid_utf8(text));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}
BENCHMARK_CAPTURE(BM_utf8, ascii, false)->Arg(64)->Arg(16 * 1024)->Arg(1 << 20);
BENCHMARK_CAPTURE(BM_utf8, mixed, true)->Arg(64)->Arg(16 * 1024)->Arg(1 << 20);

// 1 KiB JSON messages compressed by a server (at the zlib level given as the argument) and inflated by a
// client, with context takeover (each message may refer to the previous ones, as in a stream of events) or
// without. The messages differ (sequence numbers
// and prices), as consecutive events do, so that takeover does not reduce them to a back-reference.
void BM_deflate_round_trip(benchmark::State& state, bool takeover) {
  std::vector<std::string> messages;
  for (int m = 0; m < 64; ++m) {
    std::string json = "[";
    for (int i = 0; json.size() < 1000; ++i) {
      const int seq = m * 100 + i;
      json += R"({"seq":)" + std::to_string(seq) + R"(,"sym":"ACME","bid":)" + std::to_string(100 + seq % 37) + "." +
              std::to_string(seq % 100) + R"(,"ask":)" + std::to_string(101 + seq % 41) + R"(.5},)";
    }
    json.back() = ']';
    json.resize(1024, ' ');
    messages.push_back(std::move(json));
  }
  const ws::deflate_params params{.server_no_context_takeover = !takeover,
                                  .compression_level = static_cast<int>(state.range(0))};
  ws::deflate_compressor compressor(ws::role::server, params);
  ws::deflate_decompressor decompressor(ws::role::client, params, 1 << 20);
  std::string compressed;
  std::vector<char> out(4096);
  std::size_t compressed_bytes = 0, next = 0;
  for (auto _ : state) {
    const std::string& json = messages[next++ % messages.size()];
    compressed.clear();
    compressor.compress(json, true, compressed);
    compressed_bytes += compressed.size();
    const auto r = decompressor.inflate(compressed, true, out);
    if (!r.message_done || r.produced != json.size()) state.SkipWithError("round trip failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 1024));
  state.counters["compressed_bytes"] = benchmark::Counter(
      static_cast<double>(compressed_bytes) / static_cast<double>(std::max<std::int64_t>(1, state.iterations())));
}
BENCHMARK_CAPTURE(BM_deflate_round_trip, context_takeover, true)->Arg(1)->Arg(6);
BENCHMARK_CAPTURE(BM_deflate_round_trip, no_context_takeover, false)->Arg(1)->Arg(6);

}  // namespace

BENCHMARK_MAIN();
