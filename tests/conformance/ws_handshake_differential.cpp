// A differential test of the WebSocket opening handshake (RFC 6455 §4) and of the permessage-deflate negotiation
// (RFC 7692 §5, §7) against the `ws` npm package (tests/conformance/node/ws_handshake.mjs), both ends over real
// loopback sockets.
//
//  - Server: random upgrade requests (Upgrade and Connection token lists, Sec-WebSocket-Version values and lists,
//    keys valid, non-canonical and invalid, Sec-WebSocket-Protocol lists with duplicates, empty elements and bad
//    tokens, Sec-WebSocket-Extensions offers with every parameter, valid and ill-valued, quoted, duplicated, unknown,
//    in other cases, with odd whitespace and broken syntax, some headers on several lines) go to our HTTP server
//    (ws::accept) and to a Node HTTP server handing upgrades to ws's WebSocketServer, each configured alike (the
//    same subprotocols by preference, the same permessage-deflate limits). Compared: accepted or refused, the
//    Sec-WebSocket-Accept value, the subprotocol selected, the permessage-deflate parameters agreed.
//  - Client: random 101 responses (Upgrade values, Sec-WebSocket-Accept right, wrong, missing or twice,
//    Sec-WebSocket-Protocol offered, not offered, absent or twice, Sec-WebSocket-Extensions answers with parameters
//    valid or not, asked for or not, twice, on several lines) to ws::async_connect and to ws's WebSocket, offering
//    the same. Compared: connected or failed, the subprotocol, and the permessage-deflate parameters then in force.
//
// Besides the comparison, ours is held to the RFCs directly: every 101 carries the right accept value and the
// permessage-deflate answer an independent reading of RFC 7692 gives for the offers as generated, a refused version
// gets 426 with `Sec-WebSocket-Version: 13` (RFC 6455 §4.4), and our client connects exactly when that reading of
// the response says it must. Where ours and ws differ, the RFCs decide: a difference is allowed only as one of the
// named classes below, each checked against the generated input.
#include <switchboard/http/server.hpp>
#include <switchboard/ws/accept.hpp>
#include <switchboard/ws/connect.hpp>

#include "support/catch.hpp"
#include "support/raw_http.hpp"
#include "support/test_server.hpp"
#include "support/test_support.hpp"
#include "conformance/differential_support.hpp"

#include <asio/redirect_error.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/read_until.hpp>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

using switchboard::test::escaped;
using switchboard::test::hex;
using switchboard::test::run_node_peer;
namespace http = switchboard::http;
namespace ws = switchboard::ws;

namespace {

// ---------------------------------------------------------------------------------------------------------------
// Independent helpers: base64 (RFC 4648 §4), the accept value (RFC 6455 §4.2.2 item 5.4), case-insensitive compare.

constexpr std::string_view b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_of(std::string_view bytes) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (i + 1 < bytes.size()) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    if (i + 2 < bytes.size()) n |= static_cast<unsigned char>(bytes[i + 2]);
    out += b64[(n >> 18) & 63];
    out += b64[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? b64[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? b64[n & 63] : '=';
  }
  return out;
}

std::string expected_accept(std::string_view key) {
  const std::string input = std::string(key) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(input.data(), input.size(), digest, &size, EVP_sha1(), nullptr);
  return base64_of(std::string_view(reinterpret_cast<const char*>(digest), size));
}

bool same_text_ci(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  });
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// permessage-deflate as generated, and read by the RFC.

struct param_spec {
  std::string name;                  // as written (perhaps in another case)
  std::optional<std::string> value;  // as meant (quoted on the wire or not)
};

struct element_spec {
  std::string name;  // extension name as written
  std::vector<param_spec> params;
};

// What a rendering did to a Sec-WebSocket-Extensions value (or a Sec-WebSocket-Protocol one, for `empty` and
// `split`), for the classes of difference.
struct syntax_flags {
  bool empty = false;      // empty list elements
  bool ows_equals = false;  // whitespace around the '=' of a parameter
  bool name_case = false;  // an extension or parameter name in another case than the RFC's
  bool spelling = false;   // a window-bits value that JavaScript's Number() reads as 8..15, but not 1*DIGIT
  bool fault = false;      // broken syntax: no reading of the header exists
  bool split = false;      // on several lines
};

// The parameters one end will use: window sizes in bits (absent: 15).
struct pmd {
  bool snct = false, cnct = false;
  int smwb = 15, cmwb = 15;
  bool operator==(const pmd&) const = default;
};

std::string describe(const std::optional<pmd>& p) {
  if (!p) return "none";
  std::ostringstream s;
  s << "snct=" << p->snct << " cnct=" << p->cnct << " smwb=" << p->smwb << " cmwb=" << p->cmwb;
  return s.str();
}

// window-bits: 8 to 15, a decimal integer without leading zeroes (RFC 7692 §7.1.2.1, §7.1.2.2).
std::optional<int> window_value(std::string_view v) {
  static const std::vector<std::string_view> valid = {"8", "9", "10", "11", "12", "13", "14", "15"};
  for (std::size_t i = 0; i < valid.size(); ++i) {
    if (v == valid[i]) return static_cast<int>(i) + 8;
  }
  return std::nullopt;
}

// An element read by RFC 7692 §7: only its four parameters, each at most once, the no-context-takeover ones without
// a value, server_max_window_bits with a valid one, client_max_window_bits with a valid one or (in an offer) none.
// Names compare case-insensitively (RFC 9110 §5.6.6). nullopt: an invalid element.
struct reading {
  bool snct = false, cnct = false;
  std::optional<int> smwb;
  bool has_cmwb = false;
  std::optional<int> cmwb;
};

std::optional<reading> read_element(const element_spec& e, bool response) {
  reading r;
  std::map<std::string, int> seen;
  for (const param_spec& p : e.params) {
    std::string lower = p.name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (++seen[lower] > 1) return std::nullopt;
    if (lower == "server_no_context_takeover" || lower == "client_no_context_takeover") {
      if (p.value) return std::nullopt;
      (lower[0] == 's' ? r.snct : r.cnct) = true;
    } else if (lower == "server_max_window_bits") {
      if (!p.value || !window_value(*p.value)) return std::nullopt;
      r.smwb = window_value(*p.value);
    } else if (lower == "client_max_window_bits") {
      r.has_cmwb = true;
      if (p.value && !window_value(*p.value)) return std::nullopt;
      if (!p.value && response) return std::nullopt;  // §7.1.2.2: a response gives a value
      if (p.value) r.cmwb = window_value(*p.value);
    } else {
      return std::nullopt;
    }
  }
  return r;
}

bool is_deflate(const element_spec& e) { return same_text_ci(e.name, "permessage-deflate"); }

// The server's answer by RFC 7692: the first offer that is valid (§7: others MUST be declined) and that the server
// can honour: a server window of the one asked for or less (§7.1.2.1), but not 8 bits, which zlib cannot compress
// with; a client window limit only if the offer says the client supports one (§7.1.2.2), so that a server wanting
// a limit declines offers without it. nullopt: all declined.
std::optional<pmd> rfc_server_answer(const std::vector<element_spec>& offers, const ws::deflate_options& o) {
  if (!o.enabled) return std::nullopt;
  for (const element_spec& e : offers) {
    if (!is_deflate(e)) continue;
    const auto r = read_element(e, false);
    if (!r) continue;
    pmd p;
    p.snct = r->snct || o.server_no_context_takeover;
    p.cnct = r->cnct || o.client_no_context_takeover;
    p.smwb = std::min(r->smwb.value_or(15), o.server_max_window_bits);
    if (p.smwb < 9) continue;
    if (!r->has_cmwb && o.client_max_window_bits < 15) continue;
    if (r->has_cmwb) p.cmwb = std::min(r->cmwb.value_or(15), o.client_max_window_bits);
    return p;
  }
  return std::nullopt;
}

