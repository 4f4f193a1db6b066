// A differential test of sse::parser against the `eventsource-parser` package (npm; the parser inside the pinned
// `eventsource` package): random event streams, cut into random chunks, go through both, and what both expose
// must agree: the dispatched events (type, data, last event ID), the reconnection time when each is dispatched
// and at the end. The comments that theirs reports are checked against the ones written, which shows that both
// split the stream into the same lines. WHATWG HTML §9.2.5-9.2.6 decides each disagreement; where theirs
// departs from it, the case is named below and their reading is what we compare to (see `their_view`).
#include <switchboard/sse/parser.hpp>

#include "support/catch.hpp"
#include "support/test_support.hpp"
#include "conformance/differential_support.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

using switchboard::test::cut_into;
using switchboard::test::escaped;
using switchboard::test::hex_chunks;
using switchboard::test::run_node_peer;

namespace {

constexpr std::string_view bom = "\xEF\xBB\xBF";
// U+00EF U+00BB U+00BF ("ï»¿") in UTF-8: the BOM's bytes read as Latin-1, ordinary text for the spec.
constexpr std::string_view latin1_bom = "\xC3\xAF\xC2\xBB\xC2\xBF";

// One generated stream, and what its generator knows about the lines it wrote.
struct stream_case {
  std::uint32_t seed = 0;
  std::string bytes;
  std::vector<std::size_t> cut_sizes;  // the chunk sizes, summing to bytes.size(); 0 is an empty chunk
  // For each block that dispatches an event, in order: whether the last `id` field (without NUL) before its blank
  // line was in a block that dispatched something. Where not, theirs cannot report the last event ID (mask_ids).
  std::vector<bool> id_comparable;
  // The comments written, with the offset of the line that holds each.
  std::vector<std::pair<std::size_t, std::string>> comments;
  // The stream starts with "ï»¿" (after the BOM, if any) at this offset: the first line is "ï»¿retry: N".
  std::optional<std::size_t> latin1_bom_at;
};

// Builds random streams: every kind of line, every line ending, BOMs, non-ASCII and ill-formed UTF-8.
class stream_generator {
 public:
  explicit stream_generator(std::uint32_t seed) : rng_(seed) { case_.seed = seed; }

  stream_case make() {
    const bool with_bom = chance(0.3);
    if (with_bom) case_.bytes += bom;
    bool first_line_done = false;
    if (with_bom && chance(0.1)) {
      // A second BOM is text: the first line becomes an unknown field whatever follows (§9.2.6: the decoder strips
      // one BOM only).
      case_.bytes += bom;
      end_line(random_field_line(), kind::other);
      first_line_done = true;
    } else if (chance(0.08)) {
      case_.latin1_bom_at = case_.bytes.size();
      case_.bytes += latin1_bom;
      end_line("retry: " + digits(), kind::other);  // for the spec, the unknown field "ï»¿retry"
      first_line_done = true;
    }
    const int lines = pick(5, 60);
    for (int i = first_line_done ? 1 : 0; i < lines; ++i) add_line();
    if (chance(0.4)) {
      // An unterminated last line: never processed (§9.2.6: "any pending data must be discarded").
      case_.bytes += random_field_line();
    }
    cut();
    return std::move(case_);
  }

 private:
  enum class kind { blank, data, id, comment, other };

  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  int pick(int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng_); }
  template <class T>
  const T& pick_of(const std::vector<T>& v) {
    return v[static_cast<std::size_t>(pick(0, static_cast<int>(v.size()) - 1))];
  }

  // A field value: ASCII, colons and spaces, non-ASCII UTF-8 (2, 3 and 4 bytes, U+2028, NEL, U+FEFF), and if
  // allowed, NUL and ill-formed UTF-8 (lone continuation bytes, overlong forms, surrogates, cut sequences).
  std::string text(bool ill_formed = true, bool nul = true) {
    static const std::vector<std::string> well_formed = {
        "a", "b", "Z", "0", "42", " ", "  ", ":", ": ", "\t", "data", "id: 1", "\xC3\xA9", "\xE6\x97\xA5\xE6\x9C\xAC",
        "\xF0\x9F\x98\x80", "\xE2\x80\xA8", "\xC2\x85", "\xEF\xBB\xBF", "\xEF\xBF\xBD"};
    static const std::vector<std::string> ill = {"\xFF", "\x80", "\xC0\x80", "\xED\xA0\x80", "\xE2\x82",
                                                 "\xF0\x9F\x98", "\xF4\x90\x80\x80", "\xEF\xBB", "\xC3"};
    std::string out;
    for (int n = pick(0, 6); n > 0; --n) {
      if (ill_formed && chance(0.05)) {
        out += pick_of(ill);
      } else if (nul && chance(0.04)) {
        out += '\0';
      } else {
        out += pick_of(well_formed);
      }
    }
    return out;
  }

