// A seeded model test of conditional requests: random methods, resource states (strong, weak or no entity tag;
// a modification date or none; the resource existing or not, a missing one sometimes still given the validators
// it last had) and random conditional fields (valid and near-valid
// entity-tag lists with odd whitespace, empty elements, W/ prefixes, missing quotes, invalid characters and `*`;
// dates in the three formats of RFC 9110 §5.6.7, with leap seconds, odd surrounding whitespace, dates in the
// future, and bad formats or out-of-range values; several field lines of one name), each compared with a
// reference written here straight from RFC 9110:
//   §8.8.3.2   strong and weak comparison of entity tags;
//   §13.1.1-4  the four precondition fields (an invalid or multi-member date makes its field ignored);
//   §13.1.5    If-Range is ignored without Range, and this library serves no ranges: never changes the answer;
//   §13.2.1    CONNECT, OPTIONS and TRACE ignore preconditions;
//   §13.2.2    the order of evaluation;
//   §15.4.5    what a 304 carries (the validators and caching fields the 200 would have, no content).
// What the RFC leaves open follows the documentation (preconditions.hpp, docs/polling.md): an entity-tag list that
// does not parse matches nothing, and a date whose day name contradicts it is not a valid date.
//
// The date oracle is the generator itself: each date is built from an instant and then, or not, broken in one
// known way, so the expected meaning of each text is known without parsing it.
#include <switchboard/http/conditional.hpp>

#include "support/catch.hpp"
#include "support/fake_request.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono;
using namespace std::chrono_literals;
namespace http = switchboard::http;

namespace {

using rng = std::mt19937_64;

int pick(rng& g, int n) { return std::uniform_int_distribution<int>(0, n - 1)(g); }
bool chance(rng& g, int percent) { return pick(g, 100) < percent; }
template <class T, std::size_t N>
const T& one_of(rng& g, const std::array<T, N>& a) {
  return a[static_cast<std::size_t>(pick(g, static_cast<int>(N)))];
}

// ---- Entity tags (RFC 9110 §8.8.3) ----------------------------------------------------------------------------

struct ref_tag {
  bool weak = false;
  std::string opaque;
};

std::string field_form(const ref_tag& t) { return (t.weak ? "W/\"" : "\"") + t.opaque + '"'; }

// §8.8.3.2: strong comparison needs both strong and the same opaque string; weak only the same opaque string.
bool ref_strong_match(const ref_tag& a, const ref_tag& b) { return !a.weak && !b.weak && a.opaque == b.opaque; }
bool ref_weak_match(const ref_tag& a, const ref_tag& b) { return a.opaque == b.opaque; }

// Opaque strings, all made of etagc (%x21 / %x23-7E / obs-text): a comma, obs-text, `*` and `W/` inside quotes are
// part of the opaque string, not list syntax.
const std::array<std::string, 7> opaques = {"v1", "v2", "a,b", "", "\xC3\xA9", "*", "W/x"};

// One element of a list field line, with what it is.
enum class elem_kind { tag, empty, star, invalid };
struct elem {
  elem_kind kind;
  std::string text;
  ref_tag tag;
};

// A generated `If-Match` or `If-None-Match`: its field lines as sent and their elements, in order.
struct list_field {
  std::vector<std::string> lines;
  std::vector<std::vector<elem>> elements;  // per line
};

// What a list field means: `*`, a list of tags, or something that is neither (§13.1.1: If-Match = "*" /
// #entity-tag).
struct list_meaning {
  bool star = false;
  bool invalid = false;
  std::vector<ref_tag> tags;
};

list_meaning meaning_of(const list_field& f) {
  list_meaning m;
  // Lines are one comma-separated list (§5.3): `*` only when it is the whole value.
  if (f.lines.size() == 1 && f.elements[0].size() == 1 && f.elements[0][0].kind == elem_kind::star) {
    m.star = true;
    return m;
  }
  for (const auto& line : f.elements) {
    for (const elem& e : line) {
      if (e.kind == elem_kind::invalid || e.kind == elem_kind::star) m.invalid = true;
      if (e.kind == elem_kind::tag) m.tags.push_back(e.tag);
    }
  }
  return m;
}

struct ref_state {
  bool exists = true;
  std::optional<ref_tag> etag;
  std::optional<sys_seconds> last_modified;
};

// §13.1.1: `*` is true when a current representation exists; a list when one of its tags matches strongly.
bool ref_if_match(const list_meaning& m, const ref_state& s) {
  if (m.star) return s.exists;
  if (m.invalid || !s.exists || !s.etag) return false;
  for (const ref_tag& t : m.tags) {
    if (ref_strong_match(t, *s.etag)) return true;
  }
  return false;
}

// §13.1.2: `*` is false when a current representation exists; a list is false when one of its tags matches weakly.
bool ref_if_none_match(const list_meaning& m, const ref_state& s) {
  if (m.star) return !s.exists;
  if (m.invalid || !s.exists || !s.etag) return true;
  for (const ref_tag& t : m.tags) {
    if (ref_weak_match(t, *s.etag)) return false;
  }
  return true;
}

// ---- Dates (RFC 9110 §5.6.7) -----------------------------------------------------------------------------------

const std::array<std::string, 7> short_days = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
const std::array<std::string, 7> long_days = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                              "Thursday", "Friday", "Saturday"};
const std::array<std::string, 12> months = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

