// A differential test of http::request_parser and http::response_parser against llhttp, the HTTP/1.1 parser inside
// Node.js, in its strict (default) mode (tests/conformance/node/http_parse.mjs drives it through Node's own
// binding). Random messages, valid and near-valid (odd methods, targets, versions, status lines, field lines with
// every odd byte, Content-Length and Transfer-Encoding in every form, chunked bodies with odd sizes, extensions and
// trailers), pipelined and cut into random chunks, go through both; what both make of them must agree: each
// message's start line, fields, body, trailers and keep-alive, where each message ends, and whether (and in which
// message) the stream is rejected. Where they disagree, RFC 9112 (and RFC 9110) decides: a difference is allowed
// only as one of the named classes below, each a place where our parser is deliberately stricter
// (docs/request-response.md, "Strict parsing") or where llhttp is, and the RFC allows both or says ours is right.
// Above all, no request that llhttp rejects or reads differently may be accepted by ours unless the RFC says so:
// that is where request smuggling hides (RFC 9112 §6.3, §11.2).
#include <switchboard/http/parser.hpp>

#include "support/catch.hpp"
#include "support/test_support.hpp"
#include "conformance/differential_support.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using switchboard::test::cut_into;
using switchboard::test::escaped;
using switchboard::test::hex_chunks;
using switchboard::test::run_node_peer;
using switchboard::test::unhex;
namespace http = switchboard::http;

namespace {

struct stream_case {
  std::uint32_t seed = 0;
  std::string bytes;
  std::vector<std::size_t> cut_sizes;  // the chunk sizes, summing to bytes.size(); 0 is an empty chunk
  std::vector<bool> head;              // responses: whether each answers a HEAD request (no body)
};

// Builds random pipelines of requests (or responses) from a grammar of valid and near-valid pieces. Half the messages
// are made of valid pieces only, so that the pipeline goes on; in the others each odd piece is rare.
class message_generator {
 public:
  explicit message_generator(std::uint32_t seed, bool responses = false) : rng_(seed), responses_(responses) {
    case_.seed = seed;
  }

  stream_case make() {
    for (int n = pick(1, 5); n > 0 && !until_eof_; --n) {
      if (responses_) {
        response_message();
      } else {
        request_message();
      }
    }
    if (chance(0.1)) case_.bytes += pick_of<std::string>({"\r\n", "G", "GET / HTTP/1.1\r\n", "xyz", "\r\n\r\n"});
    cut();
    return std::move(case_);
  }

 private:
  using strings = std::vector<std::string>;

  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  int pick(int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng_); }
  template <class T>
  T pick_of(const std::vector<T>& v) {
    return v[static_cast<std::size_t>(pick(0, static_cast<int>(v.size()) - 1))];
  }
  // A valid piece, or (with probability `odd`, in a message that may have odd pieces) a near-valid one.
  std::string either(double odd, const strings& valid, const strings& near) {
    return odd_chance(odd) ? pick_of(near) : pick_of(valid);
  }
  bool odd_chance(double p) { return chance(p * odd_); }

  std::string sp() { return either(0.01, {" "}, {"  ", "\t", "\x0b", ""}); }
  std::string eol() { return either(0.015, {"\r\n"}, {"\n", "\r", "\r\r\n", " \r\n", "\n\r"}); }

  std::string method() {
    return either(0.08,
                  {"GET", "GET", "POST", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "PROPFIND", "PURGE"},
                  {"get", "Get", "FOO", "M-SEARCH", "QUERY", "GET\x01", "G(T", "", "CONNECT", "TRACE", "SEARCH",
                   "GET\x7f", "G\xc3\x89T", "LINK"});
  }

  std::string target() {
    return either(0.08,
                  {"/", "/", "/a/b", "/a?b=c&d=e", "/%41%2f", "/~u/x.y", "//x", "/?", "/@:!$&'()*+,;=",
                   "http://h.example/x?y", "*"},
                  {"/a b", "/a\tb", "/\x7f", "/\xc3\xa9", "/{x}", "/a|b", "/a\"b", "/a<b>", "/a\\b", "/a^b", "/a`b",
                   "/#f", "", std::string("/\0", 2), "/a\rb", "/a\nb", "h.example:443", "a", "http://[::1]:80/",
                   "/%zz", "/\x01"});
  }

  std::string version() {
    return either(0.05, {"HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0"},
                  {"HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "HTTP/3", "http/1.1", "HTTP/1.1 ", "HTTP/11", "HTTP/1",
                   "HTTP/1.1.1", "HTTP/9.9", "HTTP /1.1", "", "HTTP/1.01", "HTTP/1.x", "HTTPS/1.1"});
  }

  std::string name(std::string_view lower) {
    std::string n(lower);
    switch (pick(0, 3)) {
      case 0:
        break;
      case 1:
        for (char& c : n) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
        break;
      default:
        for (std::size_t i = 0; i < n.size(); ++i) {
          if (i == 0 || n[i - 1] == '-') n[i] = static_cast<char>(n[i] >= 'a' && n[i] <= 'z' ? n[i] - 32 : n[i]);
        }
    }
    return n;
  }

  // ": " between name and value, or an odd one (whitespace before the colon, none after it, other whitespace).
  std::string colon() {
    return either(0.03, {": ", ": ", ":"}, {" : ", "\t: ", ":\t", ":  ", ": \x0b", ":\x0c", " :"});
  }

  std::string field_line(std::string_view n, const std::string& value) {
    return name(n) + colon() + value;
  }

  // A field that says nothing about framing, valid or odd in any of its bytes.
  std::string other_field() {
    if (!odd_chance(0.15)) {
      return field_line(pick_of<std::string>({"accept", "user-agent", "x-a", "cache-control", "cookie"}),
                        pick_of<std::string>({"*/*", "x/1.0", "a, b", "no-cache", "a=b; c=d", "", "\"q\"", "v v"}));
    }
    return pick_of<std::string>({
        "X-A: a\r\n b",           // obs-fold
        "X-A: a\r\n\tb",          // obs-fold
        "X-A: a\rb",              // bare CR
        "X-A: a\nb",              // bare LF
        std::string("X-A: a\0b", 8),
        "X-A: \x01", "X-A: a\x7f", "X-A: \xff\xfe", "X-A: \x80", "X-A:", "X-A:   ", "X-A: \t v \t",
        ": v", "X@A: v", "X\xff" "A: v", "X-A v", "X A: v", "X-A:v", "X\x01: v", "X-A\x7f: v", "(X): v",
        "X-A: a\x0b" "b", "X-A: a\x0c" "b", "X-A: \x1b[0m", "X-A: a\r\r\nX-B: b", "\xef\xbb\xbfX-A: v"});
  }

