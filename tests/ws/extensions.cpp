// The Sec-WebSocket-Extensions grammar (RFC 6455 §9.1): valid and invalid header values.
#include <switchboard/ws/extensions.hpp>

#include "support/catch.hpp"

#include <string>
#include <vector>

using namespace switchboard::ws;

namespace {

// Renders parsed extensions as "name(p1=v1,p2)|name2()" to compare against tables.
std::string render(const std::vector<extension>& list) {
  std::string out;
  for (const auto& e : list) {
    if (!out.empty()) out += "|";
    out += e.name + "(";
    for (std::size_t i = 0; i < e.params.size(); ++i) {
      if (i) out += ",";
      out += e.params[i].name;
      if (e.params[i].value) out += "=" + *e.params[i].value;
    }
    out += ")";
  }
  return out;
}

}  // namespace

TEST_CASE("extensions: valid headers", "[ws][extensions]") {
  const std::pair<const char*, const char*> table[] = {
      {"permessage-deflate", "permessage-deflate()"},
      {"permessage-deflate; client_max_window_bits", "permessage-deflate(client_max_window_bits)"},
      {"permessage-deflate;client_max_window_bits=10;server_no_context_takeover",
       "permessage-deflate(client_max_window_bits=10,server_no_context_takeover)"},
      {"permessage-deflate ; server_max_window_bits = 10 , foo", "permessage-deflate(server_max_window_bits=10)|foo()"},
      {"a; x=\"1\"", "a(x=1)"},
      {"a; x=\"1\\0\"", "a(x=10)"},  // quoted-pair unescaped
      {", a, , b,", "a()|b()"},     // empty list elements are ignored
      {"a;x;x", "a(x,x)"},          // duplicates are kept: the extension decides
      {"A; X=Y", "A(X=Y)"},         // case is kept: the extension compares
  };
  for (const auto& [header, expected] : table) {
    INFO(header);
    std::vector<extension> out;
    CHECK_FALSE(parse_extensions(header, out));
    CHECK(render(out) == expected);
  }
}

TEST_CASE("extensions: invalid headers", "[ws][extensions]") {
  for (const char* header : {
           "",                // no extension
           " , ",             // still none
           "; x",             // parameter without an extension
           "a;",              // parameter name missing
           "a; =1",           // parameter name missing
           "a; x=",           // value missing
           "a; x=\"\"",       // quoted value must unescape to a token
           "a; x=\"1 2\"",    // ... and a token has no spaces
           "a; x=\"1",        // unterminated quoted string
           "a b",             // two tokens without a separator
           "a; x=1 2",        // junk after a value
           "a; x=1=2",        // junk after a value
           "a/b",             // '/' is not a token character
           "a; x=(1)",        // nor are parentheses
       }) {
    INFO(header);
    std::vector<extension> out;
    CHECK(parse_extensions(header, out) == error::invalid_header_syntax);
  }
}
