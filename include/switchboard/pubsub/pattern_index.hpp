// switchboard/pubsub/pattern_index.hpp
//
// A map from glob patterns (PSUBSCRIBE patterns, glob.hpp) to values, that finds the patterns matching a topic
// without trying them all. Redis tries every pattern on every PUBLISH; with thousands of patterns such as
// `sensors.<room>.*`, most of that work is spent on patterns that cannot match.
//
// Every subject a pattern matches starts with the pattern's literal prefix (the bytes before its first `*`, `?`,
// `[` or `\`). The index keeps the patterns in a trie keyed by those prefixes: looking up a topic walks the trie
// along the topic's bytes, at most one node per byte, and runs `glob_match` only on the patterns met on the way,
// that is, those whose literal prefix is a prefix of the topic. A pattern whose prefix diverges from the topic costs
// nothing; patterns with an empty prefix (`*foo`) are tried on every topic, as they must be.
//
// Not thread-safe; the broker serialises access.
#pragma once

#include <switchboard/core/detail/string_map.hpp>
#include <switchboard/pubsub/glob.hpp>

#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace switchboard::pubsub {

/// Patterns -> `T`, each pattern at most once (a map, not a multimap: the broker keeps its subscribers of one
/// pattern in the value).
template <class T>
class pattern_index {
 public:
  using mapped_type = T;

  pattern_index() = default;
  // The trie points at the map's entries, which stay in place when the index is moved but not when it is copied.
  pattern_index(const pattern_index&) = delete;
  pattern_index& operator=(const pattern_index&) = delete;
  pattern_index(pattern_index&&) noexcept = default;
  pattern_index& operator=(pattern_index&&) noexcept = default;

  /// Adds `pattern` with a value made from `args` if it is absent. Returns the pattern's value and whether it
  /// was added (false: it was there, and `args` were not used). Strong guarantee: if an allocation or `T`'s
  /// constructor throws, the index is as it was.
  template <class... Args>
  std::pair<T&, bool> try_emplace(std::string_view pattern, Args&&... args) {
    if (auto found = entries_.find(pattern); found != entries_.end()) return {found->second.value, false};
    const std::string_view prefix = glob_literal_prefix(pattern);
    // Everything that can throw (trie nodes, the node's room for one more pattern, the map's entry and its value)
    // comes before what cannot be undone, and the catch removes what this call added: otherwise a throw could leave
    // the entry in the map but not in the trie (found by `find`, never matched, and a later `erase` would pop from
    // an empty list).
    node* n = &root_;
    std::size_t depth = 0;
    for (; depth < prefix.size(); ++depth) {
      node* next = n->child(static_cast<unsigned char>(prefix[depth]));
      if (next == nullptr) break;
      n = next;
    }
    node* const fork = n;  // the deepest node already there: those under it on the path are made here
    const std::size_t fork_depth = depth;
    bool room = false;
    try {
      for (; depth < prefix.size(); ++depth) n = &n->child_or_add(static_cast<unsigned char>(prefix[depth]));
      n->patterns.push_back(nullptr);  // the room, filled once the entry exists
      room = true;
      entry* e = &*entries_.try_emplace(std::string(pattern), std::forward<Args>(args)...).first;
      e->second.position = n->patterns.size() - 1;
      n->patterns.back() = e;
      return {e->second.value, true};
    } catch (...) {
      if (room) n->patterns.pop_back();
      if (fork_depth < prefix.size()) fork->remove_child(static_cast<unsigned char>(prefix[fork_depth]));
      throw;
    }
  }

  /// The value of `pattern`, or nullptr.
  T* find(std::string_view pattern) noexcept {
    const auto found = entries_.find(pattern);
    return found == entries_.end() ? nullptr : &found->second.value;
  }
  const T* find(std::string_view pattern) const noexcept {
    const auto found = entries_.find(pattern);
    return found == entries_.end() ? nullptr : &found->second.value;
  }

