// Short constructors of expected `resp::value`s for the RESP tests, and a printer so that Catch2 shows them.
#pragma once

#include <switchboard/resp/value.hpp>

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace switchboard::resp::testing {

inline value of_kind(value_kind kind) {
  value v;
  v.kind = kind;
  return v;
}
inline value with_text(value_kind kind, std::string text) {
  value v = of_kind(kind);
  v.text = std::move(text);
  return v;
}
inline value with_elements(value_kind kind, std::vector<value> elements) {
  value v = of_kind(kind);
  v.elements = std::move(elements);
  return v;
}

inline value simple(std::string s) { return with_text(value_kind::simple_string, std::move(s)); }
inline value simple_error(std::string s) { return with_text(value_kind::simple_error, std::move(s)); }
inline value bulk(std::string s) { return with_text(value_kind::bulk_string, std::move(s)); }
inline value big(std::string s) { return with_text(value_kind::big_number, std::move(s)); }
inline value verbatim(std::string s) { return with_text(value_kind::verbatim_string, std::move(s)); }
inline value blob_error(std::string s) { return with_text(value_kind::blob_error, std::move(s)); }
inline value null() { return of_kind(value_kind::null); }
inline value integer(std::int64_t n) {
  value v = of_kind(value_kind::integer);
  v.integer = n;
  return v;
}
inline value number(double x) {
  value v = of_kind(value_kind::double_number);
  v.number = x;
  return v;
}
inline value boolean(bool b) {
  value v = of_kind(value_kind::boolean);
  v.boolean = b;
  return v;
}
inline value array(std::vector<value> e) { return with_elements(value_kind::array, std::move(e)); }
inline value map(std::vector<value> e) { return with_elements(value_kind::map, std::move(e)); }
inline value set(std::vector<value> e) { return with_elements(value_kind::set, std::move(e)); }
inline value push(std::vector<value> e) { return with_elements(value_kind::push, std::move(e)); }
inline value with_attributes(value v, std::vector<value> attributes) {
  v.attributes = std::move(attributes);
  return v;
}

}  // namespace switchboard::resp::testing

namespace switchboard::resp {

// Found by argument-dependent lookup, so Catch2 prints values in failed checks.
inline std::ostream& operator<<(std::ostream& os, const value& v) {
  static constexpr const char* names[] = {"simple", "error", "integer", "bulk", "null", "array", "map",
                                          "set", "push", "double", "boolean", "big", "verbatim", "blob_error"};
  os << names[static_cast<int>(v.kind)] << '(';
  switch (v.kind) {
    case value_kind::integer: os << v.integer; break;
    case value_kind::double_number: os << v.number; break;
    case value_kind::boolean: os << (v.boolean ? "true" : "false"); break;
    default: os << v.text; break;
  }
  for (const value& e : v.elements) os << ' ' << e;
  if (!v.attributes.empty()) {
    os << " |";
    for (const value& a : v.attributes) os << ' ' << a;
  }
  return os << ')';
}

}  // namespace switchboard::resp
