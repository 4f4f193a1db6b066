// A seeded model test of the router and of the URL helpers it uses: random route tables (literals sharing prefixes,
// typed and untyped parameters at every depth, catch-alls, several methods per path, nested groups with prefixes
// and middleware, registrations that must be refused) and random requests (matches, near misses, trailing slashes,
// empty and dot segments, every kind of escape, non-ASCII bytes, deep and long paths, unknown methods), each
// compared with a reference written here from the documentation and the RFCs: a linear scan over the registered
// templates that applies the documented precedence, an RFC 3986 §2.1 percent-decoder, and a query parser after
// the WHATWG application/x-www-form-urlencoded rules.
#include <switchboard/http/router.hpp>

#include "support/catch.hpp"
#include "support/fake_request.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace switchboard::http;
using switchboard::test::fake_request;

namespace {

// ---- Reference decoding (RFC 3986 §2.1: pct-encoded = "%" HEXDIG HEXDIG; anything else after '%' is malformed) --

int ref_hex(char c) {
  const std::string_view digits = "0123456789abcdef";
  const char lower = (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
  const std::size_t at = digits.find(lower);
  return at == std::string_view::npos || c == '\0' ? -1 : static_cast<int>(at);
}

std::optional<std::string> ref_decode(std::string_view in, bool plus_as_space) {
  std::string out;
  std::size_t i = 0;
  while (i < in.size()) {
    if (in[i] == '%') {
      if (in.size() - i < 3 || ref_hex(in[i + 1]) < 0 || ref_hex(in[i + 2]) < 0) return std::nullopt;
      out += static_cast<char>(ref_hex(in[i + 1]) * 16 + ref_hex(in[i + 2]));
      i += 3;
    } else {
      out += (plus_as_space && in[i] == '+') ? ' ' : in[i];
      i += 1;
    }
  }
  return out;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(cur);
  return parts;
}

// The query parameter `name` as the WHATWG URL standard's application/x-www-form-urlencoded parser gives it
// (§5.1: split on '&', drop empty pieces, split each at its first '=', '+' is a space, then percent-decode), with
// the library's documented difference: a malformed escape makes a value absent, and a name with one never matches.
std::optional<std::string> ref_query_param(std::string_view query, std::string_view name) {
  for (const std::string& piece : split(query, '&')) {
    if (piece.empty()) continue;
    const std::size_t eq = piece.find('=');
    const std::string raw_name = piece.substr(0, eq);
    const std::string raw_value = eq == std::string::npos ? std::string() : piece.substr(eq + 1);
    if (ref_decode(raw_name, true) != std::optional<std::string>(name)) continue;
    return ref_decode(raw_value, true);
  }
  return std::nullopt;
}

// "An optional '-' and digits that fit in 64 bits" ({name:int}), "digits" that fit ({name:uint}).
std::optional<std::int64_t> ref_int(std::string_view s) {
  const bool negative = !s.empty() && s.front() == '-';
  if (negative) s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  const std::uint64_t limit = negative ? (std::uint64_t(1) << 63) : (std::uint64_t(1) << 63) - 1;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (limit - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  if (!negative) return static_cast<std::int64_t>(v);
  return v == (std::uint64_t(1) << 63) ? INT64_MIN : -static_cast<std::int64_t>(v);
}

std::optional<std::uint64_t> ref_uint(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

// ---- Reference route table ----

// Precedence at one segment, best first (a literal, a typed parameter, an untyped one, a catch-all). The two typed
// kinds never tie: uint is tried before int, whatever the order of registration.
enum class seg_kind { literal = 0, uint = 1, int_ = 2, any = 3, rest = 4 };

struct ref_segment {
  seg_kind kind;
  std::string text;  // the decoded literal, or the parameter's name
  bool same_position(const ref_segment& o) const { return kind == o.kind && (kind != seg_kind::literal || text == o.text); }
};

// A template as documented: literal segments (percent-decoded), {name}, {name:int}, {name:uint}, a final
// {name...}; at most router::max_segments segments. nullopt for a template the router must refuse.
std::optional<std::vector<ref_segment>> ref_parse(const std::string& full) {
  if (full.empty() || full.front() != '/') return std::nullopt;
  const std::vector<std::string> raw = split(std::string_view(full).substr(1), '/');
  if (raw.size() > router::max_segments) return std::nullopt;
  std::vector<ref_segment> out;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const std::string& s = raw[i];
    if (s.size() >= 2 && s.front() == '{' && s.back() == '}') {
      std::string inner = s.substr(1, s.size() - 2);
      if (inner.size() >= 3 && inner.compare(inner.size() - 3, 3, "...") == 0) {
        const std::string name = inner.substr(0, inner.size() - 3);
        if (name.empty() || i + 1 != raw.size()) return std::nullopt;
        out.push_back({seg_kind::rest, name});
        continue;
      }
      seg_kind kind = seg_kind::any;
      const std::size_t colon = inner.find(':');
      if (colon != std::string::npos) {
        const std::string type = inner.substr(colon + 1);
        if (type == "int") kind = seg_kind::int_;
        else if (type == "uint") kind = seg_kind::uint;
        else return std::nullopt;
        inner = inner.substr(0, colon);
      }
      if (inner.empty()) return std::nullopt;
      out.push_back({kind, inner});
      continue;
    }
    if (s.find_first_of("{}") != std::string::npos) return std::nullopt;
    auto decoded = ref_decode(s, false);
    if (!decoded) return std::nullopt;
    out.push_back({seg_kind::literal, *decoded});
  }
  // A name twice: param(name) could never give the second value.
  std::set<std::string> names;
  for (const ref_segment& s : out) {
    if (s.kind != seg_kind::literal && !names.insert(s.text).second) return std::nullopt;
  }
  return out;
}

struct ref_mw {
  int id;
  bool stop;  // a before-middleware that answers instead of the handler
};

struct ref_group {
  int parent;  // -1 for the router's own group
  std::string prefix;
  std::vector<ref_mw> before;
  std::vector<int> after;
};

struct ref_route {
  int id;
  std::string method;  // the token
  std::string full;
  std::vector<ref_segment> segs;
  int group;
  std::vector<ref_mw> before;
  std::vector<int> after;
};

struct ref_table {
  std::vector<ref_group> groups;
  std::vector<ref_route> routes;

  // Conflicts the documentation promises to refuse: the same method and template twice; two parameters of one
  // type, or two catch-alls, with different names where the templates agree up to them.
  bool refused(const std::string& method, const std::vector<ref_segment>& segs) const {
    for (const ref_route& r : routes) {
      std::size_t i = 0;
      for (; i < segs.size() && i < r.segs.size(); ++i) {
        const ref_segment& a = segs[i];
        const ref_segment& b = r.segs[i];
        if (a.kind == b.kind && a.kind != seg_kind::literal && a.text != b.text) return true;
        if (!a.same_position(b)) break;
      }
      if (i == segs.size() && i == r.segs.size() && r.method == method) return true;
    }
    return false;
  }
};

// One template matched against decoded segments: its precedence key (lower is better) and its parameters.
struct ref_candidate {
  const ref_route* route;
  std::vector<int> key;
  std::vector<std::pair<std::string, std::string>> params;
};

std::optional<ref_candidate> ref_match_one(const ref_route& r, const std::vector<std::string>& segs) {
  ref_candidate c{&r, {}, {}};
  for (std::size_t i = 0; i < r.segs.size(); ++i) {
    const ref_segment& t = r.segs[i];
    c.key.push_back(static_cast<int>(t.kind));
    if (t.kind == seg_kind::rest) {
      // One or more segments, the first not empty; the value is the rest of the decoded path.
      if (i >= segs.size() || segs[i].empty()) return std::nullopt;
      std::string value = segs[i];
      for (std::size_t j = i + 1; j < segs.size(); ++j) value += "/" + segs[j];
      c.params.emplace_back(t.text, value);
      return c;
    }
    if (i >= segs.size()) return std::nullopt;
    const std::string& s = segs[i];
    switch (t.kind) {
      case seg_kind::literal:
        if (s != t.text) return std::nullopt;
        continue;
      case seg_kind::int_:
        if (!ref_int(s)) return std::nullopt;
        break;
      case seg_kind::uint:
        if (!ref_uint(s)) return std::nullopt;
        break;
      case seg_kind::any:
        if (s.empty()) return std::nullopt;
        break;
      case seg_kind::rest: break;
    }
    c.params.emplace_back(t.text, s);
  }
  if (r.segs.size() != segs.size()) return std::nullopt;
  return c;
}

struct ref_result {
  route_match::kind kind = route_match::kind::not_found;
  const ref_route* route = nullptr;
  std::vector<std::pair<std::string, std::string>> params;
  std::string allow;
};

// "Allow" for a set of method tokens: the standard methods in the order of `method`, HEAD after GET when only GET
// was registered, extension methods in byte order, OPTIONS last when the router answers it itself.
std::string ref_allow(const std::set<std::string>& methods) {
  std::string allow;
  auto add = [&](const std::string& m) { allow += (allow.empty() ? "" : ", ") + m; };
  const std::vector<std::string> standard = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  for (const std::string& m : standard) {
    if (methods.count(m) != 0) add(m);
    if (m == "GET" && methods.count("GET") != 0 && methods.count("HEAD") == 0) add("HEAD");
  }
  for (const std::string& m : methods) {
    if (std::find(standard.begin(), standard.end(), m) == standard.end()) add(m);
  }
  if (methods.count("OPTIONS") == 0) add("OPTIONS");
  return allow;
}

ref_result ref_lookup(const ref_table& table, const std::string& method, const std::string& target) {
  ref_result out;
  // The path: absolute-form loses its scheme and authority; the query and fragment go.
  std::string path = target;
  if (path.rfind("http://", 0) == 0) {
    const std::size_t slash = path.find_first_of("/?#", 7);
    path = slash == std::string::npos || path[slash] != '/' ? "/" : path.substr(slash);
  }
  path = path.substr(0, path.find_first_of("?#"));
  if (path.empty() || path.front() != '/') {
    if (method == "OPTIONS" && path == "*") {
      // About the server (RFC 9110 §9.3.7): every method some route has.
      out.kind = route_match::kind::options;
      std::set<std::string> all;
      for (const ref_route& r : table.routes) all.insert(r.method);
      out.allow = ref_allow(all);
    }
    return out;
  }
  // Split on '/' first, then decode each segment: "%2F" stays inside its segment. A malformed escape, a NUL or a
  // dot segment among the first max_segments is a bad path; a deeper path is no route's.
  const std::vector<std::string> raw = split(std::string_view(path).substr(1), '/');
  std::vector<std::string> segs;
  for (std::size_t i = 0; i < raw.size() && i < router::max_segments; ++i) {
    auto d = ref_decode(raw[i], false);
    // A segment is also bad when "%2F" splits it into pieces one of which is a dot segment: a parameter would
    // hold "../x", a traversal the router refuses as "/../x"; or when it begins with "%2F": a parameter would hold
    // an absolute path.
    const std::vector<std::string> pieces = d ? split(*d, '/') : std::vector<std::string>();
    const bool dots = std::any_of(pieces.begin(), pieces.end(), [](const std::string& p) { return p == "." || p == ".."; });
    if (!d || d->find('\0') != std::string::npos || dots || (d->size() > 0 && d->front() == '/')) {
      out.kind = route_match::kind::bad_path;
      return out;
    }
    segs.push_back(*d);
  }
  if (raw.size() > router::max_segments) return out;
  // Linear scan: the best key among the templates that match wins; its methods decide.
  std::vector<ref_candidate> candidates;
  for (const ref_route& r : table.routes) {
    if (auto c = ref_match_one(r, segs)) candidates.push_back(std::move(*c));
  }
  if (candidates.empty()) return out;
  const auto best = std::min_element(candidates.begin(), candidates.end(),
                                     [](const ref_candidate& a, const ref_candidate& b) { return a.key < b.key; });
  std::set<std::string> methods;
  const ref_candidate* chosen = nullptr;
  const ref_candidate* get = nullptr;
  for (const ref_candidate& c : candidates) {
    if (c.key != best->key) continue;
    methods.insert(c.route->method);
    if (c.route->method == method) chosen = &c;
    if (c.route->method == "GET") get = &c;
  }
  if (chosen == nullptr && method == "HEAD") chosen = get;
  if (chosen != nullptr) {
    out.kind = route_match::kind::found;
    out.route = chosen->route;
    out.params = chosen->params;
    return out;
  }
  out.kind = method == "OPTIONS" ? route_match::kind::options : route_match::kind::method_not_allowed;
  out.allow = ref_allow(methods);
  return out;
}

// ---- Random generation ----

struct gen {
  std::mt19937_64 g;
  explicit gen(std::uint64_t seed) : g(seed) {}
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(g() % n); }
  bool chance(unsigned percent) { return below(100) < percent; }
  template <class T>
  const T& pick(const std::vector<T>& v) { return v[below(v.size())]; }
};

const std::vector<std::string> literal_pool = {"a", "b", "c", "users", "me", "a%2Fb", "%61", "x%20y", "%C3%A9", "\xC3\xA9",
                                               "", "A", "1", "-5"};
const std::vector<std::string> any_names = {"id", "name"};
const std::vector<std::string> int_names = {"id", "n"};
const std::vector<std::string> uint_names = {"id", "u"};
const std::vector<std::string> rest_names = {"path", "rest"};
const std::vector<std::string> methods_registered = {"GET", "GET", "GET", "HEAD", "POST", "POST", "PUT", "DELETE",
                                                     "OPTIONS", "PATCH", "TRACE", "CONNECT", "PROPFIND", "PURGE", "get"};
const std::vector<std::string> methods_requested = {"GET", "GET", "GET", "HEAD", "HEAD", "POST", "PUT", "DELETE", "OPTIONS",
                                                    "OPTIONS", "PATCH", "TRACE", "CONNECT", "PROPFIND", "PURGE", "get",
                                                    "BREW"};

std::string random_template_segment(gen& r, bool last) {
  switch (r.below(12)) {
    case 0: case 1: case 2: case 3: case 4: return r.pick(literal_pool);
    case 5: case 6: return "{" + r.pick(any_names) + "}";
    case 7: return "{" + r.pick(int_names) + ":int}";
    case 8: return "{" + r.pick(uint_names) + ":uint}";
    case 9: return last || r.chance(10) ? "{" + r.pick(rest_names) + "...}" : "b";
    default: {
      // Things to refuse (mostly), and a few odd ones that are fine.
      const std::vector<std::string> odd = {"{}", "{...}", "{:int}", "{id:float}", "{id:}", "x{id}", "{id", "id}",
                                            "%G1", "%", "%4", "a%2", "{id:int}", "%2e"};
      return r.pick(odd);
    }
  }
}

std::string random_template(gen& r) {
  std::string t;
  const std::size_t n = r.chance(3) ? router::max_segments - 1 + r.below(3) : r.below(4);
  for (std::size_t i = 0; i < n; ++i) t += "/" + (n > 8 ? std::string("d") : random_template_segment(r, i + 1 == n));
  if (t.empty() && r.chance(50)) t = "/";
  return t;
}

std::string random_prefix(gen& r) {
  const std::vector<std::string> prefixes = {"", "/api", "/api", "/v1", "/users", "/{tenant}", "/{id}", "/a", "/api/",
                                             "/{n:int}"};
  return r.pick(prefixes);
}

// How a request may write one decoded byte of a segment: raw where that keeps the meaning, or escaped in either case.
std::string encode_byte(gen& r, char c) {
  const bool must = c == '/' || c == '%' || c == '?' || c == '#' || c == '\0';
  if (!must && !r.chance(15)) return std::string(1, c);
  const char* hex = r.chance(50) ? "0123456789ABCDEF" : "0123456789abcdef";
  const auto b = static_cast<unsigned char>(c);
  return std::string{'%', hex[b >> 4], hex[b & 15]};
}

std::string encode(gen& r, const std::string& decoded) {
  std::string out;
  for (char c : decoded) out += encode_byte(r, c);
  return out;
}

std::string random_value(gen& r, seg_kind kind) {
  const std::vector<std::string> ints = {"0", "7", "-7", "007", "-0", "9223372036854775807", "9223372036854775808",
                                         "-9223372036854775808", "-9223372036854775809", "18446744073709551615",
                                         "18446744073709551616", "+5", "-", "1e3", " 1", "0x10", "2147483648",
                                         "00000000000000000000000000001", "-2147483649", "4294967295"};
  const std::vector<std::string> words = {"1", "42", "bob", "a/b", "x y", "\xC3\xA9", "+", "%", "..x", "a?b", "#",
                                          "me", "users", "a", ".", "..", std::string(1, '\0'), "-5", "../x", "a/./b",
                                          "x/..", "a..b"};
  switch (kind) {
    case seg_kind::int_:
    case seg_kind::uint:
      if (r.chance(70)) return encode(r, r.pick(ints));
      {
        std::string digits = r.chance(30) ? "-" : "";
        const std::size_t n = 1 + r.below(25);
        for (std::size_t i = 0; i < n; ++i) digits += static_cast<char>('0' + r.below(10));
        return encode(r, digits);
      }
    case seg_kind::rest: {
      std::string v = encode(r, r.pick(words));
      const std::size_t more = r.below(4);
      for (std::size_t i = 0; i < more; ++i) v += "/" + (r.chance(15) ? std::string() : encode(r, r.pick(words)));
      return v;
    }
    default: return encode(r, r.pick(words));
  }
}

// A path made from a registered template (filled in, perhaps broken a little), or from nothing.
std::string random_path(gen& r, const ref_table& table, std::string* method_of_route = nullptr) {
  std::vector<std::string> segs;
  if (!table.routes.empty() && r.chance(85)) {
    const ref_route& route = r.pick(table.routes);
    if (method_of_route != nullptr) *method_of_route = route.method;
    for (const ref_segment& s : route.segs) {
      segs.push_back(s.kind == seg_kind::literal ? encode(r, s.text) : random_value(r, s.kind));
    }
  } else {
    const std::size_t n = r.below(5);
    for (std::size_t i = 0; i < n; ++i) segs.push_back(r.chance(60) ? encode(r, r.pick(literal_pool)) : random_value(r, seg_kind::any));
  }
  if (r.chance(30)) {
    const std::vector<std::string> breakers = {"", ".", "..", "%2e", "%2E%2e", "%00", "a%00b", "%G1", "%", "%4", "a%",
                                               "%2F", "%2f%2F", "..%2F", "%2F..", "a%2F.%2Fb", "%2E%2E%2f", "..%2Fx",
                                               "...", "\xFF", "%FF", "%C3%A9", "x", "users", "42", "-1"};
    switch (r.below(6)) {
      case 0: segs.push_back(""); break;  // a trailing slash
      case 1: if (!segs.empty()) segs.pop_back(); break;
      case 2: segs.insert(segs.begin() + static_cast<std::ptrdiff_t>(r.below(segs.size() + 1)), r.pick(breakers)); break;
      case 3: if (!segs.empty()) segs[r.below(segs.size())] = r.pick(breakers); break;
      case 4: segs.push_back(r.pick(breakers)); break;
      default: {
        // Deep or long: around the segment limit, or one very long segment.
        if (r.chance(50)) {
          const std::size_t n = router::max_segments - 2 + r.below(5);
          while (segs.size() < n) segs.push_back(r.chance(95) ? "d" : r.pick(breakers));
        } else {
          segs.push_back(std::string(5000 + r.below(5000), 'z'));
        }
      }
    }
  }
  std::string path;
  for (const std::string& s : segs) path += "/" + s;
  if (path.empty()) path = "/";
  return path;
}

std::string random_query(gen& r) {
  const std::vector<std::string> pieces = {"a", "b", "id", "a b", "=", "=", "&", "&", "&&", "%", "%2", "%20", "%3D", "%26",
                                           "%2B", "+", "%G1", "%61", "%00", "x", "1", "\xC3\xA9", "%C3%A9", "%4", "?"};
  std::string q;
  const std::size_t n = r.below(10);
  for (std::size_t i = 0; i < n; ++i) q += r.pick(pieces);
  return q;
}

// ---- Running the router ----

struct sink final : detail::response_sink {
  std::optional<response> got;
  void deliver(std::uint64_t, response resp) override { got = std::move(resp); }
  void deliver_exception(std::uint64_t, std::exception_ptr) override { got = response::text("exception"); }
  void release_request(std::uint64_t) override {}
  asio::any_io_executor sink_executor() const override { return {}; }
};

std::string kind_name(route_match::kind k) {
  switch (k) {
    case route_match::kind::found: return "found";
    case route_match::kind::not_found: return "not_found";
    case route_match::kind::method_not_allowed: return "method_not_allowed";
    case route_match::kind::options: return "options";
    case route_match::kind::bad_path: return "bad_path";
  }
  return "?";
}

// A router and its reference, built together from one seed.
struct table_under_test {
  router routes;
  ref_table model;
  std::vector<route_group> handles;  // parallel to model.groups
  std::vector<const route*> by_id;   // route id -> the router's route
  std::vector<std::string> trace;
  int next_mw = 0;
  std::size_t refused = 0;
  std::string history;  // the registrations so far, for a failure's message
  std::array<std::size_t, 5>& seen;  // lookups by expected kind, over all seeds

  explicit table_under_test(std::array<std::size_t, 5>& counts) : seen(counts) {}

  before_middleware make_before(const ref_mw& m) {
    return [t = &trace, m](request&) -> std::optional<response> {
      t->push_back("B" + std::to_string(m.id));
      if (m.stop) return response::text("S" + std::to_string(m.id), status::forbidden);
      return std::nullopt;
    };
  }
  after_middleware make_after(int id) {
    // It sees the response as it stands and leaves its mark for the next one.
    return [t = &trace, id](request&, response& res) {
      t->push_back("A" + std::to_string(id) + "=" + res.body());
      res.body() += ";A" + std::to_string(id);
    };
  }

  void add_group(gen& r) {
    const int parent = static_cast<int>(r.below(model.groups.size()));
    // Now and then a chain of nested groups deeper than sixteen (the router once ran the before-middleware of only
    // the sixteen innermost, the router's own and the outer groups' skipped).
    const std::size_t depth = r.chance(5) ? 18 : 1;
    int at = parent;
    for (std::size_t i = 0; i < depth; ++i) {
      const std::string prefix = depth > 1 ? (r.chance(50) ? "" : "/n") : random_prefix(r);
      handles.push_back(handles[static_cast<std::size_t>(at)].group(prefix));
      model.groups.push_back({at, model.groups[static_cast<std::size_t>(at)].prefix + prefix, {}, {}});
      at = static_cast<int>(model.groups.size() - 1);
    }
  }

  void add_group_middleware(gen& r) {
    const std::size_t g = r.below(model.groups.size());
    if (r.chance(50)) {
      const ref_mw m{next_mw++, r.chance(8)};
      model.groups[g].before.push_back(m);
      if (g == 0 && r.chance(50)) routes.before(make_before(m));
      else handles[g].before(make_before(m));
    } else {
      const int id = next_mw++;
      model.groups[g].after.push_back(id);
      if (g == 0 && r.chance(50)) routes.after(make_after(id));
      else handles[g].after(make_after(id));
    }
  }

  void add_route(gen& r) {
    if (r.chance(2)) {
      // An extension method has a token: without one the route could never match, and would put "" in Allow.
      CHECK_THROWS_AS(routes.add(method::other, "/x", make_handler([](request&) { return response::text("x"); })),
                      std::invalid_argument);
      CHECK_THROWS_AS(handles[r.below(handles.size())].add(method::other, "/x",
                                                           make_handler([](request&) { return response::text("x"); })),
                      std::invalid_argument);
      history += "method::other /x (refused)\n";
      return;
    }
    const std::size_t g = r.below(model.groups.size());
    const std::string pattern = random_template(r);
    const std::string token = r.pick(methods_registered);
    const std::string full = model.groups[g].prefix + pattern;
    const auto segs = ref_parse(full);
    const bool expect_refused = !segs || model.refused(token, *segs);
    const int id = static_cast<int>(model.routes.size());
    auto h = make_handler([id](request&) { return response::text("R" + std::to_string(id)); });
    route* added = nullptr;
    try {
      const method m = to_method(token);
      if (m != method::other && r.chance(50)) {
        added = g == 0 && r.chance(50) ? &routes.add(m, pattern, std::move(h)) : &handles[g].add(m, pattern, std::move(h));
      } else {
        added = &handles[g].add(token, pattern, std::move(h));
      }
    } catch (const std::invalid_argument&) {
    }
    INFO("registered before:\n" << history);
    INFO("register " << token << " " << full << " (group " << g << ")");
    REQUIRE((added == nullptr) == expect_refused);
    history += token + " " + full + (added == nullptr ? " (refused)\n" : "\n");
    if (added == nullptr) {
      ++refused;
      return;
    }
    CHECK(added->pattern() == full);
    ref_route route{id, token, full, *segs, static_cast<int>(g), {}, {}};
    const std::size_t own = r.chance(20) ? 1 + r.below(2) : 0;
    for (std::size_t i = 0; i < own; ++i) {
      if (r.chance(50)) {
        route.before.push_back({next_mw++, r.chance(10)});
        added->before(make_before(route.before.back()));
      } else {
        route.after.push_back(next_mw++);
        added->after(make_after(route.after.back()));
      }
    }
    model.routes.push_back(std::move(route));
    by_id.push_back(added);
  }

  // What the middleware and the handler must leave in the trace for `route`, and the final response body.
  std::vector<std::string> expected_trace(const ref_route& route, std::string& body) const {
    std::vector<std::string> out;
    std::vector<int> chain;  // innermost group first
    for (int g = route.group; g >= 0; g = model.groups[static_cast<std::size_t>(g)].parent) chain.push_back(g);
    std::vector<ref_mw> before;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      for (const ref_mw& m : model.groups[static_cast<std::size_t>(*it)].before) before.push_back(m);
    }
    for (const ref_mw& m : route.before) before.push_back(m);
    body = "R" + std::to_string(route.id);
    for (const ref_mw& m : before) {
      out.push_back("B" + std::to_string(m.id));
      if (m.stop) {
        body = "S" + std::to_string(m.id);
        break;
      }
    }
    std::vector<int> after = route.after;
    for (int g : chain) {
      for (int id : model.groups[static_cast<std::size_t>(g)].after) after.push_back(id);
    }
    for (int id : after) {
      out.push_back("A" + std::to_string(id) + "=" + body);
      body += ";A" + std::to_string(id);
    }
    return out;
  }

  void check_request(gen& r) {
    std::string token = r.pick(methods_requested);
    std::string target;
    std::string method_of_route;  // the method of the route the path was made from, if it was
    switch (r.below(40)) {
      case 0: target = "*"; break;
      case 1: target = r.chance(50) ? "example.com:80" : ""; break;
      case 2: target = "http://example.com" + (r.chance(80) ? random_path(r, model) : std::string()); break;
      default: target = random_path(r, model, &method_of_route);
    }
    if (!method_of_route.empty() && r.chance(50)) token = method_of_route;
    const std::string query = r.chance(30) ? random_query(r) : std::string();
    const bool with_query = r.chance(30);
    if (with_query) target += "?" + query;

    const ref_result want = ref_lookup(model, token, target);
    fake_request f(token, target);
    const route_match got = routes.match(f.req);
    INFO(token << " " << target);
    INFO("expected " << kind_name(want.kind) << (want.route ? " " + want.route->method + " " + want.route->full : "")
                     << " allow '" << want.allow << "'");
    INFO("got " << kind_name(got.result) << (got.matched ? " " + got.matched->pattern() : "") << " allow '" << got.allow
                << "'");
    REQUIRE(got.result == want.kind);
    ++seen[static_cast<std::size_t>(want.kind)];
    CHECK(got.allow == want.allow);
    if (want.kind != route_match::kind::found) return;
    REQUIRE(got.matched == by_id[static_cast<std::size_t>(want.route->id)]);

    std::vector<std::pair<std::string, std::string>> params;
    for (const route_param& p : f.req.params()) params.emplace_back(std::string(p.name), std::string(p.value));
    CHECK(params == want.params);
    // param() gives the first value of a name; typed parameters convert as far as the type allows.
    std::vector<seg_kind> kinds;
    for (const ref_segment& s : want.route->segs) {
      if (s.kind != seg_kind::literal) kinds.push_back(s.kind);
    }
    for (std::size_t i = 0; i < want.params.size(); ++i) {
      const std::string& name = want.params[i].first;  // not a structured binding: clang 14 cannot capture one
      const std::string& value = want.params[i].second;
      const auto first =
          std::find_if(want.params.begin(), want.params.end(), [&](const auto& p) { return p.first == name; });
      CHECK(f.req.param(name) == first->second);
      if (first != want.params.begin() + static_cast<std::ptrdiff_t>(i)) continue;
      const seg_kind kind = kinds[i];
      if (kind == seg_kind::int_) {
        CHECK(f.req.param_as<std::int64_t>(name) == *ref_int(value));
        const std::int64_t v = *ref_int(value);
        if (v >= INT32_MIN && v <= INT32_MAX) CHECK(f.req.param_as<int>(name) == v);
        else CHECK_THROWS_AS(f.req.param_as<int>(name), problem_error);
        if (v < 0) CHECK_THROWS_AS(f.req.param_as<std::uint64_t>(name), problem_error);
      } else if (kind == seg_kind::uint) {
        CHECK(f.req.param_as<std::uint64_t>(name) == *ref_uint(value));
        if (*ref_uint(value) > static_cast<std::uint64_t>(INT64_MAX)) {
          CHECK_THROWS_AS(f.req.param_as<std::int64_t>(name), problem_error);
        }
      }
    }

    // The query, through the request.
    for (const std::string& name : {std::string("a"), std::string("b"), std::string("a b"), std::string("=")}) {
      CHECK(f.req.query_param(name) == ref_query_param(with_query ? query : std::string(), name));
    }

    // Middleware and handler, as the server runs them.
    trace.clear();
    const route* matched = got.matched;
    std::optional<response> res = matched->run_before(f.req);
    if (!res) {
      auto s = std::make_shared<sink>();
      matched->handler()(f.req, responder(s, 1));
      REQUIRE(s->got);
      res = std::move(s->got);
    }
    matched->run_after(f.req, *res);
    std::string body;
    const std::vector<std::string> want_trace = expected_trace(*want.route, body);
    CHECK(trace == want_trace);
    CHECK(res->body() == body);
    CHECK(matched->has_after() ==
          std::any_of(want_trace.begin(), want_trace.end(), [](const std::string& e) { return e[0] == 'A'; }));
  }
};

}  // namespace

