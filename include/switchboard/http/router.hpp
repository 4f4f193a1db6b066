// switchboard/http/router.hpp
//
// `router`: maps a method and a path to a handler.
//
//   router r;
//   r.get("/users/{id:int}", [](request& req) { return response::json({{"id", req.param_as<int>("id")}}); });
//   r.get("/files/{path...}", serve_file);
//   auto api = r.group("/api");
//   api.before(require_token);
//   api.post("/jobs", submit_job).body_limit(8 * 1024 * 1024);
//
// Templates: literal segments, `{name}` (any one segment), `{name:int}` (an optional '-' and digits that fit in
// 64 bits), `{name:uint}` (digits), and a final `{name...}` (the rest of the path, one or more segments). At each
// segment a literal beats a typed parameter (uint before int), which beats an untyped one, which beats a catch-all;
// the search backtracks when a branch fails further down. The path picks the template, then the method picks its
// handler: a method that the best template lacks is a 405 even where a less specific template has it.
//
// Lookup walks one trie node per path segment, with a hash lookup for literals, so its cost depends on the path's
// length, not on the number of routes. Paths are split on '/' before percent-decoding (so "%2F" stays inside one
// segment); a malformed escape, an encoded NUL or a "." or ".." segment is answered 400, and so is a segment that
// "%2F" splits into pieces one of which is "." or ".." ("..%2Fetc"), since a parameter would hold "../etc", or that
// begins with "%2F" ("%2Fetc"), since a parameter would hold the absolute path "/etc".
//
// Answers the router gives itself: 404 (no route for the path), 405 with `Allow` (the path exists for other
// methods), HEAD through the GET handler (the server sends no body), OPTIONS with `Allow` (204) unless the path
// has its own OPTIONS handler. All as `application/problem+json` where there is a body.
//
// Not thread-safe to modify: add every route before the server starts. The router must outlive the server.
#pragma once

#include <switchboard/core/detail/string_map.hpp>
#include <switchboard/http/handler.hpp>
#include <switchboard/http/method.hpp>
#include <switchboard/http/request.hpp>
#include <switchboard/http/response.hpp>
#include <switchboard/http/url.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace switchboard::http {

/// Runs before a handler; returning a response answers the request without the handler (authentication,
/// rate limits, ...). Runs on the connection's executor.
using before_middleware = std::function<std::optional<response>(request&)>;
/// Runs after a handler (or a short-circuiting before-middleware), on the response about to be sent.
using after_middleware = std::function<void(request&, response&)>;

class router;

/// A set of routes sharing a path prefix and middleware. Groups nest. Cheap handle: copies refer to the same group.
class route_group;

/// One registered route. The options set here override the server's defaults for this route only.
class route {
 public:
  /// The largest body this route accepts (413 above it); default: the server's `parser_limits::max_body`.
  route& body_limit(std::uint64_t bytes) noexcept {
    body_limit_ = bytes;
    return *this;
  }
  /// Calls the handler after the header, before the body: the handler reads it with `request::async_read_some`
  /// (uploads larger than memory). Use with a coroutine or deferred handler.
  route& stream_body(bool on = true) noexcept {
    stream_body_ = on;
    return *this;
  }
  route& before(before_middleware m) {
    before_.push_back(std::move(m));
    return *this;
  }
  route& after(after_middleware m) {
    after_.push_back(std::move(m));
    return *this;
  }

  std::optional<std::uint64_t> body_limit() const noexcept { return body_limit_; }
  bool streams_body() const noexcept { return stream_body_; }
  const std::string& pattern() const noexcept { return pattern_; }
  const handler_fn& handler() const noexcept { return handler_; }

  /// Runs the before-middleware chain, outermost group first. Returns a response if one short-circuited.
  std::optional<response> run_before(request& req) const;
  /// Runs the after-middleware chain, innermost first (the route's own, then its groups', then the router's).
  void run_after(request& req, response& res) const;
  /// True when any after-middleware applies to this route (its own, its groups' or the router's).
  bool has_after() const noexcept;

 private:
  friend class router;
  friend class route_group;
  struct group_data;
  static std::optional<response> run_group_before(const group_data* g, request& req);
  route(std::string pattern, handler_fn h, std::shared_ptr<group_data> group)
      : pattern_(std::move(pattern)), handler_(std::move(h)), group_(std::move(group)) {}

