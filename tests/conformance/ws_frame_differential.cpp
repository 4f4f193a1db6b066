// A differential test of ws::frame_parser, the whole receive path of a WebSocket session (framing, reassembly of
// fragmented messages, control frames, close codes and reasons, UTF-8 of text, size limits; the session only
// appends the pieces it hands out), against the `Receiver` of the `ws` npm package
// (tests/conformance/node/ws_frames.mjs). Random frame streams, valid and near-valid (every opcode, RSV bits,
// masked or not, 7/16/64-bit lengths with non-minimal encodings and the 64-bit high bit, fragmented text and binary
// with control frames between the fragments, stray and missing continuations, control frames too big or
// fragmented, close frames with 0, 1 or more bytes and every kind of code, invalid UTF-8 split across fragments
// and in close reasons, messages over the size limit; with permessage-deflate agreed, compressed messages, some cut
// short or altered), cut into random chunks, go through both, as a server (masked client frames) and as a client
// (unmasked server frames), with the same message limit and the same deflate parameters. What both make of
// them must agree: each message (type and bytes), ping, pong and close, the frame each arrives in, and whether the
// stream fails, at which frame and with which close code. Where they disagree, RFC 6455 decides: a difference is
// allowed only as one of the named classes below, each checked against the frame bytes themselves.
#include <switchboard/ws/frame_parser.hpp>

#include "support/catch.hpp"
#include "support/test_support.hpp"
#include "conformance/differential_support.hpp"

#include <nlohmann/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
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
using switchboard::test::unhex;
namespace ws = switchboard::ws;

namespace {

constexpr std::uint64_t message_limit = 1000;  // max_message_size (and max_frame_size) here, maxPayload there

// One frame of a generated stream, as the generator meant it.
struct frame_info {
  std::size_t begin = 0, end = 0;  // its bytes in the stream (end: one past; a frame cut short ends the stream)
  std::uint8_t op = 0;
  bool fin = true;
  std::string payload;        // unmasked
  bool non_minimal = false;   // its length is not in the fewest bytes (§5.2)
  bool high_bit = false;      // a 64-bit length with the most significant bit set (§5.2)
  bool rsv1 = false;          // the "compressed" bit (RFC 7692 §6)
  std::string message;        // the first frame of a message: the whole message's content, before compression
  bool damaged = false;       // the first frame of a compressed message whose data was altered, or whose frames were
                              // (a fragment's FIN or opcode changed): what arrives as its data is not all of it
  bool altered = false;       // the same, when the compressed bytes themselves were cut or altered
};

struct stream_case {
  std::uint32_t seed = 0;
  ws::role role = ws::role::server;
  bool deflate = false;  // permessage-deflate agreed (no parameters: context takeover, 15-bit windows)
  std::string bytes;
  std::vector<frame_info> frames;
  std::vector<std::size_t> cut_sizes;
};

class stream_generator {
 public:
  stream_generator(std::uint32_t seed, ws::role r, bool deflate = false) : rng_(seed) {
    case_.seed = seed;
    case_.role = r;
    case_.deflate = deflate;
    // The peer's compressor, whose context runs across the messages it compresses.
    if (deflate) {
      compressor_ = std::make_unique<ws::deflate_compressor>(
          r == ws::role::server ? ws::role::client : ws::role::server, ws::deflate_params{});
    }
  }

  stream_case make() {
    odd_ = chance(0.4) ? 0.0 : 1.0;  // a stream of valid frames only (apart from its text), or one with faults
    for (int n = pick(1, 5); n > 0 && !ended_; --n) {
      switch (pick(0, 9)) {
        case 0: case 1: case 2: case 3: case 4: case 5: message(); break;
        case 6: control(pick_of<std::uint8_t>({0x9, 0xA})); break;
        case 7: if (chance(0.5)) close_frame(); else control(pick_of<std::uint8_t>({0x9, 0xA})); break;
        case 8: if (odd_ > 0) odd_frame(); else message(); break;
        default: message(); break;
      }
    }
    if (!ended_ && chance(0.1)) close_frame();
    if (!ended_ && chance(0.1)) message();  // after a close: ignored by both
    cut();
    return std::move(case_);
  }

