// switchboard/core/metrics.hpp
//
// A registry of metrics (counters, gauges, histograms, with labels) exposed in the Prometheus text format 0.0.4.
//
//     switchboard::metrics_registry registry;
//     auto& requests = registry.counter("http_requests_total", "Requests received.", {{"method", "GET"}});
//     auto& latency = registry.histogram("http_request_seconds", "Time to answer.", {0.001, 0.01, 0.1, 1});
//     auto depth = registry.gauge_callback("queue_depth", "Messages queued.", {{"queue", "jobs"}},
//                                          [&] { return double(jobs.size()); });
//     requests.inc();                      // from any thread, a few nanoseconds
//     latency.observe(0.004);
//     std::string body;
//     registry.expose(body);               // serve with prometheus_content_type
//
// Registration is set-up work (it takes a lock, validates and allocates): do it once and keep the reference,
// which stays valid for the registry's lifetime. Updating a metric never locks: counters and histogram buckets
// are sharded per thread (see detail/sharded_counters.hpp) and summed when scraped; a gauge is one atomic on
// its own cache line, since `set` cannot be sharded.
//
// Bad configuration throws `std::invalid_argument`: a metric name outside `[a-zA-Z_:][a-zA-Z0-9_:]*`, a label
// name outside `[a-zA-Z_][a-zA-Z0-9_]*` or starting with `__` (reserved by Prometheus) or `le` on a histogram,
// the same label twice, a label value or help text that is not UTF-8, histogram bounds that are not finite and
// strictly increasing, or a name registered again with another type, help, label names or bounds, or that
// collides with the `_bucket`, `_sum` or `_count` series of a histogram.
#pragma once

#include <switchboard/core/detail/prometheus_text.hpp>
#include <switchboard/core/detail/sharded_counters.hpp>
#include <switchboard/core/utf8.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

namespace switchboard {

class metrics_registry;

/// The `Content-Type` of `metrics_registry::expose`'s output.
inline constexpr std::string_view prometheus_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// A count of events that only goes up (requests served, bytes sent, messages dropped). Made by
/// `metrics_registry::counter`.
class counter {
 public:
  /// Adds `n`. Safe from any thread; no lock, no allocation.
  void inc(std::uint64_t n = 1) noexcept { cells_.add(0, n); }

  /// The current total (increments racing with this call may or may not be included).
  std::uint64_t value() const noexcept { return cells_.sum(0); }

 private:
  friend class metrics_registry;
  explicit counter(std::size_t shards) : cells_(shards, 1) {}

  detail::sharded_counters cells_;
};

/// A value that goes up and down (open connections, memory in use). Made by `metrics_registry::gauge`. Every
/// operation is one atomic operation on a value of its own cache line, safe from any thread.
class gauge {
 public:
  /// Replaces the value.
  void set(double value) noexcept { value_.store(value, std::memory_order_relaxed); }
  /// Adds `delta` (a connection opened).
  void add(double delta = 1) noexcept { value_.fetch_add(delta, std::memory_order_relaxed); }
  /// Subtracts `delta` (a connection closed).
  void sub(double delta = 1) noexcept { value_.fetch_sub(delta, std::memory_order_relaxed); }
  /// The current value.
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  friend class metrics_registry;
  gauge() = default;

  alignas(detail::cache_line_bytes) std::atomic<double> value_{0.0};
};

/// What a histogram has counted, as Prometheus exposes it.
struct histogram_snapshot {
  /// For each bound, the observations less than or equal to it; then the `+Inf` bucket, which is `count`.
  std::vector<std::uint64_t> cumulative_counts;
  /// The sum of the observed values.
  double sum = 0;
  /// The number of observations.
  std::uint64_t count = 0;
};

/// Counts observations (latencies, sizes) in buckets with fixed upper bounds. Made by
/// `metrics_registry::histogram`.
class histogram {
 public:
  /// Counts `value` in the first bucket whose bound is >= it (the `+Inf` bucket if none) and adds it to the sum.
  /// Safe from any thread; no lock, no allocation. A NaN is counted in `+Inf` and makes the sum NaN, as in the
  /// Go client: a NaN latency is a bug worth seeing.
  void observe(double value) noexcept {
    const std::size_t bucket =
        std::isnan(value) ? bounds_.size()
                          : static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
    const std::size_t shard = cells_.local_shard();
    cells_.cell(shard, first_bucket_cell + bucket).fetch_add(1, std::memory_order_relaxed);
    std::atomic<std::uint64_t>& sum = cells_.cell(shard, sum_cell);
    std::uint64_t old_bits = sum.load(std::memory_order_relaxed);
    while (!sum.compare_exchange_weak(old_bits, std::bit_cast<std::uint64_t>(std::bit_cast<double>(old_bits) + value),
                                      std::memory_order_relaxed)) {
    }
  }

