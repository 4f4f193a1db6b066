// switchboard/http/date.hpp
//
// HTTP dates (RFC 9110 §5.6.7): formatting IMF-fixdate, the form every sender must generate, and strict parsing
// of the three forms a recipient must accept:
//
//   IMF-fixdate  Sun, 06 Nov 1994 08:49:37 GMT
//   rfc850-date  Sunday, 06-Nov-94 08:49:37 GMT     (obsolete)
//   asctime-date Sun Nov  6 08:49:37 1994           (obsolete)
//
// "Strict" means the grammar exactly: HTTP-date is case-sensitive, has no whitespace beyond the single SPs of the
// grammar (nor around it: pass the field value already trimmed of OWS, as a field parser delivers it), and names
// a real instant: the day exists in its month, hours 00-23, minutes 00-59, seconds 00-59 or the leap second
// 23:59:60 (which is read as the next day's 00:00:00). The day name must also be the right one for the date: a
// date that contradicts itself is rejected rather than guessed at. A recipient ignores a conditional header
// whose date does not parse (§13.1.3, §13.1.4), so rejecting errs on the side of sending a full response.
//
// The `Date` header (§6.6.1) of every response needs the current time in IMF-fixdate; `current_http_date()`
// formats it at most once per second per thread.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <ratio>
#include <string_view>
#include <type_traits>
#include <time.h>

namespace switchboard::http {

/// The length of an IMF-fixdate such as "Sun, 06 Nov 1994 08:49:37 GMT".
inline constexpr std::size_t http_date_length = 29;

/// Room for one IMF-fixdate.
using http_date_buffer = std::array<char, http_date_length>;

namespace detail {

inline constexpr std::array<std::string_view, 7> day_names = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
inline constexpr std::array<std::string_view, 7> long_day_names = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                                   "Thursday", "Friday", "Saturday"};
inline constexpr std::array<std::string_view, 12> month_names = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

inline constexpr std::chrono::sys_seconds earliest_http_date =
    std::chrono::sys_days{std::chrono::year{0} / std::chrono::January / 1};
inline constexpr std::chrono::sys_seconds latest_http_date =
    std::chrono::sys_days{std::chrono::year{9999} / std::chrono::December / 31} + std::chrono::hours{23} +
    std::chrono::minutes{59} + std::chrono::seconds{59};

constexpr void put_digits(char* out, unsigned value, int count) noexcept {
  for (int i = count - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

/// The value of `count` decimal digits at the start of `s`, or -1 if they are not all digits.
constexpr int read_digits(std::string_view s, std::size_t count) noexcept {
  if (s.size() < count) return -1;
  int value = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    value = value * 10 + (s[i] - '0');
  }
  return value;
}

/// The index of `name` in `names`, or -1.
template <std::size_t N>
constexpr int index_of(std::string_view name, const std::array<std::string_view, N>& names) noexcept {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == name) return static_cast<int>(i);
  }
  return -1;
}

/// Three characters as one number, so that the day and month names are compared with one integer comparison each
/// rather than a string comparison (which a profile showed was most of the parsing time).
constexpr std::uint32_t pack3(std::string_view s) noexcept {
  return static_cast<std::uint32_t>(static_cast<unsigned char>(s[0])) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(s[1])) << 8 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(s[2])) << 16;
}

/// The index of the three-character `name` in `names` (all of three characters), or -1.
template <std::size_t N>
constexpr int index_of_short(std::string_view name, const std::array<std::string_view, N>& names) noexcept {
  const std::uint32_t key = pack3(name);
  for (std::size_t i = 0; i < N; ++i) {
    if (pack3(names[i]) == key) return static_cast<int>(i);
  }
  return -1;
}

/// The fields of a date as written, before they are checked against each other.
struct date_fields {
  int weekday = -1;  // 0 = Sunday, as in `day_names`
  int year = -1;
  int month = -1;    // 0 = January
  int day = -1;
  int hour = -1;
  int minute = -1;
  int second = -1;
};

/// Reads "HH:MM:SS" at the start of `s` into `f`; false if it is not that shape.
constexpr bool read_time_of_day(std::string_view s, date_fields& f) noexcept {
  if (s.size() < 8 || s[2] != ':' || s[5] != ':') return false;
  f.hour = read_digits(s, 2);
  f.minute = read_digits(s.substr(3), 2);
  f.second = read_digits(s.substr(6), 2);
  return f.hour >= 0 && f.minute >= 0 && f.second >= 0;
}

