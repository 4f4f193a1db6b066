// Fuzz target for sse::parser. The first byte picks the options (UTF-8 policy, small or default limits); the rest
// is the stream. Checks:
//  - the stream fed whole, byte by byte, and in pieces of varying size gives the same outcome (split invariance);
//  - that outcome equals the one of a deliberately simple reference that reads the whole stream at once and
//    follows WHATWG HTML §9.2.6 step by step (differential check of the incremental state machine);
//  - what is delivered is well-formed UTF-8, within the limits, and typed.
#include <switchboard/core/detail/utf8.hpp>
#include <switchboard/core/utf8.hpp>
#include <switchboard/sse/parser.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace sse = switchboard::sse;
using switchboard::detail::append_utf8_replacing_invalid;
using switchboard::is_valid_utf8;

struct outcome {
  std::vector<sse::message> messages;
  std::error_code error;
  std::string last_event_id;
  std::optional<std::chrono::milliseconds> retry;
  bool operator==(const outcome&) const = default;
};

void check(bool condition) {
  if (!condition) std::abort();
}

// Feeds the stream in pieces whose sizes cycle through `sizes` (0 = the rest at once).
outcome run_parser(std::string_view stream, const sse::parser_options& options, const std::vector<std::size_t>& sizes) {
  sse::parser p(options);
  outcome out;
  std::size_t turn = 0;
  while (true) {
    const std::size_t size = sizes[turn++ % sizes.size()];
    const std::string_view piece = stream.substr(0, size == 0 ? stream.size() : size);
    stream.remove_prefix(piece.size());
    out.error = p.feed(piece, [&](const sse::message& m) { out.messages.push_back(m); });
    if (out.error || stream.empty()) break;
  }
  out.last_event_id = p.last_event_id();
  out.retry = p.retry();
  return out;
}

// The reference: the whole stream split into lines first, then the spec's steps on each, with plain strings.
outcome run_reference(std::string_view stream, const sse::parser_options& options) {
  outcome out;
  std::string type, data, id_buffer;
  bool first_line = true;
  while (true) {
    std::size_t end = stream.find_first_of("\r\n");
    if (end == std::string_view::npos) {
      // The last line has no line ending: never processed, but it still counts against the line limit.
      if (stream.size() > options.max_line_bytes) out.error = sse::error::line_too_long;
      break;
    }
    std::string_view raw = stream.substr(0, end);
    stream.remove_prefix(stream[end] == '\r' && end + 1 < stream.size() && stream[end + 1] == '\n' ? end + 2 : end + 1);
    if (raw.size() > options.max_line_bytes) {
      out.error = sse::error::line_too_long;
      break;
    }
    if (first_line && raw.starts_with("\xEF\xBB\xBF")) raw.remove_prefix(3);
    first_line = false;
    if (!is_valid_utf8(raw) && options.utf8 == sse::utf8_policy::reject) {
      out.error = sse::error::invalid_utf8;
      break;
    }
    std::string line;
    append_utf8_replacing_invalid(raw, line);

    if (line.empty()) {  // dispatch
      out.last_event_id = id_buffer;
      if (!data.empty()) {
        data.pop_back();
        out.messages.push_back({type.empty() ? "message" : type, data, out.last_event_id});
      }
      data.clear();
      type.clear();
      continue;
    }
    if (line[0] == ':') continue;
    const std::size_t colon = line.find(':');
    const std::string name = line.substr(0, colon);
    std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    if (name == "event") {
      type = value;
    } else if (name == "data") {
      data += value;
      data += '\n';
      if (data.size() - 1 > options.max_event_bytes) {
        out.error = sse::error::event_too_large;
        break;
      }
    } else if (name == "id") {
      if (value.find('\0') == std::string::npos) id_buffer = value;
    } else if (name == "retry") {
      // All ASCII digits, and a number the milliseconds count can hold (a larger one is ignored).
      bool ok = !value.empty();
      long long ms = 0;
      const long long max = std::chrono::milliseconds::max().count();
      for (char c : value) {
        if (c < '0' || c > '9' || ms > (max - (c - '0')) / 10) {
          ok = false;
          break;
        }
        ms = ms * 10 + (c - '0');
      }
      if (ok) out.retry = std::chrono::milliseconds(ms);
    }
  }
  // Like the parser, the reference stops at the first error, having read everything before it.
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  if (size == 0) return 0;
  const unsigned selector = bytes[0];
  const std::string_view stream(reinterpret_cast<const char*>(bytes + 1), size - 1);
  sse::parser_options options;
  options.utf8 = (selector & 1) ? sse::utf8_policy::reject : sse::utf8_policy::replace;
  if (selector & 2) {
    options.max_line_bytes = 1 + (selector >> 2) % 32;
    options.max_event_bytes = 1 + (selector >> 4) % 64;
  }

  const outcome whole = run_parser(stream, options, {0});
  check(run_parser(stream, options, {1}) == whole);
  check(run_parser(stream, options, {1 + selector % 5, 2, 7, 1, 64}) == whole);
  check(run_reference(stream, options) == whole);

  for (const sse::message& m : whole.messages) {
    check(!m.type.empty());
    check(m.data.size() <= options.max_event_bytes);
    check(is_valid_utf8(m.type) && is_valid_utf8(m.data) && is_valid_utf8(m.last_event_id));
    check(m.last_event_id.find('\0') == std::string::npos);
  }
  return 0;
}