 private:
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  bool odd_chance(double p) { return chance(p * odd_); }
  int pick(int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng_); }
  template <class T>
  T pick_of(const std::vector<T>& v) {
    return v[static_cast<std::size_t>(pick(0, static_cast<int>(v.size()) - 1))];
  }

  // Text: mostly valid UTF-8 of 1 to 4 bytes a character, sometimes an invalid sequence.
  std::string text(std::size_t size, double odd) {
    static const std::vector<std::string> valid = {"a", "b", " ", "0", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                                   "\xed\x9f\xbf", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", "\xc2\x80",
                                                   std::string("\0", 1)};
    static const std::vector<std::string> invalid = {
        "\xff", "\xfe", "\x80", "\xbf", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xe0\x9f\xbf", "\xf0\x80\x80\xaf",
        "\xf0\x8f\xbf\xbf", "\xed\xa0\x80", "\xed\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xc3",
        "\xe2\x82", "\xf0\x9f\x98", "\xc3\x28", "\xe2\x28\xa1", "\xf8\x88\x80\x80\x80"};
    std::string out;
    while (out.size() < size) out += chance(odd) ? pick_of(invalid) : pick_of(valid);
    return out;
  }
  std::string binary(std::size_t size) {
    std::string out(size, '\0');
    for (char& c : out) c = static_cast<char>(pick(0, 255));
    return out;
  }
  std::size_t message_size() {
    const int k = pick(0, 19);
    if (k < 12) return static_cast<std::size_t>(pick(0, 20));
    if (k < 17) return static_cast<std::size_t>(pick(21, 300));
    if (k < 19) return static_cast<std::size_t>(pick(301, 990));
    return static_cast<std::size_t>(pick(990, 1100));  // around the limit
  }

  // A text or binary message, in 1 to 4 fragments cut anywhere (a character may straddle two), with control frames
  // between them; sometimes with a fault: a fragment missing or doubled, a wrong opcode.
  void message() {
    const bool is_text = chance(0.6);
    const double invalid = chance(0.3) ? 0.05 : 0.0;
    const std::string content = is_text ? text(message_size(), invalid) : binary(message_size());
    std::string wire = content;
    const bool compressed = compressor_ && chance(0.7);
    std::string intact;
    if (compressed) {
      wire.clear();
      compressor_->compress(content, true, wire);
      intact = wire;
      if (odd_chance(0.05) && !wire.empty()) {
        if (chance(0.5)) wire[static_cast<std::size_t>(pick(0, static_cast<int>(wire.size()) - 1))] ^= 0x55;
        else wire.resize(static_cast<std::size_t>(pick(0, static_cast<int>(wire.size()) - 1)));
      }
    }
    const int fragments = chance(0.5) ? 1 : pick(2, 4);
    std::vector<std::size_t> cuts{0, wire.size()};
    for (int i = 1; i < fragments; ++i) {
      cuts.push_back(static_cast<std::size_t>(pick(0, static_cast<int>(wire.size()))));
    }
    std::sort(cuts.begin(), cuts.end());
    const std::size_t first = case_.frames.size();
    bool damaged = compressed && wire != intact;
    for (int i = 0; i < fragments && !ended_; ++i) {
      std::uint8_t op = i == 0 ? (is_text ? 0x1 : 0x2) : 0x0;
      bool fin = i == fragments - 1;
      // A stray start or continuation; a message that ends early (or does not end).
      if (odd_chance(0.03)) op = pick_of<std::uint8_t>({0x0, 0x1, 0x2}), damaged = true;
      if (odd_chance(0.02)) fin = !fin, damaged = true;
      frame(op, fin, wire.substr(cuts[i], cuts[i + 1] - cuts[i]), compressed && i == 0);
      if (i == 0) case_.frames.back().message = content;
      if (i + 1 < fragments && chance(0.3)) {
        if (chance(0.15)) close_frame();
        else control(pick_of<std::uint8_t>({0x9, 0xA}));
      }
    }
    if (first < case_.frames.size()) {
      case_.frames[first].damaged = compressed && damaged;
      case_.frames[first].altered = compressed && wire != intact;
    }
  }

  void control(std::uint8_t op) {
    std::size_t size = static_cast<std::size_t>(chance(0.1) ? pick(100, 125) : pick(0, 10));
    if (odd_chance(0.03)) size = static_cast<std::size_t>(pick(126, 140));  // §5.5: at most 125
    frame(op, !odd_chance(0.03), chance(0.5) ? text(size, 0.02) : binary(size));
  }

