// Redis Cluster hash slots (CRC16-XMODEM, table-driven): the cost the Redis bridge pays per SPUBLISH to route a
// channel to its node, for a typical channel name, a name with a hash tag, and a long name.
#include <switchboard/resp/hash_slot.hpp>

#include <benchmark/benchmark.h>

#include <string>

namespace {

void bm_hash_slot(benchmark::State& state, std::string key) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(key);
    benchmark::DoNotOptimize(switchboard::resp::hash_slot(key));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(key.size()));
}

BENCHMARK_CAPTURE(bm_hash_slot, channel_27B, std::string("sensors.kitchen.temperature"));
BENCHMARK_CAPTURE(bm_hash_slot, hash_tag, std::string("{room:42}.chat.messages"));
BENCHMARK_CAPTURE(bm_hash_slot, key_1KiB, std::string(1024, 'k'));

}  // namespace

BENCHMARK_MAIN();