  std::string pattern_;
  handler_fn handler_;
  std::shared_ptr<group_data> group_;
  std::optional<std::uint64_t> body_limit_;
  bool stream_body_ = false;
  std::vector<before_middleware> before_;
  std::vector<after_middleware> after_;
};

struct route::group_data {
  std::string prefix;
  std::shared_ptr<group_data> parent;
  std::vector<before_middleware> before;
  std::vector<after_middleware> after;
};

inline std::optional<response> route::run_group_before(const group_data* g, request& req) {
  // Outermost first: the parent's chain (the router's at the top) runs before the group's own. Recursion rather
  // than a fixed-size array of the chain, which dropped the outermost groups (the router's authentication, say)
  // of a route nested deeper than its size, without a word.
  if (g == nullptr) return std::nullopt;
  if (auto r = run_group_before(g->parent.get(), req)) return r;
  for (const auto& m : g->before) {
    if (auto r = m(req)) return r;
  }
  return std::nullopt;
}

inline std::optional<response> route::run_before(request& req) const {
  if (auto r = run_group_before(group_.get(), req)) return r;
  for (const auto& m : before_) {
    if (auto r = m(req)) return r;
  }
  return std::nullopt;
}

inline void route::run_after(request& req, response& res) const {
  for (const auto& m : after_) m(req, res);
  for (const group_data* g = group_.get(); g != nullptr; g = g->parent.get()) {
    for (const auto& m : g->after) m(req, res);
  }
}

inline bool route::has_after() const noexcept {
  if (!after_.empty()) return true;
  for (const group_data* g = group_.get(); g != nullptr; g = g->parent.get()) {
    if (!g->after.empty()) return true;
  }
  return false;
}

/// The result of a lookup.
struct route_match {
  enum class kind : std::uint8_t {
    found,              ///< `matched` handles the request.
    not_found,          ///< No route for the path: 404.
    method_not_allowed, ///< The path has routes for other methods (`allow`): 405.
    options,            ///< OPTIONS on a path without its own OPTIONS handler: 204 with `allow`.
    bad_path,           ///< Malformed percent-encoding, an encoded NUL or a dot segment: 400.
  };
  kind result = kind::not_found;
  const http::route* matched = nullptr;
  /// For 405 and OPTIONS: the methods the path has, as an `Allow` field value.
  std::string allow;
};

namespace detail {

enum class param_type : std::uint8_t { any, int64, uint64 };

// The order in which parameters at one segment are tried (at most one of each type).
constexpr int param_rank(param_type t) noexcept {
  return t == param_type::uint64 ? 0 : t == param_type::int64 ? 1 : 2;
}

inline bool matches_type(param_type t, std::string_view v) noexcept {
  switch (t) {
    case param_type::any: return true;
    case param_type::int64: {
      std::int64_t x;
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
      return !v.empty() && ec == std::errc() && end == v.data() + v.size();
    }
    case param_type::uint64: {
      std::uint64_t x;
      if (v.empty() || v.front() == '-') return false;
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
      return ec == std::errc() && end == v.data() + v.size();
    }
  }
  return false;
}

// True when `s`, split on '/', has a "." or ".." piece (a dot-segment, RFC 3986 §3.3). A decoded segment holds a
// '/' only where the request had "%2F", and "..%2F..%2Fetc" must not reach a handler as "../../etc": a catch-all
// joins its segments with '/', so a file handler could not tell that value from a traversal the router refused.
inline bool has_dot_segment(std::string_view s) noexcept {
  for (;;) {
    const std::size_t slash = s.find('/');
    const std::string_view piece = s.substr(0, slash);
    if (piece == "." || piece == "..") return true;
    if (slash == std::string_view::npos) return false;
    s.remove_prefix(slash + 1);
  }
}

struct route_node {
  struct param_edge {
    std::string name;
    param_type type;
    std::unique_ptr<route_node> child;
  };