  std::string content_length_value(std::size_t n) {
    const std::string v = std::to_string(n);
    return either(0.25, {v},
                  {"0" + v, "00" + v, "+" + v, "-" + v, v + ", " + v, v + "," + v, v + ", " + std::to_string(n + 1),
                   " " + v, v + " ", "0x" + v, "", v + "a", "99999999999999999999999", "18446744073709551615",
                   "18446744073709551616", "1e3", ",", v + ",", "," + v, v + ", ,", "\"" + v + "\"", v + ".0",
                   v + " " + v, "\xd9\xa3", v + ";"});
  }

  std::string transfer_encoding_value() {
    return either(0.3, {"chunked"},
                  {"Chunked", "CHUNKED", "chunked, chunked", "gzip, chunked", "chunked, gzip", "gzip", "identity",
                   "chunked ", "\tchunked", "chunked;q=1", "x-chunked", "chunk", ",chunked", "chunked,", "\"chunked\"",
                   "identity, chunked", "gzip,chunked", "chunked\x0b", "cHuNkEd", "chunked , ", "deflate"});
  }

  std::string body_bytes(std::size_t n) {
    static const strings pieces = {"a", "b", "0", "\r\n", "GET / HTTP/1.1\r\n", "Host: h\r\n", "\r\n\r\n", "0\r\n",
                                   "\xff", std::string("\0", 1), " "};
    std::string out;
    while (out.size() < n) out += pick_of(pieces);
    out.resize(n);
    return out;
  }

  std::string chunk_size(std::size_t n) {
    static constexpr char lower[] = "0123456789abcdef";
    static constexpr char upper[] = "0123456789ABCDEF";
    std::string h;
    const bool up = chance(0.3);
    do {
      h.insert(h.begin(), (up ? upper : lower)[n % 16]);
      n /= 16;
    } while (n > 0);
    if (chance(0.1)) h = "000" + h;
    return either(0.04, {h}, {"0x" + h, " " + h, h + " ", h + "\t", "+" + h, "-" + h, "", h + "g",
                              "10000000000000000", "ffffffffffffffff0"});
  }

  std::string chunk_extension() {
    if (!chance(0.15)) return "";
    return either(0.3, {";a=b", ";a", ";a=\"q s\"", ";a;b=c", ";a=\"\\\"\""},
                  {"; a = b", ";", ";=b", ";a=", ";a=\"q", ";a=b c", ";a\x01", ";\xff", ";a=\"\x01\"", " ;a",
                   ";a=\"\\\x7f\"",
                   ";a=b\r"});
  }

  std::string chunked_body() {
    std::string out;
    for (int n = pick(0, 3); n > 0; --n) {
      const auto size = static_cast<std::size_t>(pick(1, 12));
      out += chunk_size(size) + chunk_extension() + eol();
      out += body_bytes(size);
      out += either(0.04, {"\r\n"}, {"\n", "", "X\r\n", "\r", "\r\r\n"});
    }
    out += either(0.05, {"0", "000"}, {"", " 0", "0 ", "00000000000000000000"}) + chunk_extension() + eol();
    if (chance(0.2)) {
      out += either(0.2, {"T: 1\r\n", "Trailer-A: x y\r\n"},
                    {"T : 1\r\n", "T: 1\n", " T: 1\r\n", "T: a\r\n b\r\n", ": 1\r\n", "T\r\n", "T: \x01\r\n"});
    }
    out += either(0.03, {"\r\n"}, {"\n", "", "\r"});
    return out;
  }

  void request_message() {
    // Half the messages are made of valid pieces only, so that pipelines go on and their boundaries are compared.
    odd_ = chance(0.5) ? 1.0 : 0.0;
    std::string& out = case_.bytes;
    if (chance(0.04)) out += either(0.5, {"\r\n", "\r\n\r\n"}, {"\n", " \r\n", "\r"});
    const std::string v = version();
    out += method() + sp() + target() + sp() + v + eol();

    strings lines;
    const int hosts = odd_chance(0.08) ? pick(0, 2) : 1;
    for (int i = 0; i < hosts; ++i) {
      lines.push_back(field_line("host", either(0.02, {"h", "h.example:80", ""},
                                                {"h h", "h/x", "h:8o", "[::1", "u@h"})));
    }
    for (int n = pick(0, 3); n > 0; --n) lines.push_back(other_field());
    if (chance(0.12)) {
      lines.push_back(field_line("connection", pick_of<std::string>({"close", "keep-alive", "Keep-Alive", "upgrade",
                                                                     "close, keep-alive", "x, close", "te"})));
    }
    if (chance(0.03)) lines.push_back(field_line("upgrade", "websocket"));
    if (chance(0.03)) lines.push_back(field_line("expect", "100-continue"));

    std::string body;
    // A valid HTTP/1.0 message has no Transfer-Encoding (RFC 9112 §6.1).
    const int framing = pick(0, v == "HTTP/1.0" && odd_ == 0 ? 59 : 99);
    if (framing < 30) {
      // No framing field: no body. A few stray bytes sometimes, which are then the next message's start.
      if (odd_chance(0.05)) body = body_bytes(static_cast<std::size_t>(pick(1, 5)));
    } else if (framing < 60) {
      const auto n = static_cast<std::size_t>(pick(0, 20));
      lines.push_back(field_line("content-length", content_length_value(n)));
      if (odd_chance(0.05)) lines.push_back(field_line("content-length", content_length_value(n)));
      std::size_t written = n;
      if (odd_chance(0.05)) written = static_cast<std::size_t>(pick(0, 25));
      body = body_bytes(written);
    } else if (framing < 92) {
      lines.push_back(field_line("transfer-encoding", transfer_encoding_value()));
      if (odd_chance(0.07)) lines.push_back(field_line("transfer-encoding", transfer_encoding_value()));
      body = chunked_body();
    } else if (odd_) {
      // Both: the classic smuggling pair, in either order.
      const auto n = static_cast<std::size_t>(pick(0, 20));
      lines.push_back(field_line("content-length", content_length_value(n)));
      lines.push_back(field_line("transfer-encoding", transfer_encoding_value()));
      body = chance(0.5) ? chunked_body() : body_bytes(n);
    }
    std::shuffle(lines.begin(), lines.end(), rng_);
    for (const std::string& line : lines) out += line + eol();
    out += either(0.02, {"\r\n"}, {"\n", "\r", " \r\n"});
    out += body;
  }