struct date_parts {
  int wd;  // 0 = Sunday
  int y;
  int mo;  // 1-12; 13 writes a month name that does not exist
  int d;
  int h;
  int mi;
  int s;
};

date_parts parts_of(sys_seconds t) {
  const sys_days day = floor<days>(t);
  const year_month_day ymd{day};
  const long long secs = (t - day).count();
  return {static_cast<int>(weekday{day}.c_encoding()), static_cast<int>(ymd.year()),
          static_cast<int>(static_cast<unsigned>(ymd.month())), static_cast<int>(static_cast<unsigned>(ymd.day())),
          static_cast<int>(secs / 3600), static_cast<int>(secs / 60 % 60), static_cast<int>(secs % 60)};
}

std::string digits(int value, int count) {
  std::string s = std::to_string(value);
  while (static_cast<int>(s.size()) < count) s.insert(s.begin(), '0');
  return s;
}

std::string month_name(int mo) { return mo >= 1 && mo <= 12 ? months[mo - 1] : "Foo"; }
std::string time_of_day(const date_parts& p) { return digits(p.h, 2) + ':' + digits(p.mi, 2) + ':' + digits(p.s, 2); }

// IMF-fixdate = day-name "," SP day SP month SP year SP time-of-day SP GMT
std::string imf(const date_parts& p, int year_digits = 4) {
  return short_days[p.wd] + ", " + digits(p.d, 2) + ' ' + month_name(p.mo) + ' ' +
         digits(year_digits == 4 ? p.y : p.y % 100, year_digits) + ' ' + time_of_day(p) + " GMT";
}
// rfc850-date = day-name-l "," SP day "-" month "-" 2DIGIT SP time-of-day SP GMT
std::string rfc850(const date_parts& p, int year_digits = 2) {
  return long_days[p.wd] + ", " + digits(p.d, 2) + '-' + month_name(p.mo) + '-' +
         digits(year_digits == 2 ? p.y % 100 : p.y, year_digits) + ' ' + time_of_day(p) + " GMT";
}
// asctime-date = day-name SP month SP ( 2DIGIT / ( SP DIGIT ) ) SP time-of-day SP year
std::string asctime(const date_parts& p, bool space_padded, int year_digits = 4) {
  const std::string day = space_padded && p.d < 10 ? ' ' + std::to_string(p.d) : digits(p.d, 2);
  return short_days[p.wd] + ' ' + month_name(p.mo) + ' ' + day + ' ' + time_of_day(p) + ' ' +
         digits(year_digits == 4 ? p.y : p.y % 100, year_digits);
}

int days_in_month(int y, int mo) {
  const year_month_day_last end{year{y} / month{static_cast<unsigned>(mo)} / last};
  return static_cast<int>(static_cast<unsigned>(end.day()));
}

struct gen_date {
  std::string text;                  // as sent
  std::optional<sys_seconds> value;  // what it means, nullopt when it is not one valid HTTP-date
  std::string how;                   // what was done to it, for failure messages
};