  void close_frame() {
    std::string payload;
    const int k = pick(0, 9);
    if (k == 0) {
      // empty: no status
    } else if (k == 1 && odd_ > 0) {
      payload = binary(1);
    } else {
      const auto code = static_cast<std::uint16_t>(pick_of<int>(
          {1000, 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4000, 4999, 0, 999,
           1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535}));
      payload = {static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
      payload += text(static_cast<std::size_t>(chance(0.1) ? pick(100, 130) : pick(0, 12)), chance(0.3) ? 0.1 : 0.0);
    }
    frame(0x8, !odd_chance(0.02), payload);
  }

  // A frame of a reserved opcode, or with an absurd length (nothing follows it then).
  void odd_frame() {
    if (chance(0.5)) {
      frame(pick_of<std::uint8_t>({0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF}), chance(0.8), binary(pick(0, 5)));
      return;
    }
    const std::uint64_t size = pick_of<std::uint64_t>(
        {message_limit + 1, 0xFFFF + 1, 0xFFFFFFFFull, 1ull << 53, (1ull << 53) - 1, (1ull << 63) - 1, 1ull << 63,
         ~0ull, (1ull << 63) + 5});
    header(pick_of<std::uint8_t>({0x1, 0x2, 0x9}), true, size, 8);
    ended_ = true;
  }

  // Appends a frame with `payload`, its header sometimes odd: RSV bits, the wrong mask, a non-minimal length.
  void frame(std::uint8_t op, bool fin, const std::string& payload, bool rsv1 = false) {
    std::size_t length_bytes = payload.size() < 126 ? 0 : payload.size() <= 0xFFFF ? 2 : 8;
    if (odd_chance(0.03)) length_bytes = pick_of<std::size_t>({2, 8});  // perhaps non-minimal
    header(op, fin, payload.size(), length_bytes, rsv1);
    frame_info& f = case_.frames.back();
    f.payload = payload;
    std::string masked = payload;
    if (masked_) {
      for (std::size_t i = 0; i < masked.size(); ++i) masked[i] = static_cast<char>(masked[i] ^ key_[i % 4]);
    }
    case_.bytes += masked;
    f.end = case_.bytes.size();
  }

  void header(std::uint8_t op, bool fin, std::uint64_t size, std::size_t length_bytes, bool rsv1 = false) {
    frame_info f;
    f.begin = case_.bytes.size();
    f.op = op;
    f.fin = fin;
    std::uint8_t b0 = static_cast<std::uint8_t>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | op);
    if (odd_chance(0.02)) b0 |= pick_of<std::uint8_t>({0x40, 0x20, 0x10});
    f.rsv1 = (b0 & 0x40) != 0;
    masked_ = case_.role == ws::role::server;
    if (odd_chance(0.02)) masked_ = !masked_;
    if (length_bytes == 0 && size >= 126) length_bytes = size <= 0xFFFF ? 2 : 8;
    if (length_bytes == 2 && size > 0xFFFF) length_bytes = 8;
    f.non_minimal = (length_bytes == 2 && size < 126) || (length_bytes == 8 && size <= 0xFFFF);
    f.high_bit = length_bytes == 8 && (size >> 63) != 0;
    const std::uint8_t len7 = length_bytes == 0 ? static_cast<std::uint8_t>(size) : length_bytes == 2 ? 126 : 127;
    case_.bytes += static_cast<char>(b0);
    case_.bytes += static_cast<char>((masked_ ? 0x80 : 0) | len7);
    for (std::size_t i = length_bytes; i > 0; --i) case_.bytes += static_cast<char>((size >> (8 * (i - 1))) & 0xFF);
    if (masked_) {
      for (auto& k : key_) k = static_cast<char>(chance(0.1) ? 0 : pick(0, 255));
      case_.bytes.append(key_, 4);
    }
    f.end = case_.bytes.size();
    case_.frames.push_back(std::move(f));
  }

  void cut() {
    std::size_t left = case_.bytes.size();
    const int style = pick(0, 3);
    while (left > 0) {
      std::size_t n = style == 0 ? left : static_cast<std::size_t>(style == 1 ? pick(1, 3) : pick(1, 64));
      if (chance(0.02)) n = 0;
      n = std::min(n, left);
      case_.cut_sizes.push_back(n);
      left -= n;
    }
  }