  // A response: the status line instead of the request line, no Host; no body after 1xx, 204 and 304 or in
  // answer to HEAD, whatever the fields say; a body that ends with the connection where no field frames it.
  void response_message() {
    odd_ = chance(0.5) ? 1.0 : 0.0;
    std::string& out = case_.bytes;
    const bool head = chance(0.1);
    case_.head.push_back(head);
    const std::string code = either(0.05, {"200", "200", "200", "201", "204", "301", "304", "404", "500", "100", "206"},
                                    {"99", "1000", "20", "2000", "abc", "099", "600", "999", " 200", "2x0"});
    const std::string reason = either(0.05, {"OK", "Not Found", "", "Whatever It Is"},
                                      {"O\x01K", "\x80\xff", "OK\t", "a\rb", "a\nb", "\x7f"});
    const std::string v = version();
    out += v + sp() + code + either(0.03, {" " + reason}, {"", "  " + reason, "\t" + reason}) + eol();

    strings lines;
    for (int n = pick(0, 3); n > 0; --n) lines.push_back(other_field());
    if (chance(0.12)) {
      lines.push_back(field_line("connection", pick_of<std::string>({"close", "keep-alive", "Keep-Alive", "upgrade",
                                                                     "close, keep-alive", "x, close"})));
    }
    if (chance(0.03)) lines.push_back(field_line("upgrade", "websocket"));
    const bool no_body = head || code.starts_with('1') || code == "204" || code == "304";
    std::string body;
    const int framing = pick(0, v == "HTTP/1.0" && odd_ == 0 ? 59 : 99);
    if (framing < 10) {
      // Neither field: the body ends with the connection (RFC 9112 §6.3 item 8); nothing can follow it.
      if (!no_body) {
        body = body_bytes(static_cast<std::size_t>(pick(0, 20)));
        until_eof_ = true;
      }
    } else if (framing < 20) {
      // No body whatever the framing: 1xx, 204, 304 or HEAD without a length.
    } else if (framing < 60) {
      const auto n = static_cast<std::size_t>(pick(0, 20));
      lines.push_back(field_line("content-length", content_length_value(n)));
      if (odd_chance(0.05)) lines.push_back(field_line("content-length", content_length_value(n)));
      if (!no_body) body = body_bytes(odd_chance(0.05) ? static_cast<std::size_t>(pick(0, 25)) : n);
    } else if (framing < 92) {
      lines.push_back(field_line("transfer-encoding", transfer_encoding_value()));
      if (odd_chance(0.07)) lines.push_back(field_line("transfer-encoding", transfer_encoding_value()));
      if (!no_body) body = chunked_body();
    } else if (odd_) {
      const auto n = static_cast<std::size_t>(pick(0, 20));
      lines.push_back(field_line("content-length", content_length_value(n)));
      lines.push_back(field_line("transfer-encoding", transfer_encoding_value()));
      if (!no_body) body = chance(0.5) ? chunked_body() : body_bytes(n);
    }
    if (no_body && framing < 10 && chance(0.5)) until_eof_ = true;  // a last response: the connection ends
    std::shuffle(lines.begin(), lines.end(), rng_);
    for (const std::string& line : lines) out += line + eol();
    out += either(0.02, {"\r\n"}, {"\n", "\r", " \r\n"});
    out += body;
  }

  // Cuts the stream at random; always after some CRs, so that a CRLF is often split between chunks.
  void cut() {
    const std::size_t size = case_.bytes.size();
    std::vector<std::size_t> cuts;
    if (chance(0.1)) {
      for (std::size_t i = 1; i < size; ++i) cuts.push_back(i);  // byte by byte
    } else {
      const double p = std::uniform_real_distribution<double>(0.0, 0.3)(rng_);
      for (std::size_t i = 1; i < size; ++i) {
        if (std::bernoulli_distribution(p)(rng_) || (case_.bytes[i - 1] == '\r' && chance(0.3))) cuts.push_back(i);
        if (!cuts.empty() && cuts.back() == i && chance(0.02)) cuts.push_back(i);  // an empty chunk
      }
    }
    std::size_t previous = 0;
    for (std::size_t c : cuts) {
      case_.cut_sizes.push_back(c - previous);
      previous = c;
    }
    case_.cut_sizes.push_back(size - previous);
  }

  std::mt19937 rng_;
  bool responses_ = false;
  stream_case case_;
  double odd_ = 1.0;       // 0 in a message made of valid pieces only
  bool until_eof_ = false;  // a response whose body ends with the connection was written: nothing can follow
};

std::vector<std::string> chunks_of(const stream_case& c) { return cut_into(c.bytes, c.cut_sizes); }

using field_list = std::vector<std::pair<std::string, std::string>>;

// One message as both parsers expose it.
struct message_seen {
  std::string method;  // requests
  std::string target;  // requests: the request-target; responses: the reason phrase
  unsigned status = 0;  // responses
  int minor = 0;
  field_list fields;
  std::string body;
  field_list trailers;
  bool keep_alive = false;
  bool upgrade = false;  // switches protocols after this message (Upgrade, or CONNECT)

  bool operator==(const message_seen&) const = default;
};

// How a stream ended, once each message that both read has been compared.
enum class ending {
  clean,     // every byte was read into complete messages (or leading empty lines)
  cut,       // the stream ended inside a message (ours: error::partial_message at put_eof)
  rejected,  // a parse error in the message after the last complete one
  closed,    // a message that ends the connection (not keep-alive, or switching protocols): later bytes unread
};

struct outcome {
  std::vector<message_seen> messages;
  ending end = ending::clean;
  // Ours only: the message whose header section was read when the stream ended or failed in its body.
  std::optional<message_seen> unfinished;
  // Ours only: where each message begins in the stream (with one more entry: where the next one, or the failing
  // one, begins), and where each header section ends.
  std::vector<std::size_t> starts{0};
  std::vector<std::size_t> header_ends;
  std::error_code error;        // ours, when rejected
  std::string rest;             // ours, when rejected or cut: the bytes not consumed (from the start of what failed)
  field_list error_fields;      // ours, when rejected: the fields parsed (all of them for an error in their meaning)
  int error_minor = -1;         // ours, when rejected in the header section: the version (valid once it was read)
  std::string their_error;      // llhttp's code, when rejected
  std::string their_reason;     // and its words
  std::size_t their_at = 0;     // and the offset in the stream where llhttp found it
};

const char* to_string(ending e) {
  switch (e) {
    case ending::clean: return "clean";
    case ending::cut: return "cut";
    case ending::rejected: return "rejected";
    case ending::closed: return "closed";
  }
  return "?";
}

// A server stops reading a connection after a message that closes it (RFC 9112 §9.6: it "MUST NOT process any
// further requests received on that connection") or that switches to another protocol (RFC 9110 §7.8; CONNECT,
// §9.3.6, makes a tunnel): the bytes after it are not read as HTTP/1.1. llhttp (strict) rejects data after such a
// message with HPE_CLOSED_CONNECTION; neither reading is compared.
bool ends_connection(const message_seen& m) { return !m.keep_alive || m.upgrade; }