  std::string digits() {
    std::string out;
    for (int n = pick(1, 15); n > 0; --n) out += static_cast<char>('0' + pick(0, 9));  // exact in a JS number
    return out;
  }

  // "name", "name:value" or "name: value" (so a value starting with a space keeps it).
  std::string field(std::string_view name, const std::string& value) {
    switch (pick(0, 3)) {
      case 0: return std::string(name) + (value.empty() ? "" : ":" + value);
      case 1: return std::string(name) + ":" + value;
      default: return std::string(name) + ": " + value;
    }
  }

  // A line that is none of data, id or a comment: event, retry (valid or not), unknown fields, near misses.
  std::string random_field_line() {
    static const std::vector<std::string> retry_invalid = {
        "", "-5", "+5", "5 ", " 5", "5.0", "1e3", "0x10", "abc", "\xD9\xA3" /* ARABIC-INDIC THREE */,
        "\xEF\xBC\x95" /* FULLWIDTH FIVE */, std::string("5\0", 2), "\xFF"};
    static const std::vector<std::string> unknown_names = {
        "Data", "DATA", "dat", "datax", " data", "data ", "foo", "ID", "Id", "iid", "id ", "Retry", "retry ",
        "Event", "event ", "d\xC3\xA4t\xC3\xA4", "\xE3\x83\x87\xE3\x83\xBC\xE3\x82\xBF", std::string("id\0", 3),
        "dat\xE1", "\xEF\xBB\xBF" "data"};
    switch (pick(0, 3)) {
      case 0: return field("event", text());
      case 1: return field("retry", chance(0.5) ? digits() : pick_of(retry_invalid));
      default: {
        const std::string& name = pick_of(unknown_names);
        // At the very start of the stream the decoder would strip this BOM, making it a data field.
        if (case_.bytes.empty() && name.starts_with(bom)) return "foo";
        return field(name, text());
      }
    }
  }

  void add_line() {
    const int r = pick(0, 99);
    if (r < 22) {
      end_line("", kind::blank);
    } else if (r < 50) {
      end_line(chance(0.1) ? "data" : field("data", text()), kind::data);
    } else if (r < 62) {
      end_line(field("id", text()), kind::id);
    } else if (r < 70) {
      end_line(":" + text(/*ill_formed=*/false), kind::comment);
    } else {
      end_line(random_field_line(), kind::other);
    }
  }

  // Appends `line` and a line ending, and tracks what the spec makes of it.
  void end_line(const std::string& line, kind k) {
    const std::size_t start = case_.bytes.size();
    case_.bytes += line;
    // An empty line after a CR must not end with a lone LF: CR LF would be one line ending, not two.
    static const std::vector<std::string> endings = {"\n", "\n", "\r\n", "\r"};
    std::string ending = pick_of(endings);
    if (line.empty() && last_ending_ == "\r" && ending == "\n") ending = chance(0.5) ? "\r" : "\r\n";
    case_.bytes += ending;
    last_ending_ = ending;

    switch (k) {
      case kind::blank:
        if (block_has_id_) last_id_in_silent_block_ = !block_has_data_;
        if (block_has_data_) case_.id_comparable.push_back(!last_id_in_silent_block_);
        block_has_data_ = block_has_id_ = false;
        break;
      case kind::data: block_has_data_ = true; break;
      case kind::id: {
        // §9.2.6: an id whose value contains NUL is ignored.
        const std::size_t colon = line.find(':');
        if (colon == std::string::npos || line.find('\0', colon) == std::string::npos) block_has_id_ = true;
        break;
      }
      case kind::comment: {
        std::string comment = line.substr(1);
        if (comment.starts_with(' ')) comment.erase(0, 1);
        case_.comments.emplace_back(start, comment);
        break;
      }
      case kind::other: break;
    }
  }

  // Cuts the stream at random; always after some CRs, so that a CRLF is often split between chunks.
  void cut() {
    const std::size_t size = case_.bytes.size();
    std::vector<std::size_t> cuts;
    if (chance(0.1)) {
      for (std::size_t i = 1; i < size; ++i) cuts.push_back(i);  // byte by byte
    } else {
      const double p = std::uniform_real_distribution<double>(0.02, 0.5)(rng_);
      for (std::size_t i = 1; i < size; ++i) {
        if (std::bernoulli_distribution(p)(rng_) || (case_.bytes[i - 1] == '\r' && chance(0.5))) cuts.push_back(i);
        if (!cuts.empty() && cuts.back() == i && chance(0.02)) cuts.push_back(i);  // an empty chunk
      }
    }
    std::size_t previous = 0;
    if (chance(0.05)) case_.cut_sizes.push_back(0);  // an empty first chunk
    for (std::size_t c : cuts) {
      case_.cut_sizes.push_back(c - previous);
      previous = c;
    }
    case_.cut_sizes.push_back(size - previous);
  }

