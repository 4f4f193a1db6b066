// switchboard/core/detail/per_key_count.hpp
//
// How many of something each key holds, with a limit per key: connections per client address (http::server's
// `max_connections_per_address`), parked long polls per client (longpoll::endpoint's `max_parked_per_client`).
// Keys that hold nothing are not stored, so the map is only as large as the keys in use. Not thread-safe: the
// owner locks.
#pragma once

#include <cstddef>
#include <functional>
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

}  // namespace switchboard::detail