TEST_CASE("router: random route tables against a reference", "[http][router][router_random]") {
  std::size_t lookups = 0;
  std::size_t refusals = 0;
  std::array<std::size_t, 5> seen{};
  for (std::uint64_t seed = 1; seed <= 100; ++seed) {
    INFO("seed " << seed);
    gen r(seed * 0x9E3779B97F4A7C15ull);
    table_under_test t(seen);
    t.handles.push_back(t.routes.routes());
    t.model.groups.push_back({-1, "", {}, {}});
    const std::size_t steps = 20 + r.below(60);
    for (std::size_t i = 0; i < steps; ++i) {
      switch (r.below(10)) {
        case 0: t.add_group(r); break;
        case 1: t.add_group_middleware(r); break;
        default: t.add_route(r);
      }
    }
    for (std::size_t i = 0; i < 400; ++i) t.check_request(r);
    lookups += 400;
    refusals += t.refused;
  }
  CHECK(lookups == 40000);
  // Every outcome is well represented (the generator has not drifted to one kind of request).
  INFO("found " << seen[0] << ", 404 " << seen[1] << ", 405 " << seen[2] << ", OPTIONS " << seen[3] << ", 400 " << seen[4]
                << ", refused registrations " << refusals);
  for (std::size_t n : seen) CHECK(n > 400);
  CHECK(refusals > 100);
}

