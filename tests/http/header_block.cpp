// The header fields of messages: `header_block` (built by us, validated, stored serialised) and `field_views`
// (parsed, views into the buffer). Both checked step by step against a reference on a std::vector of pairs with the
// documented semantics: names compare case-insensitively (RFC 9110 §5.1), order is kept, `set` replaces every
// field of the name with one at the end, `get` answers the first.
#include <switchboard/http/fields.hpp>
#include <switchboard/http/header_block.hpp>

#include "support/catch.hpp"

#include <cstddef>
#include <deque>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using switchboard::http::field_view;
using switchboard::http::field_views;
using switchboard::http::header_block;

namespace {

using field_list = std::vector<std::pair<std::string, std::string>>;

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool same_name(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// RFC 9110 §5.6.2: token = 1*tchar.
bool reference_valid_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) return false;
  }
  return true;
}

// RFC 9110 §5.5: field-vchar (VCHAR, obs-text), SP and HTAB inside; as documented, no whitespace at either edge.
bool reference_valid_value(std::string_view value) {
  for (unsigned char c : value) {
    if (!(c == '\t' || (c >= 0x20 && c != 0x7f))) return false;
  }
  return value.empty() || (value.front() != ' ' && value.front() != '\t' && value.back() != ' ' &&
                           value.back() != '\t');
}

// The reference header block: the fields in order, with the documented semantics of each operation.
struct reference_block {
  field_list fields;

  void add(std::string_view name, std::string_view value) { fields.emplace_back(name, value); }
  void set(std::string_view name, std::string_view value) {
    erase(name);
    add(name, value);
  }
  std::size_t erase(std::string_view name) {
    const std::size_t before = fields.size();
    std::erase_if(fields, [&](const auto& f) { return same_name(f.first, name); });
    return before - fields.size();
  }
  std::string get(std::string_view name) const {
    for (const auto& f : fields) {
      if (same_name(f.first, name)) return f.second;
    }
    return {};
  }
  bool contains(std::string_view name) const {
    for (const auto& f : fields) {
      if (same_name(f.first, name)) return true;
    }
    return false;
  }
  std::string serialized() const {
    std::string out;
    for (const auto& [name, value] : fields) out += name + ": " + value + "\r\n";
    return out;
  }
};

// Names that differ only in case, that are prefixes of one another, and one long enough to leave the inline buffer.
constexpr std::string_view names[] = {"Content-Type", "X-A", "X-AB", "x", "Vary", "Set-Cookie", "ETag",
                                      "X-A-Rather-Long-Field-Name-That-Takes-Room"};

constexpr std::string_view values[] = {
    "", "text/plain", "a b", "a:b", "x,  y", "\"quoted\", W/\"weak\"", "tab\there", "caf\xc3\xa9", "X-A: y",
    "1", "a very long value that on its own goes past the ninety-six bytes kept inline by the small buffer ..."};

// Values and names the setters must refuse (CR, LF, NUL, other controls, DEL, edge whitespace; non-tokens).
constexpr std::string_view bad_values[] = {" lead", "trail ", "\tlead", "trail\t", "a\r\nX-Injected: 1", "a\nb",
                                           "a\rb", std::string_view("a\0b", 3), "a\x7f", "a\x01"};
constexpr std::string_view bad_names[] = {"", "a b", "a:b", "X-A:", "caf\xc3\xa9", "a\r\nb", "(x)", "a/b"};