  std::mt19937 rng_;
  stream_case case_;
  std::string last_ending_;
  bool block_has_data_ = false;
  bool block_has_id_ = false;
  bool last_id_in_silent_block_ = false;
};

std::vector<std::string> chunks_of(const stream_case& c) { return cut_into(c.bytes, c.cut_sizes); }

// What both parsers expose, as compared.
struct observed_event {
  std::string type;
  std::string data;
  std::optional<std::string> last_event_id;  // absent where it cannot be compared (id_comparable)
  std::optional<std::int64_t> retry;         // the reconnection time when the event was dispatched

  bool operator==(const observed_event&) const = default;
};

struct observed {
  std::vector<observed_event> events;
  std::optional<std::int64_t> retry;  // at the end of the stream

  bool operator==(const observed&) const = default;
};

// Their parser resets the id on every blank line and reports the block's own `id` field only, so an id given in
// a block without data is lost (the `eventsource` package keeps the last id it was reported). §9.2.6 "dispatch
// the event": step 1 sets the last event ID string from the last event ID buffer, before step 2 returns for an
// empty data buffer, and "the buffer does not get reset". So theirs is wrong; an event whose last event ID came
// from such a block (the generator knows, `id_comparable`) is compared without its id.
void mask_ids(observed& o, const std::vector<bool>& id_comparable) {
  for (std::size_t i = 0; i < o.events.size() && i < id_comparable.size(); ++i) {
    if (!id_comparable[i]) o.events[i].last_event_id.reset();
  }
}

// The offset where their reading of `chunks` stops, if before the end.
//
// Their parser holds back a CR that ends a chunk, waiting to see whether an LF follows, and only looks at held
// bytes again when a chunk with a CR or LF arrives; it has no call for the end of the stream. So when the last
// line ending of the stream is a CR that ends a chunk, the line it ends is never processed. §9.2.5: "a single
// U+000D CARRIAGE RETURN (CR) character not followed by a U+000A LINE FEED (LF) character" ends a line, and
// nothing follows that CR. So theirs is wrong; we compare them with ours on the stream cut before that line.
std::optional<std::size_t> their_stop(const std::vector<std::string>& chunks) {
  std::string all;
  std::size_t last_break = std::string::npos;
  bool last_break_ends_chunk = false;
  for (const std::string& chunk : chunks) {
    const std::size_t at = chunk.find_last_of("\r\n");
    if (at != std::string::npos) {
      last_break = all.size() + at;
      last_break_ends_chunk = chunk[at] == '\r' && at + 1 == chunk.size();
    }
    all += chunk;
  }
  if (!last_break_ends_chunk) return std::nullopt;
  const std::size_t previous = last_break == 0 ? std::string::npos : all.find_last_of("\r\n", last_break - 1);
  return previous == std::string::npos ? 0 : previous + 1;
}

// What their parser reads of a stream: the chunks that ours must read to see the same (the exclusions).
struct their_reading {
  std::vector<std::string> chunks;
  std::optional<std::size_t> stop;  // where their reading stops, in the offsets of `chunks`
  bool latin1_bom_stripped = false;
};

their_reading their_view(const stream_case& c) {
  their_reading r{chunks_of(c)};
  if (c.latin1_bom_at && r.chunks.front().size() >= *c.latin1_bom_at + latin1_bom.size()) {
    // Their parser strips U+00EF U+00BB U+00BF from the start of the first string it is fed: the BOM's bytes
    // read as Latin-1 (src/parse.ts compares char codes with 0xEF 0xBB 0xBF). Text decoded as UTF-8 (§9.2.6:
    // "Streams must be decoded using the UTF-8 decode algorithm", which itself strips the real BOM, U+FEFF)
    // never holds the BOM that way, so they delete "ï»¿" instead: here the first line "ï»¿retry: N" (an unknown
    // field) becomes "retry: N". Theirs is wrong; ours reads the stream without those characters.
    r.chunks.front().erase(*c.latin1_bom_at, latin1_bom.size());
    r.latin1_bom_stripped = true;
  }
  r.stop = their_stop(r.chunks);
  if (r.stop) {
    std::size_t at = 0;
    for (std::string& chunk : r.chunks) {
      const std::size_t keep = at >= *r.stop ? 0 : std::min(chunk.size(), *r.stop - at);
      at += chunk.size();
      chunk.resize(keep);
    }
  }
  return r;
}