TEST_CASE("url: percent-decoding and query parameters against a reference", "[http][router_random]") {
  gen r(20261201);
  const std::vector<std::string> pieces = {"a", "%", "%2", "%20", "%2f", "%2F", "%G1", "%1G", "%00", "+", "%2B", "=", "&",
                                           "%C3%A9", "\xFF", "%ff", "b", "%%", "%4"};
  for (int i = 0; i < 5000; ++i) {
    std::string in;
    const std::size_t n = r.below(8);
    for (std::size_t j = 0; j < n; ++j) in += r.pick(pieces);
    const bool plus = r.chance(50);
    INFO("'" << in << "' plus " << plus);
    CHECK(percent_decode(in, plus) == ref_decode(in, plus));
    const std::string q = random_query(r);
    for (const std::string& name : {std::string("a"), std::string("a b"), std::string("id"), std::string("="),
                                    std::string("\xC3\xA9"), std::string("")}) {
      INFO("query '" << q << "' name '" << name << "'");
      CHECK(query_param(q, name) == ref_query_param(q, name));
    }
    // The raw pairs, and the query of a target with a fragment (which is not part of the query, RFC 3986 §3.4-3.5).
    std::vector<std::pair<std::string, std::string>> pairs;
    for_each_query_param(q, [&](std::string_view n, std::string_view v) { pairs.emplace_back(n, v); });
    std::vector<std::pair<std::string, std::string>> want_pairs;
    for (const std::string& piece : split(q, '&')) {
      if (piece.empty()) continue;
      const std::size_t eq = piece.find('=');
      want_pairs.emplace_back(piece.substr(0, eq), eq == std::string::npos ? std::string() : piece.substr(eq + 1));
    }
    CHECK(pairs == want_pairs);
    CHECK(target_query("/x?" + q + "#f&a=9") == q);
    CHECK(target_query("/x#f?" + q).empty());  // a '?' inside the fragment starts no query
    CHECK(target_path("/x%3Fy?" + q) == "/x%3Fy");
    // A non-negative integer query parameter, as query_number reads it.
    fake_request f("GET", "/x?" + q);
    const auto text = ref_query_param(q, "a");
    const std::optional<std::uint64_t> want = text ? ref_uint(*text) : std::nullopt;
    if (!text) CHECK_FALSE(f.req.query_number<std::uint64_t>("a"));
    else if (!want) CHECK_THROWS_AS(f.req.query_number<std::uint64_t>("a"), problem_error);
    else CHECK(f.req.query_number<std::uint64_t>("a") == want);
  }
}

