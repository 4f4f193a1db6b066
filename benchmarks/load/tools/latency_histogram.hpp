// latency_histogram: the latency record of http_load (benchmarks/load/tools/http_load.cpp).
//
// A fixed array of log-linear buckets, as HdrHistogram lays them out: every power of two is split into
// 128 equal buckets, so any value is known to within 1/128 (0.8%) of itself, and values below 256 exactly.
// Recording is an index computation and an increment, with no allocation, so each load thread keeps its own
// histogram and they are merged once at the end.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace http_load {

/// Counts of non-negative integer samples (http_load records nanoseconds) with 0.8% resolution.
class latency_histogram {
 public:
  latency_histogram() : counts_(bucket_count, 0) {}

  /// Adds one sample.
  void record(std::uint64_t value) {
    ++counts_[index(value)];
    ++count_;
    if (value > max_) max_ = value;
  }

  /// Adds every sample of `other`.
  void merge(const latency_histogram& other) {
    for (std::size_t i = 0; i < bucket_count; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    if (other.max_ > max_) max_ = other.max_;
  }

  /// How many samples were recorded.
  std::uint64_t count() const noexcept { return count_; }

  /// The largest sample, exactly; 0 when there is none.
  std::uint64_t max() const noexcept { return max_; }

  /// The sample at quantile `q` (0 < q <= 1): the ceil(q * count())-th smallest, as the middle of its bucket
  /// (so within 0.4% of the true value), never above max(). 0 when there is no sample.
  std::uint64_t percentile(double q) const {
    if (count_ == 0) return 0;
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
    if (rank < 1) rank = 1;
    if (rank > count_) rank = count_;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        const std::uint64_t middle = lower_bound(i) + (width(i) - 1) / 2;
        return middle < max_ ? middle : max_;
      }
    }
    return max_;
  }

 private:
  static constexpr unsigned sub_bits = 7;  ///< 2^7 = 128 buckets per power of two
  /// Values below 2^(sub_bits + 1) have a bucket each; above, each power of two up to 2^63 has 2^sub_bits.
  static constexpr std::size_t bucket_count = std::size_t{64 - sub_bits + 1} << sub_bits;

  // For v >= 256 with highest set bit m, the bucket is (m - 7) * 128 + (v >> (m - 7)), where the second term
  // is v's top eight bits, between 128 and 255: the buckets continue without a gap from the exact ones.
  static std::size_t index(std::uint64_t v) {
    if (v < (std::uint64_t{1} << (sub_bits + 1))) return static_cast<std::size_t>(v);
    const unsigned shift = static_cast<unsigned>(63 - std::countl_zero(v)) - sub_bits;
    return (std::size_t{shift} << sub_bits) + static_cast<std::size_t>(v >> shift);
  }
  static unsigned shift_of(std::size_t i) {
    return i < (std::size_t{1} << (sub_bits + 1)) ? 0 : static_cast<unsigned>(i >> sub_bits) - 1;
  }
  static std::uint64_t lower_bound(std::size_t i) {
    const unsigned shift = shift_of(i);
    return static_cast<std::uint64_t>(i - (std::size_t{shift} << sub_bits)) << shift;
  }
  static std::uint64_t width(std::size_t i) { return std::uint64_t{1} << shift_of(i); }

  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace http_load
