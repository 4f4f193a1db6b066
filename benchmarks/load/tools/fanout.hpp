// fanout: what the push load tools (tools/ws_load.cpp, tools/sse_load.cpp) share: the stamped payload,
// the measured window, the bookkeeping of a broadcast run (one publish at a time to M subscribers) and the
// report line the scripts read.
//
// The payload carries its own sequence number and send time, so that a receiver knows which publish (or
// which echo) it got and how long it took, whatever the server did in between: "SEQ TIME " as 16 hex
// digits each, then 'x' up to the message size. It is printable ASCII without line breaks, so it is valid
// WebSocket text (RFC 6455 §5.6) and valid SSE data (one `data:` line, WHATWG HTML §9.2.6).
#pragma once

#include "latency_histogram.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace load_tools {

using clock_type = std::chrono::steady_clock;

/// Nanoseconds on the steady clock: the time a payload carries (sender and receiver are one process).
inline std::uint64_t to_ns(clock_type::time_point t) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

/// Bytes of the stamp at the front of every payload; the smallest message size the tools accept.
constexpr std::size_t stamp_bytes = 34;

/// Writes a payload of `size` bytes (at least stamp_bytes) carrying `seq` and `time_ns` into `out` (resized).
inline void make_payload(std::string& out, std::size_t size, std::uint64_t seq, std::uint64_t time_ns) {
  out.assign(size, 'x');
  static constexpr char digits[] = "0123456789abcdef";
  for (int i = 0; i < 16; ++i) {
    out[static_cast<std::size_t>(15 - i)] = digits[(seq >> (4 * i)) & 0xF];
    out[static_cast<std::size_t>(32 - i)] = digits[(time_ns >> (4 * i)) & 0xF];
  }
  out[16] = ' ';
  out[33] = ' ';
}

/// Reads the stamp of a payload made by make_payload; false when `payload` does not start with one.
inline bool read_payload(std::string_view payload, std::uint64_t& seq, std::uint64_t& time_ns) {
  if (payload.size() < stamp_bytes || payload[16] != ' ' || payload[33] != ' ') return false;
  const auto hex = [](std::string_view digits, std::uint64_t& value) {
    value = 0;
    for (const char c : digits) {
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return false;
      value = value << 4 | static_cast<std::uint64_t>(d);
    }
    return true;
  };
  return hex(payload.substr(0, 16), seq) && hex(payload.substr(17, 16), time_ns);
}

/// The measured part of a run: after the warm-up, for a fixed duration.
struct window {
  clock_type::time_point start;
  clock_type::time_point end;
  bool contains(clock_type::time_point t) const { return t >= start && t < end; }
  std::int64_t duration_us() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(end - start).count();
  }
};

/// Bookkeeping of a broadcast run: one publish at a time; the next goes out when every subscriber got the
/// current one, or when it has waited `timeout` (its missing deliveries are then lost). Counts deliveries
/// received inside the window, and records each one's latency from the publish's send time.
class fanout_tracker {
 public:
  fanout_tracker(std::size_t subscribers, clock_type::duration timeout) : subscribers_(subscribers), timeout_(timeout) {}

  /// Starts publish number seq() + 1 at `now`; returns its sequence number (the payload carries it).
  std::uint64_t begin_publish(clock_type::time_point now) {
    ++seq_;
    received_ = 0;
    published_at_ = now;
    return seq_;
  }

  /// Records one delivery of `seq` sent at `sent_ns`, received at `now`. True when it completes the current
  /// publish (every subscriber has it): the caller publishes the next.
  bool deliver(std::uint64_t seq, std::uint64_t sent_ns, clock_type::time_point now, const window& w) {
    if (w.contains(now)) {
      ++deliveries_;
      latency_.record(to_ns(now) - sent_ns);
    }
    if (seq != seq_) {
      ++late_;  // a publish given up on after its timeout
      return false;
    }
    if (++received_ < subscribers_) return false;
    if (w.contains(published_at_)) ++completed_;
    return true;
  }

  /// True when the current publish has waited longer than the timeout; give_up() then moves on.
  bool expired(clock_type::time_point now) const { return now - published_at_ > timeout_; }
  /// Abandons the current publish: what it did not deliver counts as lost if it was sent inside the window.
  void give_up(const window& w) {
    if (w.contains(published_at_)) lost_ += subscribers_ - received_;
  }

  std::uint64_t seq() const { return seq_; }
  std::uint64_t deliveries() const { return deliveries_; }
  std::uint64_t completed() const { return completed_; }
  std::uint64_t lost() const { return lost_; }
  std::uint64_t late() const { return late_; }
  const http_load::latency_histogram& latency() const { return latency_; }