// Why a client must fail on a Sec-WebSocket-Extensions response to its offer, by RFC 6455 §9.1 / RFC 7692.
enum class response_fault {
  none,
  not_offered,       // an extension the client did not offer, or none offered (RFC 6455 §4.1, §9.1)
  twice,             // permessage-deflate answered twice: it was offered once (RFC 6455 §4.1, §9.1)
  invalid,           // unknown, duplicate or ill-valued parameter (RFC 7692 §5, §7)
  snct_missing,      // server_no_context_takeover asked for, not answered (§7.1.1.1)
  smwb_not_granted,  // server_max_window_bits asked for, answered larger or not at all (§7.1.2.1)
  cmwb_8,            // client_max_window_bits=8: zlib cannot compress with it, so our client must decline it by failing
};

struct client_reading {
  response_fault fault = response_fault::none;
  std::optional<pmd> agreed;
};

// The client's reading of the response by the RFC. The agreed client window is the smaller of the response's and
// the one the offer announced (§7.1.2.2: a response may carry a larger value; the client keeps to its own).
client_reading rfc_client_reading(const std::vector<element_spec>& response, const ws::deflate_options& o) {
  client_reading out;
  for (const element_spec& e : response) {
    if (!is_deflate(e) || !o.enabled) return {response_fault::not_offered, {}};
    if (out.agreed) return {response_fault::twice, {}};
    const auto r = read_element(e, true);
    if (!r) return {response_fault::invalid, {}};
    if (o.server_no_context_takeover && !r->snct) return {response_fault::snct_missing, {}};
    if (r->smwb.value_or(15) > o.server_max_window_bits) return {response_fault::smwb_not_granted, {}};
    if (r->cmwb == 8) return {response_fault::cmwb_8, {}};
    pmd p;
    p.snct = r->snct;
    p.cnct = r->cnct || o.client_no_context_takeover;  // §7.1.1.2: the offer's announcement holds
    p.smwb = r->smwb.value_or(15);
    p.cmwb = std::min(r->cmwb.value_or(15), o.client_max_window_bits);
    out.agreed = p;
  }
  return out;
}

// A server's Sec-WebSocket-Extensions answer (one or no permessage-deflate element, as both servers write it) read
// back into the parameters in force; `ok` false if it is anything else.
struct answer {
  std::optional<pmd> agreed;
  bool ok = true;
};

answer read_answer(const std::vector<std::string>& lines) {
  answer a;
  std::string all;
  for (const std::string& l : lines) all += (all.empty() ? "" : ", ") + l;
  if (all.empty()) return a;
  if (all.find(',') != std::string::npos) return {{}, false};
  std::vector<std::string> parts;
  std::istringstream in(all);
  for (std::string part; std::getline(in, part, ';');) parts.emplace_back(trimmed(part));
  if (parts.empty() || parts[0] != "permessage-deflate") return {{}, false};
  pmd p;
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const std::size_t eq = parts[i].find('=');
    const std::string name = parts[i].substr(0, eq);
    const std::optional<int> value =
        eq == std::string::npos ? std::nullopt : window_value(trimmed(std::string_view(parts[i]).substr(eq + 1)));
    if (name == "server_no_context_takeover" && eq == std::string::npos) p.snct = true;
    else if (name == "client_no_context_takeover" && eq == std::string::npos) p.cnct = true;
    else if (name == "server_max_window_bits" && value) p.smwb = *value;
    else if (name == "client_max_window_bits" && value) p.cmwb = *value;
    else return {{}, false};
  }
  a.agreed = p;
  return a;
}

// ---------------------------------------------------------------------------------------------------------------
// Generation.

class generator {
 public:
  explicit generator(std::uint32_t seed) : rng_(seed) {}

 protected:
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  bool odd_chance(double p) { return chance(p * odd_); }
  int pick(int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng_); }
  template <class T>
  T pick_of(const std::vector<T>& v) {
    return v[static_cast<std::size_t>(pick(0, static_cast<int>(v.size()) - 1))];
  }
  std::string pick_str(const std::vector<const char*>& v) { return pick_of(v); }

  // A name in another case, sometimes.
  std::string maybe_recased(std::string name, syntax_flags& f) {
    if (!odd_chance(0.03)) return name;
    for (char& c : name) {
      if (chance(0.5)) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    if (name.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos) f.name_case = true;
    return name;
  }

  std::string window(syntax_flags& f) {
    if (!odd_chance(0.12)) return std::to_string(pick(0, 3) == 0 ? pick(8, 15) : pick(9, 15));
    // Not 1*DIGIT without leading zeroes: the first ones read by JavaScript's Number() as 8 to 15.
    static const std::vector<const char*> js_valid = {"010", "08", "+9", "9.0", "1e1", "0xa"};
    static const std::vector<const char*> invalid = {"7", "16", "0", "99", "abc", "-9", "1"};
    if (chance(0.5)) {
      f.spelling = true;
      return pick_str(js_valid);
    }
    return pick_str(invalid);
  }

  // 1 to `most` elements: permessage-deflate mostly, with random parameters.
  std::vector<element_spec> elements(int most, bool response, syntax_flags& f) {
    std::vector<element_spec> out(static_cast<std::size_t>(pick(1, most)));
    for (element_spec& e : out) {
      e.name = odd_chance(0.1) ? pick_str({"x-webkit-deflate-frame", "foo", "permessage-bzip2"})
                               : maybe_recased("permessage-deflate", f);
      for (int n = pick(0, 4); n > 0; --n) {
        const int k = pick(0, 9);
        param_spec p;
        if (k <= 1) {
          p.name = "server_no_context_takeover";
          if (odd_chance(0.1)) p.value = pick_str({"1", "true"});
        } else if (k <= 3) {
          p.name = "client_no_context_takeover";
          if (odd_chance(0.1)) p.value = pick_str({"1", "true"});
        } else if (k <= 5) {
          p.name = "server_max_window_bits";
          if (!odd_chance(0.05)) p.value = window(f);
        } else if (k <= 8) {
          p.name = "client_max_window_bits";
          if (response ? !odd_chance(0.1) : chance(0.5)) p.value = window(f);
        } else if (odd_ > 0 && !e.params.empty() && chance(0.5)) {
          p = pick_of(e.params);  // a duplicate
        } else if (odd_ > 0) {
          p.name = pick_str({"mux", "x_max_window_bits", "client_max_window"});
          if (chance(0.5)) p.value = "1";
        } else {
          continue;
        }
        p.name = maybe_recased(p.name, f);
        e.params.push_back(std::move(p));
      }
    }
    return out;
  }

  // Separators with optional whitespace (RFC 9110 §5.6.1, §5.6.6).
  std::string ows() { return pick_str({"", "", "", " ", "\t", "  "}); }

  // The elements as header lines: perhaps odd whitespace, quoted values, empty elements, one syntax fault, and a
  // cut into two lines.
  std::vector<std::string> render(const std::vector<element_spec>& list, syntax_flags& f) {
    std::vector<std::string> texts;
    for (const element_spec& e : list) {
      std::string t = e.name;
      for (const param_spec& p : e.params) {
        t += ows() + ";" + ows() + p.name;
        if (!p.value) continue;
        std::string around;
        if (odd_chance(0.03)) {
          around = pick_str({" ", "\t"});
          f.ows_equals = true;
        }
        t += around + "=" + around;
        if (chance(0.15)) {
          std::string quoted = *p.value;
          if (chance(0.2)) quoted.insert(static_cast<std::size_t>(pick(0, static_cast<int>(quoted.size()) - 1)), "\\");
          t += "\"" + quoted + "\"";
        } else {
          t += *p.value;
        }
      }
      texts.push_back(std::move(t));
    }
    if (odd_chance(0.04)) {
      f.fault = true;
      std::string& t = texts[static_cast<std::size_t>(pick(0, static_cast<int>(texts.size()) - 1))];
      switch (pick(0, 5)) {
        case 0: t += ";"; break;                          // a parameter without a name
        case 1: t += "; server_max_window_bits="; break;  // '=' without a value
        case 2: t += "; client_max_window_bits=\"10"; break;
        case 3: t += "; client_max_window_bits=\"1 0\""; break;  // quoted, but not a token (§9.1)
        case 4: t.insert(0, "@"); break;
        default: t += " x"; break;  // two tokens in a row
      }
    }
    std::vector<std::string> lines(1);
    const int last = static_cast<int>(texts.size()) - 1;
    const std::size_t cut = last >= 1 && odd_chance(0.15) ? static_cast<std::size_t>(pick(1, last)) : 0;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      if (i == cut && cut > 0) {
        lines.emplace_back();
        f.split = true;
      } else if (i > 0) {
        lines.back() += ows() + "," + ows();
      }
      if (odd_chance(0.03)) {
        lines.back() += pick_str({", ", ",,", " , ,"});
        f.empty = true;
      }
      lines.back() += texts[i];
    }
    if (odd_chance(0.02)) {
      lines.back() += ",";
      f.empty = true;
    }
    return lines;
  }

  // Random deflate limits, equal on both sides; `server` sets the ranges each end allows.
  ws::deflate_options deflate_options(bool server) {
    ws::deflate_options o;
    o.enabled = chance(0.75);
    o.server_no_context_takeover = chance(0.2);
    o.client_no_context_takeover = chance(0.2);
    if (chance(0.4)) o.server_max_window_bits = pick(server ? 9 : 8, 14);
    if (chance(0.4)) o.client_max_window_bits = pick(server ? 8 : 9, 14);
    return o;
  }

  static nlohmann::json ws_deflate_options(const ws::deflate_options& o) {
    if (!o.enabled) return false;
    nlohmann::json j = nlohmann::json::object();
    if (o.server_no_context_takeover) j["serverNoContextTakeover"] = true;
    if (o.client_no_context_takeover) j["clientNoContextTakeover"] = true;
    if (o.server_max_window_bits < 15) j["serverMaxWindowBits"] = o.server_max_window_bits;
    if (o.client_max_window_bits < 15) j["clientMaxWindowBits"] = o.client_max_window_bits;
    return j;
  }

  std::mt19937 rng_;
  double odd_ = 1.0;  // scales the chance of every oddity: 0 for a case of valid and ordinary headers only
};

