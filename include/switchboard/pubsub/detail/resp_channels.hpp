// switchboard/pubsub/detail/resp_channels.hpp
//
// Which channels, patterns and shard channels the clients of a `resp_server` subscribe to, with how many clients
// each, over every thread: what PUBSUB CHANNELS / NUMSUB / NUMPAT / SHARDCHANNELS / SHARDNUMSUB report. Like Redis,
// these count the server's own clients (the broker's in-process subscribers are not Redis clients). Changed on
// SUBSCRIBE and UNSUBSCRIBE only, so one mutex is enough.
#pragma once

#include <switchboard/pubsub/glob.hpp>

#include <array>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace switchboard::pubsub::detail {

/// The three namespaces of Redis pub/sub: SUBSCRIBE channels, PSUBSCRIBE patterns, SSUBSCRIBE shard channels.
enum class resp_channel_kind : std::size_t { channel = 0, pattern = 1, shard = 2 };

/// Reference counts of subscribed names, per kind. Thread-safe.
class resp_channel_registry {
 public:
  /// One more client subscribes to `name`.
  void add(resp_channel_kind kind, std::string_view name) {
    std::lock_guard lock(mutex_);
    ++names(kind)[std::string(name)];
  }

  /// One client fewer subscribes to `name` (which it did).
  void remove(resp_channel_kind kind, std::string_view name) {
    std::lock_guard lock(mutex_);
    auto& map = names(kind);
    const auto it = map.find(std::string(name));
    if (it != map.end() && --it->second == 0) map.erase(it);
  }

  /// The names with subscribers, those matching the glob `pattern` only when one is given.
  std::vector<std::string> list(resp_channel_kind kind, const std::string_view* pattern) const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [name, count] : names(kind)) {
      if (pattern == nullptr || glob_match(*pattern, name)) out.push_back(name);
    }
    return out;
  }

  /// How many clients subscribe to `name`.
  std::size_t count(resp_channel_kind kind, std::string_view name) const {
    std::lock_guard lock(mutex_);
    const auto& map = names(kind);
    const auto it = map.find(std::string(name));
    return it == map.end() ? 0 : it->second;
  }

  /// How many distinct names have subscribers (PUBSUB NUMPAT for patterns).
  std::size_t size(resp_channel_kind kind) const {
    std::lock_guard lock(mutex_);
    return names(kind).size();
  }

 private:
  using map_type = std::unordered_map<std::string, std::size_t>;
  map_type& names(resp_channel_kind kind) noexcept { return maps_[static_cast<std::size_t>(kind)]; }
  const map_type& names(resp_channel_kind kind) const noexcept { return maps_[static_cast<std::size_t>(kind)]; }

  mutable std::mutex mutex_;
  std::array<map_type, 3> maps_;
};

}  // namespace switchboard::pubsub::detail