  /// Removes `pattern` and its value; false if it was absent. Trie nodes left empty are freed, so an index that
  /// sees patterns come and go does not grow.
  bool erase(std::string_view pattern) {
    const auto found = entries_.find(pattern);
    if (found == entries_.end()) return false;
    const std::string_view prefix = glob_literal_prefix(pattern);
    // The path from the root to the pattern's node, to prune it bottom-up afterwards.
    std::vector<node*> path;
    path.reserve(prefix.size() + 1);
    path.push_back(&root_);
    for (const char c : prefix) path.push_back(path.back()->child(static_cast<unsigned char>(c)));
    node& n = *path.back();
    // Swap-and-pop: O(1) however many patterns share this prefix.
    const std::size_t position = found->second.position;
    n.patterns[position] = n.patterns.back();
    n.patterns[position]->second.position = position;
    n.patterns.pop_back();
    entries_.erase(found);
    for (std::size_t depth = prefix.size(); depth > 0 && path[depth]->empty(); --depth) {
      path[depth - 1]->remove_child(static_cast<unsigned char>(prefix[depth - 1]));
    }
    return true;
  }

  /// Calls `f(std::string_view pattern, T& value)` for every pattern that matches `topic` (by `glob_match`),
  /// in no particular order, and returns how many it called. `f` must not add or erase patterns.
  template <class F>
  std::size_t for_each_match(std::string_view topic, F&& f) {
    std::size_t matched = 0;
    const node* n = &root_;
    for (std::size_t depth = 0;; ++depth) {
      for (entry* e : n->patterns) {
        if (glob_match(e->first, topic)) {
          std::invoke(f, std::string_view(e->first), e->second.value);
          ++matched;
        }
      }
      if (depth == topic.size()) break;
      n = n->child(static_cast<unsigned char>(topic[depth]));
      if (n == nullptr) break;
    }
    return matched;
  }

  /// Calls `f(std::string_view pattern, const T& value)` for every pattern, in no particular order.
  template <class F>
  void for_each(F&& f) const {
    for (const auto& [pattern, s] : entries_) std::invoke(f, std::string_view(pattern), s.value);
  }

  /// Number of patterns.
  std::size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }

 private:
  struct slot {
    template <class... Args>
    explicit slot(Args&&... args) : value(std::forward<Args>(args)...) {}
    T value;
    std::size_t position = 0;  // index of this entry in its node's `patterns`
  };


  using map_type = switchboard::detail::string_map<slot>;
  using entry = typename map_type::value_type;  // stays at one address until erased

  struct node {
    std::vector<std::pair<unsigned char, std::unique_ptr<node>>> children;  // sorted by byte
    std::vector<entry*> patterns;  // the patterns whose literal prefix ends here

    node() = default;
    node(node&&) noexcept = default;
    node& operator=(node&&) noexcept = default;

    /// Frees the subtree without a stack frame per level: a pattern's literal prefix is as long as
    /// `broker_options::max_topic_length` allows, and its chain of nodes as deep, so destroying the children
    /// recursively could exhaust the stack. Once one child is left, this node takes that child's children as its own
    /// (a swap of vectors: no allocation, which a destructor must not risk) and frees the child, childless by then.
    /// Only a child with siblings still to free is freed recursively, so the recursion is as deep as the branches on
    /// a path from here (nodes with more than one child), not as the path is long: each nested recursion leaves behind
    /// a sibling subtree holding a pattern longer than that branch's depth, so `k` of them take k distinct patterns
    /// of more than k²/2 bytes in all.
    ~node() {
      while (!children.empty()) {
        if (children.size() > 1) {
          children.pop_back();
          continue;
        }
        std::unique_ptr<node> only = std::move(children.front().second);
        children.clear();
        children.swap(only->children);  // `only`, childless now, is freed at the end of this iteration
      }
    }

    bool empty() const noexcept { return children.empty() && patterns.empty(); }

    auto lower_bound(unsigned char c) const noexcept {
      return std::lower_bound(children.begin(), children.end(), c,
                              [](const auto& child, unsigned char x) { return child.first < x; });
    }
    node* child(unsigned char c) const noexcept {
      const auto it = lower_bound(c);
      return it != children.end() && it->first == c ? it->second.get() : nullptr;
    }
    node& child_or_add(unsigned char c) {
      auto it = lower_bound(c);
      if (it == children.end() || it->first != c) it = children.emplace(it, c, std::make_unique<node>());
      return *it->second;
    }
    /// Frees the child for `c` and its subtree, if there is one.
    void remove_child(unsigned char c) noexcept {
      const auto it = lower_bound(c);
      if (it != children.end() && it->first == c) children.erase(it);
    }
  };

  map_type entries_;
  node root_;
};

}  // namespace switchboard::pubsub