// A date meaning `t`, in one of the three formats, then perhaps broken in one way. `now_year` keeps rfc850
// dates within 45 years of the present, where the century of their two-digit year is not in doubt (§5.6.7).
gen_date make_date(rng& g, sys_seconds t, int now_year) {
  date_parts p = parts_of(t);
  int format = pick(g, 3);  // 0 IMF-fixdate, 1 rfc850-date, 2 asctime-date
  if (format == 1 && std::abs(p.y - now_year) > 45) format = 0;
  gen_date out{{}, t, {}};
  // The leap second: an instant at midnight may be written as the previous day's 23:59:60.
  if (p.h == 0 && p.mi == 0 && p.s == 0 && chance(g, 30)) {
    p = parts_of(t - seconds{1});
    p.s = 60;
    out.how += "leap second; ";
  }
  const bool padded = chance(g, 70);
  auto write = [&](const date_parts& q) {
    return format == 0 ? imf(q) : format == 1 ? rfc850(q) : asctime(q, padded);
  };
  const int mutation = chance(g, 55) ? -1 : pick(g, 15);
  switch (mutation) {
    case 0: p.wd = (p.wd + 1 + pick(g, 6)) % 7; out.how += "wrong day name; "; break;
    case 1: p.h = 24 + pick(g, 76); out.how += "hour out of range; "; break;
    case 2: p.mi = 60 + pick(g, 40); out.how += "minute out of range; "; break;
    case 3:
      p.s = 60 + pick(g, 40);
      if (p.s == 60 && p.h == 23 && p.mi == 59) p.h = 22;  // 60 only at 23:59
      out.how += "second out of range; ";
      break;
    case 4: p.d = 0; out.how += "day 0; "; break;
    case 5:
      p.d = days_in_month(p.y, p.mo) + 1 + pick(g, 99 - days_in_month(p.y, p.mo));
      out.how += "day past the month; ";
      break;
    case 6: p.mo = 13; out.how += "no such month; "; break;
    default: break;
  }
  out.text = write(p);
  switch (mutation) {
    case 7: {  // case-sensitive (§5.6.7): lower-case the day or month name
      const std::size_t at = chance(g, 50) ? 0 : out.text.find(month_name(p.mo));
      out.text[at] = static_cast<char>(out.text[at] - 'A' + 'a');
      out.how += "lower case; ";
      break;
    }
    case 8:
      if (format == 2) out.text += " GMT";
      else out.text.replace(out.text.size() - 3, 3, one_of(g, std::array<std::string, 3>{"UTC", "gmt", "+0000"}));
      out.how += "zone; ";
      break;
    case 9: {  // one more SP or HTAB next to an SP, or an HTAB in its place
      std::vector<std::size_t> spaces;
      for (std::size_t i = 0; i < out.text.size(); ++i) {
        if (out.text[i] == ' ') spaces.push_back(i);
      }
      const std::size_t at = spaces[static_cast<std::size_t>(pick(g, static_cast<int>(spaces.size())))];
      if (chance(g, 50)) {
        out.text.insert(at, 1, chance(g, 50) ? ' ' : '\t');
        out.how += "extra whitespace; ";
      } else {
        out.text[at] = '\t';  // the grammar's separators are single SPs
        out.how += "HTAB for SP; ";
      }
      break;
    }
    case 10:
      out.text.erase(static_cast<std::size_t>(pick(g, static_cast<int>(out.text.size()))), 1);
      out.how += "a character deleted; ";
      break;
    case 11:
      out.text = format == 0 ? imf(p, 2) : format == 1 ? rfc850(p, 4) : asctime(p, padded, 2);
      out.how += "wrong year length; ";
      break;
    case 12:
      out.text = format == 0 ? imf(p) : write(p);
      if (format == 0) out.text.erase(5, 1);  // one-digit day (or the day's first digit gone)
      else out.text += ", " + out.text;       // a list of dates
      out.how += format == 0 ? "short day; " : "two dates; ";
      break;
    case 13: out.text += ", " + out.text; out.how += "two dates; "; break;
    case 14:
      out.text = one_of(g, std::array<std::string, 6>{"yesterday", "", "784111777", "Sun", "Sun, 06 Nov 1994",
                                                        "2001-09-09T01:46:40Z"});
      out.how += "not a date; ";
      break;
    default: break;
  }
  if (mutation >= 0) out.value = std::nullopt;
  // OWS around the value is not part of it (§5.5).
  if (chance(g, 15)) out.text = one_of(g, std::array<std::string, 3>{" ", "\t", "  "}) + out.text;
  if (chance(g, 15)) out.text += one_of(g, std::array<std::string, 3>{" ", "\t", " \t"});
  out.how += format == 0 ? "IMF-fixdate" : format == 1 ? "rfc850-date" : "asctime-date";
  return out;
}