const std::vector<std::string> protocol_pool = {"chat", "superchat", "v2.json", "mqtt", "wamp", "Chat"};

// ----- server cases -----

enum class upgrade_kind { exact, list, missing, wrong };
enum class version_kind { v13, alias13, v8, other, missing, doubled };
enum class key_kind { valid, noncanonical, invalid, missing, doubled };

struct server_case {
  std::uint32_t seed = 0;
  std::string request;
  std::vector<std::string> protocols;  // the server's, by preference
  ws::deflate_options deflate;
  upgrade_kind upgrade = upgrade_kind::exact;
  bool connection_ok = true;  // a Connection token "upgrade"
  version_kind version = version_kind::v13;
  key_kind key = key_kind::valid;
  std::string key_value;
  bool has_protocols = false;
  bool protocol_dup = false, protocol_fault = false;
  syntax_flags protocol_flags;
  bool has_extensions = false;
  std::vector<element_spec> offers;
  syntax_flags ext;
};

class server_generator : generator {
 public:
  using generator::generator;

  server_case make(std::uint32_t seed, std::size_t index) {
    server_case c;
    c.seed = seed;
    odd_ = chance(0.4) ? 0.0 : 1.0;
    std::vector<std::pair<std::string, std::string>> fields{{"Host", "localhost"}};
    auto add = [&](std::string name, std::string value) { fields.emplace_back(std::move(name), std::move(value)); };

    // Upgrade (RFC 6455 §4.2.1 item 3) and Connection (item 4).
    switch (odd_chance(0.25) ? pick(1, 4) : 0) {
      case 0:
        add("Upgrade", pick_str({"websocket", "websocket", "WebSocket", "WEBSOCKET"}));
        break;
      case 1:
        add("Upgrade", pick_str({"websocket, h2c", "h2c, websocket", "websocket,foo/2"}));
        c.upgrade = upgrade_kind::list;
        break;
      case 2:
        add("Upgrade", "h2c");
        add("Upgrade", "websocket");
        c.upgrade = upgrade_kind::list;
        break;
      case 3:
        c.upgrade = upgrade_kind::missing;
        break;
      default:
        add("Upgrade", pick_str({"websocket/13", "websockets", "h2c"}));
        c.upgrade = upgrade_kind::wrong;
        break;
    }
    switch (odd_chance(0.25) ? pick(1, 5) : 0) {
      case 0:
        add("Connection", pick_str({"Upgrade", "upgrade", "UPGRADE"}));
        break;
      case 1:
        add("Connection", pick_str({"keep-alive, Upgrade", "Upgrade, keep-alive", "keep-alive,upgrade"}));
        break;
      case 2:
        add("Connection", "keep-alive");
        add("Connection", "Upgrade");
        break;
      case 3:
        c.connection_ok = false;
        break;
      case 4:
        add("Connection", "keep-alive");
        c.connection_ok = false;
        break;
      default:
        add("Connection", pick_str({"Upgrade2", "xupgrade"}));
        c.connection_ok = false;
        break;
    }
    // Sec-WebSocket-Version (item 6).
    switch (odd_chance(0.25) ? pick(1, 5) : 0) {
      case 0:
        add("Sec-WebSocket-Version", "13");
        break;
      case 1:
        add("Sec-WebSocket-Version", pick_str({"013", "13.0", "0xd", "1.3e1"}));
        c.version = version_kind::alias13;
        break;
      case 2:
        add("Sec-WebSocket-Version", "8");
        c.version = version_kind::v8;
        break;
      case 3:
        add("Sec-WebSocket-Version", pick_str({"12", "14", "7", "13, 8", "8, 13", "thirteen", "13 13"}));
        c.version = version_kind::other;
        break;
      case 4:
        c.version = version_kind::missing;
        break;
      default:  // twice: a client MUST NOT (§11.3.5)
        add("Sec-WebSocket-Version", "13");
        add("Sec-WebSocket-Version", "13");
        c.version = version_kind::doubled;
        break;
    }
    // Sec-WebSocket-Key (item 5): 16 random bytes in base64, or not quite.
    std::string nonce(16, '\0');
    for (char& b : nonce) b = static_cast<char>(pick(0, 255));
    c.key_value = base64_of(nonce);
    switch (odd_chance(0.25) ? pick(1, 4) : 0) {
      case 0: break;
      case 1: {
        const std::size_t digit = b64.find(c.key_value[21]);
        c.key_value[21] = b64[digit | static_cast<std::size_t>(pick(1, 15))];
        c.key = key_kind::noncanonical;
        break;
      }
      case 2: {
        const int k = pick(0, 4);
        if (k == 0) c.key_value = base64_of(nonce.substr(1));                         // 15 bytes
        else if (k == 1) c.key_value = base64_of(nonce + "x");                        // 17 bytes
        else if (k == 2) c.key_value.resize(22);                                      // no padding
        else if (k == 3) c.key_value[0] = '_';                                        // base64url
        else c.key_value.insert(10, " ");
        c.key = key_kind::invalid;
        break;
      }
      case 3: c.key = key_kind::missing; break;
      default: c.key = key_kind::doubled; break;
    }
    if (c.key != key_kind::missing) add("Sec-WebSocket-Key", c.key_value);
    if (c.key == key_kind::doubled) add("Sec-WebSocket-Key", c.key_value);

    // Sec-WebSocket-Protocol (item 8), and the server's list.
    for (int n = pick(0, 3); n > 0; --n) {
      const std::string p = pick_of(protocol_pool);
      if (std::find(c.protocols.begin(), c.protocols.end(), p) == c.protocols.end()) c.protocols.push_back(p);
    }
    if (chance(0.5)) {
      c.has_protocols = true;
      std::vector<std::string> offered;
      for (int n = pick(1, 4); n > 0; --n) {
        std::string p = pick_of(protocol_pool);
        if (std::find(offered.begin(), offered.end(), p) != offered.end()) {
          if (!odd_chance(0.5)) continue;
          c.protocol_dup = true;
        }
        offered.push_back(std::move(p));
      }
      if (odd_chance(0.05)) {
        offered.push_back(pick_str({"chat/1", "\"chat\"", "chat;v=1", "ch@t", "chat mqtt"}));
        c.protocol_fault = true;
      }
      std::vector<std::string> lines(1);
      for (std::size_t i = 0; i < offered.size(); ++i) {
        if (i > 0 && odd_chance(0.15)) {
          lines.emplace_back();
          c.protocol_flags.split = true;
        } else if (i > 0) {
          lines.back() += ows() + "," + ows();
        }
        if (odd_chance(0.03)) lines.back() += ",", c.protocol_flags.empty = true;
        lines.back() += offered[i];
      }
      for (const std::string& l : lines) add("Sec-WebSocket-Protocol", l);
    }

    // Sec-WebSocket-Extensions (item 9) and the deflate limits.
    c.deflate = deflate_options(true);
    if (chance(0.7)) {
      c.has_extensions = true;
      c.offers = elements(3, false, c.ext);
      for (const std::string& l : render(c.offers, c.ext)) add("Sec-WebSocket-Extensions", l);
    }

    // Fields in a random order, now and then.
    if (chance(0.2)) std::shuffle(fields.begin() + 1, fields.end(), rng_);
    c.request = "GET /c/" + std::to_string(index) + " HTTP/1.1\r\n";
    for (const auto& f : fields) c.request += f.first + ": " + f.second + "\r\n";
    c.request += "\r\n";
    return c;
  }