  switchboard::detail::string_map<std::unique_ptr<route_node>> literals;
  std::vector<param_edge> params;  // typed ones first
  std::string catch_all_name;      // non-empty when this node has a `{name...}` child
  std::unique_ptr<route_node> catch_all;
  std::array<route*, method_count> by_method{};
  std::map<std::string, route*, std::less<>> by_extension_method;

  bool has_routes() const noexcept {
    for (const route* r : by_method) {
      if (r != nullptr) return true;
    }
    return !by_extension_method.empty();
  }
};

}  // namespace detail

class route_group {
 public:
  route& add(method m, std::string_view pattern, handler_fn h);
  /// A route for an extension method (e.g. "PROPFIND").
  route& add(std::string_view method_token, std::string_view pattern, handler_fn h);

  template <class F>
  route& get(std::string_view pattern, F f) { return add(method::get, pattern, make_handler(std::move(f))); }
  template <class F>
  route& head(std::string_view pattern, F f) { return add(method::head, pattern, make_handler(std::move(f))); }
  template <class F>
  route& post(std::string_view pattern, F f) { return add(method::post, pattern, make_handler(std::move(f))); }
  template <class F>
  route& put(std::string_view pattern, F f) { return add(method::put, pattern, make_handler(std::move(f))); }
  template <class F>
  route& patch(std::string_view pattern, F f) { return add(method::patch, pattern, make_handler(std::move(f))); }
  template <class F>
  route& del(std::string_view pattern, F f) { return add(method::delete_, pattern, make_handler(std::move(f))); }
  template <class F>
  route& options(std::string_view pattern, F f) { return add(method::options, pattern, make_handler(std::move(f))); }

  /// Middleware for every route of this group (and its subgroups), added before or after routes alike.
  route_group& before(before_middleware m) {
    data_->before.push_back(std::move(m));
    return *this;
  }
  route_group& after(after_middleware m) {
    data_->after.push_back(std::move(m));
    return *this;
  }
  /// A subgroup under `prefix` (relative to this group's): empty, or starting with '/' (else std::invalid_argument:
  /// `group("/api").group("v1")` would serve "/apiv1").
  route_group group(std::string_view prefix) {
    if (!prefix.empty() && prefix.front() != '/') {
      throw std::invalid_argument("switchboard::http::router: a group prefix must start with '/': " +
                                  std::string(prefix));
    }
    auto sub = std::make_shared<route::group_data>();
    sub->prefix = data_->prefix + std::string(prefix);
    sub->parent = data_;
    return route_group(*router_, std::move(sub));
  }

 private:
  friend class router;
  route_group(router& r, std::shared_ptr<route::group_data> data) : router_(&r), data_(std::move(data)) {}
  router* router_;
  std::shared_ptr<route::group_data> data_;
};

class router {
 public:
  router() : root_group_(std::make_shared<route::group_data>()) {}
  router(const router&) = delete;
  router& operator=(const router&) = delete;

  /// The top-level group: routes and middleware for everything.
  route_group& routes() noexcept { return top_; }

  /// A route for a standard method; `method::other` throws (use `routes().add(token, ...)`): it has no token, and
  /// would put an empty name in `Allow`.
  route& add(method m, std::string_view pattern, handler_fn h) { return top_.add(m, pattern, std::move(h)); }
  template <class F>
  route& get(std::string_view pattern, F f) { return top_.get(pattern, std::move(f)); }
  template <class F>
  route& head(std::string_view pattern, F f) { return top_.head(pattern, std::move(f)); }
  template <class F>
  route& post(std::string_view pattern, F f) { return top_.post(pattern, std::move(f)); }
  template <class F>
  route& put(std::string_view pattern, F f) { return top_.put(pattern, std::move(f)); }
  template <class F>
  route& patch(std::string_view pattern, F f) { return top_.patch(pattern, std::move(f)); }
  template <class F>
  route& del(std::string_view pattern, F f) { return top_.del(pattern, std::move(f)); }
  template <class F>
  route& options(std::string_view pattern, F f) { return top_.options(pattern, std::move(f)); }
  router& before(before_middleware m) {
    top_.before(std::move(m));
    return *this;
  }
  router& after(after_middleware m) {
    top_.after(std::move(m));
    return *this;
  }
  route_group group(std::string_view prefix) { return top_.group(prefix); }