std::string random_case(std::string_view s, std::mt19937& rng) {
  std::string out(s);
  for (char& c : out) {
    if (rng() % 2 == 0) continue;
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    else if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Every query of `block` agrees with `model`.
void check_agrees(const header_block& block, const reference_block& model, std::mt19937& rng) {
  REQUIRE(block.serialized() == model.serialized());
  CHECK(block.empty() == model.fields.empty());
  field_list seen;
  block.for_each([&](std::string_view n, std::string_view v) { seen.emplace_back(n, v); });
  CHECK(seen == model.fields);
  for (std::string_view name : names) {
    const std::string asked = random_case(name, rng);
    INFO("name " << asked);
    CHECK(block.contains(asked) == model.contains(asked));
    CHECK(block.get(asked) == model.get(asked));
  }
  // Names that are no field's: a prefix of one, one with a colon, one longer.
  for (std::string_view other : {"X-", "X-A:", "Content-Type2", "Content-Type: text/plain", ""}) {
    CHECK_FALSE(block.contains(other));
    CHECK(block.get(other).empty());
  }
}

}  // namespace

TEST_CASE("header_block: validation of names and values agrees with RFC 9110", "[http][header_block]") {
  for (std::string_view name : names) CHECK(header_block::valid_name(name));
  for (std::string_view name : bad_names) CHECK_FALSE(header_block::valid_name(name));
  for (std::string_view value : values) CHECK(header_block::valid_value(value));
  for (std::string_view value : bad_values) CHECK_FALSE(header_block::valid_value(value));
  // Every single byte, alone and between two letters.
  for (int c = 0; c < 256; ++c) {
    const std::string one(1, static_cast<char>(c));
    const std::string inside = "a" + one + "b";
    INFO("byte " << c);
    CHECK(header_block::valid_name(one) == reference_valid_name(one));
    CHECK(header_block::valid_value(one) == reference_valid_value(one));
    CHECK(header_block::valid_value(inside) == reference_valid_value(inside));
  }
}

TEST_CASE("header_block: random operations agree with the reference", "[http][header_block]") {
  const unsigned seed = GENERATE(range(1u, 41u));
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  auto pick = [&rng](std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
  };
  auto any_name = [&] { return random_case(names[pick(0, std::size(names) - 1)], rng); };
  auto any_value = [&] { return std::string(values[pick(0, std::size(values) - 1)]); };
  header_block block;
  reference_block model;
  for (int step = 0; step < 400; ++step) {
    INFO("step " << step << ", block before " << block.serialized());
    std::string op;  // what the step did, for the report
    const std::size_t roll = pick(0, 99);
    if (roll < 35) {
      const std::string name = any_name(), value = any_value();
      op = "add " + name + ": " + value;
      block.add(name, value);
      model.add(name, value);
    } else if (roll < 55) {
      const std::string name = any_name(), value = any_value();
      op = "set " + name + ": " + value;
      block.set(name, value);
      model.set(name, value);
    } else if (roll < 68) {
      const std::string name = any_name();
      op = "erase " + name;
      CHECK(block.erase(name) == model.erase(name));
    } else if (roll < 76) {
      // A value (or name) read from the block itself: `set("Vary", block.get("vary"))`, copying one field to
      // another. The views point into the block that is being changed.
      const std::string from = any_name(), to = any_name();
      const bool use_set = pick(0, 1) == 0;
      op = (use_set ? "set " : "add ") + to + " to the block's own " + from;
      const std::string expected = model.get(from);
      if (use_set) {
        block.set(to, block.get(from));
        model.set(to, expected);
      } else {
        block.add(to, block.get(from));
        model.add(to, expected);
      }
      if (!model.fields.empty() && pick(0, 1) == 0) {
        // The name of a field, as for_each gives it (a view into the block too), to add, set or erase by.
        const std::size_t index = pick(0, model.fields.size() - 1);
        std::string_view view;
        std::size_t i = 0;
        block.for_each([&](std::string_view n, std::string_view) {
          if (i++ == index) view = n;
        });
        const std::string copy(view);
        switch (pick(0, 2)) {
          case 0:
            op += ", then add under the block's own name " + copy;
            block.add(view, "again");
            model.add(copy, "again");
            break;
          case 1:
            op += ", then set under the block's own name " + copy;
            block.set(view, "again");
            model.set(copy, "again");
            break;
          default:
            op += ", then erase by the block's own name " + copy;
            CHECK(block.erase(view) == model.erase(copy));
            break;
        }
      }
    } else if (roll < 86) {
      // Refused input changes nothing.
      const bool bad_name = pick(0, 1) == 0;
      const std::string name = bad_name ? std::string(bad_names[pick(0, std::size(bad_names) - 1)]) : any_name();
      const std::string value =
          bad_name ? any_value() : std::string(bad_values[pick(0, std::size(bad_values) - 1)]);
      CHECK_THROWS_AS(block.add(name, value), std::invalid_argument);
      CHECK_THROWS_AS(block.set(name, value), std::invalid_argument);
    } else if (roll < 94) {
      // Copies and moves keep the fields, whether inline or on the heap, and leave the original whole.
      switch (pick(0, 3)) {
        case 0: {
          header_block copy(block);
          REQUIRE(copy.serialized() == model.serialized());
          block = header_block();
          block = copy;
          break;
        }
        case 1: {
          header_block moved(std::move(block));
          REQUIRE(moved.serialized() == model.serialized());
          block = std::move(moved);
          break;
        }
        case 2: {
          header_block other;
          other.add("X-Other", "left over");
          other = block;
          REQUIRE(other.serialized() == model.serialized());
          other.add("X-Only-In-The-Copy", "1");
          break;
        }
        default: {
          header_block other;
          for (int i = 0; i < 5; ++i) other.add("X-Other", std::string(40, 'o'));  // on the heap
          other = std::move(block);
          block = other;
          break;
        }
      }
    } else if (roll < 97) {
      // A burst of fields, so that the block leaves its inline buffer (or grows on the heap).
      for (std::size_t i = pick(1, 6); i > 0; --i) {
        const std::string name = any_name(), value = any_value();
        block.add(name, value);
        model.add(name, value);
      }
    } else {
      block.clear();
      model.fields.clear();
    }
    INFO("after " << op);
    check_agrees(block, model, rng);
  }
}

// The case the random test found: a field copied within the block. `set` erased the old field, moving the fields
// after it under the value's view, and then appended what the view showed by then, which could hold the CR LF
// that ends a line (validation had passed on the value before the move).
TEST_CASE("header_block: a value or name read from the block itself", "[http][header_block]") {
  header_block block;
  block.add("A", "hello").add("B", "x");
  block.set("A", block.get("A"));
  CHECK(block.serialized() == "B: x\r\nA: hello\r\n");
  block.set("C", block.get("b"));
  CHECK(block.serialized() == "B: x\r\nA: hello\r\nC: x\r\n");
  // Past the inline buffer, so that appending reallocates under the view.
  const std::string long_value(200, 'v');
  block.add("Long", long_value);
  for (int i = 0; i < 4; ++i) block.add("Copy", block.get("long"));
  std::size_t copies = 0;
  block.for_each([&](std::string_view name, std::string_view value) {
    if (name != "Copy") return;
    ++copies;
    CHECK(value == long_value);
  });
  CHECK(copies == 4);
  // Erasing by a name that is a view into the block removes that name's fields and no others.
  std::string_view first_name;
  block.for_each([&](std::string_view name, std::string_view) {
    if (first_name.empty()) first_name = name;
  });
  CHECK(block.erase(first_name) == 1);
  CHECK(block.serialized().starts_with("A: hello\r\nC: x\r\nLong: "));
}

TEST_CASE("field_views: random fields agree with the reference", "[http][fields]") {
  const unsigned seed = GENERATE(range(1u, 31u));
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  auto pick = [&rng](std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
  };
  // Lists for has_token: elements with whitespace around them, empty elements, case variants.
  static constexpr std::string_view list_values[] = {"", "close", "Keep-Alive, Upgrade", " ,  ,upgrade ,", "a b, c",
                                                     "chunked", "gzip,chunked", "x-a", "Close\t,\tfoo", "upgrad"};
  static constexpr std::string_view tokens[] = {"close", "keep-alive", "upgrade", "chunked", "gzip", "a b", "a", "",
                                                "foo", "upgrad", "c"};
  std::deque<std::string> storage;  // what the views point into (a deque never moves its elements)
  field_views fields;
  field_list model;
  for (int step = 0; step < 300; ++step) {
    INFO("step " << step);
    const std::size_t roll = pick(0, 99);
    if (roll < 70) {
      std::string name = random_case(names[pick(0, std::size(names) - 1)], rng);
      std::string value(pick(0, 1) == 0 ? values[pick(0, std::size(values) - 1)]
                                        : list_values[pick(0, std::size(list_values) - 1)]);
      const std::string_view n = storage.emplace_back(name);
      const std::string_view v = storage.emplace_back(value);
      fields.push_back(field_view{n, v});
      model.emplace_back(std::move(name), std::move(value));
    } else if (roll < 85) {
      // Moves the views to copies, as the parser does when it keeps a message beyond its buffer.
      std::deque<std::string> copies;
      fields.remap([&](std::string_view v) -> std::string_view { return copies.emplace_back(v); });
      storage.swap(copies);
    } else if (roll < 95) {
      fields.clear();
      model.clear();
    } else {
      fields.release();
      model.clear();
    }
    REQUIRE(fields.size() == model.size());
    CHECK(fields.empty() == model.empty());
    field_list seen;
    for (const field_view& f : fields) seen.emplace_back(f.name, f.value);
    CHECK(seen == model);
    for (std::size_t i = 0; i < model.size(); ++i) {
      CHECK(fields[i].name == model[i].first);
      CHECK(fields[i].value == model[i].second);
    }
    for (std::string_view base : names) {
      const std::string name = random_case(base, rng);
      INFO("name " << name);
      std::size_t count = 0;
      std::string first;
      bool found = false;
      for (const auto& [n, v] : model) {
        if (!same_name(n, name)) continue;
        if (!found) first = v;
        found = true;
        ++count;
      }
      CHECK(fields.contains(name) == found);
      CHECK(fields.get(name) == first);
      CHECK(fields.count(name) == count);
      for (std::string_view base_token : tokens) {
        const std::string token = random_case(base_token, rng);
        // RFC 9110 §5.6.1 and §5.3: one comma-separated list over every line of the name, elements trimmed of
        // OWS, empty elements ignored.
        bool expected = false;
        for (const auto& [n, v] : model) {
          if (!same_name(n, name)) continue;
          std::size_t start = 0;
          while (start <= v.size()) {
            std::size_t comma = v.find(',', start);
            if (comma == std::string::npos) comma = v.size();
            std::string_view element(v.data() + start, comma - start);
            while (!element.empty() && (element.front() == ' ' || element.front() == '\t')) element.remove_prefix(1);
            while (!element.empty() && (element.back() == ' ' || element.back() == '\t')) element.remove_suffix(1);
            if (!element.empty() && same_name(element, token)) expected = true;
            start = comma + 1;
          }
        }
        INFO("token " << token);
        CHECK(fields.has_token(name, token) == expected);
      }
    }
  }
}
