// The in-process broker: publish-to-delivery rate with 1, 10, 100 and 1,000 subscribers (64-byte payloads), with
// callbacks and with coroutines in async_receive, the memory a queued message costs per subscriber, and the cost
// of waiting reads (long polls) answered by a publish and leaving early, and the cost of retention on a publish.
//
// Rates are single-threaded: each iteration publishes and then runs the io_context until every subscriber has its
// message, so the time is the CPU cost of the whole path (stamp, fan-out into N queues, one drain, N deliveries).
// `items_per_second` counts messages published; `deliveries_per_second` counts messages received.
#include <switchboard/pubsub/broker.hpp>

#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <benchmark/benchmark.h>

#include <malloc.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

// Live heap bytes, for the memory benchmark: every allocation of this program goes through these.
namespace {
std::atomic<std::int64_t> live_bytes{0};
}  // namespace

void* operator new(std::size_t size) {
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  live_bytes.fetch_add(static_cast<std::int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  return p;
}
void operator delete(void* p) noexcept {
  if (p == nullptr) return;
  live_bytes.fetch_sub(static_cast<std::int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }

namespace {

using namespace switchboard::pubsub;

const switchboard::shared_bytes payload = switchboard::shared_bytes::copy(std::string(64, 'x'));

// Queues that never overflow here: the benchmark measures delivery, not the policies.
const auto roomy = switchboard::queue_limits{.max_messages = 1 << 20, .max_bytes = 1 << 30,
                                             .policy = switchboard::overflow_policy::drop_oldest};

void report(benchmark::State& state, std::int64_t subscribers, std::int64_t batch) {
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetBytesProcessed(state.iterations() * batch * static_cast<std::int64_t>(payload.size()));
  state.counters["deliveries_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations() * batch * subscribers), benchmark::Counter::kIsRate);
}

// Subscribers with a callback; each iteration publishes `batch` messages, then lets one drain deliver them.
void bm_publish_callback(benchmark::State& state, std::int64_t batch) {
  const std::int64_t n = state.range(0);
  asio::io_context ctx;
  broker b(ctx);
  std::uint64_t received = 0;
  std::vector<subscription> subs;
  for (std::int64_t i = 0; i < n; ++i) {
    subs.push_back(b.subscribe("bench", {.limits = roomy, .on_event = [&](std::error_code, const event& e) {
                                           received += e.message().size();
                                         }}));
  }
  for (auto _ : state) {
    for (std::int64_t i = 0; i < batch; ++i) b.publish("bench", {.payload = payload});
    ctx.restart();
    ctx.poll();
  }
  if (received != static_cast<std::uint64_t>(state.iterations() * batch * n) * payload.size()) {
    state.SkipWithError("lost deliveries");
  }
  report(state, n, batch);
}
BENCHMARK_CAPTURE(bm_publish_callback, one_per_drain, 1)->Arg(1)->Arg(10)->Arg(100)->Arg(1000);
BENCHMARK_CAPTURE(bm_publish_callback, 64_per_drain, 64)->Arg(1)->Arg(10)->Arg(100)->Arg(1000);

// Subscribers that are coroutines waiting in async_receive; each resumes inside the drain.
void bm_publish_coroutine(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  asio::io_context ctx;
  broker b(ctx);
  std::uint64_t received = 0;
  std::vector<subscription> subs;
  for (std::int64_t i = 0; i < n; ++i) subs.push_back(b.subscribe("bench", {.limits = roomy}));
  for (auto& sub : subs) {
    asio::co_spawn(
        ctx,
        [&sub, &received]() -> asio::awaitable<void> {
          for (;;) {
            auto [ec, e] = co_await sub.async_receive(asio::experimental::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            received += e.message().size();
          }
        },
        asio::detached);
  }
  ctx.poll();
  for (auto _ : state) {
    b.publish("bench", {.payload = payload});
    ctx.restart();
    ctx.poll();
  }
  if (received != static_cast<std::uint64_t>(state.iterations() * n) * payload.size()) {
    state.SkipWithError("lost deliveries");
  }
  subs.clear();  // completes the waiting receives
  ctx.restart();
  ctx.poll();
  report(state, n, 1);
}
BENCHMARK(bm_publish_coroutine)->Arg(1)->Arg(10)->Arg(100)->Arg(1000);

// Long polling's churn: `n` reads wait on a topic (async_read, as parked long polls do), then all leave early, in a
// scrambled order, as when their clients go away or their deadlines pass. Each iteration parks and cancels all `n`
// and runs the completions; `items_per_second` counts reads. The cost per read should not grow with `n`.
void bm_parked_reads_leaving(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  asio::io_context ctx;
  broker b(ctx);
  std::vector<asio::cancellation_signal> signals(static_cast<std::size_t>(n));
  std::int64_t aborted = 0;
  for (auto _ : state) {
    for (auto& signal : signals) {
      b.async_read("bench", 0, 1, asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, read_result) {
                     if (ec == asio::error::operation_aborted) ++aborted;
                   }));
    }
    for (std::int64_t k = 0; k < n; ++k) {  // 7919 is prime to n: each once
      signals[static_cast<std::size_t>((k * 7919) % n)].emit(asio::cancellation_type::terminal);
    }
    ctx.restart();
    ctx.poll();
  }
  if (aborted != state.iterations() * n) state.SkipWithError("a read did not leave");
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(bm_parked_reads_leaving)->Arg(1000)->Arg(10000);

// Long polling's delivery: `n` reads wait on a topic that retains its last messages, and one publish answers them
// all. Each iteration parks `n` reads at the newest cursor, publishes, and runs the completions; `items_per_second`
// counts reads answered.
void bm_parked_reads_woken(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  asio::io_context ctx;
  broker b(ctx);
  b.set_retention("bench", {.max_messages = 16});
  std::int64_t answered = 0;
  for (auto _ : state) {
    const std::uint64_t cursor = b.last_sequence("bench");
    for (std::int64_t k = 0; k < n; ++k) {
      b.async_read("bench", cursor, 1, [&](std::error_code ec, read_result r) {
        if (!ec && r.messages.size() == 1) ++answered;
      });
    }
    b.publish("bench", {.payload = payload});
    ctx.restart();
    ctx.poll();
  }
  if (answered != state.iterations() * n) state.SkipWithError("a read was not answered");
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(bm_parked_reads_woken)->Arg(1000)->Arg(10000);

// Retention's cost: publishing to a topic that retains its last 1,000 messages, with nobody subscribed. Each
// publish appends to the log and evicts the oldest (both counted in the broker-wide retention budget, an atomic).
void bm_publish_retained(benchmark::State& state) {
  asio::io_context ctx;
  broker b(ctx);
  b.set_retention("bench", {.max_messages = 1000});
  for (auto _ : state) b.publish("bench", {.payload = payload});
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_publish_retained);

// Heap bytes per queued message per subscriber: `depth` 64-byte messages queued for `n` subscribers that do not
// read. Counts everything the queues and messages hold (ring slots, message bodies, payloads), divided by
// depth * n: a message body and payload are shared, so their share falls as n grows.
void bm_memory_per_queued_message(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  constexpr std::int64_t depth = 1000;
  double per_copy = 0;
  for (auto _ : state) {
    asio::io_context ctx;  // never run: nothing is delivered
    broker b(ctx);
    std::vector<subscription> subs;
    for (std::int64_t i = 0; i < n; ++i) subs.push_back(b.subscribe("bench", {.limits = roomy}));
    b.publish("bench", {.payload = switchboard::shared_bytes::copy(std::string(64, 'x'))});  // make the topic
    const std::int64_t before = live_bytes.load();
    for (std::int64_t i = 1; i < depth; ++i) {
      b.publish("bench", {.payload = switchboard::shared_bytes::copy(std::string(64, 'x'))});
    }
    const std::int64_t after = live_bytes.load();
    per_copy = static_cast<double>(after - before) / static_cast<double>((depth - 1) * n);
    benchmark::DoNotOptimize(subs.data());
  }
  state.counters["bytes_per_queued_message"] = per_copy;
}
BENCHMARK(bm_memory_per_queued_message)->Arg(1)->Arg(10)->Arg(100)->Arg(1000)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