struct date_field {
  std::vector<gen_date> lines;
};

// §13.1.3, §13.1.4: the field is ignored unless it is exactly one valid HTTP-date (several lines are several
// members) and the resource has a modification date.
std::optional<sys_seconds> date_of(const date_field& f) {
  return f.lines.size() == 1 ? f.lines[0].value : std::nullopt;
}

// ---- The reference of §13.2.2 ---------------------------------------------------------------------------------

struct ref_request {
  std::string method;
  std::optional<list_field> if_match;
  std::optional<list_field> if_none_match;
  std::optional<date_field> if_modified_since;
  std::optional<date_field> if_unmodified_since;
};

// `field` is set to the field that decided a 304 or 412.
http::precondition_result ref_evaluate(const ref_request& r, const ref_state& s, std::string& field) {
  using result = http::precondition_result;
  // §13.2.1: methods that neither select nor modify a representation ignore the conditions. Methods are
  // case-sensitive (§9.1): "get" is not GET.
  if (r.method == "CONNECT" || r.method == "OPTIONS" || r.method == "TRACE") return result::proceed;
  const bool get_or_head = r.method == "GET" || r.method == "HEAD";
  // Step 1, and step 2 only when If-Match is absent (§13.1.4: If-Match makes If-Unmodified-Since ignored).
  if (r.if_match) {
    field = "If-Match";
    if (!ref_if_match(meaning_of(*r.if_match), s)) return result::precondition_failed;
  } else if (r.if_unmodified_since) {
    const auto date = date_of(*r.if_unmodified_since);
    // §13.1.4: false when the last modification is after the date.
    field = "If-Unmodified-Since";
    if (date && s.exists && s.last_modified && *s.last_modified > *date) return result::precondition_failed;
  }
  // Step 3, and step 4 only when If-None-Match is absent and the method is GET or HEAD (§13.1.3).
  if (r.if_none_match) {
    field = "If-None-Match";
    if (!ref_if_none_match(meaning_of(*r.if_none_match), s)) {
      return get_or_head ? result::not_modified : result::precondition_failed;
    }
  } else if (get_or_head && r.if_modified_since) {
    const auto date = date_of(*r.if_modified_since);
    // §13.1.3: false (304) when the last modification is not after the date.
    field = "If-Modified-Since";
    if (date && s.exists && s.last_modified && *s.last_modified <= *date) return result::not_modified;
  }
  return result::proceed;
}

// ---- Generators --------------------------------------------------------------------------------------------------

const std::array<std::string, 4> ows = {"", " ", "\t", " \t "};
const std::array<std::string, 6> separators = {",", ", ", " ,", " , ", ",\t", "\t,  "};

// An element that is not an entity-tag (§8.8.3). Those with an odd number of DQUOTEs are "quote breakers": at
// most one per field, so that two of them cannot pair up into something valid.
elem invalid_elem(rng& g, bool& breaker_used) {
  static const std::array<std::string, 13> texts = {
      "xyzzy", "w/\"v1\"", "W/ \"v1\"", "\"v 1\"", "\"a\"b", "\"v1\" \"v2\"", "\"v1\x01\"", "\"v1\x7F\"",
      "W/W/\"v1\"", "\"v1\";\"v2\"", "W/v1", "'v1'", "\"v1\tx\""};
  if (!breaker_used && chance(g, 25)) {
    breaker_used = true;
    return {elem_kind::invalid, chance(g, 50) ? "\"v1" : "v1\"", {}};
  }
  return {elem_kind::invalid, one_of(g, texts), {}};
}