  nlohmann::json to_json(const server_case& c) {
    return {{"server",
             {{"request", hex(c.request)}, {"protocols", c.protocols}, {"deflate", ws_deflate_options(c.deflate)}}}};
  }
};

// What a server answered, reduced to what is compared.
struct server_answer {
  unsigned status = 0;
  std::vector<std::pair<std::string, std::string>> fields;
  std::string body;  // ws: the reason it gives for a refusal
  std::vector<std::string> values(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& f : fields) {
      if (same_text_ci(f.first, name)) out.push_back(f.second);
    }
    return out;
  }
  std::optional<std::string> value(std::string_view name) const {
    const auto v = values(name);
    if (v.empty()) return std::nullopt;
    return v.front();
  }
  bool upgraded() const { return status == 101; }
};

std::string describe(const server_answer& a) {
  std::ostringstream s;
  s << a.status;
  if (!a.upgraded() && !a.body.empty()) s << " \"" << escaped(a.body.substr(0, 100)) << "\"";
  for (const auto& f : a.fields) {
    if (f.first.rfind("Sec-", 0) == 0 || f.first.rfind("sec-", 0) == 0) s << "\n    " << f.first << ": " << f.second;
  }
  return s.str();
}

std::vector<server_answer> ours_as_server(const std::vector<server_case>& cases) {
  switchboard::test::test_server server;
  server.routes().get("/c/{n:int}", [&cases](http::request& req) {
    const server_case& c = cases.at(req.param_as<std::size_t>("n"));
    ws::accept_options options;
    options.subprotocols = c.protocols;
    options.deflate = c.deflate;
    return ws::accept(req, options, [](const std::shared_ptr<ws::session>&) {});
  });
  server.start();
  std::vector<server_answer> out;
  for (const server_case& c : cases) {
    switchboard::test::raw_client client(server.port());
    client.send(c.request);
    const auto r = client.read_response();
    server_answer a;
    if (r) {
      a.status = r->status;
      a.fields = r->fields;
    }
    out.push_back(std::move(a));
  }
  return out;
}

server_answer theirs_as_server(const nlohmann::json& record) {
  server_answer a;
  a.status = record.at("status").get<unsigned>();
  for (const auto& f : record.at("fields")) {
    a.fields.emplace_back(f.at(0).get<std::string>(), f.at(1).get<std::string>());
  }
  a.body = record.at("body").get<std::string>();
  return a;
}

// A server comparison where the answers differ.
struct server_difference {
  const server_case& c;
  const server_answer& mine;
  const server_answer& other;
  std::optional<pmd> mine_pmd, other_pmd;
  std::optional<pmd> rfc_pmd;  // rfc_server_answer of the offers (none when the header is absent)
  bool ours_up() const { return mine.upgraded(); }
  // ws refused with 400, for the reason it gives about `header`.
  bool ws_400_on(std::string_view header) const {
    return other.status == 400 && other.body.find(header) != std::string::npos;
  }
  bool theirs_up() const { return other.upgraded(); }
  bool ours_as_rfc() const { return mine.upgraded() && mine_pmd == rfc_pmd; }
  // Everything but permessage-deflate alike.
  bool rest_alike() const {
    return mine.upgraded() && other.upgraded() &&
           mine.value("sec-websocket-accept") == other.value("sec-websocket-accept") &&
           mine.value("sec-websocket-protocol") == other.value("sec-websocket-protocol");
  }
};

struct server_class {
  std::string_view name;
  bool (*applies)(const server_difference&);
};

