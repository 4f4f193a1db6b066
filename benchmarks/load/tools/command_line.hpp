// command_line: what the load tools' option parsing shares: a usage error that names the tool and shows its usage
// text (exit status 2, as the scripts expect of a usage error), --help (exit status 0), and numbers checked
// against a range.
#pragma once

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace load_tools {

class command_line {
 public:
  /// `tool` names the program in messages; `usage` is its usage text, printed by --help and after an error.
  command_line(std::string tool, std::string usage) : tool_(std::move(tool)), usage_(std::move(usage)) {}

  /// Exits with status 2 after printing `message` and the usage text.
  [[noreturn]] void usage_error(const std::string& message) const {
    std::fprintf(stderr, "%s: %s\n%s", tool_.c_str(), message.c_str(), usage_.c_str());
    std::exit(2);
  }

  /// Prints the usage text and exits with status 0 (--help).
  [[noreturn]] void help() const {
    std::fputs(usage_.c_str(), stdout);
    std::exit(0);
  }

  /// `text` as a number in [low, high] (a whole number unless T is floating point), or a usage error naming
  /// `flag`.
  template <class T = unsigned>
  T number(std::string_view text, std::type_identity_t<T> low, std::type_identity_t<T> high,
           std::string_view flag) const {
    T value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || !(value >= low) || !(value <= high)) {
      usage_error(std::string(flag) + " needs a " + (std::is_floating_point_v<T> ? "number" : "whole number") +
                  " from " + format(low) + " to " + format(high) + ", got '" + std::string(text) + "'");
    }
    return value;
  }

  /// A comma-separated list of process ids (--measure-pids), or a usage error naming `flag`.
  std::vector<int> pid_list(std::string_view list, std::string_view flag) const {
    std::vector<int> pids;
    while (!list.empty()) {
      const std::size_t comma = list.find(',');
      pids.push_back(number<int>(list.substr(0, comma), 1, 1 << 30, flag));
      list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    }
    return pids;
  }

 private:
  template <class T>
  static std::string format(T value) {
    if constexpr (std::is_floating_point_v<T>) {
      char text[32];
      std::snprintf(text, sizeof text, "%g", static_cast<double>(value));
      return text;
    } else {
      return std::to_string(value);
    }
  }

  std::string tool_;
  std::string usage_;
};

}  // namespace load_tools
