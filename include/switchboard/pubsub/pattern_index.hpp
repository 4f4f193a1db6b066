// switchboard/pubsub/pattern_index.hpp
//
// A map from glob patterns (PSUBSCRIBE patterns, glob.hpp) to values, that finds the patterns matching a topic
// without trying them all. Redis tries every pattern on every PUBLISH; with thousands of patterns such as
// `sensors.<room>.*`, most of that work is spent on patterns that cannot match.
//
// Every subject a pattern matches starts with the pattern's literal prefix (the bytes before its first `*`, `?`,
// `[` or `\`). The index keeps the patterns in a radix trie keyed by those prefixes, each edge labelled with a run
// of bytes: looking up a topic walks the trie along the topic, comparing each of its bytes with one edge's label
// at most, and runs `glob_match` only on the patterns met on the way, that is, those whose literal prefix is a
// prefix of the topic. A pattern whose prefix diverges from the topic costs nothing; patterns with an empty prefix
// (`*foo`) are tried on every topic, as they must be.
//
// Memory grows with the patterns' bytes: a pattern costs its text (the map's key), the bytes of its literal prefix
// that no other pattern's prefix shares (an edge's label), and at most two trie nodes (its own, and one where its
// prefix branches off another's), for a pattern of 1,024 bytes about 2.3 KB of heap (see
// `broker_options::max_topic_length`). Erasing a pattern frees its node, or merges it with its only child, so that
// memory returns as patterns go.
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
    // Down as far as the trie spells the prefix: to the node where the prefix ends (`depth == prefix.size()`), or
    // to where it leaves the trie, either after node `n` (no edge from it starts with the next byte) or `common`
    // bytes into the edge `inside`.
    node* n = &root_;
    std::size_t depth = 0;
    child* inside = nullptr;
    std::size_t common = 0;
    while (depth < prefix.size()) {
      child* c = n->find(static_cast<unsigned char>(prefix[depth]));
      if (c == nullptr) break;
      const std::string& label = c->second->label;
      common = shared_length(label, prefix.substr(depth));
      if (common < label.size()) {
        inside = c;
        break;
      }
      n = c->second.get();
      depth += common;
    }
    // Everything that can throw (new nodes and their labels, room in a node's lists, the map's entry and its value)
    // comes before what cannot be undone, and the catch removes what this call added: otherwise a throw could leave
    // the entry in the map but not in the trie (found by `find`, never matched, and a later `erase` would pop from
    // an empty list). A split edge is built aside, as `fork`, and put in place only once nothing can throw.
    std::unique_ptr<node> fork;
    node* target = n;  // the node that gets the pattern
    bool leaf_linked = false;
    bool room = false;
    try {
      if (inside != nullptr) {
        fork = std::make_unique<node>(prefix.substr(depth, common));
        fork->children.reserve(2);  // the edge's lower part and perhaps a new leaf: split_edge cannot allocate
        target = fork.get();
        if (depth + common < prefix.size()) target = &fork->add_child(prefix.substr(depth + common));
      } else if (depth < prefix.size()) {
        target = &n->add_child(prefix.substr(depth));
        leaf_linked = true;
      }
      target->patterns.push_back(nullptr);  // the room, filled once the entry exists
      room = true;
      entry* e = &*entries_.try_emplace(std::string(pattern), std::forward<Args>(args)...).first;
      if (fork) split_edge(*inside, common, std::move(fork));
      e->second.position = target->patterns.size() - 1;
      target->patterns.back() = e;
      return {e->second.value, true};
    } catch (...) {
      if (leaf_linked) {
        n->remove_child(static_cast<unsigned char>(prefix[depth]));
      } else if (room && inside == nullptr) {
        n->patterns.pop_back();
      }  // else what was made is in `fork`, freed with it
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

  /// Removes `pattern` and its value; false if it was absent. The trie keeps no node that neither holds a pattern
  /// nor branches, so an index that sees patterns come and go does not grow. Strong guarantee: if the one
  /// allocation it may make (joining two edges' labels) throws, the index is as it was.
  bool erase(std::string_view pattern) {
    const auto found = entries_.find(pattern);
    if (found == entries_.end()) return false;
    const std::string_view prefix = glob_literal_prefix(pattern);
    // Down to the pattern's node `n`, keeping the edges to it and to its parent: without the pattern, `n` may be
    // left with no pattern and no child (freed) or one child (merged with it), and its parent with no pattern and
    // one child (merged with that child).
    node* parent = nullptr;
    node* n = &root_;
    child* to_n = nullptr;
    child* to_parent = nullptr;
    for (std::size_t depth = 0; depth < prefix.size(); depth += n->label.size()) {
      to_parent = to_n;
      to_n = n->find(static_cast<unsigned char>(prefix[depth]));
      parent = n;
      n = to_n->second.get();
    }
    const bool last = n->patterns.size() == 1 && n != &root_;
    const bool free_n = last && n->children.empty();
    child* merged = nullptr;  // the edge to a node to merge with its only child
    if (last && n->children.size() == 1) {
      merged = to_n;
    } else if (free_n && parent != &root_ && parent->patterns.empty() && parent->children.size() == 2) {
      merged = to_parent;
    }
    // The merged label is made before anything changes (it is the only allocation).
    std::string label;
    if (merged != nullptr) {
      const node& upper = *merged->second;
      const node& lower = *upper.children[upper.children[0].second.get() == n ? 1 : 0].second;
      label.reserve(upper.label.size() + lower.label.size());
      label.append(upper.label).append(lower.label);
    }
    // Swap-and-pop: O(1) however many patterns share this prefix.
    const std::size_t position = found->second.position;
    n->patterns[position] = n->patterns.back();
    n->patterns[position]->second.position = position;
    n->patterns.pop_back();
    entries_.erase(found);
    if (free_n) parent->remove_child(to_n->first);
    if (merged != nullptr) merge_with_child(*merged, std::move(label));
    return true;
  }

  /// Calls `f(std::string_view pattern, T& value)` for every pattern that matches `topic` (by `glob_match`),
  /// in no particular order, and returns how many it called. `f` must not add or erase patterns.
  template <class F>
  std::size_t for_each_match(std::string_view topic, F&& f) {
    std::size_t matched = 0;
    node* n = &root_;
    for (std::size_t depth = 0;;) {
      for (entry* e : n->patterns) {
        if (glob_match(e->first, topic)) {
          std::invoke(f, std::string_view(e->first), e->second.value);
          ++matched;
        }
      }
      if (depth == topic.size()) break;
      child* c = n->find(static_cast<unsigned char>(topic[depth]));
      if (c == nullptr || !topic.substr(depth).starts_with(c->second->label)) break;
      n = c->second.get();
      depth += n->label.size();
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

  struct node;
  using child = std::pair<unsigned char, std::unique_ptr<node>>;  // the first byte of the child's label, the child

  // A node of a radix trie: the edge from its parent carries a whole run of prefix bytes (`label`), so that a
  // prefix costs one node however long it is, plus one where it branches off another.
  struct node {
    std::string label;             // the bytes on the edge from the parent: never empty, but at the root
    std::vector<child> children;   // sorted by byte, at most one per byte
    std::vector<entry*> patterns;  // the patterns whose literal prefix ends here

    node() = default;
    explicit node(std::string_view l) : label(l) {}
    node(node&&) noexcept = default;
    node& operator=(node&&) noexcept = default;

    /// Frees the subtree without a stack frame per level: a chain of nodes can be as deep as there are patterns
    /// each extending the last (`a*`, `aa*`, `aaa*`...), so destroying the children recursively could exhaust the
    /// stack. Once one child is left, this node takes that child's children as its own (a swap of vectors: no
    /// allocation, which a destructor must not risk) and frees the child, childless by then. Only a child with
    /// siblings still to free is freed recursively, so the recursion is as deep as the branches on a path from
    /// here (nodes with more than one child), not as the path is long: each nested recursion leaves behind a
    /// sibling subtree holding a pattern longer than that branch's depth, so `k` of them take k distinct patterns
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

    auto lower_bound(unsigned char c) noexcept {
      return std::lower_bound(children.begin(), children.end(), c,
                              [](const child& x, unsigned char y) { return x.first < y; });
    }
    /// The edge starting with `c`, or nullptr.
    child* find(unsigned char c) noexcept {
      const auto it = lower_bound(c);
      return it != children.end() && it->first == c ? &*it : nullptr;
    }
    /// Adds `n` as a child; no other edge may start with its label's first byte. Allocates only when `children`
    /// is full.
    node& add_child(std::unique_ptr<node> n) {
      const auto c = static_cast<unsigned char>(n->label.front());
      return *children.emplace(lower_bound(c), c, std::move(n))->second;
    }
    node& add_child(std::string_view l) { return add_child(std::make_unique<node>(l)); }
    /// Frees the child for `c` and its subtree, if there is one.
    void remove_child(unsigned char c) noexcept {
      const auto it = lower_bound(c);
      if (it != children.end() && it->first == c) children.erase(it);
    }
  };

  /// How many bytes `a` and `b` start with in common.
  static std::size_t shared_length(std::string_view a, std::string_view b) noexcept {
    const std::size_t n = std::min(a.size(), b.size());
    return static_cast<std::size_t>(std::mismatch(a.begin(), a.begin() + n, b.begin()).first - a.begin());
  }

  /// Puts `fork`, labelled with the first `common` bytes of the edge's label and with room for two children,
  /// between the edge's node and its parent.
  static void split_edge(child& edge, std::size_t common, std::unique_ptr<node> fork) noexcept {
    std::unique_ptr<node> lower = std::move(edge.second);
    lower->label.erase(0, common);
    fork->add_child(std::move(lower));  // into the room reserved: no allocation
    edge.second = std::move(fork);      // `edge.first` stays: the fork's label starts with the same byte
  }

  /// Replaces the node at `edge`, which holds no pattern and has one child, by that child, labelled with both their
  /// labels (`label`, made beforehand).
  static void merge_with_child(child& edge, std::string label) noexcept {
    std::unique_ptr<node> lower = std::move(edge.second->children.front().second);
    edge.second->children.clear();
    lower->label = std::move(label);
    edge.second = std::move(lower);  // frees the upper node, childless by then
  }

  map_type entries_;
  node root_;
};

}  // namespace switchboard::pubsub