const std::vector<server_class> server_classes = {
    {"a Sec-WebSocket-Key whose last digit has pad bits set: ours 400, ws accepts (RFC 4648 §3.5: decoders MAY "
     "reject a non-canonical encoding; RFC 6455 §4.2.1 item 5)",
     [](const server_difference& d) {
       return d.c.key == key_kind::noncanonical && d.mine.status == 400 && d.theirs_up();
     }},
    {"Sec-WebSocket-Version 8, or 13 spelled as another JavaScript number (\"013\", \"0xd\", \"1.3e1\"): ws accepts, "
     "ours answers 426 (RFC 6455 §4.2.1 item 6: the value 13; §4.4)",
     [](const server_difference& d) {
       return (d.c.version == version_kind::alias13 || d.c.version == version_kind::v8) && d.mine.status == 426 &&
              d.theirs_up();
     }},
    {"Upgrade lists websocket among other protocols or on several lines: ours accepts (RFC 6455 §4.2.1 item 3: "
     "\"containing the value websocket\"; RFC 9110 §7.8: a list), ws wants exactly websocket, 400",
     [](const server_difference& d) {
       return d.c.upgrade == upgrade_kind::list && d.ours_up() && d.ws_400_on("Upgrade header");
     }},
    {"empty list elements in Sec-WebSocket-Protocol or Sec-WebSocket-Extensions: ours skips them (RFC 9110 §5.6.1: "
     "a recipient MUST parse and ignore a reasonable number of empty list elements), ws answers 400",
     [](const server_difference& d) {
       return d.ours_up() && ((d.c.protocol_flags.empty && d.ws_400_on("Sec-WebSocket-Protocol")) ||
                              (d.c.ext.empty && d.c.deflate.enabled && d.ws_400_on("Sec-WebSocket-Extensions")));
     }},
    {"whitespace around the '=' of an extension parameter: ours reads it (RFC 6455 §9.1 uses the RFC 2616 grammar, "
     "whose implied *LWS, §2.1, allows it), ws answers 400",
     [](const server_difference& d) {
       return d.c.ext.ows_equals && d.c.deflate.enabled && d.ours_up() && d.ws_400_on("Sec-WebSocket-Extensions");
     }},
    {"a subprotocol offered twice: ours selects as usual (RFC 6455 §4.1 asks the client for unique names, §4.2.1 "
     "item 8 asks the server for no check), ws answers 400",
     [](const server_difference& d) {
       return d.c.protocol_dup && d.ours_up() && d.ws_400_on("Sec-WebSocket-Protocol");
     }},
    {"a permessage-deflate or parameter name in another case: ours matches it case-insensitively (RFC 9110 §5.6.6: "
     "parameter names are case-insensitive) and answers as RFC 7692 says, ws takes it for an unknown name",
     [](const server_difference& d) { return d.c.ext.name_case && d.c.deflate.enabled && d.ours_as_rfc(); }},
    {"a window-bits value not written as 1*DIGIT without leading zeroes (\"010\", \"+9\", \"1e1\"): ws reads it as a "
     "number, ours declines the offer and answers as RFC 7692 says (§7.1.2.1: the syntax; §7: an invalid value MUST be "
     "declined)",
     [](const server_difference& d) { return d.c.ext.spelling && d.c.deflate.enabled && d.ours_as_rfc(); }},
    {"an offer asking for a server window below the server's limit: ours answers with the smaller value (RFC 7692 "
     "§7.1.2.1: \"the same or smaller value\"), ws declines that offer (then takes a later one, or answers 400)",
     [](const server_difference& d) {
       if (!d.ours_as_rfc() || d.c.deflate.server_max_window_bits == 15) return false;
       return std::any_of(d.c.offers.begin(), d.c.offers.end(), [&](const element_spec& e) {
         const auto r = read_element(e, false);
         return is_deflate(e) && r && r->smwb && *r->smwb < d.c.deflate.server_max_window_bits;
       });
     }},
    {"server_max_window_bits=8 offered: ours declines the offer (zlib cannot compress with a 256-byte window; RFC "
     "7692 §7.1.2.1 lets a server decline) and answers as RFC 7692 says, ws accepts the 8",
     [](const server_difference& d) {
       return d.ours_as_rfc() && std::any_of(d.c.offers.begin(), d.c.offers.end(), [](const element_spec& e) {
                const auto r = read_element(e, false);
                return is_deflate(e) && r && r->smwb == 8;
              });
     }},
    {"the server limits the client's window below 15, the offer announces a smaller value: ours answers the offer's "
     "value, ws its own limit (RFC 7692 §7.1.2.2: the server may ignore the value, or answer one equal or smaller)",
     [](const server_difference& d) {
       if (!d.ours_as_rfc() || !d.rest_alike() || !d.mine_pmd || !d.other_pmd) return false;
       pmd other = *d.other_pmd;
       other.cmwb = d.mine_pmd->cmwb;
       return other == *d.mine_pmd && d.other_pmd->cmwb == d.c.deflate.client_max_window_bits &&
              d.mine_pmd->cmwb < d.other_pmd->cmwb;
     }},
    {"a permessage-deflate offer with an unknown, duplicate or ill-valued parameter: ws fails the handshake (400), "
     "ours declines the offer (RFC 7692 §7: the server \"MUST decline\" it) and answers as RFC 7692 says",
     [](const server_difference& d) {
       if (!d.c.deflate.enabled || d.c.ext.fault || !d.ws_400_on("Sec-WebSocket-Extensions") || !d.ours_as_rfc()) {
         return false;
       }
       return std::any_of(d.c.offers.begin(), d.c.offers.end(),
                          [](const element_spec& e) { return is_deflate(e) && !read_element(e, false); });
     }},
    {"valid permessage-deflate offers, none of which ws's configuration can take: ws fails the handshake (400), ours "
     "answers as RFC 7692 says (§7: a server may decline an offer it does not support, and then goes on without it)",
     [](const server_difference& d) {
       return d.c.deflate.enabled && d.c.has_extensions && !d.c.ext.fault &&
              d.ws_400_on("Sec-WebSocket-Extensions") && d.ours_as_rfc() && !d.mine_pmd;
     }},
};

// ----- client cases -----

enum class accept_kind { right, wrong, missing, doubled };
enum class protocol_answer { none, offered, not_offered, doubled, list };

struct client_case {
  std::uint32_t seed = 0;
  std::vector<std::string> protocols;  // offered, by preference
  ws::deflate_options deflate;
  std::string response;  // with "{accept}" where the right accept value goes
  bool status_101 = true;
  upgrade_kind upgrade = upgrade_kind::exact;
  bool connection_ok = true;
  accept_kind accept = accept_kind::right;
  protocol_answer protocol = protocol_answer::none;
  std::string protocol_value;  // the one answered, when one is
  bool has_extensions = false;
  std::vector<element_spec> elements;
  syntax_flags ext;
};

class client_generator : generator {
 public:
  using generator::generator;

  client_case make(std::uint32_t seed) {
    client_case c;
    c.seed = seed;
    odd_ = chance(0.3) ? 0.0 : 1.0;
    for (int n = pick(0, 2); n > 0; --n) {
      const std::string p = pick_of(protocol_pool);
      if (std::find(c.protocols.begin(), c.protocols.end(), p) == c.protocols.end()) c.protocols.push_back(p);
    }
    c.deflate = deflate_options(false);

    std::vector<std::pair<std::string, std::string>> fields;
    auto add = [&](std::string name, std::string value) { fields.emplace_back(std::move(name), std::move(value)); };
    if (odd_chance(0.03)) c.status_101 = false;
    switch (odd_chance(0.15) ? pick(1, 4) : 0) {
      case 0:
        add("Upgrade", pick_str({"websocket", "WebSocket"}));
        break;
      case 1:
        add("Upgrade", pick_str({"websocket, h2c", "h2c, websocket"}));
        c.upgrade = upgrade_kind::list;
        break;
      case 2:
        add("Upgrade", "websocket");
        add("Upgrade", "websocket");
        c.upgrade = upgrade_kind::list;
        break;
      case 3:
        c.upgrade = upgrade_kind::missing;
        break;
      default:
        add("Upgrade", "websockets");
        c.upgrade = upgrade_kind::wrong;
        break;
    }
    switch (odd_chance(0.1) ? pick(1, 3) : 0) {
      case 0:
        add("Connection", pick_str({"Upgrade", "upgrade"}));
        break;
      case 1:
        add("Connection", "keep-alive, Upgrade");
        break;
      case 2:
        c.connection_ok = false;
        break;
      default:
        add("Connection", "keep-alive");
        c.connection_ok = false;
        break;
    }
    switch (odd_chance(0.2) ? pick(1, 3) : 0) {
      case 0:
        add("Sec-WebSocket-Accept", "{accept}");
        break;
      case 1: {
        std::string wrong(20, '\0');
        for (char& b : wrong) b = static_cast<char>(pick(0, 255));
        add("Sec-WebSocket-Accept", base64_of(wrong));
        c.accept = accept_kind::wrong;
        break;
      }
      case 2:
        c.accept = accept_kind::missing;
        break;
      default:  // twice: a server MUST NOT (§11.3.3)
        add("Sec-WebSocket-Accept", "{accept}");
        add("Sec-WebSocket-Accept", "{accept}");
        c.accept = accept_kind::doubled;
        break;
    }
    // Sec-WebSocket-Protocol: one of those offered, mostly.
    const int p = pick(0, 9);
    if (!c.protocols.empty() && p < 6) {
      c.protocol = protocol_answer::offered;
      c.protocol_value = pick_of(c.protocols);
      add("Sec-WebSocket-Protocol", c.protocol_value);
    } else if (odd_ > 0 && p == 6) {
      c.protocol = protocol_answer::not_offered;
      c.protocol_value = pick_str({"graphql-ws", "CHAT", "mqtt"});
      if (std::find(c.protocols.begin(), c.protocols.end(), c.protocol_value) != c.protocols.end()) {
        c.protocol = protocol_answer::offered;
      }
      add("Sec-WebSocket-Protocol", c.protocol_value);
    } else if (odd_ > 0 && p == 7 && c.protocols.size() == 2) {
      c.protocol = protocol_answer::doubled;
      add("Sec-WebSocket-Protocol", c.protocols[0]), add("Sec-WebSocket-Protocol", c.protocols[1]);
    } else if (odd_ > 0 && p == 8 && c.protocols.size() == 2) {
      c.protocol = protocol_answer::list;
      add("Sec-WebSocket-Protocol", c.protocols[0] + ", " + c.protocols[1]);
    }
    // Sec-WebSocket-Extensions: what the server agreed to, mostly, or something else.
    if (c.deflate.enabled ? chance(0.8) : odd_chance(0.2)) {
      c.has_extensions = true;
      c.elements = elements(odd_chance(0.1) ? 2 : 1, true, c.ext);
      if (c.elements.size() == 1 && chance(0.5)) c.elements[0] = agreed_element(c.deflate);
      for (const std::string& l : render(c.elements, c.ext)) add("Sec-WebSocket-Extensions", l);
    }
    if (chance(0.2)) std::shuffle(fields.begin(), fields.end(), rng_);
    c.response = c.status_101 ? "HTTP/1.1 101 Switching Protocols\r\n" : "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n";
    for (const auto& f : fields) c.response += f.first + ": " + f.second + "\r\n";
    c.response += "\r\n";
    return c;
  }

