// HTTP dates: formatting an IMF-fixdate, the per-thread cached Date header, and parsing each of the three forms.
#include <switchboard/http/date.hpp>

#include <benchmark/benchmark.h>

#include <chrono>

namespace {

namespace http = switchboard::http;

void format_date(benchmark::State& state) {
  http::http_date_buffer buffer;
  auto t = std::chrono::sys_seconds{std::chrono::seconds{784111777}};
  for (auto _ : state) {
    benchmark::DoNotOptimize(http::format_http_date(t, buffer).data());
    t += std::chrono::seconds{1};  // a new second every time: no caching helps
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(format_date);

void current_date(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(http::current_http_date().data());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(current_date);

void parse_date(benchmark::State& state, std::string_view text) {
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  for (auto _ : state) benchmark::DoNotOptimize(http::parse_http_date(text, now));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(parse_date, imf_fixdate, std::string_view("Sun, 06 Nov 1994 08:49:37 GMT"));
BENCHMARK_CAPTURE(parse_date, rfc850, std::string_view("Sunday, 06-Nov-94 08:49:37 GMT"));
BENCHMARK_CAPTURE(parse_date, asctime, std::string_view("Sun Nov  6 08:49:37 1994"));

}  // namespace

BENCHMARK_MAIN();
