// switchboard/core/detail/per_key_count.hpp
//
// How many of something each key holds, with a limit per key: connections per client address (http::server's
// `max_connections_per_address`, pubsub::resp_server's `max_clients_per_address`), parked long polls per client
// (longpoll::endpoint's `max_parked_per_client`), unfinished jobs per client (jobs::endpoint's
// `max_unfinished_per_client`). Keys that hold nothing are not stored, so the map is only as large as the keys in
// use. `per_key_count` is not thread-safe (its owner locks); `shared_per_key_count` is, for counts that a server's
// threads share.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <unordered_map>

namespace switchboard::detail {

template <class Key, class Hash = std::hash<Key>>
class per_key_count {
 public:
  /// Counts one more for `key`, unless it already holds `limit`: false then, and nothing changes.
  bool try_add(const Key& key, std::size_t limit) {
    const auto [it, made] = counts_.try_emplace(key, 0);
    if (it->second >= limit) {
      if (made) counts_.erase(it);  // limit 0
      return false;
    }
    ++it->second;
    return true;
  }

  /// Counts one fewer for `key`, which holds at least one (`try_add` succeeded for it).
  void remove(const Key& key) {
    const auto it = counts_.find(key);
    if (it != counts_.end() && --it->second == 0) counts_.erase(it);
  }

  /// What `key` holds now.
  std::size_t count(const Key& key) const {
    const auto it = counts_.find(key);
    return it == counts_.end() ? 0 : it->second;
  }

  /// How many keys hold something.
  std::size_t keys() const noexcept { return counts_.size(); }

 private:
  std::unordered_map<Key, std::size_t, Hash> counts_;
};

/// `per_key_count` behind a mutex: every member may be called from any thread.
template <class Key, class Hash = std::hash<Key>>
class shared_per_key_count {
 public:
  bool try_add(const Key& key, std::size_t limit) {
    const std::lock_guard lock(mutex_);
    return counts_.try_add(key, limit);
  }
  void remove(const Key& key) {
    const std::lock_guard lock(mutex_);
    counts_.remove(key);
  }
  std::size_t count(const Key& key) const {
    const std::lock_guard lock(mutex_);
    return counts_.count(key);
  }

 private:
  mutable std::mutex mutex_;
  per_key_count<Key, Hash> counts_;
};

}  // namespace switchboard::detail