list_field make_list_field(rng& g, int invalid_percent) {
  list_field f;
  bool breaker_used = false;
  const int line_count = chance(g, 75) ? 1 : 2 + pick(g, 2);
  for (int l = 0; l < line_count; ++l) {
    std::vector<elem> elements;
    if (chance(g, line_count == 1 ? 25 : 8)) {
      elements.push_back({elem_kind::star, "*", {}});
    } else {
      const int n = pick(g, 5);
      for (int i = 0; i < n; ++i) {
        const int k = pick(g, 100);
        if (k < invalid_percent) {
          elements.push_back(invalid_elem(g, breaker_used));
        } else if (k < invalid_percent + 10) {
          elements.push_back({elem_kind::empty, "", {}});
        } else if (k < invalid_percent + 13) {
          elements.push_back({elem_kind::star, "*", {}});
        } else {
          ref_tag t{chance(g, 40), one_of(g, opaques)};
          elements.push_back({elem_kind::tag, field_form(t), t});
        }
      }
    }
    std::string text = one_of(g, ows);
    for (std::size_t i = 0; i < elements.size(); ++i) {
      if (i > 0) text += one_of(g, separators);
      text += elements[i].text;
    }
    text += one_of(g, ows);
    // An empty or all-OWS line is one empty element once the lines are joined.
    f.lines.push_back(text);
    f.elements.push_back(std::move(elements));
  }
  return f;
}

date_field make_date_field(rng& g, const ref_state& s, int now_year) {
  static const sys_seconds base = sys_days{year{2001} / September / 9};
  const sys_seconds around = s.last_modified.value_or(base + days{pick(g, 2000)});
  date_field f;
  const int line_count = chance(g, 85) ? 1 : 2 + pick(g, 2);
  for (int l = 0; l < line_count; ++l) {
    sys_seconds t = around;
    switch (pick(g, 10)) {
      case 0: break;
      case 1: t -= seconds{1}; break;
      case 2: t += seconds{1}; break;
      case 3: t -= days{1}; break;
      case 4: t += days{1}; break;
      case 5: t -= seconds{1 + pick(g, 400 * 86400)}; break;
      case 6: t += seconds{1 + pick(g, 400 * 86400)}; break;
      case 7: t += years{30}; t = floor<seconds>(t); break;  // in the future: still a valid date (§13.1.3)
      case 8: t = sys_days{year{9999} / December / 31} + hours{23} + minutes{59} + seconds{59}; break;
      default: t = floor<days>(t); break;  // midnight, where a leap second may be written
    }
    f.lines.push_back(make_date(g, t, now_year));
  }
  return f;
}

ref_state make_state(rng& g) {
  ref_state s;
  s.exists = chance(g, 88);
  // No representation, so no validators; but a handler may pass the last ones it had (a version counter that
  // outlives a DELETE), which must then count for nothing.
  if (!s.exists && chance(g, 50)) return s;
  const int tag = pick(g, 3);
  if (tag > 0) s.etag = ref_tag{tag == 2, one_of(g, opaques)};
  if (chance(g, 70)) {
    const sys_seconds base = sys_days{year{1995} / January / 1};
    sys_seconds t = base + days{pick(g, 5000)};
    if (chance(g, 60)) t += seconds{pick(g, 86400)};
    s.last_modified = t;
  }
  return s;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) out += (i ? ", " : "") + lines[i];
  return out;
}
std::vector<std::string> texts_of(const date_field& f) {
  std::vector<std::string> out;
  for (const gen_date& d : f.lines) out.push_back(d.text);
  return out;
}