// Our parser over the chunks, as a server (requests) or a client (responses; `head` says which answer HEAD) reads.
template <bool IsRequest>
outcome ours(const std::vector<std::string>& chunks, const std::vector<bool>& head = {}) {
  // No body limit that matters (llhttp has none): the differences compared are of framing, not of limits.
  http::basic_parser<IsRequest> parser(http::parser_limits{.max_body = std::uint64_t{1} << 62});
  outcome o;
  message_seen m;
  std::string buffered;
  std::size_t consumed = 0;
  auto expect = [&] {
    if constexpr (!IsRequest) {
      if (o.messages.size() < head.size() && head[o.messages.size()]) parser.expect_head_response();
    }
  };
  expect();
  for (const std::string& chunk : chunks) {
    buffered += chunk;
    for (;;) {
      std::error_code ec;
      const bool had_header = parser.header_done();
      const std::size_t n = parser.put(buffered, ec);
      if (ec) {
        o.end = ending::rejected;
        o.error = ec;
        o.rest = buffered;
        if (had_header) o.unfinished = m;
        if (!had_header) o.error_minor = parser.version_minor();
        for (const auto& f : parser.fields()) o.error_fields.emplace_back(f.name, f.value);
        return o;
      }
      if (!had_header && parser.header_done()) {
        if constexpr (IsRequest) {
          m.method = parser.method_string();
          m.target = parser.target();
          // Our server does not implement CONNECT (the router answers it as any other method) and reads its body
          // as the fields say; llhttp ends HTTP there (the class "CONNECT with a body" below).
          m.upgrade = parser.upgrade() || parser.method() == http::method::connect;
        } else {
          m.status = parser.status_code();
          m.target = parser.reason();
          m.upgrade = parser.upgrade() && m.status == 101;  // what our client switches on
        }
        m.minor = parser.version_minor();
        for (const auto& f : parser.fields()) m.fields.emplace_back(f.name, f.value);
        m.keep_alive = parser.keep_alive();
        o.header_ends.push_back(consumed + n);
      }
      m.body += parser.body_piece();
      if (parser.done()) {
        for (const auto& f : parser.trailers()) m.trailers.emplace_back(f.name, f.value);
      }
      consumed += n;
      buffered.erase(0, n);  // the views above point into these bytes: copied first
      if (parser.done()) {
        o.messages.push_back(std::move(m));
        o.starts.push_back(consumed);
        m = {};
        if (ends_connection(o.messages.back())) {
          o.end = ending::closed;
          return o;
        }
        parser.reset();
        expect();
        continue;
      }
      if (n == 0) break;
    }
  }
  std::error_code ec;
  parser.put_eof(ec);
  if (ec) {
    o.end = ending::cut;
  } else if (parser.done()) {  // a response whose body ends with the connection
    o.messages.push_back(std::move(m));
    o.starts.push_back(consumed);
    if (ends_connection(o.messages.back())) o.end = ending::closed;
    return o;
  }
  if (parser.header_done()) o.unfinished = m;
  o.rest = buffered;
  return o;
}

outcome theirs(const nlohmann::json& record) {
  outcome o;
  for (const auto& r : record.at("messages")) {
    message_seen m;
    if (r.at("method").is_null()) {
      m.status = r.at("status").get<unsigned>();
      m.target = unhex(r.at("reason").get<std::string>());
    } else {
      m.method = r.at("method").get<std::string>();
      m.target = unhex(r.at("target").get<std::string>());
    }
    m.minor = r.at("major").get<int>() == 1 ? r.at("minor").get<int>() : -1;  // ours has only 1.0 and 1.1
    for (const auto& f : r.at("fields")) {
      m.fields.emplace_back(unhex(f[0].get<std::string>()), unhex(f[1].get<std::string>()));
    }
    m.body = unhex(r.at("body").get<std::string>());
    for (const auto& f : r.at("trailers")) {
      m.trailers.emplace_back(unhex(f[0].get<std::string>()), unhex(f[1].get<std::string>()));
    }
    m.keep_alive = r.at("keep_alive").get<bool>();
    m.upgrade = r.at("upgrade").get<bool>();
    const bool ends = ends_connection(m);
    o.messages.push_back(std::move(m));
    if (ends) {
      o.end = ending::closed;
      return o;
    }
  }
  if (!record.at("error").is_null()) {
    o.end = ending::rejected;
    o.their_error = record.at("error").get<std::string>();
    o.their_reason = record.at("reason").get<std::string>();
    o.their_at = record.at("at").get<std::size_t>();
  } else if (!record.at("eof").is_null()) {
    o.end = ending::cut;
  }
  return o;
}

// -- The named classes of difference. Each is decided by RFC 9112 or RFC 9110 in a way that allows both readings
// (or says ours is right); each predicate is as narrow as the generator allows, so that nothing else hides in it.

// Where the two readings part: the first message not read alike (index k), as each side read it, if at all.
struct divergence {
  const stream_case& c;
  const outcome& mine;
  const outcome& other;
  std::size_t k;
  const message_seen* ours_k;    // our reading of message k, if we completed it
  const message_seen* ours_head;  // our reading of message k, if we read its header section
  const message_seen* theirs_k;  // llhttp's, if it completed it
  const std::vector<std::string>& their_methods;
};

std::vector<std::string_view> list_elements(std::string_view value) {
  std::vector<std::string_view> out;
  for (;;) {
    const std::size_t comma = value.find(',');
    out.push_back(http::detail::trim_ows(value.substr(0, comma)));
    if (comma == std::string_view::npos) return out;
    value.remove_prefix(comma + 1);
  }
}