  std::mt19937 rng_;
  stream_case case_;
  std::unique_ptr<ws::deflate_compressor> compressor_;
  bool ended_ = false;
  bool masked_ = false;
  double odd_ = 1.0;  // scales the chance of every fault of framing
  char key_[4] = {};
};

std::vector<std::string> chunks_of(const stream_case& c) { return cut_into(c.bytes, c.cut_sizes); }

// What one side reported, in order. `frame` is the index of the frame the event came with (the one holding the
// last byte consumed when it was reported).
struct event {
  std::string kind;  // message, ping, pong, close, error
  bool text = false;
  std::string data;  // message bytes, control payload, close reason
  int code = 0;      // close: the peer's code; error: the close code to send
  std::size_t frame = 0;
  std::string why;   // error: ours or theirs in words (not compared)
  bool operator==(const event& o) const {
    return kind == o.kind && text == o.text && data == o.data && code == o.code && frame == o.frame;
  }
};

std::size_t frame_at(const stream_case& c, std::size_t offset) {
  const std::size_t last = offset == 0 ? 0 : offset - 1;
  for (std::size_t i = 0; i < c.frames.size(); ++i) {
    const std::size_t end = i + 1 < c.frames.size() ? c.frames[i + 1].begin : c.bytes.size();
    if (last < end) return i;
  }
  return c.frames.size();
}

std::vector<event> ours(const stream_case& c, ws::error* error) {
  ws::frame_parser parser(c.role, {.max_message_size = message_limit,
                                   .max_frame_size = message_limit,
                                   .deflate = c.deflate ? std::optional(ws::deflate_params{}) : std::nullopt});
  std::vector<event> out;
  std::string buffer;
  std::string message;
  std::size_t consumed = 0;
  for (const std::string& chunk : chunks_of(c)) {
    buffer += chunk;
    std::size_t pos = 0;
    for (;;) {
      const ws::parse_result r = parser.parse(std::span<char>(buffer.data() + pos, buffer.size() - pos));
      pos += r.consumed;
      consumed += r.consumed;
      const std::size_t f = frame_at(c, consumed);
      switch (r.event) {
        case ws::parse_event::need_more: break;
        case ws::parse_event::data:
          message += r.payload;
          if (r.message_end) {
            out.push_back({"message", r.message_type == ws::opcode::text, std::move(message), 0, f, {}});
            message.clear();
          }
          continue;
        case ws::parse_event::ping: out.push_back({"ping", false, std::string(r.payload), 0, f, {}}); continue;
        case ws::parse_event::pong: out.push_back({"pong", false, std::string(r.payload), 0, f, {}}); continue;
        case ws::parse_event::close:
          out.push_back({"close", false, std::string(r.reason), static_cast<int>(r.code), f, {}});
          return out;
        case ws::parse_event::error:
          *error = static_cast<ws::error>(r.error.value());
          out.push_back({"error", false, {}, static_cast<int>(ws::close_code_for(r.error)), f, r.error.message()});
          return out;
      }
      break;
    }
    buffer.erase(0, pos);
  }
  return out;
}

std::vector<event> theirs(const stream_case& c, const nlohmann::json& record) {
  std::vector<event> out;
  for (const auto& e : record.at("events")) {
    event ev;
    ev.kind = e.at("k").get<std::string>();
    ev.frame = frame_at(c, e.at("at").get<std::size_t>());
    if (ev.kind == "error") {
      ev.code = e.at("code").get<int>();
      ev.why = e.at("name").get<std::string>();
    } else {
      ev.data = unhex(e.at("d").get<std::string>());
      if (ev.kind == "message") ev.text = e.at("t").get<std::string>() == "text";
      if (ev.kind == "close") ev.code = e.at("code").get<int>();
    }
    out.push_back(std::move(ev));
  }
  return out;
}