/// The instant `f` names, if its fields are in range and agree with each other.
inline std::optional<std::chrono::sys_seconds> to_instant(const date_fields& f) noexcept {
  using namespace std::chrono;
  if (f.year < 0 || f.month < 0 || f.day < 0 || f.weekday < 0) return std::nullopt;
  const year_month_day date{year{f.year}, month{static_cast<unsigned>(f.month + 1)}, day{static_cast<unsigned>(f.day)}};
  if (!date.ok()) return std::nullopt;
  const bool leap_second = f.hour == 23 && f.minute == 59 && f.second == 60;
  if (f.hour > 23 || f.minute > 59 || (f.second > 59 && !leap_second)) return std::nullopt;
  const sys_days days{date};
  if (weekday{days}.c_encoding() != static_cast<unsigned>(f.weekday)) return std::nullopt;
  return days + hours{f.hour} + minutes{f.minute} + seconds{f.second};
}

// IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT ; date1 = day SP month SP year (2DIGIT, 4DIGIT)
inline std::optional<std::chrono::sys_seconds> parse_imf_fixdate(std::string_view s) noexcept {
  if (s.size() != http_date_length || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s[25] != ' ' || s.substr(26) != "GMT") {
    return std::nullopt;
  }
  date_fields f;
  f.weekday = index_of_short(s.substr(0, 3), day_names);
  f.day = read_digits(s.substr(5), 2);
  f.month = index_of_short(s.substr(8, 3), month_names);
  f.year = read_digits(s.substr(12), 4);
  if (!read_time_of_day(s.substr(17), f)) return std::nullopt;
  return to_instant(f);
}

// asctime-date = day-name SP date3 SP time-of-day SP year ; date3 = month SP ( 2DIGIT / ( SP DIGIT ) )
inline std::optional<std::chrono::sys_seconds> parse_asctime_date(std::string_view s) noexcept {
  if (s.size() != 24 || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ') return std::nullopt;
  date_fields f;
  f.weekday = index_of_short(s.substr(0, 3), day_names);
  f.month = index_of_short(s.substr(4, 3), month_names);
  f.day = s[8] == ' ' ? read_digits(s.substr(9), 1) : read_digits(s.substr(8), 2);
  f.year = read_digits(s.substr(20), 4);
  if (!read_time_of_day(s.substr(11), f)) return std::nullopt;
  return to_instant(f);
}

// rfc850-date = day-name-l "," SP date2 SP time-of-day SP GMT ; date2 = day "-" month "-" 2DIGIT
// The century is chosen as §5.6.7 requires: a date that would be more than 50 years in the future is read as
// the most recent year in the past with the same last two digits.
inline std::optional<std::chrono::sys_seconds> parse_rfc850_date(std::string_view s,
                                                                 std::chrono::sys_seconds now) noexcept {
  using namespace std::chrono;
  const std::size_t comma = s.find(',');
  if (comma == std::string_view::npos) return std::nullopt;
  const std::string_view rest = s.substr(comma);  // ", DD-Mon-YY HH:MM:SS GMT"
  if (rest.size() != 24 || rest[1] != ' ' || rest[4] != '-' || rest[8] != '-' || rest[11] != ' ' ||
      rest[20] != ' ' || rest.substr(21) != "GMT") {
    return std::nullopt;
  }
  date_fields f;
  f.weekday = index_of(s.substr(0, comma), long_day_names);
  f.day = read_digits(rest.substr(2), 2);
  f.month = index_of_short(rest.substr(5, 3), month_names);
  const int two_digits = read_digits(rest.substr(9), 2);
  if (two_digits < 0 || !read_time_of_day(rest.substr(12), f)) return std::nullopt;

  // "More than 50 years in the future": later than the same calendar instant 50 years from now. Compared field
  // by field, so that it also holds for 29 February.
  const sys_days today = floor<days>(now);
  const year_month_day now_date{today};
  const hh_mm_ss now_time{now - today};
  const int now_year = static_cast<int>(now_date.year());
  auto more_than_50_years_ahead = [&](int candidate_year) {
    const auto key = [](int y, unsigned mo, unsigned d, long long s) { return std::array<long long, 4>{y, mo, d, s}; };
    return key(candidate_year, static_cast<unsigned>(f.month + 1), static_cast<unsigned>(f.day),
               f.hour * 3600LL + f.minute * 60 + f.second) >
           key(now_year + 50, static_cast<unsigned>(now_date.month()), static_cast<unsigned>(now_date.day()),
               now_time.to_duration().count());
  };
  f.year = now_year - now_year % 100 + 100 + two_digits;  // the candidate in the next century first
  while (more_than_50_years_ahead(f.year)) f.year -= 100;
  return to_instant(f);
}

// `t` truncated to whole seconds and clamped to the years 0000-9999. Converting days, or a floating-point count, to
// seconds can overflow far outside that range (undefined behaviour), and the bounds cannot be written in an unsigned
// count (the earliest is negative), so such an instant is compared with the bounds in long double seconds first,
// which hold both exactly. NaN is taken as the earliest.
template <class Duration>
constexpr std::chrono::sys_seconds clamp_to_http_dates(std::chrono::sys_time<Duration> t) noexcept {
  using namespace std::chrono;
  using rep = typename Duration::rep;
  if constexpr (treat_as_floating_point_v<rep> || std::ratio_greater_v<typename Duration::period, std::ratio<1>> ||
                !std::is_signed_v<rep>) {
    using long_seconds = duration<long double>;
    const long double at = long_seconds(t.time_since_epoch()).count();
    if (!(at >= long_seconds(earliest_http_date.time_since_epoch()).count())) return earliest_http_date;
    if (at > long_seconds(latest_http_date.time_since_epoch()).count()) return latest_http_date;
  }
  return std::clamp(floor<seconds>(t), earliest_http_date, latest_http_date);
}

}  // namespace detail

