// switchboard/pubsub/detail/resp_channels.hpp
//
// Which channels, patterns and shard channels the clients of a `resp_server` subscribe to, over every thread:
// with how many clients each (what PUBSUB CHANNELS / NUMSUB / NUMPAT / SHARDCHANNELS / SHARDNUMSUB report; like
// Redis, the server's own clients only), and with how many broker subscriptions the server's threads hold for
// them (one per thread that has clients of the name: see resp_shard.hpp). The difference between the two is what
// PUBLISH adds to the broker's count of receivers so that its reply counts clients, as Redis's does.
#pragma once

#include <switchboard/core/detail/string_map.hpp>
#include <switchboard/pubsub/glob.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <shared_mutex>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::pubsub::detail {

/// The three namespaces of Redis pub/sub: SUBSCRIBE channels, PSUBSCRIBE patterns, SSUBSCRIBE shard channels.
enum class resp_channel_kind : std::size_t { channel = 0, pattern = 1, shard = 2 };

/// Subscribed names per kind, with their client and thread counts. Thread-safe: written on SUBSCRIBE and
/// UNSUBSCRIBE, read (shared) on every PUBLISH.
class resp_channel_registry {
 public:
  /// One more client subscribes to `name`; `new_thread` when its thread made a broker subscription for it.
  void add(resp_channel_kind kind, std::string_view name, bool new_thread) {
    std::unique_lock lock(mutex_);
    auto& e = names(kind)[std::string(name)];
    ++e.clients;
    e.threads += new_thread ? 1 : 0;
  }

  /// One client fewer subscribes to `name` (which it did); `thread_left` when its thread dropped its broker
  /// subscription.
  void remove(resp_channel_kind kind, std::string_view name, bool thread_left) {
    std::unique_lock lock(mutex_);
    auto& map = names(kind);
    const auto it = map.find(name);
    if (it == map.end()) return;
    --it->second.clients;
    it->second.threads -= thread_left ? 1 : 0;
    if (it->second.clients == 0) map.erase(it);
  }

  /// The names with subscribers, those matching the glob `pattern` only when one is given.
  std::vector<std::string> list(resp_channel_kind kind, const std::string_view* pattern) const {
    std::shared_lock lock(mutex_);
    std::vector<std::string> out;
    for (const auto& entry : names(kind)) {
      if (pattern == nullptr || glob_match(*pattern, entry.first)) out.push_back(entry.first);
    }
    return out;
  }

  /// How many clients subscribe to `name`.
  std::size_t count(resp_channel_kind kind, std::string_view name) const {
    std::shared_lock lock(mutex_);
    const auto& map = names(kind);
    const auto it = map.find(name);
    return it == map.end() ? 0 : it->second.clients;
  }

  /// How many distinct names have subscribers (PUBSUB NUMPAT for patterns).
  std::size_t size(resp_channel_kind kind) const {
    std::shared_lock lock(mutex_);
    return names(kind).size();
  }

  /// For a message published to `channel` (of the channel or the shard namespace): clients that receive it
  /// beyond one per broker subscription, over the exact name and, for channels, every matching pattern (Redis
  /// also matches every pattern on each PUBLISH).
  std::size_t extra_receivers(resp_channel_kind kind, std::string_view channel) const {
    std::shared_lock lock(mutex_);
    std::size_t extra = 0;
    const auto& exact = names(kind);
    if (const auto it = exact.find(channel); it != exact.end()) {
      extra += it->second.clients - it->second.threads;
    }
    if (kind == resp_channel_kind::channel) {
      for (const auto& [pattern, e] : names(resp_channel_kind::pattern)) {
        if (glob_match(pattern, channel)) extra += e.clients - e.threads;
      }
    }
    return extra;
  }

 private:
  struct entry {
    std::size_t clients = 0;
    std::size_t threads = 0;
  };
  using map_type = switchboard::detail::string_map<entry>;
  map_type& names(resp_channel_kind kind) noexcept { return maps_[static_cast<std::size_t>(kind)]; }
  const map_type& names(resp_channel_kind kind) const noexcept { return maps_[static_cast<std::size_t>(kind)]; }

  mutable std::shared_mutex mutex_;
  std::array<map_type, 3> maps_;
};

}  // namespace switchboard::pubsub::detail