 private:
  std::size_t subscribers_;
  clock_type::duration timeout_;
  std::uint64_t seq_ = 0;
  std::size_t received_ = 0;
  clock_type::time_point published_at_{};
  std::uint64_t deliveries_ = 0;
  std::uint64_t completed_ = 0;
  std::uint64_t lost_ = 0;
  std::uint64_t late_ = 0;
  http_load::latency_histogram latency_;
};

/// What a run measured, for the report.
struct run_figures {
  const char* tool;              ///< "ws_load" or "sse_load"
  const char* mode;              ///< "echo" or "broadcast"
  std::size_t connections;       ///< echo: connections; broadcast: subscribers
  unsigned in_flight;            ///< echo: messages in flight per connection; broadcast: 1 (one publish at a time)
  std::uint64_t messages;        ///< echo: round trips; broadcast: deliveries (inside the window)
  std::uint64_t publishes;       ///< broadcast: publishes that reached every subscriber; echo: 0
  std::uint64_t lost;            ///< broadcast: deliveries that never came within the timeout
  std::uint64_t errors;          ///< connections that failed (closed, reset, bad frames or events)
  std::int64_t window_us;
  std::int64_t cpu_us;           ///< this process's CPU time over the window
  std::int64_t server_cpu_us;    ///< the measured processes' CPU time over the window, -1 when not measured
  const http_load::latency_histogram* latency;
};

/// Prints the summary and the machine-readable line:
///   SB_LOAD tool=.. mode=.. connections=N in_flight=N messages=N rate=N publishes=N lost=N errors=N
///           duration_us=N p50_us=N p99_us=N max_us=N samples=N cpu_us=N server_cpu_us=N
/// (rate: messages per second: round trips, or deliveries).
inline void print_report(const run_figures& f) {
  const double seconds = static_cast<double>(f.window_us) / 1e6;
  const auto rate = static_cast<unsigned long long>(static_cast<double>(f.messages) / seconds);
  const auto us = [](std::uint64_t ns) { return static_cast<unsigned long long>((ns + 500) / 1000); };
  const http_load::latency_histogram& l = *f.latency;
  const bool echo = std::string_view(f.mode) == "echo";
  std::printf("%s: %s, %zu %s, %.1f s measured\n", f.tool, f.mode, f.connections, echo ? "connections" : "subscribers",
              seconds);
  if (echo) {
    std::printf("  %llu round trips (%u in flight per connection): %llu/s\n",
                static_cast<unsigned long long>(f.messages), f.in_flight, rate);
  } else {
    std::printf("  %llu publishes reached every subscriber; %llu deliveries: %llu/s; %llu lost\n",
                static_cast<unsigned long long>(f.publishes), static_cast<unsigned long long>(f.messages), rate,
                static_cast<unsigned long long>(f.lost));
  }
  std::printf("  latency (%s): p50 %.3f ms, p99 %.3f ms, max %.3f ms (%llu samples); %llu connection errors\n",
              echo ? "send to echo" : "publish to receive", static_cast<double>(l.percentile(0.5)) / 1e6,
              static_cast<double>(l.percentile(0.99)) / 1e6, static_cast<double>(l.max()) / 1e6,
              static_cast<unsigned long long>(l.count()), static_cast<unsigned long long>(f.errors));
  std::printf("  CPU over the window: %s %.2f s (%.0f%% of one CPU)", f.tool, static_cast<double>(f.cpu_us) / 1e6,
              static_cast<double>(f.cpu_us) / static_cast<double>(f.window_us) * 100);
  if (f.server_cpu_us >= 0) {
    std::printf(", measured processes %.2f s", static_cast<double>(f.server_cpu_us) / 1e6);
  }
  std::printf("\nSB_LOAD tool=%s mode=%s connections=%zu in_flight=%u messages=%llu rate=%llu publishes=%llu lost=%llu "
              "errors=%llu duration_us=%lld p50_us=%llu p99_us=%llu max_us=%llu samples=%llu cpu_us=%lld "
              "server_cpu_us=%lld\n",
              f.tool, f.mode, f.connections, f.in_flight, static_cast<unsigned long long>(f.messages), rate,
              static_cast<unsigned long long>(f.publishes), static_cast<unsigned long long>(f.lost),
              static_cast<unsigned long long>(f.errors), static_cast<long long>(f.window_us), us(l.percentile(0.5)),
              us(l.percentile(0.99)), us(l.max()), static_cast<unsigned long long>(l.count()),
              static_cast<long long>(f.cpu_us), static_cast<long long>(f.server_cpu_us));
  std::fflush(stdout);
}

}  // namespace load_tools
