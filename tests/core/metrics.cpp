#include <switchboard/core/metrics.hpp>

#include "support/catch.hpp"

#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using switchboard::metric_callback;
using switchboard::metric_label;
using switchboard::metrics_options;
using switchboard::metrics_registry;

namespace {

std::string exposed(const metrics_registry& registry) {
  std::string out;
  registry.expose(out);
  return out;
}

// Checks every line against the grammar of the text format 0.0.4 (comments, HELP, TYPE, samples), so that a
// scraper cannot choke on what we write.
void check_text_format(const std::string& text) {
  static const std::regex help(R"(# HELP [a-zA-Z_:][a-zA-Z0-9_:]* ([^\\\n]|\\\\|\\n)*)");
  static const std::regex type(R"(# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped))");
  static const std::regex sample(
      R"([a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*")*\})? (NaN|[+-]Inf|-?[0-9]+(\.[0-9]+)?(e[+-][0-9]+)?))");
  REQUIRE((text.empty() || text.back() == '\n'));
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    INFO(line);
    CHECK((std::regex_match(line, help) || std::regex_match(line, type) || std::regex_match(line, sample)));
  }
}

}  // namespace

TEST_CASE("metrics: counters", "[core][metrics]") {
  metrics_registry registry(metrics_options{.shards = 4});
  auto& get = registry.counter("http_requests_total", "Requests.", {{"method", "GET"}, {"code", "200"}});
  CHECK(get.value() == 0);
  get.inc();
  get.inc(41);
  CHECK(get.value() == 42);

  SECTION("the same name and labels, in any order, is the same counter") {
    CHECK(&registry.counter("http_requests_total", "Requests.", {{"code", "200"}, {"method", "GET"}}) == &get);
    const std::vector<metric_label> labels{{"method", "GET"}, {"code", "200"}};
    CHECK(&registry.counter("http_requests_total", "Requests.", labels) == &get);
  }
  SECTION("other label values are another series") {
    auto& post = registry.counter("http_requests_total", "Requests.", {{"method", "POST"}, {"code", "200"}});
    CHECK(&post != &get);
    post.inc();
    CHECK(exposed(registry) ==
          "# HELP http_requests_total Requests.\n"
          "# TYPE http_requests_total counter\n"
          "http_requests_total{code=\"200\",method=\"GET\"} 42\n"
          "http_requests_total{code=\"200\",method=\"POST\"} 1\n");
  }
}

TEST_CASE("metrics: gauges", "[core][metrics]") {
  metrics_registry registry;
  auto& g = registry.gauge("open_connections", "Connections open now.");
  g.add();
  g.add(2.5);
  g.sub();
  CHECK(g.value() == 2.5);
  CHECK(exposed(registry) ==
        "# HELP open_connections Connections open now.\n"
        "# TYPE open_connections gauge\n"
        "open_connections 2.5\n");
  SECTION("values are written as Prometheus reads them") {
    const std::vector<std::pair<double, std::string>> cases = {
        {-2, "-2"},
        {0.1, "0.1"},
        {1e21, "1e+21"},
        {123456789.0, "123456789"},
        {std::numeric_limits<double>::infinity(), "+Inf"},
        {-std::numeric_limits<double>::infinity(), "-Inf"},
        {std::numeric_limits<double>::quiet_NaN(), "NaN"},
    };
    for (const auto& [value, text] : cases) {
      g.set(value);
      CHECK(exposed(registry).ends_with("open_connections " + text + "\n"));
    }
  }
}

