// The push hub's per-client queue (`push::outbox`): handing out what a slow client's queue holds, with the gaps for
// what its overflow policy dropped, and the same queue with nothing dropped (every client that keeps up).
//
// Each iteration fills a queue of 1,024 messages (the default `client_queue`) round-robin over `topics` topics, past
// its limit by `runs` messages per topic, then drains it with `next()`. Sequence numbers go up by two (a feed that
// skips numbers), so no two drops of a topic are adjacent: each is a run of its own, the most runs the outbox keeps
// (`outbox::max_runs_per_topic` is 64). Only the drain is timed; `items_per_second` counts the items handed out
// (messages and gaps). The bound itself, 64 runs of each of 64 topics, is left out: when `next` checked every run
// against the whole queue, one iteration took about 20 s (16 times 64 x 16).
#include <switchboard/push/outbox.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace push = switchboard::push;
namespace pubsub = switchboard::pubsub;
using switchboard::overflow_policy;
using switchboard::shared_bytes;

namespace {

constexpr std::size_t queue_messages = 1024;

// Hands out everything the outbox holds; returns how many items. Out of line, as the hub calls `next` (from
// `client::next_item`): inlined into the benchmark loop, `next` is compiled with whatever inlining budget that loop
// leaves, which moved the no-gap case by a fifth after a change elsewhere in `outbox` that left its path alone.
[[gnu::noinline]] std::size_t drain_all(push::outbox& box) {
  std::size_t handed_out = 0;
  while (auto item = box.next()) {
    benchmark::DoNotOptimize(item->bytes.data());
    ++handed_out;
  }
  return handed_out;
}

void drain(benchmark::State& state, overflow_policy policy) {
  const auto topics = static_cast<std::size_t>(state.range(0));
  const auto runs = static_cast<std::size_t>(state.range(1));
  // Encoded once, as the hub does: offering copies a few pointers.
  std::vector<push::outbound> items;
  const shared_bytes payload(std::string(64, 'x'));
  for (std::size_t i = 0; i < queue_messages + topics * runs; ++i) {
    const std::string topic = "room-" + std::to_string(i % topics);
    const std::uint64_t seq = 2 * (i / topics) + 1;
    items.push_back(push::outbound{payload, pubsub::message({topic, seq}, {.payload = payload})});
  }
  const auto encode_gap = [&](const pubsub::gap&) { return payload; };
  std::size_t handed_out = 0;
  for (auto _ : state) {
    push::outbox box({.max_messages = queue_messages, .max_bytes = 1 << 20, .policy = policy}, encode_gap);
    for (const push::outbound& item : items) box.offer(item);
    const auto start = std::chrono::steady_clock::now();
    handed_out += drain_all(box);
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(handed_out));
}

// Args: topics, runs per topic. {1, 0} and {64, 0}: nothing dropped, no gap to look for.
BENCHMARK_CAPTURE(drain, drop_oldest, overflow_policy::drop_oldest)
    ->Args({1, 0})->Args({64, 0})->Args({1, 1})->Args({1, 64})->Args({16, 1})->Args({16, 16})->Args({64, 16})
    ->UseManualTime();
// Under drop_newest the runs are behind the queued messages of their topic: not due until those are written.
BENCHMARK_CAPTURE(drain, drop_newest, overflow_policy::drop_newest)
    ->Args({1, 1})->Args({1, 64})->Args({16, 16})->Args({64, 16})
    ->UseManualTime();

}  // namespace

BENCHMARK_MAIN();
