#include <switchboard/http/date.hpp>

#include "support/catch.hpp"

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono;
using switchboard::http::current_http_date;
using switchboard::http::format_http_date;
using switchboard::http::http_date_buffer;
using switchboard::http::http_date_cache;
using switchboard::http::parse_http_date;

namespace {

constexpr sys_seconds at(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
  return sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} + seconds{s};
}

template <class Duration>
std::string formatted(sys_time<Duration> t) {
  http_date_buffer buffer;
  return std::string(format_http_date(t, buffer));
}

// Parsing is done relative to a fixed "now" so that the rfc850 century rule gives the same answer every year.
constexpr sys_seconds now_2024 = at(2024, 5, 1, 12, 0, 0);

}  // namespace

TEST_CASE("http date: IMF-fixdate formatting", "[http][date]") {
  CHECK(formatted(sys_seconds{0s}) == "Thu, 01 Jan 1970 00:00:00 GMT");
  CHECK(formatted(sys_seconds{784111777s}) == "Sun, 06 Nov 1994 08:49:37 GMT");  // RFC 9110 §5.6.7 example
  CHECK(formatted(at(2000, 2, 29, 23, 59, 59)) == "Tue, 29 Feb 2000 23:59:59 GMT");
  CHECK(formatted(sys_seconds{2147483648s}) == "Tue, 19 Jan 2038 03:14:08 GMT");  // past 32-bit time_t
  CHECK(formatted(at(1969, 12, 31, 23, 59, 59)) == "Wed, 31 Dec 1969 23:59:59 GMT");

  SECTION("fractions of a second are truncated, also before 1970") {
    CHECK(formatted(sys_seconds{784111777s} + 999ms) == "Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK(formatted(sys_seconds{0s} - 1ms) == "Wed, 31 Dec 1969 23:59:59 GMT");
  }
  SECTION("instants outside 0000-9999 are clamped") {
    CHECK(formatted(at(0, 1, 1)) == "Sat, 01 Jan 0000 00:00:00 GMT");
    CHECK(formatted(at(-5, 6, 1)) == "Sat, 01 Jan 0000 00:00:00 GMT");
    CHECK(formatted(at(9999, 12, 31, 23, 59, 59)) == "Fri, 31 Dec 9999 23:59:59 GMT");
    CHECK(formatted(at(12000, 1, 1)) == "Fri, 31 Dec 9999 23:59:59 GMT");
    // In units whose conversion to seconds would overflow: clamped before it.
    CHECK(formatted(sys_days::max()) == "Fri, 31 Dec 9999 23:59:59 GMT");
    CHECK(formatted(sys_time<hours>::min()) == "Sat, 01 Jan 0000 00:00:00 GMT");
    CHECK(formatted(sys_days{year{9999} / 12 / 31}) == "Fri, 31 Dec 9999 00:00:00 GMT");
    CHECK(formatted(sys_time<duration<double>>(duration<double>(1e300))) == "Fri, 31 Dec 9999 23:59:59 GMT");
    CHECK(formatted(sys_time<duration<double>>(duration<double>(-1e300))) == "Sat, 01 Jan 0000 00:00:00 GMT");
    CHECK(formatted(sys_time<duration<double>>(duration<double>(784111777.5))) == "Sun, 06 Nov 1994 08:49:37 GMT");
    // Unsigned counts, in which the earliest bound (before 1970) cannot be written.
    using unsigned_days = duration<unsigned, days::period>;
    using unsigned_seconds = duration<unsigned long long>;
    CHECK(formatted(sys_time<unsigned_days>(unsigned_days(0))) == "Thu, 01 Jan 1970 00:00:00 GMT");
    CHECK(formatted(sys_time<unsigned_seconds>(unsigned_seconds::max())) == "Fri, 31 Dec 9999 23:59:59 GMT");
    CHECK(formatted(sys_time<unsigned_seconds>(unsigned_seconds(784111777))) == "Sun, 06 Nov 1994 08:49:37 GMT");
  }
  SECTION("system_clock::now() formats and parses back") {
    const auto now = system_clock::now();
    CHECK(parse_http_date(formatted(now)) == floor<seconds>(now));
  }
}

TEST_CASE("http date: the three formats of RFC 9110 5.6.7", "[http][date]") {
  const sys_seconds expected{784111777s};
  CHECK(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", now_2024) == expected);
  CHECK(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", now_2024) == expected);
  CHECK(parse_http_date("Sun Nov  6 08:49:37 1994", now_2024) == expected);
  CHECK(parse_http_date("Sun Nov 06 08:49:37 1994", now_2024) == expected);  // date3 allows 2DIGIT too
  CHECK(parse_http_date("Wed, 09 Jun 2021 10:18:14 GMT", now_2024) == at(2021, 6, 9, 10, 18, 14));
  CHECK(parse_http_date("Wednesday, 09-Jun-21 10:18:14 GMT", now_2024) == at(2021, 6, 9, 10, 18, 14));
  CHECK(parse_http_date("Wed Jun 30 21:49:08 1993", now_2024) == at(1993, 6, 30, 21, 49, 8));
  CHECK(parse_http_date("Sat, 01 Jan 0000 00:00:00 GMT", now_2024) == at(0, 1, 1));
  CHECK(parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT", now_2024) == at(9999, 12, 31, 23, 59, 59));
}

TEST_CASE("http date: the leap second 23:59:60 is the next day's midnight", "[http][date]") {
  CHECK(parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT", now_2024) == at(2017, 1, 1));
  CHECK(parse_http_date("Saturday, 31-Dec-16 23:59:60 GMT", now_2024) == at(2017, 1, 1));
  CHECK(parse_http_date("Sat Dec 31 23:59:60 2016", now_2024) == at(2017, 1, 1));
}

TEST_CASE("http date: rfc850 two-digit years", "[http][date]") {
  // §5.6.7: a date more than 50 years in the future is the most recent year in the past with those digits.
  CHECK(parse_http_date("Tuesday, 01-May-74 12:00:00 GMT", now_2024) == at(2074, 5, 1, 12));  // exactly 50 years
  CHECK(parse_http_date("Wednesday, 01-May-74 12:00:01 GMT", now_2024) == at(1974, 5, 1, 12, 0, 1));  // a second more
  CHECK(parse_http_date("Wednesday, 01-May-30 00:00:00 GMT", now_2024) == at(2030, 5, 1));
  CHECK(parse_http_date("Wednesday, 01-Jan-70 00:00:00 GMT", now_2024) == at(2070, 1, 1));  // 46 years ahead
  CHECK(!parse_http_date("Thursday, 01-Jan-70 00:00:00 GMT", now_2024));  // the epoch's day name: wrong century
  CHECK(parse_http_date("Monday, 01-Jan-24 00:00:00 GMT", now_2024) == at(2024, 1, 1));
  SECTION("near the end of a century the next one is near") {
    const sys_seconds now_2099 = at(2099, 6, 1);
    CHECK(parse_http_date("Saturday, 01-Jan-01 00:00:00 GMT", now_2099) == at(2101, 1, 1));
    CHECK(parse_http_date("Saturday, 01-Jan-50 00:00:00 GMT", now_2099) == at(2050, 1, 1));
  }
  SECTION("the day name must match the chosen century") {
    CHECK(!parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", at(2090, 1, 1)));  // 2094-11-06 is a Saturday
    CHECK(parse_http_date("Saturday, 06-Nov-94 08:49:37 GMT", at(2090, 1, 1)) == at(2094, 11, 6, 8, 49, 37));
  }
}

TEST_CASE("http date: strict parsing rejects everything else", "[http][date]") {
  const std::vector<const char*> invalid = {
      "",
      "Sun",
      "Sun, 06 Nov 1994 08:49:37 GMT ",   // trailing whitespace
      " Sun, 06 Nov 1994 08:49:37 GMT",   // leading whitespace
      "Sun,  06 Nov 1994 08:49:37 GMT",   // extra space
      "Sun, 6 Nov 1994 08:49:37 GMT",     // one-digit day
      "sun, 06 Nov 1994 08:49:37 GMT",    // case-sensitive
      "Sun, 06 nov 1994 08:49:37 GMT",
      "Sun, 06 Nov 1994 08:49:37 gmt",
      "Sun, 06 Nov 1994 08:49:37 UTC",
      "Sun, 06 Nov 1994 08:49:37 +0000",
      "Sun, 06 Nov 94 08:49:37 GMT",      // two-digit year in IMF-fixdate
      "Sun, 06 Nov 1994 8:49:37 GMT",
      "Sun, 06 Nov 1994 08:49 GMT",
      "Sun, 06 Nov 1994 08-49-37 GMT",
      "Sun, 06 Nov 1994 08:49:3x GMT",
      "Sun, 0x Nov 1994 08:49:37 GMT",
      "Sun, 06 Nov 19x4 08:49:37 GMT",
      "Mon, 06 Nov 1994 08:49:37 GMT",    // wrong day name for the date
      "Sun, 00 Nov 1994 08:49:37 GMT",    // no day 0
      "Wed, 31 Nov 1994 08:49:37 GMT",    // November has 30 days
      "Thu, 29 Feb 1900 00:00:00 GMT",    // 1900 was not a leap year
      "Sun, 06 Nov 1994 24:00:00 GMT",
      "Sun, 06 Nov 1994 08:60:00 GMT",
      "Sun, 06 Nov 1994 08:49:60 GMT",    // a leap second only at 23:59
      "Sun, 06 Nov 1994 08:49:61 GMT",
      "Sun, 06 Nov 1994 08:49:37 GMTX",
      "Sun, 06 Xyz 1994 08:49:37 GMT",
      "Sunday, 06-Nov-1994 08:49:37 GMT", // four-digit year in rfc850
      "Sun, 06-Nov-94 08:49:37 GMT",      // short day name in rfc850
      "sunday, 06-Nov-94 08:49:37 GMT",
      "Sunday,06-Nov-94 08:49:37 GMT",
      "Sunday, 06 Nov 94 08:49:37 GMT",
      "Sunday, 06-Nov-94 08:49:37",
      "Funday, 06-Nov-94 08:49:37 GMT",
      "Sun Nov 6 08:49:37 1994",          // asctime needs two characters for the day
      "Sun Nov  6 08:49:37 94",
      "Sun Nov  6 08:49:37 1994 GMT",
      "Mon Nov  6 08:49:37 1994",
      "Sun Nov  0 08:49:37 1994",
      "Sun Nov   6 08:49:37 1994",
      "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",  // a list of dates
  };
  for (const char* text : invalid) {
    INFO(text);
    CHECK(!parse_http_date(text, now_2024));
  }
}

TEST_CASE("http date: format and parse agree over many instants", "[http][date]") {
  // Every day of 1899-2101 (leap and non-leap centuries) at a time of day that varies with the day.
  for (sys_days d = sys_days{year{1899} / 1 / 1}; d < sys_days{year{2101} / 12 / 31}; d += days{1}) {
    const long long n = d.time_since_epoch().count();
    const sys_seconds t = d + seconds{((n * 7919) % 86400 + 86400) % 86400};
    http_date_buffer buffer;
    const std::string_view text = format_http_date(t, buffer);
    const auto parsed = parse_http_date(text, now_2024);
    if (parsed != t) FAIL("round trip failed for " << text);
  }
}

TEST_CASE("http date: the cache reformats only in a new second", "[http][date]") {
  http_date_cache cache;
  const sys_time<milliseconds> t = sys_seconds{784111777s} + 100ms;
  const std::string_view first = cache.get(t);
  CHECK(first == "Sun, 06 Nov 1994 08:49:37 GMT");
  CHECK(cache.get(t + 899ms) == "Sun, 06 Nov 1994 08:49:37 GMT");
  CHECK(cache.get(t + 899ms).data() == first.data());  // the same buffer
  CHECK(cache.get(t + 900ms) == "Sun, 06 Nov 1994 08:49:38 GMT");
  CHECK(cache.get(t - 200ms) == "Sun, 06 Nov 1994 08:49:36 GMT");  // a clock that steps back is followed
}

TEST_CASE("http date: current_http_date is the current second", "[http][date]") {
  const sys_seconds before = floor<seconds>(system_clock::now());
  const std::string text(current_http_date());
  const sys_seconds after = floor<seconds>(system_clock::now());
  const auto parsed = parse_http_date(text);
  REQUIRE(parsed);
  // The coarse clock it reads may show the previous second for a few milliseconds after the precise one moved on.
  CHECK(before - 1s <= *parsed);
  CHECK(*parsed <= after);
}