// A field name in random letter case (§5.1: field names are case-insensitive).
std::string random_case(rng& g, std::string name) {
  for (char& c : name) {
    if (chance(g, 30)) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
  return name;
}

const char* name_of(http::precondition_result r) {
  switch (r) {
    case http::precondition_result::proceed: return "proceed";
    case http::precondition_result::not_modified: return "304";
    case http::precondition_result::precondition_failed: return "412";
  }
  return "?";
}

std::string escaped(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7F || c == '\\') {
      const char* hex = "0123456789ABCDEF";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + '"';
}

std::string format_date(sys_seconds t) {
  http::http_date_buffer buffer;
  return std::string(http::format_http_date(t, buffer));
}

std::string describe(const ref_request& r, const ref_state& s) {
  std::ostringstream o;
  o << r.method << " on " << (s.exists ? "an existing resource" : "a missing resource")
    << ", ETag " << (s.etag ? escaped(field_form(*s.etag)) : "none") << ", Last-Modified "
    << (s.last_modified ? format_date(*s.last_modified) : "none") << '\n';
  auto lists = [&](const char* name, const std::optional<list_field>& f) {
    if (!f) return;
    for (const auto& line : f->lines) o << "  " << name << ": " << escaped(line) << '\n';
  };
  auto dates = [&](const char* name, const std::optional<date_field>& f) {
    if (!f) return;
    for (const auto& line : f->lines) {
      o << "  " << name << ": " << escaped(line.text) << "  (" << line.how << ", "
        << (line.value ? "means " + format_date(*line.value) : std::string("invalid")) << ")\n";
    }
  };
  lists("If-Match", r.if_match);
  lists("If-None-Match", r.if_none_match);
  dates("If-Modified-Since", r.if_modified_since);
  dates("If-Unmodified-Since", r.if_unmodified_since);
  return o.str();
}

const std::array<std::string, 12> methods = {"GET",     "GET",   "HEAD", "POST",    "PUT",   "DELETE",
                                             "PATCH",   "OPTIONS", "CONNECT", "TRACE", "get", "PROPFIND"};

}  // namespace

