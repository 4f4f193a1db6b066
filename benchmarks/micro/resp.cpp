// RESP codec micro benchmarks: decoding the command a publisher sends (PUBLISH channel <64-byte payload>), alone
// and 16 pipelined in one read; encoding the pub/sub message a subscriber receives, in RESP3 (push) and RESP2
// (array); and decoding that message on the client side.
#include <switchboard/resp/command_parser.hpp>
#include <switchboard/resp/encoder.hpp>
#include <switchboard/resp/reply_parser.hpp>

#include <benchmark/benchmark.h>

#include <string>

namespace {

using namespace switchboard::resp;

const std::string payload(64, 'x');
const std::string channel = "sensors.kitchen.temperature";

std::string publish_commands(int count) {
  std::string out;
  encoder enc(out);
  for (int i = 0; i < count; ++i) enc.command({"PUBLISH", channel, payload});
  return out;
}

// Parses every command in `input` per iteration, as a server does with one read's worth of bytes.
void bm_command_decode(benchmark::State& state, int pipelined) {
  const std::string input = publish_commands(pipelined);
  command_parser parser;
  for (auto _ : state) {
    std::string_view rest = input;
    int commands = 0;
    while (!rest.empty()) {
      std::error_code ec;
      const std::size_t used = parser.parse(rest, ec);
      if (ec || !parser.has_command()) {
        state.SkipWithError("parse failed");
        return;
      }
      benchmark::DoNotOptimize(parser.args().data());
      rest.remove_prefix(used);
      ++commands;
    }
    benchmark::DoNotOptimize(commands);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * pipelined);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * input.size()));
}
BENCHMARK_CAPTURE(bm_command_decode, publish_64B_single, 1);
BENCHMARK_CAPTURE(bm_command_decode, publish_64B_pipelined_16, 16);

// One pub/sub message into a reused output buffer, as a connection's writer does.
void bm_message_encode(benchmark::State& state, protocol version) {
  std::string out;
  out.reserve(256);
  for (auto _ : state) {
    out.clear();
    encoder(out, version).push_header(3).bulk("message").bulk(channel).bulk(payload);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
}
BENCHMARK_CAPTURE(bm_message_encode, resp3_push, protocol::resp3);
BENCHMARK_CAPTURE(bm_message_encode, resp2_array, protocol::resp2);

// The same message read by a client into a value tree.
void bm_message_decode(benchmark::State& state) {
  std::string input;
  encoder(input, protocol::resp3).push_header(3).bulk("message").bulk(channel).bulk(payload);
  reply_parser parser;
  for (auto _ : state) {
    std::error_code ec;
    parser.parse(input, ec);
    if (ec || !parser.has_value()) {
      state.SkipWithError("parse failed");
      return;
    }
    benchmark::DoNotOptimize(parser.take());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * input.size()));
}
BENCHMARK(bm_message_decode);

}  // namespace

BENCHMARK_MAIN();