// An independent check of UTF-8 (RFC 3629 §4): is `s` valid, or (`prefix`) can it be the start of valid text?
bool utf8_ok(std::string_view s, bool prefix) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (b < 0x80) n = 1;
    else if (b >= 0xC2 && b <= 0xDF) n = 2;
    else if (b == 0xE0) n = 3, low = 0xA0;
    else if (b == 0xED) n = 3, high = 0x9F;
    else if (b >= 0xE1 && b <= 0xEF) n = 3;
    else if (b == 0xF0) n = 4, low = 0x90;
    else if (b >= 0xF1 && b <= 0xF3) n = 4;
    else if (b == 0xF4) n = 4, high = 0x8F;
    else return false;
    for (std::size_t k = 1; k < n; ++k) {
      if (i + k >= s.size()) return prefix;
      const auto c = static_cast<unsigned char>(s[i + k]);
      if (c < (k == 1 ? low : 0x80) || c > (k == 1 ? high : 0xBF)) return false;
    }
    i += n;
  }
  return true;
}

// An independent inflate (zlib directly, RFC 7692 §7.2.2) of the compressed message in progress at frame `f`, as far
// as its frames through `f` go: what a receiver has to validate as text by then. The messages before it are inflated
// too, for the window they leave (context takeover). Stops at the first fault of the data, with what came before it.
std::string inflated_through(const stream_case& c, std::size_t f) {
  z_stream z{};
  if (inflateInit2(&z, -15) != Z_OK) return {};
  std::string out;
  bool compressed = false;
  auto feed = [&](std::string_view in, bool keep) {
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    for (;;) {
      char buffer[4096];
      z.next_out = reinterpret_cast<Bytef*>(buffer);
      z.avail_out = sizeof buffer;
      const int rc = inflate(&z, Z_SYNC_FLUSH);
      if (keep) out.append(buffer, sizeof buffer - z.avail_out);
      if (rc != Z_OK || (z.avail_in == 0 && z.avail_out != 0)) return rc == Z_OK || rc == Z_BUF_ERROR;
    }
  };
  for (std::size_t i = 0; i <= f && i < c.frames.size(); ++i) {
    const frame_info& fr = c.frames[i];
    if (fr.op > 0x2) continue;  // control frames
    if (fr.op != 0x0) {
      compressed = fr.rsv1;
      out.clear();
    }
    if (!compressed) continue;
    if (!feed(fr.payload, true)) break;
    if (fr.fin && i < f && !feed(std::string_view("\x00\x00\xff\xff", 4), false)) break;
  }
  inflateEnd(&z);
  return out;
}

// Where the readings part: ours ends with its error at event k (everything before it alike), and theirs goes on.
struct divergence {
  const stream_case& c;
  const std::vector<event>& mine;
  const std::vector<event>& other;
  std::size_t k;
  ws::error our_error;
  bool ours_failed_first() const { return k + 1 == mine.size() && mine[k].kind == "error"; }
  // Theirs, from k on, reported nothing before our failing frame.
  bool theirs_not_before(std::size_t f) const {
    return std::all_of(other.begin() + static_cast<std::ptrdiff_t>(k), other.end(),
                       [&](const event& e) { return e.frame >= f; });
  }
};

struct difference_class {
  std::string_view name;
  bool (*applies)(const divergence&);
};