observed ours(const std::vector<std::string>& chunks) {
  switchboard::sse::parser p;
  observed out;
  for (const std::string& chunk : chunks) {
    const std::error_code ec = p.feed(chunk, [&](const switchboard::sse::message& m) {
      std::optional<std::int64_t> retry;
      if (p.retry()) retry = p.retry()->count();
      out.events.push_back({m.type, m.data, m.last_event_id, retry});
    });
    REQUIRE_FALSE(ec);
  }
  if (p.retry()) out.retry = p.retry()->count();
  return out;
}

}  // namespace

namespace Catch {
template <>
struct StringMaker<observed_event> {
  static std::string convert(const observed_event& e) {
    std::ostringstream s;
    s << "{type=\"" << escaped(e.type) << "\" data=\"" << escaped(e.data) << "\" last_event_id="
      << (e.last_event_id ? "\"" + escaped(*e.last_event_id) + "\"" : "(not compared)")
      << " retry=" << (e.retry ? std::to_string(*e.retry) : "none") << "}";
    return s.str();
  }
};
template <>
struct StringMaker<observed> {
  static std::string convert(const observed& o) {
    std::ostringstream s;
    s << "{events=[";
    for (const auto& e : o.events) s << "\n  " << StringMaker<observed_event>::convert(e);
    s << "] retry=" << (o.retry ? std::to_string(*o.retry) : "none") << "}";
    return s.str();
  }
};
}  // namespace Catch

TEST_CASE("sse::parser and the eventsource-parser package (npm) read random streams alike", "[conformance][sse]") {
  REQUIRE(switchboard::test::have_program("node"));
  constexpr std::uint32_t first_seed = 1, seeds = 2000;

  std::vector<stream_case> cases;
  std::string input;
  for (std::uint32_t seed = first_seed; seed < first_seed + seeds; ++seed) {
    cases.push_back(stream_generator(seed).make());
    input += nlohmann::json{{"chunks", hex_chunks(chunks_of(cases.back()))}}.dump() + "\n";
  }
  const std::vector<nlohmann::json> records = run_node_peer("sse_parse.mjs", {}, input);

  // Their records, per stream.
  std::vector<observed> theirs(cases.size());
  std::vector<std::vector<std::string>> their_comments(cases.size());
  std::vector<bool> ended(cases.size(), false);
  std::vector<std::string> last_id(cases.size());
  for (const nlohmann::json& record : records) {
    const auto stream = record.at("stream").get<std::size_t>();
    REQUIRE(stream < cases.size());
    observed& o = theirs[stream];
    const auto kind = record.at("kind").get<std::string>();
    if (kind == "event") {
      // They report the block's own `id` field only; the spec's last event ID persists across blocks.
      if (!record.at("id").is_null()) last_id[stream] = record.at("id").get<std::string>();
      o.events.push_back({record.at("event").is_null() ? "message" : record.at("event").get<std::string>(),
                          record.at("data").get<std::string>(), last_id[stream], o.retry});
    } else if (kind == "retry") {
      o.retry = record.at("retry").get<std::int64_t>();
    } else if (kind == "comment") {
      their_comments[stream].push_back(record.at("comment").get<std::string>());
    } else {
      ended[stream] = true;
    }
  }

  int failures = 0;
  for (std::size_t i = 0; i < cases.size() && failures < 3; ++i) {  // 3 failing streams say enough
    const stream_case& c = cases[i];
    INFO("seed " << c.seed << ": \"" << escaped(c.bytes) << "\"");
    std::ostringstream sizes;
    for (std::size_t n : c.cut_sizes) sizes << n << ' ';
    INFO("chunk sizes: " << sizes.str());
    REQUIRE(ended[i]);

    const their_reading reading = their_view(c);
    INFO("their reading stops at " << (reading.stop ? std::to_string(*reading.stop) : "the end")
                                    << (reading.latin1_bom_stripped ? ", without the Latin-1 BOM" : ""));
    observed mine = ours(reading.chunks);
    observed other = theirs[i];
    mask_ids(mine, c.id_comparable);
    mask_ids(other, c.id_comparable);

    if (mine != other) ++failures;
    CHECK(mine == other);

    // The comments they report are the ones written, up to where their reading stops.
    const std::size_t shift = reading.latin1_bom_stripped ? latin1_bom.size() : 0;
    std::vector<std::string> written;
    for (const auto& [offset, comment] : c.comments) {
      if (!reading.stop || offset < *reading.stop + shift) written.push_back(comment);
    }
    CHECK(their_comments[i] == written);
  }
}
