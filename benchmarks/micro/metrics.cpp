// Metrics registry: the cost of an update from one thread and from several at once (sharded counters against a
// single shared atomic, the design they replace), and the cost of a scrape.
#include <switchboard/core/metrics.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <string>

namespace {

switchboard::metrics_registry& registry() {
  static switchboard::metrics_registry instance;
  return instance;
}

void counter_inc(benchmark::State& state) {
  static auto& c = registry().counter("bench_counter_total", "");
  for (auto _ : state) c.inc();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(counter_inc)->ThreadRange(1, 4)->UseRealTime();

// The baseline: every thread adds to one atomic, whose cache line then moves between cores on every add.
void shared_atomic_inc(benchmark::State& state) {
  alignas(64) static std::atomic<std::uint64_t> value{0};
  for (auto _ : state) value.fetch_add(1, std::memory_order_relaxed);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(shared_atomic_inc)->ThreadRange(1, 4)->UseRealTime();

void histogram_observe(benchmark::State& state) {
  static auto& h = registry().histogram("bench_seconds", "",
                                        {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  double v = 0.0001;
  for (auto _ : state) {
    h.observe(v);
    v = v < 20 ? v * 1.5 : 0.0001;  // walk through every bucket
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(histogram_observe)->ThreadRange(1, 4)->UseRealTime();

void gauge_add(benchmark::State& state) {
  static auto& g = registry().gauge("bench_gauge", "");
  for (auto _ : state) g.add(1);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(gauge_add)->ThreadRange(1, 4)->UseRealTime();

// A scrape of 100 counters, 10 gauges and 10 histograms of 14 buckets, all labelled.
void expose(benchmark::State& state) {
  switchboard::metrics_registry r;
  for (int i = 0; i < 100; ++i) r.counter("requests_total", "Requests.", {{"route", "/r" + std::to_string(i)}}).inc(i);
  for (int i = 0; i < 10; ++i) r.gauge("connections", "Connections.", {{"listener", std::to_string(i)}}).set(i);
  for (int i = 0; i < 10; ++i) {
    r.histogram("latency_seconds", "Latency.", {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
                {{"route", "/r" + std::to_string(i)}})
        .observe(0.01 * i);
  }
  std::string out;
  for (auto _ : state) {
    out.clear();
    r.expose(out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(out.size() * state.iterations()));
}
BENCHMARK(expose);

}  // namespace

BENCHMARK_MAIN();