TEST_CASE("metrics: histograms", "[core][metrics]") {
  metrics_registry registry(metrics_options{.shards = 2});
  auto& h = registry.histogram("request_seconds", "Time to answer.", {0.1, 0.5, 1}, {{"route", "/a"}});
  CHECK(std::vector<double>(h.bounds().begin(), h.bounds().end()) == std::vector<double>{0.1, 0.5, 1});

  SECTION("a value equal to a bound is counted in that bound's bucket") {
    for (double v : {0.05, 0.1, 0.3, 0.5, 0.7, 1.0, 2.0}) h.observe(v);
    const auto s = h.snapshot();
    CHECK(s.cumulative_counts == std::vector<std::uint64_t>{2, 4, 6, 7});
    CHECK(s.count == 7);
    CHECK(s.sum == Approx(4.65));
    CHECK(exposed(registry) ==
          "# HELP request_seconds Time to answer.\n"
          "# TYPE request_seconds histogram\n"
          "request_seconds_bucket{route=\"/a\",le=\"0.1\"} 2\n"
          "request_seconds_bucket{route=\"/a\",le=\"0.5\"} 4\n"
          "request_seconds_bucket{route=\"/a\",le=\"1\"} 6\n"
          "request_seconds_bucket{route=\"/a\",le=\"+Inf\"} 7\n"
          "request_seconds_sum{route=\"/a\"} 4.65\n"
          "request_seconds_count{route=\"/a\"} 7\n");
  }
  SECTION("infinities and NaN") {
    h.observe(-std::numeric_limits<double>::infinity());
    h.observe(std::numeric_limits<double>::infinity());
    CHECK(h.snapshot().cumulative_counts == std::vector<std::uint64_t>{1, 1, 1, 2});
    h.observe(std::numeric_limits<double>::quiet_NaN());
    const auto s = h.snapshot();
    CHECK(s.cumulative_counts == std::vector<std::uint64_t>{1, 1, 1, 3});
    CHECK(std::isnan(s.sum));
  }
  SECTION("without labels, and with no bounds but +Inf") {
    auto& plain = registry.histogram("sizes", "", {});
    plain.observe(3);
    CHECK(exposed(registry).ends_with(
        "# TYPE sizes histogram\n"
        "sizes_bucket{le=\"+Inf\"} 1\n"
        "sizes_sum 3\n"
        "sizes_count 1\n"));
  }
}

TEST_CASE("metrics: escaping", "[core][metrics]") {
  metrics_registry registry;
  registry.counter("escaped_total", "Help with \\ backslash,\nnewline and \"quotes\".",
                   {{"path", "C:\\dir\\\"x\"\nnext"}})
      .inc();
  const std::string text = exposed(registry);
  CHECK(text ==
        "# HELP escaped_total Help with \\\\ backslash,\\nnewline and \"quotes\".\n"
        "# TYPE escaped_total counter\n"
        "escaped_total{path=\"C:\\\\dir\\\\\\\"x\\\"\\nnext\"} 1\n");
  check_text_format(text);
}

TEST_CASE("metrics: callbacks are read at scrape time while their handle lives", "[core][metrics]") {
  metrics_registry registry;
  double depth = 3;
  std::uint64_t dropped = 7;
  {
    metric_callback depth_handle =
        registry.gauge_callback("queue_depth", "Queued.", {{"queue", "jobs"}}, [&] { return depth; });
    metric_callback dropped_handle =
        registry.counter_callback("queue_dropped_total", "Dropped.", {{"queue", "jobs"}}, [&] { return dropped; });
    CHECK(exposed(registry) ==
          "# HELP queue_depth Queued.\n"
          "# TYPE queue_depth gauge\n"
          "queue_depth{queue=\"jobs\"} 3\n"
          "# HELP queue_dropped_total Dropped.\n"
          "# TYPE queue_dropped_total counter\n"
          "queue_dropped_total{queue=\"jobs\"} 7\n");
    depth = 0.5;
    CHECK(exposed(registry).find("queue_depth{queue=\"jobs\"} 0.5\n") != std::string::npos);
    // A count is written exactly, past the 2^53 where a double would round it.
    dropped = (std::uint64_t{1} << 53) + 1;
    CHECK(exposed(registry).find("queue_dropped_total{queue=\"jobs\"} 9007199254740993\n") != std::string::npos);

    SECTION("a series can only have one source") {
      CHECK_THROWS_AS(registry.gauge_callback("queue_depth", "Queued.", {{"queue", "jobs"}}, [] { return 1.0; }),
                      std::invalid_argument);
      CHECK_THROWS_AS(registry.gauge("queue_depth", "Queued.", {{"queue", "jobs"}}), std::invalid_argument);
    }
    SECTION("reset removes the series at once; moving the handle keeps it") {
      metric_callback moved = std::move(depth_handle);
      CHECK(exposed(registry).find("queue_depth") != std::string::npos);
      moved.reset();
      CHECK(exposed(registry).find("queue_depth") == std::string::npos);
      // The series can be registered again once removed.
      metric_callback again = registry.gauge_callback("queue_depth", "Queued.", {{"queue", "jobs"}}, [] { return 9.0; });
      CHECK(exposed(registry).find("queue_depth{queue=\"jobs\"} 9\n") != std::string::npos);
    }
  }
  // Both handles are gone: their families have no series and are not exposed; the callbacks are never called.
  CHECK(exposed(registry).empty());
}

