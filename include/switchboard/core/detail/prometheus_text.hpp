// switchboard/core/detail/prometheus_text.hpp
//
// The lexical rules of the Prometheus text exposition format 0.0.4 (prometheus.io "Exposition formats", and the
// data model's naming rules): what names may be, how label values and HELP text are escaped, and how sample
// values are written.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

namespace switchboard::detail {

constexpr bool is_ascii_letter(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_ascii_digit(char c) noexcept { return c >= '0' && c <= '9'; }

/// A metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
constexpr bool is_metric_name(std::string_view name) noexcept {
  if (name.empty() || is_ascii_digit(name.front())) return false;
  for (char c : name) {
    if (!is_ascii_letter(c) && !is_ascii_digit(c) && c != '_' && c != ':') return false;
  }
  return true;
}

/// A label name: `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`, which Prometheus reserves for itself.
constexpr bool is_label_name(std::string_view name) noexcept {
  if (name.empty() || is_ascii_digit(name.front()) || name.starts_with("__")) return false;
  for (char c : name) {
    if (!is_ascii_letter(c) && !is_ascii_digit(c) && c != '_') return false;
  }
  return true;
}

/// Appends a label value, escaping backslash, double quote and line feed as `\\`, `\"` and `\n`.
inline void append_label_value(std::string_view value, std::string& out) {
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

/// Appends HELP text, escaping backslash and line feed as `\\` and `\n` (quotes are not escaped there).
inline void append_help(std::string_view help, std::string& out) {
  for (char c : help) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

/// Appends a float sample value as Prometheus reads it (Go's ParseFloat): `NaN`, `+Inf`, `-Inf`, or the shortest
/// decimal form that reads back as the same double.
inline void append_value(double value, std::string& out) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else {
    char digits[32];
    const auto result = std::to_chars(digits, digits + sizeof digits, value);
    out.append(digits, result.ptr);
  }
}

/// Appends an integer sample value.
inline void append_value(std::uint64_t value, std::string& out) {
  char digits[24];
  const auto result = std::to_chars(digits, digits + sizeof digits, value);
  out.append(digits, result.ptr);
}

}  // namespace switchboard::detail