TEST_CASE("preconditions random: evaluation against an RFC 9110 reference",
          "[http][preconditions][preconditions_random]") {
  const int now_year = static_cast<int>(year_month_day{floor<days>(system_clock::now())}.year());
  int failures = 0;
  long long outcomes[3] = {0, 0, 0};
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    rng g(seed);
    for (int n = 0; n < 3000 && failures < 10; ++n) {
      ref_request r;
      r.method = one_of(g, methods);
      const ref_state s = make_state(g);
      const int invalid_percent = chance(g, 50) ? 0 : 12;
      if (chance(g, 40)) r.if_match = make_list_field(g, invalid_percent);
      if (chance(g, 45)) r.if_none_match = make_list_field(g, invalid_percent);
      if (chance(g, 45)) r.if_modified_since = make_date_field(g, s, now_year);
      if (chance(g, 40)) r.if_unmodified_since = make_date_field(g, s, now_year);

      // The library's view of the resource.
      std::optional<http::entity_tag> tag;
      if (s.etag) {
        tag = s.etag->weak ? http::entity_tag::weak(s.etag->opaque) : http::entity_tag::strong(s.etag->opaque);
      }
      const http::resource_validators v{.exists = s.exists, .etag = tag ? &*tag : nullptr,
                                        .last_modified = s.last_modified};

      const std::optional<std::string> im = r.if_match ? std::optional(joined(r.if_match->lines)) : std::nullopt;
      const std::optional<std::string> inm =
          r.if_none_match ? std::optional(joined(r.if_none_match->lines)) : std::nullopt;
      const std::optional<std::string> ims =
          r.if_modified_since ? std::optional(joined(texts_of(*r.if_modified_since))) : std::nullopt;
      const std::optional<std::string> ius =
          r.if_unmodified_since ? std::optional(joined(texts_of(*r.if_unmodified_since))) : std::nullopt;
      auto view = [](const std::optional<std::string>& x) {
        return x ? std::optional<std::string_view>(*x) : std::nullopt;
      };
      const http::conditional_headers headers{.if_match = view(im), .if_none_match = view(inm),
                                              .if_modified_since = view(ims), .if_unmodified_since = view(ius)};

      auto fail = [&](const std::string& what) {
        ++failures;
        FAIL_CHECK("seed " << seed << " case " << n << ": " << what << '\n' << describe(r, s));
      };

      // Each date as the generator meant it (§5.6.7), read from the value trimmed of OWS as a field parser gives it.
      for (const auto* f : {&r.if_modified_since, &r.if_unmodified_since}) {
        if (!*f) continue;
        for (const gen_date& d : (*f)->lines) {
          const auto parsed = http::parse_http_date(http::detail::trim_ows(d.text));
          if (parsed != d.value) {
            fail("parse_http_date(" + escaped(d.text) + ") = " + (parsed ? format_date(*parsed) : "nullopt") +
                 ", expected " + (d.value ? format_date(*d.value) : "nullopt") + " (" + d.how + ")");
          }
        }
      }

      // Each field alone.
      if (r.if_match) {
        const bool expected = ref_if_match(meaning_of(*r.if_match), s);
        if (http::evaluate_if_match(*im, v) != expected) fail("evaluate_if_match != " + std::to_string(expected));
      }
      if (r.if_none_match) {
        const bool expected = ref_if_none_match(meaning_of(*r.if_none_match), s);
        if (http::evaluate_if_none_match(*inm, v) != expected) {
          fail("evaluate_if_none_match != " + std::to_string(expected));
        }
      }
      if (r.if_modified_since) {
        const auto date = date_of(*r.if_modified_since);
        const std::optional<bool> expected =
            date && s.exists && s.last_modified ? std::optional(*s.last_modified > *date) : std::nullopt;
        if (http::evaluate_if_modified_since(*ims, v) != expected) fail("evaluate_if_modified_since differs");
      }
      if (r.if_unmodified_since) {
        const auto date = date_of(*r.if_unmodified_since);
        const std::optional<bool> expected =
            date && s.exists && s.last_modified ? std::optional(*s.last_modified <= *date) : std::nullopt;
        if (http::evaluate_if_unmodified_since(*ius, v) != expected) fail("evaluate_if_unmodified_since differs");
      }

      // The order of evaluation (§13.2.2).
      std::string deciding_field;
      const http::precondition_result expected = ref_evaluate(r, s, deciding_field);
      ++outcomes[static_cast<int>(expected)];
      const http::precondition_result got = http::evaluate_preconditions(r.method, v, headers);
      if (got != expected) {
        fail(std::string("evaluate_preconditions: ") + name_of(got) + ", expected " + name_of(expected));
      }

      // End to end: the same fields as separate lines of a request, in random letter case, among fields that must
      // not count (If-Range without ranges served, names that only look alike).
      std::vector<std::pair<std::string, std::string>> lines;
      auto add = [&](const char* name, const std::vector<std::string>& values) {
        for (const auto& value : values) lines.emplace_back(random_case(g, name), value);
      };
      if (chance(g, 20)) lines.emplace_back("X-If-Match", "\"nothing\"");
      if (chance(g, 20)) lines.emplace_back("If-Range", s.etag ? field_form(*s.etag) : "\"v9\"");
      if (chance(g, 10)) lines.emplace_back("Range", "bytes=0-0");
      if (chance(g, 10)) lines.emplace_back("If-None-Match-X", "*");
      if (r.if_match) add("If-Match", r.if_match->lines);
      if (chance(g, 15)) lines.emplace_back("Accept", "*/*");
      if (r.if_none_match) add("If-None-Match", r.if_none_match->lines);
      if (r.if_modified_since) add("If-Modified-Since", texts_of(*r.if_modified_since));
      if (r.if_unmodified_since) add("If-Unmodified-Since", texts_of(*r.if_unmodified_since));
      switchboard::test::fake_request fr(r.method, "/state", std::move(lines));
      const http::conditional_options options{
          .cache_control = one_of(g, std::array<std::string, 3>{"no-cache", "", "max-age=0, must-revalidate"}),
          .retry_after = chance(g, 50) ? std::optional(seconds{pick(g, 100)}) : std::nullopt};
      const std::optional<http::response> early = http::check_conditions(fr.req, v, options);
      const auto& h = [&]() -> const http::header_block& { return early->headers(); };
      switch (expected) {
        case http::precondition_result::proceed:
          if (early) {
            fail("check_conditions answered " + std::to_string(http::to_int(early->status())) +
                 ", expected to proceed");
          }
          break;
        case http::precondition_result::not_modified:
          if (!early || early->status() != http::status::not_modified) {
            fail("check_conditions did not answer 304");
            break;
          }
          // §15.4.5: no content; the ETag and caching fields a 200 would carry (Last-Modified too, as the 200 has it).
          if (!early->body().empty()) fail("304 with a body");
          if (h().contains("content-type")) fail("304 with Content-Type");
          if (h().contains("etag") != s.etag.has_value() || (s.etag && h().get("etag") != field_form(*s.etag))) {
            fail("304 ETag: " + escaped(h().get("etag")));
          }
          if (h().contains("last-modified") != s.last_modified.has_value() ||
              (s.last_modified && h().get("last-modified") != format_date(*s.last_modified))) {
            fail("304 Last-Modified: " + escaped(h().get("last-modified")));
          }
          if (h().contains("cache-control") == options.cache_control.empty() ||
              (!options.cache_control.empty() && h().get("cache-control") != options.cache_control)) {
            fail("304 Cache-Control: " + escaped(h().get("cache-control")));
          }
          if (h().contains("retry-after") != options.retry_after.has_value() ||
              (options.retry_after && h().get("retry-after") != std::to_string(options.retry_after->count()))) {
            fail("304 Retry-After: " + escaped(h().get("retry-after")));
          }
          break;
        case http::precondition_result::precondition_failed:
          if (!early || early->status() != http::status::precondition_failed) {
            fail("check_conditions did not answer 412");
            break;
          }
          if (h().get("content-type") != "application/problem+json") fail("412 is not a problem");
          // The problem's detail names the condition that failed among those it may blame (RFC 9457 §3.1.4: the
          // detail explains this occurrence), not only If-Match when If-None-Match refused a PUT.
          if (early->body().find(deciding_field) == std::string::npos) {
            fail("412 detail does not name " + deciding_field + ": " + early->body());
          }
          // The current ETag, when there is a current representation to have one (§8.8.3).
          const bool has_tag = s.exists && s.etag;
          if (h().contains("etag") != has_tag || (has_tag && h().get("etag") != field_form(*s.etag))) {
            fail("412 ETag: " + escaped(h().get("etag")));
          }
          break;
      }
    }
  }
  // The generator reaches every outcome often.
  INFO("proceed " << outcomes[0] << ", 304 " << outcomes[1] << ", 412 " << outcomes[2]);
  CHECK(outcomes[0] > 5000);
  CHECK(outcomes[1] > 400);
  CHECK(outcomes[2] > 2000);
  CHECK(failures == 0);
}