  /// The upper bounds of the buckets, without the implicit `+Inf`.
  std::span<const double> bounds() const noexcept { return bounds_; }

  /// The counts so far. Observations racing with this call may be partly included (in a bucket, not yet in
  /// the sum); `count` is always the total of the buckets.
  histogram_snapshot snapshot() const {
    histogram_snapshot s;
    s.cumulative_counts.reserve(bounds_.size() + 1);
    for (std::size_t b = 0; b <= bounds_.size(); ++b) {
      s.count += cells_.sum(first_bucket_cell + b);
      s.cumulative_counts.push_back(s.count);
    }
    for (std::size_t shard = 0; shard < cells_.shards(); ++shard) {
      s.sum += std::bit_cast<double>(cells_.cell(shard, sum_cell).load(std::memory_order_relaxed));
    }
    return s;
  }

 private:
  friend class metrics_registry;
  histogram(std::size_t shards, std::vector<double> bounds)
      : bounds_(std::move(bounds)), cells_(shards, first_bucket_cell + bounds_.size() + 1) {}

  // Layout of each shard: the sum (a double's bits), then one count per bucket (not cumulative), +Inf last.
  static constexpr std::size_t sum_cell = 0;
  static constexpr std::size_t first_bucket_cell = 1;

  std::vector<double> bounds_;
  detail::sharded_counters cells_;
};

/// One label of a metric series, e.g. `{"method", "GET"}`.
struct metric_label {
  std::string_view name;
  std::string_view value;
};

/// The labels of a series, as a braced list `{{"method", "GET"}, {"code", "200"}}`, a vector or a span. A view:
/// the registry copies what it keeps.
class label_set {
 public:
  /// No labels.
  label_set() noexcept = default;
  /// The labels of a braced list, which lives until the end of the registering call's full expression.
  label_set(std::initializer_list<metric_label> labels) noexcept : labels_(labels.begin(), labels.size()) {}
  /// Labels built at run time.
  label_set(std::span<const metric_label> labels) noexcept : labels_(labels) {}
  label_set(const std::vector<metric_label>& labels) noexcept : labels_(labels) {}

  /// The labels, in the order given.
  std::span<const metric_label> labels() const noexcept { return labels_; }

 private:
  std::span<const metric_label> labels_;
};

/// Keeps a callback series (see `metrics_registry::gauge_callback`) registered: destroying or resetting it removes
/// the series, after which the callback is never called again. Must not outlive its registry. Move-only.
class [[nodiscard]] metric_callback {
 public:
  /// A handle that keeps nothing registered.
  metric_callback() noexcept = default;
  /// Takes over `other`'s series; `other` then keeps nothing.
  metric_callback(metric_callback&& other) noexcept
      : registry_(std::exchange(other.registry_, nullptr)), id_(other.id_) {}
  /// Removes this handle's series, then takes over `other`'s.
  metric_callback& operator=(metric_callback&& other) noexcept {
    if (this != &other) {
      reset();
      registry_ = std::exchange(other.registry_, nullptr);
      id_ = other.id_;
    }
    return *this;
  }
  /// Removes the series (see `reset`).
  ~metric_callback() { reset(); }

  /// Removes the series now. When this returns, a scrape in progress has finished with the callback.
  void reset() noexcept;

 private:
  friend class metrics_registry;
  metric_callback(metrics_registry* registry, std::uint64_t id) noexcept : registry_(registry), id_(id) {}

  metrics_registry* registry_ = nullptr;
  std::uint64_t id_ = 0;
};

/// How a registry shards its counters and histograms.
struct metrics_options {
  /// The number of copies of each counter and histogram, so that threads updating them at the same time touch
  /// different cache lines (each copy costs one 64-byte line per 8 cells). A power of two; 0 picks the
  /// smallest power of two >= the number of hardware threads, at most 64.
  std::size_t shards = 0;
};

/// Metrics registered by name and labels, exposed in the Prometheus text format. Thread-safe: registering,
/// exposing and updating may happen from any thread. Not copyable or movable (its metrics are referred to).
class metrics_registry {
 public:
  /// Throws `std::invalid_argument` if `options.shards` is not 0 or a power of two.
  explicit metrics_registry(metrics_options options = {}) : shards_(pick_shards(options.shards)) {}