  nlohmann::json to_json(const client_case& c) {
    return {{"client",
             {{"response", hex(c.response)}, {"protocols", c.protocols}, {"deflate", ws_deflate_options(c.deflate)}}}};
  }

 private:
  // An answer a server could well give to the offer: its asks granted, limits at or below them.
  element_spec agreed_element(const ws::deflate_options& o) {
    element_spec e{"permessage-deflate", {}};
    if (o.server_no_context_takeover || chance(0.2)) e.params.push_back({"server_no_context_takeover", std::nullopt});
    if (chance(o.client_no_context_takeover ? 0.7 : 0.2)) {
      e.params.push_back({"client_no_context_takeover", std::nullopt});
    }
    if (o.server_max_window_bits < 15 || chance(0.3)) {
      e.params.push_back({"server_max_window_bits", std::to_string(pick(std::min(9, o.server_max_window_bits),
                                                                          o.server_max_window_bits))});
    }
    if (chance(0.5)) e.params.push_back({"client_max_window_bits", std::to_string(pick(9, 15))});
    std::shuffle(e.params.begin(), e.params.end(), rng_);
    return e;
  }
};

struct client_outcome {
  bool open = false;
  std::string protocol;
  std::optional<pmd> agreed;
  std::string error;
};

std::string describe(const client_outcome& o) {
  if (!o.open) return "failed (" + o.error + ")";
  return "open, protocol \"" + o.protocol + "\", deflate " + describe(o.agreed);
}

// A raw server in front of ws::async_connect: each connection gets its case's response ("/c/<index>").
asio::awaitable<void> answer_connection(asio::ip::tcp::socket socket, const std::vector<client_case>& cases) {
  std::string request;
  std::error_code ec;
  co_await asio::async_read_until(socket, asio::dynamic_buffer(request), "\r\n\r\n",
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  const std::size_t target = request.find("/c/") + 3;
  const client_case& c = cases.at(std::stoul(request.substr(target)));
  std::string key;
  std::istringstream lines(request);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (same_text_ci(line.substr(0, 18), "sec-websocket-key:")) key = std::string(trimmed(line.substr(18)));
  }
  std::string response = c.response;
  const std::string accept = expected_accept(key);
  for (std::size_t at; (at = response.find("{accept}")) != std::string::npos;) response.replace(at, 8, accept);
  co_await asio::async_write(socket, asio::buffer(response), asio::redirect_error(asio::use_awaitable, ec));
}

std::vector<client_outcome> ours_as_client(const std::vector<client_case>& cases) {
  asio::io_context ctx;
  asio::ip::tcp::acceptor acceptor(ctx, {asio::ip::make_address("127.0.0.1"), 0});
  const std::uint16_t port = acceptor.local_endpoint().port();
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          std::error_code ec;
          asio::ip::tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
          if (ec) co_return;
          asio::co_spawn(ctx, answer_connection(std::move(socket), cases), asio::detached);
        }
      },
      asio::detached);
  std::vector<client_outcome> out;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    ws::connect_options options;
    options.subprotocols = cases[i].protocols;
    options.deflate = cases[i].deflate;
    bool done = false;
    client_outcome o;
    ws::async_connect(ctx.get_executor(), "ws://127.0.0.1:" + std::to_string(port) + "/c/" + std::to_string(i),
                      options, [&](std::error_code ec, std::shared_ptr<ws::session> s) {
                        done = true;
                        o.open = !ec;
                        o.error = ec.message();
                        if (!s) return;
                        o.protocol = s->subprotocol();
                        if (const auto& d = s->deflate()) {
                          o.agreed = pmd{d->server_no_context_takeover, d->client_no_context_takeover,
                                         d->server_max_window_bits, d->client_max_window_bits};
                        }
                      });
    REQUIRE(switchboard::test::run_until(ctx, [&] { return done; }));
    out.push_back(std::move(o));
  }
  acceptor.close();
  switchboard::test::poll(ctx);
  return out;
}

client_outcome theirs_as_client(const nlohmann::json& record) {
  client_outcome o;
  o.open = record.at("open").get<bool>();
  if (!o.open) {
    o.error = record.at("error").get<std::string>();
    return o;
  }
  o.protocol = record.at("protocol").get<std::string>();
  const nlohmann::json& d = record.at("deflate");
  if (!d.is_null()) {
    pmd p;
    p.snct = d.contains("server_no_context_takeover");
    p.cnct = d.contains("client_no_context_takeover");
    if (d.contains("server_max_window_bits")) p.smwb = d.at("server_max_window_bits").get<int>();
    if (d.contains("client_max_window_bits")) p.cmwb = d.at("client_max_window_bits").get<int>();
    o.agreed = p;
  }
  return o;
}

// Whether a client must connect, by RFC 6455 §4.1 and RFC 7692, and with what; the handshake checks first.
struct client_expectation {
  bool open = false;
  response_fault fault = response_fault::none;
  std::optional<pmd> agreed;
};

client_expectation rfc_client(const client_case& c) {
  client_expectation e;
  // §4.1: 101; Upgrade a case-insensitive match for "websocket"; Connection containing "Upgrade"; the accept value
  // (one field: a second one makes the combined value another, RFC 9110 §5.3); no subprotocol not offered, one
  // field at most (§11.3.4).
  if (!c.status_101 || c.upgrade != upgrade_kind::exact || !c.connection_ok || c.accept != accept_kind::right) return e;
  if (c.protocol == protocol_answer::not_offered || c.protocol == protocol_answer::doubled ||
      c.protocol == protocol_answer::list) {
    return e;
  }
  if (c.has_extensions && c.ext.fault) return e;
  const client_reading r = rfc_client_reading(c.elements, c.deflate);
  e.fault = r.fault;
  if (r.fault != response_fault::none) return e;
  e.open = true;
  e.agreed = r.agreed;
  return e;
}

struct client_difference {
  const client_case& c;
  const client_outcome& mine;
  const client_outcome& other;
  const client_expectation& rfc;
  bool ours_as_rfc() const { return mine.open == rfc.open && (!mine.open || mine.agreed == rfc.agreed); }
};

struct client_class {
  std::string_view name;
  bool (*applies)(const client_difference&);
};