  /// Finds the route for `req`'s method and path, and fills the request's route parameters.
  route_match match(request& req) const {
    route_match out;
    const std::string_view raw_path = req.path();
    if (raw_path.empty() || raw_path.front() != '/') {
      // asterisk-form ("OPTIONS *") and authority-form (CONNECT) address the server, not a route.
      if (req.method() == method::options && raw_path == "*") {
        out.result = route_match::kind::options;
        out.allow = allow_list(all_methods_);
      }
      return out;
    }
    // Decode the segments into the request's storage, joined by '/', and remember where each one is.
    std::string& storage = req.decoded_storage();
    storage.clear();
    storage.reserve(raw_path.size());
    std::array<std::string_view, max_segments> segments;
    std::size_t count = 0;
    std::string_view rest = raw_path.substr(1);
    for (;;) {
      if (count == max_segments) return out;  // deeper than any route: 404
      const std::size_t slash = rest.find('/');
      const std::string_view raw = rest.substr(0, slash);
      const std::size_t begin = storage.size();
      const bool escaped = raw.find('%') != std::string_view::npos;
      if (!escaped) {
        storage.append(raw);
      } else if (!percent_decode(raw, storage) || storage.find('\0', begin) != std::string::npos) {
        out.result = route_match::kind::bad_path;
        return out;
      }
      const std::string_view decoded(storage.data() + begin, storage.size() - begin);
      // Only a decoded segment can hold a '/' (from "%2F"), so only it needs splitting to look for dot-segments, and
      // only it can begin with one: a value "/etc" would take a file handler's `root / value` out of its root.
      if (escaped ? decoded.starts_with('/') || detail::has_dot_segment(decoded) : (decoded == "." || decoded == "..")) {
        out.result = route_match::kind::bad_path;
        return out;
      }
      segments[count++] = decoded;
      if (slash == std::string_view::npos) break;
      storage.push_back('/');
      rest.remove_prefix(slash + 1);
    }
    auto& params = req.mutable_params();
    params.clear();
    const detail::route_node* node = find(&root_, segments.data(), count, params);
    if (node == nullptr) return out;
    const route* r = nullptr;
    if (req.method() == method::other) {
      auto it = node->by_extension_method.find(req.method_string());
      r = it == node->by_extension_method.end() ? nullptr : it->second;
    } else {
      r = node->by_method[static_cast<std::size_t>(req.method())];
      if (r == nullptr && req.method() == method::head) r = node->by_method[static_cast<std::size_t>(method::get)];
    }
    if (r != nullptr) {
      out.result = route_match::kind::found;
      out.matched = r;
      return out;
    }
    out.allow = allow_list(*node);
    out.result = req.method() == method::options ? route_match::kind::options : route_match::kind::method_not_allowed;
    return out;
  }

  /// The deepest path (in segments) a route may have and a request may be matched against.
  static constexpr std::size_t max_segments = 64;

 private:
  friend class route_group;

