// Pattern matching micro benchmarks: glob_match on typical and hostile input, and finding the patterns that match
// a topic among 1,000 (`sensors.<room>.*` and friends) with the pattern index, against trying every pattern as
// Redis does.
#include <switchboard/pubsub/glob.hpp>
#include <switchboard/pubsub/pattern_index.hpp>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <vector>

namespace {

using switchboard::pubsub::glob_match;
using switchboard::pubsub::pattern_index;

void bm_glob_match(benchmark::State& state, std::string pattern, std::string subject, bool expected) {
  for (auto _ : state) {
    const bool matched = glob_match(pattern, subject);
    if (matched != expected) state.SkipWithError("wrong answer");
    benchmark::DoNotOptimize(matched);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK_CAPTURE(bm_glob_match, star_middle, std::string("sensors.*.temperature"),
                  std::string("sensors.kitchen.temperature"), true);
BENCHMARK_CAPTURE(bm_glob_match, class_and_any, std::string("sensors.[kb]?tchen.*"),
                  std::string("sensors.kitchen.temperature"), true);
BENCHMARK_CAPTURE(bm_glob_match, literal_mismatch, std::string("sensors.bath.*"),
                  std::string("sensors.kitchen.temperature"), false);
// CVE-2022-36021's shape: exponential for a backtracking matcher, |subject| x |pattern| steps at most here.
BENCHMARK_CAPTURE(bm_glob_match, hostile_32_stars_1KiB, [] {
  std::string p;
  for (int i = 0; i < 32; ++i) p += "a*";
  return p + "b";
}(), std::string(1024, 'a'), false);

// 1,000 patterns `sensors.room<NNN>.*`, of which `catch_all` are replaced by patterns that every topic meets
// because their literal prefix is empty (`*.alarm<N>`).
std::vector<std::string> thousand_patterns(int catch_all) {
  std::vector<std::string> out;
  char buf[64];
  for (int room = 0; room < 1000 - catch_all; ++room) {
    std::snprintf(buf, sizeof buf, "sensors.room%03d.*", room);
    out.emplace_back(buf);
  }
  for (int i = 0; i < catch_all; ++i) {
    std::snprintf(buf, sizeof buf, "*.alarm%d", i);
    out.emplace_back(buf);
  }
  return out;
}

const std::string topic = "sensors.room042.temperature";

void bm_pattern_index_lookup(benchmark::State& state, int catch_all) {
  pattern_index<int> index;
  for (const std::string& p : thousand_patterns(catch_all)) index.try_emplace(p, 0);
  for (auto _ : state) {
    std::size_t hits = index.for_each_match(topic, [](std::string_view, int& v) { benchmark::DoNotOptimize(v); });
    if (hits != 1) state.SkipWithError("wrong answer");
    benchmark::DoNotOptimize(hits);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK_CAPTURE(bm_pattern_index_lookup, 1000_prefixed, 0);
BENCHMARK_CAPTURE(bm_pattern_index_lookup, 990_prefixed_10_catch_all, 10);

// The baseline: glob_match on every pattern, as Redis does on PUBLISH.
void bm_scan_all_patterns(benchmark::State& state, int catch_all) {
  const std::vector<std::string> patterns = thousand_patterns(catch_all);
  for (auto _ : state) {
    std::size_t hits = 0;
    for (const std::string& p : patterns) hits += glob_match(p, topic) ? 1 : 0;
    if (hits != 1) state.SkipWithError("wrong answer");
    benchmark::DoNotOptimize(hits);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK_CAPTURE(bm_scan_all_patterns, 1000_prefixed, 0);
BENCHMARK_CAPTURE(bm_scan_all_patterns, 990_prefixed_10_catch_all, 10);

}  // namespace

BENCHMARK_MAIN();