// The defects the model test found, as plain examples.
TEST_CASE("preconditions random: the validators of a missing resource count for nothing",
          "[http][preconditions][preconditions_random]") {
  using result = http::precondition_result;
  // A handler that keeps the version counter (and so the tag) of a resource it has deleted.
  const http::entity_tag stale = http::entity_tag::strong("v7");
  const http::resource_validators gone{.exists = false, .etag = &stale, .last_modified = sys_seconds{784111777s}};
  // §13.1.1: no current representation, so no listed tag matches: a PUT conditioned on the deleted version fails.
  CHECK(http::evaluate_preconditions("PUT", gone, {.if_match = R"("v7")"}) == result::precondition_failed);
  // §13.1.2: nor does If-None-Match match; with `*` or a tag, creating the resource proceeds.
  CHECK(http::evaluate_preconditions("PUT", gone, {.if_none_match = R"("v7")"}) == result::proceed);
  // §13.1.4: no modification date to compare with: If-Unmodified-Since is ignored.
  CHECK(http::evaluate_if_unmodified_since("Sun, 06 Nov 1994 08:49:36 GMT", gone) == std::nullopt);
  // The 412 carries no ETag: there is no current representation to have one.
  switchboard::test::fake_request put("PUT", "/state", {{"If-Match", R"("v7")"}});
  const auto early = http::check_conditions(put.req, gone);
  REQUIRE(early);
  CHECK(early->status() == http::status::precondition_failed);
  CHECK_FALSE(early->headers().contains("etag"));
}

TEST_CASE("preconditions random: a 412 from If-None-Match says so", "[http][preconditions][preconditions_random]") {
  // PUT with If-None-Match: * to a resource that exists (create-only): nothing changed, If-None-Match refused it.
  const http::entity_tag current = http::entity_tag::strong("v7");
  switchboard::test::fake_request put("PUT", "/state", {{"If-None-Match", "*"}});
  const auto early = http::check_conditions(put.req, {.etag = &current});
  REQUIRE(early);
  CHECK(early->status() == http::status::precondition_failed);
  CHECK(early->body().find("If-None-Match") != std::string::npos);
}