const std::vector<difference_class> differences = {
    {"ours rejects a payload length not in the fewest bytes, ws reads it (RFC 6455 §5.2: \"the minimal number of "
     "bytes MUST be used to encode the length\")",
     [](const divergence& d) {
       if (!d.ours_failed_first() || d.our_error != ws::error::non_minimal_length) return false;
       const std::size_t f = d.mine[d.k].frame;
       return f < d.c.frames.size() && d.c.frames[f].non_minimal && d.theirs_not_before(f);
     }},
    {"a 64-bit length with its most significant bit set: ours 1002, ws 1009 as a length it cannot hold (RFC 6455 "
     "§5.2: \"the most significant bit MUST be 0\", a protocol error, §7.4.1)",
     [](const divergence& d) {
       if (!d.ours_failed_first() || d.our_error != ws::error::length_high_bit_set) return false;
       const std::size_t f = d.mine[d.k].frame;
       return f < d.c.frames.size() && d.c.frames[f].high_bit && d.other.size() == d.k + 1 &&
              d.other[d.k].kind == "error" && d.other[d.k].code == 1009 && d.other[d.k].frame == f;
     }},
    {"ours fails a text message at the first fragment whose bytes cannot begin valid UTF-8, ws only at the "
     "message's end, delivering control frames meanwhile (RFC 6455 §8.1: fail when the bytes are not valid UTF-8; "
     "§5.4, §5.6)",
     [](const divergence& d) {
       if (!d.ours_failed_first() || d.our_error != ws::error::invalid_utf8) return false;
       const std::size_t f = d.mine[d.k].frame;
       if (f >= d.c.frames.size()) return false;
       // The message so far, from its first frame through frame f, by the generator's frames.
       std::size_t s = f;
       while (s > 0 && d.c.frames[s].op == 0x0) --s;
       while (s > 0 && d.c.frames[s].op != 0x1) --s;
       if (d.c.frames[s].op != 0x1) return false;
       if (d.c.frames[s].rsv1) {
         // Compressed: what its frames through f inflate to (at the message's end, the text whole).
         if (utf8_ok(inflated_through(d.c, f), /*prefix=*/!d.c.frames[f].fin)) return false;
       } else {
         std::string text;
         for (std::size_t i = s; i <= f; ++i) {
           if (d.c.frames[i].op <= 0x2) text += d.c.frames[i].payload;
         }
         if (utf8_ok(text, /*prefix=*/!d.c.frames[f].fin)) return false;
       }
       return d.theirs_not_before(f) &&
              std::none_of(d.other.begin() + static_cast<std::ptrdiff_t>(d.k), d.other.end(),
                           [](const event& e) { return e.kind == "message"; });
     }},
    {"ours rejects compressed data that, with the 0x00 0x00 0xff 0xff of RFC 7692 §7.2.2 appended, does not end on "
     "a DEFLATE block boundary (cut short or altered, as a sender following §7.2.1 never makes it), 1007; ws "
     "inflates what it can and delivers that",
     [](const divergence& d) {
       if (!d.ours_failed_first() || d.our_error != ws::error::invalid_compressed_data) return false;
       const std::size_t f = d.mine[d.k].frame;
       if (f >= d.c.frames.size()) return false;
       std::size_t s = f;
       while (s > 0 && d.c.frames[s].op == 0x0) --s;
       while (s > 0 && d.c.frames[s].op != 0x1 && d.c.frames[s].op != 0x2) --s;
       return d.c.frames[s].rsv1 && d.c.frames[s].damaged && d.theirs_not_before(f);
     }},
    {"an empty payload with RSV1: ours reads an empty message (as if it were the 0x00 of RFC 7692 §7.2.3.6); ws "
     "(zlib) reads 00 00 ff ff, appended by §7.2.2, as the start of a stored block, delivers an empty message too, "
     "and misreads the next compressed message (1007, or other bytes). A §7.2.1 sender never sends it (its flush "
     "leaves at least the block header's bits); ours is lenient here on purpose (deflate.hpp, "
     "deflate_decompressor::inflate)",
     [](const divergence& d) {
       // Where the readings part: the earlier of the two events there.
       std::size_t g = d.c.frames.size();
       if (d.k < d.mine.size()) g = std::min(g, d.mine[d.k].frame);
       if (d.k < d.other.size()) g = std::min(g, d.other[d.k].frame);
       // Before it: a compressed message whose frames carry no byte, then the start of another compressed message.
       bool in_empty_compressed = false, empty_seen = false;
       for (std::size_t i = 0; i <= g && i < d.c.frames.size(); ++i) {
         const frame_info& f = d.c.frames[i];
         if (f.op > 0x2) continue;
         if (f.op != 0x0) {
           if (empty_seen && f.rsv1) return true;
           in_empty_compressed = f.rsv1;
         }
         in_empty_compressed = in_empty_compressed && f.payload.empty();
         if (in_empty_compressed && f.fin) empty_seen = true;
       }
       return false;
     }},
};

std::string describe(const std::vector<event>& events) {
  std::ostringstream s;
  for (const event& e : events) {
    s << "\n  frame " << e.frame << ": " << e.kind;
    if (e.kind == "message") s << (e.text ? " text" : " binary");
    if (e.code != 0) s << " " << e.code;
    if (!e.data.empty()) s << " \"" << escaped(e.data.substr(0, 200)) << (e.data.size() > 200 ? "..." : "") << "\"";
    if (!e.why.empty()) s << " (" << e.why << ")";
  }
  return s.str();
}