const std::vector<client_class> client_classes = {
    {"subprotocols offered, none selected: ours goes on without one (RFC 6455 §4.1 fails only a subprotocol not "
     "offered; §4.2.2 item 5.5 lets the server select none), ws fails",
     [](const client_difference& d) {
       return d.ours_as_rfc() && d.mine.open && !d.other.open && !d.c.protocols.empty() &&
              d.c.protocol == protocol_answer::none;
     }},
    {"server_max_window_bits asked for and answered larger or not at all: ours fails (RFC 7692 §7.1.2.1: the server "
     "accepts it by answering the same or a smaller value), ws goes on",
     [](const client_difference& d) {
       return d.ours_as_rfc() && d.rfc.fault == response_fault::smwb_not_granted && d.other.open;
     }},
    {"server_no_context_takeover asked for and not answered: ours fails (RFC 7692 §7.1.1.1: the server accepts it by "
     "including it), ws goes on",
     [](const client_difference& d) {
       return d.ours_as_rfc() && d.rfc.fault == response_fault::snct_missing && d.other.open;
     }},
    {"client_max_window_bits=8 answered: ours fails (zlib cannot compress with a 256-byte window, and RFC 7692 "
     "§7.1.2.2 leaves a client no way to refuse but failing), ws goes on",
     [](const client_difference& d) {
       return d.ours_as_rfc() && d.rfc.fault == response_fault::cmwb_8 && d.other.open;
     }},
    {"permessage-deflate answered twice: ours fails (the client offered it once, so a second acceptance answers "
     "nothing it offered: RFC 6455 §4.1, §9.1), ws uses the first",
     [](const client_difference& d) {
       return d.ours_as_rfc() && d.rfc.fault == response_fault::twice && d.other.open;
     }},
    {"a permessage-deflate or parameter name in another case: ours matches it case-insensitively (RFC 9110 §5.6.6) "
     "and reads the response as RFC 7692 says, ws takes it for another extension or parameter and fails",
     [](const client_difference& d) { return d.ours_as_rfc() && d.c.ext.name_case && !d.other.open; }},
    {"a window-bits value not written as 1*DIGIT without leading zeroes (\"010\", \"+9\", \"1e1\"): ours fails (RFC "
     "7692 §7.1.2.1, §5), ws reads it as a number",
     [](const client_difference& d) { return d.ours_as_rfc() && d.c.ext.spelling && !d.mine.open; }},
    {"empty list elements or whitespace around '=' in the response: ours reads them (RFC 9110 §5.6.1; RFC 6455 §9.1 "
     "with RFC 2616 §2.1 implied *LWS), ws fails",
     [](const client_difference& d) {
       return d.ours_as_rfc() && (d.c.ext.empty || d.c.ext.ows_equals) && d.mine.open && !d.other.open;
     }},
    {"client_max_window_bits answered above the value the offer announced: ours goes on with its own, smaller window "
     "(RFC 7692 §7.1.2.2: the server may ignore the offer's value; the offer promised that the client keeps to it), "
     "ws fails",
     [](const client_difference& d) {
       if (!d.ours_as_rfc() || !d.mine.open || d.other.open) return false;
       return std::any_of(d.c.elements.begin(), d.c.elements.end(), [&](const element_spec& e) {
         const auto r = read_element(e, true);
         return r && r->cmwb && *r->cmwb > d.c.deflate.client_max_window_bits;
       });
     }},
    {"client_no_context_takeover offered, not answered: ours keeps to it, ws does not (RFC 7692 §7.1.1.2: the offer "
     "is the client's promise whatever the answer; either way a server can decode)",
     [](const client_difference& d) {
       if (!d.ours_as_rfc() || !d.mine.open || !d.other.open || !d.mine.agreed || !d.other.agreed) return false;
       pmd other = *d.other.agreed;
       other.cnct = true;
       return d.c.deflate.client_no_context_takeover && !d.other.agreed->cnct && other == *d.mine.agreed;
     }},
};

// ---------------------------------------------------------------------------------------------------------------

std::string options_text(const ws::deflate_options& o) {
  if (!o.enabled) return "off";
  std::ostringstream s;
  s << "snct=" << o.server_no_context_takeover << " cnct=" << o.client_no_context_takeover
    << " smwb=" << o.server_max_window_bits << " cmwb=" << o.client_max_window_bits;
  return s.str();
}

std::string flags_of(const syntax_flags& f) {
  std::string s;
  if (f.empty) s += " empty-elements";
  if (f.ows_equals) s += " ows-around-=";
  if (f.name_case) s += " name-case";
  if (f.spelling) s += " js-number-spelling";
  if (f.fault) s += " syntax-fault";
  if (f.split) s += " split";
  return s;
}

// What became of each case of a comparison: read alike (counted by how it ended, so that the comparison is not
// vacuous), different in a named class, or failed (the first `shown` failures are reported).
struct case_tally {
  static constexpr int shown = 8;
  std::map<std::string_view, int> classified;
  std::map<std::string, int> outcomes;
  int failures = 0;

  // Counts `d` in the first of `classes` that applies to it; false when none does.
  template <class Classes, class Difference>
  bool classify(const Classes& classes, const Difference& d) {
    const auto known = std::find_if(classes.begin(), classes.end(), [&](const auto& k) { return k.applies(d); });
    if (known == classes.end()) return false;
    ++classified[known->name];
    return true;
  }

  // Counts a failure; true while it is one of the first `shown`.
  bool fail() { return ++failures <= shown; }

  std::string counts() const {
    std::ostringstream out;
    for (const auto& [name, count] : classified) out << "\n  " << count << ": " << name;
    for (const auto& [name, count] : outcomes) out << "\n  " << count << " alike: " << name;
    return out.str();
  }

  // Checks that no case failed, with the counts in the message (and as a warning with SWITCHBOARD_SHOW_COUNTS).
  void check(std::string_view what, std::size_t cases) const {
    INFO(what << " cases by class of difference or outcome:" << counts());
    INFO(failures << " of " << cases << " cases failed (the first " << shown << " shown)");
    CHECK(failures == 0);
    if (std::getenv("SWITCHBOARD_SHOW_COUNTS") != nullptr) WARN(what << " cases:" << counts());
  }
};

}  // namespace

