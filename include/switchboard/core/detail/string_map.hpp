// switchboard/core/detail/string_map.hpp
//
// `string_map<V>`: an unordered map keyed by std::string that is searched with a std::string_view, without
// making a std::string for the lookup (C++20 heterogeneous lookup: a hash and an equality that are transparent).
// The hot paths look names up by the views a parser hands them: topics, channels, route segments, conflation keys.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace switchboard::detail {

/// Hashes std::string and std::string_view alike (the same value for the same characters).
struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

/// An unordered map from std::string whose `find`, `count` and `contains` take a std::string_view too.
template <class V>
using string_map = std::unordered_map<std::string, V, string_hash, std::equal_to<>>;

}  // namespace switchboard::detail