void compare_with_ws(const std::vector<stream_case>& cases) {
  std::string input;
  for (const stream_case& c : cases) {
    input += nlohmann::json{{"chunks", hex_chunks(chunks_of(c))},
                            {"server", c.role == ws::role::server},
                            {"max", message_limit},
                            {"deflate", c.deflate}}
                 .dump() +
             "\n";
  }
  const std::vector<nlohmann::json> records = run_node_peer("ws_frames.mjs", {}, input);
  REQUIRE(records.size() == cases.size());

  std::map<std::string_view, int> classified;
  std::map<std::string, int> outcomes;  // how the streams ended, alike: not a vacuous comparison
  std::size_t alike_events = 0;
  int failures = 0;
  for (std::size_t i = 0; i < cases.size() && failures < 5; ++i) {
    const stream_case& c = cases[i];
    ws::error our_error{};
    const std::vector<event> mine = ours(c, &our_error);
    const std::vector<event> other = theirs(c, records[i]);
    std::size_t k = 0;
    while (k < mine.size() && k < other.size() && mine[k] == other[k]) ++k;
    alike_events += k;
    if (k == mine.size() && k == other.size()) {
      ++outcomes[mine.empty() ? "no event" : mine.back().kind == "error" ? "error " + std::to_string(mine.back().code)
                                                                          : mine.back().kind];
      continue;
    }
    const divergence d{c, mine, other, k, our_error};
    const auto known = std::find_if(differences.begin(), differences.end(),
                                    [&](const difference_class& dc) { return dc.applies(d); });
    if (known != differences.end()) {
      ++classified[known->name];
      continue;
    }
    ++failures;
    INFO("seed " << c.seed << (c.role == ws::role::server ? " (server)" : " (client)") << ": \"" << escaped(c.bytes)
                 << "\"");
    std::ostringstream sizes, frames;
    for (std::size_t n : c.cut_sizes) sizes << n << ' ';
    for (const frame_info& f : c.frames) {
      frames << "\n  at " << f.begin << ": op " << int(f.op) << (f.fin ? " fin" : "") << (f.rsv1 ? " rsv1" : "")
             << (f.damaged ? " damaged" : "") << ", " << f.payload.size() << " bytes";
      if (!f.message.empty()) frames << " (message of " << f.message.size() << ")";
    }
    INFO("chunk sizes: " << sizes.str());
    INFO("frames as generated:" << frames.str());
    INFO("the readings part at event " << k);
    INFO("ours:" << describe(mine));
    INFO("ws:" << describe(other));
    FAIL_CHECK("the readings differ, and in no named class of difference");
  }
  std::ostringstream counts;
  for (const auto& [name, count] : classified) counts << "\n  " << count << ": " << name;
  for (const auto& [name, count] : outcomes) counts << "\n  " << count << " alike, ending in " << name;
  INFO("streams by class of difference or outcome:" << counts.str());
  CHECK(failures == 0);
  // Not a vacuous comparison: most events agree, and streams end each way.
  CHECK(alike_events > cases.size());
  CHECK(outcomes["error 1002"] > 0);
  CHECK(outcomes["error 1007"] > 0);
  CHECK(outcomes["error 1009"] > 0);
  CHECK(outcomes["close"] > 0);
}

}  // namespace

TEST_CASE("ws::frame_parser and the ws package's Receiver (npm) read random frame streams alike",
          "[conformance][ws]") {
  REQUIRE(switchboard::test::have_program("node"));
  std::vector<stream_case> cases;
  for (std::uint32_t seed = 1; seed <= 3000; ++seed) cases.push_back(stream_generator(seed, ws::role::server).make());
  for (std::uint32_t seed = 3001; seed <= 4000; ++seed) {
    cases.push_back(stream_generator(seed, ws::role::client).make());
  }
  compare_with_ws(cases);
}

TEST_CASE("ws::frame_parser and the ws package's Receiver (npm) read random compressed frame streams alike",
          "[conformance][ws]") {
  REQUIRE(switchboard::test::have_program("node"));
  std::vector<stream_case> cases;
  for (std::uint32_t seed = 5001; seed <= 6000; ++seed) {
    cases.push_back(stream_generator(seed, ws::role::server, /*deflate=*/true).make());
  }
  for (std::uint32_t seed = 6001; seed <= 6500; ++seed) {
    cases.push_back(stream_generator(seed, ws::role::client, /*deflate=*/true).make());
  }
  compare_with_ws(cases);
}