  metrics_registry(const metrics_registry&) = delete;
  metrics_registry& operator=(const metrics_registry&) = delete;

  /// The counter `name` with `labels`, registered on first use. Registering the same name and labels again
  /// returns the same counter. The reference stays valid for the registry's lifetime.
  switchboard::counter& counter(std::string_view name, std::string_view help, label_set labels = {}) {
    series_entry& s = add_series(name, help, kind::counter, labels, {}, [&] {
      return series_metric{std::unique_ptr<switchboard::counter>(new switchboard::counter(shards_))};
    });
    return *std::get<std::unique_ptr<switchboard::counter>>(s.metric);
  }

  /// The gauge `name` with `labels`, as `counter` does.
  switchboard::gauge& gauge(std::string_view name, std::string_view help, label_set labels = {}) {
    series_entry& s = add_series(name, help, kind::gauge, labels, {}, [] {
      return series_metric{std::unique_ptr<switchboard::gauge>(new switchboard::gauge())};
    });
    return *std::get<std::unique_ptr<switchboard::gauge>>(s.metric);
  }

  /// The histogram `name` with `labels` and the bucket upper `bounds` (finite, strictly increasing; the `+Inf`
  /// bucket is implicit), as `counter` does. Every series of one histogram name has the same bounds.
  switchboard::histogram& histogram(std::string_view name, std::string_view help, const std::vector<double>& bounds,
                                    label_set labels = {}) {
    for (std::size_t i = 0; i < bounds.size(); ++i) {
      if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i - 1] < bounds[i]))) {
        throw std::invalid_argument("switchboard::metrics_registry: histogram " + std::string(name) +
                                    ": bucket bounds must be finite and strictly increasing");
      }
    }
    series_entry& s = add_series(name, help, kind::histogram, labels, bounds, [&] {
      return series_metric{std::unique_ptr<switchboard::histogram>(new switchboard::histogram(shards_, bounds))};
    });
    return *std::get<std::unique_ptr<switchboard::histogram>>(s.metric);
  }

  /// A gauge series whose value is read by calling `read` at each scrape (a queue's depth, a pool's size), until
  /// the returned handle is destroyed. `read` runs on the scraping thread with the registry locked: it must be
  /// safe to call from that thread and must not use the registry. If it throws, the scrape fails (see `expose`).
  /// Registering a series that exists throws.
  metric_callback gauge_callback(std::string_view name, std::string_view help, label_set labels,
                                 std::function<double()> read) {
    return add_callback(name, help, kind::gauge, labels, std::move(read));
  }

  /// A counter series read by calling `read` at each scrape, for counts kept elsewhere (a queue's drop count);
  /// `read` must never go down. As `gauge_callback` otherwise.
  metric_callback counter_callback(std::string_view name, std::string_view help, label_set labels,
                                   std::function<std::uint64_t()> read) {
    return add_callback(name, help, kind::counter, labels, std::move(read));
  }

  /// A counter series that reads the atomic count `owner->*count` at each scrape: a component's counter, in a state
  /// that the series shares so that it stays valid for as long as the series is registered. As `counter_callback`.
  template <class Owner>
  metric_callback counter_field(std::string_view name, std::string_view help, label_set labels,
                                std::shared_ptr<Owner> owner, std::atomic<std::uint64_t> Owner::*count) {
    return counter_callback(name, help, labels, [owner = std::move(owner), count] {
      return ((*owner).*count).load(std::memory_order_relaxed);
    });
  }

  /// Appends every metric in the Prometheus text format 0.0.4: per name, in registration order, one `# HELP`
  /// line (unless the help is empty) and one `# TYPE` line, then its series in registration order; a histogram
  /// series as cumulative `_bucket` lines ending with `le="+Inf"`, then `_sum` and `_count`.
  ///
  /// All or nothing: if a callback (`gauge_callback`, `counter_callback`) throws, or memory runs out, the exception
  /// propagates and `out` is left as it was. A scrape answered with the metrics before the failing one would look
  /// to Prometheus like a complete scrape in which the rest had vanished.
  void expose(std::string& out) const {
    const std::size_t old_size = out.size();
    try {
      const std::lock_guard lock(mutex_);
      for (const auto& f : families_) {
        if (f->series.empty()) continue;
        if (!f->help.empty()) {
          out += "# HELP ";
          out += f->name;
          out += ' ';
          detail::append_help(f->help, out);
          out += '\n';
        }
        out += "# TYPE ";
        out += f->name;
        out += f->type == kind::counter ? " counter\n" : f->type == kind::gauge ? " gauge\n" : " histogram\n";
        for (const auto& s : f->series) write_series(*f, *s, out);
      }
    } catch (...) {
      out.resize(old_size);  // appending never changes what was there: cutting the tail restores it
      throw;
    }
  }

  /// The number of shards of each counter and histogram.
  std::size_t shards() const noexcept { return shards_; }

 private:
  friend class metric_callback;

  enum class kind { counter, gauge, histogram };
  using series_metric = std::variant<std::unique_ptr<switchboard::counter>, std::unique_ptr<switchboard::gauge>,
                                     std::unique_ptr<switchboard::histogram>, std::function<double()>,
                                     std::function<std::uint64_t()>>;  // a counter callback, written exact

  struct series_entry {
    std::string labels;  // rendered and escaped, `a="x",b="y"`; empty without labels
    series_metric metric;
    std::uint64_t callback_id = 0;  // non-zero for a callback series
  };

  struct family {
    std::string name;
    std::string help;
    kind type;
    std::vector<std::string> label_names;  // sorted
    std::vector<double> bounds;            // histograms
    std::vector<std::string> le_values;    // histograms: the `le` label value of each bound, then "+Inf"
    std::vector<std::unique_ptr<series_entry>> series;
    std::map<std::string, series_entry*, std::less<>> by_labels;
  };

  static std::size_t pick_shards(std::size_t requested) {
    if (requested == 0) {
      const std::size_t threads = std::max(1u, std::thread::hardware_concurrency());
      return std::min<std::size_t>(std::bit_ceil(threads), 64);
    }
    if (!std::has_single_bit(requested)) {
      throw std::invalid_argument("switchboard::metrics_options: shards must be 0 or a power of two");
    }
    return requested;
  }

  [[noreturn]] static void bad(std::string_view name, const std::string& what) {
    throw std::invalid_argument("switchboard::metrics_registry: " + std::string(name) + ": " + what);
  }

  // The sample names a family writes: its name, and for a histogram the three series derived from it.
  static std::vector<std::string> sample_names(std::string_view name, kind type) {
    std::vector<std::string> names{std::string(name)};
    if (type == kind::histogram) {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) names.push_back(std::string(name) + suffix);
    }
    return names;
  }

  template <class Make>
  series_entry& add_series(std::string_view name, std::string_view help, kind type, label_set labels,
                     const std::vector<double>& bounds, Make&& make, std::uint64_t callback_id = 0) {
    if (!detail::is_metric_name(name)) bad(name, "not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)");
    if (!is_valid_utf8(help)) bad(name, "help text is not UTF-8");

    // Canonical labels: sorted by name, so that the same set given in another order is the same series.
    std::vector<metric_label> sorted(labels.labels().begin(), labels.labels().end());
    std::sort(sorted.begin(), sorted.end(), [](const metric_label& a, const metric_label& b) { return a.name < b.name; });
    std::vector<std::string> label_names;
    std::string rendered;
    for (const metric_label& l : sorted) {
      if (!detail::is_label_name(l.name)) bad(name, "label " + std::string(l.name) + " is not a valid label name");
      if (type == kind::histogram && l.name == "le") bad(name, "label le is reserved for histogram buckets");
      if (!label_names.empty() && label_names.back() == l.name) bad(name, "label " + std::string(l.name) + " given twice");
      if (!is_valid_utf8(l.value)) bad(name, "value of label " + std::string(l.name) + " is not UTF-8");
      label_names.emplace_back(l.name);
      if (!rendered.empty()) rendered += ',';
      rendered += l.name;
      rendered += "=\"";
      detail::append_label_value(l.value, rendered);
      rendered += '"';
    }

    const std::lock_guard lock(mutex_);
    family* f = nullptr;
    if (auto found = families_by_name_.find(name); found != families_by_name_.end()) {
      f = found->second;
      if (f->type != type) bad(name, "already registered as another type");
      if (f->help != help) bad(name, "already registered with another help text");
      if (f->label_names != label_names) bad(name, "already registered with other label names");
      if (f->bounds != bounds) bad(name, "already registered with other bucket bounds");
    } else {
      const std::vector<std::string> samples = sample_names(name, type);
      for (const std::string& sample : samples) {
        if (sample_names_.contains(sample)) bad(name, "collides with the samples of another metric (" + sample + ")");
      }
      auto created = std::make_unique<family>(family{std::string(name), std::string(help), type, label_names, bounds,
                                                     {}, {}, {}});
      if (type == kind::histogram) {
        for (double bound : bounds) {
          created->le_values.emplace_back();
          detail::append_value(bound, created->le_values.back());
        }
        created->le_values.emplace_back("+Inf");
      }
      f = created.get();
      families_.push_back(std::move(created));
      families_by_name_.emplace(f->name, f);
      sample_names_.insert(samples.begin(), samples.end());
    }

    if (auto found = f->by_labels.find(rendered); found != f->by_labels.end()) {
      if (callback_id != 0 || found->second->callback_id != 0) {
        bad(name, "series {" + rendered + "} is already registered");
      }
      return *found->second;
    }
    auto created = std::make_unique<series_entry>(series_entry{rendered, make(), callback_id});
    series_entry& s = *created;
    f->series.push_back(std::move(created));
    f->by_labels.emplace(s.labels, &s);
    if (callback_id != 0) callbacks_.emplace(callback_id, f);
    return s;
  }

  template <class Read>
  metric_callback add_callback(std::string_view name, std::string_view help, kind type, label_set labels,
                               std::function<Read()> read) {
    if (!read) bad(name, "empty callback");
    const std::uint64_t id = next_callback_id_.fetch_add(1, std::memory_order_relaxed);
    add_series(name, help, type, labels, {}, [&] { return series_metric{std::move(read)}; }, id);
    return metric_callback(this, id);
  }

  void remove_callback(std::uint64_t id) noexcept {
    const std::lock_guard lock(mutex_);
    const auto found = callbacks_.find(id);
    if (found == callbacks_.end()) return;
    family& f = *found->second;
    callbacks_.erase(found);
    const auto it = std::find_if(f.series.begin(), f.series.end(), [&](const auto& s) { return s->callback_id == id; });
    f.by_labels.erase((*it)->labels);
    f.series.erase(it);
  }

  // One sample line: name + suffix + {labels[,extra]} + SP + value + LF.
  template <class Value>
  static void write_sample(std::string& out, const family& f, std::string_view suffix, std::string_view labels,
                           std::string_view le, Value value) {
    out += f.name;
    out += suffix;
    if (!labels.empty() || !le.empty()) {
      out += '{';
      out += labels;
      if (!le.empty()) {
        if (!labels.empty()) out += ',';
        out += "le=\"";
        out += le;
        out += '"';
      }
      out += '}';
    }
    out += ' ';
    detail::append_value(value, out);
    out += '\n';
  }

  static void write_series(const family& f, const series_entry& s, std::string& out) {
    if (const auto* c = std::get_if<std::unique_ptr<switchboard::counter>>(&s.metric)) {
      write_sample(out, f, "", s.labels, "", (*c)->value());
    } else if (const auto* g = std::get_if<std::unique_ptr<switchboard::gauge>>(&s.metric)) {
      write_sample(out, f, "", s.labels, "", (*g)->value());
    } else if (const auto* read = std::get_if<std::function<double()>>(&s.metric)) {
      write_sample(out, f, "", s.labels, "", (*read)());
    } else if (const auto* read_count = std::get_if<std::function<std::uint64_t()>>(&s.metric)) {
      write_sample(out, f, "", s.labels, "", (*read_count)());
    } else {
      const histogram_snapshot h = std::get<std::unique_ptr<switchboard::histogram>>(s.metric)->snapshot();
      for (std::size_t b = 0; b < h.cumulative_counts.size(); ++b) {
        write_sample(out, f, "_bucket", s.labels, f.le_values[b], h.cumulative_counts[b]);
      }
      write_sample(out, f, "_sum", s.labels, "", h.sum);
      write_sample(out, f, "_count", s.labels, "", h.count);
    }
  }

  const std::size_t shards_;
  mutable std::mutex mutex_;  // guards everything below; metric updates never take it
  std::vector<std::unique_ptr<family>> families_;                  // in registration order
  std::map<std::string_view, family*, std::less<>> families_by_name_;  // keys view family::name
  std::set<std::string, std::less<>> sample_names_;                // every sample name in use
  std::map<std::uint64_t, family*> callbacks_;                     // callback series id -> its family
  std::atomic<std::uint64_t> next_callback_id_{1};
};

inline void metric_callback::reset() noexcept {
  if (registry_ != nullptr) std::exchange(registry_, nullptr)->remove_callback(id_);
}

}  // namespace switchboard