std::vector<std::string_view> values_of(const field_list& fields, std::string_view name) {
  std::vector<std::string_view> out;
  for (const auto& [n, v] : fields) {
    if (http::detail::iequals(n, name)) out.push_back(v);
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The chunk lines (size and extensions) of a chunked body that our parser read, from its raw bytes.
std::vector<std::string_view> chunk_lines(std::string_view body) {
  std::vector<std::string_view> lines;
  for (;;) {
    const std::size_t crlf = body.find("\r\n");
    if (crlf == std::string_view::npos) return lines;
    lines.push_back(body.substr(0, crlf));
    std::uint64_t size = 0;
    for (char c : lines.back()) {
      if (hex_digit(c) < 0) break;
      size = size * 16 + static_cast<std::uint64_t>(hex_digit(c));
    }
    body.remove_prefix(crlf + 2);
    if (size == 0 || size + 2 > body.size()) return lines;
    body.remove_prefix(static_cast<std::size_t>(size) + 2);
  }
}

// The extensions of a chunk line: what follows the size.
std::string_view extensions_of(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size() && hex_digit(line[i]) >= 0) ++i;
  return line.substr(i);
}

// We read the header section of message k (and maybe all of it); llhttp rejected it.
bool we_accept_they_reject(const divergence& d, std::initializer_list<std::string_view> their_errors) {
  return d.ours_head != nullptr && d.theirs_k == nullptr && d.other.end == ending::rejected &&
         std::find(their_errors.begin(), their_errors.end(), d.other.their_error) != their_errors.end();
}

// We reject message k (and llhttp read it, or is still waiting for the rest of it).
bool we_reject(const divergence& d, http::error e) {
  return d.ours_k == nullptr && d.mine.end == ending::rejected && d.mine.error == e &&
         (d.theirs_k != nullptr || d.other.end == ending::cut || d.other.end == ending::clean);
}

// Where our parser stopped for a rejected request: its request-line, after the empty lines that may come before it
// (RFC 9112 §2.2), up to the end of the input.
std::string_view rejected_request(const divergence& d) {
  std::string_view rest = d.mine.rest;
  while (rest.starts_with("\r\n")) rest.remove_prefix(2);
  return rest;
}

// The request-target of a rejected request-line, as our parser scanned it: from after the method's SP to the
// first character that no URI allows (which may be the SP that ends it).
std::string_view rejected_target(const divergence& d) {
  std::string_view target = rejected_request(d);
  target.remove_prefix(std::min(target.size(), target.find(' ') + 1));
  const auto* end = std::find_if(target.begin(), target.end(),
                                 [](char c) { return !http::detail::target_table[static_cast<unsigned char>(c)]; });
  return target.substr(0, static_cast<std::size_t>(end - target.begin()));
}

struct difference_class {
  std::string_view name;
  std::string_view rule;
  bool (*applies)(const divergence&);
};

const std::vector<difference_class> request_differences = {
    {"a method llhttp does not know",
     "RFC 9110 §9.1: method = token, and the set is extensible (§16.1); llhttp knows a fixed list",
     [](const divergence& d) {
       return we_accept_they_reject(d, {"HPE_INVALID_METHOD"}) &&
              std::find(d.their_methods.begin(), d.their_methods.end(), d.ours_head->method) == d.their_methods.end();
     }},
    {"one Content-Length value repeated (\"5, 5\", or two field lines)",
     "RFC 9110 §8.6: a recipient MAY replace a list of one repeated value by the value; llhttp rejects it",
     [](const divergence& d) {
       if (!we_accept_they_reject(d, {"HPE_UNEXPECTED_CONTENT_LENGTH", "HPE_INVALID_CONTENT_LENGTH"})) return false;
       std::size_t elements = 0;
       for (std::string_view v : values_of(d.ours_head->fields, "content-length")) {
         for (std::string_view e : list_elements(v)) {
           if (e.empty()) return false;  // "5," is no repeated value: ours must reject it
           ++elements;
         }
       }
       return elements > 1;
     }},
    {"Transfer-Encoding with an empty list element (\"chunked,\")",
     "RFC 9110 §5.6.1.2: a recipient MUST parse and ignore a reasonable number of empty list elements",
     [](const divergence& d) {
       if (!we_accept_they_reject(d, {"HPE_INVALID_TRANSFER_ENCODING"})) return false;
       for (std::string_view v : values_of(d.ours_head->fields, "transfer-encoding")) {
         for (std::string_view e : list_elements(v)) {
           if (e.empty()) return true;
         }
       }
       return false;
     }},
    {"whitespace around \";\" or \"=\" in a chunk extension",
     "RFC 9112 §7.1.1: chunk-ext = *( BWS \";\" BWS chunk-ext-name [ BWS \"=\" BWS chunk-ext-val ] ), and a "
     "recipient MUST parse BWS (RFC 9110 §5.6.3); llhttp strict rejects it",
     [](const divergence& d) {
       if (!we_accept_they_reject(d, {"HPE_STRICT", "HPE_INVALID_CHUNK_SIZE"})) return false;
       // The body as far as ours read it (all of it, or up to where the stream ended).
       const std::size_t body_end = d.ours_k ? d.mine.starts[d.k + 1] : d.c.bytes.size() - d.mine.rest.size();
       if (d.other.their_at >= body_end) return false;
       const std::string_view raw =
           std::string_view(d.c.bytes).substr(d.mine.header_ends[d.k], body_end - d.mine.header_ends[d.k]);
       // llhttp's error is in a chunk line with whitespace only where BWS is: after ";" or around "=", or before
       // a ";". Whitespace before the CRLF is in no production: ours must reject it.
       for (std::string_view line : chunk_lines(raw)) {
         const auto at = static_cast<std::size_t>(line.data() - d.c.bytes.data());
         if (d.other.their_at < at || d.other.their_at > at + line.size()) continue;
         const std::string_view ext = extensions_of(line);
         bool bws = false;
         for (std::size_t i = 0; i < ext.size();) {
           if (ext[i] != ' ' && ext[i] != '\t') {
             ++i;
             continue;
           }
           const std::size_t run = i;
           while (i < ext.size() && (ext[i] == ' ' || ext[i] == '\t')) ++i;
           if (i == ext.size()) return false;
           bws = bws || ext[i] == ';' || ext[i] == '=' || (run > 0 && (ext[run - 1] == ';' || ext[run - 1] == '='));
         }
         return bws;
       }
       return false;
     }},
    {"Transfer-Encoding or Content-Length in the trailer section",
     "RFC 9110 §6.5.1-6.5.2: trailer fields are kept apart from the header section and MUST NOT be merged into it "
     "unless their definition allows it, which framing fields' does not: ours keeps them apart (framing is decided "
     "by the header section alone), llhttp reads them as framing fields again and rejects the message",
     [](const divergence& d) {
       if (d.ours_k == nullptr || !we_accept_they_reject(d, {"HPE_INVALID_TRANSFER_ENCODING",
                                                              "HPE_INVALID_CONTENT_LENGTH",
                                                              "HPE_UNEXPECTED_CONTENT_LENGTH"})) {
         return false;
       }
       return !values_of(d.ours_k->trailers, "transfer-encoding").empty() ||
              !values_of(d.ours_k->trailers, "content-length").empty();
     }},
    {"HTTP/1.0 with both close and keep-alive",
     "RFC 9112 §9.3: close wins (\"If the close connection option is present ... the connection will not "
     "persist\"); llhttp keeps an HTTP/1.0 connection alive whenever keep-alive is present",
     [](const divergence& d) {
       if (d.ours_k == nullptr || d.theirs_k == nullptr || d.ours_k->minor != 0) return false;
       message_seen same = *d.theirs_k;
       same.keep_alive = false;
       if (!(same == *d.ours_k) || d.ours_k->keep_alive) return false;
       for (std::string_view v : values_of(d.ours_k->fields, "connection")) {
         for (std::string_view e : list_elements(v)) {
           if (http::detail::iequals(e, "close")) return true;
         }
       }
       return false;
     }},
    {"CONNECT with a body",
     "RFC 9110 §9.3.6: a CONNECT request has no content, and what follows its header section is a tunnel, which "
     "llhttp hands over without checking the framing fields; our server implements no CONNECT and reads a body "
     "as Content-Length or chunked say (and rejects what is malformed there)",
     [](const divergence& d) {
       if (d.theirs_k == nullptr || d.theirs_k->method != "CONNECT" || !d.theirs_k->upgrade) return false;
       if (d.ours_head != nullptr) {  // we read its header section alike, and then a body
         return d.ours_head->method == "CONNECT" && d.ours_head->fields == d.theirs_k->fields &&
                d.ours_head->target == d.theirs_k->target && d.ours_head->minor == d.theirs_k->minor;
       }
       // We failed in its body (which llhttp does not read), or on its framing fields (which it does not check).
       using http::error;
       const auto& e = d.mine.error;
       return d.mine.end == ending::rejected &&
              (e == error::bad_transfer_encoding || e == error::unsupported_transfer_encoding ||
               e == error::bad_content_length || e == error::conflicting_content_length ||
               e == error::content_length_and_transfer_encoding);
     }},
    {"a request to upgrade whose final transfer coding is not chunked",
     "RFC 9112 §6.3 item 4: a request with Transfer-Encoding whose final coding is not chunked has no reliable "
     "length: the server MUST respond 400 and close; llhttp switches protocols after the header section",
     [](const divergence& d) {
       return d.theirs_k != nullptr && d.theirs_k->upgrade && d.theirs_k->body.empty() && d.ours_k == nullptr &&
              d.mine.end == ending::rejected && d.mine.error == http::error::bad_transfer_encoding;
     }},
    {"HTTP/1.1 without exactly one Host, or a Host whose value is not uri-host [\":\" port]",
     "RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request without Host, or to a request with more than "
     "one or with an invalid value; llhttp checks neither the value nor the number",
     [](const divergence& d) { return we_reject(d, http::error::bad_host); }},
    {"Transfer-Encoding in HTTP/1.0",
     "RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding MUST be treated as having faulty framing",
     [](const divergence& d) { return we_reject(d, http::error::bad_transfer_encoding) && d.mine.error_minor == 0; }},
    {"a transfer coding other than chunked",
     "RFC 9112 §6.1: a server that receives a transfer coding it does not understand SHOULD respond 501",
     [](const divergence& d) { return we_reject(d, http::error::unsupported_transfer_encoding); }},
    {"a request-target with a character no URI allows",
     "RFC 9112 §3.2 and RFC 3986 §2: such characters must be percent-encoded; llhttp lets some through",
     [](const divergence& d) {
       if (!we_reject(d, http::error::bad_target)) return false;
       // The target ends at a character other than the SP before the version.
       const std::string_view rest = rejected_request(d);
       const std::string_view target = rejected_target(d);
       const std::size_t stop = static_cast<std::size_t>(target.data() + target.size() - rest.data());
       return stop < rest.size() && rest[stop] != ' ';
     }},
    {"an HTTP version other than 1.0 and 1.1",
     "RFC 9110 §15.6.6: 505 HTTP Version Not Supported; llhttp reads any DIGIT.DIGIT",
     [](const divergence& d) { return we_reject(d, http::error::unsupported_version); }},
    {"a Content-Length over 2^64 / 10",
     "RFC 9110 §8.6: a recipient MUST anticipate large numerals and prevent overflow; we refuse those whose next "
     "digit could overflow 64 bits, llhttp the ones that do",
     [](const divergence& d) {
       if (!we_reject(d, http::error::bad_content_length)) return false;
       for (std::string_view v : values_of(d.mine.error_fields, "content-length")) {
         for (std::string_view e : list_elements(v)) {
           if (e.size() >= 19 && std::all_of(e.begin(), e.end(), [](char c) { return c >= '0' && c <= '9'; })) {
             return true;
           }
         }
       }
       return false;
     }},
    {"an empty chunk extension name or value (\";\", \";=b\", \";a=\")",
     "RFC 9112 §7.1.1: chunk-ext-name = token, chunk-ext-val = token / quoted-string, neither empty; llhttp "
     "accepts them",
     [](const divergence& d) {
       if (!we_reject(d, http::error::bad_chunk)) return false;
       std::string_view rest = d.mine.rest;
       if (rest.starts_with("\r\n")) rest.remove_prefix(2);  // the CRLF after the previous chunk's data
       std::string ext(extensions_of(rest.substr(0, rest.find_first_of("\r\n"))));
       std::erase_if(ext, [](char c) { return c == ' ' || c == '\t'; });
       return ext.find(";=") != std::string::npos || ext.find(";;") != std::string::npos ||
              ext.find("=;") != std::string::npos || ext.ends_with(";") || ext.ends_with("=");
     }},
    {"a bare CR or LF before the request-line",
     "RFC 9112 §2.2: a recipient MAY recognize a single LF as a line terminator, and MUST either reject a bare CR "
     "or replace it with SP; ours rejects both (400, documented), llhttp skips them as empty lines",
     [](const divergence& d) {
       if (d.ours_k != nullptr || d.mine.end != ending::rejected) return false;
       const std::string_view rest = rejected_request(d);
       return rest.starts_with("\n") || (rest.starts_with("\r") && !rest.starts_with("\r\n"));
     }},
    {"more than one SP between the parts of the request-line",
     "RFC 9112 §3: the grammar requires one SP; recipients MAY parse on whitespace-delimited words, as llhttp does",
     [](const divergence& d) {
       if (d.ours_k != nullptr || d.mine.end != ending::rejected) return false;
       const std::string_view rest = rejected_request(d);
       return (d.mine.error == http::error::bad_version || d.mine.error == http::error::bad_request_line) &&
              rest.substr(0, rest.find("\r\n")).find("  ") != std::string_view::npos;
     }},
    {"a request-line without HTTP-version (HTTP/0.9)",
     "RFC 9112 §3: request-line = method SP request-target SP HTTP-version; llhttp reads a line without a version "
     "as HTTP/0.9",
     [](const divergence& d) {
       if (d.ours_k != nullptr || d.mine.end != ending::rejected) return false;
       if (d.theirs_k != nullptr) return d.theirs_k->minor < 0;
       const std::string_view rest = rejected_request(d);
       const std::string_view line = rest.substr(0, rest.find_first_of("\r\n"));
       return d.mine.error == http::error::bad_request_line && std::count(line.begin(), line.end(), ' ') == 1;
     }},
    {"a request-target in absolute-form without \"//\"",
     "RFC 9112 §3.2.2: absolute-form is an RFC 3986 absolute-URI, scheme \":\" hier-part, whose hier-part need "
     "not start with \"//\" (\"h.example:443\" is one, of scheme \"h.example\"; the router answers 404, as no "
     "route matches a path that does not start with \"/\"); llhttp wants \"/\", \"*\" or \"scheme://\"",
     [](const divergence& d) {
       if (!we_accept_they_reject(d, {"HPE_INVALID_URL"})) return false;
       const std::string_view t = d.ours_head->target;
       const std::size_t colon = t.find(':');
       return colon != std::string_view::npos && colon > 0 && t.find("://") == std::string_view::npos &&
              std::isalpha(static_cast<unsigned char>(t.front())) != 0;
     }},
    {"CONNECT with a request-target other than host:port",
     "RFC 9112 §3.2.3 and RFC 9110 §9.3.6: CONNECT takes the authority-form only, so ours answers any other form "
     "400 (§3.2); llhttp takes an absolute-URI too",
     [](const divergence& d) {
       return we_reject(d, http::error::bad_target) && rejected_request(d).starts_with("CONNECT ") &&
              rejected_target(d).find('/') != std::string_view::npos;
     }},
    {"the asterisk-form with a method other than OPTIONS",
     "RFC 9112 §3.2.4: \"*\" is only used for a server-wide OPTIONS request, so ours answers any other method's "
     "400 (§3.2: an invalid request-line); llhttp takes \"*\" with any method",
     [](const divergence& d) {
       if (!we_reject(d, http::error::bad_target)) return false;
       const std::string_view rest = rejected_request(d);
       return rejected_target(d) == "*" && rest.substr(rest.find(' ') + 1).starts_with("* ") &&
              !rest.starts_with("OPTIONS ");
     }},
    {"a stream that ends inside a header or trailer section that llhttp rejects",
     "not a difference in what is accepted: ours reports a field error only once the section has ended (so that "
     "any split gives the same error: RFC 9112 §5 allows no field until the section is whole), and a stream that "
     "stops first ends with error::partial_message; llhttp rejects the field at once",
     [](const divergence& d) {
       // llhttp's error lies in the bytes that ours still held, waiting for the end of the section.
       return d.ours_k == nullptr && d.theirs_k == nullptr && d.mine.end == ending::cut &&
              d.other.end == ending::rejected && d.other.their_at >= d.c.bytes.size() - d.mine.rest.size();     }},
};

// The classes of `request_differences` named, for the responses.
std::vector<difference_class> shared_differences(std::initializer_list<std::string_view> names) {
  std::vector<difference_class> out;
  for (std::string_view name : names) {
    const auto it = std::find_if(request_differences.begin(), request_differences.end(),
                                 [&](const difference_class& dc) { return dc.name == name; });
    REQUIRE(it != request_differences.end());
    out.push_back(*it);
  }
  return out;
}

bool no_body_response(const divergence& d, const message_seen& m) {
  return (m.status >= 100 && m.status < 200) || m.status == 204 || m.status == 304 ||
         (d.k < d.c.head.size() && d.c.head[d.k]);
}

const std::vector<difference_class> response_only_differences = {
    {"a response to HEAD without Content-Length: llhttp says the connection closes",
     "RFC 9112 §6.3 item 1: a response to HEAD ends with its header section whatever its fields, and the connection "
     "persists (§9.3); llhttp works out keep-alive before it is told that the request was HEAD, as if the body "
     "ran to the end of the connection",
     [](const divergence& d) {
       if (d.ours_k == nullptr || d.theirs_k == nullptr || !d.ours_k->keep_alive || d.theirs_k->keep_alive) {
         return false;
       }
       message_seen same = *d.theirs_k;
       same.keep_alive = true;
       return same == *d.ours_k && d.k < d.c.head.size() && d.c.head[d.k] &&
              values_of(d.ours_k->fields, "content-length").empty();
     }},
    {"framing fields in a response that has no body (1xx, 204, 304, or to HEAD)",
     "RFC 9112 §6.3 item 1: such a response ends with its header section \"regardless of the header fields "
     "present\"; llhttp still checks Content-Length and Transfer-Encoding and rejects some",
     [](const divergence& d) {
       return we_accept_they_reject(d, {"HPE_INVALID_TRANSFER_ENCODING", "HPE_INVALID_CONTENT_LENGTH",
                                        "HPE_UNEXPECTED_CONTENT_LENGTH"}) &&
              no_body_response(d, *d.ours_head);
     }},
    {"an empty line before a status line",
     "RFC 9112 §2.2 lets a server ignore empty lines before a request-line (for clients that add CRLF after a "
     "body); nothing lets a server send them before a response: ours rejects them, llhttp skips them",
     [](const divergence& d) {
       return d.ours_head == nullptr && d.mine.end == ending::rejected &&
              d.mine.error == http::error::bad_status_line && d.mine.rest.starts_with("\r\n");
     }},
    {"a status code below 100",
     "RFC 9110 §15: status codes are 100 to 599, the first digit the class; llhttp takes any three digits",
     [](const divergence& d) {
       if (d.ours_head != nullptr || d.mine.end != ending::rejected || d.mine.error != http::error::bad_status_line) {
         return false;
       }
       const std::string_view rest = d.mine.rest;
       return rest.size() > 9 && rest[8] == ' ' && rest[9] == '0';
     }},
    {"chunked twice in a response",
     "RFC 9112 §7: a sender MUST NOT apply chunked more than once, so the body cannot be decoded as sent; llhttp "
     "decodes it once",
     [](const divergence& d) {
       if (!(d.ours_k == nullptr && d.mine.end == ending::rejected &&
             d.mine.error == http::error::bad_transfer_encoding)) {
         return false;
       }
       int chunked = 0;
       for (std::string_view v : values_of(d.mine.error_fields, "transfer-encoding")) {
         for (std::string_view e : list_elements(v)) chunked += http::detail::iequals(e, "chunked") ? 1 : 0;
       }
       return chunked > 1;
     }},
    {"Transfer-Encoding with an empty list element in a response",
     "RFC 9110 §5.6.1.2: a recipient MUST parse and ignore empty list elements, so \"chunked ,\" is chunked; llhttp "
     "reads the body to the end of the connection instead",
     [](const divergence& d) {
       if (d.ours_head == nullptr || d.theirs_k == nullptr || d.theirs_k->keep_alive) return false;
       for (std::string_view v : values_of(d.ours_head->fields, "transfer-encoding")) {
         for (std::string_view e : list_elements(v)) {
           if (e.empty()) return true;
         }
       }
       return false;
     }},
    {"a control character in the reason phrase",
     "RFC 9112 §4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ); llhttp lets other controls through",
     [](const divergence& d) {
       if (d.ours_head != nullptr || d.mine.end != ending::rejected || d.mine.error != http::error::bad_status_line) {
         return false;
       }
       const std::string_view line = std::string_view(d.mine.rest).substr(0, d.mine.rest.find("\r\n"));
       return std::any_of(line.begin(), line.end(), [](char c) {
         return (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == '\x7f';
       });
     }},
};

std::vector<difference_class> response_differences() {
  std::vector<difference_class> out = shared_differences({
      "one Content-Length value repeated (\"5, 5\", or two field lines)",
      "Transfer-Encoding with an empty list element (\"chunked,\")",
      "whitespace around \";\" or \"=\" in a chunk extension",
      "Transfer-Encoding or Content-Length in the trailer section",
      "HTTP/1.0 with both close and keep-alive",
      "Transfer-Encoding in HTTP/1.0",
      "a transfer coding other than chunked",
      "an HTTP version other than 1.0 and 1.1",
      "a Content-Length over 2^64 / 10",
      "an empty chunk extension name or value (\";\", \";=b\", \";a=\")",
      "a stream that ends inside a header or trailer section that llhttp rejects",
  });
  out.insert(out.end(), response_only_differences.begin(), response_only_differences.end());
  return out;
}

std::string describe(const outcome& o) {
  std::ostringstream s;
  for (const message_seen& m : o.messages) {
    s << "\n  " << (m.status != 0 ? std::to_string(m.status) : escaped(m.method)) << " \"" << escaped(m.target)
      << "\" 1." << m.minor << " [";
    for (const auto& [n, v] : m.fields) s << escaped(n) << ": \"" << escaped(v) << "\", ";
    s << "] body \"" << escaped(m.body) << "\" trailers [";
    for (const auto& [n, v] : m.trailers) s << escaped(n) << ": \"" << escaped(v) << "\", ";
    s << "] keep-alive " << m.keep_alive << " upgrade " << m.upgrade;
  }
  s << "\n  then " << to_string(o.end);
  if (o.error) s << ": " << o.error.message();
  if (!o.their_error.empty()) s << ": " << o.their_error << " (" << o.their_reason << ")";
  return s.str();
}

// Runs the streams through llhttp and ours, and checks that they read them alike, or differ in one of `classes`.
// Returns the number of messages read alike.
template <bool IsRequest>
std::size_t compare_with_llhttp(const std::vector<stream_case>& cases, const std::vector<difference_class>& classes) {
  std::string input;
  for (const stream_case& c : cases) {
    input += nlohmann::json{{"chunks", hex_chunks(chunks_of(c))}, {"head", c.head}}.dump() + "\n";
  }
  // The first line names the methods llhttp knows; one line per stream follows.
  std::vector<nlohmann::json> records = run_node_peer("http_parse.mjs", {IsRequest ? "request" : "response"}, input);
  REQUIRE(records.size() == cases.size() + 1);
  const auto their_methods = records.front().at("methods").get<std::vector<std::string>>();
  records.erase(records.begin());

  std::map<std::string_view, int> classified;  // streams whose readings part in each named class
  std::size_t alike = 0;                       // messages read alike (before the readings part, if they do)
  int failures = 0;
  for (std::size_t i = 0; i < cases.size() && failures < 5; ++i) {  // 5 failing streams say enough
    const stream_case& c = cases[i];
    const outcome mine = ours<IsRequest>(chunks_of(c), c.head);
    const outcome other = theirs(records[i]);
    std::size_t k = 0;
    while (k < mine.messages.size() && k < other.messages.size() && mine.messages[k] == other.messages[k]) ++k;
    alike += k;
    if (k == mine.messages.size() && k == other.messages.size() && mine.end == other.end) continue;
    const divergence d{c,
                       mine,
                       other,
                       k,
                       k < mine.messages.size() ? &mine.messages[k] : nullptr,
                       k < mine.messages.size() ? &mine.messages[k]
                       : mine.unfinished        ? &*mine.unfinished
                                                : nullptr,
                       k < other.messages.size() ? &other.messages[k] : nullptr,
                       their_methods};
    const auto known =
        std::find_if(classes.begin(), classes.end(), [&](const difference_class& dc) { return dc.applies(d); });
    if (known != classes.end()) {
      ++classified[known->name];
      continue;
    }
    ++failures;
    INFO("seed " << c.seed << ": \"" << escaped(c.bytes) << "\"");
    std::ostringstream sizes;
    for (std::size_t n : c.cut_sizes) sizes << n << ' ';
    INFO("chunk sizes: " << sizes.str());
    if (!IsRequest) {
      std::ostringstream head;
      for (bool h : c.head) head << h << ' ';
      INFO("answers to HEAD: " << head.str());
    }
    INFO("the readings part at message " << k);
    INFO("ours:" << describe(mine));
    INFO("llhttp:" << describe(other));
    FAIL_CHECK("the readings differ, and in no named class of difference");
  }
  std::ostringstream counts;
  for (const auto& [name, count] : classified) counts << "\n  " << count << ": " << name;
  INFO("streams whose readings part, by class:" << counts.str());
  CHECK(failures == 0);
  return alike;
}

}  // namespace

TEST_CASE("http::request_parser and llhttp (Node.js) read random requests alike", "[conformance][http]") {
  REQUIRE(switchboard::test::have_program("node"));
  constexpr std::uint32_t first_seed = 1, seeds = 5000;
  std::vector<stream_case> cases;
  for (std::uint32_t seed = first_seed; seed < first_seed + seeds; ++seed) {
    cases.push_back(message_generator(seed).make());
  }
  const std::size_t alike = compare_with_llhttp<true>(cases, request_differences);
  // Not a vacuous comparison: most messages are valid and read alike, pipelined ones included (about one per
  // stream: 4,983 of these 5,000 streams' messages, as the odd pieces cut pipelines short).
  CHECK(alike > cases.size() * 9 / 10);
}

TEST_CASE("http::response_parser and llhttp (Node.js) read random responses alike", "[conformance][http]") {
  REQUIRE(switchboard::test::have_program("node"));
  constexpr std::uint32_t first_seed = 1, seeds = 5000;
  std::vector<stream_case> cases;
  for (std::uint32_t seed = first_seed; seed < first_seed + seeds; ++seed) {
    cases.push_back(message_generator(seed, /*responses=*/true).make());
  }
  const std::size_t alike = compare_with_llhttp<false>(cases, response_differences());
  CHECK(alike > cases.size());
}