// A callback that throws fails the whole scrape: the exception reaches expose's caller, and the caller's buffer is
// left as it was, not with the metrics before the callback written into it.
TEST_CASE("metrics: a throwing callback leaves the output unchanged", "[core][metrics]") {
  metrics_registry registry;
  registry.counter("before_total", "Written before the callback.").inc();
  const bool gauge_throws = GENERATE(true, false);
  INFO((gauge_throws ? "gauge callback" : "counter callback"));
  const auto fail = []() -> std::uint64_t { throw std::runtime_error("read failed"); };
  metric_callback failing = gauge_throws ? registry.gauge_callback("failing", "Throws.", {}, [&] { return double(fail()); })
                                         : registry.counter_callback("failing_total", "Throws.", {}, fail);
  std::string out = "kept\n";
  CHECK_THROWS_WITH(registry.expose(out), "read failed");
  CHECK(out == "kept\n");
  // The registry is not left locked: once the callback is gone, a scrape works.
  failing.reset();
  registry.expose(out);
  CHECK(out == "kept\n# HELP before_total Written before the callback.\n# TYPE before_total counter\nbefore_total 1\n");
}

TEST_CASE("metrics: a counter field is read from the state it shares", "[core][metrics]") {
  struct state {
    std::atomic<std::uint64_t> sent{0};
    std::atomic<std::uint64_t> lost{0};
  };
  metrics_registry registry;
  auto s = std::make_shared<state>();
  std::weak_ptr<state> watch = s;
  metric_callback sent = registry.counter_field("sent_total", "Sent.", {}, s, &state::sent);
  metric_callback lost = registry.counter_field("lost_total", "Lost.", {}, s, &state::lost);
  s->sent = 5;
  s->lost = 2;
  s.reset();  // the series keep the state
  REQUIRE_FALSE(watch.expired());
  CHECK(exposed(registry) ==
        "# HELP sent_total Sent.\n# TYPE sent_total counter\nsent_total 5\n"
        "# HELP lost_total Lost.\n# TYPE lost_total counter\nlost_total 2\n");
  sent.reset();
  lost.reset();
  CHECK(watch.expired());
}