  route& insert(method m, std::string_view token, std::string_view pattern, handler_fn h,
                const std::shared_ptr<route::group_data>& group) {
    const std::string full = group->prefix + std::string(pattern);
    // In a group too: `api.get("users", ...)` would serve "/apiusers". (An empty pattern is the group's own path.)
    if (full.empty() || full.front() != '/' || (!pattern.empty() && pattern.front() != '/')) {
      throw std::invalid_argument("switchboard::http::router: a route must start with '/': " + full);
    }
    // Each parameter name once: `request::param(name)` gives the first value, so a second one (a group's "/{id}"
    // before a route's "/{id}") could never be read.
    std::vector<std::string_view> names;
    for (std::string_view rest = std::string_view(full).substr(1);;) {
      const std::size_t slash = rest.find('/');
      std::string_view name = rest.substr(0, slash);
      if (name.size() >= 2 && name.front() == '{' && name.back() == '}') {
        name = name.substr(1, name.size() - 2);
        name = name.substr(0, name.find(':'));
        if (name.size() >= 3 && name.substr(name.size() - 3) == "...") name.remove_suffix(3);
        if (std::find(names.begin(), names.end(), name) != names.end()) {
          throw std::invalid_argument("switchboard::http::router: a parameter name used twice: " + full);
        }
        names.push_back(name);
      }
      if (slash == std::string_view::npos) break;
      rest.remove_prefix(slash + 1);
    }
    // Two walks: the first only checks (syntax, conflicts, duplicates) and throws before anything changes; the
    // second adds the nodes. A refused route must leave no trace: a parameter edge left by a route refused at a
    // later segment would make a valid route registered afterwards conflict with nothing the user registered.
    detail::route_node* node = nullptr;
    for (const bool create : {false, true}) {
      node = &root_;
      std::string_view rest = std::string_view(full).substr(1);
      std::size_t depth = 0;
      for (;;) {
        if (++depth > max_segments) throw std::invalid_argument("switchboard::http::router: route too deep: " + full);
        const std::size_t slash = rest.find('/');
        const std::string_view segment = rest.substr(0, slash);
        node = descend(node, segment, slash == std::string_view::npos, full, create);
        if (slash == std::string_view::npos) break;
        rest.remove_prefix(slash + 1);
      }
      if (!create && node != nullptr) {
        const bool taken = m == method::other ? node->by_extension_method.count(token) != 0
                                              : node->by_method[static_cast<std::size_t>(m)] != nullptr;
        if (taken) {
          throw std::invalid_argument("switchboard::http::router: route registered twice: " +
                                      (m == method::other ? std::string(token) : std::string(to_string(m))) + " " + full);
        }
      }
    }
    auto owned = std::unique_ptr<route>(new route(full, std::move(h), group));
    route* r = owned.get();
    route*& slot = m == method::other ? node->by_extension_method[std::string(token)]
                                      : node->by_method[static_cast<std::size_t>(m)];
    slot = r;
    // OPTIONS * lists every method some route has (RFC 9110 §9.3.7: it asks about the server in general).
    route*& any = m == method::other ? all_methods_.by_extension_method[std::string(token)]
                                     : all_methods_.by_method[static_cast<std::size_t>(m)];
    any = r;
    routes_.push_back(std::move(owned));
    return *r;
  }

  // The child of `node` for one template segment. With `create` false it only checks, and returns the existing
  // child or nullptr (`node` may then be nullptr: below a node the route would add, nothing can conflict).
  static detail::route_node* descend(detail::route_node* node, std::string_view segment, bool last,
                                     const std::string& full, bool create) {
    if (segment.size() >= 2 && segment.front() == '{' && segment.back() == '}') {
      std::string_view inner = segment.substr(1, segment.size() - 2);
      if (inner.size() >= 3 && inner.substr(inner.size() - 3) == "...") {
        if (!last) throw std::invalid_argument("switchboard::http::router: {name...} must be last: " + full);
        const std::string name(inner.substr(0, inner.size() - 3));
        // "{...}" is a catch-all without a name, not a one-segment parameter named "...".
        if (name.empty()) throw std::invalid_argument("switchboard::http::router: unnamed parameter: " + full);
        // "{rest:int...}" would register a catch-all named "rest:int" that `param("rest")` never finds.
        if (name.find(':') != std::string::npos) {
          throw std::invalid_argument("switchboard::http::router: a {name...} takes no type: " + full);
        }
        if (node != nullptr && node->catch_all && node->catch_all_name != name) {
          throw std::invalid_argument("switchboard::http::router: conflicting catch-all names: " + full);
        }
        if (!create) return node != nullptr ? node->catch_all.get() : nullptr;
        node->catch_all_name = name;
        if (!node->catch_all) node->catch_all = std::make_unique<detail::route_node>();
        return node->catch_all.get();
      }
      detail::param_type type = detail::param_type::any;
      const std::size_t colon = inner.find(':');
      if (colon != std::string_view::npos) {
        const std::string_view t = inner.substr(colon + 1);
        if (t == "int") type = detail::param_type::int64;
        else if (t == "uint") type = detail::param_type::uint64;
        else throw std::invalid_argument("switchboard::http::router: unknown parameter type '" + std::string(t) + "': " + full);
        inner = inner.substr(0, colon);
      }
      if (inner.empty()) throw std::invalid_argument("switchboard::http::router: unnamed parameter: " + full);
      if (node != nullptr) {
        for (auto& p : node->params) {
          if (p.type == type) {
            if (p.name != inner) {
              throw std::invalid_argument("switchboard::http::router: conflicting parameter names at one position: " +
                                          full);
            }
            return p.child.get();
          }
        }
      }
      if (!create) return nullptr;
      node->params.push_back({std::string(inner), type, std::make_unique<detail::route_node>()});
      // Typed parameters are tried before untyped ones, and uint before int: "5" fits both, so a fixed order keeps
      // the choice from depending on which route was registered first.
      std::sort(node->params.begin(), node->params.end(),
                [](const auto& a, const auto& b) { return detail::param_rank(a.type) < detail::param_rank(b.type); });
      for (auto& p : node->params) {
        if (p.name == inner && p.type == type) return p.child.get();
      }
    }
    if (segment.find_first_of("{}") != std::string_view::npos) {
      throw std::invalid_argument("switchboard::http::router: a parameter must be a whole segment: " + full);
    }
    // Literal segments are matched against decoded request segments, so they are stored decoded too.
    const std::optional<std::string> decoded = percent_decode(segment);
    if (!decoded) throw std::invalid_argument("switchboard::http::router: bad escape in route: " + full);
    if (!create) {
      if (node == nullptr) return nullptr;
      const auto it = node->literals.find(*decoded);
      return it == node->literals.end() ? nullptr : it->second.get();
    }
    auto& child = node->literals[*decoded];
    if (!child) child = std::make_unique<detail::route_node>();
    return child.get();
  }