// The defects the model found, each as a short case.
TEST_CASE("router: what the random model found", "[http][router][router_random]") {
  auto handler = [](request&) { return response::text("x"); };
  auto kind_of = [](const router& r, const std::string& m, const std::string& target) {
    fake_request f(m, target);
    return r.match(f.req).result;
  };
  auto pattern_of = [](const router& r, const std::string& target) {
    fake_request f("GET", target);
    const route_match m = r.match(f.req);
    return m.matched != nullptr ? m.matched->pattern() : std::string();
  };

  SECTION("{name:uint} is tried before {name:int}, whichever was registered first") {
    router a;
    a.get("/x/{n:int}", handler);
    a.get("/x/{u:uint}", handler);
    router b;
    b.get("/x/{u:uint}", handler);
    b.get("/x/{n:int}", handler);
    for (const router* r : {&a, &b}) {
      CHECK(pattern_of(*r, "/x/5") == "/x/{u:uint}");
      CHECK(pattern_of(*r, "/x/-5") == "/x/{n:int}");
      CHECK(pattern_of(*r, "/x/18446744073709551615") == "/x/{u:uint}");
    }
  }
  SECTION("{...} is an unnamed catch-all, refused, not a parameter named '...'") {
    router r;
    CHECK_THROWS_AS(r.get("/a/{...}", handler), std::invalid_argument);
    CHECK(kind_of(r, "GET", "/a/b") == route_match::kind::not_found);
  }
  SECTION("a refused route leaves nothing behind") {
    router r;
    CHECK_THROWS_AS(r.get("/a/{id}/{x:float}", handler), std::invalid_argument);
    CHECK_THROWS_AS(r.get("/b/{rest...}/{:int}", handler), std::invalid_argument);
    CHECK_THROWS_AS(r.get("/c/{u:uint}/%G1", handler), std::invalid_argument);
    CHECK_NOTHROW(r.get("/a/{name}", handler));
    CHECK_NOTHROW(r.get("/c/{v:uint}", handler));
    r.get("/d/{id}", handler);
    CHECK_THROWS_AS(r.get("/d/{id}", handler), std::invalid_argument);
    CHECK(pattern_of(r, "/a/1") == "/a/{name}");
  }
  SECTION("the router's before-middleware runs for a route in groups nested twenty deep") {
    router r;
    int calls = 0;
    r.before([&](request&) -> std::optional<response> {
      ++calls;
      return response::text("no", status::unauthorized);
    });
    route_group g = r.group("/g");
    for (int i = 0; i < 20; ++i) g = g.group("/n");
    g.get("/secret", handler);
    std::string target = "/g";
    for (int i = 0; i < 20; ++i) target += "/n";
    fake_request f("GET", target + "/secret");
    const route_match m = r.match(f.req);
    REQUIRE(m.result == route_match::kind::found);
    const auto early = m.matched->run_before(f.req);
    CHECK(calls == 1);
    REQUIRE(early);
    CHECK(early->status() == status::unauthorized);
  }
  SECTION("a parameter name twice in one template is refused") {
    router r;
    CHECK_THROWS_AS(r.get("/{id}/x/{id:int}", handler), std::invalid_argument);
    CHECK_THROWS_AS(r.group("/t/{id}").get("/{id}", handler), std::invalid_argument);
    CHECK_THROWS_AS(r.get("/f/{path}/{path...}", handler), std::invalid_argument);
    CHECK_NOTHROW(r.get("/t/{id}/{name}", handler));
  }
  SECTION("router::add refuses method::other, as route_group::add does") {
    router r;
    r.get("/x", handler);
    CHECK_THROWS_AS(r.add(method::other, "/x", make_handler(handler)), std::invalid_argument);
    fake_request f("PUT", "/x");
    CHECK(r.match(f.req).allow == "GET, HEAD, OPTIONS");
  }
  SECTION("an encoded slash cannot smuggle a dot segment or an absolute path into a parameter") {
    router r;
    r.get("/files/{path...}", handler);
    r.get("/one/{name}", handler);
    CHECK(kind_of(r, "GET", "/files/..%2F..%2Fetc%2Fpasswd") == route_match::kind::bad_path);
    CHECK(kind_of(r, "GET", "/files/a/b%2F.%2Fc") == route_match::kind::bad_path);
    CHECK(kind_of(r, "GET", "/one/%2E%2E%2Fx") == route_match::kind::bad_path);
    CHECK(kind_of(r, "GET", "/one/x%2F..") == route_match::kind::bad_path);
    CHECK(kind_of(r, "GET", "/files/%2Fetc%2Fpasswd") == route_match::kind::bad_path);
    CHECK(kind_of(r, "GET", "/one/%2f") == route_match::kind::bad_path);
    fake_request f("GET", "/files/a%2Fb/..c/...");
    REQUIRE(r.match(f.req).result == route_match::kind::found);
    CHECK(f.req.param("path") == "a/b/..c/...");
  }
}