TEST_CASE("ws::accept and the ws package's WebSocketServer (npm) answer random upgrade requests alike",
          "[conformance][ws]") {
  REQUIRE(switchboard::test::have_program("node"));
  std::vector<server_case> cases;
  std::string input;
  for (std::uint32_t seed = 1; seed <= 2500; ++seed) {
    server_generator g(seed);
    cases.push_back(g.make(seed, cases.size()));
    input += g.to_json(cases.back()).dump() + "\n";
  }
  const std::vector<nlohmann::json> records = run_node_peer("ws_handshake.mjs", {}, input);
  REQUIRE(records.size() == cases.size());
  const std::vector<server_answer> mine = ours_as_server(cases);

  case_tally tally;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const server_case& c = cases[i];
    const server_answer& ours = mine[i];
    const server_answer theirs = theirs_as_server(records[i]);
    const answer ours_answer = read_answer(ours.values("sec-websocket-extensions"));
    const answer theirs_answer = read_answer(theirs.values("sec-websocket-extensions"));
    const std::optional<pmd> rfc =
        c.deflate.enabled && c.has_extensions ? rfc_server_answer(c.offers, c.deflate) : std::nullopt;
    INFO("seed " << c.seed << ", server protocols " << nlohmann::json(c.protocols).dump() << ", deflate "
                 << options_text(c.deflate) << "\nrequest: \"" << escaped(c.request) << "\"\nflags:" << flags_of(c.ext)
                 << (c.protocol_flags.empty ? " protocol-empty" : "") << (c.protocol_dup ? " protocol-dup" : "")
                 << "\nours: " << describe(ours) << "\nws: " << describe(theirs)
                 << "\nRFC 7692 answer: " << describe(rfc));
    // Ours by the RFCs, whatever ws did.
    std::string wrong;
    if (ours.upgraded()) {
      if (ours.value("sec-websocket-accept") != expected_accept(c.key_value)) wrong = "the accept value (§4.2.2)";
      if (!ours_answer.ok || ours_answer.agreed != rfc) wrong = "the permessage-deflate answer (RFC 7692)";
    } else if (c.upgrade != upgrade_kind::missing && c.upgrade != upgrade_kind::wrong && c.connection_ok &&
               c.version != version_kind::v13 &&
               (ours.status != 426 || ours.value("sec-websocket-version") != "13")) {
      wrong = "not 426 with Sec-WebSocket-Version: 13 for a version other than 13 (§4.4)";
    }
    if (!wrong.empty()) {
      if (tally.fail()) FAIL_CHECK("ours is wrong by the RFCs: " << wrong);
      continue;
    }
    const bool alike = ours.upgraded() == theirs.upgraded() &&
                       (!ours.upgraded() ||
                        (ours.value("sec-websocket-accept") == theirs.value("sec-websocket-accept") &&
                         ours.value("sec-websocket-protocol") == theirs.value("sec-websocket-protocol") &&
                         ours_answer.agreed == theirs_answer.agreed && theirs_answer.ok));
    if (alike) {
      ++tally.outcomes[ours.upgraded() ? (ours_answer.agreed ? "101 with permessage-deflate" : "101")
                                       : "refused, ours " + std::to_string(ours.status)];
      continue;
    }
    const server_difference d{c, ours, theirs, ours_answer.agreed, theirs_answer.agreed, rfc};
    if (tally.classify(server_classes, d)) continue;
    if (tally.fail()) FAIL_CHECK("the servers answer differently, and in no named class of difference");
  }
  tally.check("server", cases.size());
  CHECK(tally.outcomes["refused, ours 400"] > 0);
  CHECK(tally.outcomes["refused, ours 426"] > 0);
  CHECK(tally.outcomes["101"] > 100);
  CHECK(tally.outcomes["101 with permessage-deflate"] > 100);
}

TEST_CASE("ws::async_connect and the ws package's WebSocket (npm) read random 101 responses alike",
          "[conformance][ws]") {
  REQUIRE(switchboard::test::have_program("node"));
  std::vector<client_case> cases;
  std::string input;
  for (std::uint32_t seed = 100001; seed <= 101500; ++seed) {
    client_generator g(seed);
    cases.push_back(g.make(seed));
    input += g.to_json(cases.back()).dump() + "\n";
  }
  const std::vector<nlohmann::json> records = run_node_peer("ws_handshake.mjs", {}, input);
  REQUIRE(records.size() == cases.size());
  const std::vector<client_outcome> mine = ours_as_client(cases);

  case_tally tally;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const client_case& c = cases[i];
    const client_outcome& ours = mine[i];
    const client_outcome theirs = theirs_as_client(records[i]);
    const client_expectation rfc = rfc_client(c);
    INFO("seed " << c.seed << ", offered protocols " << nlohmann::json(c.protocols).dump() << ", deflate "
                 << options_text(c.deflate) << "\nresponse: \"" << escaped(c.response) << "\"\nflags:"
                 << flags_of(c.ext) << "\nours: " << describe(ours) << "\nws: " << describe(theirs)
                 << "\nRFC: " << (rfc.open ? "open, deflate " + describe(rfc.agreed) : "fail"));
    // Ours by the RFCs, whatever ws did.
    if (ours.open != rfc.open || (ours.open && (ours.agreed != rfc.agreed || ours.protocol != c.protocol_value))) {
      if (tally.fail()) FAIL_CHECK("ours is wrong by the RFCs");
      continue;
    }
    const bool alike =
        ours.open == theirs.open && (!ours.open || (ours.protocol == theirs.protocol && ours.agreed == theirs.agreed));
    if (alike) {
      ++tally.outcomes[ours.open ? (ours.agreed ? "open with permessage-deflate" : "open") : "failed"];
      continue;
    }
    const client_difference d{c, ours, theirs, rfc};
    if (tally.classify(client_classes, d)) continue;
    if (tally.fail()) FAIL_CHECK("the clients read the response differently, and in no named class of difference");
  }
  tally.check("client", cases.size());
  CHECK(tally.outcomes["failed"] > 0);
  CHECK(tally.outcomes["open"] > 100);
  CHECK(tally.outcomes["open with permessage-deflate"] > 100);
}

// The defects this comparison found, as fixed inputs checked against the RFCs alone (no Node): each failed before
// its fix.
TEST_CASE("ws::accept and ws::async_connect read handshake fields sent on several lines or twice by the RFCs",
          "[conformance][ws]") {
  SECTION("server") {
    auto request = [](std::size_t index, std::string_view fields) {
      return "GET /c/" + std::to_string(index) +
             " HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" + std::string(fields) + "\r\n";
    };
    std::vector<server_case> cases(3);
    // RFC 6455 §11.3.4: two Sec-WebSocket-Protocol lines are one list; the server prefers "chat", on the first.
    cases[0].request = request(0, "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n"
                                  "Sec-WebSocket-Protocol: mqtt\r\n");
    cases[0].protocols = {"chat"};
    // §11.3.2: the same for Sec-WebSocket-Extensions; the permessage-deflate offer is on the first line.
    cases[1].request = request(1, "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; "
                                  "client_max_window_bits=10\r\nSec-WebSocket-Extensions: x-foo\r\n");
    cases[1].deflate.enabled = true;
    // §4.2.1 item 6, §11.3.5: one Sec-WebSocket-Version of 13; two make "13, 13", a version we do not speak (§4.4).
    cases[2].request = request(2, "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n");
    const std::vector<server_answer> answers = ours_as_server(cases);
    CHECK(answers[0].status == 101);
    CHECK(answers[0].value("sec-websocket-protocol") == "chat");
    CHECK(answers[1].status == 101);
    CHECK(answers[1].value("sec-websocket-extensions") == "permessage-deflate; client_max_window_bits=10");
    CHECK(answers[2].status == 426);
    CHECK(answers[2].value("sec-websocket-version") == "13");
  }
  SECTION("client") {
    auto response = [](std::string_view fields) {
      return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n" + std::string(fields) + "\r\n";
    };
    std::vector<client_case> cases(5);
    // §11.3.3: Sec-WebSocket-Accept at most once; two make "v, v", not the accept value (§4.1).
    cases[0].response =
        response("Upgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Accept: {accept}\r\n");
    // §4.1: Upgrade must be a case-insensitive match for "websocket", not a list holding it.
    cases[1].response = response("Upgrade: websocket, h2c\r\nSec-WebSocket-Accept: {accept}\r\n");
    // §11.3.4: Sec-WebSocket-Protocol at most once in a response, even with names we offered.
    cases[2].protocols = {"chat", "mqtt"};
    cases[2].response = response("Upgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\n"
                                 "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: mqtt\r\n");
    // §9.1, §4.1: an extension never offered, on the first of two Sec-WebSocket-Extensions lines.
    cases[3].deflate.enabled = true;
    cases[3].response = response("Upgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: "
                                 "x-foo\r\nSec-WebSocket-Extensions: permessage-deflate\r\n");
    // RFC 7692 §7.1.2.2: a client window limit above the offer's 10; the client keeps to 10.
    cases[4].deflate = {.enabled = true, .client_max_window_bits = 10};
    cases[4].response = response("Upgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: "
                                 "permessage-deflate; client_max_window_bits=12\r\n");
    const std::vector<client_outcome> outcomes = ours_as_client(cases);
    CHECK_FALSE(outcomes[0].open);
    CHECK_FALSE(outcomes[1].open);
    CHECK_FALSE(outcomes[2].open);
    CHECK_FALSE(outcomes[3].open);
    REQUIRE(outcomes[4].open);
    REQUIRE(outcomes[4].agreed);
    CHECK(outcomes[4].agreed->cmwb == 10);
  }
}
