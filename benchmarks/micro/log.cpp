// Logging hook: what a disabled record costs (the common case on hot paths), and an enabled one to a sink.
#include <switchboard/core/log.hpp>

#include <benchmark/benchmark.h>

namespace {

void log_disabled(benchmark::State& state) {
  switchboard::set_log_level(switchboard::log_level::info);
  int i = 0;
  for (auto _ : state) switchboard::log(switchboard::log_level::debug, "bench", "value ", ++i, " of ", 3.5);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(log_disabled)->ThreadRange(1, 2)->UseRealTime();

void log_enabled_to_sink(benchmark::State& state) {
  std::size_t bytes = 0;
  switchboard::set_log_sink([&](switchboard::log_level, std::string_view, std::string_view m) { bytes += m.size(); });
  int i = 0;
  for (auto _ : state) switchboard::log(switchboard::log_level::warn, "bench", "value ", ++i, " of ", 3.5);
  switchboard::set_log_sink({});
  benchmark::DoNotOptimize(bytes);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(log_enabled_to_sink);

}  // namespace

BENCHMARK_MAIN();
