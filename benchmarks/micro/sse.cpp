// Server-Sent Events codec: encoding (the server's hot path, one event per publish per stream) and parsing (our
// client and load client).
#include <switchboard/sse/encoder.hpp>
#include <switchboard/sse/parser.hpp>

#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

namespace sse = switchboard::sse;

namespace {

// A 64-byte JSON payload, the size of a typical small notification.
constexpr std::string_view payload = R"({"topic":"prices","symbol":"ACME","price":123.45,"seq":12345678})";
static_assert(payload.size() == 64);
// The same size in four lines, each its own `data` field.
constexpr std::string_view four_lines = "{\"topic\":\"prices\",\n\"symbol\":\"ACME\",\n\"price\":123,\n\"seq\":12345678}";
static_assert(four_lines.size() == 64);

// Encodes one event per iteration into a buffer that is reused (as a connection's send buffer is).
void encode_event(benchmark::State& state, sse::event ev) {
  std::string out;
  std::size_t bytes = 0;
  for (auto _ : state) {
    out.clear();
    if (sse::encode(ev, out)) state.SkipWithError("encode failed");
    bytes += out.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}

BENCHMARK_CAPTURE(encode_event, data_64B_with_id, sse::event{.data = payload, .id = "1234567"});
BENCHMARK_CAPTURE(encode_event, data_64B_with_id_and_type, sse::event{.data = payload, .type = "price", .id = "1234567"});
BENCHMARK_CAPTURE(encode_event, data_64B_in_4_lines, sse::event{.data = four_lines});

// The fan-out path: encode once into a shared buffer (one allocation per event, whatever the subscriber count).
void encode_shared(benchmark::State& state) {
  const sse::event ev{.data = payload, .id = "1234567"};
  std::size_t bytes = 0;
  for (auto _ : state) {
    std::error_code ec;
    auto shared = sse::encode_shared(ev, ec);
    bytes += shared.size();
    benchmark::DoNotOptimize(shared.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK(encode_shared);

// Parses a stream of 1000 such events, fed in pieces of the given size (as reads from a socket arrive).
void parse_stream(benchmark::State& state) {
  const auto piece = static_cast<std::size_t>(state.range(0));
  std::string stream;
  for (int i = 0; i < 1000; ++i) (void)sse::encode(sse::event{.data = payload, .id = std::to_string(i)}, stream);
  std::size_t events = 0;
  for (auto _ : state) {
    sse::parser p;
    for (std::size_t at = 0; at < stream.size(); at += piece) {
      if (p.feed(std::string_view(stream).substr(at, piece), [&](const sse::message& m) {
            benchmark::DoNotOptimize(m.data.data());
            ++events;
          })) {
        state.SkipWithError("parse failed");
      }
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(events));
  state.SetBytesProcessed(static_cast<std::int64_t>(stream.size() * state.iterations()));
}
BENCHMARK(parse_stream)->Arg(16 * 1024)->Arg(1024)->Arg(100);

}  // namespace

BENCHMARK_MAIN();