TEST_CASE("metrics: bad configuration throws", "[core][metrics]") {
  metrics_registry registry;
  auto throws = [](auto&& f) { CHECK_THROWS_AS(f(), std::invalid_argument); };

  SECTION("names") {
    for (const char* name : {"", "1abc", "a-b", "a b", "é"}) {
      INFO(name);
      throws([&] { registry.counter(name, ""); });
    }
    CHECK_NOTHROW(registry.counter("a:b_c9", ""));
    CHECK_NOTHROW(registry.counter("_x", ""));
    CHECK_NOTHROW(registry.counter(":x", ""));
  }
  SECTION("labels") {
    for (const char* name : {"", "1a", "a:b", "a-b", "__reserved"}) {
      INFO(name);
      throws([&] { registry.counter("c", "", {{name, "v"}}); });
    }
    throws([&] { registry.counter("c", "", {{"a", "1"}, {"a", "2"}}); });
    throws([&] { registry.counter("c", "", {{"a", "\xFF"}}); });
    throws([&] { registry.histogram("h", "", {1}, {{"le", "1"}}); });
    CHECK_NOTHROW(registry.counter("d", "", {{"le", "1"}}));  // le is only reserved for histograms
    throws([&] { registry.counter("e", "\xC0\xAF"); });        // help must be UTF-8
  }
  SECTION("bucket bounds") {
    throws([&] { registry.histogram("h", "", {1, 1}); });
    throws([&] { registry.histogram("h", "", {2, 1}); });
    throws([&] { registry.histogram("h", "", {1, std::numeric_limits<double>::infinity()}); });
    throws([&] { registry.histogram("h", "", {std::numeric_limits<double>::quiet_NaN()}); });
  }
  SECTION("a name registered again differently") {
    registry.counter("x", "help", {{"a", "1"}});
    throws([&] { registry.gauge("x", "help", {{"a", "1"}}); });
    throws([&] { registry.counter("x", "other help", {{"a", "1"}}); });
    throws([&] { registry.counter("x", "help", {{"b", "1"}}); });
    throws([&] { registry.counter("x", "help"); });
    registry.histogram("h", "", {1, 2});
    throws([&] { registry.histogram("h", "", {1, 3}); });
    CHECK_NOTHROW(registry.histogram("h", "", {1, 2}));
  }
  SECTION("names that collide with a histogram's samples") {
    registry.histogram("latency", "", {1});
    throws([&] { registry.counter("latency_count", ""); });
    throws([&] { registry.gauge("latency_sum", ""); });
    throws([&] { registry.counter("latency_bucket", ""); });
    registry.counter("size_count", "");
    throws([&] { registry.histogram("size", "", {1}); });
  }
  SECTION("shards") {
    throws([] { metrics_registry r(metrics_options{.shards = 3}); });
    CHECK(metrics_registry(metrics_options{.shards = 8}).shards() == 8);
    const std::size_t automatic = metrics_registry().shards();
    CHECK(std::has_single_bit(automatic));
    CHECK(automatic <= 64);
  }
  SECTION("an empty callback") {
    throws([&] { (void)registry.gauge_callback("g", "", {}, {}); });
  }
}

TEST_CASE("metrics: increments from many threads are all counted", "[core][metrics]") {
  metrics_registry registry(metrics_options{.shards = 2});  // fewer shards than threads: shared cells too
  auto& c = registry.counter("events_total", "");
  auto& h = registry.histogram("values", "", {10, 100});
  auto& g = registry.gauge("level", "");
  constexpr int threads = 4;
  constexpr int per_thread = 20000;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        c.inc();
        h.observe(t == 0 ? 5 : 50);
        g.add(1);
      }
    });
  }
  // Scrapes while the threads run must not disturb them (and keep TSan honest about the readers).
  for (int i = 0; i < 10; ++i) check_text_format(exposed(registry));
  for (auto& w : workers) w.join();
  CHECK(c.value() == threads * per_thread);
  const auto s = h.snapshot();
  CHECK(s.cumulative_counts == std::vector<std::uint64_t>{per_thread, threads * per_thread, threads * per_thread});
  CHECK(s.sum == 5.0 * per_thread + 50.0 * per_thread * (threads - 1));
  CHECK(g.value() == threads * per_thread);
}

TEST_CASE("metrics: a full registry is valid text format", "[core][metrics]") {
  metrics_registry registry;
  registry.counter("a_total", "A.", {{"x", "1"}}).inc(3);
  registry.gauge("b", "B with \"quotes\" and \\.").set(-0.25);
  registry.histogram("c_seconds", "C.", {0.005, 0.01, 2.5, 1e6}, {{"k", "v\"\n"}}).observe(0.007);
  auto cb = registry.gauge_callback("d", "", {}, [] { return 1.0; });
  const std::string text = exposed(registry);
  check_text_format(text);
  CHECK(text.find("c_seconds_bucket{k=\"v\\\"\\n\",le=\"1e+06\"} 1\n") != std::string::npos);
  CHECK(text.find("# HELP d") == std::string::npos);  // no HELP line for empty help
}