/// Writes `t`, truncated to whole seconds, as an IMF-fixdate into `out` and returns a view of it. Instants
/// outside the years 0000-9999, which the format cannot express, are clamped to that range.
template <class Duration>
std::string_view format_http_date(std::chrono::sys_time<Duration> t, http_date_buffer& out) noexcept {
  using namespace std::chrono;
  const sys_seconds s = detail::clamp_to_http_dates(t);
  const sys_days days = floor<std::chrono::days>(s);
  const year_month_day date{days};
  const hh_mm_ss time{s - days};
  char* p = out.data();
  const std::string_view day_name = detail::day_names[weekday{days}.c_encoding()];
  const std::string_view month_name = detail::month_names[static_cast<unsigned>(date.month()) - 1];
  // "Www, DD Mmm YYYY HH:MM:SS GMT"
  p[0] = day_name[0], p[1] = day_name[1], p[2] = day_name[2], p[3] = ',', p[4] = ' ';
  detail::put_digits(p + 5, static_cast<unsigned>(date.day()), 2);
  p[7] = ' ', p[8] = month_name[0], p[9] = month_name[1], p[10] = month_name[2], p[11] = ' ';
  detail::put_digits(p + 12, static_cast<unsigned>(static_cast<int>(date.year())), 4);
  p[16] = ' ';
  detail::put_digits(p + 17, static_cast<unsigned>(time.hours().count()), 2);
  p[19] = ':';
  detail::put_digits(p + 20, static_cast<unsigned>(time.minutes().count()), 2);
  p[22] = ':';
  detail::put_digits(p + 23, static_cast<unsigned>(time.seconds().count()), 2);
  p[25] = ' ', p[26] = 'G', p[27] = 'M', p[28] = 'T';
  return {out.data(), out.size()};
}

/// Parses an HTTP-date in any of its three forms (see the file comment), or returns nullopt. `now` decides the
/// century of an rfc850-date's two-digit year.
inline std::optional<std::chrono::sys_seconds> parse_http_date(std::string_view text,
                                                               std::chrono::sys_seconds now) noexcept {
  if (text.size() < 4) return std::nullopt;
  if (text[3] == ',') return detail::parse_imf_fixdate(text);
  if (text[3] == ' ') return detail::parse_asctime_date(text);
  return detail::parse_rfc850_date(text, now);
}

/// `parse_http_date` with the current time deciding the century of an rfc850-date.
inline std::optional<std::chrono::sys_seconds> parse_http_date(std::string_view text) noexcept {
  return parse_http_date(text, std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
}

/// Remembers the IMF-fixdate of the last second it was asked for, so that a server formats its `Date` header at
/// most once per second. Not thread-safe: one per thread (see `current_http_date`).
class http_date_cache {
 public:
  /// `now` as an IMF-fixdate, reformatted only when its second differs from the previous call's. The view
  /// refers to this cache and changes when a later call reformats.
  template <class Duration>
  std::string_view get(std::chrono::sys_time<Duration> now) noexcept {
    const std::chrono::sys_seconds second = std::chrono::floor<std::chrono::seconds>(now);
    if (second != second_) {
      second_ = second;
      format_http_date(second, text_);
    }
    return {text_.data(), text_.size()};
  }

 private:
  http_date_buffer text_{};
  std::chrono::sys_seconds second_ = std::chrono::sys_seconds::min();
};

/// The current time as an IMF-fixdate, for the `Date` header (RFC 9110 §6.6.1). Formatted at most once per second
/// on each thread. The view stays valid until the thread ends; its text changes on a later call in a new second,
/// so copy it into the response before calling again.
///
/// Where the system has it, the time is read from CLOCK_REALTIME_COARSE: it costs a fraction of
/// `system_clock::now()` (which dominated the cost of this call), and its resolution of a few milliseconds is
/// far finer than the header's one second.
inline std::string_view current_http_date() noexcept {
  thread_local http_date_cache cache;
#if defined(CLOCK_REALTIME_COARSE)
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
  return cache.get(std::chrono::sys_seconds{std::chrono::seconds{now.tv_sec}});
#else
  return cache.get(std::chrono::system_clock::now());
#endif
}

}  // namespace switchboard::http