  static const detail::route_node* find(const detail::route_node* node, const std::string_view* segments,
                                        std::size_t count, std::vector<route_param>& params) {
    if (count == 0) return node->has_routes() ? node : nullptr;
    const std::string_view segment = segments[0];
    if (auto it = node->literals.find(segment); it != node->literals.end()) {
      if (const auto* found = find(it->second.get(), segments + 1, count - 1, params)) return found;
    }
    for (const auto& p : node->params) {
      if (segment.empty() || !detail::matches_type(p.type, segment)) continue;
      params.push_back({p.name, segment});
      if (const auto* found = find(p.child.get(), segments + 1, count - 1, params)) return found;
      params.pop_back();
    }
    if (node->catch_all && node->catch_all->has_routes() && !segment.empty()) {
      // The rest of the path: the segments are contiguous in the decoded storage, joined by '/'.
      const std::string_view last = segments[count - 1];
      params.push_back({node->catch_all_name,
                        std::string_view(segment.data(), static_cast<std::size_t>(last.data() + last.size() - segment.data()))});
      return node->catch_all.get();
    }
    return nullptr;
  }

  static std::string allow_list(const detail::route_node& node) {
    std::string allow;
    auto append = [&](std::string_view m) {
      if (!allow.empty()) allow += ", ";
      allow += m;
    };
    for (std::size_t i = 0; i < method_count; ++i) {
      if (node.by_method[i] == nullptr) continue;
      append(to_string(static_cast<method>(i)));
      if (static_cast<method>(i) == method::get && node.by_method[static_cast<std::size_t>(method::head)] == nullptr) {
        append("HEAD");
      }
    }
    for (const auto& [token, r] : node.by_extension_method) append(token);
    if (node.by_method[static_cast<std::size_t>(method::options)] == nullptr) append("OPTIONS");
    return allow;
  }

  detail::route_node root_;
  detail::route_node all_methods_;  // only its method tables: the union over every route, for OPTIONS *
  std::vector<std::unique_ptr<route>> routes_;
  std::shared_ptr<route::group_data> root_group_;
  route_group top_{*this, root_group_};
};

inline route& route_group::add(method m, std::string_view pattern, handler_fn h) {
  if (m == method::other) throw std::invalid_argument("switchboard::http::router: use add(token, ...) for extension methods");
  return router_->insert(m, {}, pattern, std::move(h), data_);
}

inline route& route_group::add(std::string_view method_token, std::string_view pattern, handler_fn h) {
  const method m = to_method(method_token);
  if (m == method::other && !detail::is_token(method_token)) {
    throw std::invalid_argument("switchboard::http::router: method is not a token");
  }
  return router_->insert(m, method_token, pattern, std::move(h), data_);
}

}  // namespace switchboard::http
