// switchboard/core/log.hpp
//
// The library's logging hook. Every component logs through `switchboard::log(level, component, parts...)`; the
// application decides where records go (`set_log_sink`) and from which level (`set_log_level`):
//
//     switchboard::set_log_level(switchboard::log_level::debug);
//     switchboard::set_log_sink([](switchboard::log_level level, std::string_view component, std::string_view message) {
//       my_logger.write(to_string(level), component, message);
//     });
//     switchboard::log(switchboard::log_level::warn, "http", "closing ", peer, ": ", ec);
//
// A disabled record costs one relaxed atomic load: its parts are not formatted. The default sink writes one line
// per record to stderr: `2024-05-01T12:00:00.123Z warn [http] closing 10.0.0.1:4242: End of file [asio.misc:2]`.
// The threshold starts at `info`, and is never read from the environment: the application sets it.
#pragma once

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace switchboard {

/// The severity of a log record, in increasing order. `off` is only a threshold: it disables every record.
enum class log_level { trace, debug, info, warn, error, off };

/// The lower-case name of a level ("trace", ..., "off").
constexpr std::string_view to_string(log_level level) noexcept {
  switch (level) {
    case log_level::trace: return "trace";
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warn: return "warn";
    case log_level::error: return "error";
    case log_level::off: return "off";
  }
  return "unknown";
}

/// Receives every enabled record: its level, the component that logged it ("http", "ws", "pubsub", ...) and the
/// formatted message. Called on the thread that logs, possibly from several threads at once, so it must be
/// thread-safe; the views are valid during the call only. It should not throw (a record whose sink throws is
/// dropped).
using log_sink = std::function<void(log_level level, std::string_view component, std::string_view message)>;

namespace detail {

// The threshold, read on every `log` call: a constant-initialised inline variable, so one relaxed load.
inline std::atomic<log_level> log_threshold_value{log_level::info};

// The sink, replaced under the mutex and copied out of it before each call, so that replacing it never races
// with a call, and a call in progress keeps the old sink alive until it returns.
struct log_sink_slot {
  std::mutex mutex;
  std::shared_ptr<const log_sink> sink;  // null: the default stderr sink
};

// Never destroyed: a static object made before the first `log` call is destroyed after a function-local static
// would be, and may log from its destructor; so may a thread still running at exit.
inline log_sink_slot& sink_slot() {
  static log_sink_slot* const slot = new log_sink_slot;
  return *slot;
}

/// Appends the default sink's line for a record made at `time`, ending with LF. Line breaks in the message are
/// written as `\n` and `\r`, so that one record is always one line.
inline void append_log_line(std::chrono::system_clock::time_point time, log_level level, std::string_view component,
                            std::string_view message, std::string& out) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(time);
  const auto day = floor<days>(ms);
  const year_month_day date{day};
  const hh_mm_ss clock{ms - day};
  char stamp[96];  // far more than "YYYY-MM-DDTHH:MM:SS.mmmZ " needs, so that no year can truncate it
  const int length = std::snprintf(stamp, sizeof stamp, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ ",
                                   static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                                   static_cast<unsigned>(date.day()), static_cast<int>(clock.hours().count()),
                                   static_cast<int>(clock.minutes().count()), static_cast<int>(clock.seconds().count()),
                                   static_cast<int>(clock.subseconds().count()));
  out.append(stamp, static_cast<std::size_t>(length));
  out += to_string(level);
  out += " [";
  out += component;
  out += "] ";
  for (char c : message) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out += c;
    }
  }
  out += '\n';
}

/// The default sink: one line to stderr, written with a single call so that lines from several threads do not
/// interleave (stdio locks the stream for the call).
inline void write_log_line_to_stderr(log_level level, std::string_view component, std::string_view message) {
  std::string line;
  append_log_line(std::chrono::system_clock::now(), level, component, message, line);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

template <class>
inline constexpr bool unsupported_log_part = false;

/// Appends one part of a message: text, a character, a number, a bool, an `error_code` (its message with
/// category and value), an enum that has a `to_string` (found by argument-dependent lookup), or a pointer.
template <class T>
void append_log_part(const T& part, std::string& out) {
  if constexpr (std::is_same_v<T, bool>) {
    out += part ? "true" : "false";
  } else if constexpr (std::is_same_v<T, char>) {
    out += part;
  } else if constexpr (std::is_same_v<T, const char*> || std::is_same_v<T, char*>) {  // may be null
    out += part != nullptr ? std::string_view(part) : std::string_view("(null)");
  } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    out += std::string_view(part);
  } else if constexpr (std::is_arithmetic_v<T>) {
    char digits[32];
    const auto result = std::to_chars(digits, digits + sizeof digits, part);
    out.append(digits, result.ptr);
  } else if constexpr (std::is_same_v<T, std::error_code>) {
    out += part.message();
    out += " [";
    out += part.category().name();
    out += ':';
    append_log_part(part.value(), out);
    out += ']';
  } else if constexpr (std::is_enum_v<T> && requires { { to_string(part) } -> std::convertible_to<std::string_view>; }) {
    out += std::string_view(to_string(part));
  } else if constexpr (std::is_pointer_v<T>) {
    char digits[24] = {'0', 'x'};
    const auto result = std::to_chars(digits + 2, digits + sizeof digits, reinterpret_cast<std::uintptr_t>(part), 16);
    out.append(digits, result.ptr);
  } else {
    static_assert(unsupported_log_part<T>, "switchboard::log: convert this part to a string first");
  }
}

}  // namespace detail

/// Sets the lowest level that is logged (`info` at start); `log_level::off` disables logging.
inline void set_log_level(log_level threshold) noexcept {
  detail::log_threshold_value.store(threshold, std::memory_order_relaxed);
}

/// The lowest level that is logged.
inline log_level get_log_level() noexcept { return detail::log_threshold_value.load(std::memory_order_relaxed); }

/// True when a record of `level` would be written: the cheap check `log` makes first.
inline bool log_enabled(log_level level) noexcept {
  return level != log_level::off && level >= detail::log_threshold_value.load(std::memory_order_relaxed);
}

/// Replaces the process-wide sink; an empty function restores the default (stderr). Thread-safe. A record being
/// written while the sink is replaced may still go to the old one, which is destroyed when that call returns.
inline void set_log_sink(log_sink sink) {
  auto replacement = sink ? std::make_shared<const log_sink>(std::move(sink)) : nullptr;
  detail::log_sink_slot& slot = detail::sink_slot();
  const std::lock_guard lock(slot.mutex);
  slot.sink.swap(replacement);  // the old sink is released after the lock, by `replacement`'s destructor
}

/// Logs a record of `level` for `component`, its message the concatenation of `parts` (see
/// `detail::append_log_part` for the types accepted). Does nothing, and formats nothing, when the level is not
/// enabled. Never throws: a record whose formatting or sink throws is dropped, since logging is often done on
/// error paths that must not fail again.
template <class... Parts>
void log(log_level level, std::string_view component, const Parts&... parts) noexcept {
  if (!log_enabled(level)) return;
  try {
    std::string message;
    (detail::append_log_part(parts, message), ...);
    std::shared_ptr<const log_sink> sink;
    {
      detail::log_sink_slot& slot = detail::sink_slot();
      const std::lock_guard lock(slot.mutex);
      sink = slot.sink;
    }
    if (sink) {
      (*sink)(level, component, message);
    } else {
      detail::write_log_line_to_stderr(level, component, message);
    }
  } catch (...) {
    // Dropped: see above.
  }
}

}  // namespace switchboard
